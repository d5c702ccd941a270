"""`cpu` backend: the event walk compiled with numba, parallel over the batch.

The math is that of the `torch` backend (see `backends/torch_backend.py` for the
equations). Per sample the finite inputs are gathered and sorted once (bucket sort);
the walk then runs over the sorted inputs outside and the output neurons inside:

* forward: the interval factors e^{-Δ/tau_m}, K(Δ), e^{-Δ/tau_s} of each input are
  computed once and shared by all neurons (per neuron only for per-neuron time
  constants); the neuron loops (add the input's weights, flag neurons whose membrane
  may reach threshold in the interval, advance (D, U)) are branch-free and few-operand
  so that they vectorise, and a root is solved only for flagged neurons;
* backward: the walk runs backwards from each neuron's last causal input, with the
  kernel and synaptic factor of every causal input obtained by the recursion
      K(s + Δ) = K(s) e^{-Δ/tau_m} + e^{-s/tau_s} K(Δ),   e^{-(s+Δ)/tau_s} = e^{-s/tau_s} e^{-Δ/tau_s}
  from the same interval factors: one exponential per neuron, not per (input, neuron).

Besides the backend contract (`forward`, `backward`), `forward_with_state` and
`backward_with_state` let `snnsim.first_spike_times` hand the forward pass's sort
order to the backward pass and skip input-time gradients nobody asked for.

Where tau_m / tau_s is neither 1 nor 2 (the general regime, e.g. per-neuron time
constants as on the mock chip) the crossing is solved by a safeguarded Halley
iteration started from an equal-tau Lambert W estimate (`_general_crossing`); it
converges to the root of the torch backend's Newton iteration, in about a third of
the evaluations. Per-neuron interval factors take two transcendental calls, not
four (`_two_call_factors`).

The batch is split into one contiguous chunk per thread (`numba.get_num_threads()`
chunks of at least PARALLEL_MIN_SAMPLES samples), so results do not depend on
scheduling. The chunks run on Python threads (the first in the calling thread): the
compiled chunk functions release the GIL (`nogil`). This is deliberately not numba's
`parallel=True`/`prange`: its parfor compilation more than doubled the one-time
compilation of a first run (see `benchmarks/bench_first_run.py`), and its worker threads
degrade badly when the machine is oversubscribed.

Compilation. Kernels are compiled on first use and cached on disk (`cache=True`;
NUMBA_CACHE_DIR moves the cache). Everything is compiled for float64 C-contiguous arrays
only (inputs are converted), and call arguments are kept non-literal (`np.int64(0)`
rather than `0`) so that numba compiles each helper for one signature, not also for the
literal values it sees first. The hw package's kernels compile in `sorted_finite_inputs`:
clear hw/__pycache__/*.nb* too after changing it. Computation is in float64 whatever the
input dtype; results are cast back.
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from numba import njit, types
from numba.extending import overload

from snnsim.constants import (  # noqa: F401 (REGIME_CODES: re-exported for the cuda backend)
    DOUBLE_CODE,
    EQUAL_CODE,
    MIN_SLOPE_FRACTION,
    NEWTON_MAX_ITERATIONS,
    REGIME_CODES,
    regime_code,
)
from snnsim.lambertw import INV_E_HI, lambertw_nonpositive
from snnsim.params import NeuronParams

INSERTION_SORT_MAX = 16  # longer input lists are bucketed first ...
BUCKET_MAX_OCCUPANCY = 32  # ... unless a bucket would hold more than this: merge sort
BUCKETS_PER_INPUT = 4  # buckets mostly empty or single: fewer moves, fewer mispredictions
MANY_NEURONS = 16  # from this layer size on, causal inputs are counted in one vectorised pass
FACTOR_BLOCK = 16  # the forward walk computes interval factors this many inputs ahead
PARALLEL_MIN_SAMPLES = 8  # per thread; batches under twice this run in the calling thread


@njit(cache=True, error_model="numpy")
def _kernel(s, tau_m, tau_s):
    """PSP kernel K(s) and synaptic factor e^{-s/tau_s} for 0 <= s <= inf."""
    if s == math.inf:
        return 0.0, 0.0
    synaptic = math.exp(-s / tau_s)
    a = 0.0 if tau_m == tau_s else abs(1.0 / tau_s - 1.0 / tau_m)
    if a == 0.0:
        return synaptic * s / tau_m, synaptic
    return math.exp(-s / max(tau_m, tau_s)) * (-math.expm1(-a * s) / a) / tau_m, synaptic


def _at(values, j):
    """values[j] for a per-neuron array, `values` itself for a value shared by all neurons."""
    return values[j] if np.ndim(values) else values


@overload(_at)
def _at_overload(values, j):
    # Compiled per argument type, so loops over neurons that read shared (scalar)
    # interval factors keep few array operands and vectorise.
    if isinstance(values, types.Array):
        return lambda values, j: values[j]
    return lambda values, j: values


@njit(cache=True, error_model="numpy")
def _interval_factors(delta, tau_m, tau_s):
    """(e^{-Δ/tau_m}, K(Δ), e^{-Δ/tau_s}) for one neuron."""
    kernel, decay_s = _kernel(delta, tau_m, tau_s)
    return (decay_s if tau_m == tau_s else math.exp(-delta / tau_m)), kernel, decay_s


@njit(cache=True, error_model="numpy")
def _shared_interval_factors(keys, n, start, stop, tau_m, tau_s, decay_m, kernel, decay_s):
    """Factors of the intervals [keys[k], keys[k + 1]], start <= k < stop, of keys[:n] (the
    last one open-ended) for time constants shared by all neurons, in one pass: these
    exponentials are independent of each other and of the walk, so they overlap."""
    for k in range(start, stop):
        delta = keys[k + 1] - keys[k] if k + 1 < n else math.inf
        decay_m[k], kernel[k], decay_s[k] = _interval_factors(delta, tau_m, tau_s)


@njit(cache=True, error_model="numpy", inline="always")
def _two_call_factors(s, tau_m, tau_s):
    """(e^{-s/tau_m}, K(s), e^{-s/tau_s}) for 0 <= s <= inf, like `_interval_factors` but
    from two transcendental calls instead of four: with a = |1/tau_s - 1/tau_m|,
    e^{-s/tau_fast} = e^{-s/tau_slow} (1 + expm1(-a s)) (within ~2 ulp of the exponential;
    K(s) is the same bit for bit). For per-neuron time constants, where these factors
    are computed per (interval, neuron) and per solver step."""
    if s == math.inf:
        return 0.0, 0.0, 0.0
    slow = math.exp(-s / max(tau_m, tau_s))
    if tau_m == tau_s:
        return slow, slow * s / tau_m, slow
    a = abs(1.0 / tau_s - 1.0 / tau_m)
    g = math.expm1(-a * s)
    fast = slow + slow * g
    kernel = slow * (-g / a) / tau_m
    if tau_m > tau_s:
        return slow, kernel, fast
    return fast, kernel, slow


@njit(cache=True, error_model="numpy")
def _per_neuron_interval_factors(delta, tau_m, tau_s, decay_m, kernel, decay_s):
    for j in range(tau_m.shape[0]):
        decay_m[j], kernel[j], decay_s[j] = _two_call_factors(delta, tau_m[j], tau_s[j])


@njit(cache=True, error_model="numpy")
def _insertion_sort(keys, index, n, sorted_keys, sorted_index):
    """Insert keys[:n] (with index[:n]) one by one into sorted_keys (may be keys itself)."""
    for a in range(n):
        key = keys[a]
        position = index[a]
        b = a - 1
        while b >= 0 and sorted_keys[b] > key:
            sorted_keys[b + 1] = sorted_keys[b]
            sorted_index[b + 1] = sorted_index[b]
            b -= 1
        sorted_keys[b + 1] = key
        sorted_index[b + 1] = position


@njit(cache=True)
def sort_workspace(n):
    """(keys, index, scratch_keys, scratch_index, counts): the arrays `sorted_finite_inputs`
    works in for up to n times."""
    return (np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64),
            np.empty(n * BUCKETS_PER_INPUT + 1, np.int64))


@njit(cache=True, error_model="numpy")
def sorted_finite_inputs(times, keys, index, scratch_keys, scratch_index, counts):
    """Sort the finite entries of `times` into keys[:n], their positions into index[:n]; n.

    Stable. Long lists are first distributed into BUCKETS_PER_INPUT * n equal-width
    buckets (one counting pass), which leaves an insertion sort almost nothing to move;
    where the times are so unevenly spread that a bucket overflows, a merge sort takes
    over. The other arguments are a `sort_workspace(len(times))`.
    """
    n = np.int64(0)  # not a literal: callees compile for int64 only
    for i in range(times.shape[0]):
        keys[n] = times[i]
        index[n] = i
        n += times[i] < math.inf
    if n <= INSERTION_SORT_MAX:
        _insertion_sort(keys, index, n, keys, index)
        return n
    lo = keys[0]
    hi = keys[0]
    for a in range(1, n):
        key = keys[a]
        lo = min(lo, key)
        hi = max(hi, key)
    if hi == lo:
        return n  # all tied: already in (stable) order
    n_buckets = n * BUCKETS_PER_INPUT
    scale = (n_buckets - 1) / (hi - lo)
    largest_bucket = 0
    if scale < math.inf:
        counts[:n_buckets + 1] = 0
        for a in range(n):
            counts[min(int((keys[a] - lo) * scale), n_buckets - 1) + 1] += 1
        for a in range(n_buckets):
            largest_bucket = max(largest_bucket, counts[a + 1])
            counts[a + 1] += counts[a]
    if scale < math.inf and largest_bucket <= BUCKET_MAX_OCCUPANCY:
        for a in range(n):
            bucket = min(int((keys[a] - lo) * scale), n_buckets - 1)
            scratch_keys[counts[bucket]] = keys[a]
            scratch_index[counts[bucket]] = index[a]
            counts[bucket] += 1
        _insertion_sort(scratch_keys, scratch_index, n, keys, index)
    else:
        _merge_sort(keys, index, n, scratch_keys, scratch_index)
    return n


@njit(cache=True, error_model="numpy")
def _merge_sort(keys, index, n, scratch_keys, scratch_index):
    """Stable bottom-up merge sort of keys[:n] (with index[:n]) in place, through the scratch
    arrays: on ties the earlier entry stays first, as np.argsort(kind="mergesort") orders."""
    width = 1
    src_keys, src_index, dst_keys, dst_index = keys, index, scratch_keys, scratch_index
    in_scratch = False
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            a, b = lo, mid
            for out in range(lo, hi):
                if b >= hi or (a < mid and src_keys[a] <= src_keys[b]):
                    dst_keys[out] = src_keys[a]
                    dst_index[out] = src_index[a]
                    a += 1
                else:
                    dst_keys[out] = src_keys[b]
                    dst_index[out] = src_index[b]
                    b += 1
        src_keys, src_index, dst_keys, dst_index = dst_keys, dst_index, src_keys, src_index
        in_scratch = not in_scratch
        width *= 2
    if in_scratch:
        for a in range(n):
            keys[a] = src_keys[a]
            index[a] = src_index[a]


@njit(cache=True, error_model="numpy", inline="always")
def _equal_crossing(D, U, delta, d_end, tau, c):
    """(fires, s): the crossing of `_crossing` for tau_m = tau_s = tau (regime 0), branch-free
    (flagged neurons fire or not at random, which a branch would mispredict). The peak is
    at s = tau (1 - D/U), where V' = U e^{-s/tau} >= c  <=>  z >= -1/e."""
    ratio = D / U
    z = -(c / U) * math.exp(-ratio)
    s_peak = tau * (1.0 - ratio)
    fires = (d_end >= c) | ((0.0 < s_peak) & (s_peak < delta) & (z >= -INV_E_HI))
    s = tau * (-ratio - lambertw_nonpositive(min(max(z, -INV_E_HI), 0.0)))
    return fires, min(max(s, 0.0), delta)


