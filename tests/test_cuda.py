"""The `cuda` backend: its kernels emulated on every machine, the GPU where there is one.

`backends.cuda._snnsim_host` runs the kernels' thread bodies (`backends/cuda/csrc/
kernel_threads.h`, over the per-neuron math of `spike_math.h`) on the host, over the same
launch grid as the GPU: same blocks, threads per block, sort buffers and batch chunks.
The tests drive it through the backend's own `launch_*` functions on CPU tensors, so
machines without a GPU check everything the kernels compute against the `cpu` (numba)
and `torch` backends. The GPU tests run the kernels themselves and are skipped where
`torch.cuda.is_available()` is False.
"""
from __future__ import annotations

import importlib
import math
import shutil

import numpy as np
import pytest
import scipy.special
import torch
from test_engine_backends import amplification, assert_agree, fuzz_layers

import backends.cuda as cuda_backend
from backends import BackendUnavailableError, cpu, get_backend, torch_backend
from snnsim import NeuronParams, first_spike_times
from snnsim.datasets import load_dataset
from snnsim.lambertw import INV_E_HI
from snnsim.lambertw import lambertw as torch_lambertw

try:
    from backends.cuda import _snnsim_host as host
except ImportError:  # reported by test_host_module_is_built
    host = None

needs_host = pytest.mark.skipif(host is None, reason="backends.cuda._snnsim_host is not built")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="no CUDA device (torch.cuda.is_available() is False)")

TOLERANCE = 1e-10  # float64 agreement between backends, times and gradients
# float32 kernels against float64: spike times agree to FLOAT32_TIME_TOLERANCE (model units,
# relative to 1 + |t|) except for at most FLOAT32_MISMATCH_FRACTION of the outputs, the
# neurons that graze threshold and so may fire in one precision but not the other.
FLOAT32_TIME_TOLERANCE = 1e-4
FLOAT32_MISMATCH_FRACTION = 0.01

REGIMES = ("equal", "double", "general")


def make_params(regime: str, n_out: int | None = None, seed: int = 0) -> NeuronParams:
    """Shared parameters (n_out None) or per-neuron ones, as a chip's fixed-pattern noise gives."""
    if n_out is None:
        tau_syn, threshold, leak, g_leak = 1.0, 1.0, 0.0, 1.0
    else:
        rng = np.random.default_rng(seed)
        tau_syn = rng.uniform(0.8, 1.2, n_out)
        threshold = rng.uniform(0.8, 1.2, n_out)
        leak = rng.uniform(-0.1, 0.1, n_out)
        g_leak = rng.uniform(0.9, 1.1, n_out)
    ratio = {"equal": 1.0, "double": 2.0, "general": 1.6}[regime]
    tau_mem = np.asarray(tau_syn) * ratio
    if regime == "general" and n_out is not None:
        tau_mem = tau_mem * np.random.default_rng(seed + 1).uniform(0.8, 1.2, n_out)
    return NeuronParams(tau_syn=tau_syn, tau_mem=tau_mem, threshold=threshold, leak=leak,
                        g_leak=g_leak)


def random_layer(seed: int, batch: int = 48, n_in: int = 24, n_out: int = 16,
                 finite: float = 0.75, late: float = 3.0, weight_mean: float = 0.4):
    """Unsorted input times in [0, late] (a fraction +inf) and weights, as float64 tensors."""
    rng = np.random.default_rng(seed)
    t_in = rng.uniform(0.0, late, (batch, n_in))
    t_in[rng.random((batch, n_in)) > finite] = np.inf
    w = rng.normal(weight_mean, 1.0, (n_in, n_out))
    return torch.from_numpy(t_in), torch.from_numpy(w)


def host_launch(x: torch.Tensor) -> tuple[int, int, int]:
    """The launch triple (bits, device, stream) of the emulated kernels for tensor x."""
    return (cuda_backend.float_bits(x), 0, 0)


def host_forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    return cuda_backend.launch_forward(host, host_launch(t_in), t_in, w, params)


def host_backward(t_in, w, t_out, grad_t_out, params, max_dw_norm=None, n_chunks=None):
    return cuda_backend.launch_backward(host, host_launch(t_in), t_in, w, t_out, grad_t_out,
                                        params, max_dw_norm, n_chunks)


# Tests of the launch grid run on both kernel builds: "host" (emulated, everywhere) and
# "cuda" (the GPU, where there is one), through the backend's own launch code.
KERNELS = [pytest.param("host", marks=needs_host), pytest.param("cuda", marks=needs_gpu)]


