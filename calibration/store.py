"""Per-chip BrainScaleS-2 calibration: the record, its HDF5 file format and the validating loader.

A calibration describes what one chip's 512 neuron circuits really are after the
calibration routine trimmed them towards common targets (fixed-pattern noise stays
at the percent level). File layout (HDF5, one file per chip):

    /                       attrs: format = "snnsim-bss2-calibration", format_version = 1,
                                   chip_id, created (ISO 8601, UTC), time_scale_us,
                                   generator (how the values were obtained), and the targets
                                   target_tau_mem_us, target_tau_syn_us, target_threshold_cadc,
                                   target_leak_cadc, target_reset_cadc, target_refractory_us
    /neurons/tau_mem        float64 [512], attr units = "us"    membrane time constant
    /neurons/tau_syn        float64 [512], attr units = "us"    synaptic time constant
    /neurons/threshold      float64 [512], attr units = "CADC"  spike threshold
    /neurons/leak           float64 [512], attr units = "CADC"  leak (resting) potential
    /neurons/synaptic_gain  float64 [512], attr units = "1"     synaptic efficacy relative
                                                                to the calibration target
    /spread/<same names>    float64 [512], same units           measured standard deviation
                                                                of each estimate
    /analog/gain            float64 [512], attr units = "CADC/(input*weight)"   optional:
                            the analog matrix-multiply ("hagen") mode's gain of each neuron
                            column, ADC steps per unit of 5-bit input x 6-bit weight x send
    /analog/noise_std       float64 [512], attr units = "CADC"  optional: standard deviation
                            of the membrane noise at the ADC, per neuron column
    /analog/spread/<same names>                                 standard deviation of each
                                                                estimate (as /spread)

The `/analog` group was added after the first files were written (same format_version:
the group is additive, so older snnsim versions still read newer files). A file without
it loads with `analog = None`; `Calibration.analog_params()` then returns the documented
defaults (`DEFAULT_ANALOG`: hxtorch's mock parameters, gain 0.0012 and noise_std 2.0 on
every column) and `summary()` says so. How the mock measures and draws these values:
`calibration.mock`; how the matrix-multiply mode uses them: `hw.analog`.

Voltages are in CADC units (the on-chip 8-bit ADC, 0..255), times in microseconds
of chip time. `time_scale_us` is the chip time of one model time unit: the model's
tau_s = 1 is `time_scale_us` microseconds (published: 6 us).

Conversion to the model (`Calibration.model_params`), with the hardware model
(published: E_L = 0.7, theta = 1.08, g_L = 4, tau_s = 1) anchored at the targets:

    tau_model      = tau_us / time_scale_us * model.tau_syn
    V_model(v)     = model.leak + (v - target_leak) * k,
                     k = (model.threshold - model.leak) / (target_threshold - target_leak)
    threshold_j    = V_model(threshold_cadc_j),   leak_j = V_model(leak_cadc_j)
    g_leak         = model.g_leak (per-neuron leak-conductance differences are part of
                     the measured synaptic gain, since only g_L (theta - E_L) / gain matters)

so a neuron exactly at the targets is the hardware model, and the drive needed to
fire, g_L (theta_j - E_L,j) = g_L k (threshold_cadc_j - leak_cadc_j), carries the
measured threshold-to-leak distance of each neuron.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from snnsim.atomic import atomic_path
from snnsim.params import NeuronParams

FORMAT_NAME = "snnsim-bss2-calibration"
FORMAT_VERSION = 1
N_NEURONS = 512  # neuron circuits on one chip: 2 hemispheres x 256
CADC_RANGE = (0.0, 255.0)

# Per-neuron quantities: units and the range a calibrated neuron must lie in.
NEURON_QUANTITIES: dict[str, tuple[str, float, float]] = {
    "tau_mem": ("us", 0.1, 1000.0),
    "tau_syn": ("us", 0.1, 1000.0),
    "threshold": ("CADC", *CADC_RANGE),
    "leak": ("CADC", *CADC_RANGE),
    "synaptic_gain": ("1", 0.05, 20.0),
}
TARGET_ATTRS = ("target_tau_mem_us", "target_tau_syn_us", "target_threshold_cadc",
                "target_leak_cadc", "target_reset_cadc", "target_refractory_us")
# The published calibration of the fastAndDeep hardware experiments.
PUBLISHED_TARGETS = {
    "target_tau_mem_us": 6.0,
    "target_tau_syn_us": 6.0,
    "target_threshold_cadc": 150.0,
    "target_leak_cadc": 80.0,
    "target_reset_cadc": 80.0,
    "target_refractory_us": 16.0,
}
PUBLISHED_TIME_SCALE_US = 6.0

# The analog matrix-multiply mode's per-column quantities: units and valid range. hxtorch
# accepts a gain in (0, 1]; the ADC spans 256 steps, so noise beyond 64 steps is no chip.
ANALOG_QUANTITIES: dict[str, tuple[str, float, float]] = {
    "gain": ("CADC/(input*weight)", 1e-6, 1.0),
    "noise_std": ("CADC", 0.0, 64.0),
}
# What a file without the /analog group stands for: hxtorch's `MockParameter` defaults.
DEFAULT_ANALOG = {"gain": 0.0012, "noise_std": 2.0}


@dataclass(frozen=True, eq=False)
class AnalogParams:
    """Per-column gain and noise of the matrix-multiply mode, and whether they were measured."""

    gain: np.ndarray        # [512], ADC steps per (input x weight x send)
    noise_std: np.ndarray   # [512], ADC steps
    measured: bool          # False: the file predates the analog calibration (defaults)


class CalibrationError(ValueError):
    """A calibration file or record is missing something or holds invalid values."""


@dataclass(frozen=True, eq=False)
class Calibration:
    """Measured parameters of the 512 neuron circuits of one chip (see the module docstring)."""

    chip_id: str
    created: str
    time_scale_us: float
    neurons: dict[str, np.ndarray]
    spread: dict[str, np.ndarray]
    targets: dict[str, float] = field(default_factory=lambda: dict(PUBLISHED_TARGETS))
    generator: str = ""
    source: Path | None = None  # the file it was loaded from, if any
    # The matrix-multiply mode's {"gain", "noise_std"} per column and their estimates'
    # spread; None for files written before the analog calibration existed.
    analog: dict[str, np.ndarray] | None = None
    analog_spread: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        where = str(self.source) if self.source is not None else f"calibration of {self.chip_id!r}"
        _check_record(self, where)
        for group in (self.neurons, self.spread, self.analog or {}, self.analog_spread or {}):
            for name in list(group):
                group[name] = np.array(group[name], dtype=np.float64)
                group[name].setflags(write=False)

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the file this calibration was loaded from (None if not from a file)."""
        return None if self.source is None else file_sha256(self.source)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the HDF5 file atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["chip_id"] = self.chip_id
            f.attrs["created"] = self.created
            f.attrs["time_scale_us"] = float(self.time_scale_us)
            f.attrs["generator"] = self.generator
            for name in TARGET_ATTRS:
                f.attrs[name] = float(self.targets[name])
            for group, values in (("neurons", self.neurons), ("spread", self.spread)):
                g = f.create_group(group)
                for name, (units, _, _) in NEURON_QUANTITIES.items():
                    d = g.create_dataset(name, data=np.asarray(values[name], dtype=np.float64))
                    d.attrs["units"] = units
            if self.analog is not None:
                g = f.create_group("analog")
                spread = g.create_group("spread")
                for name, (units, _, _) in ANALOG_QUANTITIES.items():
                    for group, values in ((g, self.analog), (spread, self.analog_spread)):
                        d = group.create_dataset(name, data=values[name])
                        d.attrs["units"] = units
        return path

    def analog_params(self) -> AnalogParams:
        """Gain and noise of every neuron column in the matrix-multiply mode (see `hw.analog`);
        the documented defaults (`DEFAULT_ANALOG`, measured=False) for a file without them."""
        if self.analog is None:
            return AnalogParams(gain=np.full(N_NEURONS, DEFAULT_ANALOG["gain"]),
                                noise_std=np.full(N_NEURONS, DEFAULT_ANALOG["noise_std"]),
                                measured=False)
        return AnalogParams(gain=self.analog["gain"].copy(),
                            noise_std=self.analog["noise_std"].copy(), measured=True)

    def model_params(self, circuits, model: NeuronParams,
                     time_scale_us: float | None = None) -> tuple[NeuronParams, np.ndarray]:
        """(per-neuron NeuronParams in model units, synaptic gain) of the given neuron circuits.

        `model` is the hardware model the targets correspond to; `time_scale_us` the chip
        time of one model unit (default: the calibration's). See the module docstring.
        Neurons whose tau_mem equals tau_syn (or 2 tau_syn) exactly are moved off by a
        relative 1e-9 so that one regime (the general one) applies to the whole layer.
        """
        circuits = np.asarray(circuits, dtype=np.int64)
        scale = self.time_scale_us if time_scale_us is None else float(time_scale_us)
        us_per_unit = scale / float(model.tau_syn)
        tau_mem = self.neurons["tau_mem"][circuits] / us_per_unit
        tau_syn = self.neurons["tau_syn"][circuits] / us_per_unit
        clash = (tau_mem == tau_syn) | (tau_mem == 2.0 * tau_syn)
        if clash.any() and not ((tau_mem == tau_syn).all() or (tau_mem == 2.0 * tau_syn).all()):
            tau_mem = np.where(clash, tau_mem * (1.0 + 1e-9), tau_mem)
        t_leak = self.targets["target_leak_cadc"]
        k = (float(model.threshold) - float(model.leak)) / (
            self.targets["target_threshold_cadc"] - t_leak)
        params = NeuronParams(
            tau_syn=tau_syn, tau_mem=tau_mem,
            threshold=float(model.leak) + (self.neurons["threshold"][circuits] - t_leak) * k,
            leak=float(model.leak) + (self.neurons["leak"][circuits] - t_leak) * k,
            g_leak=float(model.g_leak),
        )
        return params, self.neurons["synaptic_gain"][circuits].copy()

    def summary(self) -> dict:
        """Mean, standard deviation and relative spread (std/mean) of each quantity over the chip.

        The neuron quantities by name; the matrix-multiply mode's under "analog", with
        "measured" and a "note" that says where the values come from (the defaults, for a
        file written before the analog calibration existed).
        """
        out = {name: _stats(self.neurons[name], units)
               for name, (units, _, _) in NEURON_QUANTITIES.items()}
        analog = self.analog_params()
        out["analog"] = {name: _stats(getattr(analog, name), units)
                         for name, (units, _, _) in ANALOG_QUANTITIES.items()}
        out["analog"]["measured"] = analog.measured
        out["analog"]["note"] = (
            "measured per neuron column" if analog.measured else
            f"not in this file (written before the analog matrix-multiply calibration): "
            f"defaults gain = {DEFAULT_ANALOG['gain']:g}, noise_std = "
            f"{DEFAULT_ANALOG['noise_std']:g} CADC on every column (hxtorch's mock parameters); "
            f"measure the chip or regenerate a mock file to get per-chip values")
        return out


