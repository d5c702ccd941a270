"""Config loading: published configs, validation messages, layout expansion."""
from pathlib import Path

import pytest
import yaml

from snnsim.config import ConfigError, load_config, resolve_config

REPO = Path(__file__).resolve().parents[1]


def published_configs(shared: Path) -> list[Path]:
    return sorted((shared / "fastanddeep" / "configs").glob("*.yaml"))


def test_every_published_config_loads_unchanged(shared_data):
    paths = published_configs(shared_data)
    assert len(paths) == 9
    for path in paths:
        config = load_config(path)
        raw = yaml.safe_load(path.read_text())
        layers = config["network_layout"]["layers"]
        assert [layer["size"] for layer in layers] == raw["network_layout"]["layer_sizes"]
        assert [layer["n_biases"] for layer in layers] == raw["network_layout"]["n_biases"]


def test_shipped_configs_load():
    from snnsim.sweep import load_sweep, plan

    for path in sorted((REPO / "experiment_configs").glob("*.yaml")):
        if "grid" in yaml.safe_load(path.read_text()):
            plan(load_sweep(path))  # every point of a sweep is a valid config
        else:
            load_config(path)


def test_bias_times_flat_and_per_layer(shared_data):
    flat = load_config(shared_data / "fastanddeep/configs/yin_yang.yaml")
    assert [l["bias_times"] for l in flat["network_layout"]["layers"]] == [[0.9], [0.9]]
    per_layer = load_config(shared_data / "fastanddeep/configs/yin_yang_hx.yaml")
    assert [l["bias_times"] for l in per_layer["network_layout"]["layers"]] == [[0.9], []]


def test_ttfs_parameters_default_from_training_params(shared_data):
    config = load_config(shared_data / "fastanddeep/configs/xor.yaml")
    assert config["training_params"]["loss"] == {
        "type": "TTFS", "xi": 0.2, "alpha": 0.005, "beta": 1.0, "t_correct": 1.7,
        "t_wrong": 1.0}


def test_resolved_config_is_a_fixed_point(shared_data):
    config = load_config(shared_data / "fastanddeep/configs/16x16_mnist.yaml")
    assert resolve_config(yaml.safe_load(yaml.safe_dump(config))) == config


def test_explicit_layers_equal_the_shorthand(shared_data):
    short = load_config(shared_data / "fastanddeep/configs/yin_yang.yaml")
    raw = yaml.safe_load((shared_data / "fastanddeep/configs/yin_yang.yaml").read_text())
    raw["network_layout"] = {"n_inputs": 4, "layers": short["network_layout"]["layers"]}
    assert resolve_config(raw) == short


def _raw(shared: Path) -> dict:
    return yaml.safe_load((shared / "fastanddeep/configs/yin_yang.yaml").read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["training_params"].update(learning_rat=0.1),
     "unknown key 'learning_rat'; did you mean 'learning_rate'"),
    (lambda c: c["training_params"].update(batch_size="big"), "batch_size = 'big'"),
    (lambda c: c["training_params"].update(batch_size=0), "batch_size = 0: expected an integer > 0"),
    (lambda c: c["neuron_params"].update(tau_syn=-1.0), "tau_syn = -1.0: expected a number > 0"),
    (lambda c: c.update(dataset="cifar"), "dataset = 'cifar': unknown data set"),
    (lambda c: c["network_layout"].update(weight_means=[1.0]), "weight_means = [1.0]: expected 2"),
    (lambda c: c["training_params"]["loss"].update(type="hinge"), "expected 'TTFS' or 'MSE'"),
    (lambda c: c["training_params"].update(epoch_snapshots=[500]), "epoch_snapshots contains"),
    (lambda c: c.pop("training_params"), "missing required key 'training_params'"),
    (lambda c: c["training_params"].update(max_dw_norm=float("nan")), "finite"),
])
def test_bad_values_are_named(shared_data, mutate, message):
    raw = _raw(shared_data)
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        resolve_config(raw, source="my.yaml")
    assert message in str(error.value)
    assert "my.yaml" in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [yin_yang\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(bad)
