"""Spatially embedded networks (snnsim/families/spatial): costs against hand-computed
values and finite differences, spatial layers against plain layers, the multi-task data
and task, the greedy split and scores, the separation score, checkpoints, bad configs."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from snnsim.config import resolve_config
from snnsim.errors import ConfigError
from snnsim.families.spatial import analysis, commands
from snnsim.families.spatial.costs import proximity_cost, silhouette, spread, transport_cost
from snnsim.families.spatial.data import N_LABELS
from snnsim.families.spatial.task import wiring_costs
from snnsim.layers import LayerContext, RunSettings, TorchRate, build_layer
from snnsim.network import neuron_params_from_config
from snnsim.training import Trainer

TRAINING = {"epoch_number": 1, "batch_size": 32, "batch_size_eval": 200, "torch_seed": 3}


def _config(shared_data: Path, layers=None, data=None, task=None, n_inputs=784) -> dict:
    return {
        "dataset": "spatial_tasks",
        "data": {"data_dir": str(shared_data), "limit": 30, **(data or {})},
        "network_layout": {"n_inputs": n_inputs, "layers": layers or [
            {"type": "spatial_linear", "size": 6},
            {"type": "spatial_linear", "size": 20, "activation": "identity"}]},
        "task": {"type": "spatial_multitask", **(task or {})},
        "training_params": dict(TRAINING),
    }


def _build(entry: dict, n_inputs: int, seed: int = 0):
    config = resolve_config({"dataset": "sine", "network_layout": {
        "n_inputs": n_inputs, "layers": [entry]}, "training_params": {"epoch_number": 1}})
    context = LayerContext(neuron_params_from_config(config), torch.Generator().manual_seed(seed))
    return build_layer(n_inputs, config["network_layout"]["layers"][0], context)


# -- costs -----------------------------------------------------------------------------------

def test_proximity_cost_by_hand():
    p = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    d = np.array([[0, 5, 1], [5, 0, math.sqrt(9 + 9)], [1, math.sqrt(18), 0]])
    expected = np.exp(-np.sqrt(d ** 2 + 1e-8)).mean()
    assert proximity_cost(p).item() == pytest.approx(expected, rel=1e-12)
    # the diagonal contributes exp(-1e-4) each: (3 e^-1e-4 + 2 e^-5 + 2 e^-1 + 2 e^-sqrt18) / 9
    by_hand = (3 * math.exp(-1e-4) + 2 * math.exp(-5) + 2 * math.exp(-1)
               + 2 * math.exp(-math.sqrt(18))) / 9
    assert proximity_cost(p).item() == pytest.approx(by_hand, rel=1e-8)  # eps off the diagonal


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_transport_cost_by_hand(norm: str):
    """3 units over 2 previous units: mean over (i, j) of |p_i - q_j| c(W_ji)."""
    layer = _build({"type": "spatial_linear", "size": 3}, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        layer.positions.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    q = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    cost = layer.unit_cost(norm, 2)
    got = transport_cost(layer.positions, q, cost).item()
    c = (lambda w: abs(w)) if norm == "l1" else (lambda w: w * w)
    # distances p_i to q_j: unit 0 (0,0): 0, 5; unit 1 (1,0): 1, sqrt(20); unit 2 (0,2): 2, sqrt(13)
    total = (0 * c(1.0) + 5 * c(0.0) + 1 * c(-2.0) + math.sqrt(20) * c(3.0)
             + 2 * c(0.5) + math.sqrt(13) * c(-1.0))
    assert got == pytest.approx(total / 6, rel=1e-12)


def test_costs_gradcheck():
    generator = torch.Generator().manual_seed(0)
    p = torch.randn(3, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    q = torch.randn(4, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(proximity_cost, (p,))
    assert torch.autograd.gradcheck(lambda p, q, w: transport_cost(p, q, w.abs()), (p, q, w))
    assert torch.autograd.gradcheck(lambda p, q, w: transport_cost(p, q, w * w), (p, q, w))


def test_transport_gradient_is_zero_where_units_coincide():
    """|p_i - q_j| has no gradient at p_i = q_j; the subgradient 0 is taken (positions may
    contract onto each other under the transport cost), never NaN."""
    p = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    transport_cost(p, q, torch.ones(2, 2, dtype=torch.float64)).backward()
    # unit 0 sits on q_0 (no pull from it) and is pulled towards q_1 along (3-1, 4-2)/|.|
    pull = torch.tensor([-2.0, -2.0], dtype=torch.float64) / math.sqrt(8) / 4
    assert torch.allclose(p.grad[0], pull, rtol=1e-12)
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_wiring_costs_mean_over_layers_and_conv_after_conv():
    """P averages the named layers; Tr skips the first (its input has no positions); a
    convolution's unit cost sums its kernel."""
    conv1 = _build({"type": "spatial_conv2d", "size": 2, "kernel_size": 3, "padding": 1}, 25)
    conv2 = _build({"type": "spatial_conv2d", "size": 3, "in_channels": 2, "kernel_size": 3,
                    "padding": 1}, 50, seed=1)
    dense = _build({"type": "spatial_linear", "size": 4}, 75, seed=2)
    layers = [conv1, conv2, dense]
    proximity, transport = wiring_costs(layers, [0, 1, 2], "l2")
    assert proximity.item() == pytest.approx(np.mean(
        [proximity_cost(layer.positions).item() for layer in layers]))
    kernel_cost = (conv2.weight ** 2).sum((2, 3))                      # [3, 2]
    dense_cost = (dense.weight.t() ** 2).reshape(4, 3, 25).sum(-1)     # 25 pixels per channel
    expected = (transport_cost(conv2.positions, conv1.positions, kernel_cost)
                + transport_cost(dense.positions, conv2.positions, dense_cost)) / 2
    assert transport.item() == pytest.approx(expected.item(), rel=1e-12)
    assert wiring_costs(layers, [0], "l2")[1].item() == 0.0


