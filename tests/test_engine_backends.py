"""The `torch` and `cpu` backends agree (float64, <= 1e-10), forward and backward, and a
fuzz test over thousands of random layers: no NaN, torch == cpu, and agreement with the
dense causal-set algorithm of the published code wherever that one is finite."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_engine import ALL_REGIMES, make_params, random_layer

from backends import get_backend
from snnsim import NeuronParams
from snnsim.reference import dense_causal_set_times

TORCH, CPU = get_backend("torch"), get_backend("cpu")


def assert_agree(a: torch.Tensor, b: torch.Tensor, tol: torch.Tensor | float, what: str):
    assert torch.equal(torch.isfinite(a), torch.isfinite(b)), f"{what}: spikes differ"
    finite = torch.isfinite(a)
    error = (a[finite] - b[finite]).abs()
    tol = torch.as_tensor(tol, dtype=a.dtype).expand_as(a)[finite]
    assert (error <= tol).all(), f"{what}: error {error.max():.3e} (tolerance {tol.min():.1e})"


def _scaled(x: torch.Tensor, tol: float) -> float:
    """tol relative to the largest |entry| (sums of many terms lose relative accuracy where
    they cancel, not more than the largest term allows)."""
    return tol * max(1.0, float(x.abs().max())) if x.numel() else tol


@pytest.mark.parametrize("regime", ALL_REGIMES)
@pytest.mark.parametrize("case, layer", list(enumerate([
    {"batch": 7, "n_in": 12, "n_out": 9},
    {"batch": 5, "n_in": 40, "n_out": 3, "tie_fraction": 0.5, "inf_fraction": 0.4},
    {"batch": 3, "n_in": 2, "n_out": 30, "weight_mean": 2.0},
    {"batch": 6, "n_in": 25, "n_out": 17, "weight_mean": 0.2, "weight_std": 1.5},  # inhibition
])))
def test_torch_and_cpu_agree(regime, case, layer):
    t_in, w = random_layer(seed=10 * case + ALL_REGIMES.index(regime), **layer)
    params = make_params(regime, w.shape[1], seed=4)
    t_torch = TORCH.forward(t_in, w, params)
    t_cpu = CPU.forward(t_in, w, params)
    assert_agree(t_torch, t_cpu, 1e-10, "t_out")
    assert torch.isfinite(t_cpu).any()
    grad = torch.randn(t_cpu.shape, generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64)
    for max_dw_norm in (None, 0.3):
        g_torch = TORCH.backward(t_in, w, t_torch, grad, params, max_dw_norm)
        g_cpu = CPU.backward(t_in, w, t_cpu, grad, params, max_dw_norm)
        for name, a, b in zip(("grad_t_in", "grad_w"), g_torch, g_cpu):
            assert_agree(a, b, _scaled(b, 1e-10), f"{name} (max_dw_norm={max_dw_norm})")


@pytest.mark.parametrize("spread", ["one late outlier", "all tied", "tiny spread"])
def test_unevenly_spread_input_times(spread):
    """Input lists that defeat the cpu backend's bucket sort (one bucket overflowing, all in
    one bucket) take its fallbacks; results still agree with the torch twin."""
    t_in, w = random_layer(seed=17, batch=4, n_in=60, n_out=5, inf_fraction=0.1,
                           weight_mean=0.1, weight_std=0.3, t_max=2.0)
    if spread == "one late outlier":
        t_in[:, 7] = 1e4
    elif spread == "all tied":
        t_in = torch.where(torch.isfinite(t_in), 0.5, t_in)
    else:
        t_in = torch.where(torch.isfinite(t_in), 0.5 + 1e-13 * t_in, t_in)
    params = make_params("equal")
    t_torch, t_cpu = TORCH.forward(t_in, w, params), CPU.forward(t_in, w, params)
    assert_agree(t_torch, t_cpu, 1e-10, "t_out")
    assert torch.isfinite(t_cpu).any()
    grad = torch.ones_like(t_cpu)
    for name, a, b in zip(("grad_t_in", "grad_w"), TORCH.backward(t_in, w, t_torch, grad, params),
                          CPU.backward(t_in, w, t_cpu, grad, params)):
        assert_agree(a, b, _scaled(b, 1e-10), name)


@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_cpu_state_from_the_forward_pass_changes_nothing(regime):
    """backward_with_state (the sort order kept from the forward pass) equals backward."""
    t_in, w = random_layer(seed=31, batch=9, n_in=20, n_out=6, tie_fraction=0.3)
    params = make_params(regime, 6, seed=5)
    t_out, state = CPU.forward_with_state(t_in, w, params)
    assert torch.equal(t_out, CPU.forward(t_in, w, params))
    grad = torch.randn(t_out.shape, generator=torch.Generator().manual_seed(6),
                       dtype=torch.float64)
    for max_dw_norm in (None, 0.3):
        plain = CPU.backward(t_in, w, t_out, grad, params, max_dw_norm)
        with_state = CPU.backward_with_state(state, t_in, w, t_out, grad, params, max_dw_norm)
        assert all(torch.equal(a, b) for a, b in zip(plain, with_state))
        no_input_grad = CPU.backward_with_state(state, t_in, w, t_out, grad, params, max_dw_norm,
                                                input_grad=False)
        assert no_input_grad[0] is None and torch.equal(no_input_grad[1], plain[1])


def fuzz_layers(n_layers: int, seed: int):
    """Random (t_in, w, params) with random sizes, weight scales, times (with +inf and ties)
    and regimes."""
    rng = np.random.default_rng(seed)
    for k in range(n_layers):
        regime = ("equal", "double", "general", "per_neuron")[k % 4]
        batch, n_in, n_out = (int(rng.integers(1, 6)), int(rng.integers(1, 30)),
                              int(rng.integers(1, 12)))
        t_in, w = random_layer(seed=int(rng.integers(1 << 30)), batch=batch, n_in=n_in,
                               n_out=n_out, inf_fraction=float(rng.uniform(0, 0.6)),
                               tie_fraction=float(rng.uniform(0, 0.5)),
                               weight_mean=float(rng.uniform(-0.5, 2.0)),
                               weight_std=float(rng.uniform(0.1, 2.0)),
                               t_max=float(rng.choice([0.5, 3.0, 10.0])))
        w = w * float(10.0 ** rng.uniform(-1, 1.5))
        if regime == "equal":
            params = NeuronParams(tau_syn=float(rng.uniform(0.3, 3.0)),
                                  threshold=float(rng.uniform(0.2, 2.0)))
            params = NeuronParams(tau_syn=params.tau_syn, tau_mem=params.tau_syn,
                                  threshold=params.threshold, leak=0.0, g_leak=1.0)
        elif regime == "double":
            tau_syn = float(rng.uniform(0.3, 3.0))
            params = NeuronParams(tau_syn=tau_syn, tau_mem=2.0 * tau_syn,
                                  threshold=float(rng.uniform(0.2, 2.0)),
                                  g_leak=float(rng.uniform(0.5, 2.0)))
        elif regime == "general":
            tau_syn = float(rng.uniform(0.3, 3.0))
            ratio = float(rng.choice([rng.uniform(0.2, 0.95), rng.uniform(1.05, 1.95),
                                      rng.uniform(2.05, 5.0)]))
            params = NeuronParams(tau_syn=tau_syn, tau_mem=ratio * tau_syn,
                                  threshold=float(rng.uniform(0.2, 2.0)), leak=-0.3)
        else:
            params = make_params("per_neuron", n_out, seed=int(rng.integers(1 << 30)))
        yield t_in, w, params


def amplification(t_in, w, t_out, params):
    """Per (sample, neuron): sum_i |w_ij dt*_j/dw_ij| (+1), how much relative rounding in the
    weighted sums can move t*; large only near grazing, where V'_dot -> 0."""
    total = torch.zeros_like(t_out)
    for j in range(w.shape[1]):
        basis = torch.zeros_like(t_out)
        basis[:, j] = 1.0
        for b in range(t_out.shape[0]):
            if math.isinf(t_out[b, j]):
                continue
            one = torch.zeros_like(t_out)
            one[b, j] = 1.0
            _, grad_w = CPU.backward(t_in[b:b + 1], w, t_out[b:b + 1], one[b:b + 1], params)
            total[b, j] = (w[:, j] * grad_w[:, j]).abs().sum()
    return 1.0 + total


