"""Exact first-spike times of a LIF layer: each regime against hand-solved cases, an
independent root search on the analytic PSP and a fine-grained ODE integration; edge
cases; rejection of bad input.

Helpers defined here are shared by the other tests/test_engine_*.py files.

Convention (docs/design.md section 2, C = tau_m g_L): V'(t) = g_L (V - E_L) = sum_i w_i K(t - t_i)
with K(s) = tau_s/(tau_m - tau_s) (e^{-s/tau_m} - e^{-s/tau_s}) (K(s) = (s/tau) e^{-s/tau}
for equal time constants); the neuron fires where V' first reaches c = g_L (theta - E_L).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import torch

import snnsim
from backends.torch_backend import psp_kernel
from snnsim import NeuronParams, first_spike_times
from snnsim.reference import integrate_first_spike_times

BACKENDS = ("torch", "cpu")
# Name -> NeuronParams keyword arguments; g_leak, leak and threshold are not the defaults so
# that the drive g_L (theta - E_L) is exercised.
REGIMES = {
    "equal": {"tau_syn": 1.0, "tau_mem": 1.0},
    "double": {"tau_syn": 0.5, "tau_mem": 1.0},
    "ratio_1.7": {"tau_syn": 1.0, "tau_mem": 1.7},
    "ratio_0.6": {"tau_syn": 1.0, "tau_mem": 0.6},
}
NEURON = {"threshold": 1.3, "leak": 0.2, "g_leak": 0.8}  # drive c = 0.88


def make_params(regime: str, n_out: int | None = None, seed: int = 0) -> NeuronParams:
    """Parameters of a named regime; "per_neuron" draws time constants (ratio 0.3..3, away
    from 1 and 2) and thresholds per neuron."""
    if regime != "per_neuron":
        return NeuronParams(**REGIMES[regime], **NEURON)
    rng = np.random.default_rng(seed)
    tau_syn = rng.uniform(0.5, 1.5, n_out)
    ratio = rng.choice([rng.uniform(0.3, 0.9), rng.uniform(1.1, 1.9), rng.uniform(2.1, 3.0)],
                       n_out)
    ratio = np.where(np.abs(ratio - 1.0) < 0.05, 1.2, ratio)
    return NeuronParams(tau_syn=tau_syn, tau_mem=tau_syn * ratio,
                        threshold=rng.uniform(0.8, 1.5, n_out), leak=0.1, g_leak=1.1)


ALL_REGIMES = (*REGIMES, "per_neuron")


def kernel(s, tau_m, tau_s):
    """K(s) written out directly (0 for s <= 0), the oracle's PSP."""
    s = np.asarray(s, dtype=np.float64)
    positive = s > 0
    s = np.where(positive, s, 0.0)
    if tau_m == tau_s:
        value = s / tau_m * np.exp(-s / tau_m)
    else:
        value = tau_s / (tau_m - tau_s) * (np.exp(-s / tau_m) - np.exp(-s / tau_s))
    return np.where(positive, value, 0.0)


def kernel_peak(tau_m: float, tau_s: float) -> tuple[float, float]:
    """(s_peak, K(s_peak)) of the PSP kernel."""
    s_peak = tau_m if tau_m == tau_s else math.log(tau_m / tau_s) / (1.0 / tau_s - 1.0 / tau_m)
    return s_peak, float(kernel(s_peak, tau_m, tau_s))


def first_crossing(times, weights, tau_m, tau_s, drive, horizon=30.0, grid=200_001):
    """Earliest t with sum_i w_i K(t - t_i) = drive (inf if none before the last finite input
    + horizon): a scan of a fine grid, refined with brentq on the analytic PSP."""
    finite = np.isfinite(times)
    if not finite.any():
        return math.inf
    times, weights = np.asarray(times)[finite], np.asarray(weights)[finite]

    def v(t):
        return float(np.sum(weights * kernel(t - times, tau_m, tau_s))) - drive

    t_grid = np.linspace(times.min(), times.max() + horizon * max(tau_m, tau_s), grid)
    values = np.sum(weights[:, None] * kernel(t_grid[None, :] - times[:, None], tau_m, tau_s),
                    axis=0) - drive
    above = np.nonzero(values >= 0)[0]
    if above.size == 0:
        return math.inf
    k = above[0]
    return scipy.optimize.brentq(v, t_grid[k - 1], t_grid[k], xtol=1e-15, rtol=1e-15)