# -- layers ----------------------------------------------------------------------------------

def test_spatial_linear_is_the_plain_layer():
    entry = {"size": 5, "activation": "tanh"}
    spatial = _build({"type": "spatial_linear", **entry}, 4, seed=7)
    plain = _build({"type": "linear", **entry}, 4, seed=7)
    x = torch.randn(6, 4, dtype=torch.float64)
    assert torch.equal(spatial.weight, plain.weight)
    assert torch.equal(spatial(x, TorchRate(), RunSettings()), plain(x, TorchRate(), RunSettings()))
    assert spatial.positions.shape == (5, 2)


@pytest.mark.parametrize("stride, padding, channels", [(1, 1, 1), (2, 0, 2)])
def test_spatial_conv2d_is_a_plain_convolution(stride: int, padding: int, channels: int):
    layer = _build({"type": "spatial_conv2d", "size": 3, "in_channels": channels,
                    "input_width": 7, "kernel_size": 3, "stride": stride, "padding": padding,
                    "activation": "relu"}, channels * 7 * 6)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(4, channels * 6 * 7, dtype=torch.float64, requires_grad=True)
    out = layer(x, TorchRate(), RunSettings())
    reference = torch.relu(F.conv2d(x.reshape(4, channels, 6, 7), layer.weight, layer.bias,
                                    stride=stride, padding=padding)).reshape(4, -1)
    assert out.shape == (4, layer.output_size) == reference.shape
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(out)
    g = torch.autograd.grad(out, (x, layer.weight), grad_out)
    g_ref = torch.autograd.grad(reference, (x, layer.weight), grad_out)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_conv_network_trains_with_costs(shared_data: Path):
    layers = [{"type": "spatial_conv2d", "size": 2, "kernel_size": 5, "stride": 3},
              {"type": "spatial_linear", "size": 20, "activation": "identity"}]
    trainer = Trainer(resolve_config(_config(shared_data, layers, task={
        "proximity": 0.1, "transport": 1.0})))
    before = trainer.network.layers[1].positions.detach().clone()
    metrics = trainer.train_epoch()
    assert np.isfinite(metrics["train_loss"]) and metrics["transport_cost"] > 0
    assert not torch.equal(before, trainer.network.layers[1].positions)


def test_position_learning_rate_group(shared_data: Path):
    raw = _config(shared_data, [{"type": "spatial_linear", "size": 6, "position_lr": 0.5},
                                {"type": "spatial_linear", "size": 20}])
    trainer = Trainer(resolve_config(raw))
    lrs = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert lrs.count(0.5) == 1 and len(lrs) == 4


