"""Tests of the eval plots: the files `write_all` writes and the numbers behind them."""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import yaml

from snnsim import plots
from snnsim.config import resolve_config
from snnsim.datasets import Dataset, load_dataset
from snnsim.training import Trainer

CONFIG = Path(__file__).resolve().parents[1] / "experiment_configs" / "yin_yang_small.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_SAMPLES = 300  # a slice of each Yin-Yang split keeps training and plotting fast
COMMON = ["confusion_train", "confusion_test", "output_times_by_class", "weight_histograms",
          "weight_matrices", "spike_time_histograms"]
YIN_YANG = ["yin_yang_classification", "yin_yang_output_maps"]
MAP_RESOLUTION = 30  # coarser than the default 100 to keep the tests fast


def _raw_config(**changes) -> dict:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["training_params"].update(epoch_number=2, epoch_snapshots=[], batch_size=50,
                                  batch_size_eval=150)
    raw.update(changes)
    return raw


def _small_yin_yang() -> dict[str, Dataset]:
    datasets = {}
    for split in ("train", "val", "test"):
        full = load_dataset("yin_yang", split)
        datasets[split] = Dataset("yin_yang", split, full.inputs[:N_SAMPLES],
                                  full.labels[:N_SAMPLES], full.n_classes,
                                  coordinates=full.coordinates[:N_SAMPLES])
    return datasets


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG file."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_MAGIC, f"{path.name} is not a PNG file"
    return struct.unpack(">II", header[16:24])


def _check_pngs(written: list[Path], folder: Path, names: list[str]) -> None:
    assert sorted(written) == sorted(folder / f"{name}.png" for name in names)
    for path in written:
        width, height = _png_size(path)
        assert 300 <= width <= 4000 and 300 <= height <= 2000, (path.name, width, height)
        assert path.stat().st_size > 10_000, path.name


@pytest.fixture(scope="module")
def yin_yang_trainer() -> Trainer:
    trainer = Trainer(resolve_config(_raw_config()), "cpu", datasets=_small_yin_yang())
    trainer.train_epoch()
    return trainer


