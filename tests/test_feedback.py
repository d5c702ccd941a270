"""The feedback family: FA, KP and DFA backward passes against hand-computed matrices,
Kolen-Pollack's shrink factor, the alignment metrics, checkpoints, the chip backend and
config errors (snnsim/families/feedback)."""
from __future__ import annotations

import copy
import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snnsim import runs
from snnsim.config import ConfigError, load_config, resolve_config
from snnsim.families.feedback.functions import (
    activation_derivative,
    reference_dfa_gradients,
    reference_feedback_gradients,
)
from snnsim.families.feedback.layers import (
    FALinear,
    KPLinear,
    true_gradients,
)
from snnsim.families.feedback.metrics import alignment, angle_deg, cosine
from snnsim.families.feedback.plots import plot_alignment
from snnsim.layers import LayerContext, LinearLayer, RunSettings, TorchRate
from snnsim.network import Network
from snnsim.params import NeuronParams
from snnsim.training import Trainer

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiment_configs"
SETTINGS = RunSettings()
BATCHES = (1, 5)
RULES = ("bp", "fa", "kp", "dfa")


def _context(seed: int = 0) -> LayerContext:
    return LayerContext(NeuronParams(), torch.Generator().manual_seed(seed))


def _build(cls, n_inputs: int, **entry):
    entry = resolve_config({"dataset": "sine", "network_layout": {
        "n_inputs": n_inputs, "layers": [{"type": cls.type_name, **entry}]},
        "training_params": {"epoch_number": 1}})["network_layout"]["layers"][0]
    return cls(n_inputs, entry, _context())


def _set(parameter: torch.Tensor, values) -> None:
    with torch.no_grad():
        parameter.copy_(torch.as_tensor(values, dtype=torch.float64))


def layer_entries(rule: str, sizes=(8, 3), activation: str = "tanh", **extra) -> list[dict]:
    """Dense layers of one rule, the last with the identity (a DFA net ends in dfa_output)."""
    types = {"bp": "linear", "fa": "fa_linear", "kp": "kp_linear", "dfa": "dfa_linear"}
    entries = []
    for i, size in enumerate(sizes):
        last = i == len(sizes) - 1
        entry = {"type": "dfa_output" if rule == "dfa" and last else types[rule], "size": size,
                 "activation": "identity" if last else activation}
        if entry["type"] == "dfa_linear":
            entry["error_size"] = sizes[-1]
        if entry["type"] != "linear":
            entry.update(extra)
        entries.append(entry)
    return entries


def teacher_config(rule: str, **training) -> dict:
    return {"dataset": "teacher_student",
            "data": {"n_inputs": 3, "n_outputs": 2, "n_train": 64, "n_val": 32, "n_test": 32},
            "network_layout": {"n_inputs": 3, "layers": layer_entries(rule, (16, 8, 2))},
            "training_params": {"epoch_number": 2, "batch_size": 16, "optimizer": "sgd",
                                "learning_rate": 0.1, "torch_seed": 3, **training}}


# -- the backward passes against hand-computed matrices ---------------------------------------

X = [[1.0, -2.0, 0.5]]
W = [[0.2, -0.1], [0.4, 0.3], [-0.5, 0.6]]
B = [[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0]]
G = [[2.0, -1.0]]  # dL/dy


def test_fa_backward_by_hand():
    """y = x W + b (identity); dL/dy = g: dW = x^T g, db = g, dx = g B^T (not g W^T)."""
    layer = _build(FALinear, 3, size=2, activation="identity")
    _set(layer.weight, W)
    _set(layer.feedback, B)
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = layer(x, TorchRate(), SETTINGS)
    y.backward(torch.tensor(G, dtype=torch.float64))
    expected_dw = [[2.0, -1.0], [-4.0, 2.0], [1.0, -0.5]]
    expected_dx = [[2 * 1 - 1 * 2, 2 * -1 - 1 * 0.5, 2 * 0 - 1 * -3]]  # g B^T = [0, -2.5, 3]
    torch.testing.assert_close(layer.weight.grad, torch.tensor(expected_dw, dtype=torch.float64))
    torch.testing.assert_close(layer.bias.grad, torch.tensor(G[0], dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor(expected_dx, dtype=torch.float64))
    assert layer.feedback.grad is None and not layer.feedback.requires_grad


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
def test_fa_and_kp_backward_match_the_reference(batch: int, activation: str):
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 4, dtype=torch.float64, generator=g, requires_grad=True)
    grad_y = torch.randn(batch, 3, dtype=torch.float64, generator=g)
    for cls in (FALinear, KPLinear):
        layer = _build(cls, 4, size=3, activation=activation)
        x.grad = None
        y = layer(x, TorchRate(), SETTINGS)
        y.backward(grad_y)
        a = (x @ layer.weight + layer.bias).detach()
        expected = reference_feedback_gradients(x.detach(), layer.weight.detach(),
                                                activation_derivative(activation, a) * grad_y,
                                                layer.feedback.detach())
        torch.testing.assert_close(layer.weight.grad, expected["weight"])
        torch.testing.assert_close(layer.bias.grad, expected["bias"])
        torch.testing.assert_close(x.grad, expected["x"])
        if cls is KPLinear:
            assert torch.equal(layer.feedback.grad, layer.weight.grad)
            assert layer.feedback.grad.data_ptr() != layer.weight.grad.data_ptr()


