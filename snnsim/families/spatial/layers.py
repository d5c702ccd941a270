"""Spatially embedded rate layers: every neuron ("unit") has a learnable position in the plane.

`spatial_linear`: y = f(x W + b), W [n_inputs, size], as the core's `linear` layer, plus
positions p [size, 2]. `spatial_conv2d`: y = f(conv(x, K) + b), K [size, in_channels,
k, k], a 2-D convolution whose `size` output channels are the units (one position each);
its input is the flattened [in_channels, H, W] image, its output the flattened
[size, H_out, W_out] maps (channel-major), H_out = (H + 2 padding - k) // stride + 1.
The convolution runs as im2col (`torch.nn.functional.unfold`) followed by the run's
rate backend `linear`, so it runs on every rate backend (torch on CPU/GPU, the chip's
analog mode). Both draw their weights exactly as the plain layer would from the same
generator, then the positions p ~ N(0, 1) (standard normal, as published).

Positions do not change the layer's output: with no wiring cost a spatial layer is the
plain layer. The costs (`costs.py`) are added by the `spatial_multitask` task from the
positions and weights of the layers its `costs.layers` names. Positions may train with
their own learning rate (`position_lr`, an optimiser parameter group).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from snnsim.errors import ConfigError
from snnsim.layers import (
    ACTIVATIONS,
    INIT_SCHEMES,
    LINEAR_FIELDS,
    Layer,
    LayerContext,
    LinearLayer,
    RunSettings,
    init_weight_,
)
from snnsim.registry import LAYERS
from snnsim.schema import OFF, Field, one_of, positive

from .costs import weight_cost

TRACE = "spatial_trace"  # attribute of a spatial layer's output: the spatial layers so far

POSITION_FIELDS = {
    "position_lr": Field((int, float, type(None)), None, lambda v: v is None or v > 0,
                         "a learning rate > 0 for the positions, or null (the run's)"),
}


def _attach(out: torch.Tensor, x: torch.Tensor, layer: Layer) -> torch.Tensor:
    """`out` joined to the positions' graph with weight 0 (the output is unchanged), and
    tagged with the chain of spatial layers that produced it, so that the task finds each
    layer's predecessor for the transport cost (the input has no positions: a chain
    starts at the first spatial layer after a non-spatial one or the input)."""
    out = out + 0.0 * layer.positions.sum().to(out.dtype)
    setattr(out, TRACE, getattr(x, TRACE, ()) + (layer,))
    return out


class SpatialMixin:
    """What both spatial layers share: positions, parameter groups, unit costs, masks."""

    def _init_positions(self, units: int, entry: dict, context: LayerContext) -> None:
        self.units = units
        self.position_lr = entry["position_lr"]
        positions = torch.empty(units, 2, dtype=torch.float64)
        positions.normal_(0.0, 1.0, generator=context.generator)
        self.positions = nn.Parameter(positions)

    def parameter_groups(self) -> list[dict]:
        """Weights (and bias) in the run's group; positions with `position_lr` if given."""
        weights = [p for name, p in self.named_parameters() if name != "positions"]
        positions = {"params": [self.positions]}
        if self.position_lr is not None:
            positions["lr"] = self.position_lr
        return [{"params": weights}, positions]

    def unit_weights(self) -> torch.Tensor:
        """The weights as [units, n_inputs, k] (k: the entries between a unit and an input
        value; 1 for a dense layer, the kernel for a convolution)."""
        raise NotImplementedError

    def unit_cost(self, norm: str, n_previous_units: int) -> torch.Tensor:
        """C [units, n_previous_units]: summed c(w) of the weights between unit i and the
        previous layer's unit j (whose values are inputs j*r .. (j+1)*r - 1, r the inputs
        per previous unit: a dense layer after a convolution sees r = H*W per channel)."""
        w = weight_cost(self.unit_weights(), norm).sum(-1)          # [units, n_inputs_u]
        n_in = w.shape[1]
        if n_in % n_previous_units:
            raise ValueError(f"{self.type_name}: {n_in} inputs cannot be grouped into "
                             f"{n_previous_units} previous units")
        return w.reshape(self.units, n_previous_units, n_in // n_previous_units).sum(-1)

    def unit_masks(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """{parameter name: 0/1 mask} that zeroes the incoming weights and the bias of the
        units not in `keep` (bool [units])."""
        raise NotImplementedError

    def apply_masks_(self, masks: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, mask in masks.items():
                getattr(self, name).mul_(mask.to(getattr(self, name).dtype))


@LAYERS.register
class SpatialLinear(SpatialMixin, LinearLayer):
    """A dense rate layer with learnable 2-D neuron positions (module docstring)."""

    type_name = "spatial_linear"
    config_fields: ClassVar[dict] = {**LINEAR_FIELDS, "type": Field((str,), "spatial_linear"),
                                     **POSITION_FIELDS}
    example_entry: ClassVar[dict] = {"type": "spatial_linear", "size": 6, "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry, context)
        self._init_positions(entry["size"], entry, context)

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        return _attach(super().forward(x, backend, settings), x, self)

    def unit_weights(self) -> torch.Tensor:
        return self.weight.t()[:, :, None]

    def unit_masks(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        masks = {"weight": keep[None, :].expand_as(self.weight).clone()}
        if self.bias is not None:
            masks["bias"] = keep.clone()
        return masks


CONV_FIELDS = {
    "type": Field((str,), "spatial_conv2d"),
    "size": Field((int,), None, positive, "an integer > 0 (output channels)", required=True),
    "in_channels": Field((int,), 1, positive, "an integer > 0"),
    "input_width": Field((int, type(None)), None, lambda v: v is None or v > 0,
                         "an integer > 0, or null (square input)"),
    "kernel_size": Field((int,), 3, positive, "an integer > 0"),
    "stride": Field((int,), 1, positive, "an integer > 0"),
    "padding": Field((int,), 0, lambda v: v >= 0, "an integer >= 0"),
    "activation": LINEAR_FIELDS["activation"],
    "init": Field((str,), "lecun_normal", one_of(*INIT_SCHEMES), ", ".join(INIT_SCHEMES)),
    "init_scale": LINEAR_FIELDS["init_scale"],
    "bias": Field((bool,), True),
    "weight_max": Field((int, float) + OFF, None, lambda v: v is None or v is False or (
        not isinstance(v, bool) and v > 0), "a number > 0, or false/null"),
    **POSITION_FIELDS,
}


@LAYERS.register
class SpatialConv2d(SpatialMixin, Layer):
    """A 2-D convolution whose output channels have learnable positions (module docstring).

        y[c, h, w] = f(b_c + sum_{c', u, v} K[c, c', u, v] x[c', s h + u - pad, s w + v - pad])
    """

    type_name = "spatial_conv2d"
    config_fields = CONV_FIELDS
    kind = "rate"
    example_entry: ClassVar[dict] = {
        "type": "spatial_conv2d", "size": 2, "in_channels": 1, "input_width": 5,
        "kernel_size": 3, "padding": 1, "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry)
        c = entry["in_channels"]
        where = f"{self.type_name} layer with in_channels = {c}"
        if n_inputs % c:
            raise ConfigError(f"{where}: its {n_inputs} inputs are not a whole number of "
                              f"channels")
        pixels = n_inputs // c
        width = entry["input_width"] or math.isqrt(pixels)
        if width * (pixels // width) != pixels:
            raise ConfigError(f"{where}: {pixels} inputs per channel are not a square image; "
                              f"give input_width")
        height = pixels // width
        k, s, pad = entry["kernel_size"], entry["stride"], entry["padding"]
        self.input_shape = (c, height, width)
        self.kernel_size, self.stride, self.padding = k, s, pad
        self.out_hw = ((height + 2 * pad - k) // s + 1, (width + 2 * pad - k) // s + 1)
        if min(self.out_hw) < 1:
            raise ConfigError(f"{where}: kernel_size = {k} does not fit the {height}x{width} "
                              f"input with padding {pad}")
        self.output_size = entry["size"] * self.out_hw[0] * self.out_hw[1]
        self.activation_name = entry["activation"]
        self.weight_max = entry["weight_max"]
        # drawn as a [fan_in, size] matrix like a dense layer's, fan_in = in_channels k k
        flat = torch.empty(c * k * k, entry["size"], dtype=torch.float64)
        init_weight_(flat, entry["init"], entry["init_scale"], context.generator)
        self.weight = nn.Parameter(flat.t().reshape(entry["size"], c, k, k).contiguous())
        self.bias = (nn.Parameter(torch.zeros(entry["size"], dtype=torch.float64))
                     if entry["bias"] else None)
        self._init_positions(entry["size"], entry, context)

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        batch = x.shape[0]
        image = x.reshape(batch, *self.input_shape)
        patches = F.unfold(image, self.kernel_size, padding=self.padding, stride=self.stride)
        n_patch = patches.shape[-1]                                      # H_out W_out
        rows = patches.transpose(1, 2).reshape(batch * n_patch, -1)      # [B L, c k k]
        out = backend.linear(rows, self.weight.reshape(self.units, -1).t(), self.bias)
        out = out.reshape(batch, n_patch, self.units).transpose(1, 2).reshape(batch, -1)
        return _attach(ACTIVATIONS[self.activation_name](out), x, self)

    def constrain_(self, settings: RunSettings) -> None:
        if self.weight_max:
            self.weight.clamp_(-self.weight_max, self.weight_max)

    def unit_weights(self) -> torch.Tensor:
        return self.weight.reshape(self.units, self.input_shape[0], -1)

    def unit_masks(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        masks = {"weight": keep[:, None, None, None].expand_as(self.weight).clone()}
        if self.bias is not None:
            masks["bias"] = keep.clone()
        return masks


SPATIAL_LAYERS = (SpatialLinear, SpatialConv2d)
