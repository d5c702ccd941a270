"""`torch` backend: the event walk written in plain tensor ops, on any device.

This is the readable twin that every other backend is tested against.

Notation. A layer receives input spikes at times t_i with weights w_ij. Writing
the membrane in units of the leak conductance, V'(t) = g_L (V(t) - E_L), the
LIF equation with C = tau_m g_L gives

    V'_j(t) = sum_i w_ij K(t - t_i),     tau_m dV'/dt = -V' + I,   I_j(t) = sum_i w_ij e^{-(t - t_i)/tau_s}

with the post-synaptic kernel (K(s) = 0 for s <= 0)

    K(s) = tau_s / (tau_m - tau_s) (e^{-s/tau_m} - e^{-s/tau_s})      (tau_m != tau_s)
    K(s) = (s / tau) e^{-s/tau}                                        (tau_m = tau_s = tau)

evaluated overflow-free as K(s) = e^{-s/tau_max} phi(s) / tau_m, phi(s) = -expm1(-a s)/a,
a = |1/tau_s - 1/tau_m| (phi = s for a = 0). Neuron j fires when V'_j reaches
the drive c = g_L (theta - E_L).

Event walk. Inputs are sorted by time. Just after input k the state of neuron j
is the pair (D, U) = (V'(t_k), I(t_k)): both are sums over the causal set kept in
the frame of the current input, so that no e^{t/tau} ever overflows. Over the
interval s in [0, t_{k+1} - t_k]

    V'(t_k + s) = D e^{-s/tau_m} + U K(s),     dV'/ds = (U e^{-s/tau_s} - V') / tau_m

so the end value D_end = D e^{-Δ/tau_m} + U K(Δ) and the current U_end = U e^{-Δ/tau_s}
cost two multiply-adds with factors shared by all neurons. V' has at most one
extremum per interval; a crossing exists iff D_end >= c, or V' rises at the start
(U > D), falls at the end (U_end <= D_end) and its peak reaches c. Only then is the
crossing solved:

    tau_m = tau_s = tau:  s* = tau (-D/U - W0(z)),  z = -(c/U) e^{-D/U}
    tau_m = 2 tau_s:      with x = e^{-s/tau_m}, V' = (D+U) x - U x^2, so
                          x* = (D+U + sqrt((D+U)^2 - 4 U c)) / (2U),  s* = -tau_m ln x*
    any other ratio:      safeguarded Newton (bisection fallback) on [0, s_hi]

Gradients (implicit function theorem at V'(t*) = c, causal inputs t_i < t*):

    dt*/dw_ij = -K(t* - t_i) / V'_dot,    dt*/dt_i = w_ij (e^{-(t*-t_i)/tau_s} - K(t* - t_i)) / (tau_m V'_dot)
    V'_dot = (I(t*) - c) / tau_m

A neuron that does not fire passes no gradient. V'_dot -> 0 when the membrane
only grazes threshold; it is floored at MIN_SLOPE_FRACTION * c / tau_m so that
gradients stay finite (clip them with `max_dw_norm`).
"""
from __future__ import annotations

import math

import torch

from snnsim.constants import MIN_SLOPE_FRACTION, NEWTON_MAX_ITERATIONS
from snnsim.lambertw import INV_E_HI, lambertw
from snnsim.params import DOUBLE, EQUAL, NeuronParams

BACKWARD_CHUNK_ELEMENTS = 1 << 22  # bound on B*N*M per backward chunk


def _neuron_tensors(params: NeuronParams, n_out: int, like: torch.Tensor):
    return tuple(torch.as_tensor(a, dtype=like.dtype, device=like.device)
                 for a in params.arrays(n_out))


def psp_kernel(s: torch.Tensor, tau_m: torch.Tensor, tau_s: torch.Tensor) -> torch.Tensor:
    """K(s) for s >= 0 (K(inf) = 0), see the module docstring."""
    a = (1.0 / tau_s - 1.0 / tau_m).abs()
    finite = torch.isfinite(s)
    s0 = torch.where(finite, s, torch.zeros_like(s))
    phi = torch.where(a > 0, -torch.expm1(-a * s0) / torch.where(a > 0, a, 1.0), s0)
    value = torch.exp(-s0 / torch.maximum(tau_m, tau_s)) * phi / tau_m
    return torch.where(finite, value, torch.zeros_like(value))


