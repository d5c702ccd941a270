"""Numerical constants of the spike-time solvers, defined once for the Python backends.

`backends/torch_backend.py` and `backends/cpu.py` import them from here. The CUDA kernels
repeat them in `backends/cuda/csrc/spike_math.h` (device code cannot import Python);
`tests/test_constants.py` reads that header and checks that the values agree.

(numba's on-disk cache does not see changes to this file from the `cpu` backend's
kernels, which freeze these values when they compile: clear `backends/__pycache__/*.nb*`
after editing it.)
"""
from __future__ import annotations

from snnsim.params import DOUBLE, EQUAL, GENERAL

# The slope of the membrane at a crossing, dV'/dt = (I(t*) - c) / tau_m, is floored at
# MIN_SLOPE_FRACTION * c / tau_m in the backward pass, so that a membrane that only
# grazes threshold gives large but finite gradients.
MIN_SLOPE_FRACTION = 1e-9

# Most steps of the general regime's safeguarded root solve (Newton in `torch`, Halley in
# `cpu`); each step at least halves the bracket, so this is never the limit in float64.
NEWTON_MAX_ITERATIONS = 100

# Integer codes of the regimes (`NeuronParams.regime`) as the compiled kernels take them:
# the closed-form regimes, and GENERAL_CODE for any other ratio tau_m / tau_s.
EQUAL_CODE = 0  # tau_m == tau_s
DOUBLE_CODE = 1  # tau_m == 2 tau_s
GENERAL_CODE = 2  # any other ratio
REGIME_CODES: dict[str, int] = {EQUAL: EQUAL_CODE, DOUBLE: DOUBLE_CODE}


def regime_code(regime: str) -> int:
    """The kernels' integer code of a regime name (EQUAL, DOUBLE or GENERAL)."""
    if regime == GENERAL:
        return GENERAL_CODE
    try:
        return REGIME_CODES[regime]
    except KeyError:
        raise ValueError(f"unknown regime {regime!r}; expected one of "
                         f"{', '.join(repr(r) for r in (EQUAL, DOUBLE, GENERAL))}") from None