@njit(cache=True, error_model="numpy")
def _crossing(D, U, delta, d_end, decay_m, tau_m, tau_s, c, regime):
    """Earliest s in [0, delta] with V'(t_k + s) = c, or -1 if the membrane stays below.

    V'(t_k) = D < c, V'(t_k + delta) = d_end; called when d_end >= c or when V' has
    its peak inside the interval (rising at the start, falling at the end).
    """
    if regime == EQUAL_CODE:
        fires, s = _equal_crossing(D, U, delta, d_end, tau_m, c)
        return s if fires else -1.0
    reaches_end = d_end >= c
    if regime != DOUBLE_CODE:
        return _general_crossing(D, U, delta, reaches_end, tau_m, tau_s, c)
    # tau_m = 2 tau_s: V' = (D+U) x - U x^2 with x = e^{-s/tau_m}: peak at x = (D+U)/(2U),
    # reaching c iff the discriminant is >= 0; the earliest crossing is the larger root.
    p = D + U
    discriminant = p * p - 4.0 * U * c
    if not reaches_end:
        x_peak = p / (2.0 * U)
        if not (decay_m < x_peak < 1.0) or discriminant < 0.0:
            return -1.0
    root = (p + math.sqrt(max(discriminant, 0.0))) / (2.0 * U)
    return min(max(-tau_m * math.log(root), 0.0), delta)