FUZZ_LAYERS = 2000
TORCH_EVERY = 5  # the torch twin runs slowly per call (many small tensor ops): a fifth of them


def test_fuzz():
    n_spikes = n_dense = n_torch = 0
    for k, (t_in, w, params) in enumerate(fuzz_layers(FUZZ_LAYERS, seed=2024)):
        t_cpu = CPU.forward(t_in, w, params)
        assert not torch.isnan(t_cpu).any()
        assert (torch.isinf(t_cpu) | (t_cpu >= t_in.min(1, keepdim=True).values)).all()
        grad = torch.randn(t_cpu.shape, dtype=torch.float64)
        for max_dw_norm in (None, 1.0):
            assert all(torch.isfinite(x).all()
                       for x in CPU.backward(t_in, w, t_cpu, grad, params, max_dw_norm))
        finite = torch.isfinite(t_cpu)
        n_spikes += int(finite.sum())
        if k % TORCH_EVERY == 0:
            n_torch += 1
            t_torch = TORCH.forward(t_in, w, params)
            assert not torch.isnan(t_torch).any()
            assert all(torch.isfinite(x).all()
                       for x in TORCH.backward(t_in, w, t_torch, grad, params))
            assert torch.equal(torch.isfinite(t_torch), finite), "backends disagree on a spike"
            if not torch.allclose(t_torch[finite], t_cpu[finite], rtol=0, atol=1e-10):
                # Only where the crossing is ill-conditioned (near grazing) may they differ.
                tol = 1e-10 + 1e-14 * amplification(t_in, w, t_cpu, params)
                assert_agree(t_torch, t_cpu, tol, "fuzz t_out")
        if params.regime == "equal":
            dense = dense_causal_set_times(t_in, w, params)
            defined = torch.isfinite(dense)
            n_dense += int(defined.sum())
            assert finite[defined].all(), "the dense algorithm finds a spike the walk misses"
            if not ((dense - t_cpu).abs()[defined] <= 1e-9).all():
                tol = 1e-9 + 1e-14 * amplification(t_in, w, t_cpu, params)
                assert ((dense - t_cpu).abs()[defined] <= tol[defined]).all()
    assert n_spikes > 3000 and n_dense > 500 and n_torch == FUZZ_LAYERS // TORCH_EVERY