def test_no_costs_positions_stay(shared_data: Path):
    trainer = Trainer(resolve_config(_config(shared_data)))
    before = [layer.positions.detach().clone() for layer in trainer.network.layers]
    trainer.train_epoch()
    for layer, p in zip(trainer.network.layers, before):
        assert torch.equal(layer.positions, p)


# -- data and task ---------------------------------------------------------------------------

def test_input_modes_shapes_and_labels(shared_data: Path):
    from snnsim.datasets import load_dataset
    from snnsim.families.spatial.data import task_data

    options = {"data_dir": str(shared_data), "limit": 25}
    base = {"data_dir": str(shared_data), "download": False, "limit": 25, "seed": 1}
    digits, digit_labels = task_data("digits", "val", base)
    permuted, parity = task_data("parity_permuted", "val", base)
    assert np.array_equal(parity, digit_labels % 2)
    assert np.array_equal(np.sort(permuted, 1), np.sort(digits, 1))  # the same pixels, moved
    assert not np.array_equal(permuted, digits)
    rotated, _ = task_data("digits_rotated", "val", base)
    assert np.array_equal(rotated[0].reshape(28, 28), np.rot90(digits[0].reshape(28, 28)))

    seq = load_dataset("spatial_tasks", "val", options={**options, "input_mode": "sequential"})
    assert seq.inputs.shape == (50, 784) and seq.n_classes == 20
    assert np.array_equal(seq.targets[:25], digit_labels)
    assert np.array_equal(seq.targets[25:], parity + N_LABELS)
    cat = load_dataset("spatial_tasks", "val", options={**options, "input_mode": "concatenate"})
    assert cat.inputs.shape == (25, 1568) and cat.targets.shape == (25, 2)
    assert np.array_equal(cat.inputs[:, :784], digits)
    assert np.array_equal(cat.targets[:, 0], digit_labels)
    mix = load_dataset("spatial_tasks", "val", options={**options, "input_mode": "mix"})
    assert mix.inputs.shape == (25, 784)
    np.testing.assert_array_equal(mix.inputs, cat.inputs[:, :784] + cat.inputs[:, 784:])
    # each pair (image, label) of task 1 is one of its own samples
    rows = {tuple(np.round(r, 6)) for r in permuted}
    assert all(tuple(np.round(r, 6)) in rows for r in cat.inputs[:, 784:])


def test_shorter_task_upsampled(shared_data: Path, tmp_path: Path):
    """A source with fewer images is upsampled with replacement to the longer's length."""
    import gzip
    import shutil

    (tmp_path / "mnist").mkdir()
    for f in (shared_data / "mnist").iterdir():
        shutil.copy(f, tmp_path / "mnist" / f.name)
    (tmp_path / "kmnist").mkdir()
    images = np.arange(20 * 784, dtype=np.uint8).reshape(20, 28, 28)
    header = b"\x00\x00\x08\x03" + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "kmnist" / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(header + images.tobytes()))
    (tmp_path / "kmnist" / "t10k-labels-idx1-ubyte").write_bytes(
        b"\x00\x00\x08\x01" + (20).to_bytes(4, "big") + bytes(range(10)) * 2)
    from snnsim.datasets import load_dataset

    data = load_dataset("spatial_tasks", "train", options={
        "data_dir": str(tmp_path), "tasks": ["digits", "kmnist"], "limit": 40})
    assert len(data) == 80                                   # 40 digits, 16 kmnist -> 40
    k = data.targets[40:] - N_LABELS
    assert set(k) <= set(range(10)) and np.array_equal(k[:16], np.arange(16) % 10)


def test_missing_or_malformed_external_source(tmp_path: Path):
    """A task whose files are absent, or hold images that are not 28x28, gets an error
    naming the file and what was expected."""
    from snnsim.datasets import load_dataset

    options = {"data_dir": str(tmp_path), "tasks": ["fashion_mnist", "digits"]}
    with pytest.raises(FileNotFoundError, match=r"fashion_mnist.*t10k-images-idx3-ubyte"):
        load_dataset("spatial_tasks", "train", options=options)
    (tmp_path / "fashion_mnist").mkdir()
    header = b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (27).to_bytes(4, "big") * 2
    (tmp_path / "fashion_mnist" / "t10k-images-idx3-ubyte").write_bytes(
        header + bytes(2 * 27 * 27))
    (tmp_path / "fashion_mnist" / "t10k-labels-idx1-ubyte").write_bytes(
        b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes(2))
    with pytest.raises(ValueError, match=r"shape \[n, 28, 28\].*\(2, 27, 27\)"):
        load_dataset("spatial_tasks", "train", options=options)


