"""Net Fragments family: S1 line filters, the lateral layer (supports, fold-back, cell
selection, Hebbian rule), the straight-line data, the evaluation protocol, training, the
importer of the published network, and config errors."""
from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnsim.config import resolve_config
from snnsim.errors import ConfigError
from snnsim.families.fragments.commands import import_netfragments, read_published
from snnsim.families.fragments.data import (
    LineStream,
    all_lines,
    draw_line,
    evaluation_lines,
    interrupt,
    line_indices,
    random_lines,
)
from snnsim.families.fragments.evaluation import PUBLISHED as PUBLISHED_TABLE
from snnsim.families.fragments.evaluation import (
    evaluation_grid,
    flip_features,
    fragment_layers,
    line_metrics,
    run_lines,
    write_csv,
)
from snnsim.families.fragments.layers import FILTERS, LateralLayer, LineFeatures, lower_median
from snnsim.layers import LayerContext
from snnsim.network import neuron_params_from_config
from snnsim.training import Trainer

PUBLISHED = Path(__file__).parent / "data" / "netfragments" / "net-fragments.ckpt"


def _context(seed: int = 0) -> LayerContext:
    config = resolve_config({"dataset": "sine", "network_layout": {"n_inputs": 1, "layers": [
        {"type": "linear", "size": 1}]}, "training_params": {"epoch_number": 1}})
    return LayerContext(neuron_params_from_config(config), torch.Generator().manual_seed(seed))


def _entry(kind: str, **keys) -> dict:
    config = resolve_config({"dataset": "straight_lines", "network_layout": {
        "n_inputs": keys.get("height", 32) * keys.get("width", 32),
        "layers": [{"type": "line_features", "height": keys.get("height", 32),
                    "width": keys.get("width", 32)}, {"type": kind, **keys}]},
        "training_params": {"epoch_number": 1, "optimizer": "none"}})
    return config["network_layout"]["layers"][1]


def _lateral(n_features: int = 4, **keys) -> LateralLayer:
    entry = _entry("lateral", **keys)
    return LateralLayer(n_features * entry["height"] * entry["width"], entry, _context())


def _s1(**keys) -> LineFeatures:
    entry = resolve_config({"dataset": "straight_lines", "network_layout": {
        "n_inputs": 1024, "layers": [{"type": "line_features", **keys}]},
        "training_params": {"epoch_number": 1, "optimizer": "none"}})["network_layout"]["layers"][0]
    return LineFeatures(1024, entry, _context())


# -- S1 ------------------------------------------------------------------------------------------

def test_s1_each_orientation_wins_on_its_line():
    s1 = _s1()
    centre = 16
    images = torch.zeros(4, 32, 32, dtype=torch.float64)
    for k in range(-3, 4):
        images[0, centre + k, centre] = 1          # vertical
        images[1, centre - k, centre + k] = 1      # "/" (up-right)
        images[2, centre, centre + k] = 1          # horizontal
        images[3, centre + k, centre + k] = 1      # "\"
    a = s1.pre_activation(images.reshape(4, -1))
    at_centre = a[:, :, centre, centre]
    assert torch.equal(at_centre.argmax(1), torch.arange(4))
    assert torch.allclose(at_centre.diagonal(), torch.ones(4))  # a matching line gives 1
    out = s1(images.reshape(4, -1)).view(4, 4, 32, 32)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[0, 0, centre, centre] == 1 and out[0, 2, centre, centre] == 0


def test_s1_activations_and_larger_weights():
    images = torch.from_numpy(draw_line(((2, 16), (30, 16)))).reshape(1, -1)
    relu = _s1(activation="relu")(images)
    assert relu.min() >= 0 and relu.max() == pytest.approx(1.0)
    larger = _s1(larger_weights=True)
    assert larger.pre_activation(images)[0, 2, 16, 16] == pytest.approx(4.0 - 0.0)
    bern = _s1(activation="bernoulli")
    assert set(bern(images).unique().tolist()) <= {0.0, 1.0}


# -- S2 supports, fold-back, selection -------------------------------------------------------------

