"""De-noising with a choice of noise: ``noisy_denoising`` (the core `denoising` task with
Gaussian or Laplace noise of the same standard deviation sigma = `noise_std`):

    gaussian:  x_noisy = x + sigma n,  n ~ N(0, 1)
    laplace:   x_noisy = x + n,  n ~ Laplace(0, b), b = sigma / sqrt(2)  (so std(n) = sigma);
               drawn as n = -b sign(u) ln(1 - 2|u|), u ~ U(-1/2, 1/2)

target the clean x, squared error; noise on at evaluation (`noise_at_eval`) as published.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

from snnsim.registry import TASKS
from snnsim.schema import Field, one_of
from snnsim.tasks import Denoising

NOISE_TYPES = ("gaussian", "laplace")


def laplace_noise(shape, dtype: torch.dtype, generator: torch.Generator,
                  std: float) -> torch.Tensor:
    """Laplace(0, std / sqrt 2) samples by the inverse CDF of uniform draws."""
    u = torch.rand(shape, dtype=dtype, generator=generator) - 0.5
    b = std / math.sqrt(2.0)
    return -b * torch.sign(u) * torch.log1p(-2.0 * u.abs())


@TASKS.register
class NoisyDenoising(Denoising):
    """De-noising with Gaussian or Laplace noise (module docstring)."""

    type_name = "noisy_denoising"
    config_fields: ClassVar[dict] = {**Denoising.config_fields,
                     "noise": Field((str,), "gaussian", one_of(*NOISE_TYPES),
                                    ", ".join(NOISE_TYPES))}
    example: ClassVar[dict] = {**Denoising.example}

    def batch(self, x: torch.Tensor, target: torch.Tensor | None, generator: torch.Generator,
              training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.entry["noise"] == "gaussian":
            return super().batch(x, target, generator, training)
        if not (training or self.entry["noise_at_eval"]) or self.entry["noise_std"] == 0:
            return x, x
        noise = laplace_noise(x.shape, x.dtype, generator, self.entry["noise_std"])
        return x + noise.to(x.device), x
