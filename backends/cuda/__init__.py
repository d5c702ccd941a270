"""`cuda` backend: the event walk and its gradients as CUDA kernels.

The math is that of the `torch` backend (equations in `backends/torch_backend.py`),
written once as `__host__ __device__` functions: per neuron in `csrc/spike_math.h`,
per kernel thread in `csrc/kernel_threads.h`:

* forward: one thread block per sample ranks the sample's finite input times once into
  a sort buffer (shared memory, or global scratch for very wide layers); each thread
  then walks the sorted inputs for output neurons thread, thread + threads, ...,
  solving for the crossing only where the membrane reaches threshold in an interval;
* backward: the implicit-function-theorem gradients, in three passes without
  atomics (per (sample, neuron) slope; per (input, neuron) weight gradient over a
  chunk of the batch, chunks summed here; per (sample, input) input-time gradient),
  so results are reproducible run to run.

Both run in the dtype of the inputs (float64 or float32) on the device of `t_in`
(CPU tensors are computed on the current CUDA device and returned on the CPU), on
torch's current stream. The kernels are bound with pybind11 (`_snnsim_cuda`) and
take raw device pointers, so they build without torch headers. `_snnsim_host` has
the same interface and runs the same thread bodies over the same launch grid on the
host (csrc/kernels_emulated.cpp); the tests drive it through the same `launch_*`
functions on CPU tensors, so machines without a GPU check everything the kernels
compute against the `cpu` and `torch` backends.
"""
from __future__ import annotations

import math

import torch

from backends import BackendUnavailableError
from snnsim.constants import REGIME_CODES as REGIME_CODES  # the tests compare the codes
from snnsim.constants import regime_code
from snnsim.params import NeuronParams

try:
    from backends.cuda import _snnsim_cuda
except ImportError as error:
    _snnsim_cuda = None
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None

# Batch chunks of the weight gradient fill about this many threads: a few waves of a large
# GPU (an H100 keeps 132 x 2048 threads resident).
WEIGHT_GRADIENT_THREADS = 1 << 20
_available = False  # set once check_available has passed


def check_available() -> None:
    """Raise BackendUnavailableError saying why the cuda backend cannot run here."""
    global _available
    if _available:
        return
    if _snnsim_cuda is None:
        raise BackendUnavailableError(
            "backend 'cuda' is unavailable: its extension backends.cuda._snnsim_cuda is not "
            f"built ({_IMPORT_ERROR}). It is compiled at install time only where nvcc is found "
            "(CUDA_HOME or PATH); reinstall with `pip install -e . -v` there and read the "
            "'snnsim: skipping' message for the reason"
        )
    if torch.version.cuda is None:
        raise BackendUnavailableError(
            f"backend 'cuda' is unavailable: this torch build ({torch.__version__}) has no CUDA "
            "support; install a CUDA build of torch"
        )
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "backend 'cuda' is unavailable: no CUDA device is visible "
            "(torch.cuda.is_available() is False; check the driver and CUDA_VISIBLE_DEVICES)"
        )
    problem = _snnsim_cuda.runtime_problem()
    if problem:
        raise BackendUnavailableError(
            f"backend 'cuda' is unavailable: the CUDA runtime of backends.cuda._snnsim_cuda "
            f"reports: {problem} (a driver older than the nvcc used to build it?)"
        )
    _available = True


def _device_of(x: torch.Tensor) -> torch.device:
    return x.device if x.is_cuda else torch.device("cuda", torch.cuda.current_device())


def float_bits(x: torch.Tensor) -> int:
    """64 or 32, the precision the kernels run in for tensor `x`; TypeError for other dtypes."""
    if x.dtype == torch.float64:
        return 64
    if x.dtype == torch.float32:
        return 32
    raise TypeError(f"the cuda backend computes in float32 or float64, got a {x.dtype} tensor")


def _launch(x: torch.Tensor) -> tuple[int, int, int]:
    """(bits, device index, stream) for kernels working on CUDA tensor `x`."""
    return (float_bits(x), x.device.index, torch.cuda.current_stream(x.device).cuda_stream)


def _matrix(x: torch.Tensor) -> tuple[int, int, int]:
    return (x.data_ptr(), x.stride(0), x.stride(1))


def _neurons(params: NeuronParams, n_out: int, like: torch.Tensor):
    """Kernel view of the per-neuron parameters, and the arrays it points into.

    A parameter shared by all neurons travels as a value, so the common case costs
    no host-to-device copy.
    """
    arrays = params.arrays(n_out)
    keep = [torch.as_tensor(a, dtype=like.dtype, device=like.device) if a.size > 1 else None
            for a in arrays]
    pointers = tuple(0 if t is None else t.data_ptr() for t in keep)
    values = tuple(float(a[0]) for a in arrays)
    return pointers + values, keep


# The launch_* functions drive a kernels module, `_snnsim_cuda` on CUDA tensors or
# `_snnsim_host` (the same launch grid emulated on the host) on CPU tensors, with the
# launch triple (bits, device, stream). The kernels read raw memory, so the tensors are
# checked first: one float dtype, one device, matching shapes.

def _check_layer_tensors(t_in: torch.Tensor, w: torch.Tensor, **per_output: torch.Tensor):
    """TypeError/ValueError unless t_in[B, N], w[N, M] and each per_output[B, M] fit."""
    float_bits(t_in)
    if t_in.dim() != 2 or w.dim() != 2 or w.shape[0] != t_in.shape[1]:
        raise ValueError(f"the cuda kernels need t_in[B, N] and w[N, M], got shapes "
                         f"{tuple(t_in.shape)} and {tuple(w.shape)}")
    expected = (t_in.shape[0], w.shape[1])
    for name, x in {"w": w, **per_output}.items():
        if x.dtype != t_in.dtype or x.device != t_in.device:
            raise TypeError(f"the cuda kernels need one dtype and device: t_in is {t_in.dtype} "
                            f"on {t_in.device}, {name} is {x.dtype} on {x.device}")
        if name != "w" and tuple(x.shape) != expected:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")