def test_support_matches_conv2d_and_a_hand_computed_case():
    layer = _lateral(n_features=1, height=5, width=5, alternative_cells=1, kernel_size=3,
                     timesteps=1, gamma=[1.0])
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator))
    x = (torch.rand(4, 2, 5, 5, generator=generator) < 0.4).float()
    reference = F.conv2d(x, layer.weight, padding=1)
    assert torch.allclose(layer.support(x), reference, atol=1e-6)
    # hand case: one active input at (2, 2) of channel 0 -> support at p is W[0, 0, 2 - p + 1]
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 2, 2] = 1
    s = layer.support(x)[0, 0]
    assert s[1, 1] == pytest.approx(0.9) and s[3, 3] == pytest.approx(0.1)
    assert s[2, 2] == pytest.approx(0.5) and s[1, 2] == pytest.approx(0.8)
    assert s[0, 0] == 0


@pytest.mark.parametrize("path", ["run", "run_reference"])
@pytest.mark.parametrize("fold_back", [True, False])
def test_lateral_step_with_and_without_fold_back(fold_back: bool, path: str):
    # one feature, one cell, kernel 3, m = support_factor * 3 = 3: a full 3x3 block of input
    # and weights 1 gives the centre support 9 + 1 (self) -> folded to 3 - (9 - 3) / 2 = 0
    layer = _lateral(n_features=1, height=5, width=5, alternative_cells=1, kernel_size=3,
                     timesteps=1, gamma=[1.0], support_factor=1.0, fold_back=fold_back,
                     threshold=0.5)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 1.0
    ff = torch.zeros(1, 1, 5, 5)
    ff[0, 0, 1:4, 1:4] = 1
    z, s = getattr(layer, path)(ff)
    raw = F.conv2d(ff, layer.weight[:, :1], padding=1)[0, 0]      # 9 at the centre
    folded = torch.where(raw > 3, 3 - 0.5 * (raw - 3), raw) if fold_back else raw
    expected = folded / folded.max()
    assert torch.allclose(s[0, 0, 0], expected)
    assert torch.equal(z[0, 0, 0], (expected >= 0.5).float())
    if fold_back:
        assert z[0, 0, 0, 2, 2] == 0 and z[0, 0, 0, 1, 2] == 1   # the crowded centre is inhibited
    else:
        assert z[0, 0, 0, 2, 2] == 1


def test_alternative_cell_selection_picks_the_best_match():
    layer = _lateral(n_features=1, height=5, width=5, alternative_cells=3, kernel_size=3,
                     timesteps=2, gamma=[1.0, 1.0])
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, 0, 1, 1] = 1.0               # every cell: its feature at the centre
        layer.weight[2, 0, 1, :] = 0.5               # cell 2 expects a horizontal line
        layer.weight[1, 0, :, 1] = 0.5               # cell 1 a vertical one
    x = torch.zeros(1, 4, 5, 5)
    x[0, 0, 2, :] = 1                                # a horizontal line through row 2
    mask = layer.select_cells(x)[0]
    # at (2, 2): cell 0 scores 3*1 - 1 = 2, cell 1: 3*1 - 3 = 0, cell 2: 3*3 - 3 = 6
    assert mask[:, 2, 2].tolist() == [False, False, True]
    assert torch.equal(mask.sum(0), torch.ones(5, 5, dtype=torch.long))
    # off the line (row 0): no match for anyone; cell 0 has the fewest weights
    assert mask[:, 0, 2].tolist() == [True, False, False]
    # the sparse kernels pick the same cells everywhere
    _, choice, _ = layer.run_chosen(x[:, :1])
    assert torch.equal(choice[0, 0], mask.long().argmax(0).int())
    # identical cells tie: the first wins
    with torch.no_grad():
        layer.weight[1:] = layer.weight[0]
    assert layer.select_cells(x)[0, 0].all()
    assert (layer.run_chosen(x[:, :1])[1] == 0).all()


