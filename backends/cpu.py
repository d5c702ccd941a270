"""`cpu` backend: the event walk compiled with numba, parallel over the batch.

The math is that of the `torch` backend (see `backends/torch_backend.py` for the
equations); here it runs as a scalar loop per sample: inputs sorted once, then
for every input a few multiply-adds per output neuron, and a root solve only for
a neuron whose membrane reaches threshold inside the current interval. The batch
is split into one contiguous chunk per thread, so results do not depend on
scheduling. Kernels are compiled on first use and cached on disk.

Computation is in float64 whatever the input dtype; results are cast back.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange

from snnsim.lambertw import INV_E_HI, lambertw_scalar
from snnsim.params import DOUBLE, EQUAL, NeuronParams

MIN_SLOPE_FRACTION = 1e-9
NEWTON_MAX_ITERATIONS = 100
REGIME_CODES = {EQUAL: 0, DOUBLE: 1}  # anything else: 2 (general)

_lambertw = njit(cache=True, error_model="numpy")(lambertw_scalar)


@njit(cache=True, error_model="numpy")
def _kernel(s, tau_m, tau_s):
    """PSP kernel K(s) and synaptic factor e^{-s/tau_s} for 0 <= s <= inf."""
    if s == math.inf:
        return 0.0, 0.0
    synaptic = math.exp(-s / tau_s)
    a = abs(1.0 / tau_s - 1.0 / tau_m)
    if a == 0.0:
        return synaptic * s / tau_m, synaptic
    return math.exp(-s / max(tau_m, tau_s)) * (-math.expm1(-a * s) / a) / tau_m, synaptic


@njit(cache=True, error_model="numpy")
def _membrane(D, U, s, tau_m, tau_s):
    kernel, _ = _kernel(s, tau_m, tau_s)
    return D * math.exp(-s / tau_m) + U * kernel


@njit(cache=True, error_model="numpy")
def _peak_time(D, U, tau_m, tau_s, regime):
    if regime == 0:
        return tau_m * (1.0 - D / U)
    kappa = tau_s / (tau_m - tau_s)
    ratio = D / (kappa * U)
    if not ratio > -1.0:
        return math.nan
    return (math.log(tau_m / tau_s) - math.log1p(ratio)) / (1.0 / tau_s - 1.0 / tau_m)


@njit(cache=True, error_model="numpy")
def _solve(D, U, s_hi, tau_m, tau_s, drive, regime):
    if regime == 0:
        z = min(max(-(drive / U) * math.exp(-D / U), -INV_E_HI), 0.0)
        s = tau_m * (-D / U - _lambertw(z))
    elif regime == 1:
        p = D + U
        root = (p + math.sqrt(max(p * p - 4.0 * U * drive, 0.0))) / (2.0 * U)
        s = -tau_m * math.log(root)
    else:
        lo, hi, s = 0.0, s_hi, s_hi
        for _ in range(NEWTON_MAX_ITERATIONS):
            v = _membrane(D, U, s, tau_m, tau_s)
            f = v - drive
            if f == 0.0:
                break
            if f < 0.0:
                lo = s
            else:
                hi = s
            newton = s - f / ((U * math.exp(-s / tau_s) - v) / tau_m)
            new_s = newton if (newton > lo and newton < hi) else 0.5 * (lo + hi)
            done = abs(new_s - s) <= 4e-16 * max(abs(new_s), 1e-300)
            s = new_s
            if done:
                break
    return min(max(s, 0.0), s_hi)


def _chunks(batch: int) -> np.ndarray:
    n = max(1, min(batch, numba.get_num_threads()))
    return np.linspace(0, batch, n + 1).astype(np.int64)


@njit(parallel=True, cache=True, error_model="numpy")
def _forward_kernel(t_in, w, tau_m, tau_s, drive, regime, bounds, t_out):
    n_in = t_in.shape[1]
    n_out = w.shape[1]
    n_tau = tau_m.shape[0]
    tau_stride = 1 if n_tau > 1 else 0
    drive_stride = 1 if drive.shape[0] > 1 else 0
    for chunk in prange(bounds.shape[0] - 1):
        D = np.empty(n_out)
        U = np.empty(n_out)
        decay_m = np.empty(n_tau)
        decay_s = np.empty(n_tau)
        kernel_delta = np.empty(n_tau)
        for b in range(bounds[chunk], bounds[chunk + 1]):
            times = t_in[b]
            order = np.argsort(times)
            out = t_out[b]
            D[:] = 0.0
            U[:] = 0.0
            out[:] = math.inf
            n_fired = 0
            for k in range(n_in):
                i = order[k]
                t_k = times[i]
                if t_k == math.inf or n_fired == n_out:
                    break
                for j in range(n_out):
                    U[j] += w[i, j]
                t_next = times[order[k + 1]] if k + 1 < n_in else math.inf
                delta = t_next - t_k
                if delta == 0.0:
                    continue
                for l in range(n_tau):
                    decay_m[l] = math.exp(-delta / tau_m[l])
                    kernel_delta[l], decay_s[l] = _kernel(delta, tau_m[l], tau_s[l])
                for j in range(n_out):
                    l = j * tau_stride
                    d_end = D[j] * decay_m[l] + U[j] * kernel_delta[l]
                    u_end = U[j] * decay_s[l]
                    if out[j] == math.inf:
                        c = drive[j * drive_stride]
                        s_hi = -1.0
                        if d_end >= c:
                            s_hi = delta
                        elif U[j] > D[j] and u_end <= d_end:
                            s_peak = _peak_time(D[j], U[j], tau_m[l], tau_s[l], regime)
                            if (s_peak > 0.0 and s_peak < delta
                                    and _membrane(D[j], U[j], s_peak, tau_m[l], tau_s[l]) >= c):
                                s_hi = s_peak
                        if s_hi >= 0.0:
                            out[j] = t_k + _solve(D[j], U[j], s_hi, tau_m[l], tau_s[l], c,
                                                  regime)
                            n_fired += 1
                    D[j] = d_end
                    U[j] = u_end


@njit(parallel=True, cache=True, error_model="numpy")
def _backward_kernel(t_in, w, t_out, grad_t_out, tau_m, tau_s, drive, max_dw_norm, bounds,
                     grad_t_in, grad_w_parts):
    n_in = t_in.shape[1]
    n_out = w.shape[1]
    tau_stride = 1 if tau_m.shape[0] > 1 else 0
    drive_stride = 1 if drive.shape[0] > 1 else 0
    for chunk in prange(bounds.shape[0] - 1):
        grad_w = grad_w_parts[chunk]
        kernel = np.empty(n_in)
        synaptic = np.empty(n_in)
        for b in range(bounds[chunk], bounds[chunk + 1]):
            times = t_in[b]
            order = np.argsort(times)
            for j in range(n_out):
                t_star = t_out[b, j]
                g = grad_t_out[b, j]
                if t_star == math.inf or g == 0.0:
                    continue
                l = j * tau_stride
                c = drive[j * drive_stride]
                n_causal = 0
                current = 0.0
                largest_kernel = 0.0
                while n_causal < n_in and times[order[n_causal]] < t_star:
                    i = order[n_causal]
                    kernel[n_causal], synaptic[n_causal] = _kernel(t_star - times[i], tau_m[l],
                                                                   tau_s[l])
                    current += w[i, j] * synaptic[n_causal]
                    largest_kernel = max(largest_kernel, kernel[n_causal])
                    n_causal += 1
                slope = max((current - c) / tau_m[l], MIN_SLOPE_FRACTION * c / tau_m[l])
                keep_dw = not (max_dw_norm >= 0.0 and largest_kernel * abs(g) / slope > max_dw_norm)
                for k in range(n_causal):
                    i = order[k]
                    if keep_dw:
                        grad_w[i, j] -= kernel[k] / slope * g
                    grad_t_in[b, i] += w[i, j] * (synaptic[k] - kernel[k]) / (tau_m[l] * slope) * g


def _numpy64(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """First spike times t_out[B, M] (+inf: no spike) for inputs t_in[B, N], weights w[N, M]."""
    tau_m, tau_s, drive = params.arrays(w.shape[1])
    t_out = np.empty((t_in.shape[0], w.shape[1]))
    _forward_kernel(_numpy64(t_in), _numpy64(w), tau_m, tau_s, drive,
                    REGIME_CODES.get(params.regime, 2), _chunks(t_in.shape[0]), t_out)
    return torch.from_numpy(t_out).to(dtype=t_in.dtype, device=t_in.device)


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """(grad_t_in[B, N], grad_w[N, M]); see `backends.torch_backend.backward`."""
    tau_m, tau_s, drive = params.arrays(w.shape[1])
    bounds = _chunks(t_in.shape[0])
    grad_t_in = np.zeros(t_in.shape)
    grad_w_parts = np.zeros((bounds.shape[0] - 1,) + tuple(w.shape))
    _backward_kernel(_numpy64(t_in), _numpy64(w), _numpy64(t_out), _numpy64(grad_t_out),
                     tau_m, tau_s, drive, -1.0 if max_dw_norm is None else float(max_dw_norm),
                     bounds, grad_t_in, grad_w_parts)
    as_tensor = (lambda x, like: torch.from_numpy(x).to(dtype=like.dtype, device=like.device))
    return as_tensor(grad_t_in, t_in), as_tensor(grad_w_parts.sum(0), w)
