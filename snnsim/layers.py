"""Layers: `nn.Module`s registered by a type name and built from their config entry.

The layer contract (every model family follows it):

* class attributes `type_name` (the config's `type:`), `config_fields` (the schema of
  its config entry, see `snnsim.schema.Field`), `example_entry` (a small valid entry,
  which the conformance tests build) and `kind`: ``"spiking"`` (input and
  output are spike times; the run's spike backend computes it) or ``"rate"`` (real
  values; the run's rate backend computes its matrix products);
* built as `cls(n_inputs, entry, context)`; `output_size` is its number of outputs;
* `forward(x, backend, settings)` with the backend the run chose for this layer;
* its parameters are `nn.Parameter`s and its untrained state registered buffers, so
  optimisers and checkpoints treat every layer alike;
* optional hooks the training loop calls when present:
  `extra_loss()` (added to the task's loss), `local_update(layer_input, layer_output)`
  (non-gradient learning; called under `no_grad` after the optimiser step with the
  layer's own input and output of the batch), `constrain_(settings)` (after each
  step: clipping, unit-norm rows, positivity), `epoch_end(epoch)` (schedules; may
  return {series name: value} to record in the metrics), `parameter_groups()`
  (optimiser groups with their own options, e.g. positions with another learning rate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from snnsim.config import LIF_LAYER_FIELDS
from snnsim.errors import ConfigError
from snnsim.params import NeuronParams
from snnsim.registry import LAYERS
from snnsim.schema import OFF, Field, off_or_positive, one_of
from snnsim.spike_times import first_spike_times


@dataclass(frozen=True)
class RunSettings:
    """How layers compute in this run: training-time options shared by all layers."""

    max_dw_norm: float | None = None
    rounding_precision: float | None = None
    clip_weights_max: float | None = None


@dataclass(frozen=True)
class LayerContext:
    """What a layer is built with besides its own entry."""

    neuron_params: NeuronParams
    generator: torch.Generator


class Layer(nn.Module):
    """Base of all layers: the contract in the module docstring."""

    type_name: ClassVar[str]
    config_fields: ClassVar[dict[str, Field]]
    kind: ClassVar[str]
    example_entry: ClassVar[dict]  # a small valid entry: docs and the conformance tests
    random_init: ClassVar[bool] = True  # False: its initial state does not depend on the seed

    def __init__(self, n_inputs: int, entry: dict):
        super().__init__()
        self.n_inputs = n_inputs
        self.output_size = entry["size"]

    @property
    def spiking(self) -> bool:
        return self.kind == "spiking"

    @classmethod
    def check_entry(cls, entry: dict, where: str) -> None:
        """Checks across the keys of a validated entry (ConfigError naming `where`)."""


@LAYERS.register
class LIFLayer(Layer):
    """LIF neurons mapping input spike times (plus bias spikes) to first output spike times.

    The bias spikes are appended after the inputs, as in the published code, so the
    weight matrix has shape [n_inputs + n_biases, size] with the bias rows last.
    With `rounding_precision` p the forward pass uses round(w/p) p and the gradient
    passes straight through to the float weights (hardware-aware training); with
    `clip_weights_max` c the weights are clamped to [-c, c] after every step.
    """

    type_name = "lif_ttfs"
    config_fields = LIF_LAYER_FIELDS
    kind = "spiking"
    example_entry: ClassVar[dict] = {
        "type": "lif_ttfs", "size": 6, "n_biases": 1, "bias_times": [0.9],
        "weight_mean": 1.5, "weight_stdev": 0.8}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry)
        self.size = entry["size"]
        self.neuron_params = context.neuron_params
        self.max_num_missing_spikes = entry["max_num_missing_spikes"]
        weight = torch.empty(n_inputs + entry["n_biases"], self.size, dtype=torch.float64)
        weight.normal_(entry["weight_mean"], entry["weight_stdev"], generator=context.generator)
        self.weight = nn.Parameter(weight)
        self.register_buffer("bias_times", torch.tensor(entry["bias_times"], dtype=torch.float64))

    @classmethod
    def check_entry(cls, entry: dict, where: str) -> None:
        if len(entry["bias_times"]) != entry["n_biases"]:
            raise ConfigError(f"{where}: n_biases = {entry['n_biases']} but bias_times "
                              f"{entry['bias_times']!r}; give one time per bias")
        for t in entry["bias_times"]:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
                raise ConfigError(f"{where}: bias time {t!r}: expected a time >= 0")

    def rounded_weight(self, precision: float) -> torch.Tensor:
        """The weights on the grid of `rounding_precision` p: round(w / p) p (what the
        forward pass uses when p is set)."""
        return torch.round(self.weight / precision) * precision

    def forward(self, t_in: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        t_in = torch.cat([t_in, self.bias_times.expand(t_in.shape[0], -1)], 1)
        w = self.weight
        if settings.rounding_precision:   # rounded forward, straight-through backward
            w = w + (self.rounded_weight(settings.rounding_precision) - w).detach()
        return first_spike_times(t_in, w, self.neuron_params, backend,
                                 max_dw_norm=settings.max_dw_norm)

    def constrain_(self, settings: RunSettings) -> None:
        if settings.clip_weights_max:
            self.weight.clamp_(-settings.clip_weights_max, settings.clip_weights_max)


# -- rate layers ---------------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda a: a,
}


def init_weight_(weight: torch.Tensor, scheme: str, scale: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Initialise a weight [fan_in, fan_out] in place.

        lecun_normal:  N(0, scale^2 / fan_in)
        he_normal:     N(0, 2 scale^2 / fan_in)
        uniform:       U(-scale / sqrt(fan_in), scale / sqrt(fan_in))
    """
    fan_in = weight.shape[0]
    with torch.no_grad():
        if scheme == "uniform":
            bound = scale / math.sqrt(fan_in)
            return weight.uniform_(-bound, bound, generator=generator)
        gain = 2.0 if scheme == "he_normal" else 1.0
        return weight.normal_(0.0, scale * math.sqrt(gain / fan_in), generator=generator)