@pytest.mark.parametrize("output", ["threshold", "bernoulli"])
def test_sparse_steps_match_the_dense_reference(output: str):
    # random weights in [0, 1] with zeros, random binary S1 maps: every cell, step and support
    layer = _lateral(n_features=2, height=12, width=10, alternative_cells=3, kernel_size=5,
                     timesteps=3, gamma=[1.0, 1.4, 2.0], output=output, support_factor=0.4)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        weight = torch.rand(layer.weight.shape, generator=generator)
        layer.weight.copy_(torch.where(weight < 0.6, 0.0, weight))
    ff = (torch.rand(5, 2, 12, 10, generator=generator) < 0.2).float()
    layer.generator.manual_seed(9)
    z_sparse, s_sparse = layer.run(ff)
    layer.generator.manual_seed(9)
    z_dense, s_dense = layer.run_reference(ff)
    assert z_dense.sum() > 0 and (s_dense > 14 * 0.4 / 10).any()   # fires; folds back somewhere
    assert torch.equal(z_sparse, z_dense)
    assert torch.allclose(s_sparse, s_dense, atol=1e-6)


def test_sparse_steps_match_the_dense_reference_on_the_published_network(tmp_path: Path):
    from snnsim.runs import load_trainer

    s1, s2 = fragment_layers(load_trainer(import_netfragments(PUBLISHED, tmp_path / "nf")).network)
    lines = evaluation_lines(60)[::12]
    images = torch.from_numpy(np.stack([interrupt(draw_line(line), line, 3) for line in lines]))
    s1.eval()
    s2.eval()
    ff = s1(images.reshape(len(images), -1)).view(-1, 4, 32, 32)
    ff, _ = flip_features(ff, 0.02, torch.Generator().manual_seed(0))
    z_sparse, s_sparse = s2.run(s2.binarise_input(ff))
    z_dense, s_dense = s2.run_reference(s2.binarise_input(ff))
    assert torch.equal(z_sparse, z_dense)
    assert torch.allclose(s_sparse, s_dense, atol=1e-6)


def test_lower_median_over_time():
    steps = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]]).t().float()[:, :, None]
    assert lower_median(steps)[:, 0].tolist() == [1.0, 0.0]
    assert torch.equal(lower_median(steps), torch.median(steps, 0).values)
    two = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).t()[:, :, None]
    assert lower_median(two)[:, 0].tolist() == [0.0, 1.0]


# -- Hebbian rule ----------------------------------------------------------------------------------

