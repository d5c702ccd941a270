"""HardwareConfig: published defaults, validation messages, paths, aliases."""
from __future__ import annotations

import shutil

import pytest

from calibration import default_calibration_path
from hw import HardwareConfig


def test_defaults_are_the_published_setup():
    c = HardwareConfig.from_dict(None)
    assert c.to_dict() == HardwareConfig.from_dict({}).to_dict() == HardwareConfig().to_dict()
    assert (c.scale_weights, c.n_input_repetitions, c.time_scale_us, c.sample_gap) == (30, 5, 6, 30)
    assert c.connection == "mock" and c.calibration == default_calibration_path()
    p = c.model_neuron_params
    assert (p.leak, p.threshold, p.g_leak, p.tau_syn, p.tau_mem) == (0.7, 1.08, 4.0, 1.0, 1.0)
    assert c.max_weight == pytest.approx(2.1)
    assert 0 < c.jitter < 0.1 and c.drop_probability == 0 and c.retries >= 1


def test_round_trip_through_plain_data():
    c = HardwareConfig.from_dict({"jitter": 0.0, "seed": 3, "model_neuron_params": {"leak": 0.6}})
    again = HardwareConfig.from_dict(c.to_dict())
    assert again.to_dict() == c.to_dict() and again.model_neuron_params.leak == 0.6


@pytest.mark.parametrize("d, message", [
    ({"scale_weight": 30}, r"unknown hardware key 'scale_weight'; did you mean 'scale_weights'"),
    ({"jiter": 0.1}, r"did you mean 'jitter'"),
    ({"scale_weights": "30"}, (r"hardware.scale_weights = '30' \(str\) has the wrong type; "
                               r"expected a number > 0")),
    ({"n_input_repetitions": 2.5}, r"n_input_repetitions = 2.5 \(float\) has the wrong type"),
    ({"n_input_repetitions": 0}, r"n_input_repetitions = 0 is invalid; expected an integer in"),
    ({"jitter": -0.1}, r"hardware.jitter = -0.1 is invalid; expected a standard deviation >= 0"),
    ({"drop_probability": 1.0}, r"drop_probability = 1.0 is invalid; expected a probability"),
    ({"connection": "chip"}, r"connection = 'chip' is invalid; expected one of mock, real"),
    ({"retries": True}, r"retries = True \(bool\) has the wrong type"),
    ({"calibration": "nowhere.h5"}, r"hardware.calibration: file .*nowhere.h5 does not exist"),
    ({"model_neuron_params": {"treshold": 1.0}},
     r"model_neuron_params.treshold; did you mean 'threshold'"),
    ({"model_neuron_params": {"threshold": 0.5}}, r"threshold must be above leak"),
    ({"taum": 6.0, "time_scale_us": 6.0}, r"given twice"),
])
def test_invalid_entries_name_key_value_and_expectation(tmp_path, d, message):
    with pytest.raises((ValueError, TypeError), match=message):
        HardwareConfig.from_dict(d, base_dir=tmp_path)


def test_calibration_path_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    shutil.copy(default_calibration_path(), folder / "my_chip.h5")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    c = HardwareConfig.from_dict({"calibration": "my_chip.h5"}, base_dir=folder)
    assert c.calibration == (folder / "my_chip.h5").resolve()


def test_published_hx_settings_keys_are_accepted():
    c = HardwareConfig.from_dict({"taum": 6.0, "scale_weights": 30, "synapse_bias": 1000,
                                  "neuron_params": {"leak": 0.7, "threshold": 1.08,
                                                    "g_leak": 4.0, "tau_syn": 1.0}})
    assert c.time_scale_us == 6.0 and c.synapse_bias == 1000 and isinstance(c.scale_weights, float)