def _stats(v: np.ndarray, units: str) -> dict:
    mean = float(v.mean())
    return {"units": units, "mean": mean, "std": float(v.std()),
            "relative_spread": float(v.std() / abs(mean)) if mean != 0 else float("nan")}


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_values(where: str, dataset: str, values: np.ndarray, units: str, lo: float,
                  hi: float, allow_zero: bool = False) -> None:
    if values.shape != (N_NEURONS,):
        raise CalibrationError(f"{where}: dataset {dataset} has shape {values.shape}, expected "
                               f"({N_NEURONS},) (one value per neuron circuit)")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{where}: dataset {dataset}[{i}] = {values[i]} is not finite "
                               f"({int(bad.sum())} such values)")
    low = values < 0 if allow_zero else values < lo
    if low.any() or (values > hi).any():
        i = int(np.flatnonzero(low | (values > hi))[0])
        kind = "negative" if values[i] < 0 else "out of range"
        expected = ">= 0" if allow_zero else f"in [{lo:g}, {hi:g}] {units}"
        raise CalibrationError(f"{where}: dataset {dataset}[{i}] = {values[i]:g} {units} is "
                               f"{kind}; expected {expected}")


def _check_record(cal: Calibration, where: str) -> None:
    if not isinstance(cal.chip_id, str) or not cal.chip_id:
        raise CalibrationError(f"{where}: chip_id must be a non-empty string, got {cal.chip_id!r}")
    if not (isinstance(cal.time_scale_us, (int, float)) and math.isfinite(cal.time_scale_us)
            and cal.time_scale_us > 0):
        raise CalibrationError(f"{where}: time_scale_us must be a positive number of "
                               f"microseconds, got {cal.time_scale_us!r}")
    for name in TARGET_ATTRS:
        value = cal.targets.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CalibrationError(f"{where}: target {name} must be a finite number, got {value!r}")
    if cal.targets["target_threshold_cadc"] <= cal.targets["target_leak_cadc"]:
        raise CalibrationError(f"{where}: target_threshold_cadc "
                               f"({cal.targets['target_threshold_cadc']}) must be above "
                               f"target_leak_cadc ({cal.targets['target_leak_cadc']})")
    for group, values in (("neurons", cal.neurons), ("spread", cal.spread)):
        for name, (units, lo, hi) in NEURON_QUANTITIES.items():
            if name not in values:
                raise CalibrationError(f"{where}: dataset /{group}/{name} is missing")
            array = np.asarray(values[name], dtype=np.float64)
            _check_values(where, f"/{group}/{name}", array, units, lo, hi,
                          allow_zero=group == "spread")
    if (cal.analog is None) != (cal.analog_spread is None):
        raise CalibrationError(f"{where}: the analog values and their spread come together "
                               f"(got only one of them)")
    if cal.analog is not None:
        for group, values in (("analog", cal.analog), ("analog/spread", cal.analog_spread)):
            for name, (units, lo, hi) in ANALOG_QUANTITIES.items():
                if name not in values:
                    raise CalibrationError(f"{where}: dataset /{group}/{name} is missing")
                array = np.asarray(values[name], dtype=np.float64)
                _check_values(where, f"/{group}/{name}", array, units, lo, hi,
                              allow_zero=group != "analog" or name == "noise_std")
    above = cal.neurons["threshold"] - cal.neurons["leak"]
    if (above <= 0).any():
        i = int(np.flatnonzero(above <= 0)[0])
        raise CalibrationError(f"{where}: neuron {i} has threshold {cal.neurons['threshold'][i]:g} "
                               f"CADC not above its leak {cal.neurons['leak'][i]:g} CADC; it "
                               f"would fire without input")


