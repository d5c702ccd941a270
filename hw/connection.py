"""Connections to a BrainScaleS-2 chip: the protocol, the mock chip and the real one.

A connection is configured with a `ChipConfig` (synapse values, row labels and
signs, enabled neurons) and runs spike trains; `run` returns the recorded spikes and
the number of events the chip counted, so that a truncated reply can be recognised.

The mock chip (`MockConnection`) simulates, from a calibration file:

* every neuron circuit with its own tau_m != tau_s, threshold, leak and synaptic gain
  (converted to model units by `Calibration.model_params`), computed exactly by the
  engine's `cpu` backend in its general regime;
* the synapse array as configured: an event with label L drives every row labelled
  L, and synapse (h, row, column) adds row_sign * value * gain / scale_weights to the
  weight of circuit h*256 + column (so replicas of a source add up);
* the batch protocol: the train is simulated window by window (sample_period_us),
  each window starting from rest - the carry-over of membrane and synaptic current
  across windows, e^(-sample_gap / tau), is neglected (1e-13 at the published gap of
  30 tau_s) - and input events that arrive late land in the next window, as on the chip;
* one spike per neuron and window (its first; the reset and refractory time of the
  calibration matter only for later spikes, which the batch protocol ignores);
* spike-time jitter (Gaussian, `jitter` model units), recorded spikes lost with
  `drop_probability`, spikes after the end of the run not recorded;
* injectable faults for tests: `inject_faults("stall", "truncate", "corrupt", None, ...)`
  queues one fault per coming run.

All randomness comes from the `numpy.random.Generator` it is given (the session's).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from numba import njit

from backends import BackendUnavailableError
from backends import cpu as cpu_backend
from calibration import Calibration
from hw.mapping import N_NEURON_CIRCUITS, ChipConfig
from hw.spike_train import SpikeTrain, sort_workspace, sorted_finite_inputs
from snnsim.params import NeuronParams

FAULTS = ("stall", "truncate", "corrupt")


class HardwareError(RuntimeError):
    """A chip run failed for good (after all retries), or the chip cannot be used."""


class RunFault(RuntimeError):
    """A run failed in a way that a retry may fix."""


class RunTimeout(RunFault):
    """The run stalled: no reply within the time limit."""


class TruncatedReply(RunFault):
    """The reply holds fewer spikes than the chip counted."""


class CorruptReply(RunFault):
    """The reply holds impossible spikes (unknown neurons, times outside the run)."""


@dataclass(frozen=True, eq=False)
class RunResult:
    """The recorded spikes of one run and the chip's own count of them (None if unknown)."""

    spikes: SpikeTrain
    event_count: int | None


@runtime_checkable
class Connection(Protocol):
    """What the session needs from a chip."""

    chip_id: str

    def configure(self, chip_config: ChipConfig) -> None:
        """Write the full configuration (weights, rows, enabled neurons) to the chip."""

    def run(self, spike_train: SpikeTrain) -> RunResult:
        """Play the spike train and return the recorded spikes (raise RunFault if it failed)."""