def assert_time(got: float, expected: float, tol: float, what="") -> None:
    """got == expected == inf, or both finite within tol."""
    if math.isinf(expected):
        assert got == expected, f"{what}: {got} instead of no spike"
    else:
        assert abs(got - expected) <= tol, f"{what}: {got} instead of {expected}"


def neuron_constants(params: NeuronParams, n_out: int):
    """Per-neuron (tau_m, tau_s, drive) as float arrays of length n_out."""
    return tuple(np.broadcast_to(a, (n_out,)).astype(float) for a in params.arrays(n_out))


def random_layer(seed: int, batch: int, n_in: int, n_out: int, *, inf_fraction=0.2,
                 tie_fraction=0.2, weight_mean=0.6, weight_std=1.0, t_max=3.0,
                 dtype=torch.float64):
    """Unsorted input times with +inf entries and ties, mixed-sign weights."""
    generator = torch.Generator().manual_seed(seed)
    t_in = torch.rand(batch, n_in, generator=generator, dtype=torch.float64) * t_max
    tie_with = torch.randint(0, max(n_in, 1), (batch, n_in), generator=generator)
    ties = torch.rand(batch, n_in, generator=generator) < tie_fraction
    t_in = torch.where(ties, t_in.gather(1, tie_with), t_in)
    t_in[torch.rand(batch, n_in, generator=generator) < inf_fraction] = math.inf
    w = weight_mean + weight_std * torch.randn(n_in, n_out, generator=generator,
                                               dtype=torch.float64)
    return t_in.to(dtype), w.to(dtype)


def robust_mask(t_in, w, params, backend="cpu", margin=0.02):
    """Neurons whose firing does not change when the threshold drive moves by +-margin
    (away from grazing, where any approximate method may legitimately disagree)."""
    masks = []
    for factor in (1.0 - margin, 1.0 + margin):
        shifted = NeuronParams(tau_syn=params.tau_syn, tau_mem=params.tau_mem,
                               threshold=params.leak + factor * (np.asarray(params.threshold)
                                                                 - params.leak),
                               leak=params.leak, g_leak=params.g_leak)
        masks.append(torch.isfinite(first_spike_times(t_in, w, shifted, backend)))
    return masks[0] == masks[1]


# ---------------------------------------------------------------- hand-solved single inputs


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_input_equal_time_constants(backend):
    """V' = w (s/tau) e^{-s/tau} = c  =>  s/tau = -W0(-c/w) (principal branch: the rise)."""
    params = make_params("equal")
    c, tau, t0 = 0.88, 1.0, 0.7
    weights = torch.tensor([[2.5, 3.0 * math.e * c, 10.0, 0.9 * math.e * c]], dtype=torch.float64)
    t_out = first_spike_times(torch.tensor([[t0]], dtype=torch.float64), weights, params, backend)
    expected = [t0 - tau * scipy.special.lambertw(-c / w, 0).real for w in weights[0, :3].tolist()]
    np.testing.assert_allclose(t_out[0, :3].numpy(), expected, rtol=0, atol=1e-13)
    assert t_out[0, 3] == math.inf  # peak w/e below c


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_input_double_time_constant(backend):
    """tau_m = 2 tau_s: K = x - x^2 with x = e^{-s/tau_m}; w (x - x^2) = c has the earliest
    root x = (1 + sqrt(1 - 4c/w)) / 2."""
    params = make_params("double")
    c, tau_m, t0 = 0.88, 1.0, 1.25
    w = np.array([4.0 * c * 1.01, 5.0, 40.0, 3.9 * c])
    t_out = first_spike_times(torch.tensor([[t0]], dtype=torch.float64),
                              torch.from_numpy(w[None, :]), params, backend)
    x = (1.0 + np.sqrt(1.0 - 4.0 * c / w[:3])) / 2.0
    np.testing.assert_allclose(t_out[0, :3].numpy(), t0 - tau_m * np.log(x), rtol=0, atol=1e-12)
    assert t_out[0, 3] == math.inf  # peak w/4 below c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ["ratio_1.7", "ratio_0.6"])