def _read_attr(where: str, f: h5py.File, name: str):
    if name not in f.attrs:
        raise CalibrationError(f"{where}: attribute {name!r} is missing")
    value = f.attrs[name]
    return value.decode() if isinstance(value, bytes) else value


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read and validate a calibration file; CalibrationError names the file, dataset and value."""
    path = Path(path).expanduser()
    where = str(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {where} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise CalibrationError(f"{where}: not a readable HDF5 file ({error})") from error
    with f:
        fmt = _read_attr(where, f, "format")
        if fmt != FORMAT_NAME:
            raise CalibrationError(f"{where}: attribute format is {fmt!r}, expected {FORMAT_NAME!r}")
        version = int(_read_attr(where, f, "format_version"))
        if version != FORMAT_VERSION:
            raise CalibrationError(f"{where}: format_version {version} is not supported "
                                   f"(this snnsim reads version {FORMAT_VERSION})")
        attrs = {name: _read_attr(where, f, name)
                 for name in ("chip_id", "created", "time_scale_us", *TARGET_ATTRS)}
        groups = {group: _read_group(where, f, group, NEURON_QUANTITIES)
                  for group in ("neurons", "spread")}
        analog = analog_spread = None
        if "analog" in f:
            analog = _read_group(where, f, "analog", ANALOG_QUANTITIES)
            analog_spread = _read_group(where, f, "analog/spread", ANALOG_QUANTITIES)
        generator = f.attrs.get("generator", "")
    try:
        time_scale = float(attrs["time_scale_us"])
        targets = {name: float(attrs[name]) for name in TARGET_ATTRS}
    except (TypeError, ValueError) as error:
        raise CalibrationError(f"{where}: time scale and targets must be numbers ({error})") \
            from error
    return Calibration(chip_id=str(attrs["chip_id"]), created=str(attrs["created"]),
                       time_scale_us=time_scale, neurons=groups["neurons"],
                       spread=groups["spread"], targets=targets,
                       generator=generator.decode() if isinstance(generator, bytes)
                       else str(generator),
                       source=path.resolve(), analog=analog, analog_spread=analog_spread)


def _read_group(where: str, f: h5py.File, group: str,
                quantities: dict[str, tuple[str, float, float]]) -> dict[str, np.ndarray]:
    """The datasets of one group, each numeric and in its documented units (not yet range-checked)."""
    out = {}
    for name, (units, _, _) in quantities.items():
        key = f"{group}/{name}"
        if key not in f:
            raise CalibrationError(f"{where}: dataset /{key} is missing")
        dataset = f[key]
        if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiu":
            raise CalibrationError(f"{where}: /{key} must be a numeric dataset, got "
                                   f"{getattr(dataset, 'dtype', type(dataset).__name__)}")
        found = dataset.attrs.get("units")
        found = found.decode() if isinstance(found, bytes) else found
        if found != units:
            raise CalibrationError(f"{where}: dataset /{key} has units {found!r}, "
                                   f"expected {units!r}")
        out[name] = np.asarray(dataset[()], dtype=np.float64)
    return out
