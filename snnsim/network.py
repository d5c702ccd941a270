"""A feed-forward network of registered layers, built from a resolved config."""
from __future__ import annotations

import torch
from torch import nn

from snnsim.layers import LAYER_TYPES, RunSettings
from snnsim.params import NeuronParams


def neuron_params_from_config(config: dict) -> NeuronParams:
    p = config["neuron_params"]
    return NeuronParams(tau_syn=p["tau_syn"], tau_mem=p["tau_mem"], threshold=p["threshold"],
                        leak=p["leak"], g_leak=p["g_leak"])


class Network(nn.Module):
    """Layers applied in order; returns the output layer's result and the hidden ones."""

    def __init__(self, config: dict, generator: torch.Generator):
        super().__init__()
        params = neuron_params_from_config(config)
        layout = config["network_layout"]
        self.n_inputs = layout["n_inputs"]
        self.layers = nn.ModuleList()
        n_in = self.n_inputs
        for entry in layout["layers"]:
            layer = LAYER_TYPES[entry["type"]](n_in, entry, params, generator)
            self.layers.append(layer)
            n_in = layer.size

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """[(rows of the weight matrix incl. biases, size)] per layer."""
        return [tuple(layer.weight.shape) for layer in self.layers]

    def forward(self, t_in: torch.Tensor, settings: RunSettings):
        if t_in.dim() != 2 or t_in.shape[1] != self.n_inputs:
            raise ValueError(f"network input must have shape [batch, {self.n_inputs}], "
                             f"got {tuple(t_in.shape)}")
        hidden = []
        x = t_in
        for layer, backend in zip(self.layers, settings.backends):
            x = layer(x, backend, settings)
            hidden.append(x)
        return hidden[-1], hidden[:-1]
