"""Backends: interchangeable implementations of one small contract.

A backend is one module with

    forward(t_in[B, N], w[N, M], params: NeuronParams) -> t_out[B, M]       (+inf: no spike)
    backward(t_in, w, t_out, grad_t_out, params, max_dw_norm=None) -> (grad_t_in, grad_w)

taking and returning torch tensors. Inputs arrive validated (see
`snnsim.spike_times.check_layer_inputs`). Adding a backend is adding its module
and one line to BACKEND_MODULES. Where a backend needs state (a chip
connection and the placement of a layer on it), an object with the same two
methods can be passed instead of a name.
"""
from __future__ import annotations

import importlib

BACKEND_MODULES = {
    "torch": "backends.torch_backend",
    "cpu": "backends.cpu",
    "cuda": "backends.cuda",
    "bss2": "hw.backend",
}


class BackendUnavailableError(RuntimeError):
    """A known backend cannot run here (its extension is not built, no device, ...)."""


def get_backend(name):
    """The backend module registered as `name`, or `name` itself if it is a backend object."""
    if not isinstance(name, str):
        if callable(getattr(name, "forward", None)) and callable(getattr(name, "backward", None)):
            return name
        raise TypeError(f"backend must be a name or an object with forward/backward, got {name!r}")
    if name not in BACKEND_MODULES:
        raise ValueError(
            f"unknown backend {name!r}; expected one of {', '.join(sorted(BACKEND_MODULES))}"
        )
    try:
        module = importlib.import_module(BACKEND_MODULES[name])
    except ModuleNotFoundError as error:
        raise BackendUnavailableError(
            f"backend {name!r} is not available in this installation ({error})"
        ) from error
    check = getattr(module, "check_available", None)
    if check is not None:
        check()
    return module