def membrane(D, U, s, tau_m, tau_s):
    """V'(t_k + s) = D e^{-s/tau_m} + U K(s)."""
    return D * torch.exp(-s / tau_m) + U * psp_kernel(s, tau_m, tau_s)


def peak_reaches_threshold(D, U, delta, tau_m, tau_s, drive, regime: str):
    """(reaches, s_peak): whether V'(t_k + s) has its peak at some s_peak in (0, delta) with
    V'(s_peak) >= drive, for neurons whose V' rises at s = 0 and falls at s = delta.

    tau_m = tau_s: s_peak = tau (1 - D/U), where V' = U e^{-s_peak/tau}; it reaches the
                   drive iff z = -(drive/U) e^{-D/U} >= -1/e (the argument of W0).
    tau_m = 2 tau_s: with x = e^{-s/tau_m}, V' = (D+U) x - U x^2 peaks at x = (D+U)/(2U),
                   reaching the drive iff the discriminant (D+U)^2 - 4 U drive >= 0.
    otherwise:     with kappa = tau_s/(tau_m - tau_s),
                   s_peak = (ln(tau_m/tau_s) - log1p(D/(kappa U))) / (1/tau_s - 1/tau_m),
                   and V' is evaluated there.
    """
    if regime == EQUAL:
        s_peak = tau_m * (1.0 - D / U)
        z = -(drive / U) * torch.exp(-D / U)
        return (s_peak > 0) & (s_peak < delta) & (z >= -INV_E_HI), s_peak
    if regime == DOUBLE:
        p = D + U
        x_peak = p / (2.0 * U)
        reaches = ((x_peak > torch.exp(-delta / tau_m)) & (x_peak < 1.0)
                   & (p * p - 4.0 * U * drive >= 0))
        return reaches, -tau_m * torch.log(x_peak)
    kappa = tau_s / (tau_m - tau_s)
    s_peak = ((torch.log(tau_m / tau_s) - torch.log1p(D / (kappa * U)))
              / (1.0 / tau_s - 1.0 / tau_m))
    inside = (s_peak > 0) & (s_peak < delta)
    s_peak = torch.where(inside, s_peak, 0.0)
    return inside & (membrane(D, U, s_peak, tau_m, tau_s) >= drive), s_peak


def solve_crossing(D, U, s_hi, tau_m, tau_s, drive, regime: str):
    """Earliest s in [0, s_hi] with V'(t_k + s) = drive, given V'(t_k) < drive <= V'(t_k + s_hi)."""
    if regime == EQUAL:
        z = (-(drive / U) * torch.exp(-D / U)).clamp(min=-INV_E_HI, max=0.0)
        s = tau_m * (-D / U - lambertw(z))
    elif regime == DOUBLE:
        p = D + U
        root = (p + torch.sqrt((p * p - 4.0 * U * drive).clamp(min=0.0))) / (2.0 * U)
        s = -tau_m * torch.log(root)
    else:
        s = _newton(D, U, s_hi, tau_m, tau_s, drive)
    return torch.minimum(s.clamp(min=0.0), s_hi)


