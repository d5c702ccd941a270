"""The principal branch W0 of the Lambert W function, for real arguments.

W0(x) is the solution w >= -1 of  w * exp(w) = x,  defined for x >= -1/e.
Below -1/e there is no real solution and W0 returns NaN, so that a caller can
never mistake "no solution" for a time. The double nearest to -1/e (which lies
a few 1e-17 below it) is taken as the branch point, W0 = -1.

Method (the same in both implementations below), with p = sqrt(2 (e x + 1)):

* near the branch point (p < SERIES_ONLY_P) the series
  W0 = -1 + p - p^2/3 + 11/72 p^3 - ...  (Corless et al. 1996, eq. 4.22);
  e x + 1 is formed as e * ((x + 1/e_hi) + 1/e_lo) so that the cancellation
  near -1/e costs no accuracy;
* elsewhere an initial guess refined by Halley's iteration
      w <- w - 2 f (w + 1) / (2 e^w (w + 1)^2 - (w + 2) f),   f = w e^w - x,
  which converges cubically.
  On [-1/e, 0] -- the only range the spike-time solver uses, so it is the
  fast path -- the guess is w = x e^{-W0(x)} with e^{-W0} a polynomial in p,
  accurate to ~2e-6 relative even as x -> 0, and one Halley step brings it to
  ~1e-17. The polynomial is fitted at import time to points (p(w), e^{-w})
  computed from w, which needs no W0.
  On x > 0 the guess is Winitzki's log1p form (x < 3) or the asymptotic
  L1 - L2 + L2/L1, iterated until a step is below HALLEY_TOLERANCE times
  min(|w|, 1) (the step after it would be below 1e-17 of that: for large w an
  absolute error of w is a relative one of e^w).

`lambertw` works on torch tensors of any device; `lambertw_scalar` is plain
`math` code that the numba backend compiles. (numba's on-disk cache does not
see changes to this file from the backend's kernels: clear
`backends/__pycache__/*.nb*` after editing it.)
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba.extending import register_jitable
from numpy.polynomial import chebyshev

INV_E_HI = 0.36787944117144233  # 1/e rounded to double
INV_E_LO = -1.2428753672788363e-17  # 1/e - INV_E_HI
SERIES_ONLY_P = 0.05  # below this p the 11-term branch series is exact to ~1e-16
BRANCH_P = math.sqrt(2.0)  # p at x = 0
HALLEY_STEPS = 4
HALLEY_TOLERANCE = 1e-6
GUESS_DEGREE = 8  # relative error of the polynomial guess ~2e-6; _guess_ratio is for 8

# Coefficients of the branch-point series in powers of p.
BRANCH_SERIES = (
    -1.0,
    1.0,
    -1.0 / 3.0,
    11.0 / 72.0,
    -43.0 / 540.0,
    769.0 / 17280.0,
    -221.0 / 8505.0,
    680863.0 / 43545600.0,
    -1963.0 / 204120.0,
    226287557.0 / 37623398400.0,
    -5776369.0 / 1515591000.0,
)


def _fit_guess() -> tuple[float, ...]:
    """Power-series coefficients in u = (2p - (SERIES_ONLY_P + BRANCH_P)) / (BRANCH_P -
    SERIES_ONLY_P) of e^{-W0} on the p-interval [SERIES_ONLY_P, BRANCH_P]."""
    w = np.linspace(-1.0, 0.0, 20001)
    p = np.sqrt(2.0 * (1.0 + w * np.exp(w + 1.0)))
    keep = p >= 0.9 * SERIES_ONLY_P
    u = (2.0 * p[keep] - (SERIES_ONLY_P + BRANCH_P)) / (BRANCH_P - SERIES_ONLY_P)
    coefficients = chebyshev.cheb2poly(chebyshev.chebfit(u, np.exp(-w[keep]), GUESS_DEGREE))
    return tuple(float(c) for c in coefficients)


GUESS_POLYNOMIAL = _fit_guess()
_C = GUESS_POLYNOMIAL


@register_jitable  # plain Python for tensors, and callable from numba-compiled code
def _guess_ratio(u):
    """The guess polynomial for e^{-W0} at u (a float or a tensor), in Estrin's form:
    the same terms as Horner's rule with a shorter chain of dependent operations."""
    u2 = u * u
    u4 = u2 * u2
    return (((_C[0] + _C[1] * u) + u2 * (_C[2] + _C[3] * u))
            + u4 * (((_C[4] + _C[5] * u) + u2 * (_C[6] + _C[7] * u)) + u4 * _C[8]))


