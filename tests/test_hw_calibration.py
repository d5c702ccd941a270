"""Calibration files: shipped chips, generator, round trip, malformed files, model units."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from calibration import (
    N_NEURONS,
    PUBLISHED_TARGETS,
    SHIPPED_CHIPS,
    CalibrationError,
    default_calibration_path,
    file_sha256,
    generate_mock_calibration,
    load_calibration,
    shipped_calibration_path,
)
from snnsim.params import GENERAL, NeuronParams

HW_MODEL = NeuronParams(tau_syn=1.0, threshold=1.08, leak=0.7, g_leak=4.0)


@pytest.fixture
def calibration_file(tmp_path):
    return generate_mock_calibration(7, chip_id="test-chip").save(tmp_path / "chip.h5")


def test_shipped_chips_load_and_differ():
    a = load_calibration(default_calibration_path())
    b = load_calibration(shipped_calibration_path("mock_chip_b"))
    assert default_calibration_path() == shipped_calibration_path("mock_chip_a")
    assert default_calibration_path().is_absolute()
    assert a.chip_id != b.chip_id and a.sha256 != b.sha256
    assert not np.allclose(a.neurons["tau_mem"], b.neurons["tau_mem"])
    assert set(SHIPPED_CHIPS) == {"mock_chip_a", "mock_chip_b"}
    with pytest.raises(ValueError, match="mock_chip_a"):
        shipped_calibration_path("chip_c")


def test_shipped_chip_is_what_the_generator_makes():
    shipped = load_calibration(default_calibration_path())
    again = generate_mock_calibration(SHIPPED_CHIPS["mock_chip_a"])
    for name, values in shipped.neurons.items():
        np.testing.assert_array_equal(values, again.neurons[name])


def test_generator_is_seeded_and_realistic():
    a, b, c = (generate_mock_calibration(s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.neurons["threshold"], b.neurons["threshold"])
    assert not np.array_equal(a.neurons["threshold"], c.neurons["threshold"])
    assert a.chip_id == "mock-3"
    summary = a.summary()
    for name in ("tau_mem", "tau_syn", "synaptic_gain"):
        assert 0.01 < summary[name]["relative_spread"] < 0.08, name
    assert abs(summary["tau_mem"]["mean"] - 6.0) < 0.2
    assert abs(summary["threshold"]["mean"] - 150.0) < 1.0
    assert abs(summary["leak"]["mean"] - 80.0) < 1.0
    ratio = a.neurons["tau_mem"] / a.neurons["tau_syn"]
    assert np.all(np.abs(ratio - 1) >= 1e-3) and np.all(np.abs(ratio - 2) >= 1e-3)
    assert a.targets == PUBLISHED_TARGETS and a.time_scale_us == 6.0
    with pytest.raises(ValueError, match="seed"):
        generate_mock_calibration(-1)


def test_round_trip(tmp_path):
    original = generate_mock_calibration(11, chip_id="round-trip", created="2026-01-02T03:04:05")
    path = original.save(tmp_path / "sub" / "chip.h5")
    loaded = load_calibration(path)
    assert (loaded.chip_id, loaded.created, loaded.time_scale_us) == (
        "round-trip", "2026-01-02T03:04:05", original.time_scale_us)
    assert loaded.targets == original.targets and loaded.generator == original.generator
    for group in ("neurons", "spread"):
        for name, values in getattr(original, group).items():
            np.testing.assert_array_equal(getattr(loaded, group)[name], values)
    assert loaded.source == path.resolve() and loaded.sha256 == file_sha256(path)
    original.save(path)  # overwriting is atomic and leaves no temp files
    assert sorted(p.name for p in path.parent.iterdir()) == ["chip.h5"]
    with h5py.File(path) as f:
        assert f["neurons/tau_mem"].attrs["units"] == "us"
        assert f["neurons/threshold"].attrs["units"] == "CADC"


def _edit(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


def _replace(name, values):
    def edit(f):
        units = f[name].attrs["units"]
        del f[name]
        f[name] = values
        f[name].attrs["units"] = units
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.__delitem__("neurons/tau_syn"), r"dataset /neurons/tau_syn is missing"),
    (lambda f: f.__delitem__("spread/leak"), r"dataset /spread/leak is missing"),
    (_replace("neurons/threshold", np.full(511, 150.0)),
     r"/neurons/threshold has shape \(511,\), expected \(512,\)"),
    (_replace("neurons/tau_mem", np.where(np.arange(N_NEURONS) == 17, np.nan, 6.0)),
     r"/neurons/tau_mem\[17\] = nan is not finite"),
    (_replace("neurons/tau_syn", np.where(np.arange(N_NEURONS) == 3, -6.0, 6.0)),
     r"/neurons/tau_syn\[3\] = -6 us is negative"),
    (_replace("neurons/leak", np.full(N_NEURONS, 300.0)),
     r"/neurons/leak\[0\] = 300 CADC is out of range; expected in \[0, 255\]"),
    (lambda f: f["neurons/tau_mem"].attrs.__setitem__("units", "s"),
     r"/neurons/tau_mem has units 's', expected 'us'"),
    (lambda f: f.attrs.__delitem__("chip_id"), r"attribute 'chip_id' is missing"),
    (lambda f: f.attrs.__setitem__("format_version", 99), r"format_version 99 is not supported"),
    (lambda f: f.attrs.__setitem__("time_scale_us", -6.0), r"time_scale_us must be a positive"),
    (_replace("neurons/threshold", np.full(N_NEURONS, 70.0)),
     r"neuron 0 has threshold 70 CADC not above its leak"),
])
def test_malformed_files_name_file_dataset_and_value(calibration_file, edit, message):
    _edit(calibration_file, edit)
    with pytest.raises(CalibrationError, match=message) as info:
        load_calibration(calibration_file)
    assert str(calibration_file) in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(CalibrationError, match=f"{junk}: not a readable HDF5 file"):
        load_calibration(junk)


def test_model_units_anchor_the_targets_at_the_hardware_model():
    cal = generate_mock_calibration(5)
    neurons = {k: v.copy() for k, v in cal.neurons.items()}
    neurons["tau_mem"][:2] = [6.0, 9.0]
    neurons["tau_syn"][:2] = [3.0, 6.0]
    neurons["threshold"][:2] = [150.0, 157.0]
    neurons["leak"][:2] = [80.0, 80.0]
    edited = type(cal)(chip_id="x", created="now", time_scale_us=6.0, neurons=neurons,
                       spread=cal.spread, targets=cal.targets)
    params, gain = edited.model_params([0, 1], HW_MODEL, time_scale_us=6.0)
    np.testing.assert_allclose(params.tau_mem, [1.0, 1.5])
    np.testing.assert_allclose(params.tau_syn, [0.5, 1.0])
    np.testing.assert_allclose(params.threshold, [1.08, 1.08 + 7 * 0.38 / 70])
    np.testing.assert_allclose(params.leak, [0.7, 0.7])
    assert params.g_leak == 4.0 and params.regime == GENERAL
    np.testing.assert_array_equal(gain, neurons["synaptic_gain"][:2])
    slow, _ = edited.model_params([0, 1], HW_MODEL, time_scale_us=12.0)
    np.testing.assert_allclose(slow.tau_mem, [0.5, 0.75])


def test_records_are_read_only():
    cal = generate_mock_calibration(1)
    with pytest.raises(ValueError):
        cal.neurons["tau_mem"][0] = 1.0