class MockConnection:
    """A simulated chip that behaves like the calibrated one (see the module docstring)."""

    def __init__(self, calibration: Calibration, model_params: NeuronParams, *,
                 scale_weights: float, time_scale_us: float, jitter: float,
                 drop_probability: float, rng: np.random.Generator):
        self.chip_id = calibration.chip_id
        params, gain = calibration.model_params(np.arange(N_NEURON_CIRCUITS), model_params,
                                                time_scale_us)
        self._tau_mem = np.asarray(params.tau_mem)
        self._tau_syn = np.asarray(params.tau_syn)
        self._threshold = np.asarray(params.threshold)
        self._leak = np.asarray(params.leak)
        self._g_leak = params.g_leak
        self._weight_per_value = gain / scale_weights
        self._us_per_unit = time_scale_us / float(model_params.tau_syn)
        self.jitter = float(jitter)
        self.drop_probability = float(drop_probability)
        self.rng = rng
        self._config: ChipConfig | None = None
        self._faults: deque = deque()
        self._params_cache: dict[bytes, NeuronParams] = {}
        self.stats = {"runs": 0, "spikes": 0, "dropped_spikes": 0, "crossing_spikes": 0,
                      "faults_injected": 0}

    def inject_faults(self, *faults: str | None) -> None:
        """Queue faults for the coming runs, one per run (None: a healthy run)."""
        for fault in faults:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS} or None")
            self._faults.append(fault)

    def configure(self, chip_config: ChipConfig) -> None:
        self._config = chip_config.copy()

    def neuron_params(self, circuits) -> NeuronParams:
        """The model-unit parameters the mock simulates for these neuron circuits."""
        circuits = np.asarray(circuits, dtype=np.int64)
        key = circuits.tobytes()
        if key not in self._params_cache:
            self._params_cache[key] = NeuronParams(
                tau_syn=self._tau_syn[circuits], tau_mem=self._tau_mem[circuits],
                threshold=self._threshold[circuits], leak=self._leak[circuits],
                g_leak=self._g_leak)
        return self._params_cache[key]

    def _weights(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(effective weights [len(labels), n] in model units, the n circuits they reach)."""
        config = self._config
        return _label_weights(config.synapses, config.row_label, config.row_sign,
                              config.neuron_enabled, np.ascontiguousarray(labels, dtype=np.int64),
                              self._weight_per_value)

    def run(self, spike_train: SpikeTrain) -> RunResult:
        if self._config is None:
            raise HardwareError(f"mock chip {self.chip_id}: run before configure")
        fault = self._faults.popleft() if self._faults else None
        self.stats["runs"] += 1
        if fault is not None:
            self.stats["faults_injected"] += 1
        if fault == "stall":
            raise RunTimeout(f"mock chip {self.chip_id}: injected stall, no reply")
        spikes = self._simulate(spike_train)
        count = len(spikes)
        if fault == "truncate":
            spikes = SpikeTrain(spikes.times_us[: count // 2], spikes.ids[: count // 2],
                                spikes.duration_us, spikes.sample_period_us)
        elif fault == "corrupt":
            spikes = SpikeTrain(np.append(spikes.times_us, 2 * spikes.duration_us + 1.0),
                                np.append(spikes.ids, N_NEURON_CIRCUITS + 7),
                                spikes.duration_us, spikes.sample_period_us)
            count += 1
        return RunResult(spikes=spikes, event_count=count)

    def _simulate(self, train: SpikeTrain) -> SpikeTrain:
        period_us, n_windows = train.sample_period_us, train.n_windows
        empty = SpikeTrain(np.zeros(0), np.zeros(0, dtype=np.int64), train.duration_us, period_us)
        if len(train) == 0:
            return empty
        present = np.bincount(train.ids) > 0
        labels = np.flatnonzero(present)
        column_of = np.cumsum(present) - 1
        weights, circuits = self._weights(labels)
        if len(circuits) == 0:
            return empty
        t_in, n_copies = _window_inputs(train.times_us, column_of[train.ids], period_us,
                                        self._us_per_unit, n_windows, len(labels))
        if n_copies > 1:
            weights = np.tile(weights, (n_copies, 1))
        t_out = cpu_backend.forward(torch.from_numpy(t_in), torch.from_numpy(weights),
                                    self.neuron_params(circuits)).numpy()
        # The spikes in (window, neuron) order, each jittered, those within the run and not
        # dropped kept, sorted by time (stable).
        n_spikes = int(np.count_nonzero(np.isfinite(t_out)))
        noise = (self.jitter * self.rng.standard_normal(n_spikes) if self.jitter > 0
                 else np.zeros(0))
        dropped = (self.rng.random(n_spikes) < self.drop_probability
                   if self.drop_probability > 0 else np.zeros(0, dtype=bool))
        times_us, ids, counts = _recorded_spikes(t_out, circuits, noise, dropped,
                                                 period_us / self._us_per_unit,
                                                 self._us_per_unit, train.duration_us)
        self.stats["crossing_spikes"] += int(counts[0])
        self.stats["dropped_spikes"] += int(counts[1])
        self.stats["spikes"] += len(times_us)
        return SpikeTrain(times_us, ids, train.duration_us, period_us)


VENDOR_STACK = ("hxtorch", "pynn_brainscales")


def vendor_stack() -> list[str]:
    """The BrainScaleS-2 software stack's packages that import here; BackendUnavailableError,
    saying what to install where, if none does."""
    found = []
    for name in VENDOR_STACK:
        try:
            __import__(name)
            found.append(name)
        except ImportError:
            continue
    if not found:
        raise BackendUnavailableError(
            "connection 'real' needs the BrainScaleS-2 software stack (hxtorch or "
            "pynn_brainscales, with haldls/stadls/calix), which is not on PyPI: use the "
            "EBRAINS neuromorphic platform or the electronicvisions container / spack "
            "environment, on a host with a chip allocation; to work offline set "
            "`connection: mock` in the hardware section")
    return found


class RealConnection:
    """A BrainScaleS-2 chip reached through the vendor software stack (imported lazily)."""

    STACK = VENDOR_STACK

    def __init__(self, calibration: Calibration, timeout_s: float):
        found = vendor_stack()
        raise HardwareError(
            f"found the BrainScaleS-2 stack ({', '.join(found)}), but snnsim does not yet "
            f"translate its ChipConfig (synapse values, row labels and signs, enabled "
            f"neurons) into it: implement RealConnection.configure/run in hw/connection.py "
            f"against the installed version (calibration {calibration.chip_id}, run timeout "
            f"{timeout_s} s)")


@njit(cache=True)
def _recorded_spikes(t_out, circuits, noise, dropped, period, us_per_unit, duration_us):
    """(times_us, circuit ids, [crossing, dropped]) of the recorded spikes, sorted by time.

    The finite t_out[b, j] in row-major order, each plus noise[n] (if noise has entries)
    at b * period, clamped at 0, in us; kept if before duration_us and not dropped[n] (if
    dropped has entries). crossing counts the jittered local times outside [0, period),
    dropped the kept spikes that were dropped. The order is that of a stable sort by time:
    each window's spikes are sorted (stable) on their own, and the whole list only if the
    windows overlap (a spike jittered or late past its window's end)."""
    n_windows, n_neurons = t_out.shape
    times = np.empty(n_windows * n_neurons)
    ids = np.empty(n_windows * n_neurons, dtype=np.int64)
    window_times = np.empty(n_neurons)
    keys, index, scratch_keys, scratch_index, sort_counts = sort_workspace(n_neurons)
    counts = np.zeros(2, dtype=np.int64)
    n_spike = 0
    n = 0
    in_order = True
    for b in range(n_windows):
        for j in range(n_neurons):
            window_times[j] = math.inf
            if not math.isfinite(t_out[b, j]):
                continue
            t_local = t_out[b, j]
            if noise.shape[0] > 0:
                t_local = t_local + noise[n_spike]
            if t_local < 0 or t_local >= period:
                counts[0] += 1
            time_us = max(b * period + t_local, 0.0) * us_per_unit
            keep = time_us < duration_us
            if dropped.shape[0] > 0 and dropped[n_spike]:
                counts[1] += keep
                keep = False
            n_spike += 1
            if keep:
                window_times[j] = time_us
        n_kept = sorted_finite_inputs(window_times, keys, index, scratch_keys, scratch_index,
                                      sort_counts)
        for a in range(n_kept):
            if n > 0 and keys[a] < times[n - 1]:
                in_order = False
            times[n] = keys[a]
            ids[n] = circuits[index[a]]
            n += 1
    times = times[:n]
    ids = ids[:n]
    if not in_order:
        order = np.argsort(times, kind="mergesort")  # stable
        times = times[order]
        ids = ids[order]
    return times, ids, counts


@njit(cache=True)
def _window_inputs(times_us, columns, period_us, us_per_unit, n_windows, n_labels):
    """(t_in[n_windows, n_labels * copies], copies): each event at its local time in its window.

    A label may fire twice in one window (a late event of the previous sample): every
    further occurrence goes into an extra copy of the columns (with the same weights).
    Events after the end of the run are not played.
    """
    counts = np.zeros((n_windows, n_labels), dtype=np.int64)
    copies = 1
    for k in range(times_us.shape[0]):
        w = math.floor(times_us[k] / period_us)
        if w < n_windows:
            counts[w, columns[k]] += 1
            copies = max(copies, counts[w, columns[k]])
    t_in = np.full((n_windows, n_labels * copies), np.inf)
    counts[:] = 0
    for k in range(times_us.shape[0]):
        w = math.floor(times_us[k] / period_us)
        if w < n_windows:
            c = columns[k]
            t_in[w, c + counts[w, c] * n_labels] = (times_us[k] - w * period_us) / us_per_unit
            counts[w, c] += 1
    return t_in, copies


@njit(cache=True)
def _label_weights(synapses, row_label, row_sign, neuron_enabled, labels, weight_per_value):
    """`MockConnection._weights`: the summed synapse values of the enabled circuits, those
    that some label reaches, times their weight per value."""
    column_of_label = np.full(max(labels.max(), row_label.max()) + 1, -1, dtype=np.int64)
    for a in range(labels.shape[0]):
        column_of_label[labels[a]] = a
    enabled = np.flatnonzero(neuron_enabled)
    index_of_circuit = np.full(N_NEURON_CIRCUITS, -1, dtype=np.int64)
    for a in range(enabled.shape[0]):
        index_of_circuit[enabled[a]] = a
    values = _summed_synapses(synapses, row_label, row_sign, column_of_label, index_of_circuit,
                              labels.shape[0], enabled.shape[0])
    n_reached = 0
    reached = np.empty(enabled.shape[0], dtype=np.int64)
    for j in range(enabled.shape[0]):
        for a in range(labels.shape[0]):
            if values[a, j] != 0.0:
                reached[n_reached] = j
                n_reached += 1
                break
    weights = np.empty((labels.shape[0], n_reached))
    circuits = np.empty(n_reached, dtype=np.int64)
    for r in range(n_reached):
        circuits[r] = enabled[reached[r]]
        for a in range(labels.shape[0]):
            weights[a, r] = values[a, reached[r]] * weight_per_value[circuits[r]]
    return weights, circuits


@njit(cache=True)
def _summed_synapses(synapses, row_label, row_sign, column_of_label, index_of_circuit, n_labels,
                     n_circuits):
    """values[label, circuit] = sum over the rows driven by the label of sign * 6-bit value."""
    values = np.zeros((n_labels, n_circuits))
    n_columns = synapses.shape[2]
    for h in range(synapses.shape[0]):
        for row in range(synapses.shape[1]):
            label = row_label[h, row]
            if label < 0 or column_of_label[label] < 0:
                continue
            target = values[column_of_label[label]]
            for column in range(n_columns):
                j = index_of_circuit[h * n_columns + column]
                if j >= 0:
                    target[j] += row_sign[h, row] * synapses[h, row, column]
    return values