INIT_SCHEMES = ("lecun_normal", "he_normal", "uniform")

LINEAR_FIELDS = {
    "type": Field((str,), "linear"),
    "size": Field((int,), None, lambda v: v > 0, "an integer > 0", required=True),
    "activation": Field((str,), "relu", one_of(*ACTIVATIONS), ", ".join(ACTIVATIONS)),
    "init": Field((str,), "lecun_normal", one_of(*INIT_SCHEMES), ", ".join(INIT_SCHEMES)),
    "init_scale": Field((int, float), 1.0, lambda v: v > 0, "a number > 0"),
    "bias": Field((bool,), True),
    "weight_max": Field((int, float) + OFF, None, off_or_positive,
                        "a number > 0 (clamp the weights to +-weight_max after each step), "
                        "or false/null"),
}


class TorchRate:
    """The rate backend of the `cpu`, `torch` and `cuda` runs: plain torch on the tensors'
    device, y = x W + b."""

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return x @ weight if bias is None else torch.addmm(bias, x, weight)

    def __repr__(self) -> str:
        return "TorchRate()"


@LAYERS.register
class LinearLayer(Layer):
    """A dense rate layer, y = f(x W + b), W [n_inputs, size], f the activation.

    The matrix product runs on the run's rate backend (torch on the CPU or GPU, or the
    chip's analog matrix-multiply mode for `bss2`); f and the bias are digital.
    """

    type_name = "linear"
    config_fields = LINEAR_FIELDS
    kind = "rate"
    example_entry: ClassVar[dict] = {"type": "linear", "size": 6, "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry)
        self.activation_name = entry["activation"]
        self.weight_max = entry["weight_max"]
        weight = torch.empty(n_inputs, entry["size"], dtype=torch.float64)
        self.weight = nn.Parameter(init_weight_(weight, entry["init"], entry["init_scale"],
                                                context.generator))
        self.bias = (nn.Parameter(torch.zeros(entry["size"], dtype=torch.float64))
                     if entry["bias"] else None)

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        return ACTIVATIONS[self.activation_name](backend.linear(x, self.weight, self.bias))

    def constrain_(self, settings: RunSettings) -> None:
        if self.weight_max:
            self.weight.clamp_(-self.weight_max, self.weight_max)


def build_layer(n_inputs: int, entry: dict, context: LayerContext) -> Layer:
    """The registered layer of `entry["type"]`, built from its validated entry."""
    return LAYERS.get(entry["type"])(n_inputs, entry, context)
