"""Independent references for the event-driven engine: a time-grid integrator and
the dense causal-set algorithm of the published code.

Neither is meant for production use; they check the engine (tests, benchmarks)
and back the `use_forward_integrator` training option.
"""
from __future__ import annotations

import math

import torch

from snnsim.lambertw import lambertw
from snnsim.params import EQUAL, NeuronParams


def integrate_first_spike_times(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams,
                                resolution: float, sim_time: float) -> torch.Tensor:
    """First threshold crossings of the LIF ODE integrated with forward Euler on a grid.

        I(t + dt) = I(t) e^{-dt/tau_s} + sum of weights of inputs arriving in (t, t + dt]
        V'(t + dt) = V'(t) + dt (I(t) - V'(t)) / tau_m         (V' = g_L (V - E_L))

    The crossing time is interpolated linearly inside the step where V' reaches
    g_L (theta - E_L); +inf if it does not happen before `sim_time`. Error O(dt).
    """
    n_out = w.shape[1]
    tau_m, tau_s, drive = (torch.as_tensor(a, dtype=t_in.dtype, device=t_in.device)
                           for a in params.arrays(n_out))
    n_steps = int(math.ceil(sim_time / resolution))
    arrival = torch.ceil(t_in / resolution).clamp(max=n_steps + 1)
    arrival = torch.where(torch.isfinite(t_in), arrival, n_steps + 1).long()
    drive_per_step = t_in.new_zeros(t_in.shape[0], n_steps + 2, n_out)
    drive_per_step.scatter_add_(1, arrival[:, :, None].expand(-1, -1, n_out),
                                w[None].expand(t_in.shape[0], -1, -1).contiguous())
    current = t_in.new_zeros(t_in.shape[0], n_out)
    v = t_in.new_zeros(t_in.shape[0], n_out)
    t_out = t_in.new_full((t_in.shape[0], n_out), math.inf)
    synaptic_decay = torch.exp(-resolution / tau_s)
    for step in range(n_steps):
        current = current * synaptic_decay + drive_per_step[:, step]
        v_next = v + resolution * (current - v) / tau_m
        crossed = torch.isinf(t_out) & (v_next >= drive)
        fraction = (drive - v) / (v_next - v)
        t_out = torch.where(crossed, (step + fraction) * resolution, t_out)
        v = v_next
    return t_out


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
