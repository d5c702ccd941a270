"""Rate layers on BrainScaleS-2's analog matrix-multiply ("hagen") mode, as hxtorch models it.

In this mode the synapse array multiplies a vector of 5-bit inputs by a matrix of
signed 6-bit weights in analog (an input is a train of `num_sends` pulses whose length
codes its value; a signed weight uses an excitatory and an inhibitory row), the neuron
membranes integrate the currents, and the 8-bit column ADC reads them out. hxtorch's
mock (`perceptron/detail/mac.cpp`) models one multiplication; this module implements
that model, with the gain and the noise measured per neuron column in the chip's
calibration file (`calibration.store`), and maps float layers onto it.

The chip (integers). Inputs x_int [B, N] in 0..31, weights w_int [N, M] in -63..63.
The N input rows are cut into K = ceil(N / 128) blocks of 128 rows (one synapse
array's signed height); block k runs on hemisphere k mod 2 and output j on neuron
column j mod 256 there, i.e. on circuit c(k, j) = 256 (k mod 2) + (j mod 256), whose
calibrated gain and noise are G[k, j] = gain[c(k, j)] and S[k, j] = noise_std[c(k, j)].
Per block, with z ~ N(0, 1) drawn per sample, block and output,

    v[b, k, j] = (sum over the rows i of block k of x_int[b, i] w_int[i, j]) G[k, j] n_s
                 + S[k, j] z[b, k, j]
    a_k[b, j]  = clamp(floor(v[b, k, j]), -128, 127)          (8-bit ADC)
    a[b, j]    = clamp(sum_k a_k[b, j], -128, 127)            (digital sum, int8 again)

where n_s = num_sends. With one gain and one noise for the whole chip this is hxtorch's
`mac_mock_forward` (gain in (0, 1], of order 1e-3; noise_std of order 2 ADC steps).

The float layer y = x W + b. Per layer, input_max and weight_max (`HardwareConfig.analog`)
fix the scales s_in = 31 / input_max and s_w = 63 / weight_max, and

    x_int = round(clamp(x s_in, 0, 31)),     w_int = round(clamp(W s_w, -63, 63))
    y     = a / (s_in s_w n_s g_j) + b,      g_j = (1/N) sum_i G[k(i), j]

(the bias is added digitally; g_j is column j's calibrated gain averaged over the rows,
so y estimates x W + b in float units, with the chip's quantisation, noise and
saturation). Out-of-range inputs and weights, which hxtorch rejects as integers, are
here the float mapping's saturation: they are clamped and counted (`stats`), or raise
MappingError with `overflow: error`. Negative inputs - the chip has no signed inputs -
become 0 and are counted apart (`negative_inputs`, and one warning per layer): a ReLU
layer never produces them; a tanh or identity layer before a chip layer loses its sign.

Backward (straight through, as hxtorch: rounding and floor pass gradients as identities
and the chip's multiplication is differentiated at the float values). With
R[i, j] = G[k(i), j] / g_j (1 where the gain is one value per chip),

    grad_x = g (W * R)^T,     grad_W = (x^T g) * R,     grad_b = sum_b g

which is hxtorch's grad_x = g W^T, grad_W = x^T g scaled by gain n_s, carried through the
float mapping. Saturation (`saturation_gradient` in `HardwareConfig.analog`):

* `cancel` (default): where the chip's output sits at a rail of the ADC (a = -128 or
  127, which a real chip's reply shows as well) it does not respond to x or W, so g is
  set to 0 there (not for grad_b: the bias is added after the ADC); inputs the mapping
  clamped get no gradient, and grad_W uses the clamped x. This is the exact gradient of
  the chip's ideal model - the same blocks, gains and clamps without rounding, floor and
  noise (`AnalogSession.ideal_backend`) - wherever no block saturates alone.
* `pass`: hxtorch's pure straight-through, the formula above everywhere. With SGD and
  momentum it lets a saturated output keep pulling its weights further (the chip's
  output no longer follows): `benchmarks/analog_mnist.py` with the recipe of
  `experiment_configs/linear_mnist.yaml` fell from 95 % to 73 % after epoch 7, while
  `cancel` trained to the float result.

Weights are straight through either way (a weight beyond weight_max still gets its
gradient; clip the weights to +-weight_max after each step, as hxtorch's
`clamp_weight_` does, if they may leave the range).

Connections: `MockAnalogConnection` computes the model above from the calibration (the
calibrated values are the mock chip's truth, as for the spiking mock), drawing its noise
from the session's seeded generator; `RealAnalogConnection` needs the vendor stack and
says so (`hw.connection.vendor_stack`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from calibration import Calibration, file_sha256, load_calibration
from hw.config import HardwareConfig
from hw.connection import HardwareError, vendor_stack
from hw.mapping import MappingError

log = logging.getLogger("snnsim.hw")

INPUT_MAX_VALUE = 31          # 5-bit unsigned inputs
WEIGHT_MAX_VALUE = 63         # 6-bit magnitude, sign from the row pair
ADC_MIN, ADC_MAX = -128, 127  # 8-bit ADC (and the int8 digital sum)
BLOCK_ROWS = 128              # signed rows of one synapse array
COLUMNS = 256                 # neuron columns of one hemisphere
N_HEMISPHERES = 2

STAT_KEYS = ("runs", "samples", "inputs", "clipped_inputs", "negative_inputs", "weights",
             "clipped_weights", "readouts", "saturated_readouts", "outputs",
             "saturated_outputs")


def n_blocks(n_inputs: int) -> int:
    """Blocks of 128 input rows a layer with `n_inputs` inputs is cut into."""
    return max(1, math.ceil(n_inputs / BLOCK_ROWS))


def circuits(n_inputs: int, n_outputs: int) -> np.ndarray:
    """c[k, j] [K, M]: the neuron circuit that reads block k of output j (module docstring)."""
    k = np.arange(n_blocks(n_inputs))[:, None]
    j = np.arange(n_outputs)[None, :]
    return (k % N_HEMISPHERES) * COLUMNS + j % COLUMNS


def chip_mac(x_int: torch.Tensor, w_int: torch.Tensor, gain: torch.Tensor, num_sends: int,
             noise: torch.Tensor | None = None,
             digitise: bool = True) -> tuple[torch.Tensor, dict[str, int]]:
    """(a [B, M], saturation counts): the chip's integer matrix product (module docstring).

    x_int [B, N] and w_int [N, M] hold integer values (any float dtype), gain [K, M] the
    gain of each block's column, noise [K, B, M] the membrane noise in ADC steps (S z)
    or None. The counts are `saturated_readouts` (block readings the ADC clamped) and
    `saturated_outputs` (digital sums clamped). `digitise=False` leaves out the floor:
    the chip's ideal model, differentiable by autograd.
    """
    batch, n_inputs = x_int.shape
    full = n_inputs // BLOCK_ROWS * BLOCK_ROWS
    partial = []
    if full:    # the full blocks as one batched product over views (w_int is not copied)
        xb = x_int[:, :full].reshape(batch, -1, BLOCK_ROWS).transpose(0, 1)
        partial.append(torch.bmm(xb, w_int[:full].reshape(-1, BLOCK_ROWS, w_int.shape[1])))
    if full < n_inputs:
        partial.append((x_int[:, full:] @ w_int[full:])[None])
    v = torch.cat(partial) if len(partial) > 1 else partial[0]
    v = v * (gain * num_sends)[:, None, :]                             # [K, B, M]
    if noise is not None:
        v = v + noise
    readout = torch.floor(v) if digitise else v
    total = readout.clamp(ADC_MIN, ADC_MAX).sum(0)
    counts = {"saturated_readouts": _outside(readout), "saturated_outputs": _outside(total)}
    return total.clamp(ADC_MIN, ADC_MAX), counts


def _outside(values: torch.Tensor) -> int:
    return int(torch.count_nonzero((values < ADC_MIN) | (values > ADC_MAX)))


def at_rail(a: torch.Tensor) -> torch.Tensor:
    """Where the chip's output a sits at a rail of the ADC (-128 or 127): saturated."""
    return (a <= ADC_MIN) | (a >= ADC_MAX)


