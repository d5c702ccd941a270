"""The rate core: registries, rate layers, tasks, the loop's hooks and options, and the
rough edges of the config and the command line."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from snnsim import runs
from snnsim.config import ConfigError, load_config, resolve_config
from snnsim.datasets import load_dataset
from snnsim.layers import (
    LayerContext,
    LinearLayer,
    RunSettings,
    TorchRate,
    build_layer,
    init_weight_,
)
from snnsim.params import NeuronParams
from snnsim.registry import LAYERS, METRICS, TASKS, MetricCallback, Registry
from snnsim.tasks import Classification
from snnsim.training import Trainer

REPO = Path(__file__).resolve().parents[1]


def sine_config(**training) -> dict:
    raw = {"dataset": "sine", "data": {"n_train": 64, "n_val": 32, "n_test": 32},
           "network_layout": {"n_inputs": 1, "layers": [
               {"type": "linear", "size": 16, "activation": "tanh"},
               {"type": "linear", "size": 1, "activation": "identity"}]},
           "training_params": {"epoch_number": 2, "batch_size": 16, "optimizer": "sgd",
                               "learning_rate": 0.1, **training}}
    return raw


# -- registry --------------------------------------------------------------------------------

def test_registry_names_the_nearest_entry():
    registry = Registry("widget")
    registry.register(type("A", (), {"type_name": "gearbox"}))
    with pytest.raises(ConfigError, match=r"x.type = 'gerbox': unknown widget; did you mean "
                                          r"'gearbox'\? \(expected one of gearbox\)"):
        registry.get("gerbox", "x.type")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type("B", (), {"type_name": "gearbox"}))


def test_unknown_layer_type_in_a_config():
    raw = sine_config()
    raw["network_layout"]["layers"][0]["type"] = "liner"
    with pytest.raises(ConfigError, match=r"layers\[0\].type = 'liner'.*did you mean 'linear'"):
        resolve_config(raw, "my.yaml")


# -- rate layers -----------------------------------------------------------------------------

@pytest.mark.parametrize("scheme, std", [("lecun_normal", 1 / math.sqrt(400)),
                                         ("he_normal", math.sqrt(2 / 400)),
                                         ("uniform", 1 / math.sqrt(400) / math.sqrt(3))])
def test_initialisations_have_their_variance(scheme, std):
    weight = init_weight_(torch.empty(400, 300, dtype=torch.float64), scheme, 1.0,
                          torch.Generator().manual_seed(0))
    assert float(weight.mean()) == pytest.approx(0.0, abs=3 * std / math.sqrt(weight.numel()))
    assert float(weight.std()) == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("activation, f", [("relu", lambda a: np.maximum(a, 0)),
                                           ("sigmoid", lambda a: 1 / (1 + np.exp(-a))),
                                           ("tanh", np.tanh), ("identity", lambda a: a)])
def test_linear_layer_computes_f_of_xw_plus_b(activation, f):
    entry = resolve_config(sine_config())["network_layout"]["layers"][0]
    entry = {**entry, "activation": activation, "size": 5}
    context = LayerContext(NeuronParams(), torch.Generator().manual_seed(1))
    layer = build_layer(3, entry, context)
    with torch.no_grad():
        layer.bias.copy_(torch.linspace(-1, 1, 5, dtype=torch.float64))
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = f(x.numpy() @ layer.weight.detach().numpy() + layer.bias.detach().numpy())
    np.testing.assert_allclose(layer(x, TorchRate(), RunSettings()).detach().numpy(), expected,
                               rtol=1e-12, atol=1e-12)


def test_weight_max_is_a_per_layer_constraint():
    raw = sine_config()
    raw["network_layout"]["layers"][0]["weight_max"] = 0.05
    trainer = Trainer(resolve_config(raw), "cpu")
    trainer.train_epoch()
    first, second = (layer.weight for layer in trainer.network.layers)
    assert first.abs().max() <= 0.05 and second.abs().max() > 0.05


# -- the loop --------------------------------------------------------------------------------

def test_caller_config_is_not_modified():
    config = resolve_config(sine_config())
    before = copy.deepcopy(config)
    Trainer(config, "cpu").train_epoch()
    assert config == before


def test_caller_config_is_not_modified_by_bss2():
    config = load_config(REPO / "experiment_configs" / "yin_yang_bss2.yaml")
    before = copy.deepcopy(config)
    trainer = Trainer(config, "bss2", config_dir=REPO / "experiment_configs")
    assert config == before
    assert trainer.config["training_params"]["clip_weights_max"] is not None


def test_weight_decay_is_inside_the_update():
    """SGD with weight decay: p <- p - lr (g + wd p); with a zero gradient p shrinks by
    (1 - lr wd) per step."""
    trainer = Trainer(resolve_config(sine_config(weight_decay=0.5, learning_rate=0.1)), "cpu")
    parameter = trainer.network.layers[0].weight
    before = parameter.detach().clone()
    trainer.optimizer.zero_grad()
    parameter.grad = torch.zeros_like(parameter)
    trainer.optimizer.step()
    torch.testing.assert_close(parameter.detach(), before * (1 - 0.1 * 0.5), rtol=1e-15,
                               atol=0)


def test_optimizer_none_needs_no_parameters_and_changes_nothing():
    trainer = Trainer(resolve_config(sine_config(optimizer="none")), "cpu")
    before = copy.deepcopy(trainer.network.state_dict())
    metrics = trainer.train_epoch()
    assert trainer.optimizer is None and "learning_rate" not in metrics
    for key, value in trainer.network.state_dict().items():
        assert torch.equal(value, before[key])


class HookedLayer(LinearLayer):
    """A linear layer that records the hook calls the loop makes."""

    type_name = "test_hooked_linear"
    example_entry: ClassVar[dict] = {"type": "test_hooked_linear", "size": 4}
    calls: ClassVar[list] = []

    def __init__(self, n_inputs, entry, context):
        super().__init__(n_inputs, entry, context)
        self.position = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def extra_loss(self):
        return 1e-3 * self.position.pow(2).sum() + 0.0 * self.weight.sum()

    def local_update(self, layer_input, layer_output):
        assert not torch.is_grad_enabled()
        self.calls.append(("local_update", layer_input.shape, layer_output.shape))

    def constrain_(self, settings):
        self.calls.append(("constrain_",))

    def epoch_end(self, epoch):
        self.calls.append(("epoch_end", epoch))
        return {"hooked_epoch": float(epoch)}

    def parameter_groups(self):
        return [{"params": [self.weight] + ([self.bias] if self.bias is not None else [])},
                {"params": [self.position], "lr": 0.5}]


@pytest.fixture
def hooked_layer_type():
    LAYERS.register(HookedLayer)
    HookedLayer.calls = []
    yield HookedLayer
    LAYERS._entries.pop(HookedLayer.type_name)


def test_layer_hooks_and_parameter_groups(hooked_layer_type):
    raw = sine_config()
    raw["network_layout"]["layers"][0] = {"type": hooked_layer_type.type_name, "size": 4}
    trainer = Trainer(resolve_config(raw), "cpu")
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [0.1, 0.1, 0.5]
    metrics = trainer.train_epoch()
    updates = [c for c in hooked_layer_type.calls if c[0] == "local_update"]
    assert len(updates) == 4  # 64 samples in batches of 16
    assert updates[0][1:] == ((16, 1), (16, 4))  # the layer's own input and output
    assert hooked_layer_type.calls.count(("constrain_",)) == 4
    assert ("epoch_end", 1) in hooked_layer_type.calls
    assert metrics["hooked_epoch"] == 1.0 and trainer.history["hooked_epoch"] == [1.0]


def test_metric_callbacks_join_the_history():
    callback = MetricCallback("test_weight_norm", lambda trainer: True, lambda trainer: {
        "weight_norm": float(trainer.network.layers[0].weight.detach().norm())})
    METRICS.register(callback)
    try:
        trainer = Trainer(resolve_config(sine_config()), "cpu")
        trainer.train_epoch()
        trainer.train_epoch()
        assert len(trainer.history["weight_norm"]) == 2
        assert trainer.history["weight_norm"][-1] == pytest.approx(
            float(trainer.network.layers[0].weight.detach().norm()))
    finally:
        METRICS._entries.pop("test_weight_norm")


def test_rate_run_has_no_bumps_and_a_loss_metric():
    trainer = Trainer(resolve_config(sine_config()), "cpu")
    trainer.train_epoch()
    assert list(trainer.history) == ["train_loss", "val_loss", "learning_rate", "epoch_seconds"]
    assert trainer.task.primary_metric == "loss"


def test_denoising_target_is_the_clean_input():
    raw = sine_config()
    raw["task"] = {"type": "denoising", "noise_std": 0.5}
    raw["network_layout"]["layers"][-1]["size"] = 1
    trainer = Trainer(resolve_config(raw), "cpu")
    x = torch.ones(1000, 1, dtype=torch.float64)
    noisy, target = trainer.task.batch(x, None, torch.Generator().manual_seed(0), training=True)
    assert torch.equal(target, x)
    assert float((noisy - x).std()) == pytest.approx(0.5, rel=0.1)
    # evaluation draws the same noise every time: reproducible scores
    evaluation = trainer.evaluate("val")
    assert evaluation.metrics == trainer.evaluate("val").metrics
    np.testing.assert_array_equal(evaluation.targets, trainer.dataset("val").inputs)


def test_multi_head_network_shares_its_trunk():
    raw = sine_config()
    raw["network_layout"]["heads"] = {"a": [{"type": "linear", "size": 2}],
                                      "b": [{"type": "linear", "size": 3}]}
    config = resolve_config(raw)
    trainer = Trainer(config, "cpu")
    output, records = trainer.forward(torch.zeros(5, 1, dtype=torch.float64))
    assert set(output) == {"a", "b"} and output["a"].shape == (5, 2)
    assert output["b"].shape == (5, 3)
    assert [r.path for r in records] == ["layers.0", "layers.1", "heads.a.0", "heads.b.0"]
    assert records[2].input is records[1].output


def test_network_refuses_a_wrong_number_of_backends():
    trainer = Trainer(resolve_config(sine_config()), "cpu")
    with pytest.raises(ValueError, match="2 layers but 1 backends"):
        trainer.network(torch.zeros(3, 1, dtype=torch.float64), trainer.backends[:1],
                        trainer.settings)


def test_evaluate_keeps_hidden_outputs_only_when_asked():
    trainer = Trainer(resolve_config(sine_config()), "cpu")
    assert trainer.evaluate("val").hidden == []
    hidden = trainer.evaluate("val", keep_hidden=True).hidden
    assert len(hidden) == 1 and hidden[0].shape == (32, 16)


def test_rate_run_continues_identically(tmp_path: Path):
    """A rate-layer run saved at epoch 1 and continued to 3 equals an uninterrupted run."""
    raw = sine_config(epoch_number=3, epoch_snapshots=[1])
    whole, _ = runs.train(raw, output=tmp_path / "whole", progress=False)
    part, _ = runs.train(raw, output=tmp_path / "part", progress=False, epochs=1)
    continued, _ = runs.continue_training(part, 1, [3], progress=False)
    a = (whole / "metrics.csv").read_text().splitlines()
    b = (continued / "metrics.csv").read_text().splitlines()
    strip = [lambda line: line.rsplit(",", 1)[0]][0]  # drop epoch_seconds
    assert [strip(x) for x in a] == [strip(x) for x in b]


# -- data -------------------------------------------------------------------------------------

def test_generated_sets_are_split_independent_and_seeded():
    train = load_dataset("sine", "train", options={"seed": 3})
    assert np.allclose(train.targets, np.sin(train.inputs))
    assert np.all(np.abs(train.inputs) <= np.pi)
    assert not np.array_equal(train.inputs[:320], load_dataset("sine", "test",
                                                               options={"seed": 3}).inputs)
    assert not np.array_equal(train.inputs, load_dataset("sine", "train",
                                                         options={"seed": 4}).inputs)
    teacher = load_dataset("teacher_student", "train", options={"n_inputs": 3, "n_outputs": 2})
    assert teacher.inputs.shape == (1600, 3) and teacher.targets.shape == (1600, 2)
    # the teacher is one fixed network: its test split comes from the same function
    assert np.isfinite(teacher.targets).all() and teacher.targets.std() > 0


def test_mnist_values_normalisation(shared_data: Path):
    unit = load_dataset("mnist_values", "val", data_dir=shared_data,
                        options={"normalise": "unit"})
    standard = load_dataset("mnist_values", "val", data_dir=shared_data)
    assert unit.inputs.shape == (2000, 784) and 0 <= unit.inputs.min() <= unit.inputs.max() <= 1
    np.testing.assert_allclose(standard.inputs, (unit.inputs - 0.1307) / 0.3081)


def test_scoring_the_test_split_reads_no_training_files(tmp_path: Path, shared_data: Path):
    """16x16 MNIST with only the t10k files: the test split loads, the network scores."""
    (tmp_path / "mnist").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mnist" / name).write_bytes((shared_data / "mnist" / name).read_bytes())
    raw = load_config(REPO / "experiment_configs" / "16x16_mnist.yaml")
    raw["data"]["data_dir"] = str(tmp_path)
    trainer = Trainer(resolve_config(raw), "cpu")
    assert len(trainer.evaluate("test").outputs) == 10000
    with pytest.raises(FileNotFoundError, match="train-images"):
        trainer.dataset("train")


# -- config rough edges ----------------------------------------------------------------------

@pytest.mark.parametrize("key", ["max_dw_norm", "clip_weights_max", "rounding_precision"])
def test_true_is_not_a_number(key):
    raw = load_config(REPO / "experiment_configs" / "yin_yang_small.yaml")
    raw["training_params"][key] = True
    with pytest.raises(ConfigError, match=rf"training_params.{key} = True: expected a number"):
        resolve_config(raw, "my.yaml")


def test_explicit_layers_with_shorthand_keys_are_refused():
    raw = copy.deepcopy(sine_config())
    raw["training_params"]["max_num_missing_spikes"] = [0.1, 0.1]
    with pytest.raises(ConfigError, match="max_num_missing_spikes"):
        resolve_config(raw)
    raw = copy.deepcopy(sine_config())
    raw["network_layout"]["layer_sizes"] = [16, 1]
    with pytest.raises(ConfigError, match="shorthand key.*layer_sizes"):
        resolve_config(raw)


def test_fewer_bias_times_than_biases_are_refused():
    raw = yaml_raw("yin_yang_small.yaml")
    raw["network_layout"]["n_biases"] = [2, 1]
    with pytest.raises(ConfigError, match="n_biases = 2 but only 1 bias_times"):
        resolve_config(raw)


def yaml_raw(name: str) -> dict:
    import yaml

    return yaml.safe_load((REPO / "experiment_configs" / name).read_text())


def test_encoding_only_for_spiking_inputs():
    raw = sine_config()
    raw["encoding"] = {"early": 0.1}
    with pytest.raises(ConfigError, match="takes real values, not spike times"):
        resolve_config(raw)
    raw = yaml_raw("yin_yang_small.yaml")
    raw["encoding"] = {"late": 3.0}
    config = resolve_config(raw)
    trainer = Trainer(config, "cpu")
    times = trainer.network_inputs("val").numpy()
    values = trainer.dataset("val").inputs
    np.testing.assert_allclose(times, 0.15 + values * (3.0 - 0.15))


def test_a_resolved_rate_config_is_a_fixed_point():
    config = resolve_config(sine_config())
    assert resolve_config(copy.deepcopy(config)) == config


class TwoHeadClassification(Classification):
    """Both heads classify the same labels; loss the sum, accuracy of head "a"."""

    type_name = "test_two_heads"

    def per_sample_loss(self, output, labels):
        return sum(super(TwoHeadClassification, self).per_sample_loss(out, labels)
                   for out in output.values())

    def predict(self, output):
        return output["a"].argmax(1)


def test_multi_head_run_trains_and_evaluates():
    TASKS.register(TwoHeadClassification)
    try:
        raw = {"dataset": "yin_yang", "task": {"type": "test_two_heads"},
               "network_layout": {"n_inputs": 4, "layers": [{"type": "linear", "size": 8}],
                                  "heads": {"a": [{"type": "linear", "size": 3,
                                                   "activation": "identity"}],
                                            "b": [{"type": "linear", "size": 3,
                                                   "activation": "identity"}]}},
               "training_params": {"epoch_number": 1, "batch_size": 100}}
        trainer = Trainer(resolve_config(raw), "cpu")
        metrics = trainer.train_epoch()
        assert 0 <= metrics["val_accuracy"] <= 1 and np.isfinite(metrics["train_loss"])
        evaluation = trainer.evaluate("test")
        assert set(evaluation.outputs) == {"a", "b"}
        assert evaluation.outputs["b"].shape == (1000, 3)
        assert evaluation.predictions.shape == (1000,)
    finally:
        TASKS._entries.pop("test_two_heads")


@pytest.mark.parametrize("config", [sine_config(dtype="float32"),
                                    {**yaml_raw("yin_yang_small.yaml")}])
def test_float32_runs(config):
    config = copy.deepcopy(config)
    config["training_params"].update(dtype="float32", epoch_number=1, epoch_snapshots=[])
    trainer = Trainer(resolve_config(config), "cpu")
    assert all(p.dtype == torch.float32 for p in trainer.network.parameters())
    metrics = trainer.train_epoch()
    assert np.isfinite(metrics["train_loss"]) and np.isfinite(metrics["val_loss"])
    assert trainer.evaluate("val").outputs.dtype == np.float32