@pytest.fixture(scope="module")
def yin_yang_plots(yin_yang_trainer, tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("plots")
    figures_before = plt.get_fignums()
    written = plots.write_all(yin_yang_trainer, folder, map_resolution=MAP_RESOLUTION)
    assert plt.get_fignums() == figures_before, "write_all left pyplot figures open"
    return folder, written


def test_yin_yang_writes_every_plot(yin_yang_plots):
    folder, written = yin_yang_plots
    _check_pngs(written, folder, COMMON + ["training_curves"] + YIN_YANG)
    maps_width, maps_height = _png_size(folder / "yin_yang_output_maps.png")
    assert maps_width > 3 * maps_height  # three output neurons and the class map in a row


def test_confusion_counts_match_a_direct_count():
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    predictions = np.array([0, 1, -1, 2, 0, -1, 1])
    counts = plots.confusion_counts(labels, predictions, 3)
    expected = np.zeros((3, 4), dtype=int)
    for label, prediction in zip(labels, predictions):
        expected[label, 3 if prediction < 0 else prediction] += 1
    np.testing.assert_array_equal(counts, expected)


def test_confusion_figure_of_a_trained_network(yin_yang_trainer):
    evaluation = yin_yang_trainer.evaluate("test")
    counts = plots.confusion_counts(evaluation.labels, evaluation.predictions, 3)
    assert counts.sum() == N_SAMPLES
    np.testing.assert_array_equal(counts.sum(1), np.bincount(evaluation.labels, minlength=3))
    assert np.trace(counts) == round(evaluation.accuracy * N_SAMPLES)
    figure = plots.plot_confusion(evaluation, ["yin", "yang", "dot"], "test")
    ax = figure.axes[0]
    cells = [int(text.get_text()) for text in ax.texts]
    assert cells == counts.ravel().tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["yin", "yang", "dot", "silent"]
    assert "accuracy" in ax.get_title()
    assert len(figure.axes) == 2  # the matrix and its colorbar


def test_output_time_stats_ignore_silent_outputs():
    inf = np.inf
    outputs = np.array([[1.0, 2.0], [3.0, inf], [5.0, 4.0], [inf, inf]])
    labels = np.array([0, 0, 1, 1])
    mean, std, silent = plots.output_time_stats(outputs, labels, 2)
    np.testing.assert_allclose(mean, [[2.0, 2.0], [5.0, 4.0]])
    np.testing.assert_allclose(std, [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(silent, [[0.0, 0.5], [0.5, 0.5]])


def test_grid_inputs_and_network_outputs(yin_yang_trainer):
    points, values = plots.yin_yang_grid(10)
    assert points.shape == (100, 2) and values.shape == (100, 4)
    np.testing.assert_allclose(values[:, 0] + values[:, 2], 1.0)
    np.testing.assert_allclose(values[:, :2], points)
    # row by row from y = 0: imshow(origin="lower") puts each pixel where its point lies
    assert points[1, 0] > points[0, 0] and points[10, 1] > points[0, 1]
    data = yin_yang_trainer.dataset("test")
    np.testing.assert_array_equal(plots.network_outputs(yin_yang_trainer, data.inputs),
                                  yin_yang_trainer.evaluate("test").outputs)


def test_figures_are_labelled(yin_yang_trainer):
    evaluation = yin_yang_trainer.evaluate("test")
    histograms = plots.plot_spike_time_histograms(evaluation, "test")
    for ax in histograms.axes:
        assert "tau_s" in ax.get_xlabel() and ax.get_ylabel()
        assert all("silent" in text.get_text() for text in ax.get_legend().get_texts())
    matrices = plots.plot_weight_matrices(yin_yang_trainer)
    images = [ax.images[0] for ax in matrices.axes if ax.images]
    assert len(images) == len(yin_yang_trainer.network.layers)
    for image in images:
        low, high = image.get_clim()
        assert low == pytest.approx(-high)
    maps = plots.plot_yin_yang_maps(yin_yang_trainer, ["yin", "yang", "dot"], MAP_RESOLUTION)
    titles = [ax.get_title() for ax in maps.axes]
    assert sum("output 'yin'" in title for title in titles) == 1
    assert any(ax.get_ylabel().startswith("output spike time") for ax in maps.axes)  # colorbar


class _Messages(logging.Handler):
    """Collects the messages logged while it is attached."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def xor_plots(tmp_path_factory) -> tuple[Trainer, Path, list[Path], list[str]]:
    """Plots of an untrained XOR network: no history, and not Yin-Yang; and the log."""
    raw = _raw_config(dataset="xor")
    raw["network_layout"]["layer_sizes"] = [10, 2]
    trainer = Trainer(resolve_config(raw), "cpu")
    folder = tmp_path_factory.mktemp("xor_plots")
    handler = _Messages()
    logging.getLogger("snnsim.plots").addHandler(handler)
    try:
        written = plots.write_all(trainer, folder)
    finally:
        logging.getLogger("snnsim.plots").removeHandler(handler)
    return trainer, folder, written, handler.messages


def test_empty_history_leaves_out_the_curves(xor_plots):
    trainer, folder, written, messages = xor_plots
    assert not trainer.history["train_loss"]
    assert not (folder / "training_curves.png").exists()
    _check_pngs(written, folder, COMMON)
    assert any("training_curves.png is left out" in message for message in messages)


def test_xor_has_no_yin_yang_maps(xor_plots):
    trainer, folder, written, _ = xor_plots
    assert not any(path.name.startswith("yin_yang") for path in written)
    assert not list(folder.glob("yin_yang*"))
    figure = plots.plot_confusion(trainer.evaluate("test"), plots.class_names("xor", 2), "test")
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["x = y", "x != y"]


def test_class_names_fall_back_to_indices():
    assert plots.class_names("yin_yang", 3) == ["yin", "yang", "dot"]
    assert plots.class_names("mnist", 10) == [str(i) for i in range(10)]
    assert plots.class_names("yin_yang", 4) == ["0", "1", "2", "3"]


def test_network_outputs_take_no_gradient(yin_yang_trainer):
    _, values = plots.yin_yang_grid(4)
    outputs = plots.network_outputs(yin_yang_trainer, values)
    assert outputs.shape == (16, 3) and outputs.dtype == np.float64
    assert torch.is_grad_enabled()  # the decorator restores the caller's grad mode