@runtime_checkable
class AnalogConnection(Protocol):
    """What the session needs from a chip in the matrix-multiply mode."""

    chip_id: str

    def mac(self, x_int: torch.Tensor, w_int: torch.Tensor,
            num_sends: int) -> tuple[torch.Tensor, dict[str, int]]:
        """(ADC values a [B, M] in -128..127, saturation counts) of x_int [B, N] times
        w_int [N, M] (integer values), as `chip_mac`."""


class MockAnalogConnection:
    """A simulated chip in the matrix-multiply mode: `chip_mac` with the calibrated gain and
    noise of every column, the noise scaled by `noise_scale` and drawn from `rng`."""

    def __init__(self, calibration: Calibration, *, noise_scale: float,
                 rng: np.random.Generator):
        self.chip_id = calibration.chip_id
        analog = calibration.analog_params()
        self._gain = analog.gain
        self._noise_std = analog.noise_std * float(noise_scale)
        self.rng = rng

    def mac(self, x_int: torch.Tensor, w_int: torch.Tensor,
            num_sends: int) -> tuple[torch.Tensor, dict[str, int]]:
        c = circuits(x_int.shape[1], w_int.shape[1])
        gain = torch.from_numpy(self._gain[c]).to(x_int)
        noise_std = self._noise_std[c]
        noise = None
        if noise_std.any():
            z = self.rng.standard_normal((c.shape[0], x_int.shape[0], c.shape[1]))
            z *= noise_std[:, None, :]
            noise = torch.from_numpy(z).to(x_int)
        return chip_mac(x_int, w_int, gain, num_sends, noise)


