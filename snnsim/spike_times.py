"""The public entry point: exact first-spike times of a LIF layer, differentiable."""
from __future__ import annotations

import torch

from backends import get_backend
from snnsim.params import NeuronParams


def check_layer_inputs(t_in: torch.Tensor, w: torch.Tensor) -> None:
    """Raise ValueError/TypeError unless t_in[B, N] and w[N, M] are a valid layer input."""
    for name, x in (("t_in", t_in), ("w", w)):
        if not torch.is_tensor(x):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D, got shape {tuple(x.shape)}")
    if t_in.shape[1] != w.shape[0]:
        raise ValueError(
            f"t_in has {t_in.shape[1]} inputs (shape {tuple(t_in.shape)}) but w has "
            f"{w.shape[0]} rows (shape {tuple(w.shape)}); expected w of shape [N, M] "
            f"with N == t_in.shape[1]"
        )
    if t_in.dtype != w.dtype or t_in.device != w.device:
        raise TypeError(
            f"t_in ({t_in.dtype}, {t_in.device}) and w ({w.dtype}, {w.device}) must share "
            f"dtype and device"
        )
    # One reduction for the common, valid case (min propagates NaN); details only on failure.
    if t_in.numel() and not bool(t_in.min() >= 0):
        bad_time = torch.isnan(t_in) | (t_in < 0)
        b, i = (int(v) for v in bad_time.nonzero()[0])
        raise ValueError(
            f"input spike times must be >= 0 or +inf (no spike); t_in[{b}, {i}] = "
            f"{float(t_in[b, i])} ({int(bad_time.sum())} such entries)"
        )
    if w.numel() and not bool(w.abs().max() < torch.inf):
        bad_weight = ~torch.isfinite(w)
        i, j = (int(v) for v in bad_weight.nonzero()[0])
        raise ValueError(f"weights must be finite; w[{i}, {j}] = {float(w[i, j])}")


class _FirstSpikeTimes(torch.autograd.Function):
    """Backends may offer `forward_with_state` / `backward_with_state` (see `backends.cpu`)
    to pass work from the forward to the backward pass; the plain contract is the fallback."""

    @staticmethod
    def forward(ctx, t_in, w, params, backend, max_dw_norm):
        forward_with_state = getattr(backend, "forward_with_state", None)
        if forward_with_state is not None and any(ctx.needs_input_grad[:2]):
            t_out, ctx.state = forward_with_state(t_in, w, params)
        else:
            t_out, ctx.state = backend.forward(t_in, w, params), None
        ctx.save_for_backward(t_in, w, t_out)
        ctx.params, ctx.backend, ctx.max_dw_norm = params, backend, max_dw_norm
        return t_out

    @staticmethod
    def backward(ctx, grad_t_out):
        t_in, w, t_out = ctx.saved_tensors
        if ctx.state is not None:
            grad_t_in, grad_w = ctx.backend.backward_with_state(
                ctx.state, t_in, w, t_out, grad_t_out.contiguous(), ctx.params, ctx.max_dw_norm,
                input_grad=ctx.needs_input_grad[0])
        else:
            grad_t_in, grad_w = ctx.backend.backward(t_in, w, t_out, grad_t_out.contiguous(),
                                                     ctx.params, ctx.max_dw_norm)
        return grad_t_in, grad_w, None, None, None


def first_spike_times(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams,
                      backend="cpu", *, max_dw_norm: float | None = None) -> torch.Tensor:
    """First spike times t_out[B, M] of a LIF layer with inputs t_in[B, N] and weights w[N, M].

    Exact (event-driven, no time grid) and differentiable w.r.t. t_in and w; +inf
    marks an input or output without a spike. With `max_dw_norm`, the weight
    gradient of a (sample, neuron) pair whose largest entry exceeds it is dropped
    (the published code's guard against near-threshold divergence). `backend`
    is a registered name (see `backends.BACKEND_MODULES`) or a backend object.
    """
    if not isinstance(params, NeuronParams):
        raise TypeError(f"params must be snnsim.NeuronParams, got {type(params).__name__}")
    module = get_backend(backend)
    check_layer_inputs(t_in, w)
    if t_in.shape[0] == 0:
        return t_in.new_empty((0, w.shape[1])) + (t_in.sum() + w.sum()) * 0  # keeps the graph
    return _FirstSpikeTimes.apply(t_in.contiguous(), w.contiguous(), params, module, max_dw_norm)