def _evaluate_task(shared_data: Path, mode: str):
    n_inputs = 1568 if mode == "concatenate" else 784
    return Trainer(resolve_config(_config(shared_data, data={"input_mode": mode},
                                          n_inputs=n_inputs)))


@pytest.mark.parametrize("mode", ["sequential", "concatenate", "mix"])
def test_task_loss_and_accuracy_against_reference(shared_data: Path, mode: str):
    trainer = _evaluate_task(shared_data, mode)
    task = trainer.task
    generator = torch.Generator().manual_seed(0)
    out = torch.randn(8, 20, dtype=torch.float64, generator=generator)
    if mode == "sequential":
        target = torch.tensor([3, 12, 0, 11, 9, 10, 5, 13])
        tasks, labels = target // 10, target % 10
        expected = [F.cross_entropy(out[b, t::2][None], labels[b:b + 1]).item()
                    for b, t in enumerate(tasks)]
        hits = [(out[b, t::2].argmax() == labels[b]).item() for b, t in enumerate(tasks)]
        acc = [2 * sum(h for h, t in zip(hits, tasks) if t == k) for k in range(2)]
    else:
        target = torch.randint(0, 2, (8, 2), generator=generator)
        expected = [(F.cross_entropy(out[b, 0::2][None], target[b:b + 1, 0])
                     + F.cross_entropy(out[b, 1::2][None], target[b:b + 1, 1])).item() / 2
                    for b in range(8)]
        acc = [sum((out[b, t::2].argmax() == target[b, t]).item() for b in range(8))
               for t in range(2)]
    torch.testing.assert_close(task.per_sample_loss(out, target),
                               torch.tensor(expected, dtype=torch.float64))
    scores = task.scores(out, target)
    assert scores["accuracy_digits"] == acc[0] and scores["accuracy_parity_permuted"] == acc[1]
    assert scores["accuracy"] == pytest.approx(sum(acc) / 2)


@pytest.mark.parametrize("alpha, beta", [(0.3, 2.0), (0.0, 2.0), (0.3, 0.0)])
def test_loss_adds_weighted_costs(shared_data: Path, alpha: float, beta: float):
    """loss = task loss + alpha P + beta Tr (a term with coefficient 0 is skipped)."""
    raw = _config(shared_data, task={"proximity": alpha, "transport": beta, "norm": "l1"})
    trainer = Trainer(resolve_config(raw))
    x = trainer.network_inputs("train")[:5]
    target = trainer.targets("train")[:5]
    output, _ = trainer.forward(x)
    layers = list(trainer.network.layers)
    proximity, transport = wiring_costs(layers, [0, 1], "l1")
    assert transport.item() == pytest.approx(
        transport_cost(layers[1].positions, layers[0].positions, layers[1].weight.t().abs()
                       ).item())
    expected = trainer.task.per_sample_loss(output, target).mean() + alpha * proximity \
        + beta * transport
    assert trainer.task.loss(output, target).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_regularization_sums_every_weight(shared_data: Path, norm: str):
    """gamma R, R = sum over all layers' weights (not the biases) of |w| or w^2, as the
    published `Regularization`; alone it turns the costs on without moving positions."""
    raw = _config(shared_data, task={"regularization": 0.01, "norm": norm})
    trainer = Trainer(resolve_config(raw))
    x, target = trainer.network_inputs("train")[:5], trainer.targets("train")[:5]
    output, _ = trainer.forward(x)
    weights = [layer.weight.detach().numpy() for layer in trainer.network.layers]
    penalty = sum((np.abs(w) if norm == "l1" else w * w).sum() for w in weights)
    expected = trainer.task.per_sample_loss(output, target).mean().item() + 0.01 * penalty
    assert trainer.task.costs_on
    assert trainer.task.loss(output, target).item() == pytest.approx(expected, rel=1e-12)


