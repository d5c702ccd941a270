"""The principal branch W0 of the Lambert W function, for real arguments.

W0(x) is the solution w >= -1 of  w * exp(w) = x,  defined for x >= -1/e.
Below -1/e there is no real solution and W0 returns NaN, so that a caller can
never mistake "no solution" for a time. The double nearest to -1/e (which lies
a few 1e-17 below it) is taken as the branch point, W0 = -1.

Method (the same in both implementations below):

* near the branch point x = -1/e, with p = sqrt(2 (e x + 1)), the series
  W0 = -1 + p - p^2/3 + 11/72 p^3 - ...  (Corless et al. 1996, eq. 4.22);
  e x + 1 is formed as e * ((x + 1/e_hi) + 1/e_lo) so that the cancellation
  near -1/e costs no accuracy;
* elsewhere an initial guess (the series, Winitzki's log1p form, or the
  asymptotic L1 - L2 + L2/L1 for large x) refined by Halley's iteration
      w <- w - f / (e^w (w + 1) - (w + 2) f / (2 w + 2)),   f = w e^w - x.

`lambertw` works on torch tensors of any device; `lambertw_scalar` is plain
`math` code that the numba backend compiles.
"""
from __future__ import annotations

import math

import torch

INV_E_HI = 0.36787944117144233  # 1/e rounded to double
INV_E_LO = -1.2428753672788363e-17  # 1/e - INV_E_HI
SERIES_ONLY_P = 0.05  # below this p the 10-term branch series is exact to ~1e-16
SERIES_GUESS_P = 1.0
HALLEY_STEPS = 4

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


def lambertw_scalar(x: float) -> float:
    """W0(x) for one float; NaN for x < -1/e or NaN, +inf for +inf."""
    if x != x:
        return math.nan
    if x == math.inf:
        return math.inf
    if x < -INV_E_HI:
        return math.nan
    # The double -INV_E_HI lies just below -1/e; it is taken as the branch point.
    p = math.sqrt(2.0 * math.e * max((x + INV_E_HI) + INV_E_LO, 0.0))
    if p < SERIES_GUESS_P:
        w = 0.0
        for k in range(len(BRANCH_SERIES) - 1, -1, -1):
            w = w * p + BRANCH_SERIES[k]
        if p < SERIES_ONLY_P:
            return w
    elif x < 3.0:
        lx = math.log1p(x)
        w = lx * (1.0 - math.log1p(lx) / (2.0 + lx))
    else:
        l1 = math.log(x)
        l2 = math.log(l1)
        w = l1 - l2 + l2 / l1
    for _ in range(HALLEY_STEPS):
        ew = math.exp(w)
        f = w * ew - x
        if f == 0.0:
            break
        w = w - f / (ew * (w + 1.0) - (w + 2.0) * f / (2.0 * w + 2.0))
    return w


def lambertw(x: torch.Tensor) -> torch.Tensor:
    """W0(x) elementwise for a floating tensor (any device); NaN where x < -1/e."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"lambertw expects a floating torch tensor, got {type(x).__name__}")
    shifted = (x + INV_E_HI) + INV_E_LO
    p = torch.sqrt((2.0 * math.e) * shifted.clamp(min=0.0))
    series = torch.full_like(x, BRANCH_SERIES[-1])
    for coefficient in BRANCH_SERIES[-2::-1]:
        series = series * p + coefficient
    lx = torch.log1p(x.clamp(min=-INV_E_HI))
    winitzki = lx * (1.0 - torch.log1p(lx) / (2.0 + lx))
    l1 = torch.log(x.clamp(min=3.0))
    l2 = torch.log(l1)
    asymptotic = l1 - l2 + l2 / l1
    w = torch.where(p < SERIES_GUESS_P, series, torch.where(x < 3.0, winitzki, asymptotic))
    refine = (p >= SERIES_ONLY_P) & torch.isfinite(x)
    for _ in range(HALLEY_STEPS):
        ew = torch.exp(w)
        f = w * ew - x
        step = f / (ew * (w + 1.0) - (w + 2.0) * f / (2.0 * w + 2.0))
        w = torch.where(refine & (f != 0.0), w - step, w)
    w = torch.where(x == math.inf, x, w)
    return torch.where(x < -INV_E_HI, torch.full_like(x, math.nan), w)
