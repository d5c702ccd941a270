"""The principal branch W0 of the Lambert W function, for real arguments.

W0(x) is the solution w >= -1 of  w * exp(w) = x,  defined for x >= -1/e.
Below -1/e there is no real solution and W0 returns NaN, so that a caller can
never mistake "no solution" for a time. The double nearest to -1/e (which lies
a few 1e-17 below it) is taken as the branch point, W0 = -1.

Method (the same in both implementations below), with p = sqrt(2 (e x + 1)),
formed as sqrt(2 e ((x + 1/e_hi) + 1/e_lo)) so that the cancellation near -1/e
costs no accuracy:

* x in [-1/e, 0] -- the range of the spike-time solver, so the fast path, with no
  exponential and no division:
  - near the branch point (p < SERIES_ONLY_P) the series
    W0 = -1 + p - p^2/3 + 11/72 p^3 - ...  (Corless et al. 1996, eq. 4.22);
  - elsewhere W0 = x e^{-W0}, with e^{-W0} a polynomial in p of degree
    BRANCH_SIDE_DEGREE (relative error ~4e-15, also as x -> 0). The polynomial
    interpolates at Chebyshev points, computed at import time without any W0:
    with v = 1 + W0, p^2/2 = 1 + W0 e^{W0+1} = v e^v - expm1(v)
    = sum_{k>=2} (k-1) v^k / k!, solved for v by Newton's method.
* x > 0: Winitzki's log1p form (x < 3) or the asymptotic L1 - L2 + L2/L1 as the
  guess, refined by Halley's iteration
      w <- w - 2 f (w + 1) / (2 e^w (w + 1)^2 - (w + 2) f),   f = w e^w - x,
  until a step is below HALLEY_TOLERANCE times min(|w|, 1) (the iteration converges
  cubically, so the step after would be below 1e-17 of that; for large w an absolute
  error of w is a relative one of e^w).

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
BRANCH_SIDE_DEGREE = 20  # as written out in _branch_side_ratio
HALLEY_STEPS = 4
HALLEY_TOLERANCE = 1e-6
# u = U_SCALE p - U_SHIFT maps p in [SERIES_ONLY_P, BRANCH_P] onto [-1, 1].
U_SCALE = 2.0 / (BRANCH_P - SERIES_ONLY_P)
U_SHIFT = (BRANCH_P + SERIES_ONLY_P) / (BRANCH_P - SERIES_ONLY_P)

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


def _branch_side_coefficients() -> tuple[float, ...]:
    """Power-series coefficients in u of e^{-W0} on p in [SERIES_ONLY_P, BRANCH_P]."""
    h_series = [(k - 1) / math.factorial(k) for k in range(2, 30)]  # v e^v - expm1(v)

    def half_p_squared(v):
        total = np.zeros_like(v)
        for coefficient in reversed(h_series):
            total = (total + coefficient) * v
        return total * v

    def ratio(u):
        p = (u + U_SHIFT) / U_SCALE
        v = p.copy()  # v ~ p near the branch point, where p^2/2 ~ v^2/2
        for _ in range(30):
            v = v - (half_p_squared(v) - p * p / 2.0) / (v * np.exp(v))
        return np.exp(1.0 - v)  # e^{-W0}, W0 = v - 1

    coefficients = chebyshev.cheb2poly(chebyshev.chebinterpolate(ratio, BRANCH_SIDE_DEGREE))
    return tuple(float(c) for c in coefficients)


_C = _branch_side_coefficients()


@register_jitable  # plain Python for tensors, and callable from numba-compiled code
def _branch_side_ratio(u):
    """e^{-W0} at u (a float or a tensor): the degree-20 polynomial in Estrin's scheme
    (pairs of terms, then pairs of pairs, ...), a shorter chain of dependent operations
    than Horner's rule."""
    u2 = u * u
    u4 = u2 * u2
    u8 = u4 * u4
    u16 = u8 * u8
    c = _C
    pairs = (c[0] + c[1] * u, c[2] + c[3] * u, c[4] + c[5] * u, c[6] + c[7] * u,
             c[8] + c[9] * u, c[10] + c[11] * u, c[12] + c[13] * u, c[14] + c[15] * u,
             c[16] + c[17] * u, c[18] + c[19] * u)
    quads = (pairs[0] + pairs[1] * u2, pairs[2] + pairs[3] * u2, pairs[4] + pairs[5] * u2,
             pairs[6] + pairs[7] * u2, pairs[8] + pairs[9] * u2)
    octets = (quads[0] + quads[1] * u4, quads[2] + quads[3] * u4)
    return (octets[0] + octets[1] * u8) + (quads[4] + c[20] * u4) * u16


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
        ew = math.exp(w)
        f = w * ew - x
        w1 = w + 1.0
        step = 2.0 * f * w1 / (2.0 * ew * w1 * w1 - (w + 2.0) * f)
        w = w - step
        if not abs(step) > HALLEY_TOLERANCE * min(abs(w), 1.0):
            break
    return w


