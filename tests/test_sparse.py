"""The noise-induced sparse coding family (snnsim/families/sparse): Top-K, k schedules,
weight constraints, the inhibitory circuit, activity counters, noise, data, a short run
whose sparsity grows with sigma, checkpoints, config errors, the shipped sigma sweep (with
its Top-K points) and its summary columns, the sweep figure (active fraction against sigma)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from snnsim import cli, sweep
from snnsim.config import ConfigError, resolve_config
from snnsim.datasets import load_dataset
from snnsim.families.sparse import layers, metrics, plots, tasks
from snnsim.families.sparse.data import split_rows
from snnsim.layers import LayerContext, RunSettings, TorchRate, build_layer
from snnsim.network import neuron_params_from_config
from snnsim.training import Trainer

# -- Top-K on hand-made vectors ----------------------------------------------------------------


def _t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_top_k_mask_keeps_the_k_largest_after_relu():
    y = layers.top_k(_t([3.0, 1.0, 2.0, 5.0], [-1.0, 2.0, 0.5, -3.0]), 2, "mask")
    assert torch.equal(y, _t([3.0, 0.0, 0.0, 5.0], [0.0, 2.0, 0.5, 0.0]))


def test_top_k_mask_with_ties_keeps_exactly_k_of_the_largest():
    y = layers.top_k(_t([1.0, 1.0, 1.0, 0.5]), 2, "mask")
    assert int((y > 0).sum()) == 2 and set(y[y > 0].tolist()) == {1.0}
    assert y[0, 3] == 0


def test_top_k_subtract_leaves_k_minus_one_active():
    y = layers.top_k(_t([3.0, 1.0, 2.0, 5.0]), 3, "subtract")  # 3rd largest = 2
    assert torch.equal(y, _t([1.0, 0.0, 0.0, 3.0]))
    x = torch.randn(20, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for k in (1, 7, 30):
        y = layers.top_k(x.abs() + 0.1, k, "subtract")
        assert ((y > 0).sum(1) == k - 1).all()


def test_top_k_zero_and_all():
    x = _t([3.0, -1.0, 2.0])
    for mode in ("mask", "subtract"):
        assert torch.equal(layers.top_k(x, 0, mode), torch.zeros(1, 3, dtype=torch.float64))
    assert torch.equal(layers.top_k(x, 3, "mask"), torch.relu(x))
    # k = n subtracts the smallest relu value (0 here): relu(x) stays
    assert torch.equal(layers.top_k(x, 3, "subtract"), torch.relu(x))
    with pytest.raises(ValueError, match="k = 4"):
        layers.top_k(x, 4, "mask")
    with pytest.raises(ValueError, match="mode 'max'"):
        layers.top_k(x, 1, "max")


def test_top_k_gradient_flows_only_through_kept_units():
    x = _t([3.0, 1.0, 2.0, 5.0]).requires_grad_(True)
    layers.top_k(x, 2, "mask").sum().backward()
    assert torch.equal(x.grad, _t([1.0, 0.0, 0.0, 1.0]))


# -- k schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule, epoch, expected", [
    ("linear", 0, 1000), ("linear", 50, 505), ("linear", 100, 10), ("linear", 300, 10),
    ("linear", 1, 990),  # 1000 - 990 * 1 / 100
    ("exponential", 0, 1000), ("exponential", 50, 100), ("exponential", 100, 10),
    ("exponential", 150, 10),
    ("flat", 0, 10), ("flat", 70, 10),
])
def test_k_schedules(schedule, epoch, expected):
    assert layers.scheduled_k(epoch, schedule, 10, 1000, 100) == expected


def _build(entry: dict, n_inputs: int = 5, seed: int = 0):
    config = resolve_config({"dataset": "sine", "network_layout": {
        "n_inputs": n_inputs, "layers": [entry]}, "training_params": {"epoch_number": 1}})
    context = LayerContext(neuron_params_from_config(config), torch.Generator().manual_seed(seed))
    return build_layer(n_inputs, config["network_layout"]["layers"][0], context)


def test_layer_steps_k_at_epoch_end():
    layer = _build({"type": "topk_linear", "size": 20, "k": 2, "k_schedule": "linear",
                    "k_epochs": 4})
    assert layer.k == 20
    seen = []
    for epoch in range(1, 6):
        layer.epoch_end(epoch)
        seen.append(layer.k)
    assert seen == [15, 11, 6, 2, 2]  # floor(20 - 18 e / 4)
    y = layer(torch.randn(3, 5, dtype=torch.float64), TorchRate(), RunSettings())
    assert ((y > 0).sum(1) <= 2).all()


# -- weight constraints ------------------------------------------------------------------------


def test_unit_norm_and_positive_weights_hold_after_optimiser_steps():
    layer = _build({"type": "topk_linear", "size": 12, "k": 4, "positive_weights": True})
    norms = layer.weight.norm(dim=0)
    assert torch.allclose(norms, torch.ones_like(norms)) and (layer.weight >= 0).all()
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        x = torch.randn(16, 5, generator=generator, dtype=torch.float64)
        loss = -(layer(x, TorchRate(), RunSettings()) * torch.randn(16, 12, generator=generator,
                                                                   dtype=torch.float64)).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert (layer.weight < 0).any() or not torch.allclose(layer.weight.norm(dim=0),
                                                              torch.ones(12, dtype=torch.float64))
        with torch.no_grad():
            layer.constrain_(RunSettings())
        assert (layer.weight >= 0).all()
        assert torch.allclose(layer.weight.norm(dim=0), torch.ones(12, dtype=torch.float64))


def test_topk_layer_normalises_its_input_and_has_no_bias():
    layer = _build({"type": "topk_linear", "size": 6, "k": 6})
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = layer(x, TorchRate(), RunSettings())
    assert torch.allclose(y, layer(7.0 * x, TorchRate(), RunSettings()))
    expected = torch.relu((x / x.norm(dim=1, keepdim=True)) @ layer.weight)
    assert torch.allclose(y, expected)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


# -- inhibitory circuit ------------------------------------------------------------------------


def _circuit(kind: str, signed: bool, rate: float = 1.0, steps: int = 1):
    return layers.InhibitoryCircuit(3, kind, signed, rate, steps, torch.Generator().manual_seed(0))


def test_inhibitory_circuit_one_step_by_hand():
    mu0 = _t([1.0, -2.0, 3.0])
    w = _t([0.5, -1.0, 0.0], [0.0, 2.0, 1.0], [-0.5, 0.25, 0.1])  # row: from unit i
    circuit = _circuit("all_to_all", signed=False)
    with torch.no_grad():
        circuit.weight.copy_(w)
    # relu(mu0) = (1, 0, 3); W^T r = (1*0.5 + 3*-0.5, 1*-1 + 3*0.25, 3*0.1) = (-1, -0.25, 0.3)
    assert torch.allclose(circuit(mu0), _t([1.0, -2.0, 3.0 - 0.3]))  # inhibition only
    signed = _circuit("all_to_all", signed=True)
    with torch.no_grad():
        signed.weight.copy_(w)
    assert torch.allclose(signed(mu0), _t([2.0, -1.75, 2.7]))  # also excites
    # two steps of eta = 0.5: mu1 = mu0 - 0.5 g(W r0) ...
    two = _circuit("all_to_all", signed=True, rate=0.5, steps=2)
    with torch.no_grad():
        two.weight.copy_(w)
    mu1 = mu0 + 0.5 * (mu0 - torch.relu(mu0) @ w - mu0)
    mu2 = mu1 + 0.5 * (mu0 - torch.relu(mu1) @ w - mu1)
    assert torch.allclose(two(mu0), mu2)


def test_inhibitory_interneuron_by_hand():
    circuit = _circuit("interneuron", signed=False)
    with torch.no_grad():
        circuit.weight_in.copy_(_t([1.0], [1.0], [2.0]))
        circuit.bias_in.fill_(-1.0)
        circuit.weight_out.copy_(_t([0.5, -1.0, 1.0]))
    mu0 = _t([1.0, -2.0, 3.0])
    # interneuron: relu(1 + 0 + 6 - 1) = 6; drive 6 * (0.5, -1, 1) = (3, -6, 6); g = relu
    assert torch.allclose(circuit(mu0), _t([-2.0, -2.0, -3.0]))


def test_tracked_linear_with_inhibition_matches_plain_torch():
    layer = _build({"type": "tracked_linear", "size": 4, "inhibition": "all_to_all"})
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu0 = x @ layer.weight + layer.bias
    expected = torch.relu(mu0 - torch.relu(torch.relu(mu0) @ layer.inhibitory.weight))
    assert torch.allclose(layer(x, TorchRate(), RunSettings()), expected)


# -- activity counters -------------------------------------------------------------------------


def test_counters_on_crafted_activations():
    layer = _build({"type": "tracked_linear", "size": 4})
    layer.train()
    layer._track(_t([1.0, 0.0, 0.0, 0.0], [2.0, 3.0, 0.0, 0.0]))
    layer.eval()
    layer._track(_t([9.0, 9.0, 9.0, 9.0]))  # evaluation is not counted
    taken = layer.take_activity()
    assert metrics.active_fraction(taken["active_count"], taken["sample_count"], 4) == 3 / 8
    assert torch.equal(taken["activity_sum"], _t(3.0, 3.0, 0.0, 0.0))
    assert metrics.dead_count(taken["activity_sum"]) == 2
    assert metrics.dead_count(_t(1e-6, 2e-5)) == 1
    assert math.isclose(metrics.activity_entropy(taken["activity_sum"]), 1.0, rel_tol=1e-9)
    assert math.isclose(metrics.activity_entropy(torch.ones(8, dtype=torch.float64)), 3.0)
    assert layer.take_activity()["sample_count"] == 0  # reset


def test_non_relu_counts_above_threshold():
    layer = _build({"type": "tracked_linear", "size": 3, "activation": "tanh"})
    layer.train()
    layer._track(_t([5e-5, -2e-4, 0.3]))
    taken = layer.take_activity()
    assert taken["active_count"] == 2
    assert torch.equal(taken["activity_sum"], _t(0.0, 1.0, 1.0))


def test_encoder_decoder_cosine():
    enc = _t([1.0, 0.0], [0.0, 2.0])
    dec = _t([3.0, 0.0], [0.0, -1.0])
    assert math.isclose(metrics.encoder_decoder_cosine(enc, dec), 0.0, abs_tol=1e-12)
    assert math.isclose(metrics.encoder_decoder_cosine(enc, enc * 5), 1.0)


# -- noise -------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_noise_has_the_configured_sigma(noise):
    config = resolve_config({**tasks.NoisyDenoising.example, "task": {
        "type": "noisy_denoising", "noise_std": 0.7, "noise": noise},
        "training_params": {"epoch_number": 1}})
    task = tasks.NoisyDenoising(config["task"], config)
    x = torch.zeros(400, 500, dtype=torch.float64)
    noisy, target = task.batch(x, None, torch.Generator().manual_seed(0), training=True)
    assert torch.equal(target, x)
    n = noisy.flatten()
    assert abs(float(n.std()) - 0.7) < 0.01 and abs(float(n.mean())) < 0.01
    excess_kurtosis = float(((n / n.std()) ** 4).mean()) - 3
    assert abs(excess_kurtosis - (3.0 if noise == "laplace" else 0.0)) < 0.2
    again, _ = task.batch(x, None, torch.Generator().manual_seed(0), training=False)
    assert torch.equal(again, noisy)  # on at evaluation, reproducible from the generator


# -- data --------------------------------------------------------------------------------------


def test_shipped_vectors_regenerate(shared_data: Path):
    rng = np.random.default_rng(14)
    atoms = rng.normal(size=(24, 16))
    codes = rng.exponential(size=(300, 24)) * (rng.random((300, 24)) < 0.15)
    assert np.array_equal(np.load(shared_data / "sparse" / "vectors.npy"),
                          (codes @ atoms).astype(np.float32))


def test_npy_vectors_splits_from_the_seed(shared_data: Path):
    options = {"data_dir": str(shared_data), "val_fraction": 0.2, "test_fraction": 0.1}
    splits = {s: load_dataset("npy_vectors", s, options=options) for s in ("train", "val",
                                                                         "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [210, 60, 30]
    rows = split_rows(300, 0.2, 0.1, 0)
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(300))
    array = np.load(shared_data / "sparse" / "vectors.npy").astype(np.float64)
    assert np.array_equal(splits["val"].inputs, array[rows["val"]])
    assert splits["train"].targets is None
    other = load_dataset("npy_vectors", "val", options={**options, "seed": 1})
    assert not np.array_equal(other.inputs, splits["val"].inputs)


def test_npy_vectors_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.npy")):
        load_dataset("npy_vectors", "train", options={"path": str(tmp_path / "nope.npy")})


# -- config errors -----------------------------------------------------------------------------


def _raw(entry: dict, task: dict | None = None) -> dict:
    return {"dataset": "npy_vectors", "task": task or {"type": "denoising"},
            "network_layout": {"n_inputs": 16, "layers": [
                entry, {"type": "linear", "size": 16, "activation": "identity"}]},
            "training_params": {"epoch_number": 1}}


@pytest.mark.parametrize("entry, task, message", [
    ({"type": "topk_linear", "size": 8, "k": 9}, None, r"\.k = 9: expected 0 <= k <= size \(8\)"),
    ({"type": "topk_linear", "size": 8, "k": 2, "mode": "max"}, None,
     r"mode = 'max': expected mask, subtract"),
    ({"type": "topk_linear", "size": 8, "k": 2, "k_schedule": "cosine"}, None,
     "k_schedule = 'cosine'"),
    ({"type": "topk_linear", "size": 8, "k": 4, "k_start": 2}, None, "k_start = 2"),
    ({"type": "tracked_linear", "size": 8}, {"type": "denoising", "noise_std": -0.1},
     r"noise_std = -0.1: expected a number >= 0"),
    ({"type": "tracked_linear", "size": 8}, {"type": "noisy_denoising", "noise": "pink"},
     "noise = 'pink'"),
    ({"type": "tracked_linear", "size": 8, "inhibition": "lateral"}, None,
     "inhibition = 'lateral'"),
    ({"type": "tracked_linear", "size": 8, "inhibition_signed": True}, None,
     "inhibition = 'none'"),
    ({"type": "topk_linear", "size": 8, "k": -1}, None, r"\.k = -1: expected an integer >= 0"),
    ({"type": "topk_linear", "size": 8, "k": 2.5}, None, r"\.k = 2.5: expected an integer"),
    ({"type": "topk_linear", "size": 8}, None, "missing required key 'k'"),
    ({"type": "topk_linear", "size": 8, "k": 2, "k_schedule": "linear", "k_epochs": 0}, None,
     r"k_epochs = 0: expected an integer > 0"),
    ({"type": "tracked_linear", "size": 8}, {"type": "denoising", "noise_std": math.nan},
     "noise_std = nan: expected a finite number"),
])
def test_bad_config_is_a_clear_error(entry, task, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(_raw(entry, task))


# -- runs --------------------------------------------------------------------------------------


def _mnist_run(sigma: float, monkeypatch, shared_data: Path, epochs: int = 1,
               layer: dict | None = None) -> Trainer:
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    config = resolve_config({
        "dataset": "mnist_unlabelled", "data": {"normalise": "unit"},
        "task": {"type": "denoising", "noise_std": sigma},
        "network_layout": {"n_inputs": 784, "layers": [
            layer or {"type": "tracked_linear", "size": 48, "init": "uniform"},
            {"type": "linear", "size": 784, "activation": "identity", "init": "uniform"}]},
        "training_params": {"epoch_number": epochs, "batch_size": 100,
                            "batch_size_eval": 2000, "learning_rate": 0.001,
                            "torch_seed": 4, "max_grad_norm": 1.0}})
    trainer = Trainer(config, "cpu")
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer


def test_sparsity_increases_with_sigma(monkeypatch, shared_data: Path):
    fractions = [_mnist_run(s, monkeypatch, shared_data).history["active_fraction"][-1]
                 for s in (0.0, 0.8)]
    assert fractions[1] < 0.5 * fractions[0], fractions


def test_topk_run_continues_from_a_checkpoint_and_plots(monkeypatch, shared_data: Path,
                                                         tmp_path: Path):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    config = resolve_config(_raw({"type": "topk_linear", "size": 20, "k": 4,
                                  "k_schedule": "linear", "k_epochs": 2, "mode": "subtract"}))
    config["training_params"].update(epoch_number=3, batch_size=32)
    first = Trainer(config, "cpu")
    first.train_epoch()
    snapshot = first.checkpoint()
    from snnsim.checkpoint import load_checkpoint, save_checkpoint

    snapshot = load_checkpoint(save_checkpoint(tmp_path / "c.h5", snapshot))
    expected = [first.train_epoch() for _ in range(2)]
    resumed = Trainer(config, "cpu")
    resumed.restore(snapshot)
    assert resumed.network.layers[0].k == 12  # floor(20 - 16 / 2)
    again = [resumed.train_epoch() for _ in range(2)]
    for a, b in zip(expected, again):
        a.pop("epoch_seconds"), b.pop("epoch_seconds")
        assert a == b
    assert resumed.history["k"] == [20.0, 12.0, 4.0]
    assert {"active_fraction", "dead_neurons", "activity_entropy",
            "enc_dec_cosine"} <= set(resumed.history)
    evaluations = {s: resumed.evaluate(s, keep_hidden=True) for s in ("train", "val", "test")}
    figures = plots._draw(resumed, evaluations, {})
    assert {"sparse_activity_curves", "sparse_active_histogram", "receptive_fields"} == \
        set(figures)  # 16 inputs: 4 x 4 receptive fields


# -- the sweeps ----------------------------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parents[1] / "experiment_configs"
ISSUE_COLUMNS = ["sigma", "k", "active_fraction", "dead_neurons", "loss"]
SIGMAS = [0, 0.05, 0.1, 0.3, 0.8, 1.5, 3, 10]


def test_shipped_sweep_plans_the_eight_sigma_and_two_top_k_points():
    loaded = sweep.load_sweep(CONFIGS / "sparse_coding_sweep.yaml")
    assert list(loaded.columns)[:5] == ISSUE_COLUMNS
    points = sweep.plan(loaded)  # (every config resolved, too)
    assert [p.name for p in points] == [f"00{i}_noise_std={s:g}" for i, s in enumerate(SIGMAS)
                                        ] + ["008_mode=mask", "009_mode=subtract"]
    base = yaml.safe_load((CONFIGS / "sparse_coding_mnist.yaml").read_text())
    relu = base["network_layout"]["layers"][0]
    topk = [{"type": "topk_linear", "size": 1000, "k": 100, "mode": mode}
            for mode in ("mask", "subtract")]
    assert [p.config["network_layout"]["layers"][0] for p in points] == [relu] * 8 + topk
    assert [p.config["task"]["noise_std"] for p in points] == SIGMAS + [0.8, 0.8]
    for point in points:  # nothing else differs from the base (but the epoch budget)
        config = yaml.safe_load(yaml.safe_dump(point.config))
        config["network_layout"]["layers"][0] = relu
        config["task"]["noise_std"] = base["task"]["noise_std"]
        assert config["training_params"].pop("epoch_number") == 15
        assert config == {**base, "training_params": {
            k: v for k, v in base["training_params"].items() if k != "epoch_number"}}
        assert resolve_config(point.config)["network_layout"]["layers"][0]["size"] == 1000
    rows = sweep.summary_rows(loaded, points, {})
    assert [r["sigma"] for r in rows] == [f"{s:g}" for s in SIGMAS] + ["0.8", "0.8"]
    assert [(r["layer"], r["mode"], r["width"]) for r in rows] == [
        ("tracked_linear", None, "1000")] * 8 + [("topk_linear", "mask", "1000"),
                                                 ("topk_linear", "subtract", "1000")]
    assert all(r["k"] is None for r in rows)  # the k of the last epoch, once trained


def _tiny(tmp_path: Path, shared_data: Path, sigmas: list[float], k: int = 4) -> Path:
    """The shipped sweep file (its columns, sub-grids, its base's task) on the shipped
    16-d vectors (tests/data/sparse) with 16 hidden units (Top-K: k of them), `sigmas`
    for the ReLU layer, one epoch per point."""
    data = yaml.safe_load((CONFIGS / "sparse_coding_sweep.yaml").read_text())
    data["base"] = str(CONFIGS / data["base"])
    relu, topk = data["grid"]
    relu["task.noise_std"] = sigmas
    topk["overrides"]["network_layout.layers.0"] = {"type": "topk_linear", "size": 16, "k": k}
    data["overrides"].update({
        "training_params.epoch_number": 1, "dataset": "npy_vectors",
        "data": {"path": "sparse/vectors.npy", "data_dir": str(shared_data)},
        "network_layout.n_inputs": 16, "network_layout.layers.1.size": 16,
        "network_layout.layers.0": {"type": "tracked_linear", "size": 16,
                                    "activation": "relu", "init": "uniform"}})
    path = tmp_path / "sparse_coding_sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_sweep_writes_the_issue_columns_with_k_and_eval_draws_sigma(tmp_path, shared_data,
                                                                         capsys):
    out = tmp_path / "sweep"
    sweep.run_sweep(sweep.load_sweep(_tiny(tmp_path, shared_data, [0, 0.8])), output=out,
                    use_ray=False, progress=False)
    rows = _read(out / "summary.csv")
    assert list(rows[0])[:7] == ["point", "status", *ISSUE_COLUMNS]
    for row in rows:
        assert row["status"] == "ok"
        assert row["active_fraction"] == row["final_active_fraction"] != ""
        assert row["dead_neurons"] == row["final_dead_neurons"] != ""
        assert row["loss"] == row["final_val_loss"] != ""
    # the dense layer has no k (empty), the Top-K points' last k is 4
    assert [(r["sigma"], r["layer"], r["mode"], r["k"]) for r in rows] == [
        ("0", "tracked_linear", "", ""), ("0.8", "tracked_linear", "", ""),
        ("0.8", "topk_linear", "mask", "4"), ("0.8", "topk_linear", "subtract", "4")]
    # mask keeps at most k = 4 of the 16 units, subtract at most k - 1
    assert 0 < float(rows[2]["active_fraction"]) <= 4 / 16
    assert 0 < float(rows[3]["active_fraction"]) <= 3 / 16
    assert cli.main(["eval", str(out)]) == 0
    assert {p.name for p in (out / "plots").iterdir()} == {"active_fraction_vs_sigma.png",
                                                          "sweep_loss_vs_noise_std.png"}
    assert "plots: 2 files" in capsys.readouterr().out
    figure = plots.plot_active_vs_sigma(sweep.read_sweep_table(out))["active_fraction_vs_sigma"]
    lines = {line.get_label(): list(zip(*line.get_data())) for line in figure.axes[0].lines}
    assert lines["tracked_linear, 16 units"] == [
        (0.0, float(rows[0]["active_fraction"])), (0.8, float(rows[1]["active_fraction"]))]
    assert lines["topk_linear (mask), 16 units, k = 4"] == [
        (0.8, float(rows[2]["active_fraction"]))]
    assert lines["topk_linear (subtract), 16 units, k = 4"] == [
        (0.8, float(rows[3]["active_fraction"]))]
    assert [t.get_text() for t in figure.axes[0].texts] == ["k=4", "k=4"]


def _table(rows: list[dict], tmp_path: Path) -> sweep.SweepTable:
    return sweep.SweepTable(tmp_path / "sigma_sweep", ["task.noise_std"],
                            {"sigma": "task.noise_std"}, rows)


def test_active_fraction_against_sigma_figure(tmp_path):
    relu = [{"point": f"00{i}", "status": "ok", "sigma": s, "layer": "tracked_linear",
             "width": "100", "active_fraction": f, "k": ""}
            for i, (s, f) in enumerate([("0.8", "0.1"), ("0", "0.6"), ("10", "0.3")])]
    topk = [{"point": "003", "status": "ok", "sigma": "0.8", "layer": "topk_linear",
             "mode": "mask", "width": "100", "active_fraction": "0.09", "k": "10.0"},
            {"point": "004", "status": "failed: x", "sigma": "3", "layer": "topk_linear",
             "mode": "mask", "width": "100", "active_fraction": "", "k": ""}]
    table = _table(relu + topk, tmp_path)
    (plot,) = [p for p in sweep.SWEEP_PLOTS.values() if p.name == "sparse_active_vs_sigma"]
    assert plot.applies(table)
    figure = plot.draw(table)["active_fraction_vs_sigma"]
    (ax,) = figure.axes
    lines = {line.get_label(): line for line in ax.lines}
    assert list(zip(*lines["tracked_linear, 100 units"].get_data())) == [
        (0.0, 0.6), (0.8, 0.1), (10.0, 0.3)]
    marked = lines["topk_linear (mask), 100 units, k = 10"]
    assert list(zip(*marked.get_data())) == [(0.8, 0.09)] and marked.get_marker() == "s"
    assert [t.get_text() for t in ax.texts] == ["k=10"]
    published = lines["published, CIFAR-10 latents, 100 units"]  # the sweep's width
    assert list(published.get_ydata()) == list(plots.PUBLISHED_ACTIVE[100])
    assert list(zip(*lines["published, MNIST, 10,000 units"].get_data())) == [(0, .96),
                                                                               (10, .067)]
    assert ax.get_xscale() == "symlog"
    assert not plot.applies(_table([{"point": "0", "status": "ok", "sigma": "0.8",
                                     "active_fraction": "nan"}], tmp_path))
    assert not plot.applies(_table([{"point": "0", "status": "ok", "lr": "0.8",
                                     "accuracy": "0.5"}], tmp_path))
    raw = _table([{"point": "0", "status": "ok", "task.noise_std": "0.3",  # no named columns
                   "final_active_fraction": "0.2", "final_k": "5"}], tmp_path)
    (ax,) = plot.draw(raw)["active_fraction_vs_sigma"].axes
    first = ax.lines[0]
    assert (first.get_label(), list(zip(*first.get_data()))) == ("points, k = 5", [(0.3, 0.2)])


def test_mnist_unlabelled_is_mnist_values_without_labels(shared_data: Path):
    options = {"data_dir": str(shared_data), "normalise": "unit"}
    plain = load_dataset("mnist_unlabelled", "val", options=options)
    labelled = load_dataset("mnist_values", "val", options=options)
    assert np.array_equal(plain.inputs, labelled.inputs)
    assert plain.targets is None and plain.n_classes is None