def launch_forward(kernels, launch, t_in: torch.Tensor, w: torch.Tensor,
                   params: NeuronParams) -> torch.Tensor:
    """t_out[B, M] of inputs t_in[B, N] and weights w[N, M] by `kernels`."""
    _check_layer_tensors(t_in, w)
    batch, n_in = t_in.shape
    n_out = w.shape[1]
    t_out = torch.empty((batch, n_out), dtype=t_in.dtype, device=t_in.device)
    neurons, _keep = _neurons(params, n_out, t_in)
    scratch_times = scratch_index = None
    if n_in * (t_in.element_size() + 4) > kernels.MAX_SHARED_BYTES:
        scratch_times = torch.empty((batch, n_in), dtype=t_in.dtype, device=t_in.device)
        scratch_index = torch.empty((batch, n_in), dtype=torch.int32, device=t_in.device)
    kernels.forward(
        launch, _matrix(t_in), _matrix(w), batch, n_in, n_out, neurons,
        regime_code(params.regime), t_out.data_ptr(),
        0 if scratch_times is None else scratch_times.data_ptr(),
        0 if scratch_index is None else scratch_index.data_ptr(),
    )
    return t_out


def weight_gradient_chunks(batch: int, n_in: int, n_out: int) -> int:
    """Batch chunks of the weight-gradient pass: about WEIGHT_GRADIENT_THREADS threads."""
    return max(1, min(batch, 65535, math.ceil(WEIGHT_GRADIENT_THREADS / max(1, n_in * n_out))))


def launch_backward(kernels, launch, t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor,
                    grad_t_out: torch.Tensor, params: NeuronParams,
                    max_dw_norm: float | None = None, n_chunks: int | None = None):
    """(grad_t_in[B, N], grad_w[N, M]) by `kernels`; n_chunks: see weight_gradient_chunks."""
    _check_layer_tensors(t_in, w, t_out=t_out, grad_t_out=grad_t_out)
    batch, n_in = t_in.shape
    n_out = w.shape[1]
    if n_chunks is None:
        n_chunks = weight_gradient_chunks(batch, n_in, n_out)
    scale = torch.empty((2, batch, n_out), dtype=t_in.dtype, device=t_in.device)
    partials = torch.zeros((n_chunks, n_in, n_out), dtype=t_in.dtype, device=t_in.device)
    grad_t_in = torch.zeros((batch, n_in), dtype=t_in.dtype, device=t_in.device)
    neurons, _keep = _neurons(params, n_out, t_in)
    kernels.backward(
        launch, _matrix(t_in), _matrix(w), _matrix(t_out), _matrix(grad_t_out), batch, n_in,
        n_out, neurons, -1.0 if max_dw_norm is None else float(max_dw_norm),
        scale.data_ptr(), n_chunks, partials.data_ptr(), grad_t_in.data_ptr(),
    )
    return grad_t_in, (partials[0] if n_chunks == 1 else partials.sum(0))


def launch_lambertw(kernels, launch, x: torch.Tensor) -> torch.Tensor:
    """W0 of every element of x by `kernels`."""
    float_bits(x)
    source = x.detach().contiguous()
    w = torch.empty_like(source)
    kernels.lambertw(launch, source.data_ptr(), w.data_ptr(), source.numel())
    return w


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """First spike times t_out[B, M] (+inf: no spike) for inputs t_in[B, N], weights w[N, M]."""
    check_available()
    device = _device_of(t_in)
    with torch.cuda.device(device):
        t = t_in.detach().to(device)
        weights = w.detach().to(device=device, dtype=t.dtype)
        t_out = launch_forward(_snnsim_cuda, _launch(t), t, weights, params)
    return t_out.to(t_in.device)


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """(grad_t_in[B, N], grad_w[N, M]); see `backends.torch_backend.backward`."""
    check_available()
    device = _device_of(t_in)
    with torch.cuda.device(device):
        t = t_in.detach().to(device)
        like = {"device": device, "dtype": t.dtype}
        grad_t_in, grad_w = launch_backward(
            _snnsim_cuda, _launch(t), t, w.detach().to(**like), t_out.detach().to(**like),
            grad_t_out.detach().to(**like), params, max_dw_norm)
    return grad_t_in.to(t_in.device), grad_w.to(device=w.device, dtype=w.dtype)


class _LambertW(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        with torch.cuda.device(x.device):
            w = launch_lambertw(_snnsim_cuda, _launch(x), x)
        ctx.save_for_backward(w)
        return w

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad / (torch.exp(w) * (1.0 + w))  # dW/dx = 1 / (e^W (1 + W))


def lambertw(x: torch.Tensor) -> torch.Tensor:
    """W0(x) elementwise for a float32/float64 CUDA tensor, by the device W0 of the kernels.

    NaN where x < -1/e; differentiable (dW/dx = 1 / (e^W (1 + W))).
    """
    check_available()
    if not torch.is_tensor(x) or not x.is_cuda or x.dtype not in (torch.float32, torch.float64):
        described = (f"{x.dtype} tensor on {x.device}" if torch.is_tensor(x)
                     else type(x).__name__)
        raise TypeError(f"backends.cuda.lambertw expects a float32 or float64 CUDA tensor, "
                        f"got a {described}; use snnsim.lambertw.lambertw for other tensors")
    return _LambertW.apply(x)