def test_one_input_general_ratio(backend, regime):
    """Any ratio: brentq on w K(s) - c between 0 and the PSP peak."""
    params = make_params(regime)
    tau_m, tau_s, c = REGIMES[regime]["tau_mem"], REGIMES[regime]["tau_syn"], 0.88
    s_peak, k_peak = kernel_peak(tau_m, tau_s)
    w = np.array([c / k_peak * 1.001, 2.0 * c / k_peak, 30.0, c / k_peak * 0.999])
    t0 = 0.3
    t_out = first_spike_times(torch.tensor([[t0]], dtype=torch.float64),
                              torch.from_numpy(w[None, :]), params, backend)
    for j in range(3):
        s = scipy.optimize.brentq(lambda s, wj=w[j]: wj * kernel(s, tau_m, tau_s) - c, 0.0,
                                  s_peak, xtol=1e-15, rtol=1e-15)
        assert abs(float(t_out[0, j]) - (t0 + s)) <= 1e-12 * (1.0 + 1e3 * (j == 0))
    assert t_out[0, 3] == math.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_input_per_neuron_time_constants(backend):
    n_out = 8
    params = make_params("per_neuron", n_out, seed=3)
    tau_m, tau_s, drive = neuron_constants(params, n_out)
    w = torch.linspace(2.0, 6.0, n_out, dtype=torch.float64)[None, :]
    t_out = first_spike_times(torch.tensor([[0.4]], dtype=torch.float64), w, params, backend)
    for j in range(n_out):
        expected = first_crossing([0.4], [float(w[0, j])], tau_m[j], tau_s[j], drive[j])
        assert_time(float(t_out[0, j]), expected, 1e-11, f"neuron {j}")
    assert torch.isfinite(t_out).sum() >= n_out // 2


# ---------------------------------------------------------------- two inputs