def _solve(regime, D, U, delta, d_end, decay_m, tau_m, tau_s, c):
    """(fires, s) of a flagged neuron: `_equal_crossing` where `regime` is None (the equal
    regime), else `_crossing` for the regime code. Resolved when the caller compiles, so
    the walk of the equal regime does not compile the other regimes' solvers."""
    if regime is None:
        return _equal_crossing(D, U, delta, d_end, tau_m, c)
    s = _crossing(D, U, delta, d_end, decay_m, tau_m, tau_s, c, regime)
    return s >= 0.0, s


@overload(_solve)
def _solve_overload(regime, D, U, delta, d_end, decay_m, tau_m, tau_s, c):
    if isinstance(regime, types.NoneType):
        def equal(regime, D, U, delta, d_end, decay_m, tau_m, tau_s, c):
            return _equal_crossing(D, U, delta, d_end, tau_m, c)
        return equal

    def other(regime, D, U, delta, d_end, decay_m, tau_m, tau_s, c):
        s = _crossing(D, U, delta, d_end, decay_m, tau_m, tau_s, c, regime)
        return s >= 0.0, s
    return other


@njit(cache=True, error_model="numpy")
def _general_crossing(D, U, delta, reaches_end, tau_m, tau_s, c):
    """`_crossing` for any tau_m / tau_s. Unless the membrane reaches c at the end of the
    interval (reaches_end), its peak is found first (-1 if it stays below c) and ends the
    bracket. Then the earliest s in [0, s_hi] with V'(t_k + s) = c, where V' rises up to
    that crossing.

    Safeguarded Halley iteration on f(s) = V'(t_k + s) - c with the bracket [lo, hi] =
    [0, s_hi], a Newton step where Halley's correction is large, bisection where a step
    leaves the bracket. The root is the one the torch backend's Newton iteration from
    s_hi finds (to rounding), in about a third of the evaluations:

    * start: the equal-tau (Lambert W) solution of V' ~ (D + B s) e^{-s/tau_h}, with
      1/tau_h = (1/tau_m + 1/tau_s)/2 and B = U/tau_m - D (1/tau_m - 1/tau_h) (exact to
      first order in s (1/tau_m - 1/tau_s)), if it lies inside the bracket; else s_hi,
      and from a peak (f' = 0) the first step solves f + f'' h^2/2 = 0;
    * one evaluation (`_two_call_factors`: two transcendental calls) gives f and, with
      S = U e^{-s/tau_s}, the derivatives
      f1 = (S - V')/tau_m, f2 = (-S/tau_s - f1)/tau_m, f3 = (S/tau_s^2 - f2)/tau_m;
    * stop when a step is below 4e-16 relative, or when the error left after a Halley
      step h, predicted as |f2^2/(4 f1^2) - f3/(6 f1)| |h|^3, is below 1e-17 relative
      (only once the step is in the asymptotic range, |f2 h / f1| <= 0.02).
    """
    s_hi = delta
    if not reaches_end:
        kappa = tau_s / (tau_m - tau_s)
        ratio = D / (kappa * U)
        if not ratio > -1.0:
            return -1.0
        s_peak = (math.log(tau_m / tau_s) - math.log1p(ratio)) / (1.0 / tau_s - 1.0 / tau_m)
        if not 0.0 < s_peak < delta:
            return -1.0
        decay_peak, kernel_peak, _ = _two_call_factors(s_peak, tau_m, tau_s)
        if D * decay_peak + U * kernel_peak < c:
            return -1.0
        s_hi = s_peak
    lo, hi, s = 0.0, s_hi, s_hi
    from_peak = not reaches_end
    inv_tau_h = 0.5 * (1.0 / tau_m + 1.0 / tau_s)
    u_eq = (U / tau_m - D * (1.0 / tau_m - inv_tau_h)) / inv_tau_h
    if u_eq > 0.0:
        z = -(c / u_eq) * math.exp(-D / u_eq)
        if -INV_E_HI <= z <= 0.0:
            guess = (-D / u_eq - lambertw_nonpositive(z)) / inv_tau_h
            if lo < guess < hi:
                s = guess
                from_peak = False
    for _ in range(NEWTON_MAX_ITERATIONS):
        decay_m, kernel, synaptic = _two_call_factors(s, tau_m, tau_s)
        v = D * decay_m + U * kernel
        f = v - c
        if f == 0.0:
            break
        if f < 0.0:
            lo = s
        else:
            hi = s
        d1 = (U * synaptic - v) / tau_m
        d2 = (-U * synaptic / tau_s - d1) / tau_m
        predicted = math.inf
        if from_peak:
            step = -math.sqrt(2.0 * f / -d2) if d2 < 0.0 else math.nan
            from_peak = False
        else:
            newton = -f / d1
            curvature = 0.5 * newton * d2 / d1
            if abs(curvature) <= 0.5:
                step = newton / (1.0 + curvature)
                if abs(curvature) <= 1e-2:
                    d3 = (U * synaptic / (tau_s * tau_s) - d2) / tau_m
                    predicted = abs(0.25 * d2 * d2 / (d1 * d1) - d3 / (6.0 * d1)) * abs(step) ** 3
            else:
                step = newton
        new_s = s + step
        if not (new_s > lo and new_s < hi):
            new_s = 0.5 * (lo + hi)
            predicted = math.inf
        done = (abs(new_s - s) <= 4e-16 * max(abs(new_s), 1e-300)
                or predicted <= 1e-17 * abs(new_s))
        s = new_s
        if done:
            break
    return min(max(s, 0.0), s_hi)


