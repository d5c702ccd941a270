"""Gradients of first-spike times: finite differences (gradcheck) for each regime and backend,
`max_dw_norm` against a direct computation, translation invariance."""
from __future__ import annotations

import math

import pytest
import torch
from test_engine import ALL_REGIMES, BACKENDS, make_params, random_layer, robust_mask

from snnsim import first_spike_times


def _well_posed_layer(regime: str, seed: int):
    """A small layer with no neuron near grazing and no input within 1e-3 of an output
    time (where a finite-difference step would change the causal set)."""
    t_in, w = random_layer(seed=seed, batch=2, n_in=4, n_out=3, inf_fraction=0.1,
                           tie_fraction=0.0, weight_mean=1.0, weight_std=0.7, t_max=2.0)
    params = make_params(regime, 3, seed=seed)
    t_out = first_spike_times(t_in, w, params, "cpu")
    gaps = (t_out[:, None, :] - t_in[:, :, None]).abs()
    well_posed = (bool(robust_mask(t_in, w, params, margin=0.05).all())
                  and bool((gaps[torch.isfinite(gaps)] > 1e-3).all())
                  and int(torch.isfinite(t_out).sum()) >= 3)
    return t_in, w, params, well_posed


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_gradcheck(backend, regime):
    seed = next(s for s in range(100) if _well_posed_layer(regime, s)[3])
    t_in, w, params, _ = _well_posed_layer(regime, seed)

    def spike_times(t, weights):
        return first_spike_times(t, weights, params, backend).nan_to_num(posinf=0.0)

    assert torch.autograd.gradcheck(spike_times, (t_in.requires_grad_(), w.requires_grad_()),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_input_time_gradients_sum_to_one(backend, regime):
    """Shifting every input by d shifts t* by d: sum_i dt*_j/dt_i = 1 for each spike."""
    t_in, w = random_layer(seed=21, batch=4, n_in=6, n_out=5, weight_mean=1.4)
    params = make_params(regime, 5, seed=1)
    t_out = first_spike_times(t_in, w, params, backend)
    jacobian = torch.autograd.functional.jacobian(
        lambda t: first_spike_times(t, w, params, backend).nan_to_num(posinf=0.0), t_in)
    row_sums = torch.einsum("bjbi->bj", jacobian)
    fired = torch.isfinite(t_out)
    assert fired.sum() >= 8
    torch.testing.assert_close(row_sums[fired], torch.ones_like(row_sums[fired]),
                               rtol=0, atol=1e-9)
    assert (row_sums[~fired] == 0).all()


def _direct_gradients(t_in, w, t_out, grad_t_out, tau, drive, max_dw_norm):
    """tau_m = tau_s = tau, written out: dt*/dw_i = -K_i / V'_dot,
    dt*/dt_i = w_i (e^{-s_i/tau} - K_i) / (tau V'_dot), V'_dot = (I(t*) - c) / tau, with
    K_i = (s_i/tau) e^{-s_i/tau}, s_i = t* - t_i over causal inputs; a (sample, neuron)
    whose largest |dw| exceeds max_dw_norm contributes no weight gradient."""
    grad_t_in = torch.zeros_like(t_in)
    grad_w = torch.zeros_like(w)
    n_clipped = 0
    for b in range(t_in.shape[0]):
        for j in range(w.shape[1]):
            if math.isinf(t_out[b, j]):
                continue
            s = t_out[b, j] - t_in[b]
            causal = s > 0
            s = torch.where(causal, s, 0.0)
            synaptic = torch.where(causal, torch.exp(-s / tau), 0.0)
            kernel = s / tau * synaptic
            slope = ((w[:, j] * synaptic).sum() - drive) / tau
            g = grad_t_out[b, j]
            dw = -kernel / slope * g
            if dw.abs().max() <= max_dw_norm:
                grad_w[:, j] += dw
            else:
                n_clipped += 1
            grad_t_in[b] += w[:, j] * (synaptic - kernel) / (tau * slope) * g
    return grad_t_in, grad_w, n_clipped


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_dw_norm_against_direct_computation(backend):
    params = make_params("equal")
    t_in, w = random_layer(seed=8, batch=6, n_in=7, n_out=5, weight_mean=0.8)
    t_out = first_spike_times(t_in, w, params, backend)
    grad_t_out = torch.randn(t_out.shape, generator=torch.Generator().manual_seed(2),
                             dtype=torch.float64)
    _, _, n_clipped_none = _direct_gradients(t_in, w, t_out, grad_t_out, 1.0, 0.88, math.inf)
    assert n_clipped_none == 0
    for norm in (math.inf, 0.5, 0.2, 0.05):
        expected_t, expected_w, n_clipped = _direct_gradients(t_in, w, t_out, grad_t_out, 1.0,
                                                              0.88, norm)
        t = t_in.clone().requires_grad_()
        weights = w.clone().requires_grad_()
        out = first_spike_times(t, weights, params, backend,
                                max_dw_norm=None if math.isinf(norm) else norm)
        out.backward(torch.where(torch.isfinite(out), grad_t_out, 0.0))
        torch.testing.assert_close(weights.grad, expected_w, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(t.grad, expected_t, rtol=1e-9, atol=1e-12)
        if norm == 0.2:
            assert 0 < n_clipped < int(torch.isfinite(t_out).sum())  # the norm bites, partly