class RealAnalogConnection:
    """A BrainScaleS-2 chip's matrix-multiply mode through the vendor stack (imported lazily)."""

    def __init__(self, calibration: Calibration, wait_between_events: int):
        found = vendor_stack()
        raise HardwareError(
            f"found the BrainScaleS-2 stack ({', '.join(found)}), but snnsim does not yet "
            f"drive its matrix-multiply mode: implement RealAnalogConnection.mac in "
            f"hw/analog.py with hxtorch.perceptron.matmul (5-bit inputs, 6-bit weights, "
            f"num_sends, wait_between_events = {wait_between_events}) against the installed "
            f"version (calibration {calibration.chip_id})")


@dataclass(frozen=True)
class LayerMapping:
    """How one rate layer's floats map onto the chip (module docstring)."""

    index: int
    input_max: float
    weight_max: float
    num_sends: int

    @property
    def input_scale(self) -> float:
        """s_in = 31 / input_max."""
        return INPUT_MAX_VALUE / self.input_max

    @property
    def weight_scale(self) -> float:
        """s_w = 63 / weight_max."""
        return WEIGHT_MAX_VALUE / self.weight_max


class AnalogSession:
    """Rate layers on one chip in the matrix-multiply mode: a mock or a real connection per
    `hardware.connection`, the calibration's per-column gains, the noise generator (seeded
    with `seed`) and the run's statistics. `connection` overrides the one the config asks
    for (tests inject a prepared one)."""

    def __init__(self, hardware: HardwareConfig, seed: int,
                 connection: AnalogConnection | None = None):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.config = hardware
        self.seed = int(seed)
        self.calibration: Calibration = load_calibration(hardware.calibration)
        self.calibration_sha256 = file_sha256(hardware.calibration)
        self.analog_params = self.calibration.analog_params()
        if not self.analog_params.measured:
            log.warning("calibration %s: analog matrix-multiply values %s",
                        hardware.calibration, self.calibration.summary()["analog"]["note"])
        self.rng = np.random.default_rng(self.seed)
        self.connection = connection if connection is not None else self._connect()
        self._counts: dict[str, dict[str, int]] = {}
        self._backends: dict[int, AnalogLinearBackend] = {}
        self._ratios: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _connect(self) -> AnalogConnection:
        c = self.config
        if c.connection == "real":
            return RealAnalogConnection(self.calibration, c.analog.wait_between_events)
        return MockAnalogConnection(self.calibration, noise_scale=c.analog.noise_scale,
                                    rng=self.rng)

    @property
    def chip_id(self) -> str:
        return self.connection.chip_id

    def layer_mapping(self, index: int) -> LayerMapping:
        """input_max, weight_max and num_sends of rate layer `index` (from `hardware.analog`)."""
        input_max, weight_max, num_sends = self.config.analog.layer(index)
        return LayerMapping(index, input_max, weight_max, num_sends)

    def linear_backend(self, index: int) -> AnalogLinearBackend:
        """The chip backend of rate layer `index` (its position in the network)."""
        if index not in self._backends:
            self._backends[index] = AnalogLinearBackend(self, self.layer_mapping(index))
            self._counts.setdefault(str(index), dict.fromkeys(STAT_KEYS, 0))
        return self._backends[index]

    def ideal_backend(self, index: int) -> IdealAnalogBackend:
        """The chip's ideal model of rate layer `index`: the chip without rounding, floor and
        noise (module docstring; what the chip backend's gradient is the exact one of)."""
        return IdealAnalogBackend(self, self.layer_mapping(index))

    def gain_ratio(self, n_inputs: int, n_outputs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(g [M]: the calibrated gain of each output averaged over the rows, R [N, M] =
        G[k(i), j] / g_j) of a layer of this shape (float64, cached: read them, do not modify them)."""
        key = (n_inputs, n_outputs)
        if key not in self._ratios:
            gain = self.analog_params.gain[circuits(n_inputs, n_outputs)]      # [K, M]
            rows = np.minimum(BLOCK_ROWS, n_inputs - BLOCK_ROWS * np.arange(len(gain)))
            mean = (rows[:, None] * gain).sum(0) / n_inputs
            ratio = np.repeat(gain / mean, rows, axis=0)
            self._ratios[key] = torch.from_numpy(mean), torch.from_numpy(ratio)
        return self._ratios[key]

    # -- bookkeeping -------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters summed over the layers: runs (forward passes), samples, inputs and those
        clipped above input_max or negative, weights and those clipped at weight_max, ADC
        readouts (sample x block x output) and those saturated, outputs and those whose
        digital sum saturated."""
        return {key: sum(c[key] for c in self._counts.values()) for key in STAT_KEYS}

    def layer_stats(self) -> dict[str, dict[str, int]]:
        """The counters of each layer, by its index (as a string)."""
        return {index: dict(c) for index, c in self._counts.items()}

    def _count(self, index: int, counts: dict[str, int]) -> None:
        target = self._counts[str(index)]
        for key, value in counts.items():
            target[key] += int(value)

    def describe(self) -> dict:
        """Which chip, calibration and layer mapping this session uses (plain data)."""
        cal = self.calibration
        summary = cal.summary()["analog"]
        return {
            "backend": "bss2",
            "mode": "analog matrix multiply",
            "connection": self.config.connection,
            "chip_id": self.chip_id,
            "calibration": {"path": str(self.config.calibration),
                            "sha256": self.calibration_sha256,
                            "chip_id": cal.chip_id, "created": cal.created,
                            "generator": cal.generator,
                            "analog_measured": self.analog_params.measured,
                            "analog_note": summary["note"],
                            "gain_mean": summary["gain"]["mean"],
                            "noise_std_mean": summary["noise_std"]["mean"]},
            "hardware_config": self.config.to_dict(),
            "layers": {str(i): {"input_max": m.input_max, "weight_max": m.weight_max,
                                "num_sends": m.num_sends}
                       for i, m in ((i, b.mapping) for i, b in sorted(self._backends.items()))},
            "seed": self.seed,
            "stats": self.stats,
            "layer_stats": self.layer_stats(),
        }

    def state_dict(self) -> dict:
        """The noise generator's state and the counters, so that a continued run draws the
        same noise as an uninterrupted one."""
        return {"rng": self.rng.bit_generator.state, "layer_stats": self.layer_stats()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for index, counts in state.get("layer_stats", {}).items():
            target = self._counts.setdefault(str(index), dict.fromkeys(STAT_KEYS, 0))
            target.update({k: int(v) for k, v in counts.items() if k in STAT_KEYS})


class AnalogLinearBackend:
    """One rate layer on the chip: `linear(x, weight, bias)` runs y = x W + b in the
    matrix-multiply mode, differentiable (straight through; module docstring)."""

    def __init__(self, session: AnalogSession, mapping: LayerMapping):
        self.session = session
        self.mapping = mapping
        self._warned_negative = False

    @property
    def index(self) -> int:
        return self.mapping.index

    def linear(self, x: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None = None) -> torch.Tensor:
        """y [B, M] of x [B, N] and weight [N, M] (+ bias [M]) on the chip."""
        _check_shapes(self.index, x, weight, bias)
        return _ChipLinear.apply(x, weight, bias, self)

    def quantize(self, x: torch.Tensor, weight: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
        """(x_int, w_int, counts of clipped / negative inputs and clipped weights) as the
        chip receives them; MappingError for out-of-range values with `overflow: error`."""
        m = self.mapping
        u = x.detach() * m.input_scale
        v = weight.detach() * m.weight_scale
        counts = {"clipped_inputs": 0, "negative_inputs": 0, "clipped_weights": 0}
        # one pass over each tensor when nothing is out of range, the common case
        u_min, u_max = (float(e) for e in torch.aminmax(u))
        v_min, v_max = (float(e) for e in torch.aminmax(v))
        if u_min < 0 or u_max > INPUT_MAX_VALUE:
            counts["clipped_inputs"] = int(torch.count_nonzero(u > INPUT_MAX_VALUE))
            counts["negative_inputs"] = int(torch.count_nonzero(u < 0))
        if max(-v_min, v_max) > WEIGHT_MAX_VALUE:
            counts["clipped_weights"] = int(torch.count_nonzero(v.abs() > WEIGHT_MAX_VALUE))
        if self.session.config.analog.overflow == "error" and any(counts.values()):
            self._check_overflow(x, weight, (u > INPUT_MAX_VALUE) | (u < 0),
                                 v.abs() > WEIGHT_MAX_VALUE)
        if counts["negative_inputs"] and not self._warned_negative:
            self._warned_negative = True
            log.warning("chip layer %d got %d negative inputs, which the matrix-multiply mode "
                        "cannot represent: they run as 0 (counted as negative_inputs); put "
                        "a non-negative activation (relu) before it", self.index,
                        counts["negative_inputs"])
        x_int = u.clamp_(0, INPUT_MAX_VALUE).round_()
        w_int = v.clamp_(-WEIGHT_MAX_VALUE, WEIGHT_MAX_VALUE).round_()
        return x_int, w_int, counts

    def _check_overflow(self, x: torch.Tensor, weight: torch.Tensor, bad_inputs: torch.Tensor,
                        bad_weights: torch.Tensor) -> None:
        m = self.mapping
        if bad_inputs.any():
            b, i = (int(a) for a in torch.nonzero(bad_inputs)[0])
            raise MappingError(
                f"chip layer {self.index}: input x[{b}, {i}] = {float(x[b, i]):g} is outside "
                f"[0, input_max = {m.input_max:g}] ({int(bad_inputs.sum())} inputs are; "
                f"hardware.analog.overflow: error)")
        if bad_weights.any():
            i, j = (int(a) for a in torch.nonzero(bad_weights)[0])
            raise MappingError(
                f"chip layer {self.index}: weight w[{i}, {j}] = {float(weight[i, j]):g} is "
                f"outside +-weight_max = {m.weight_max:g} ({int(bad_weights.sum())} weights "
                f"are; hardware.analog.overflow: error)")

    def run(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x W in float units as the chip computes it, where the chip's output saturated),
        no bias, no autograd; counted in `stats`."""
        s = self.session
        m = self.mapping
        x_int, w_int, counts = self.quantize(x, weight)
        a, saturation = s.connection.mac(x_int, w_int, m.num_sends)
        batch, n_outputs = x.shape[0], weight.shape[1]
        s._count(self.index, {
            "runs": 1, "samples": batch, "inputs": x.numel(), "weights": weight.numel(),
            "readouts": batch * n_blocks(weight.shape[0]) * n_outputs,
            "outputs": batch * n_outputs, **counts, **saturation})
        return a.to(x.dtype) / self.output_scale(weight), at_rail(a)

    def output_scale(self, weight: torch.Tensor) -> torch.Tensor:
        """s_in s_w n_s g_j [M]: ADC steps per float unit of each output."""
        m = self.mapping
        mean_gain, _ = self.session.gain_ratio(*weight.shape)
        return (m.input_scale * m.weight_scale * m.num_sends * mean_gain).to(weight)

    def weight_ratio(self, weight: torch.Tensor) -> torch.Tensor:
        """R [N, M] (module docstring) for this layer's weight, as a tensor like it."""
        return self.session.gain_ratio(*weight.shape)[1].to(weight)

    def __repr__(self) -> str:
        m = self.mapping
        return (f"AnalogLinearBackend(chip={self.session.chip_id!r}, layer={m.index}, "
                f"input_max={m.input_max:g}, weight_max={m.weight_max:g}, "
                f"num_sends={m.num_sends})")


class _ChipLinear(torch.autograd.Function):
    """Forward on the chip, backward straight through (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, backend: AnalogLinearBackend):
        y, saturated = backend.run(x, weight)
        if bias is not None:
            y = y + bias.detach()
        ctx.save_for_backward(x, weight, saturated)
        ctx.backend = backend
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, saturated = ctx.saved_tensors
        backend = ctx.backend
        ratio = backend.weight_ratio(weight)
        grad_b = grad_y.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        if backend.session.config.analog.saturation_gradient == "cancel":
            grad_y = grad_y.masked_fill(saturated, 0.0)
            inside = (x >= 0) & (x <= backend.mapping.input_max)
            x = x.clamp(0, backend.mapping.input_max)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_y @ (weight * ratio).T
            if backend.session.config.analog.saturation_gradient == "cancel":
                grad_x = grad_x * inside
        if ctx.needs_input_grad[1]:
            grad_w = (x.T @ grad_y) * ratio
        return grad_x, grad_w, grad_b, None


class IdealAnalogBackend:
    """The chip's ideal model of one rate layer: its blocks, calibrated gains and clamps,
    without rounding, floor and noise, in plain torch autograd (module docstring)."""

    def __init__(self, session: AnalogSession, mapping: LayerMapping):
        self.session = session
        self.mapping = mapping

    def linear(self, x: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(self.mapping.index, x, weight, bias)
        m = self.mapping
        gain = self.session.analog_params.gain[circuits(*weight.shape)]
        u = x.clamp(0, m.input_max) * m.input_scale
        a, _ = chip_mac(u, weight * m.weight_scale, torch.from_numpy(gain).to(weight),
                        m.num_sends, digitise=False)
        mean_gain, _ = self.session.gain_ratio(*weight.shape)
        y = a / (m.input_scale * m.weight_scale * m.num_sends * mean_gain).to(weight)
        return y if bias is None else y + bias

    def __repr__(self) -> str:
        return f"IdealAnalogBackend(layer={self.mapping.index})"


def _check_shapes(index: int, x: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None) -> None:
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[0] or 0 in weight.shape:
        raise ValueError(f"chip layer {index}: expected x [B, N] and weight [N, M] (N, M >= 1), got "
                         f"{tuple(x.shape)} and {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(f"chip layer {index}: bias has shape {tuple(bias.shape)}, expected "
                         f"({weight.shape[1]},)")
    if not (x.is_floating_point() and weight.is_floating_point()):
        raise TypeError(f"chip layer {index}: x and weight must be floating point, got "
                        f"{x.dtype} and {weight.dtype}")