def test_ordered_sampler_batches_hold_one_task(shared_data: Path):
    trainer = Trainer(resolve_config(_config(shared_data, data={"sampler": "ordered"})))
    targets = trainer.targets("train")
    batches = trainer.task.training_batches(targets, len(targets), 4,
                                            torch.Generator().manual_seed(0))
    tasks = [set((targets[idx] // N_LABELS).tolist()) for idx in batches]
    assert all(len(t) == 1 for t in tasks)  # one task per batch
    assert [t.pop() for t in tasks[:4]] == [0, 1, 0, 1]  # in turn
    used = torch.cat(batches)
    assert torch.equal(used.sort().values, torch.arange(len(targets)))  # every sample, once
    assert max(map(len, batches)) == 4


def test_ordered_epoch_scores_every_sample(shared_data: Path):
    """The loop divides the training scores by the samples scored: a score of 1 per
    sample reads 1."""
    trainer = Trainer(resolve_config(_config(shared_data, data={"sampler": "ordered"})))
    trainer.task.scores = lambda output, target: {"accuracy": float(len(target))}
    assert trainer.train_epoch()["train_accuracy"] == 1.0


# -- split, score, separation ----------------------------------------------------------------

def _hand_built(shared_data: Path):
    """784 -> 4 -> 20: hidden units 0, 1 feed only task 0's outputs, 2, 3 only task 1's."""
    raw = _config(shared_data, [{"type": "spatial_linear", "size": 4},
                                {"type": "spatial_linear", "size": 20,
                                 "activation": "identity"}])
    trainer = Trainer(resolve_config(raw))
    hidden, out = trainer.network.layers
    with torch.no_grad():
        out.weight.zero_()
        out.weight[0:2, 0::2] = 1.0      # hidden 0, 1 -> outputs of task 0 (even indices)
        out.weight[2:4, 1::2] = 0.5      # hidden 2, 3 -> outputs of task 1
        out.bias.fill_(0.25)
        hidden.bias.fill_(0.1)
    return trainer


def test_greedy_assignment_and_subnetworks(shared_data: Path):
    trainer = _hand_built(shared_data)
    layers = list(trainer.network.layers)
    assignment = analysis.greedy_assignment(layers, 2)
    assert assignment[1].tolist() == [0, 1] * 10
    assert assignment[0].tolist() == [0, 0, 1, 1]
    masks = analysis.subnetwork_masks(layers, assignment, 1)
    analysis.apply_subnetwork_(layers, masks)
    hidden, out = layers
    assert torch.all(hidden.weight[:, :2] == 0) and torch.all(hidden.bias[:2] == 0)
    assert torch.all(hidden.bias[2:] == 0.1)
    assert torch.all(out.weight[:, 0::2] == 0) and torch.all(out.bias[0::2] == 0)
    assert torch.all(out.bias[1::2] == 0.25)


def test_activity_assignment_by_hand():
    """Hidden units serve the task with the larger mean |activity|; silent ones none."""
    activity = [np.array([[1.0, 0.0, 0.2, 0.0], [0.5, 0.3, 0.7, 0.0]]), np.ones((2, 20))]
    assignment = analysis.activity_assignment(activity, 2)
    assert assignment[0].tolist() == [0, 1, 1, -1]
    assert assignment[1].tolist() == [0, 1] * 10
    with pytest.raises(ValueError, match=r"expected \[3, units\]"):
        analysis.activity_assignment(activity, 3)


def test_activity_assignment_of_a_network(shared_data: Path):
    """Unit 0 reads the central 10x10 pixels (bright in digits, spread out by the
    permutation), unit 1 the two top rows (blank in every MNIST digit, not after the
    permutation), unit 2 nothing (silent): tasks digits, parity_permuted, none."""
    trainer = _hand_built(shared_data)
    hidden = trainer.network.layers[0]
    image = np.zeros((28, 28))
    centre, top = image.copy(), image.copy()
    centre[9:19, 9:19] = 1.0
    top[:2] = 1.0
    with torch.no_grad():
        hidden.weight.zero_()
        hidden.bias.zero_()
        hidden.weight[:, 0] = torch.from_numpy(centre.ravel())
        hidden.weight[:, 1] = torch.from_numpy(top.ravel())
        hidden.weight[:, 3] = 1.0
    activity = analysis.record_activity(trainer, "train")
    assert activity[0][0, 1] == 0 and activity[0][1, 1] > 0  # the blank rows, by the data
    units = analysis.assignment(trainer, "activity")
    assert units[0][:3].tolist() == [0, 1, -1]
    assert units[1].tolist() == [0, 1] * 10
    with pytest.raises(ValueError, match="'nearest'"):
        analysis.assignment(trainer, "nearest")


def test_float32_run_trains_records_and_scores(shared_data: Path, tmp_path: Path):
    """The family runs in float32 (training_params.dtype) too: costs, activity, scores."""
    raw = _config(shared_data, task={"proximity": 0.1, "transport": 1.0})
    raw["training_params"]["dtype"] = "float32"
    trainer = Trainer(resolve_config(raw))
    metrics = trainer.train_epoch()
    assert trainer.network.layers[0].positions.dtype == torch.float32
    assert math.isfinite(metrics["transport_cost"]) and math.isfinite(metrics["val_loss"])
    units = analysis.assignment(trainer, "activity")
    subnetworks, _, _, _ = commands._subnetworks(tmp_path, trainer, "activity")
    rows = commands.score_rows(trainer, subnetworks, "val")
    assert len(rows) == 6 and len(units[1]) == 20


def test_score_on_hand_built_network(shared_data: Path, tmp_path: Path):
    trainer = _hand_built(shared_data)
    subnetworks, units, method, finetune = commands._subnetworks(tmp_path, trainer)
    assert method == "greedy" and finetune == 0 and units[0].tolist() == [0, 0, 1, 1]
    rows = commands.score_rows(trainer, subnetworks, "val")
    by = {(r["network"], r["task"]): r for r in rows}
    assert len(rows) == 6 and by[("full", "digits")]["fraction_of_full"] == 1.0
    # sub-network "digits" has all task-1 logits at 0: it always answers label 0 there
    targets = trainer.targets("val")
    parity = (targets[targets >= N_LABELS] - N_LABELS).numpy()
    assert by[("digits", "parity_permuted")]["accuracy"] == pytest.approx((parity == 0).mean())
    assert by[("digits", "parity_permuted")]["chance"] == 0.5
    assert not by[("digits", "parity_permuted")]["own_task"]


def test_spread_of_hand_placed_positions():
    # distances to the median point (1, 0): 1, 0, 1, 3 -> median 1
    assert spread(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 3.0]])) == 1.0
    # a collapsed layout keeps its silhouette but not its spread
    rng = np.random.default_rng(0)
    points = rng.standard_normal((4000, 2))
    assert spread(points) == pytest.approx(math.sqrt(2 * math.log(2)), rel=0.05)
    assert spread(1e-3 * points) == pytest.approx(1e-3 * spread(points))
    labels = (points[:, 0] > 0).astype(int)
    assert silhouette(1e-3 * points, labels) == pytest.approx(silhouette(points, labels))


