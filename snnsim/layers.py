"""Layers: `nn.Module`s registered by a type name and built from their config entry.

A layer class declares `type_name`, `config_fields` (the schema of its config
entry, see `snnsim.config.Field`) and is built as `cls(n_inputs, entry,
neuron_params, generator)`. Its parameters are ordinary `nn.Parameter`s and its
untrained state registered buffers, so optimisers, clipping and checkpoints treat
all layers alike. Optional hooks the training loop calls when present:
`extra_loss()`, `local_update(batch_state)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnsim.config import LIF_LAYER_FIELDS
from snnsim.params import NeuronParams
from snnsim.spike_times import first_spike_times


@dataclass(frozen=True)
class RunSettings:
    """How layers compute in this run: backend per layer and training-time options."""

    backends: tuple[Any, ...]
    max_dw_norm: float | None = None
    rounding_precision: float | None = None


class LIFLayer(nn.Module):
    """LIF neurons mapping input spike times (plus bias spikes) to first output spike times.

    The bias spikes are appended after the inputs, as in the published code, so the
    weight matrix has shape [n_inputs + n_biases, size] with the bias rows last.
    With `rounding_precision` p the forward pass uses round(w/p) p and the gradient
    passes straight through to the float weights (hardware-aware training).
    """

    type_name = "lif_ttfs"
    config_fields = LIF_LAYER_FIELDS
    spiking = True

    def __init__(self, n_inputs: int, entry: dict, neuron_params: NeuronParams,
                 generator: torch.Generator):
        super().__init__()
        self.size = entry["size"]
        self.neuron_params = neuron_params
        self.max_num_missing_spikes = entry["max_num_missing_spikes"]
        weight = torch.empty(n_inputs + entry["n_biases"], self.size, dtype=torch.float64)
        weight.normal_(entry["weight_mean"], entry["weight_stdev"], generator=generator)
        self.weight = nn.Parameter(weight)
        self.register_buffer("bias_times", torch.tensor(entry["bias_times"], dtype=torch.float64))

    def forward(self, t_in: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        t_in = torch.cat([t_in, self.bias_times.expand(t_in.shape[0], -1)], 1)
        w = self.weight
        if settings.rounding_precision:
            p = settings.rounding_precision
            w = w + (torch.round(w / p) * p - w).detach()
        return first_spike_times(t_in, w, self.neuron_params, backend,
                                 max_dw_norm=settings.max_dw_norm)


LAYER_TYPES: dict[str, type[nn.Module]] = {
    LIFLayer.type_name: LIFLayer,
}