def _newton(D, U, s_hi, tau_m, tau_s, drive):
    """Safeguarded Newton on f(s) = V'(s) - drive with the bracket [0, s_hi]."""
    lo, hi = torch.zeros_like(D), s_hi.clone()
    s = hi.clone()
    for _ in range(NEWTON_MAX_ITERATIONS):
        v = membrane(D, U, s, tau_m, tau_s)
        f = v - drive
        slope = (U * torch.exp(-s / tau_s) - v) / tau_m
        below = f < 0
        lo = torch.where(below, s, lo)
        hi = torch.where(below, hi, s)
        newton = s - f / slope
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        new_s = torch.where(inside, newton, 0.5 * (lo + hi))
        new_s = torch.where(f == 0, s, new_s)
        done = (new_s - s).abs() <= 4e-16 * new_s.abs().clamp(min=1e-300)
        s = new_s
        if bool(done.all()):
            break
    return s


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """First spike times t_out[B, M] (+inf: no spike) of a layer for inputs t_in[B, N], w[N, M]."""
    batch, n_in = t_in.shape
    n_out = w.shape[1]
    regime = params.regime
    tau_m, tau_s, drive = _neuron_tensors(params, n_out, t_in)
    t_sorted, order = torch.sort(t_in, dim=1)
    D = t_in.new_zeros(batch, n_out)
    U = t_in.new_zeros(batch, n_out)
    t_out = t_in.new_full((batch, n_out), math.inf)
    n_steps = int(torch.isfinite(t_sorted).any(0).sum())
    inf_column = t_in.new_full((batch, 1), math.inf)
    for k in range(n_steps):
        t_k = t_sorted[:, k:k + 1]
        active = torch.isfinite(t_k)
        U = U + torch.where(active, w[order[:, k]], 0.0)
        t_next = t_sorted[:, k + 1:k + 2] if k + 1 < n_in else inf_column
        delta = torch.where(active, t_next - t_k, 0.0)
        D_end = D * torch.exp(-delta / tau_m) + U * psp_kernel(delta, tau_m, tau_s)
        U_end = U * torch.exp(-delta / tau_s)
        waiting = active & torch.isinf(t_out)
        hit_end = waiting & (D_end >= drive)
        rising_then_falling = waiting & ~hit_end & (U > D) & (U_end <= D_end)
        s_hi = delta.expand_as(D)
        crossing = hit_end
        if bool(rising_then_falling.any()):
            reaches, s_peak = peak_reaches_threshold(D, U, s_hi, tau_m, tau_s, drive, regime)
            hit_peak = rising_then_falling & reaches
            if regime not in (EQUAL, DOUBLE):  # the Newton bracket ends at the peak
                s_hi = torch.where(hit_peak, s_peak, s_hi)
            crossing = crossing | hit_peak
        if bool(crossing.any()):
            b, j = crossing.nonzero(as_tuple=True)
            tau_m_bj, tau_s_bj, drive_bj = (x.expand_as(D)[b, j] for x in (tau_m, tau_s, drive))
            s = solve_crossing(D[b, j], U[b, j], s_hi[b, j], tau_m_bj, tau_s_bj, drive_bj, regime)
            t_out[b, j] = t_k[b, 0] + s
            if bool(torch.isfinite(t_out).all()):
                break
        D, U = D_end, U_end
    return t_out


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """(grad_t_in[B, N], grad_w[N, M]) for the loss gradient grad_t_out[B, M] w.r.t. t_out.

    With `max_dw_norm`, the weight gradient of a (sample, neuron) pair whose largest
    entry exceeds it is dropped, as in the published code.
    """
    batch, n_in = t_in.shape
    n_out = w.shape[1]
    tau_m, tau_s, drive = _neuron_tensors(params, n_out, t_in)
    grad_t_in = torch.zeros_like(t_in)
    grad_w = torch.zeros_like(w)
    chunk = max(1, BACKWARD_CHUNK_ELEMENTS // max(1, n_in * n_out))
    for start in range(0, batch, chunk):
        rows = slice(start, start + chunk)
        fired = torch.isfinite(t_out[rows])
        g = torch.where(fired, grad_t_out[rows], 0.0)
        s = t_out[rows, None, :] - t_in[rows, :, None]
        causal = (s > 0) & fired[:, None, :]
        s = torch.where(causal, s, 0.0)
        synaptic = torch.where(causal, torch.exp(-s / tau_s), 0.0)
        kernel = torch.where(causal, psp_kernel(s, tau_m, tau_s), 0.0)
        current = (w * synaptic).sum(1)
        slope = torch.maximum((current - drive) / tau_m, MIN_SLOPE_FRACTION * drive / tau_m)
        dw = -kernel / slope[:, None, :] * g[:, None, :]
        if max_dw_norm is not None:
            keep = dw.abs().amax(1) <= max_dw_norm
            dw = dw * keep[:, None, :]
        grad_w += dw.sum(0)
        grad_t_in[rows] = (w * (synaptic - kernel) / (tau_m * slope)[:, None, :]
                           * g[:, None, :]).sum(2)
    return grad_t_in, grad_w