def _published_update(layer: LateralLayer, ff: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The published rule, one sample at a time: unfold, per-position outer products."""
    total = torch.zeros(layer.weight.shape[0], layer.weight[0].numel())
    for b in range(len(y)):
        x = F.unfold(torch.cat([ff[b:b + 1], y[b:b + 1]], 1), layer.kernel,
                     padding=layer.kernel // 2)[0].t()                   # [HW, Cin k k]
        yv = y[b].flatten(1).t()                                         # [HW, C]
        pos = yv[:, :, None] * x[:, None, :]
        neg = yv[:, :, None] * (1 - x[:, None, :]) + (1 - yv[:, :, None]) * x[:, None, :]
        update = (pos - neg).mean(0).clamp(min=0)
        total += (update - update.min()) / (update.max() - update.min() + 1e-10)
    return total.view(layer.weight.shape)


def test_hebbian_update_two_cells_by_hand():
    # 1 feature x 2 cells on a 1 x 3 strip, kernel 1: only the centre weight, x = [ff; y]
    layer = _lateral(n_features=1, height=1, width=3, alternative_cells=2, kernel_size=1,
                     timesteps=1, gamma=[1.0])
    ff = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).view(1, 2, 1, 3)
    # U[o, i] = (3 sum y_o x_i - sum y_o - sum x_i) / 3, clamped at 0, min-max scaled:
    # cell 0: ff (3*2 - 2 - 2)/3 = 2/3, y0 (3*2-2-2)/3 = 2/3, y1 (0-2-1)/3 < 0 -> 0
    # cell 1: ff (0-1-2)/3 -> 0, y0 -> 0, y1 (3-1-1)/3 = 1/3;  max 2/3 -> [[1, 1, 0], [0, 0, .5]]
    update = layer.hebbian_update(ff, y)
    expected = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.5]]).view(2, 3, 1, 1)
    assert torch.allclose(update, expected, atol=1e-6)


def test_hebbian_update_matches_the_published_rule_and_stays_in_range():
    layer = _lateral(n_features=2, height=7, width=6, alternative_cells=3, kernel_size=3,
                     timesteps=2, gamma=[1.0, 1.0], learning_rate=0.7)
    generator = torch.Generator().manual_seed(5)
    ff = (torch.rand(3, 2, 7, 6, generator=generator) < 0.3).float()
    y = (torch.rand(3, 6, 7, 6, generator=generator) < 0.2).float()
    assert torch.allclose(layer.hebbian_update(ff, y), _published_update(layer, ff, y),
                          atol=1e-5)
    for _ in range(5):
        out = layer(ff.flatten(1))
        layer.local_update(ff.flatten(1), out)
        assert layer.weight.min() >= 0 and layer.weight.max() <= 1


@pytest.mark.parametrize("output", ["threshold", "bernoulli"])
def test_training_is_the_published_loop_of_single_images(output: str):
    # local_update on a batch == the published loop (dense steps, median, update) image by
    # image, bit for bit in float32; the batch size changes nothing
    def layer() -> LateralLayer:
        return _lateral(height=16, width=16, alternative_cells=3, kernel_size=7, timesteps=3,
                        gamma=[1.2, 1.7, 2.2], output=output)

    lines = random_lines(8, seed=6, size=16)
    images = torch.from_numpy(np.stack([draw_line(line, 16) for line in lines])).float()
    ff = (F.conv2d(images[:, None], FILTERS[:, None], padding=2) > 0).float().flatten(1)
    batched, single, published = layer(), layer(), layer()
    for trained in (batched, single, published):
        trained.train()
        trained.generator.manual_seed(4)
    batched.local_update(ff, None)
    for image in ff:
        single.local_update(image[None], None)
        x = published.binarise_input(image.view(1, 4, 16, 16))
        steps, _ = published.run_reference(x)
        update = published.hebbian_update(x, lower_median(steps))
        published.weight.add_(0.2 * update).clamp_(0, 1)
    assert batched.weight.dtype == torch.float32
    assert (published.weight > 0).sum() > 2 * 24              # it learnt (24 at the start)
    assert torch.equal(single.weight, published.weight)
    if output == "threshold":
        assert torch.equal(batched.weight, published.weight)


# -- data and protocol -----------------------------------------------------------------------------

def test_lines_repeat_from_seed_and_pass_through_the_centre():
    assert random_lines(20, seed=4) == random_lines(20, seed=4)
    assert random_lines(20, seed=4) != random_lines(20, seed=5)
    for line in random_lines(50, seed=1) + evaluation_lines(60):
        image = draw_line(line)
        assert image[16, 16] == 1
        assert (line[0][0] + line[1][0]) == 32 and (line[0][1] + line[1][1]) == 32
    lines = evaluation_lines(60)
    assert lines[0] == ((2, 16), (30, 16)) and lines[1] == ((2, 17), (30, 15))
    assert len(set(lines)) == 60


def _published_generator_lines(seed: int, n_epochs: int, n_train: int, n_valid: int,
                               size: int) -> list[list[tuple]]:
    """The published run's training lines, written as its code draws them: the global
    `random` seeded by seed_everything, StraightLine._get_random_line_coords per access,
    the validation set's n_valid accesses before the first epoch and after each."""
    def coords():
        if random.random() < 0.5:
            x1, x2 = 2, size - 2
            y1 = random.randint(2, size - 2)
            y2 = size - y1
        else:
            y1, y2 = 2, size - 2
            x1 = random.randint(2, size - 2)
            x2 = size - x1
        return (x1, y1), (x2, y2)

    state = random.getstate()
    try:
        random.seed(seed)
        [coords() for _ in range(n_valid)]
        epochs = []
        for _ in range(n_epochs):
            epochs.append([coords() for _ in range(n_train)])
            [coords() for _ in range(n_valid)]
        return epochs
    finally:
        random.setstate(state)


def test_fresh_line_stream_is_the_published_generator():
    stream = LineStream(seed=1, n_train=300, validation_draws=4)
    reference = _published_generator_lines(1, 3, 300, 4, 32)
    assert [stream.epoch_lines(e) for e in range(3)] == reference
    # an epoch's lines depend on its index alone: asked out of order, or by a new stream
    assert stream.epoch_lines(1) == reference[1]
    assert LineStream(1, 300, 4).epoch_lines(2) == reference[2]
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        stream.epoch_lines(-1)
    assert reference[0] != reference[1]
    assert LineStream(2, 300, 4).epoch_lines(0) != reference[0]
    # every drawn line is in the table of all lines (58, the index maps back), through the centre
    table = all_lines(32)
    assert len(table) == 58 and len(set(table)) == 57   # (2, 2)-(30, 30) both ways
    for epoch in reference:
        for line, index in zip(epoch, line_indices(epoch)):
            assert table[index] == line and draw_line(line)[16, 16] == 1


def test_fresh_lines_train_on_the_published_stream():
    config = _small_config(epochs=2)
    config["data"].update(lines="fresh", seed=5, validation_draws=4)
    trainer = Trainer(config, "cpu")
    assert len(trainer.network_inputs("train")) == len(all_lines(16)) == 26
    expected = _published_generator_lines(5, 2, 24, 4, 16)
    for index, epoch in enumerate(expected):
        batches = trainer.task.training_batches(None, 26, 4, trainer.generator, index)
        assert [len(b) for b in batches] == [4] * 6
        images = trainer.network_inputs("train")[torch.cat(batches)]
        drawn = np.stack([draw_line(line, 16) for line in epoch]).reshape(24, -1)
        assert np.array_equal(images.numpy(), drawn)
    with pytest.raises(ValueError, match="all 26 lines, got 24 samples"):
        trainer.task.training_batches(None, 24, 4, trainer.generator)


def test_a_continued_run_trains_on_the_lines_of_an_uninterrupted_one():
    config = _small_config(epochs=3)
    config["data"].update(lines="fresh", seed=5, validation_draws=4)
    config["task"]["monitor_every"] = 0
    straight = Trainer(config, "cpu")
    for _ in range(3):
        straight.train_epoch()
    first = Trainer(config, "cpu")
    first.train_epoch()
    resumed = Trainer(config, "cpu")
    resumed.restore(first.checkpoint())
    resumed.train_epoch()
    resumed.train_epoch()
    weight = straight.network.layers[1].weight
    assert not torch.equal(weight, first.network.layers[1].weight)   # the epochs matter
    assert torch.equal(resumed.network.layers[1].weight, weight)


def test_training_the_final_config_gives_the_published_network():
    # experiment_configs/net_fragments.yaml (published stream, seed 1, 100 epochs) trains the
    # published network bit for bit: the checkpoint's weights are an independent reference of
    # the whole training (data, cell choice, steps, median, update, float32). About 40 s.
    from snnsim.config import load_config

    config = load_config(Path(__file__).parents[1] / "experiment_configs" / "net_fragments.yaml")
    config["task"]["monitor_every"] = 0
    trainer = Trainer(config, "cpu")
    for _ in range(config["training_params"]["epoch_number"]):
        trainer.train_epoch()
    published = torch.load(PUBLISHED, map_location="cpu", weights_only=True)[
        "lateral_network"]["model.s2.W_lateral"].reshape(40, 44, 11, 11)
    weight = trainer.network.layers[1].weight
    assert weight.dtype == published.dtype == torch.float32
    assert int((published > 0).sum()) == 2529
    assert torch.equal(weight, published)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_interruption_removes_n_pixels(n: int):
    line = ((2, 10), (30, 22))
    image = draw_line(line)
    broken = interrupt(image, line, n)
    assert image.sum() - broken.sum() == n and (broken <= image).all()
    removed = np.argwhere(image != broken)
    assert np.abs(removed - 16).max() <= (n + 1) // 2 + 1       # at the centre


@pytest.mark.parametrize("noise", [0.005, 0.05, 0.2])
def test_noise_flips_exactly_int_p_bits(noise: float):
    ff = (torch.rand(5, 4, 32, 32, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    noisy, mask = flip_features(ff, noise, torch.Generator().manual_seed(1))
    assert (mask.flatten(1).sum(1) == int(noise * 4096)).all()
    assert torch.equal(noisy[mask], 1 - ff[mask]) and torch.equal(noisy[~mask], ff[~mask])


def test_line_metrics_by_hand():
    baseline = torch.zeros(1, 4, 1, 4)
    baseline[0, 0, 0, :2] = 1
    z = torch.zeros(1, 4, 1, 4)
    z[0, 0, 0, 0] = 1
    z[0, 1, 0, 3] = 1
    result = {"merged": z, "mask": None, "ff": z}
    removed = torch.tensor([[[False, True, False, False]]])
    metrics = line_metrics(result, baseline, removed)
    assert metrics["recall"] == pytest.approx(0.5)       # one of two baseline bits
    assert metrics["precision"] == pytest.approx(0.5)    # one of two active bits right
    assert metrics["accuracy"] == pytest.approx(1 - 2 / 16)
    assert metrics["reconstruction"] == pytest.approx(0.0)   # the removed pixel stays off
    assert metrics["noise_reduction"] == 0.0


# -- training --------------------------------------------------------------------------------------

def _small_config(epochs: int = 2, **lateral) -> dict:
    return resolve_config({
        "dataset": "straight_lines", "data": {"n_train": 24, "n_eval": 12, "size": 16},
        "task": {"type": "line_completion", "monitor_every": 0},
        "network_layout": {"n_inputs": 256, "layers": [
            {"type": "line_features", "height": 16, "width": 16},
            {"type": "lateral", "height": 16, "width": 16, "alternative_cells": 3,
             "kernel_size": 7, "timesteps": 2, "gamma": [1.2, 2.2], **lateral}]},
        "training_params": {"epoch_number": epochs, "optimizer": "none", "batch_size": 4,
                            "batch_size_eval": 12, "torch_seed": 3, "dtype": "float32"}})


def test_short_training_raises_noise_reduction():
    trainer = Trainer(_small_config(), "cpu")
    before = evaluation_grid(trainer, noises=(0.05,), gaps=(0,))[0]
    initial = trainer.network.layers[1].weight.clone()
    trainer.train_epoch()
    after = evaluation_grid(trainer, noises=(0.05,), gaps=(0,))[0]
    weight = trainer.network.layers[1].weight
    assert not torch.equal(weight, initial) and weight.min() >= 0 and weight.max() <= 1
    assert after["noise_reduction"] > before["noise_reduction"]


def test_bernoulli_runs_repeat_and_continue_identically(tmp_path: Path):
    config = _small_config(output="bernoulli")
    config["network_layout"]["layers"][0]["activation"] = "bernoulli"
    first = Trainer(config, "cpu")
    first.train_epoch()
    snapshot = first.checkpoint()
    first.train_epoch()
    resumed = Trainer(config, "cpu")
    resumed.restore(snapshot)
    resumed.train_epoch()
    assert torch.equal(first.network.layers[1].weight, resumed.network.layers[1].weight)


# -- importer --------------------------------------------------------------------------------------

def test_import_published_network(tmp_path: Path):
    results = import_netfragments(PUBLISHED, tmp_path / "imported")
    raw = torch.load(PUBLISHED, map_location="cpu", weights_only=True)["lateral_network"]["model.s2.W_lateral"]
    from snnsim.runs import load_trainer

    trainer = load_trainer(results)
    s1, s2 = fragment_layers(trainer.network)
    assert s2.weight.shape == (40, 44, 11, 11) and raw.shape == (40, 5324, 1, 1)
    # unfold order (channel, row, column): cell 7 <- channel 0 at row 5, column 5 is index 610
    assert s2.weight[7, 0, 5, 5] == raw[7, 0 * 121 + 5 * 11 + 5, 0, 0]
    assert s2.weight[13, 17, 2, 9] == raw[13, 17 * 121 + 2 * 11 + 9, 0, 0]
    assert s2.entry["gamma"] == [1.2, 1.4, 1.6, 1.8, 2.0, 2.2] and s2.entry["threshold"] == 0.5
    assert "MIT" in (results / "IMPORTED.txt").read_text()
    # the published network completes lines: its cells cover the intact lines' S1 bits
    result = run_lines(s1, s2, torch.from_numpy(draw_line(((2, 16), (30, 16))))[None])
    assert result["merged"][0, 2, 16, 4:28].all()


def test_imported_network_reproduces_the_published_table(tmp_path: Path):
    # with the published evaluation's own flips (seed 1, one randperm per line) every figure
    # of FAMILIES.md section 2 comes out (published to 3 digits; recall 0.3525 at 0.2)
    from snnsim.runs import load_trainer

    trainer = load_trainer(import_netfragments(PUBLISHED, tmp_path / "nf"))
    assert trainer.network.layers[1].weight.dtype == torch.float32
    rows = evaluation_grid(trainer, noises=(0.01, 0.05, 0.1, 0.2), gaps=(0,))
    for row, (noise_reduction, recall, precision) in zip(rows, PUBLISHED_TABLE["noise"].values()):
        assert row["noise_reduction"] == pytest.approx(noise_reduction, abs=6e-4)
        assert row["recall"] == pytest.approx(recall, abs=6e-4)
        assert row["precision"] == pytest.approx(precision, abs=6e-4)
    rows = evaluation_grid(trainer, noises=(0.0,), gaps=range(1, 8))
    reconstruction = [row["reconstruction"] for row in rows]
    assert reconstruction == pytest.approx(PUBLISHED_TABLE["reconstruction"], abs=6e-4)


def test_import_rejects_truncated_and_malicious_files(tmp_path: Path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(PUBLISHED.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated.ckpt"):
        read_published(truncated)

    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.ckpt"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"config": Evil()}, protocol=2))
        archive.writestr("evil/version", "3\n")
    evil.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="evil.ckpt"):
        read_published(evil)
    assert not marker.exists()

    wrong = tmp_path / "wrong.ckpt"
    torch.save({"config": {}, "lateral_network": {}}, wrong)
    with pytest.raises(ValueError, match="W_lateral"):
        read_published(wrong)


# -- config errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("keys, message", [
    ({"kernel_size": 10}, "kernel_size = 10: expected an odd integer"),
    ({"threshold": 1.0}, r"threshold = 1.0: expected a number in \(0, 1\)"),
    ({"threshold": 0}, r"threshold = 0: expected a number in \(0, 1\)"),
    ({"learning_rate": -0.1}, "learning_rate = -0.1: expected a number >= 0"),
    ({"timesteps": 3}, "gamma has 6 exponents but timesteps = 3"),
    ({"output": "sigmoid"}, "output = 'sigmoid'"),
])
def test_bad_lateral_parameters(keys: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        _entry("lateral", **keys)


def test_bad_shapes():
    with pytest.raises(ConfigError, match="not a whole number of 32 x 32 maps"):
        LateralLayer(1000, _entry("lateral"), _context())
    with pytest.raises(ConfigError, match="single-channel image"):
        LineFeatures(2048, _entry("line_features"), _context())


def test_csv_columns(tmp_path: Path):
    rows = [{"noise": 0.01, "line_interrupt": 2, "noise_reduction": 0.9, "reconstruction": 0.5,
             "accuracy": 0.99, "precision": 0.8, "recall": 0.7}]
    text = write_csv(rows, tmp_path / "grid.csv").read_text().splitlines()
    assert text[0] == "noise,line_interrupt,noise_reduction,reconstruction,accuracy,precision,recall"
    assert text[1].startswith("0.01,2,0.9")


def test_eval_command_on_the_imported_network(tmp_path: Path):
    """`eval` writes the grid's CSV and the family's plots; the core regression plot (one
    target value per output value) is left out: S2's cells x pixels are no line's pixels."""
    import experiment

    results = import_netfragments(PUBLISHED, tmp_path / "nf")
    assert experiment.main(["eval", str(results)]) == 0
    assert (results / "net_fragments_eval.csv").is_file()
    written = {path.name for path in (results / "plots").glob("*.png")}
    assert written and "regression_test.png" not in written