@register_jitable
def lambertw_nonpositive(x: float) -> float:
    """W0(x) for one float in [-1/e, 0] (the double nearest -1/e included), unchecked: the
    range of the spike-time solver, where W0 is in [-1, 0]."""
    # The double -INV_E_HI lies just below -1/e; it is taken as the branch point.
    p = math.sqrt(2.0 * math.e * max((x + INV_E_HI) + INV_E_LO, 0.0))
    if p < SERIES_ONLY_P:
        w = 0.0
        for k in range(len(BRANCH_SERIES) - 1, -1, -1):
            w = w * p + BRANCH_SERIES[k]
        return w
    return x * _branch_side_ratio(U_SCALE * p - U_SHIFT)


def lambertw(x: torch.Tensor) -> torch.Tensor:
    """W0(x) elementwise for a floating tensor (any device); NaN where x < -1/e.

    CUDA tensors use the device kernel of the `cuda` backend where it is built; the
    tensor code below is the fallback (it runs on any device too).
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"lambertw expects a floating torch tensor, got {type(x).__name__}")
    if x.is_cuda and x.dtype in (torch.float32, torch.float64):
        from backends import BackendUnavailableError

        try:
            import backends.cuda as cuda_backend

            cuda_backend.check_available()
            return cuda_backend.lambertw(x)
        except BackendUnavailableError:
            pass
    shifted = (x + INV_E_HI) + INV_E_LO
    p = torch.sqrt((2.0 * math.e) * shifted.clamp(min=0.0))
    series = torch.full_like(x, BRANCH_SERIES[-1])
    for coefficient in BRANCH_SERIES[-2::-1]:
        series = series * p + coefficient
    branch_side = torch.where(p < SERIES_ONLY_P, series,
                              x * _branch_side_ratio(U_SCALE * p - U_SHIFT))
    positive = (x > 0.0) & torch.isfinite(x)
    if bool(positive.any()):
        lx = torch.log1p(x.clamp(min=0.0))
        winitzki = lx * (1.0 - torch.log1p(lx) / (2.0 + lx))
        l1 = torch.log(x.clamp(min=3.0))
        l2 = torch.log(l1)
        w = torch.where(x < 3.0, winitzki, l1 - l2 + l2 / l1)
        for _ in range(HALLEY_STEPS):
            ew = torch.exp(w)
            f = w * ew - x
            w1 = w + 1.0
            step = 2.0 * f * w1 / (2.0 * ew * w1 * w1 - (w + 2.0) * f)
            w = torch.where(positive & (f != 0.0), w - step, w)
    else:
        w = x
    w = torch.where(x <= 0.0, branch_side, w)
    w = torch.where(x == math.inf, x, w)
    return torch.where(x < -INV_E_HI, torch.full_like(x, math.nan), w)
