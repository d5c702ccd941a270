"""The batch protocol: a batch as one long spike train, and the reply cut back into samples.

As in the published experiments, sample b of a batch is offset by b * sample_gap,
so the whole batch runs as one continuous experiment of B * sample_gap:

    event time (us) = (b * sample_gap + t_in[b, i]) * us_per_unit,   for every replica label of i

(inputs at +inf send nothing). The chip returns a list of (neuron circuit, time)
spikes. Cutting it back: a spike in window b = floor(t / period) at local time
t - b * period is a spike of sample b, and the first one per neuron counts. That
rule is the published one; one case it gets wrong can be recognised: a spike that
comes before the first input event of its window cannot have been caused by that
window's sample (neurons start at rest). Such a spike is a late spike of the
previous sample (its output came after sample_gap); it is given back to that sample
if the neuron has no spike there yet, else discarded. Both are counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from backends.cpu import sort_workspace, sorted_finite_inputs


@dataclass(frozen=True, eq=False)
class SpikeTrain:
    """Spike events sorted by time: input events (ids = spike labels) or replies (ids = circuits).

    `duration_us` is the length of the run; `sample_period_us` the offset between
    consecutive samples of the batch protocol (the mock simulates window by window).
    """

    times_us: np.ndarray
    ids: np.ndarray
    duration_us: float
    sample_period_us: float

    def __len__(self) -> int:
        return len(self.times_us)

    @property
    def n_windows(self) -> int:
        return round(self.duration_us / self.sample_period_us)


def build_train(t_in: np.ndarray, labels: np.ndarray, sample_gap: float,
                us_per_unit: float) -> SpikeTrain:
    """One spike train for the batch t_in[B, N]; labels[N, R] are the replica labels (-1: none).

    The events are those of every sample b, input i and replica k with a finite time and a
    label, in the order of a stable sort by time of the (b, i, k) sequence."""
    n_samples = t_in.shape[0]
    period_us = sample_gap * us_per_unit
    t_in = np.ascontiguousarray(t_in, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    times, ids, in_order = _train_events(t_in, labels, float(sample_gap), float(us_per_unit))
    if not in_order:  # a sample's event after the next sample's first: sort the whole train
        order = np.argsort(times, kind="stable")  # stable: keeps (b, i, k) order among ties
        times, ids = times[order], ids[order]
    return SpikeTrain(times_us=times, ids=ids, duration_us=n_samples * period_us,
                      sample_period_us=period_us)


@njit(cache=True)
def _train_events(t_in, labels, sample_gap, us_per_unit):
    """(times, ids, in order): the events sample by sample, each sample's sorted by time
    (stable: ties in input, then replica order), and whether that is in time order overall
    (then it is what a stable sort of the whole train gives)."""
    n_samples, n_in = t_in.shape
    n_events = 0
    for i in range(n_in):
        for k in range(labels.shape[1]):
            n_events += labels[i, k] >= 0
    times = np.empty(n_samples * n_events)
    ids = np.empty(n_samples * n_events, dtype=np.int64)
    keys, index, scratch_keys, scratch_index, counts = sort_workspace(n_in)
    global_t = np.empty(n_in)
    n = 0
    in_order = True
    for b in range(n_samples):
        offset = sample_gap * b
        for i in range(n_in):
            t = (t_in[b, i] + offset) * us_per_unit
            global_t[i] = t if math.isfinite(t) else math.inf
        n_finite = sorted_finite_inputs(global_t, keys, index, scratch_keys, scratch_index,
                                        counts)
        for a in range(n_finite):
            i = index[a]
            for k in range(labels.shape[1]):
                if labels[i, k] >= 0:
                    if n > 0 and keys[a] < times[n - 1]:
                        in_order = False
                    times[n] = keys[a]
                    ids[n] = labels[i, k]
                    n += 1
    return times[:n], ids[:n], in_order


def first_event_per_window(train: SpikeTrain) -> np.ndarray:
    """Local time (us) of the first event in each window of the train (+inf: none)."""
    first = np.full(train.n_windows, np.inf)
    _first_event_kernel(np.ascontiguousarray(train.times_us, dtype=np.float64),
                        train.sample_period_us, first)
    return first


@njit(cache=True)
def _first_event_kernel(times, period, first):
    for k in range(times.shape[0]):
        w = math.floor(times[k] / period)
        if 0 <= w < first.shape[0]:
            first[w] = min(first[w], times[k] - w * period)


def cut_spikes(reply: SpikeTrain, sent: SpikeTrain, circuits: np.ndarray,
               us_per_unit: float) -> tuple[np.ndarray, dict[str, int]]:
    """First-spike times t_out[B, M] (model units, +inf: silent) of the neurons at `circuits`.

    `reply` must be sorted by time (as `SpikeTrain`s are). Returns the times and counts:
    `boundary_spikes` (late spikes given back to the previous sample), `discarded_spikes` (late spikes whose sample already had one),
    `stray_spikes` (from circuits outside the layer).
    """
    t_out = np.full((sent.n_windows, len(circuits)), np.inf)
    index_of = np.full(int(max(circuits.max(), reply.ids.max(initial=0))) + 1, -1, dtype=np.int64)
    index_of[circuits] = np.arange(len(circuits))
    counts = np.zeros(3, dtype=np.int64)
    first_input = first_event_per_window(sent)
    _cut_kernel(np.ascontiguousarray(reply.times_us, dtype=np.float64),
                np.ascontiguousarray(reply.ids, dtype=np.int64), index_of,
                sent.sample_period_us, first_input, us_per_unit, t_out, counts)
    return t_out, {"boundary_spikes": int(counts[0]), "discarded_spikes": int(counts[1]),
                   "stray_spikes": int(counts[2])}


@njit(cache=True)
def _cut_kernel(times, ids, index_of, period, first_input, us_per_unit, t_out, counts):
    """Fill t_out with first spikes per window; late spikes go back (see the module docstring)."""
    n_samples = t_out.shape[0]
    late = np.zeros(times.shape[0], dtype=np.bool_)
    for k in range(times.shape[0]):
        i = ids[k]
        j = index_of[i] if 0 <= i < index_of.shape[0] else -1
        w = math.floor(times[k] / period)
        if j < 0 or w < 0 or w >= n_samples:
            counts[2] += 1
            continue
        local = times[k] - w * period
        if local >= first_input[w]:
            t_out[w, j] = min(t_out[w, j], local / us_per_unit)
        else:
            late[k] = True
    for k in range(times.shape[0]):  # after all caused spikes are in place
        if not late[k]:
            continue
        j = index_of[ids[k]]
        w = math.floor(times[k] / period)
        value = (times[k] - (w - 1) * period) / us_per_unit
        if w >= 1 and t_out[w - 1, j] == math.inf:  # sorted times: the earliest comes first
            t_out[w - 1, j] = value
            counts[0] += 1
        else:
            counts[1] += 1