def _chunks(batch: int) -> np.ndarray:
    """Bounds of one contiguous chunk of the batch per thread, each of at least
    PARALLEL_MIN_SAMPLES samples (a single chunk runs in the calling thread)."""
    n = max(1, min(batch // PARALLEL_MIN_SAMPLES, numba.get_num_threads()))
    return np.arange(n + 1, dtype=np.int64) * batch // n


@functools.cache
def _thread_pool(workers: int, pid: int) -> ThreadPoolExecutor:
    """The threads that run all chunks but the first (which runs in the calling thread).
    Keyed by process id: a forked child has none of its parent's threads."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snnsim-cpu")


def _run_chunks(chunk_function, bounds: np.ndarray, before: tuple, after) -> None:
    """chunk_function(*before, first, last, *after(c)) for each chunk c of `bounds`, in
    parallel: the compiled chunk functions release the GIL (nogil). Chunk c writes only
    its own samples' rows and its own `after(c)` arrays, so the results do not depend on
    the threads' timing."""
    n = bounds.shape[0] - 1
    calls = [(*before, int(bounds[c]), int(bounds[c + 1]), *after(c)) for c in range(n)]
    if n == 1:
        chunk_function(*calls[0])
        return
    pool = _thread_pool(n - 1, os.getpid())
    futures = [pool.submit(chunk_function, *args) for args in calls[1:]]
    try:
        chunk_function(*calls[0])
    finally:
        for future in futures:
            future.result()


@njit(cache=True, error_model="numpy", inline="always")  # no call overhead
def _walk_interval(D, U, drive_left, out, flagged, candidates, t_k, delta, decay_m, kernel,
                   decay_s, tau_m, tau_s, regime):
    """Advance every neuron's (D, U) over [t_k, t_k + delta], solving crossings on the way.

    drive_left[j] is neuron j's drive, or +inf once it has fired. The interval
    factors are scalars (shared time constants) or per-neuron arrays; `flagged` and
    `candidates` are scratch space. Returns the number of neurons that fired in this interval.
    """
    n_out = D.shape[0]
    n_flagged = 0
    for j in range(n_out):
        d_end = D[j] * _at(decay_m, j) + U[j] * _at(kernel, j)
        u_end = U[j] * _at(decay_s, j)
        may_cross = (d_end >= drive_left[j]) | (
            (U[j] > D[j]) & (u_end <= d_end) & (drive_left[j] < math.inf))
        flagged[j] = may_cross
        n_flagged += may_cross
    n_fired = 0
    if n_flagged > 0:
        m = 0
        for j in range(n_out):  # the flagged neurons' indices, without a branch per neuron
            candidates[m] = j
            m += flagged[j]
        for q in range(n_flagged):
            j = candidates[q]
            l = j if tau_m.shape[0] > 1 else 0
            d_end = D[j] * _at(decay_m, j) + U[j] * _at(kernel, j)
            fires, s = _solve(regime, D[j], U[j], delta, d_end, _at(decay_m, j), tau_m[l],
                              tau_s[l], drive_left[j])
            if fires:
                out[j] = t_k + s
                drive_left[j] = math.inf
                n_fired += 1
    for j in range(n_out):
        d_end = D[j] * _at(decay_m, j) + U[j] * _at(kernel, j)
        U[j] = U[j] * _at(decay_s, j)
        D[j] = d_end
    return n_fired


@njit(cache=True, error_model="numpy", nogil=True)
def _forward_chunk(t_in, w, tau_m, tau_s, drive, regime, first, last, t_out, order,
                   n_finite_out):
    """t_out[b] for the samples first <= b < last; where order has rows, also each sample's
    finite inputs in time order (order[b, :n_finite_out[b]]) for the backward pass."""
    n_in = t_in.shape[1]
    n_out = w.shape[1]
    per_neuron_tau = tau_m.shape[0] > 1
    D = np.empty(n_out)
    U = np.empty(n_out)
    drive_left = np.empty(n_out)
    flagged = np.empty(n_out, np.bool_)
    candidates = np.empty(n_out, np.int64)
    decay_m = np.empty(n_out)
    kernel = np.empty(n_out)
    decay_s = np.empty(n_out)
    keys, index, scratch_keys, scratch_index, counts = sort_workspace(n_in)
    interval_decay_m = np.empty(n_in)
    interval_kernel = np.empty(n_in)
    interval_decay_s = np.empty(n_in)
    for b in range(first, last):
        n_finite = sorted_finite_inputs(t_in[b], keys, index, scratch_keys, scratch_index,
                                         counts)
        if order.shape[0] > 0:
            for k in range(n_finite):
                order[b, k] = index[k]
            n_finite_out[b] = n_finite
        out = t_out[b]
        for j in range(n_out):
            D[j] = 0.0
            U[j] = 0.0
            drive_left[j] = drive[j]
            out[j] = math.inf
        n_fired = 0
        n_factors = 0  # intervals whose shared factors are computed, a block at a time
        for k in range(n_finite):
            if n_fired == n_out:
                break
            if k == n_factors and not per_neuron_tau:
                n_factors = min(n_finite, k + FACTOR_BLOCK)
                _shared_interval_factors(keys, n_finite, k, n_factors, tau_m[0], tau_s[0],
                                         interval_decay_m, interval_kernel,
                                         interval_decay_s)
            w_k = w[index[k]]
            for j in range(n_out):
                U[j] += w_k[j]
            t_k = keys[k]
            delta = keys[k + 1] - t_k if k + 1 < n_finite else math.inf
            if delta == 0.0:
                continue
            if per_neuron_tau:
                _per_neuron_interval_factors(delta, tau_m, tau_s, decay_m, kernel, decay_s)
                n_fired += _walk_interval(D, U, drive_left, out, flagged, candidates, t_k,
                                          delta, decay_m, kernel, decay_s, tau_m, tau_s,
                                          regime)
            else:
                n_fired += _walk_interval(D, U, drive_left, out, flagged, candidates, t_k,
                                          delta, interval_decay_m[k], interval_kernel[k],
                                          interval_decay_s[k], tau_m, tau_s, regime)


@njit(cache=True, error_model="numpy", inline="always")  # no call overhead
def _recurse_row(kernel_row, synaptic_row, kernel_later, synaptic_later, decay_m, kernel, decay_s):
    """Kernel and synaptic factor one input earlier: K(s + Δ) = K(s) e^{-Δ/tau_m} + S(s) K(Δ)."""
    for j in range(kernel_row.shape[0]):
        kernel_row[j] = kernel_later[j] * _at(decay_m, j) + synaptic_later[j] * _at(kernel, j)
        synaptic_row[j] = synaptic_later[j] * _at(decay_s, j)


@njit(cache=True, error_model="numpy", inline="always")  # no call overhead
def _weighted_sum(w_row, synaptic_row, kernel_row, factor):
    """sum_j w_j (S_j - K_j) factor_j, in four interleaved partial sums (latency, not order)."""
    n = w_row.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    j = 0
    while j + 4 <= n:
        a0 += w_row[j] * (synaptic_row[j] - kernel_row[j]) * factor[j]
        a1 += w_row[j + 1] * (synaptic_row[j + 1] - kernel_row[j + 1]) * factor[j + 1]
        a2 += w_row[j + 2] * (synaptic_row[j + 2] - kernel_row[j + 2]) * factor[j + 2]
        a3 += w_row[j + 3] * (synaptic_row[j + 3] - kernel_row[j + 3]) * factor[j + 3]
        j += 4
    while j < n:
        a0 += w_row[j] * (synaptic_row[j] - kernel_row[j]) * factor[j]
        j += 1
    return (a0 + a1) + (a2 + a3)


@njit(cache=True, error_model="numpy")
def _count_before(keys, n, t):
    """Number of keys[:n] (sorted) below t; a binary search without unpredictable branches."""
    if n == 0:
        return 0
    base = 0
    while n > 1:
        half = n // 2
        base = base + half if keys[base + half] < t else base
        n -= half
    return base + (keys[base] < t)


@njit(cache=True, error_model="numpy", nogil=True)
def _backward_chunk(t_in, w, t_out, grad_t_out, tau_m, tau_s, drive, max_dw_norm, first, last,
                    order, n_finite_in, grad_t_in, grad_w):
    """Adds the weight gradient of the samples first <= b < last to grad_w, and writes their
    input-time gradient to grad_t_in unless it has no rows. Each sample's inputs are sorted
    here unless order (from the forward pass) has rows."""
    n_in = t_in.shape[1]
    n_out = w.shape[1]
    per_neuron_tau = tau_m.shape[0] > 1
    keys, index, scratch_keys, scratch_index, counts = sort_workspace(n_in)
    last_causal = np.empty(n_out, np.int64)
    first_starting = np.empty(n_in + 1, np.int64)
    starting = np.empty(n_out, np.int64)
    kernel_start = np.empty(n_out)
    synaptic_start = np.empty(n_out)
    current = np.empty(n_out)
    weight_factor = np.empty(n_out)
    time_factor = np.empty(n_out)
    decay_m = np.empty(n_out)
    kernel_delta = np.empty(n_out)
    decay_s = np.empty(n_out)
    kernels = np.empty((n_in, n_out))
    synaptics = np.empty((n_in, n_out))
    interval_decay_m = np.empty(n_in)
    interval_kernel = np.empty(n_in)
    interval_decay_s = np.empty(n_in)
    for b in range(first, last):
        if grad_t_in.shape[0] > 0:
            grad_t_in[b, :] = 0.0  # here rather than by np.zeros: in parallel, in cache
        if order.shape[0] > 0:
            n_finite = n_finite_in[b]
            for k in range(n_finite):
                index[k] = order[b, k]
                keys[k] = t_in[b, index[k]]
        else:
            n_finite = sorted_finite_inputs(t_in[b], keys, index, scratch_keys,
                                             scratch_index, counts)
        # Last causal input (t_i < t*) of each neuron that passes a gradient, the
        # kernel and synaptic factor there, and the neurons grouped by that input:
        # starting[first_starting[k]:first_starting[k + 1]].
        top = np.int64(-1)  # not a literal (see sorted_finite_inputs)
        first_starting[:n_finite + 1] = 0
        spikes = t_out[b]
        if n_out >= MANY_NEURONS:  # count the inputs before each spike, input by input
            last_causal[:] = -1
            for k in range(n_finite):
                for j in range(n_out):
                    last_causal[j] += keys[k] < spikes[j]
        for j in range(n_out):
            t_star = spikes[j]
            if not (t_star < math.inf and grad_t_out[b, j] != 0.0):
                last_causal[j] = -1
            else:
                if n_out < MANY_NEURONS:
                    last_causal[j] = _count_before(keys, n_finite, t_star) - 1
                k = last_causal[j]
                if k >= 0:
                    l = j if per_neuron_tau else 0
                    if per_neuron_tau:
                        _, kernel_start[j], synaptic_start[j] = _two_call_factors(
                            t_star - keys[k], tau_m[l], tau_s[l])
                    else:
                        kernel_start[j], synaptic_start[j] = _kernel(t_star - keys[k],
                                                                     tau_m[l], tau_s[l])
                    first_starting[k + 1] += 1
                    top = max(top, k)
        if top < 0:
            continue
        for k in range(top + 1):
            first_starting[k + 1] += first_starting[k]
        for j in range(n_out):
            k = last_causal[j]
            if k >= 0:
                starting[first_starting[k]] = j
                first_starting[k] += 1
        for k in range(top, 0, -1):  # undo the shift left by filling
            first_starting[k] = first_starting[k - 1]
        first_starting[0] = 0
        # Walk backwards: kernels[k, j] = K(t*_j - t_k) and synaptics[k, j] =
        # e^{-(t*_j - t_k)/tau_s} for causal inputs, 0 for the others.
        if not per_neuron_tau:
            _shared_interval_factors(keys, top + 1, np.int64(0), top, tau_m[0], tau_s[0],
                                     interval_decay_m, interval_kernel, interval_decay_s)
        for k in range(top, -1, -1):
            kernel_row = kernels[k]
            synaptic_row = synaptics[k]
            if k == top:
                kernel_row[:] = 0.0
                synaptic_row[:] = 0.0
            elif per_neuron_tau:
                _per_neuron_interval_factors(keys[k + 1] - keys[k], tau_m, tau_s, decay_m,
                                             kernel_delta, decay_s)
                _recurse_row(kernel_row, synaptic_row, kernels[k + 1], synaptics[k + 1],
                             decay_m, kernel_delta, decay_s)
            else:
                _recurse_row(kernel_row, synaptic_row, kernels[k + 1], synaptics[k + 1],
                             interval_decay_m[k], interval_kernel[k], interval_decay_s[k])
            for q in range(first_starting[k], first_starting[k + 1]):
                j = starting[q]
                kernel_row[j] = kernel_start[j]
                synaptic_row[j] = synaptic_start[j]
        current[:] = 0.0  # I(t*) of each neuron
        for k in range(top + 1):
            w_k = w[index[k]]
            synaptic_row = synaptics[k]
            for j in range(n_out):
                current[j] += w_k[j] * synaptic_row[j]
        for j in range(n_out):
            weight_factor[j] = 0.0
            time_factor[j] = 0.0
            k = last_causal[j]
            if k >= 0:
                l = j if per_neuron_tau else 0
                # dt*/dt_i = w_i (S_i - K_i) / (tau_m V'_dot), dt*/dw_i = -K_i / V'_dot with
                # tau_m V'_dot = I(t*) - c, floored (see the torch backend).
                time_factor[j] = grad_t_out[b, j] / max(current[j] - drive[j],
                                                        MIN_SLOPE_FRACTION * drive[j])
                weight_factor[j] = -tau_m[l] * time_factor[j]
                if max_dw_norm >= 0.0:
                    # K is unimodal in s with its peak at s_peak: the largest kernel
                    # of the causal inputs is at one of the two inputs around t* - s_peak.
                    if tau_m[l] == tau_s[l]:
                        s_peak = tau_m[l]
                    else:
                        s_peak = (math.log(tau_m[l] / tau_s[l])
                                  / (1.0 / tau_s[l] - 1.0 / tau_m[l]))
                    after = min(_count_before(keys, k + 1, t_out[b, j] - s_peak), k)
                    largest = kernels[after, j]
                    if after > 0:
                        largest = max(largest, kernels[after - 1, j])
                    if largest * abs(weight_factor[j]) > max_dw_norm:
                        weight_factor[j] = 0.0
        for k in range(top + 1):
            i = index[k]
            grad_w_k = grad_w[i]
            kernel_row = kernels[k]
            for j in range(n_out):
                grad_w_k[j] += kernel_row[j] * weight_factor[j]
            if grad_t_in.shape[0] > 0:
                grad_t_in[b, i] = _weighted_sum(w[i], synaptics[k], kernel_row, time_factor)


def _numpy64(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


def _neuron_arrays(params: NeuronParams, n_out: int):
    """(tau_m, tau_s, drive): time constants of length 1 or n_out, drive of length n_out."""
    tau_m, tau_s, drive = params.arrays(n_out)
    return tau_m, tau_s, (drive if drive.shape[0] == n_out else np.full(n_out, drive[0]))


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """First spike times t_out[B, M] (+inf: no spike) for inputs t_in[B, N], weights w[N, M]."""
    return _forward(t_in, w, params, keep_order=False)[0]


def forward_with_state(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams):
    """(`forward`, state for `backward_with_state`): the state holds each sample's finite
    inputs in time order, so that the backward pass need not sort them again."""
    return _forward(t_in, w, params, keep_order=True)


def _forward(t_in, w, params, keep_order):
    tau_m, tau_s, drive = _neuron_arrays(params, w.shape[1])
    batch, n_in = t_in.shape
    t_out = np.empty((batch, w.shape[1]))
    order = np.empty((batch, n_in) if keep_order else (0, 0), dtype=np.int32)
    n_finite = np.empty(batch if keep_order else 0, dtype=np.int32)
    bounds = _chunks(batch)
    code = regime_code(params.regime)
    # The equal regime as None: its walk compiles without the other regimes' solvers.
    args = (_numpy64(t_in), _numpy64(w), tau_m, tau_s, drive, None if code == EQUAL_CODE else code)
    _run_chunks(_forward_chunk, bounds, args, lambda c: (t_out, order, n_finite))
    state = (order, n_finite) if keep_order else None
    return torch.from_numpy(t_out).to(dtype=t_in.dtype, device=t_in.device), state


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """(grad_t_in[B, N], grad_w[N, M]); see `backends.torch_backend.backward`."""
    return backward_with_state(None, t_in, w, t_out, grad_t_out, params, max_dw_norm)


def backward_with_state(state, t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor,
                        grad_t_out: torch.Tensor, params: NeuronParams,
                        max_dw_norm: float | None = None, *, input_grad: bool = True):
    """`backward` reusing the state that `forward_with_state` returned with this very t_in
    (None: sort the inputs again); with input_grad=False the input-time gradient is neither
    computed nor returned (None)."""
    tau_m, tau_s, drive = _neuron_arrays(params, w.shape[1])
    bounds = _chunks(t_in.shape[0])
    order, n_finite = state if state is not None else (np.empty((0, 0), np.int32),
                                                        np.empty(0, np.int32))
    grad_t_in = np.empty(t_in.shape if input_grad else (0, 0))
    grad_w_parts = np.zeros((bounds.shape[0] - 1,) + tuple(w.shape))
    args = (_numpy64(t_in), _numpy64(w), _numpy64(t_out), _numpy64(grad_t_out), tau_m, tau_s,
            drive, -1.0 if max_dw_norm is None else float(max_dw_norm))
    _run_chunks(_backward_chunk, bounds, args,
                lambda c: (order, n_finite, grad_t_in, grad_w_parts[c]))
    as_tensor = (lambda x, like: torch.from_numpy(x).to(dtype=like.dtype, device=like.device))
    return (as_tensor(grad_t_in, t_in) if input_grad else None), as_tensor(grad_w_parts.sum(0), w)