def test_separation_of_hand_placed_clusters():
    generator = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    tight = np.concatenate([generator.normal(0, 0.05, (20, 2)),
                            generator.normal(5, 0.05, (20, 2))])
    assert silhouette(tight, labels) > 0.95
    mixed = generator.normal(0, 1, (40, 2))
    assert abs(silhouette(mixed, labels)) < 0.1
    # by hand: points 0, 1 (label 0) and 4 (label 1) on a line
    points = np.array([[0.0, 0], [1, 0], [4, 0]])
    s0 = (4 - 1) / 4
    s1 = (3 - 1) / 3
    assert silhouette(points, np.array([0, 0, 1])) == pytest.approx((s0 + s1 + 0) / 3)
    assert math.isnan(silhouette(points, np.zeros(3)))


def test_commands_on_a_run(shared_data: Path, tmp_path: Path):
    from snnsim import runs

    raw = _config(shared_data, task={"proximity": 0.1, "transport": 1.0})
    results, _ = runs.train(raw, output=tmp_path / "run", progress=False)
    args = argparse.Namespace(results=results, epoch=None, backend=None, split="val",
                              statistic="mean", finetune=1, assign="activity")
    path = commands.record(args)
    recorded = np.load(path)
    assert recorded["layer_0"].shape == (2, 6) and recorded["layer_1"].shape == (2, 20)
    commands.split(args)
    assert (results / "split" / "digits" / "checkpoints").is_dir()
    sub = runs.load_trainer(results / "split" / "parity_permuted")
    assignment = np.load(results / "split" / "assignment.npz")
    removed = assignment["layer_0"] != 1
    assert torch.all(sub.network.layers[0].weight[:, torch.from_numpy(removed)] == 0)
    value = commands.score(args)
    assert (results / "split_scores.csv").is_file() and -1 <= value <= 1
    summary = yaml.safe_load((results / "split_summary.yaml").read_text())
    assert summary["assignment"] == "activity" and summary["finetune_epochs"] == 1
    base = runs.load_trainer(results)
    greedy = analysis.assignment(base, "greedy")
    assert value == summary["separation"] == analysis.separation(base.network.layers, greedy)[0]
    assert summary["spread_per_layer"] == pytest.approx(
        [spread(layer.positions.detach().numpy()) for layer in base.network.layers])
    by_activity = [assignment[f"layer_{k}"] for k in range(2)]
    assert summary["separation_activity"] == pytest.approx(
        analysis.separation(base.network.layers, by_activity)[0], nan_ok=True)
    assert summary["units_per_task"]["parity_permuted"] == [
        int((assignment[f"layer_{k}"] == 1).sum()) for k in range(2)]
    with pytest.raises(ValueError, match="--assign activity, not greedy"):
        commands.score(argparse.Namespace(**{**vars(args), "assign": "greedy"}))
    # a split without fine-tuning replaces the fine-tuned one (not its later checkpoint)
    commands.split(argparse.Namespace(**{**vars(args), "assign": "greedy", "finetune": 0}))
    assert runs.load_trainer(results / "split" / "digits").epoch == base.epoch
    commands.score(argparse.Namespace(**{**vars(args), "assign": None}))
    summary = yaml.safe_load((results / "split_summary.yaml").read_text())
    assert summary["assignment"] == "greedy" and summary["finetune_epochs"] == 0
    with pytest.raises(ValueError, match="--finetune -1"):
        commands.split(argparse.Namespace(**{**vars(args), "finetune": -1}))
    assert len(commands.plot(args)) == 2