@pytest.mark.parametrize("batch", BATCHES)
def test_linear_layer_matches_torch_nn_linear(batch: int):
    """The BP control: the rate core's `linear` layer has nn.Linear's gradients."""
    layer = _build(LinearLayer, 4, size=3, activation="tanh")
    reference = nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(layer.weight.T)
        reference.bias.copy_(torch.linspace(-0.2, 0.3, 3, dtype=torch.float64))
        layer.bias.copy_(reference.bias)
    x = torch.randn(batch, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (layer(x1, TorchRate(), SETTINGS) ** 2).sum().backward()
    (torch.tanh(reference(x2)) ** 2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad.T)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_fa_with_b_equal_to_w_is_backprop():
    network = Network(resolve_config(teacher_config("fa")), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for layer in network.layers:
            layer.feedback.copy_(layer.weight)
    backends = [TorchRate()] * 3
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def grads():
        network.zero_grad()
        network(x, backends, SETTINGS)[0].pow(2).sum().backward()
        return [p.grad.clone() for p in network.parameters()]

    rule = grads()
    with true_gradients(network):
        backprop = grads()
    for a, b in zip(rule, backprop):
        torch.testing.assert_close(a, b)


# -- Kolen-Pollack -----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["training_params", "layer"])
def test_kp_difference_shrinks_by_one_minus_lr_lambda_per_step(where: str):
    lr, decay = 0.1, 0.3
    raw = teacher_config("kp", learning_rate=lr)
    if where == "layer":  # the layers' own lambda; the run's stays 0
        for entry in raw["network_layout"]["layers"]:
            entry["weight_decay"] = decay
    else:
        raw["training_params"]["weight_decay"] = decay
    trainer = Trainer(resolve_config(raw), "cpu")
    layers = trainer.network.layers
    before = [(layer.weight - layer.feedback).detach().clone() for layer in layers]
    assert all(d.abs().max() > 0.1 for d in before)  # W and B start as independent draws
    trainer.train_epoch()  # 64 samples in batches of 16: 4 steps
    for layer, d in zip(layers, before):
        torch.testing.assert_close((layer.weight - layer.feedback).detach(),
                                   d * (1 - lr * decay) ** 4, rtol=1e-12, atol=1e-14)


def test_kp_without_decay_keeps_its_difference():
    trainer = Trainer(resolve_config(teacher_config("kp")), "cpu")
    layer = trainer.network.layers[1]
    before = (layer.weight - layer.feedback).detach().clone()
    trainer.train_epoch()
    assert not torch.equal(layer.weight.detach(), before)
    torch.testing.assert_close((layer.weight - layer.feedback).detach(), before)


# -- DFA ---------------------------------------------------------------------------------------

def _dfa_network(sizes, activation="relu", n_inputs=4, output_activation="identity"):
    raw = {"dataset": "sine", "network_layout": {
        "n_inputs": n_inputs, "layers": layer_entries("dfa", sizes, activation)},
        "training_params": {"epoch_number": 1}}
    raw["network_layout"]["layers"][-1]["activation"] = output_activation
    return Network(resolve_config(raw), torch.Generator().manual_seed(0))


def test_dfa_one_hidden_layer_by_hand():
    """x [1, 2] -> h = relu(x W1 + b1) [1, 2] -> y = h W2 + b2 [1, 2], L = y . g.

    e = dL/dy = g; delta_1 = relu'(a1) * (e B1^T); dW1 = x^T delta_1, dW2 = h^T e."""
    network = _dfa_network((2, 2), n_inputs=2)
    hidden, output = network.layers
    _set(hidden.weight, [[1.0, -1.0], [0.5, 2.0]])
    _set(hidden.bias, [0.0, -0.5])
    _set(hidden.feedback, [[3.0, 1.0], [-2.0, 4.0]])  # B1 [hidden 2, outputs 2]
    _set(output.weight, [[0.7, -0.2], [0.1, 0.9]])
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    g = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    y, _ = network(x, [TorchRate()] * 2, SETTINGS)
    (y * g).sum().backward()
    # a1 = [2 + 0.5, -2 + 2 - 0.5] = [2.5, -0.5] -> h = [2.5, 0], relu' = [1, 0]
    # e B1^T = [1*3 - 2*1, 1*-2 - 2*4] = [1, -10] -> delta_1 = [1, 0]
    torch.testing.assert_close(hidden.weight.grad,
                               torch.tensor([[2.0, 0.0], [1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(hidden.bias.grad, torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(output.weight.grad,
                               torch.tensor([[2.5, -5.0], [0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(output.bias.grad, g[0])
    assert hidden.feedback.grad is None


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("sizes,activation", [((6, 3), "relu"), ((7, 5, 3), "tanh"),
                                              ((6, 5, 4, 3), "sigmoid")])
def test_dfa_any_depth_matches_the_reference(batch, sizes, activation):
    network = _dfa_network(sizes, activation)
    x = torch.randn(batch, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    target = torch.randn(batch, sizes[-1], dtype=torch.float64)
    y, records = network(x, [TorchRate()] * len(sizes), SETTINGS)
    y_leaf = y.detach().requires_grad_(True)
    loss = lambda out: ((out - target) ** 2).mean()
    loss(y).backward()
    loss(y_leaf).backward()
    error = y_leaf.grad  # e = dL/dy_out
    layers = list(network.layers)
    xs = [r.input.detach() for r in records]
    pre = [xs[i] @ layer.weight.detach() + layer.bias.detach() for i, layer in enumerate(layers)]
    names = [layer.activation_name for layer in layers]
    expected = reference_dfa_gradients(xs, names, pre,
                                       [getattr(layer, "feedback", None) for layer in layers],
                                       error)
    for layer, grads in zip(layers, expected):
        torch.testing.assert_close(layer.weight.grad, grads["weight"])
        torch.testing.assert_close(layer.bias.grad, grads["bias"])


def test_dfa_layers_below_get_the_true_error_of_the_first_dfa_layer():
    """A non-DFA layer under a DFA chain gets delta_1 W1^T (backprop from the DFA layer)."""
    raw = {"dataset": "sine", "network_layout": {"n_inputs": 3, "layers": [
        {"type": "linear", "size": 5, "activation": "tanh"},
        {"type": "dfa_linear", "size": 4, "error_size": 2},
        {"type": "dfa_output", "size": 2}]}, "training_params": {"epoch_number": 1}}
    network = Network(resolve_config(raw), torch.Generator().manual_seed(0))
    x = torch.randn(3, 3, dtype=torch.float64)
    y, records = network(x, [TorchRate()] * 3, SETTINGS)
    h0 = records[0].output
    h0.retain_grad()
    y.sum().backward()
    first = network.layers[1]
    a1 = (h0 @ first.weight + first.bias).detach()
    delta1 = activation_derivative("relu", a1) * (torch.ones(3, 2, dtype=torch.float64)
                                                  @ first.feedback.T)
    torch.testing.assert_close(h0.grad, delta1 @ first.weight.detach().T)
    assert network.layers[0].weight.grad.abs().sum() > 0


def test_dfa_and_fa_leave_b_untouched():
    for rule in ("fa", "dfa"):
        trainer = Trainer(resolve_config(teacher_config(rule)), "cpu")
        before = {name: b.clone() for name, b in trainer.network.named_buffers()
                  if name.endswith("feedback")}
        weights = trainer.network.layers[0].weight.detach().clone()
        assert len(before) == (3 if rule == "fa" else 2)
        trainer.train_epoch()
        assert not torch.equal(weights, trainer.network.layers[0].weight.detach())
        after = dict(trainer.network.named_buffers())
        for name, value in before.items():
            assert torch.equal(after[name], value)
        assert all("feedback" not in name for name, _ in trainer.network.named_parameters())


def test_two_forward_passes_do_not_share_an_error():
    """Each forward pass has its own chain: a pending forward pass changes nothing."""
    network = _dfa_network((5, 2))
    backends = [TorchRate()] * 2
    x = torch.randn(4, 4, dtype=torch.float64)
    network(2 * x, backends, SETTINGS)[0].sum().backward()
    alone = [p.grad.clone() for p in network.parameters()]
    network.zero_grad()
    first, _ = network(x, backends, SETTINGS)
    second, _ = network(2 * x, backends, SETTINGS)
    second.sum().backward()
    for a, p in zip(alone, network.parameters()):
        torch.testing.assert_close(p.grad, a)
    network.zero_grad()
    first.sum().backward()  # the first pass still has its own error
    assert all(p.grad.abs().sum() > 0 for p in network.parameters())


def test_dfa_chain_errors_are_clear():
    with pytest.raises(ValueError, match="error_size 4.*has 3 outputs"):
        network = _dfa_network((5, 3))
        network.layers[0].error_size = 4
        network(torch.randn(2, 4, dtype=torch.float64), [TorchRate()] * 2, SETTINGS)
    raw = {"dataset": "sine", "network_layout": {"n_inputs": 2, "layers": [
        {"type": "dfa_output", "size": 3}, {"type": "dfa_linear", "size": 3, "error_size": 3}]},
        "training_params": {"epoch_number": 1}}
    network = Network(resolve_config(raw), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="must be the last DFA layer"):
        network(torch.randn(2, 2, dtype=torch.float64), [TorchRate()] * 2, SETTINGS)
    # a loss on a hidden DFA layer's output: the chain's output never saw an error
    network = _dfa_network((5, 3))
    _, records = network(torch.randn(2, 4, dtype=torch.float64), [TorchRate()] * 2, SETTINGS)
    with pytest.raises(RuntimeError, match="got no output error"):
        records[0].output.sum().backward()
    # two DFA layers on the same DFA output (heads)
    raw = {"dataset": "sine", "network_layout": {
        "n_inputs": 2, "layers": [{"type": "dfa_linear", "size": 4, "error_size": 1}],
        "heads": {"a": [{"type": "dfa_output", "size": 1}],
                  "b": [{"type": "dfa_output", "size": 1}]}},
        "training_params": {"epoch_number": 1}}
    network = Network(resolve_config(raw), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="already feeds another DFA layer"):
        network(torch.randn(2, 2, dtype=torch.float64), [TorchRate()] * 3, SETTINGS)


def test_outside_training_the_layers_are_plain_dense_layers():
    for rule in ("fa", "kp", "dfa"):
        network = Network(resolve_config(teacher_config(rule)), torch.Generator().manual_seed(0))
        x = torch.randn(6, 3, dtype=torch.float64)
        with torch.no_grad():
            y, _ = network(x, [TorchRate()] * 3, SETTINGS)
            h = x
            for layer in network.layers:
                a = h @ layer.weight + layer.bias
                h = torch.relu(a) if layer.activation_name == "relu" else (
                    torch.tanh(a) if layer.activation_name == "tanh" else a)
        torch.testing.assert_close(y, h)


# -- metrics -----------------------------------------------------------------------------------

def test_cosine_and_angle_on_known_matrices():
    w = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    assert cosine(w, w) == pytest.approx(1.0)
    assert angle_deg(cosine(w, w)) == pytest.approx(0.0, abs=1e-5)  # acos is steep at 1
    assert cosine(w, 3 * w) == pytest.approx(1.0)
    assert angle_deg(cosine(w, -w)) == pytest.approx(180.0)
    orthogonal = torch.tensor([[2.0, -1.0], [1.0, 3.0]], dtype=torch.float64)  # <w, o> = 0
    assert cosine(w, orthogonal) == pytest.approx(0.0, abs=1e-15)
    assert angle_deg(cosine(w, orthogonal)) == pytest.approx(90.0)
    assert math.isnan(cosine(w, torch.zeros_like(w)))
    assert angle_deg(1.0 + 1e-15) == 0.0  # rounding beyond 1 is clipped


def test_metrics_of_fa_with_b_equal_to_w_are_those_of_backprop():
    trainer = Trainer(resolve_config(teacher_config("fa")), "cpu")
    with torch.no_grad():
        for layer in trainer.network.layers:
            layer.feedback.copy_(layer.weight)
    metrics = alignment(trainer)
    for i in range(3):
        assert metrics[f"layers.{i}.cos_wb"] == pytest.approx(1.0)
        assert metrics[f"layers.{i}.update_angle_deg"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["update_angle_deg"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["grad_norm_ratio"] == pytest.approx(1.0)


def test_metrics_with_b_equal_to_minus_w():
    """B = -W: the last hidden layer's update is backprop's negated (180 degrees), the one
    below it gets the sign back (0 degrees); cos(W, B) = -1."""
    trainer = Trainer(resolve_config(teacher_config("fa")), "cpu")
    with torch.no_grad():
        for layer in trainer.network.layers:
            layer.feedback.copy_(-layer.weight)
    metrics = alignment(trainer)
    assert metrics["layers.2.update_angle_deg"] == pytest.approx(0.0, abs=1e-5)
    # layer 1 gets -delta W^T: its update is backprop's negated
    assert metrics["layers.1.update_angle_deg"] == pytest.approx(180.0, abs=1e-5)
    assert metrics["layers.0.update_angle_deg"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["layers.0.cos_wb"] == pytest.approx(-1.0)


def test_metric_series_names_and_switch():
    trainer = Trainer(resolve_config(teacher_config("kp", weight_decay=0.1)), "cpu")
    metrics = trainer.train_epoch()
    for i in range(3):
        assert 0 <= metrics[f"layers.{i}.update_angle_deg"] <= 180
        assert -1 <= metrics[f"layers.{i}.cos_wb"] <= 1
    assert metrics["grad_norm_ratio"] > 0 and 0 <= metrics["update_angle_deg"] <= 180
    raw = teacher_config("kp")
    for entry in raw["network_layout"]["layers"]:
        entry["alignment_metrics"] = False
    assert "update_angle_deg" not in Trainer(resolve_config(raw), "cpu").train_epoch()
    raw["network_layout"]["layers"][1]["alignment_metrics"] = True
    metrics = Trainer(resolve_config(raw), "cpu").train_epoch()
    assert "layers.1.update_angle_deg" in metrics and "layers.0.update_angle_deg" not in metrics
    bp = Trainer(resolve_config(teacher_config("bp")), "cpu").train_epoch()
    assert "update_angle_deg" not in bp


@pytest.mark.parametrize("rule", ["fa", "kp", "dfa"])
def test_metrics_do_not_change_training(rule: str):
    def train(metrics_on: bool) -> Trainer:
        raw = teacher_config(rule, weight_decay=0.01, momentum=0.5)
        raw["task"] = {"type": "denoising", "noise_std": 0.1}  # the batches draw noise
        raw["data"]["n_outputs"] = 3
        raw["network_layout"]["layers"][-1]["size"] = 3
        for entry in raw["network_layout"]["layers"]:
            entry["alignment_metrics"] = metrics_on
            if "error_size" in entry:
                entry["error_size"] = 3
        trainer = Trainer(resolve_config(raw), "cpu")
        for _ in range(2):
            trainer.train_epoch()
        return trainer

    on, off = train(True), train(False)
    assert "update_angle_deg" in on.history and "update_angle_deg" not in off.history
    for key, value in off.network.state_dict().items():
        assert torch.equal(value, on.network.state_dict()[key]), key
    assert torch.equal(on.generator.get_state(), off.generator.get_state())
    assert on.history["train_loss"] == off.history["train_loss"]
    for p_on, p_off in zip(on.network.parameters(), off.network.parameters()):
        assert (p_on.grad is None) == (p_off.grad is None)
        if p_on.grad is not None:
            assert torch.equal(p_on.grad, p_off.grad)


def test_alignment_plot_draws_the_series():
    history = {"train_loss": [1.0, 0.5], "layers.0.cos_wb": [0.1, 0.9],
               "layers.0.update_angle_deg": [80.0, 30.0], "update_angle_deg": [70.0, 20.0],
               "grad_norm_ratio": [1.2, 1.0]}
    figure = plot_alignment(history)
    assert len(figure.axes) == 3
    del history["layers.0.cos_wb"]
    assert len(plot_alignment(history).axes) == 2


# -- runs, checkpoints, the chip, configs ------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_short_mnist_run_beats_chance_clearly(rule: str, shared_data: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    raw = load_config(CONFIGS / f"{rule}_mnist.yaml")
    raw["network_layout"]["layers"] = layer_entries(rule, (64, 10), "relu")
    raw["training_params"].update(epoch_number=1, epoch_snapshots=[], lr_scheduler={"type": None},
                                  dtype="float32")
    trainer = Trainer(resolve_config(raw), "cpu")
    metrics = trainer.train_epoch()
    assert metrics["val_accuracy"] > 0.75, metrics


def test_rules_share_the_optimiser_within_a_task():
    for task in ("mnist", "teacher", "sine"):
        configs = [load_config(CONFIGS / f"{rule}_{task}.yaml") for rule in RULES]
        assert all(c["training_params"] == configs[0]["training_params"] for c in configs)
        assert all(c["data"] == configs[0]["data"] for c in configs)


@pytest.mark.parametrize("rule", RULES)
def test_configs_resolve(rule: str):
    for task in ("mnist", "teacher", "sine"):
        config = load_config(CONFIGS / f"{rule}_{task}.yaml")
        types = {entry["type"] for entry in config["network_layout"]["layers"]}
        expected = {"bp": {"linear"}, "fa": {"fa_linear"}, "kp": {"kp_linear"},
                    "dfa": {"dfa_linear", "dfa_output"}}[rule]
        assert types == expected
    mnist = load_config(CONFIGS / f"{rule}_mnist.yaml")
    assert [e["size"] for e in mnist["network_layout"]["layers"]] == [500, 500, 10]
    assert mnist["training_params"]["epoch_number"] <= 30


@pytest.mark.parametrize("name,seeds", [("rules_sweep", 3), ("rules_chip_sweep", 1)])
def test_rules_sweeps_cover_every_rule(name: str, seeds: int):
    from snnsim.sweep import expand_grid, load_sweep, set_dotted

    sweep = load_sweep(CONFIGS / f"{name}.yaml")
    points = expand_grid(sweep.grid)
    rules = {tuple(e["type"] for e in p["network_layout.layers"]) for p in points}
    assert len(rules) == 4 and len(points) == 4 * seeds
    mnist = {rule: load_config(CONFIGS / f"{rule}_mnist.yaml") for rule in RULES}
    for point in points:
        raw = copy.deepcopy(sweep.base)
        for key, value in {**point, **sweep.overrides}.items():
            set_dotted(raw, key, value, name)
        config = resolve_config(raw)
        # the sweep's layers are those of the rule's own config
        rule = {"linear": "bp", "fa_linear": "fa", "kp_linear": "kp",
                "dfa_linear": "dfa"}[config["network_layout"]["layers"][0]["type"]]
        assert config["network_layout"] == mnist[rule]["network_layout"]
        assert config["training_params"]["learning_rate"] == \
            mnist[rule]["training_params"]["learning_rate"]


def _metrics_without_time(folder: Path) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO((folder / "metrics.csv").read_text())))
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


@pytest.mark.parametrize("rule", ["fa", "kp", "dfa"])
def test_checkpoint_round_trip_continues_identically(rule: str, tmp_path: Path):
    raw = teacher_config(rule, epoch_number=3, epoch_snapshots=[1], weight_decay=0.01,
                         momentum=0.9)
    whole, _ = runs.train(raw, output=tmp_path / "whole", progress=False)
    part, _ = runs.train(raw, output=tmp_path / "part", progress=False, epochs=1)
    continued, _ = runs.continue_training(part, 1, [3], progress=False)
    a, b = (_metrics_without_time(folder) for folder in (whole, continued))
    assert a == b and "update_angle_deg" in a[0]
    first, second = runs.load_trainer(whole), runs.load_trainer(continued)
    for key, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key]), key
    assert any(key.endswith("feedback") for key in first.network.state_dict())


def test_bad_configs_get_clear_errors(tmp_path: Path):
    raw = teacher_config("fa")
    raw["network_layout"]["layers"][0]["type"] = "fa_lineer"
    with pytest.raises(ConfigError, match="did you mean 'fa_linear'"):
        resolve_config(raw)
    raw = teacher_config("kp")
    raw["network_layout"]["layers"][0]["weight_decay"] = -0.1
    with pytest.raises(ConfigError, match=r"layers\[0\].weight_decay = -0.1: expected a number "
                                          r">= 0"):
        resolve_config(raw)
    with pytest.raises(ConfigError, match="weight_decay = -0.1"):
        resolve_config(teacher_config("kp", weight_decay=-0.1))
    raw = teacher_config("dfa")
    del raw["network_layout"]["layers"][0]["error_size"]
    with pytest.raises(ConfigError, match="missing required key 'error_size'"):
        resolve_config(raw)
    raw = teacher_config("fa")
    raw["network_layout"]["layers"][0]["feedback_init"] = "orthogonal"
    with pytest.raises(ConfigError, match="feedback_init = 'orthogonal'"):
        resolve_config(raw)
    # B of another shape in the checkpoint a run is restored from
    folder, _ = runs.train(teacher_config("dfa", epoch_number=1), output=tmp_path / "a",
                           progress=False)
    other = teacher_config("dfa")
    other["network_layout"]["layers"][0]["error_size"] = 3
    other["network_layout"]["layers"][1]["error_size"] = 3
    other["network_layout"]["layers"][2]["size"] = 3
    trainer = Trainer(resolve_config(other), "cpu")
    with pytest.raises(ValueError, match=r"layers.0.feedback.*\[16, 2\].*\[16, 3\]"):
        trainer.restore(runs.load_trainer(folder).checkpoint())


@pytest.mark.parametrize("rule", ["bp", "fa"])
def test_forward_runs_on_the_chip_with_the_rules_backward(rule: str):
    raw = teacher_config(rule)
    raw["network_layout"]["layers"] = layer_entries(rule, (16, 2), "relu")
    trainer = Trainer(resolve_config(raw), "bss2", config_dir=CONFIGS)
    session = trainer.hardware_sessions[0]
    x = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    y, records = trainer.forward(x)
    assert session.stats["runs"] == 2 and session.stats["samples"] == 8
    h = records[0].output
    h.retain_grad()
    y.sum().backward()
    output = trainer.network.layers[1]
    matrix = output.feedback if rule == "fa" else output.weight * trainer.backends[1].weight_ratio(
        output.weight)
    torch.testing.assert_close(h.grad, torch.ones(4, 2, dtype=torch.float64) @ matrix.detach().T)
    metrics = trainer.train_epoch()
    assert np.isfinite(metrics["train_loss"])
    if rule == "fa":
        state = session.state_dict()
        alignment(trainer)  # no trace in the chip's noise or counters
        assert session.state_dict() == state


def test_rules_summary_names_the_rules_of_a_sweep(tmp_path: Path, capsys):
    import argparse

    from snnsim.registry import COMMANDS

    for rule in ("bp", "fa", "kp"):
        runs.train(teacher_config(rule, epoch_number=1, weight_decay=0.1),
                   output=tmp_path / f"00{RULES.index(rule)}_{rule}", progress=False)
    (tmp_path / "003_broken").mkdir()
    (tmp_path / "003_broken" / "error.txt").write_text("Traceback ...")
    rows = COMMANDS.get("rules-summary").run(argparse.Namespace(sweep_dir=tmp_path))
    assert [(r.get("rule"), r["status"]) for r in rows] == [
        ("bp", "ok"), ("fa", "ok"), ("kp", "ok"), (None, "failed")]
    assert rows[0]["min_cos_wb"] == "" and -1 <= rows[2]["min_cos_wb"] <= 1
    printed = capsys.readouterr().out
    assert "| kp | cpu | 1 |" in printed and "not complete: 003_broken" in printed
    table = list(csv.DictReader(io.StringIO((tmp_path / "rules_summary.csv").read_text())))
    assert [row["rule"] for row in table] == ["bp", "fa", "kp", ""]


def test_eval_draws_the_alignment_plot(tmp_path: Path):
    from snnsim.plots import write_all

    trainer = Trainer(resolve_config(teacher_config("fa", epoch_number=2)), "cpu")
    trainer.train_epoch()
    trainer.train_epoch()
    names = {path.name for path in write_all(trainer, tmp_path)}
    assert "alignment.png" in names and "training_curves.png" in names
    bp = Trainer(resolve_config(teacher_config("bp")), "cpu")
    bp.train_epoch()
    assert "alignment.png" not in {p.name for p in write_all(bp, tmp_path / "bp")}
