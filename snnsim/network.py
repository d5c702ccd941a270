"""A network of registered layers built from a resolved config: a trunk and optional heads.

    network_layout: {n_inputs, layers: [...], heads: {name: [...], ...}}

The trunk's layers run in order; each head (one per task of a multi-task run) runs
its own layers on the trunk's output. `forward` returns the output (a tensor, or
{head: tensor} with heads) and one `LayerRecord` (the layer, its input, its output)
per layer of this batch, for weight bumping, local learning rules and metrics.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from snnsim.layers import Layer, LayerContext, RunSettings, build_layer
from snnsim.params import NeuronParams


def neuron_params_from_config(config: dict) -> NeuronParams:
    p = config["neuron_params"]
    return NeuronParams(tau_syn=p["tau_syn"], tau_mem=p["tau_mem"], threshold=p["threshold"],
                        leak=p["leak"], g_leak=p["g_leak"])


@dataclass(frozen=True)
class LayerRecord:
    """One layer's input and output of one batch."""

    path: str
    layer: Layer
    input: torch.Tensor
    output: torch.Tensor


def _build_stack(n_in: int, entries: list[dict], context: LayerContext) -> nn.ModuleList:
    layers = nn.ModuleList()
    for entry in entries:
        layers.append(build_layer(n_in, entry, context))
        n_in = layers[-1].output_size
    return layers


class Network(nn.Module):
    """Layers applied in order, then one stack of layers per head (if any)."""

    def __init__(self, config: dict, generator: torch.Generator):
        super().__init__()
        layout = config["network_layout"]
        context = LayerContext(neuron_params_from_config(config), generator)
        self.n_inputs = layout["n_inputs"]
        self.layers = _build_stack(self.n_inputs, layout["layers"], context)
        trunk_size = self.layers[-1].output_size
        self.heads = nn.ModuleDict({name: _build_stack(trunk_size, entries, context)
                                    for name, entries in (layout.get("heads") or {}).items()})

    def load_parameters_(self, parameters: dict, source: str = "checkpoint") -> None:
        """Load a state dict (a checkpoint's parameters); ValueError naming `source` when
        it does not fit this network (missing, extra or mis-shaped parameters)."""
        try:
            self.load_state_dict(parameters)
        except RuntimeError as error:
            raise ValueError(f"{source} does not fit the network of its config: {error}") \
                from error

    def named_layers(self) -> list[tuple[str, Layer]]:
        """(path, layer) of every layer: the trunk's, then each head's, in order."""
        named = [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]
        for head, stack in self.heads.items():
            named += [(f"heads.{head}.{i}", layer) for i, layer in enumerate(stack)]
        return named

    @property
    def spiking_layers(self) -> list[Layer]:
        return [layer for _, layer in self.named_layers() if layer.spiking]

    @property
    def input_kind(self) -> str:
        """"spiking" if the first layer takes spike times, else "rate"."""
        return self.layers[0].kind

    def forward(self, x: torch.Tensor, backends: Sequence, settings: RunSettings):
        """(output, records) of a batch x [B, n_inputs]; `backends` has one entry per
        layer of `named_layers()`."""
        named = self.named_layers()
        if len(backends) != len(named):
            raise ValueError(f"the network has {len(named)} layers but {len(backends)} "
                             f"backends were given (one per layer)")
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"network input must have shape [batch, {self.n_inputs}], "
                             f"got {tuple(x.shape)}")
        records = []
        backend_of = dict(zip((path for path, _ in named), backends))

        def run(prefix: str, stack: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
            for i, layer in enumerate(stack):
                path = f"{prefix}.{i}"
                out = layer(h, backend_of[path], settings)
                records.append(LayerRecord(path, layer, h, out))
                h = out
            return h

        trunk = run("layers", self.layers, x)
        if not self.heads:
            return trunk, records
        return {head: run(f"heads.{head}", stack, trunk)
                for head, stack in self.heads.items()}, records