# -- checkpoints and configs -----------------------------------------------------------------

def test_checkpoint_round_trip_keeps_positions(shared_data: Path, tmp_path: Path):
    from snnsim.checkpoint import load_checkpoint, save_checkpoint

    raw = _config(shared_data, task={"proximity": 0.1, "transport": 1.0})
    trainer = Trainer(resolve_config(raw))
    trainer.train_epoch()
    path = save_checkpoint(tmp_path / "c.h5", trainer.checkpoint())
    other = Trainer(resolve_config(raw))
    other.restore(load_checkpoint(path))
    for a, b in zip(trainer.network.layers, other.network.layers):
        assert torch.equal(a.positions, b.positions)
        assert not torch.equal(a.positions, Trainer(resolve_config(raw)).network.layers[
            list(trainer.network.layers).index(a)].positions)


@pytest.mark.parametrize("change, message", [
    ({"data": {"input_mode": "interleave"}}, "input_mode"),
    ({"data": {"tasks": ["digits", "letters"]}}, "tasks"),
    ({"task": {"proximity": -0.1}}, "task.proximity = -0.1"),
    ({"task": {"transport": -1}}, "task.transport = -1"),
    ({"task": {"regularization": -1e-5}}, "task.regularization = -1e-05"),
    ({"task": {"norm": "l3"}}, "task.norm"),
    ({"task": {"transport": 1.0, "cost_layers": [0, 5]}}, "no layer 5"),
    ({"layers": [{"type": "linear", "size": 6},
                 {"type": "spatial_linear", "size": 20}], "task": {"proximity": 1.0}},
     "layer 0 is 'linear'"),
    ({"layers": [{"type": "spatial_linear", "size": 6},
                 {"type": "spatial_linear", "size": 10}]}, "20 logits"),
    ({"data": {"input_mode": "concatenate"}}, "n_inputs = 784"),
    ({"data": {"sampler": "ordered", "input_mode": "mix"}}, "sampler"),
    ({"layers": [{"type": "spatial_conv2d", "size": 2, "kernel_size": 40},
                 {"type": "spatial_linear", "size": 20}]}, "kernel_size = 40"),
])
def test_bad_config_names_key_and_value(shared_data: Path, change: dict, message: str):
    raw = _config(shared_data, change.get("layers"), change.get("data"), change.get("task"))
    with pytest.raises(ConfigError, match=message):
        Trainer(resolve_config(raw))
