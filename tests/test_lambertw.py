"""W0 (torch and numba-compiled scalar versions) against scipy's Lambert W."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch
from numba import njit

from snnsim import lambertw
from snnsim.lambertw import INV_E_HI, lambertw_scalar

ULPS_NEAR_BRANCH = 4


compiled_lambertw_scalar = njit(error_model="numpy")(lambertw_scalar)  # as the cpu backend


@njit(cache=False)
def _compiled_map(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = compiled_lambertw_scalar(x[i])
    return out


def _torch_w0(x: np.ndarray) -> np.ndarray:
    return lambertw(torch.from_numpy(x)).numpy()


IMPLEMENTATIONS = {"torch": _torch_w0, "numba": _compiled_map}


def _grid() -> np.ndarray:
    """Dense grid over (-1/e, 1e300]: linear near 0, geometric in |x| on both sides."""
    x = np.unique(np.concatenate([
        np.linspace(-INV_E_HI, 10.0, 40001),
        -np.geomspace(1e-300, INV_E_HI, 20001),
        np.geomspace(1e-300, 1e300, 20001),
        -INV_E_HI + np.geomspace(1e-17, 1e-2, 4001),  # approaching the branch point
        [0.0, -0.0, 1.0, math.e, 3.0, 3.0 + 1e-12, 2.999999999],
    ]))
    return x[x > -INV_E_HI]  # the branch point itself: test_special_values


def _tolerance(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """1e-12 relative, or what a few ulps of x allow through |dW/dx| = |W / (x (1 + W))|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = np.abs(w / (x * (1.0 + w)))
    sensitivity = np.where(x == 0.0, 1.0, sensitivity)  # dW/dx = 1 at 0
    return np.maximum(1e-12 * np.abs(w), ULPS_NEAR_BRANCH * np.spacing(np.abs(x)) * sensitivity
                      + 1e-15)


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_matches_scipy_on_a_dense_grid(implementation):
    x = _grid()
    ref = scipy.special.lambertw(x, 0).real
    got = IMPLEMENTATIONS[implementation](x)
    error = np.abs(got - ref)
    tolerance = _tolerance(x, ref)
    worst = np.argmax(error / tolerance)
    assert np.all(error <= tolerance), (
        f"{implementation}: W0({x[worst]!r}) = {got[worst]!r}, scipy {ref[worst]!r}, "
        f"error {error[worst]:.3e} > tolerance {tolerance[worst]:.3e}")
    away_from_branch = x > -INV_E_HI + 1e-3
    relative = error[away_from_branch] / np.abs(ref[away_from_branch]).clip(min=1e-300)
    assert relative.max() <= 1e-12


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_inverts_w_exp_w(implementation):
    """Independent of scipy: W0(x) e^{W0(x)} = x, to what an ulp of W allows (e^W turns
    an absolute error of W into a relative one of x: tolerance ~ |x| ulp (1 + |W|))."""
    x = np.concatenate([np.linspace(-0.3, 700.0, 5001), np.geomspace(1e-300, 1e300, 2001)])
    w = IMPLEMENTATIONS[implementation](x)
    assert np.all(w >= -1.0)
    residual = np.abs(w * np.exp(w) - x)
    assert np.all(residual <= 4e-16 * np.abs(x) * (4.0 + np.abs(w)) + 1e-300)


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_special_values(implementation):
    x = np.array([0.0, math.e, -INV_E_HI, math.inf, -0.0, 1.0])
    w = IMPLEMENTATIONS[implementation](x)
    assert w[0] == 0.0
    assert abs(w[1] - 1.0) <= 2e-16
    assert w[2] == -1.0  # the double nearest -1/e is the branch point
    assert w[3] == math.inf
    assert w[4] == 0.0
    assert abs(w[5] - 0.5671432904097838) <= 1e-16  # the omega constant


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_nan_below_branch_point_and_for_nan(implementation):
    below = np.array([np.nextafter(-INV_E_HI, -1.0), -0.37, -0.5, -1.0, -1e300, -math.inf,
                      math.nan])
    assert np.all(np.isnan(IMPLEMENTATIONS[implementation](below)))


def test_scalar_python_version_matches_compiled():
    x = np.linspace(-INV_E_HI, 5.0, 101)
    python = np.array([lambertw_scalar(float(v)) for v in x])
    np.testing.assert_array_equal(python, _compiled_map(x))


def test_float32_tensor():
    x = torch.linspace(-0.36, 5.0, 1001, dtype=torch.float32)
    w = lambertw(x)
    assert w.dtype == torch.float32
    ref = scipy.special.lambertw(x.double().numpy()).real
    np.testing.assert_allclose(w.double().numpy(), ref, rtol=2e-6, atol=2e-6)


def test_rejects_non_float_tensors():
    with pytest.raises(TypeError, match="floating torch tensor"):
        lambertw(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="floating torch tensor"):
        lambertw([0.5])