def lambertw_scalar(x: float) -> float:
    """W0(x) for one float; NaN for x < -1/e or NaN, +inf for +inf."""
    if not x >= -INV_E_HI:  # also NaN
        return math.nan
    if x <= 0.0:
        return lambertw_nonpositive(x)
    if x == math.inf:
        return math.inf
    if x < 3.0:
        lx = math.log1p(x)
        w = lx * (1.0 - math.log1p(lx) / (2.0 + lx))
    else:
        l1 = math.log(x)
        l2 = math.log(l1)
        w = l1 - l2 + l2 / l1
    for _ in range(HALLEY_STEPS):
        step = _halley_step(x, w)
        w = w - step
        if not abs(step) > HALLEY_TOLERANCE * min(abs(w), 1.0):
            break
    return w


@register_jitable
def lambertw_nonpositive(x: float) -> float:
    """W0(x) for one float in [-1/e, 0] (the double nearest -1/e included), unchecked: the
    range of the spike-time solver, where W0 in [-1, 0]."""
    # The double -INV_E_HI lies just below -1/e; it is taken as the branch point.
    p = math.sqrt(2.0 * math.e * max((x + INV_E_HI) + INV_E_LO, 0.0))
    if p < SERIES_ONLY_P:
        w = 0.0
        for k in range(len(BRANCH_SERIES) - 1, -1, -1):
            w = w * p + BRANCH_SERIES[k]
        return w
    w = x * _guess_ratio((2.0 * p - (SERIES_ONLY_P + BRANCH_P)) / (BRANCH_P - SERIES_ONLY_P))
    return w - _halley_step(x, w)


@register_jitable
def _halley_step(x: float, w: float) -> float:
    """Halley's correction of w towards W(x) (the tensor version is inline in `lambertw`)."""
    ew = math.exp(w)
    f = w * ew - x
    w1 = w + 1.0
    return 2.0 * f * w1 / (2.0 * ew * w1 * w1 - (w + 2.0) * f)


def lambertw(x: torch.Tensor) -> torch.Tensor:
    """W0(x) elementwise for a floating tensor (any device); NaN where x < -1/e."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"lambertw expects a floating torch tensor, got {type(x).__name__}")
    shifted = (x + INV_E_HI) + INV_E_LO
    p = torch.sqrt((2.0 * math.e) * shifted.clamp(min=0.0))
    series = torch.full_like(x, BRANCH_SERIES[-1])
    for coefficient in BRANCH_SERIES[-2::-1]:
        series = series * p + coefficient
    u = (2.0 * p - (SERIES_ONLY_P + BRANCH_P)) / (BRANCH_P - SERIES_ONLY_P)
    r = _guess_ratio(u)
    lx = torch.log1p(x.clamp(min=0.0))
    winitzki = lx * (1.0 - torch.log1p(lx) / (2.0 + lx))
    l1 = torch.log(x.clamp(min=3.0))
    l2 = torch.log(l1)
    asymptotic = l1 - l2 + l2 / l1
    w = torch.where(x <= 0.0, x * r, torch.where(x < 3.0, winitzki, asymptotic))
    refine = (p >= SERIES_ONLY_P) & torch.isfinite(x)
    for _ in range(1 if bool((x <= 0.0).all()) else HALLEY_STEPS):
        ew = torch.exp(w)
        f = w * ew - x
        w1 = w + 1.0
        step = 2.0 * f * w1 / (2.0 * ew * w1 * w1 - (w + 2.0) * f)
        w = torch.where(refine & (f != 0.0), w - step, w)
    w = torch.where(p < SERIES_ONLY_P, series, w)
    w = torch.where(x == math.inf, x, w)
    return torch.where(x < -INV_E_HI, torch.full_like(x, math.nan), w)