def kernel_forward(kernels: str, t_in, w, params) -> torch.Tensor:
    if kernels == "host":
        return host_forward(t_in, w, params)
    t_in, w = t_in.cuda(), w.cuda()
    return cuda_backend.launch_forward(cuda_backend._snnsim_cuda, cuda_backend._launch(t_in),
                                       t_in, w, params).cpu()


def kernel_backward(kernels: str, t_in, w, t_out, grad_t_out, params, max_dw_norm=None,
                    n_chunks=None):
    if kernels == "host":
        return host_backward(t_in, w, t_out, grad_t_out, params, max_dw_norm, n_chunks)
    t_in, w, t_out, grad_t_out = (x.cuda() for x in (t_in, w, t_out, grad_t_out))
    gradients = cuda_backend.launch_backward(cuda_backend._snnsim_cuda,
                                             cuda_backend._launch(t_in), t_in, w, t_out,
                                             grad_t_out, params, max_dw_norm, n_chunks)
    return tuple(g.cpu() for g in gradients)


def host_lambertw(x: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(x))
    return cuda_backend.launch_lambertw(host, host_launch(x), x).numpy()


def assert_times_close(actual: torch.Tensor, expected: torch.Tensor, tolerance=TOLERANCE):
    actual, expected = actual.double().cpu(), expected.double().cpu()
    assert actual.shape == expected.shape
    assert torch.equal(torch.isinf(actual), torch.isinf(expected)), "spike/no-spike differ"
    finite = torch.isfinite(expected)
    error = ((actual - expected).abs() / (1.0 + expected.abs()))[finite]
    assert error.numel() == 0 or float(error.max()) <= tolerance, float(error.max())


def assert_gradients_close(actual, expected, tolerance=TOLERANCE):
    for a, e in zip(actual, expected):
        a, e = a.double().cpu(), e.double().cpu()
        assert a.shape == e.shape
        if e.numel():
            assert float((a - e).abs().max()) <= tolerance * (1.0 + float(e.abs().max()))


def loss_gradient(t_out: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=tuple(t_out.shape)))


# --- builds and errors --------------------------------------------------------------------