def _two_input_case(regime):
    """(params, (tau_m, tau_s, drive), t1, w1, t* of input 1 alone)."""
    params = make_params(regime)
    tau_m, tau_s, drive = (float(a[0]) for a in neuron_constants(params, 1))
    w1 = 2.0 * drive / kernel_peak(tau_m, tau_s)[1]
    t1 = 0.5
    alone = first_crossing([t1], [w1], tau_m, tau_s, drive)
    return params, (tau_m, tau_s, drive), t1, w1, alone


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_two_inputs(backend, regime):
    params, (tau_m, tau_s, drive), t1, w1, alone = _two_input_case(regime)
    cases = {
        "after the crossing": (alone + 0.3, 5.0),
        "before the crossing, excitatory": (t1 + 0.4 * (alone - t1), 0.7 * w1),
        "before the crossing, weak inhibitory": (t1 + 0.3 * (alone - t1), -0.3 * w1),
        "before the crossing, blocking inhibitory": (t1 + 0.1 * (alone - t1), -1.5 * w1),
        "tied with the first": (t1, 0.3 * w1),
    }
    t_in = torch.tensor([[t1, t2] for t2, _ in cases.values()], dtype=torch.float64)
    # Each case is its own sample; the weights differ per case, so one layer per case.
    for (name, (t2, w2)), row in zip(cases.items(), t_in):
        t_out = first_spike_times(row[None, :], torch.tensor([[w1], [w2]], dtype=torch.float64),
                                  params, backend)
        expected = first_crossing([t1, t2], [w1, w2], tau_m, tau_s, drive)
        if name == "after the crossing":
            assert expected == pytest.approx(alone, abs=1e-12)
        if name == "before the crossing, blocking inhibitory":
            assert expected == math.inf
        assert_time(float(t_out[0, 0]), expected, 1e-11, name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_inputs_equal_closed_form(backend):
    """tau_m = tau_s: t* = tau (b/a - W0(z)), z = -(c/a) e^{b/a}, a = sum w e^{t/tau},
    b = sum w (t/tau) e^{t/tau} over the causal set (docs/design.md section 2)."""
    params = make_params("equal")
    c, tau = 0.88, 1.0
    t = np.array([0.2, 0.9])
    w = np.array([1.8, 1.2])
    a = np.sum(w * np.exp(t / tau))
    b = np.sum(w * t / tau * np.exp(t / tau))
    expected = tau * (b / a - scipy.special.lambertw(-c / a * np.exp(b / a), 0).real)
    assert expected > t[1]
    t_out = first_spike_times(torch.from_numpy(t[None, :]), torch.from_numpy(w[:, None]),
                              params, backend)
    assert abs(float(t_out[0, 0]) - expected) <= 1e-13


# ---------------------------------------------------------------- against the ODE


@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_random_layers_against_ode_integration(regime):
    t_in, w = random_layer(seed=7, batch=3, n_in=6, n_out=5, inf_fraction=0.15,
                           weight_mean=0.9, weight_std=0.8, t_max=2.0)
    params = make_params(regime, 5, seed=11)
    ode = integrate_first_spike_times(t_in, w, params, resolution=1e-4, sim_time=8.0)
    robust = robust_mask(t_in, w, params)
    for backend in BACKENDS:
        exact = first_spike_times(t_in, w, params, backend)
        assert robust.sum() >= 12 and torch.isfinite(exact[robust]).sum() >= 6
        assert torch.equal(torch.isfinite(exact[robust]), torch.isfinite(ode[robust])), backend
        both = robust & torch.isfinite(exact)
        assert (exact[both] - ode[both]).abs().max() <= 1e-3, backend


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_random_layers_against_root_search(backend, regime):
    t_in, w = random_layer(seed=5, batch=3, n_in=5, n_out=6, weight_mean=0.8)
    params = make_params(regime, 6, seed=2)
    tau_m, tau_s, drive = neuron_constants(params, 6)
    exact = first_spike_times(t_in, w, params, backend)
    robust = robust_mask(t_in, w, params)
    n_checked = 0
    for b in range(t_in.shape[0]):
        for j in range(w.shape[1]):
            if not robust[b, j]:
                continue
            expected = first_crossing(t_in[b].numpy(), w[:, j].numpy(), tau_m[j], tau_s[j],
                                      drive[j])
            assert_time(float(exact[b, j]), expected, 1e-10, f"sample {b}, neuron {j}")
            n_checked += math.isfinite(expected)
    assert n_checked >= 4


# ---------------------------------------------------------------- edge cases


def _forward_backward(t_in, w, params, backend, **kwargs):
    t_in = t_in.clone().requires_grad_()
    w = w.clone().requires_grad_()
    t_out = first_spike_times(t_in, w, params, backend, **kwargs)
    loss = torch.where(torch.isfinite(t_out), t_out, 0.0).sum()
    loss.backward()
    return t_out.detach(), t_in.grad, w.grad


def _assert_no_nan(*tensors):
    for x in tensors:
        assert not torch.isnan(x).any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_silent_layers(backend, regime):
    """All inputs +inf, all-zero weights, only inhibitory input: no spike, zero gradients."""
    params = make_params(regime, 4)
    t_in, w = random_layer(seed=1, batch=3, n_in=5, n_out=4, inf_fraction=0.0)
    cases = [(torch.full_like(t_in, math.inf), w), (t_in, torch.zeros_like(w)),
             (t_in, -w.abs() - 0.1)]
    for t, weights in cases:
        t_out, grad_t, grad_w = _forward_backward(t, weights, params, backend)
        assert torch.isinf(t_out).all()
        assert (grad_t == 0).all() and (grad_w == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_single_input_single_output(backend, regime):
    params = make_params(regime, 1)
    tau_m, tau_s, drive = neuron_constants(params, 1)
    for t0, w0 in [(0.0, 5.0), (1.5, 20.0), (0.3, 1e-3)]:
        t_out, grad_t, grad_w = _forward_backward(torch.tensor([[t0]], dtype=torch.float64),
                                                  torch.tensor([[w0]], dtype=torch.float64),
                                                  params, backend)
        expected = first_crossing([t0], [w0], tau_m[0], tau_s[0], drive[0])
        assert t_out.shape == (1, 1)
        if math.isinf(expected):
            assert t_out[0, 0] == math.inf and grad_w[0, 0] == 0
        else:
            assert abs(float(t_out[0, 0]) - expected) <= 1e-11
            assert grad_t[0, 0] == pytest.approx(1.0, abs=1e-12)  # a shift moves t* alike
            assert grad_w[0, 0] < 0  # more weight, earlier spike


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_output_and_single_input_shapes(backend):
    params = make_params("equal")
    t_in, w = random_layer(seed=2, batch=4, n_in=7, n_out=1)
    t_out, grad_t, grad_w = _forward_backward(t_in, w, params, backend)
    assert t_out.shape == (4, 1) and grad_t.shape == (4, 7) and grad_w.shape == (7, 1)
    t_in, w = random_layer(seed=2, batch=4, n_in=1, n_out=6, inf_fraction=0.0, weight_mean=3.0)
    t_out, grad_t, grad_w = _forward_backward(t_in, w, params, backend)
    assert t_out.shape == (4, 6) and grad_t.shape == (4, 1) and grad_w.shape == (1, 6)
    _assert_no_nan(t_out, grad_t, grad_w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_only_where_asked(backend):
    """Data inputs (no requires_grad) get no gradient; the weight gradient is unchanged."""
    params = make_params("equal")
    t_in, w = random_layer(seed=12, batch=5, n_in=8, n_out=4, weight_mean=1.0)
    _, _, grad_w_both = _forward_backward(t_in, w, params, backend)
    weights = w.clone().requires_grad_()
    t_out = first_spike_times(t_in, weights, params, backend)
    torch.where(torch.isfinite(t_out), t_out, 0.0).sum().backward()
    assert t_in.grad is None
    torch.testing.assert_close(weights.grad, grad_w_both, rtol=0, atol=0)
    with torch.no_grad():
        assert torch.equal(first_spike_times(t_in, w, params, backend), t_out.detach())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_empty_batch(backend, dtype):
    params = make_params("equal")
    t_in = torch.empty(0, 5, dtype=dtype, requires_grad=True)
    w = torch.rand(5, 3, dtype=dtype, requires_grad=True)
    t_out = first_spike_times(t_in, w, params, backend)
    assert t_out.shape == (0, 3) and t_out.dtype == dtype
    t_out.sum().backward()
    assert w.grad.shape == (5, 3) and (w.grad == 0).all()
    assert t_in.grad.shape == (0, 5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_late_inputs_shift_the_result(backend, regime):
    """Input times of 500 tau: no overflow, and t* (and its gradients) shift with the inputs."""
    params = make_params(regime, 5)
    t_in, w = random_layer(seed=4, batch=3, n_in=6, n_out=5, weight_mean=0.9)
    shift = 500.0 * float(np.max(params.tau_mem))
    early = _forward_backward(t_in, w, params, backend)
    late = _forward_backward(t_in + shift, w, params, backend)
    _assert_no_nan(*late)
    assert torch.equal(torch.isfinite(early[0]), torch.isfinite(late[0]))
    assert torch.isfinite(early[0]).sum() >= 5
    fired = torch.isfinite(early[0])
    assert (late[0][fired] - shift - early[0][fired]).abs().max() <= 1e-9
    torch.testing.assert_close(late[1], early[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(late[2], early[2], rtol=1e-6, atol=1e-6)


def _grazing_scale(t_in, w, params, backend):
    """Scale of w at which the neuron's membrane peak touches threshold (to ~1e-15)."""
    lo, hi = 0.0, 1.0
    while torch.isinf(first_spike_times(t_in, w * hi, params, backend)).any():
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        fires = torch.isfinite(first_spike_times(t_in, w * mid, params, backend)).all()
        lo, hi = (lo, mid) if fires else (mid, hi)
    return hi


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("regime", ALL_REGIMES)
def test_grazing_inputs(backend, regime):
    """Weights scaled so that the membrane peak touches threshold: the neuron fires near the
    peak with finite (large) gradients, no NaN, no inf; max_dw_norm removes the weight ones."""
    params = make_params(regime, 1)
    t_in = torch.tensor([[0.2, 0.5, 0.9, math.inf]], dtype=torch.float64)
    w = torch.tensor([[0.5], [0.3], [0.4], [1.0]], dtype=torch.float64)
    scale = _grazing_scale(t_in, w, params, backend)
    for factor in (1.0, 1.0 + 1e-12, 1.0 + 1e-9):
        t_out, grad_t, grad_w = _forward_backward(t_in, w * scale * factor, params, backend)
        assert torch.isfinite(t_out).all()
        assert torch.isfinite(grad_t).all() and torch.isfinite(grad_w).all()
    below = first_spike_times(t_in, w * scale * (1.0 - 1e-12), params, backend)
    assert torch.isinf(below).all()
    _, grad_t, grad_w = _forward_backward(t_in, w * scale, params, backend, max_dw_norm=0.2)
    assert (grad_w == 0).all() and torch.isfinite(grad_t).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32(backend):
    params = make_params("equal")
    t64, w64 = random_layer(seed=9, batch=6, n_in=10, n_out=7, weight_mean=0.7)
    t32, w32 = t64.float().requires_grad_(), w64.float().requires_grad_()
    out32 = first_spike_times(t32, w32, params, backend)
    assert out32.dtype == torch.float32
    torch.where(torch.isfinite(out32), out32, 0.0).sum().backward()
    assert t32.grad.dtype == torch.float32 and w32.grad.dtype == torch.float32
    out64 = first_spike_times(t64, w64, params, backend)
    robust = robust_mask(t64, w64, params)
    assert torch.equal(torch.isfinite(out32[robust]), torch.isfinite(out64[robust]))
    both = robust & torch.isfinite(out64)
    assert both.sum() >= 10
    assert (out32[both].double() - out64[both]).abs().max() <= 1e-5


# ---------------------------------------------------------------- bad input


GOOD_T = torch.tensor([[0.1, 0.5], [0.2, math.inf]], dtype=torch.float64)
GOOD_W = torch.tensor([[1.0, 2.0, 3.0], [1.5, 0.5, -1.0]], dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("t_in, w, error, message", [
    (torch.tensor([[0.1, math.nan], [0.2, 0.3]], dtype=torch.float64), GOOD_W, ValueError,
     r"t_in\[0, 1\] = nan"),
    (torch.tensor([[0.1, -0.5], [0.2, 0.3]], dtype=torch.float64), GOOD_W, ValueError,
     r"t_in\[0, 1\] = -0.5"),
    (torch.tensor([[0.1, 0.5], [-math.inf, 0.3]], dtype=torch.float64), GOOD_W, ValueError,
     r"t_in\[1, 0\] = -inf"),
    (GOOD_T, torch.tensor([[1.0, math.nan, 3.0], [1.5, 0.5, -1.0]], dtype=torch.float64),
     ValueError, r"w\[0, 1\] = nan"),
    (GOOD_T, torch.tensor([[1.0, 2.0, 3.0], [1.5, math.inf, -1.0]], dtype=torch.float64),
     ValueError, r"w\[1, 1\] = inf"),
    (GOOD_T, GOOD_W[:1], ValueError, r"t_in has 2 inputs .* w has 1 rows"),
    (GOOD_T[0], GOOD_W, ValueError, r"t_in must be 2-D, got shape \(2,\)"),
    (GOOD_T[None], GOOD_W, ValueError, r"t_in must be 2-D, got shape \(1, 2, 2\)"),
    (GOOD_T, GOOD_W[None], ValueError, r"w must be 2-D"),
    (GOOD_T.float(), GOOD_W, TypeError, r"t_in \(torch.float32, cpu\) and w \(torch.float64"),
    (GOOD_T, GOOD_W.to("meta"), TypeError, r"must share dtype and device"),
    (GOOD_T.long(), GOOD_W, TypeError, r"t_in must be float32 or float64, got torch.int64"),
    (GOOD_T.numpy(), GOOD_W, TypeError, r"t_in must be a torch tensor, got ndarray"),
])
def test_bad_input_is_rejected(backend, t_in, w, error, message):
    with pytest.raises(error, match=message):
        first_spike_times(t_in, w, make_params("equal"), backend)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'gpu'; expected one of .*cpu.*torch"):
        first_spike_times(GOOD_T, GOOD_W, make_params("equal"), backend="gpu")


def test_params_must_be_neuron_params():
    with pytest.raises(TypeError, match="params must be snnsim.NeuronParams, got dict"):
        first_spike_times(GOOD_T, GOOD_W, {"tau_syn": 1.0})


def test_per_neuron_params_must_match_the_layer():
    params = make_params("per_neuron", 4)
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="per-neuron values for 4 neurons.*layer has 3"):
            first_spike_times(GOOD_T, GOOD_W, params, backend)


def test_public_api():
    p = snnsim.NeuronParams(tau_syn=1.0, tau_mem=1.0, threshold=1.0, leak=0.0, g_leak=1.0)
    t = snnsim.first_spike_times(torch.tensor([[0.0]], dtype=torch.float64),
                                 torch.tensor([[3.0]], dtype=torch.float64), p, backend="cpu")
    assert t.dtype == torch.float64
    assert float(t) == pytest.approx(-scipy.special.lambertw(-1 / 3.0).real, abs=1e-14)
    one = torch.tensor(1.0, dtype=torch.float64)
    assert psp_kernel(one[None], one, one).item() == pytest.approx(math.exp(-1.0), abs=1e-16)
