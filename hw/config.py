"""`HardwareConfig`: the `hardware:` section of a config, validated, with the published defaults.

Every default is the published BrainScaleS-2 setup of the fastAndDeep experiments,
so a config without a hardware section runs as published. Keys (YAML):

    calibration: mock_chip_a.h5   # path, relative to the config file's folder; default:
                                  # the shipped mock chip a
    scale_weights: 30             # 6-bit value = round(w * scale_weights), clipped to +-63
    n_input_repetitions: 5        # each input and bias spike drives this many row pairs
    time_scale_us: 6.0            # chip microseconds of one model time unit (tau_s = 1)
    sample_gap: 30.0              # model time between samples in the batch's spike train
    jitter: 0.02                  # std of the spike-time jitter, model time units
    drop_probability: 0.0         # chance that a recorded output spike is lost
    retries: 5                    # re-runs of a stalled / truncated run before giving up
    backoff_s: 0.1                # wait before retry k: backoff_s * 2**k seconds
    timeout_s: 10.0               # wall-clock limit of one run on a real chip
    connection: mock              # mock | real
    seed: 0                       # seed of the session's RNG (jitter, dropped spikes)
    weight_overflow: clip         # clip | error: weights beyond +-63 / scale_weights
    model_neuron_params: {leak: 0.7, threshold: 1.08, g_leak: 4.0, tau_syn: 1.0}
                                  # the hardware model the calibration targets map to
    analog:                       # rate layers on the analog matrix-multiply mode (hw.analog)
      input_max: [1.0, 4.0]       # float input mapped to the largest 5-bit input (31)
      weight_max: 0.5             # float weight mapped to the largest 6-bit weight (63)
      num_sends: [4, 8]           # times each input is sent (multiplies the gain)
      wait_between_events: 5      # FPGA cycles between sends (real chip only)
      noise_scale: 1.0            # mock only: times the calibrated membrane noise (0: none)
      overflow: clip              # clip | error: inputs outside [0, input_max], |w| > weight_max
      saturation_gradient: cancel # cancel | pass: no gradient through saturated outputs and
                                  # clamped inputs, or hxtorch's pure straight-through

In `analog`, `input_max`, `weight_max` and `num_sends` take one value for every rate
layer or a list: layer i uses entry i, and the last entry holds for every deeper layer
(so the defaults give the first layer, which sees the data in [0, 1], its own input range,
and every hidden layer another). The defaults come from `benchmarks/analog_mnist.py`
(784-500-10 ReLU MNIST trained in the loop): hidden ReLU activations seldom exceed 4
(about 0.02 % clipped), and with 4 and 8 sends one ADC step is 0.04-0.07 (first layer)
and 0.09-0.14 (second) in float units on mock chips of mean gain 0.0015-0.0009, so that
the membrane noise (about 2 steps per block of 128 inputs) stays well below the trained
network's margins while fewer than 0.3 % of the outputs saturate (the logits' range is
+-11 to +-18).

The keys of the published `hx_settings.yaml` are accepted as aliases: `taum`
(= time_scale_us), `neuron_params` (= model_neuron_params) and `synapse_bias`
(the synapse DAC bias, recorded for the real chip; the mock does not use it).
The default jitter, 0.02 tau_s = 0.12 us, is of the order of the trial-to-trial
spike-time variation of BrainScaleS-2 neurons; measure yours and set it.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from calibration import default_calibration_path
from snnsim.params import NeuronParams

CONNECTIONS = ("mock", "real")
WEIGHT_OVERFLOW = ("clip", "error")
PUBLISHED_MODEL_NEURON_PARAMS = {"leak": 0.7, "threshold": 1.08, "g_leak": 4.0, "tau_syn": 1.0}
MODEL_PARAM_KEYS = ("tau_syn", "tau_mem", "threshold", "leak", "g_leak")
ALIASES = {"taum": "time_scale_us", "neuron_params": "model_neuron_params"}
ANALOG_OVERFLOW = ("clip", "error")
SATURATION_GRADIENT = ("cancel", "pass")


@dataclass(frozen=True)
class AnalogConfig:
    """Settings of the analog matrix-multiply mode (the `analog:` subsection; see `hw.analog`).

    `input_max`, `weight_max` and `num_sends` hold one entry per layer, the last one for
    every deeper layer; `layer(index)` picks a layer's values.
    """

    input_max: tuple[float, ...] = (1.0, 4.0)
    weight_max: tuple[float, ...] = (0.5,)
    num_sends: tuple[int, ...] = (4, 8)
    wait_between_events: int = 5
    noise_scale: float = 1.0
    overflow: str = "clip"
    saturation_gradient: str = "cancel"

    def __post_init__(self) -> None:
        for name, check, expected in _ANALOG_CHECKS:
            value = getattr(self, name)
            values = value if name in _ANALOG_PER_LAYER else (value,)
            if (name in _ANALOG_PER_LAYER and (not isinstance(value, tuple) or not value)) \
                    or not all(check(v) for v in values):
                raise ValueError(f"hardware.analog.{name} = {_plain(value)!r} is invalid; "
                                 f"expected {expected}")

    def layer(self, index: int) -> tuple[float, float, int]:
        """(input_max, weight_max, num_sends) of rate layer `index`."""
        if not _is_int(index) or index < 0:
            raise ValueError(f"layer index must be an integer >= 0, got {index!r}")
        return tuple(getattr(self, name)[min(index, len(getattr(self, name)) - 1)]
                     for name in _ANALOG_PER_LAYER)

    @classmethod
    def from_dict(cls, d: dict | None) -> AnalogConfig:
        """Build from the `analog:` mapping (a number or a list for the per-layer keys)."""
        if d is None:
            return cls()
        if isinstance(d, AnalogConfig):
            return d
        if not isinstance(d, dict):
            raise TypeError(f"hardware.analog must be a mapping of "
                            f"{', '.join(f.name for f in fields(cls))}, got {d!r}")
        valid = [f.name for f in fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown key hardware.analog.{key}{hint} (valid keys: "
                                 f"{', '.join(valid)})")
            kind = _ANALOG_TYPES[key]
            if key in _ANALOG_PER_LAYER:
                entries = value if isinstance(value, (list, tuple)) else [value]
                kwargs[key] = tuple(_analog_coerce(key, v, value, kind) for v in entries)
            else:
                kwargs[key] = _analog_coerce(key, value, value, kind)
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """Plain form: one number where a per-layer key has one entry, else a list."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class HardwareConfig:
    """Settings of a BrainScaleS-2 run (see the module docstring for every key)."""

    calibration: Path = field(default_factory=default_calibration_path)
    scale_weights: float = 30.0
    n_input_repetitions: int = 5
    time_scale_us: float = 6.0
    sample_gap: float = 30.0
    jitter: float = 0.02
    drop_probability: float = 0.0
    retries: int = 5
    backoff_s: float = 0.1
    timeout_s: float = 10.0
    connection: str = "mock"
    seed: int = 0
    weight_overflow: str = "clip"
    synapse_bias: int | None = None
    model_neuron_params: NeuronParams = field(
        default_factory=lambda: NeuronParams(**PUBLISHED_MODEL_NEURON_PARAMS))
    analog: AnalogConfig = field(default_factory=AnalogConfig)

    def __post_init__(self) -> None:
        for name, check, expected in _CHECKS:
            value = getattr(self, name)
            if not check(value):
                raise ValueError(f"hardware.{name} = {value!r} is invalid; expected {expected}")
        if not isinstance(self.model_neuron_params, NeuronParams):
            raise TypeError("hardware.model_neuron_params must be a NeuronParams")
        if self.model_neuron_params.n_neurons is not None:
            raise ValueError("hardware.model_neuron_params must hold one value per field "
                             "(the model the calibration targets map to), not per-neuron arrays")
        if not isinstance(self.analog, AnalogConfig):
            raise TypeError("hardware.analog must be an AnalogConfig")

    @property
    def max_weight(self) -> float:
        """Largest |w| representable on one synapse: 63 / scale_weights."""
        return 63.0 / self.scale_weights

    @classmethod
    def from_dict(cls, d: dict | None, base_dir: str | Path | None = None) -> HardwareConfig:
        """Build from a config's `hardware:` mapping; `base_dir` resolves a relative calibration.

        Unknown keys and out-of-range values raise ValueError, wrong types TypeError, naming
        the key, the value and what was expected (for an unknown key, the nearest valid one).
        """
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise TypeError(f"the hardware section must be a mapping, got {type(d).__name__}")
        valid = [f.name for f in fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            name = ALIASES.get(key, key)
            if name not in valid:
                close = difflib.get_close_matches(str(key), valid + list(ALIASES), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown hardware key {key!r}{hint} (valid keys: "
                                 f"{', '.join(valid)})")
            if name in kwargs:
                raise ValueError(f"hardware key {key!r} given twice (also as an alias of "
                                 f"{name!r})")
            kwargs[name] = value
        for name, kind in _TYPES.items():
            if name in kwargs:
                kwargs[name] = _coerce(name, kwargs[name], kind)
        if "calibration" in kwargs:
            kwargs["calibration"] = _resolve_calibration(kwargs["calibration"], base_dir)
        if "model_neuron_params" in kwargs:
            kwargs["model_neuron_params"] = _model_params(kwargs["model_neuron_params"])
        if "analog" in kwargs:
            kwargs["analog"] = AnalogConfig.from_dict(kwargs["analog"])
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """Plain (YAML/JSON-ready) form; `from_dict(to_dict())` gives the same config."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["calibration"] = str(self.calibration)
        p = self.model_neuron_params
        out["model_neuron_params"] = {k: float(getattr(p, k)) for k in MODEL_PARAM_KEYS}
        out["analog"] = self.analog.to_dict()
        return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_TYPES = {"scale_weights": float, "n_input_repetitions": int, "time_scale_us": float,
          "sample_gap": float, "jitter": float, "drop_probability": float, "retries": int,
          "backoff_s": float, "timeout_s": float, "connection": str, "seed": int,
          "weight_overflow": str, "synapse_bias": int}

_CHECKS = (
    ("scale_weights", lambda v: _is_number(v) and v > 0, "a number > 0 (published: 30)"),
    ("n_input_repetitions", lambda v: _is_int(v) and 1 <= v <= 64,
     "an integer in 1..64 (published: 5)"),
    ("time_scale_us", lambda v: _is_number(v) and v > 0, "microseconds > 0 (published: 6)"),
    ("sample_gap", lambda v: _is_number(v) and v > 0,
     "model time > 0, longer than a sample's spikes (published: 30)"),
    ("jitter", lambda v: _is_number(v) and v >= 0, "a standard deviation >= 0 in model time"),
    ("drop_probability", lambda v: _is_number(v) and 0 <= v < 1, "a probability in [0, 1)"),
    ("retries", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("backoff_s", lambda v: _is_number(v) and v >= 0, "seconds >= 0"),
    ("timeout_s", lambda v: _is_number(v) and v > 0, "seconds > 0"),
    ("connection", lambda v: v in CONNECTIONS, f"one of {', '.join(CONNECTIONS)}"),
    ("seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("weight_overflow", lambda v: v in WEIGHT_OVERFLOW, f"one of {', '.join(WEIGHT_OVERFLOW)}"),
    ("synapse_bias", lambda v: v is None or (_is_int(v) and 0 <= v <= 1022),
     "a CapMem value in 0..1022 (published: 1000)"),
)


_ANALOG_PER_LAYER = ("input_max", "weight_max", "num_sends")
_ANALOG_TYPES = {"input_max": float, "weight_max": float, "num_sends": int,
                 "wait_between_events": int, "noise_scale": float, "overflow": str,
                 "saturation_gradient": str}
_ANALOG_CHECKS = (
    ("input_max", lambda v: _is_number(v) and v > 0,
     "a number > 0 or a list of them, one per layer (the last one for deeper layers)"),
    ("weight_max", lambda v: _is_number(v) and v > 0,
     "a number > 0 or a list of them, one per layer (the last one for deeper layers)"),
    ("num_sends", lambda v: _is_int(v) and 1 <= v <= 255,
     "an integer in 1..255 or a list of them, one per layer (the last one for deeper layers)"),
    ("wait_between_events", lambda v: _is_int(v) and v >= 0,
     "an integer >= 0 (FPGA cycles; hxtorch's default: 5)"),
    ("noise_scale", lambda v: _is_number(v) and v >= 0,
     "a number >= 0 (1: the calibrated noise, 0: none)"),
    ("overflow", lambda v: v in ANALOG_OVERFLOW, f"one of {', '.join(ANALOG_OVERFLOW)}"),
    ("saturation_gradient", lambda v: v in SATURATION_GRADIENT,
     f"one of {', '.join(SATURATION_GRADIENT)}"),
)


def _plain(value):
    if isinstance(value, tuple):
        return value[0] if len(value) == 1 else list(value)
    return value


def _analog_coerce(name: str, value, given, kind: type):
    """One entry of the analog section with the type checked (ints accepted for floats)."""
    if kind is float and _is_int(value):
        return float(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    expected = {n: e for n, _, e in _ANALOG_CHECKS}[name]
    raise TypeError(f"hardware.analog.{name} = {given!r} ({type(value).__name__}) has the wrong "
                    f"type; expected {expected}")


def _coerce(name: str, value, kind: type):
    """YAML gives 30 for 30.0 and the like: accept ints for floats, nothing else."""
    if kind is float and _is_int(value):
        return float(value)
    if value is None and name == "synapse_bias":
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = {n: e for n, _, e in _CHECKS}[name]
        raise TypeError(f"hardware.{name} = {value!r} ({type(value).__name__}) has the wrong "
                         f"type; expected {expected}")
    return value


def _resolve_calibration(value, base_dir) -> Path:
    if value is None:
        return default_calibration_path()
    if not isinstance(value, (str, Path)):
        raise TypeError(f"hardware.calibration = {value!r} must be a path to a calibration "
                         f"file")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(base_dir) if base_dir is not None else Path.cwd()) / path
    if not path.is_file():
        raise ValueError(f"hardware.calibration: file {path} does not exist (relative paths "
                         f"are resolved against the config file's folder; the shipped mock "
                         f"chips lie in {default_calibration_path().parent})")
    return path.resolve()


def _model_params(value) -> NeuronParams:
    if isinstance(value, NeuronParams):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"hardware.model_neuron_params must be a mapping of "
                         f"{', '.join(MODEL_PARAM_KEYS)}, got {value!r}")
    unknown = [k for k in value if k not in MODEL_PARAM_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), MODEL_PARAM_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown key hardware.model_neuron_params.{unknown[0]}{hint}")
    merged = {**PUBLISHED_MODEL_NEURON_PARAMS, **value}
    for k, v in merged.items():
        if v is not None and not _is_number(v):
            raise TypeError(f"hardware.model_neuron_params.{k} = {v!r} must be a number")
    try:
        return NeuronParams(**merged)
    except ValueError as error:
        raise ValueError(f"hardware.model_neuron_params: {error}") from error

