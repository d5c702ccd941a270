"""Task `line_completion` and its per-epoch monitor.

The network (S1 `line_features`, S2 `lateral`) learns locally; the task only scores it.
Its loss is the line error of the last step's cells against the drawn line:

    L = mean over pixels p of | max over features and cells z(p) - image(p) |

(the input is its own target). Every `monitor_every` epochs (0: never) the metric
callback runs the published protocol (see `evaluation`) at `monitor_noise` on the
evaluation lines and records val_noise_reduction, val_recall and val_precision.

With the data set `straight_lines` and `lines: fresh` (the published data: a fresh line at
every access), the training split holds every possible line and `training_batches` gives
each epoch's `n_train` lines of the published stream (`data.LineStream`), in drawn order,
instead of a permutation of the split. The lines depend on the epoch's index alone, so a
run continued from a checkpoint trains on the lines an uninterrupted run would.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from snnsim.families.fragments.data import LineStream, all_lines, line_indices
from snnsim.registry import METRICS, TASKS, MetricCallback
from snnsim.schema import Field, non_negative
from snnsim.tasks import TYPE_ONLY, Regression

EXAMPLE_LAYERS = [
    {"type": "line_features", "height": 16, "width": 16, "trainable": True},
    {"type": "lateral", "height": 16, "width": 16, "alternative_cells": 2, "kernel_size": 5,
     "timesteps": 2, "gamma": [1.2, 2.2]},
]


@TASKS.register
class LineCompletion(Regression):
    """Line completion with lateral cells (module docstring); primary metric the loss."""

    type_name = "line_completion"
    config_fields: ClassVar[dict] = {
        **TYPE_ONLY,
        "monitor_every": Field((int,), 10, non_negative, "an integer >= 0 (0: no monitor)"),
        "monitor_noise": Field((int, float), 0.05, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    }
    example: ClassVar[dict] = {
        "dataset": "straight_lines",
        "data": {"n_train": 12, "n_eval": 6, "size": 16},
        "task": {"type": "line_completion", "monitor_every": 1},
        "network_layout": {"n_inputs": 256, "layers": EXAMPLE_LAYERS}}

    def __init__(self, entry: dict, config: dict):
        super().__init__(entry, config)
        data = config.get("data", {})
        self.stream = None
        if config.get("dataset") == "straight_lines" and data.get("lines") == "fresh":
            self.stream = LineStream(data["seed"], data["n_train"], data["validation_draws"],
                                     data["size"])
            self.n_lines = len(all_lines(data["size"]))

    def training_batches(self, targets, n_samples: int, batch_size: int,
                         generator: torch.Generator, epoch: int = 0) -> list[torch.Tensor]:
        """A permutation of the split, or with `lines: fresh` the next epoch of the
        published stream as indices into the split of all lines (module docstring)."""
        if self.stream is None:
            return super().training_batches(targets, n_samples, batch_size, generator, epoch)
        if n_samples != self.n_lines:
            raise ValueError(f"line_completion with lines: fresh expects the training split "
                             f"of all {self.n_lines} lines, got {n_samples} samples")
        indices = line_indices(self.stream.epoch_lines(epoch), self.stream.size)
        return list(torch.tensor(indices, dtype=torch.int64).split(batch_size))

    def batch(self, x: torch.Tensor, target, generator: torch.Generator, training: bool):
        return x, x

    def per_sample_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n_pixels = target.shape[1]
        active = output.reshape(len(output), -1, n_pixels).amax(1)
        return (active - target.to(active.dtype)).abs().mean(1)


def _monitor_applies(trainer) -> bool:
    return (isinstance(trainer.task, LineCompletion)
            and trainer.task.entry["monitor_every"] > 0)


def _monitor(trainer) -> dict[str, float]:
    from snnsim.families.fragments.evaluation import evaluation_grid

    if trainer.epoch % trainer.task.entry["monitor_every"]:
        return {}
    (row,) = evaluation_grid(trainer, noises=(trainer.task.entry["monitor_noise"],), gaps=(0,))
    return {f"val_{key}": row[key] for key in ("noise_reduction", "recall", "precision")}


METRICS.register(MetricCallback("line_completion", _monitor_applies, _monitor))