def test_host_module_is_built():
    assert host is not None, (
        "backends.cuda._snnsim_host is not built: install with a C++ compiler "
        "(`pip install -e . -v` prints why it was skipped)")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_cuda_extension_is_built_where_nvcc_exists():
    importlib.import_module("backends.cuda._snnsim_cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_without_gpu_the_backend_says_why():
    t_in, w = random_layer(0, batch=2)
    reason = "not built|no CUDA support|no CUDA device"
    with pytest.raises(BackendUnavailableError, match=reason):
        get_backend("cuda")
    with pytest.raises(BackendUnavailableError, match=reason):
        first_spike_times(t_in, w, NeuronParams(), backend="cuda")
    with pytest.raises(BackendUnavailableError, match=reason):
        cuda_backend.lambertw(torch.zeros(3))


def test_missing_extension_is_reported(monkeypatch):
    monkeypatch.setattr(cuda_backend, "_snnsim_cuda", None)
    monkeypatch.setattr(cuda_backend, "_available", False)
    with pytest.raises(BackendUnavailableError, match="_snnsim_cuda is not built"):
        get_backend("cuda")


@needs_host
def test_constants_match_the_python_backends():
    assert host.IMPLEMENTATION == "host emulation"
    assert host.MAX_SHARED_BYTES == 47 * 1024  # 48 KiB per block, less room for static ones
    assert host.MIN_SLOPE_FRACTION == torch_backend.MIN_SLOPE_FRACTION == cpu.MIN_SLOPE_FRACTION
    assert host.NEWTON_MAX_ITERATIONS == torch_backend.NEWTON_MAX_ITERATIONS
    assert cuda_backend.REGIME_CODES == cpu.REGIME_CODES == {"equal": host.EQUAL,
                                                             "double": host.DOUBLE}
    assert host.GENERAL == 2


# --- the kernels, emulated on the host -----------------------------------------------------

@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("per_neuron", [False, True], ids=["shared", "per-neuron"])
@pytest.mark.parametrize("regime", REGIMES)
def test_kernels_agree_with_cpu_and_torch(kernels, regime, per_neuron):
    n_out = 16
    params = make_params(regime, n_out if per_neuron else None, seed=3)
    for seed in range(3):
        t_in, w = random_layer(seed, n_out=n_out)
        t_out = kernel_forward(kernels, t_in, w, params)
        expected = cpu.forward(t_in, w, params)
        assert 0.2 < float(torch.isfinite(expected).double().mean()) < 1.0
        assert_times_close(t_out, expected)
        assert_times_close(t_out, torch_backend.forward(t_in, w, params))
        grad = loss_gradient(expected, seed)
        for max_dw_norm in (None, 0.5):
            gradients = kernel_backward(kernels, t_in, w, expected, grad, params, max_dw_norm)
            assert_gradients_close(gradients,
                                   cpu.backward(t_in, w, expected, grad, params, max_dw_norm))
            assert_gradients_close(
                gradients, torch_backend.backward(t_in, w, expected, grad, params, max_dw_norm))


@needs_host
def test_max_dw_norm_drops_weight_gradients_only():
    params = make_params("equal")
    t_in, w = random_layer(5)
    t_out = host_forward(t_in, w, params)
    grad = loss_gradient(t_out, 5)
    full_t, full_w = host_backward(t_in, w, t_out, grad, params)
    clipped_t, clipped_w = host_backward(t_in, w, t_out, grad, params, max_dw_norm=0.2)
    assert torch.equal(full_t, clipped_t)
    assert float(clipped_w.abs().sum()) < float(full_w.abs().sum())
    _, nothing = host_backward(t_in, w, t_out, grad, params, max_dw_norm=0.0)
    assert float(nothing.abs().max()) == 0.0


@needs_host
@pytest.mark.parametrize("regime", REGIMES)
def test_host_edge_cases(regime):
    params = make_params(regime)
    t_in, w = random_layer(7, batch=8)
    # all inputs silent, and zero weights: no spike, no gradient
    silent = torch.full_like(t_in, math.inf)
    assert torch.isinf(host_forward(silent, w, params)).all()
    assert torch.isinf(host_forward(t_in, torch.zeros_like(w), params)).all()
    t_out = host_forward(t_in, w, params)
    grad = loss_gradient(t_out, 7)
    grad_t_in, grad_w = host_backward(silent, w, torch.full_like(t_out, math.inf), grad, params)
    assert not grad_t_in.any() and not grad_w.any()
    # empty batch
    empty = host_forward(t_in[:0], w, params)
    assert empty.shape == (0, w.shape[1])
    grad_t_in, grad_w = host_backward(t_in[:0], w, empty, empty.clone(), params)
    assert grad_t_in.shape == (0, t_in.shape[1]) and not grad_w.any()
    # ties: many inputs at the same few times
    ties = torch.round(t_in * 2.0) / 2.0
    assert_times_close(host_forward(ties, w, params), cpu.forward(ties, w, params))
    # input order does not matter
    order = torch.randperm(t_in.shape[1], generator=torch.Generator().manual_seed(0))
    assert_times_close(host_forward(t_in[:, order].contiguous(), w[order].contiguous(), params),
                       t_out)
    # inputs 500 tau late: the shifted frame keeps everything finite; the output shifts along
    late = host_forward(t_in + 500.0, w, params)
    assert_times_close(late, cpu.forward(t_in + 500.0, w, params))
    finite = torch.isfinite(t_out)
    assert torch.equal(torch.isfinite(late), finite)
    assert float((late - 500.0 - t_out)[finite].abs().max()) < 1e-9


@needs_host
def test_host_reads_strided_views():
    params = make_params("general", 16)
    t_in, w = random_layer(11)
    t_out = host_forward(t_in, w, params)
    grad = loss_gradient(t_out, 11)
    gradients = host_backward(t_in, w, t_out, grad, params)
    t_strided = t_in.t().contiguous().t()
    w_strided = w.t().contiguous().t()
    assert not t_strided.is_contiguous() and not w_strided.is_contiguous()
    assert torch.equal(host_forward(t_strided, w_strided, params), t_out)
    strided_gradients = host_backward(t_strided, w_strided, t_out.t().contiguous().t(),
                                      grad.t().contiguous().t(), params)
    for strided, plain in zip(strided_gradients, gradients):
        assert torch.equal(strided, plain)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("n_in, n_out", [(3, 300), (200, 5), (700, 40)])
def test_launch_geometry(kernels, n_in, n_out):
    """Layers with more neurons than threads per block (each thread walks several), more
    inputs than threads (each thread ranks several) and both; per-neuron parameters."""
    params = make_params("general", n_out, seed=6)
    t_in, w = random_layer(17, batch=6, n_in=n_in, n_out=n_out, weight_mean=4.0 / n_in)
    t_out = kernel_forward(kernels, t_in, w, params)
    expected = cpu.forward(t_in, w, params)
    assert 0.2 < float(torch.isfinite(expected).double().mean())
    assert_times_close(t_out, expected)
    grad = loss_gradient(expected, 17)
    assert_gradients_close(kernel_backward(kernels, t_in, w, expected, grad, params),
                           cpu.backward(t_in, w, expected, grad, params))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("n_chunks", [1, 2, 7, 13, 48])  # 7: last chunk short; 13: empty
def test_weight_gradient_chunks_sum_to_the_whole(kernels, n_chunks):
    """Batch chunks of the weight-gradient pass, the last one short or empty."""
    params = make_params("double", 16, seed=2)
    t_in, w = random_layer(19, batch=48)
    t_out = cpu.forward(t_in, w, params)
    grad = loss_gradient(t_out, 19)
    expected = cpu.backward(t_in, w, t_out, grad, params)
    assert_gradients_close(
        kernel_backward(kernels, t_in, w, t_out, grad, params, n_chunks=n_chunks), expected)


def test_weight_gradient_chunk_count():
    assert cuda_backend.weight_gradient_chunks(48, 24, 16) == 48  # small layer: one per sample
    assert cuda_backend.weight_gradient_chunks(65536, 256, 128) == 32
    assert cuda_backend.weight_gradient_chunks(0, 5, 3) == 1
    assert cuda_backend.weight_gradient_chunks(10**6, 5, 120) == 1748


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("past_limit", [0, 1], ids=["shared-full", "global-scratch"])
def test_sort_buffer_at_and_past_the_shared_memory_limit(kernels, dtype, past_limit):
    """The largest layer whose sort buffer fits in shared memory, and the smallest that
    sorts in global scratch memory instead; float32 gradients on the way."""
    n_in = host_or_cuda_shared_bytes() // (torch.finfo(dtype).bits // 8 + 4) + past_limit
    params = make_params("equal")
    t_in, w = random_layer(9, batch=2, n_in=n_in, n_out=4, finite=0.3, late=5.0,
                           weight_mean=2.0 / n_in)
    expected = cpu.forward(t_in, w, params)
    assert torch.isfinite(expected).any()
    actual = kernel_forward(kernels, t_in.to(dtype), w.to(dtype), params)
    grad = loss_gradient(expected, 9)
    expected_gradients = cpu.backward(t_in, w, expected, grad, params)
    if dtype == torch.float64:
        assert_times_close(actual, expected, tolerance=1e-9)
        assert_gradients_close(kernel_backward(kernels, t_in, w, expected, grad, params),
                               expected_gradients)
    else:
        check_float32_bound(actual, expected)
        gradients = kernel_backward(kernels, *(x.float() for x in (t_in, w, expected, grad)),
                                    params)
        for actual_gradient, expected_gradient in zip(gradients, expected_gradients):
            assert actual_gradient.dtype == torch.float32
            scale = 1.0 + float(expected_gradient.abs().max())
            assert float((actual_gradient.double() - expected_gradient).abs().max()) <= 1e-3 * scale


def host_or_cuda_shared_bytes() -> int:
    module = host if host is not None else cuda_backend._snnsim_cuda
    return module.MAX_SHARED_BYTES


@needs_host
def test_host_empty_batch_of_a_wide_layer():
    params = make_params("equal")
    t_in, w = random_layer(2, batch=0, n_in=5000, n_out=3)
    t_out = host_forward(t_in, w, params)
    assert t_out.shape == (0, 3)
    grad_t_in, grad_w = host_backward(t_in, w, t_out, t_out.clone(), params)
    assert grad_t_in.shape == (0, 5000) and not grad_w.any()


@needs_host
def test_host_nan_inputs_stay_in_bounds():
    """The public API rejects NaN times; called directly, the kernels treat them as silent
    rather than letting them take a rank in the sort buffer."""
    params = make_params("equal")
    t_in = torch.tensor([[0.5, math.nan, 0.2, 1.0], [math.nan] * 4], dtype=torch.float64)
    w = torch.full((4, 2), 1.5, dtype=torch.float64)
    silent = torch.where(torch.isnan(t_in), math.inf, t_in)
    assert_times_close(host_forward(t_in, w, params), cpu.forward(silent, w, params))


@needs_host
def test_host_kernels_reject_bad_launches():
    params = make_params("equal")
    t_in, w = random_layer(1, batch=2)
    with pytest.raises(ValueError, match="bits must be 32 or 64, got 16"):
        cuda_backend.launch_forward(host, (16, 0, 0), t_in, w, params)
    with pytest.raises(TypeError, match="float32 or float64, got a torch.float16 tensor"):
        host_forward(t_in.half(), w.half(), params)
    with pytest.raises(TypeError, match="t_in is torch.float64 on cpu, w is torch.float32"):
        host_forward(t_in, w.float(), params)
    with pytest.raises(ValueError, match=r"t_in\[B, N\] and w\[N, M\], got shapes \(2, 24\) "
                                         r"and \(23, 16\)"):
        host_forward(t_in, w[1:], params)
    t_out = host_forward(t_in, w, params)
    with pytest.raises(ValueError, match="n_chunks must be in 1..65535, got 0"):
        host_backward(t_in, w, t_out, t_out, params, n_chunks=0)
    with pytest.raises(ValueError, match=r"grad_t_out must have shape \(2, 16\), got \(2, 15\)"):
        host_backward(t_in, w, t_out, t_out[:, 1:], params)
    neurons, _ = cuda_backend._neurons(params, 16, t_in)
    with pytest.raises(ValueError, match="both scratch buffers or neither"):
        host.forward((64, 0, 0), cuda_backend._matrix(t_in), cuda_backend._matrix(w), 2, 24, 16,
                     neurons, 0, t_out.data_ptr(), t_out.data_ptr(), 0)
    with pytest.raises(RuntimeError, match="needs scratch buffers for 5000 inputs .a sort "
                                           "buffer of 60000 bytes, more than the 48128"):
        host.forward((64, 0, 0), cuda_backend._matrix(t_in), cuda_backend._matrix(w), 2, 5000,
                     16, neurons, 0, t_out.data_ptr(), 0, 0)


@needs_host
@pytest.mark.parametrize("regime", REGIMES)
def test_host_float32_within_bound(regime):
    params = make_params(regime, 32, seed=1)
    t_in, w = random_layer(13, batch=256, n_in=64, n_out=32, weight_mean=0.2)
    expected = cpu.forward(t_in, w, params)
    actual = host_forward(t_in.float(), w.float(), params)
    assert actual.dtype == torch.float32
    check_float32_bound(actual, expected)


def check_float32_bound(actual: torch.Tensor, expected: torch.Tensor):
    actual, expected = actual.double().cpu(), expected.cpu()
    same = torch.isinf(actual) == torch.isinf(expected)
    assert float((~same).double().mean()) <= FLOAT32_MISMATCH_FRACTION
    both = same & torch.isfinite(expected)
    error = (actual - expected).abs() / (1.0 + expected.abs())
    assert float(error[both].max()) <= FLOAT32_TIME_TOLERANCE


@needs_host
def test_host_lambertw_matches_scipy():
    x = np.concatenate([np.linspace(-0.36, 3.0, 500), np.logspace(-300, 300, 300),
                        [0.0, np.e, 1e308]])
    np.testing.assert_allclose(host_lambertw(x), scipy.special.lambertw(x).real, rtol=1e-14,
                               atol=1e-15)
    x32 = x[np.abs(x) < 1e38].astype(np.float32)
    np.testing.assert_allclose(host_lambertw(x32), scipy.special.lambertw(x32).real, rtol=5e-6,
                               atol=1e-6)
    special = host_lambertw(np.array([-0.5, np.nan, np.inf, -INV_E_HI]))
    assert np.isnan(special[0]) and np.isnan(special[1]) and special[2] == np.inf
    assert special[3] == -1.0  # the double nearest -1/e is taken as the branch point


@needs_host
def test_host_lambertw_near_the_branch_point():
    # W0 is ill-conditioned at -1/e, where scipy loses accuracy: compare with mpmath, exactly
    # at the double x, and with the torch implementation of the same algorithm.
    mpmath = pytest.importorskip("mpmath")
    x = -INV_E_HI + np.logspace(-16, -1, 300)
    with mpmath.workdps(40):
        expected = np.array([float(mpmath.re(mpmath.lambertw(mpmath.mpf(v)))) for v in x])
    np.testing.assert_allclose(host_lambertw(x), expected, rtol=0.0, atol=4e-15)
    np.testing.assert_allclose(host_lambertw(x), torch_lambertw(torch.from_numpy(x)).numpy(),
                               rtol=0.0, atol=4e-15)


# --- the GPU ------------------------------------------------------------------------------

@needs_gpu
@pytest.mark.parametrize("regime", REGIMES)
def test_cuda_edge_cases(regime):
    params = make_params(regime)
    backend = get_backend("cuda")
    t_in, w = random_layer(8, batch=16)
    silent = torch.full_like(t_in, math.inf).cuda()
    assert torch.isinf(backend.forward(silent, w.cuda(), params)).all()
    assert torch.isinf(backend.forward(t_in.cuda(), torch.zeros_like(w).cuda(), params)).all()
    ties = torch.round(t_in * 2.0) / 2.0
    assert_times_close(backend.forward(ties.cuda(), w.cuda(), params), cpu.forward(ties, w, params))
    late = t_in + 500.0
    assert_times_close(backend.forward(late.cuda(), w.cuda(), params), cpu.forward(late, w, params))
    empty = backend.forward(t_in[:0].cuda(), w.cuda(), params)
    assert empty.shape == (0, w.shape[1])
    grad_t_in, grad_w = backend.backward(t_in[:0].cuda(), w.cuda(), empty, empty, params)
    assert grad_t_in.shape == (0, t_in.shape[1]) and not grad_w.any()
    # non-contiguous views, and CPU tensors (computed on the GPU, returned on the CPU)
    t_out = backend.forward(t_in.t().contiguous().t().cuda(), w.t().contiguous().t().cuda(),
                            params)
    assert_times_close(t_out, cpu.forward(t_in, w, params))
    on_cpu = backend.forward(t_in, w, params)
    assert on_cpu.device.type == "cpu"
    assert_times_close(on_cpu, t_out)


@needs_gpu
def test_cuda_runs_on_the_current_stream_and_device():
    """Kernels and temporaries on torch's current stream (here a side stream) and on the
    device of the inputs (every visible GPU), results equal to the default stream's."""
    params = make_params("general", 16, seed=3)
    t_in, w = random_layer(23)
    expected = cpu.forward(t_in, w, params)
    grad = loss_gradient(expected, 23)
    expected_gradients = cpu.backward(t_in, w, expected, grad, params)
    backend = get_backend("cuda")
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        stream = torch.cuda.Stream(device)
        with torch.cuda.stream(stream):
            t, weights = t_in.to(device), w.to(device)
            t_out = backend.forward(t, weights, params)
            gradients = backend.backward(t, weights, t_out, grad.to(device), params)
        stream.synchronize()
        assert t_out.device == device and all(g.device == device for g in gradients)
        assert_times_close(t_out, expected)
        assert_gradients_close(gradients, expected_gradients)


@needs_gpu
@pytest.mark.parametrize("regime", REGIMES)
def test_cuda_float32_within_bound(regime):
    params = make_params(regime, 32, seed=1)
    t_in, w = random_layer(13, batch=2048, n_in=64, n_out=32, weight_mean=0.2)
    actual = get_backend("cuda").forward(t_in.float().cuda(), w.float().cuda(), params)
    assert actual.dtype == torch.float32
    check_float32_bound(actual, cpu.forward(t_in, w, params))


@needs_gpu
def test_first_spike_times_autograd_on_cuda():
    params = make_params("general", 20, seed=2)
    t_in, w = random_layer(21, batch=64, n_in=30, n_out=20)
    results = {}
    for backend, device in (("cpu", "cpu"), ("cuda", "cuda")):
        t = t_in.clone().to(device).requires_grad_()
        weights = w.clone().to(device).requires_grad_()
        t_out = first_spike_times(t, weights, params, backend=backend, max_dw_norm=1.0)
        torch.where(torch.isfinite(t_out), t_out, 0.0).sum().backward()
        results[backend] = (t_out.detach(), t.grad, weights.grad)
    assert_times_close(results["cuda"][0], results["cpu"][0])
    assert_gradients_close(results["cuda"][1:], results["cpu"][1:])


@needs_gpu
def test_cuda_lambertw():
    near_branch = -INV_E_HI + torch.logspace(-16, -1, 100, dtype=torch.float64)
    regular = torch.linspace(-0.36, 1e3, 1000, dtype=torch.float64)
    for x in (near_branch, regular):
        # snnsim.lambertw sends CUDA tensors to this very kernel: compare with its CPU result
        torch.testing.assert_close(cuda_backend.lambertw(x.cuda()).cpu(), torch_lambertw(x),
                                   rtol=0.0, atol=4e-15 * (1.0 + float(x.abs().max())))
    np.testing.assert_allclose(cuda_backend.lambertw(regular.cuda()).cpu().numpy(),
                               scipy.special.lambertw(regular.numpy()).real, rtol=1e-14,
                               atol=1e-15)
    assert torch.isnan(cuda_backend.lambertw(torch.tensor([-0.5], device="cuda"))).all()
    x = torch.tensor([0.5, 2.0], dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(cuda_backend.lambertw, (x,))


def train_yin_yang(backend: str, device: str, epochs: int = 4, n_samples: int = 600):
    """A small Yin-Yang run (5 inputs incl. a bias spike -> 40 -> 3, TTFS-style loss).

    Returns the mean loss of the first and of the last epoch and the final accuracy.
    """
    data = load_dataset("yin_yang", "train")
    times = torch.from_numpy(data.times[:n_samples])
    times = torch.cat([times, torch.zeros(n_samples, 1, dtype=torch.float64)], 1).to(device)
    labels = torch.from_numpy(data.labels[:n_samples]).to(device)
    generator = torch.Generator().manual_seed(0)
    w1 = (torch.randn(5, 40, generator=generator, dtype=torch.float64) * 0.8 + 1.5).to(device)
    w2 = (torch.randn(40, 3, generator=generator, dtype=torch.float64) * 0.8 + 0.5).to(device)
    w1.requires_grad_()
    w2.requires_grad_()
    params = NeuronParams(tau_syn=1.0, threshold=1.0)
    optimiser = torch.optim.Adam([w1, w2], lr=0.02)
    epoch_losses = []
    for _ in range(epochs):
        losses = []
        for start in range(0, n_samples, 100):
            hidden = first_spike_times(times[start:start + 100], w1, params, backend=backend,
                                       max_dw_norm=10.0)
            out = first_spike_times(hidden, w2, params, backend=backend, max_dw_norm=10.0)
            out = torch.where(torch.isfinite(out), out, 10.0)
            loss = torch.nn.functional.cross_entropy(-out / 0.5, labels[start:start + 100])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
    with torch.no_grad():
        out = first_spike_times(first_spike_times(times, w1, params, backend=backend), w2, params,
                                backend=backend)
        accuracy = float((out.argmin(1) == labels).double().mean())
    return epoch_losses[0], epoch_losses[-1], accuracy


@needs_gpu
def test_yin_yang_training_on_cuda_matches_cpu():
    first, last, accuracy = train_yin_yang("cuda", "cuda")
    assert last < first
    _, cpu_last, cpu_accuracy = train_yin_yang("cpu", "cpu")
    assert abs(accuracy - cpu_accuracy) <= 0.05
    assert abs(last - cpu_last) <= 0.05 * cpu_last


@needs_host
def test_host_fuzz_agrees_with_cpu():
    """Hundreds of random layers (sizes, weight scales, ties, +inf, every regime, per-neuron
    parameters) through the emulated kernels: the cpu backend's spikes, times and gradients."""
    n_spikes = 0
    generator = torch.Generator().manual_seed(5)
    for t_in, w, params in fuzz_layers(400, seed=77):
        expected = cpu.forward(t_in, w, params)
        actual = host_forward(t_in, w, params)
        finite = torch.isfinite(expected)
        n_spikes += int(finite.sum())
        if not torch.allclose(actual[finite], expected[finite], rtol=0, atol=1e-10):
            # only where the crossing is ill-conditioned (near grazing) may they differ
            tolerance = 1e-10 + 1e-14 * amplification(t_in, w, expected, params)
            assert_agree(actual, expected, tolerance, "emulated kernels, t_out")
        assert torch.equal(torch.isfinite(actual), finite)
        grad = torch.randn(expected.shape, dtype=torch.float64, generator=generator)
        for max_dw_norm in (None, 1.0):
            assert_gradients_close(host_backward(t_in, w, expected, grad, params, max_dw_norm),
                                   cpu.backward(t_in, w, expected, grad, params, max_dw_norm))
    assert n_spikes > 500
