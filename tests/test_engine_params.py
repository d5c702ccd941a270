"""NeuronParams: validation with errors naming the field, regimes, per-neuron arrays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snnsim import NeuronParams
from snnsim.params import DOUBLE, EQUAL, GENERAL


@pytest.mark.parametrize("field", ["tau_syn", "tau_mem", "g_leak"])
@pytest.mark.parametrize("value", [0.0, -1.0, [1.0, 0.0, 2.0]])
def test_non_positive_values_are_rejected(field, value):
    kwargs = {field: value}
    if field == "tau_syn" and isinstance(value, list):
        kwargs["tau_mem"] = [1.5, 1.6, 1.7]
    with pytest.raises(ValueError, match=rf"NeuronParams\.{field} must be > 0"):
        NeuronParams(**kwargs)


@pytest.mark.parametrize("threshold, leak", [(1.0, 1.0), (0.5, 1.0), ([1.0, 2.0], [0.0, 2.5])])
def test_threshold_must_be_above_leak(threshold, leak):
    with pytest.raises(ValueError, match=r"NeuronParams\.threshold must be above leak"):
        NeuronParams(threshold=threshold, leak=leak)


@pytest.mark.parametrize("field", ["tau_syn", "tau_mem", "threshold", "leak", "g_leak"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan]])
def test_non_finite_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=rf"NeuronParams\.{field} must be finite"):
        NeuronParams(**{field: value})


@pytest.mark.parametrize("value, message", [
    ([[1.0, 2.0]], r"NeuronParams\.tau_syn must be a number or a 1-D array .* shape \(1, 2\)"),
    ([], r"NeuronParams\.tau_syn must be a number or a 1-D array .* shape \(0,\)"),
    ("fast", r"NeuronParams\.tau_syn must be a number or a 1-D array of numbers, got 'fast'"),
    (None, r"NeuronParams\.tau_syn must be a number or a 1-D array"),
])
def test_malformed_values_are_rejected(value, message):
    with pytest.raises(ValueError, match=message):
        NeuronParams(tau_syn=value)


def test_per_neuron_arrays_must_have_one_length():
    with pytest.raises(ValueError, match=r"per-neuron arrays have different lengths \[2, 3\]"):
        NeuronParams(tau_syn=[1.0, 1.1], tau_mem=[1.5, 1.6, 1.7])
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        NeuronParams(threshold=[1.0, 1.1, 1.2], g_leak=[1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("tau_mem", [[1.0, 1.5], [2.0, 1.5], [1.0, 2.0]])
def test_mixed_regimes_are_rejected(tau_mem):
    with pytest.raises(ValueError, match="NeuronParams mixes neurons with tau_mem == tau_syn"):
        NeuronParams(tau_syn=1.0, tau_mem=tau_mem)


def test_regimes():
    assert NeuronParams().regime == EQUAL
    assert NeuronParams(tau_syn=2.0).tau_mem == 2.0  # tau_mem defaults to tau_syn
    assert NeuronParams(tau_syn=0.5, tau_mem=1.0).regime == DOUBLE
    assert NeuronParams(tau_syn=1.0, tau_mem=1.7).regime == GENERAL
    assert NeuronParams(tau_syn=1.0, tau_mem=0.6).regime == GENERAL
    assert NeuronParams(tau_syn=[1.0, 2.0], tau_mem=[1.0, 2.0]).regime == EQUAL
    assert NeuronParams(tau_syn=[1.0, 2.0], tau_mem=[2.0, 4.0]).regime == DOUBLE
    assert NeuronParams(tau_syn=[1.0, 2.0], tau_mem=[1.7, 2.5]).regime == GENERAL


def test_arrays_and_drive():
    p = NeuronParams(tau_syn=1.0, tau_mem=2.0, threshold=1.3, leak=0.2, g_leak=0.8)
    tau_m, tau_s, drive = p.arrays(5)
    assert tau_m.tolist() == [2.0] and tau_s.tolist() == [1.0]
    assert drive.tolist() == [pytest.approx(0.8 * 1.1, abs=1e-16)]
    q = NeuronParams(tau_syn=1.0, tau_mem=[1.5, 1.7, 2.5], threshold=[1.0, 2.0, 3.0])
    tau_m, tau_s, drive = q.arrays(3)
    assert tau_m.tolist() == [1.5, 1.7, 2.5] and tau_s.tolist() == [1.0, 1.0, 1.0]
    assert drive.tolist() == [1.0, 2.0, 3.0]
    assert q.n_neurons == 3 and p.n_neurons is None
    with pytest.raises(ValueError, match="per-neuron values for 3 neurons, but the layer has 4"):
        q.arrays(4)


def test_values_cannot_change_after_validation():
    tau_mem = np.array([1.5, 1.7])
    p = NeuronParams(tau_syn=1.0, tau_mem=tau_mem)
    tau_mem[0] = 1.0  # the caller's array: not the record's
    assert p.tau_mem.tolist() == [1.5, 1.7] and p.regime == GENERAL
    with pytest.raises(ValueError, match="read-only"):
        p.tau_mem[0] = 1.0
    arrays = p.arrays(2)
    arrays[0][0] = 99.0  # a copy: the next call is unaffected
    assert p.arrays(2)[0].tolist() == [1.5, 1.7]
    with pytest.raises(AttributeError):
        p.tau_syn = 2.0
