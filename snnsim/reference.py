"""Independent references for the event-driven engine: a time-grid integrator and
the dense causal-set algorithm of the published code.

Neither is meant for production use; they check the engine (tests, benchmarks)
and back the `use_forward_integrator` training option.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from snnsim.lambertw import lambertw
from snnsim.params import EQUAL, NeuronParams


def integrate_first_spike_times(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams,
                                resolution: float, sim_time: float) -> torch.Tensor:
    """First threshold crossings of the LIF ODE integrated with forward Euler on a grid.

        I(t + dt) = I(t) e^{-dt/tau_s} + sum of weights of inputs arriving in (t, t + dt]
        V'(t + dt) = V'(t) + dt (I(t + dt) - V'(t)) / tau_m      (V' = g_L (V - E_L))

    The crossing time is interpolated linearly inside the step where V' reaches
    g_L (theta - E_L); +inf if it does not happen before `sim_time`. Error O(dt).
    Computed in float64 on the CPU (a plain compiled loop over samples and steps),
    returned in the dtype and on the device of `t_in`.
    """
    n_out = w.shape[1]
    tau_m, tau_s, drive = (np.broadcast_to(a, (n_out,)).astype(np.float64)
                           for a in params.arrays(n_out))
    n_steps = math.ceil(sim_time / resolution)
    times = t_in.detach().cpu().double().numpy()
    with np.errstate(invalid="ignore"):
        arrival = np.where(np.isfinite(times),
                           np.ceil(times / resolution).clip(max=n_steps + 1), n_steps + 1)
    t_out = np.full((t_in.shape[0], n_out), math.inf)
    _euler_first_crossings(arrival.astype(np.int64), w.detach().cpu().double().numpy(),
                           np.exp(-resolution / tau_s), resolution / tau_m, drive, n_steps,
                           resolution, t_out)
    return torch.from_numpy(t_out).to(dtype=t_in.dtype, device=t_in.device)


@njit(cache=True)
def _euler_first_crossings(arrival, w, synaptic_decay, step_over_tau_m, drive, n_steps,
                           resolution, t_out):
    """Euler steps of `integrate_first_spike_times`; arrival[b, i] is the step of input i."""
    n_in, n_out = w.shape
    current = np.zeros(n_out)
    v = np.zeros(n_out)
    for b in range(arrival.shape[0]):
        order = np.argsort(arrival[b])
        current[:] = 0.0
        v[:] = 0.0
        next_input = 0
        for step in range(n_steps):
            for j in range(n_out):
                current[j] *= synaptic_decay[j]
            while next_input < n_in and arrival[b, order[next_input]] == step:
                current += w[order[next_input]]
                next_input += 1
            for j in range(n_out):
                v_next = v[j] + step_over_tau_m[j] * (current[j] - v[j])
                if t_out[b, j] == math.inf and v_next >= drive[j]:
                    t_out[b, j] = (step + (drive[j] - v[j]) / (v_next - v[j])) * resolution
                v[j] = v_next


def dense_causal_set_times(t_in: torch.Tensor, w: torch.Tensor,
                           params: NeuronParams) -> torch.Tensor:
    """The published O(B n^2 M) algorithm (tau_m = tau_s only), re-derived.

    Inputs are sorted; for every prefix k of the sorted inputs (as an n x n causal
    mask), a_k = sum_{i<=k} w_i e^{t_i/tau}, b_k = sum_{i<=k} w_i (t_i/tau) e^{t_i/tau},
    and the candidate t*_k = tau (b_k/a_k - W0(-c/a_k e^{b_k/a_k})); the output is
    the earliest candidate with t_k <= t*_k <= t_{k+1}. Because it uses e^{t/tau}
    unshifted, it overflows for late inputs (then NaN), and it needs memory
    proportional to B n^2 M.
    """
    if params.regime != EQUAL:
        raise ValueError("the dense causal-set algorithm only exists for tau_mem == tau_syn")
    n_in = t_in.shape[1]
    tau = float(params.tau_syn)
    drive = float(params.g_leak * (params.threshold - params.leak))
    t_sorted, order = torch.sort(t_in, dim=1)
    w_sorted = w[order]                                                   # B x n x M
    causal = torch.tril(t_in.new_ones(n_in, n_in))                        # n x n
    finite = torch.isfinite(t_sorted)
    exp_t = torch.where(finite, torch.exp(t_sorted / tau), 0.0)
    t_exp_t = torch.where(finite, t_sorted / tau * exp_t, 0.0)
    masked_w = causal[None, :, :, None] * w_sorted[:, None, :, :]        # B x n x n x M
    a = (masked_w * exp_t[:, None, :, None]).sum(2)                       # B x n x M
    b = (masked_w * t_exp_t[:, None, :, None]).sum(2)
    z = -drive / a * torch.exp(b / a)
    candidate = tau * (b / a - lambertw(z))
    t_next = torch.cat([t_sorted[:, 1:], t_in.new_full((t_in.shape[0], 1), math.inf)], 1)
    valid = ((a > 0) & (candidate >= t_sorted[:, :, None]) & (candidate <= t_next[:, :, None])
             & finite[:, :, None])
    candidate = torch.where(valid, candidate, math.inf)
    return candidate.min(1).values


class EulerIntegratorBackend:
    """A backend object whose forward pass integrates the ODE on a grid
    (`integrate_first_spike_times`) and whose backward pass is the exact one of
    `exact_backend`, evaluated at the integrated times (the published
    `use_forward_integrator` option, for verification)."""

    def __init__(self, resolution: float, sim_time: float, exact_backend: str = "cpu"):
        self.resolution = resolution
        self.sim_time = sim_time
        self.exact_backend = exact_backend

    def forward(self, t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
        return integrate_first_spike_times(t_in, w, params, self.resolution, self.sim_time)

    def backward(self, t_in, w, t_out, grad_t_out, params, max_dw_norm=None):
        from backends import get_backend

        return get_backend(self.exact_backend).backward(t_in, w, t_out, grad_t_out, params,
                                                        max_dw_norm)
