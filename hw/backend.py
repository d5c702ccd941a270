"""The `bss2` backend module: one layer on a fresh default mock chip per call.

`snnsim.first_spike_times(t_in, w, params, backend="bss2")` runs the layer on the
shipped mock chip a with the published hardware settings (`HardwareConfig()`):
every call builds the same session (same placement, same seed), so the module is
stateless and repeatable. Networks and training use `ChipSession` instead, which
keeps one chip, its RNG and its statistics for a whole run.
"""
from __future__ import annotations

import torch

from hw.config import HardwareConfig
from hw.session import ChipSession
from snnsim.params import NeuronParams


def check_available() -> None:
    """The mock chip needs nothing beyond snnsim itself."""


def _session(w: torch.Tensor) -> ChipSession:
    return ChipSession(HardwareConfig(), [tuple(w.shape)])


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """Measured first-spike times of one layer on the default mock chip (`params` unused)."""
    return _session(w).layer_backend(0).forward(t_in, w, params)


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """Gradients in the default mock chip's model at the measured times; see `hw.session`."""
    return _session(w).layer_backend(0).backward(t_in, w, t_out, grad_t_out, params, max_dw_norm)
