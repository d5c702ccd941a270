"""The plots of a trained network, as `python experiment.py eval <results-dir>` writes them.

`write_all(trainer, folder)` writes PNGs into `folder` and returns their paths:

* ``confusion_train.png``, ``confusion_test.png``: counts, colours normalised per true
  class, with the "silent" prediction (the selected output did not spike) as an extra column;
* ``output_times_by_class.png``: per true class, mean +- std of every output neuron's spike
  time on the validation set (the published "mean_val_outputs_sorted", at one epoch);
* ``training_curves.png``: loss, error, learning rate and weight bumps per epoch (left out
  when the run has no history, e.g. an imported network);
* ``weight_histograms.png``, ``weight_matrices.png``: per layer, bias rows marked;
* ``spike_time_histograms.png``: hidden and output spike times on the test set, with the
  fraction of silent (sample, neuron) pairs;
* regression and de-noising: ``regression_test.png`` (outputs against targets);
* training curves also get one panel per further metric series of the run;
* Yin-Yang only: ``yin_yang_classification.png`` (the test set over the input plane,
  coloured by predicted class, errors marked) and ``yin_yang_output_maps.png`` (each output
  neuron's spike time and the predicted class over a grid of the input plane).

Each group is a `Plot` registered in `snnsim.registry.PLOTS` with the condition under
which it applies to a run (task, layers, data set); a model family registers its own.
Times are model times in units of tau_s. Figures are `matplotlib.figure.Figure` objects
rendered by Agg, so no pyplot state is touched and nothing stays open.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Arc, Circle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from snnsim.datasets import YIN_YANG_R_BIG, YIN_YANG_R_SMALL
from snnsim.registry import PLOTS, Plot

log = logging.getLogger(__name__)

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "yin_yang": ("yin", "yang", "dot"),
    "xor": ("x = y", "x != y"),
    "bars": ("horizontal", "vertical", "diagonal"),
}
SILENT = "silent"
SILENT_COLOUR = "0.6"
# Yin, yang and dot as the published plots colour them; then the remaining tab10 colours.
CLASS_COLOURS = ("C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7", "C8", "C9")
TIME_LABEL = r"spike time [$\tau_s$]"
MAP_RESOLUTION = 100
DPI = 120


# -- numbers behind the plots ------------------------------------------------------------------

def class_names(dataset: str, n_classes: int) -> list[str]:
    """Readable names of the classes of `dataset` (their indices where none are known)."""
    names = CLASS_NAMES.get(dataset, ())
    return list(names) if len(names) == n_classes else [str(i) for i in range(n_classes)]


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [n_classes, n_classes + 1]: row = true class, column = prediction, last = silent."""
    columns = np.where(predictions < 0, n_classes, predictions)
    counts = np.zeros((n_classes, n_classes + 1), dtype=np.int64)
    np.add.at(counts, (labels, columns), 1)
    return counts


def output_time_stats(outputs: np.ndarray, labels: np.ndarray,
                      n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and silent fraction [n_classes, n_outputs] of each output's spike time per
    true class; mean and std over the samples where the output spiked (nan if it never did)."""
    n_outputs = outputs.shape[1]
    mean = np.full((n_classes, n_outputs), np.nan)
    std = np.full((n_classes, n_outputs), np.nan)
    silent = np.full((n_classes, n_outputs), np.nan)
    for c in range(n_classes):
        times = outputs[labels == c]
        if len(times) == 0:
            continue
        fired = np.isfinite(times)
        silent[c] = 1.0 - fired.mean(0)
        for j in range(n_outputs):
            if fired[:, j].any():
                mean[c, j] = times[fired[:, j], j].mean()
                std[c, j] = times[fired[:, j], j].std()
    return mean, std, silent


def yin_yang_grid(resolution: int = MAP_RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (x, y) [resolution**2, 2] of the unit square, row by row from y = 0, and
    their Yin-Yang input values [resolution**2, 4] = (x, y, 1 - x, 1 - y)."""
    centres = (np.arange(resolution) + 0.5) / resolution
    x, y = np.meshgrid(centres, centres)
    points = np.stack([x.ravel(), y.ravel()], 1)
    return points, np.hstack([points, 1.0 - points])


@torch.no_grad()
def network_outputs(trainer, values: np.ndarray) -> np.ndarray:
    """Outputs [n, n_outputs] of the trainer's network for data values [n, ...] (encoded
    as the run encodes its inputs)."""
    trainer.network.eval()
    x = trainer.as_network_input(values)
    batch = trainer.config["training_params"]["batch_size_eval"]
    outputs = [trainer.forward(torch.from_numpy(x[first:first + batch]))[0].cpu()
               for first in range(0, len(x), batch)]
    return torch.cat(outputs).numpy()


# -- figures ------------------------------------------------------------------------------------

def _log_axis(ax) -> None:
    """Log y axis with plain numbers (0.02, not 2 x 10^-2) on every labelled tick."""
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def _silent_text(times: np.ndarray) -> str:
    return f"{100 * np.mean(~np.isfinite(times)):.1f}% silent"


def plot_confusion(evaluation, names: list[str], split: str) -> Figure:
    """Confusion matrix with counts; colours are the fraction of each true class."""
    n = len(names)
    counts = confusion_counts(evaluation.labels, evaluation.predictions, n)
    totals = counts.sum(1, keepdims=True)
    fractions = counts / np.maximum(totals, 1)
    size = 2.5 + 0.6 * n
    fig = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        ax.text(column, row, str(count), ha="center", va="center", fontsize=9 if n <= 5 else 7,
                color="white" if fractions[row, column] > 0.5 else "black")
    ax.axvline(n - 0.5, color="black", linewidth=1)
    ax.set_xticks(range(n + 1), names + [SILENT], rotation=45 if n > 5 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix, {split} set\n{len(evaluation.labels)} samples, "
                 f"accuracy {100 * evaluation.accuracy:.2f}%")
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    return fig


def plot_output_times_by_class(evaluation, names: list[str], split: str, task) -> Figure:
    """Mean +- std of each output neuron's spike time, grouped by the samples' true class."""
    n_classes, n_outputs = len(names), evaluation.outputs.shape[1]
    mean, std, silent = output_time_stats(evaluation.outputs, evaluation.labels, n_classes)
    fig = Figure(figsize=(4.5 + 1.2 * n_classes, 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / n_outputs
    for j in range(n_outputs):
        x = np.arange(n_classes) - 0.4 + (j + 0.5) * width
        neuron = names[j] if j < n_classes else str(j)
        ax.errorbar(x, mean[:, j], yerr=std[:, j], fmt="o", capsize=3,
                    color=CLASS_COLOURS[j % len(CLASS_COLOURS)], label=f"output '{neuron}'")
        for xi, fraction in zip(x, silent[:, j]):
            if fraction >= 0.005:
                ax.annotate(f"{100 * fraction:.0f}%\nsilent", (xi, 0),
                            xycoords=("data", "axes fraction"), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7,
                            color=CLASS_COLOURS[j % len(CLASS_COLOURS)])
    if task.kind == "MSE":
        ax.axhline(task.t_correct, color="black", linestyle="--", linewidth=0.8,
                   label="target of the label neuron")
        ax.axhline(task.t_wrong, color="black", linestyle=":", linewidth=0.8,
                   label="target of the others")
    for boundary in np.arange(n_classes - 1) + 0.5:
        ax.axvline(boundary, color="0.85", linewidth=0.8)
    ax.set_xticks(range(n_classes), names)
    ax.set_xlim(-0.5, n_classes - 0.5)
    ax.set_xlabel("true class of the samples")
    ax.set_ylabel(f"output {TIME_LABEL}")
    ax.set_title(f"Output spike times per true class, {split} set\n"
                 f"mean $\\pm$ std over the samples where the output spiked")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_training_curves(history: dict) -> Figure:
    """Loss, classification error (if any), learning rate and weight bumps (if any) per
    epoch, and one panel per further metric series (alignment, sparsity, ...)."""
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    standard = {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate",
                "bumps", "epoch_seconds"}
    extra = [key for key in history if key not in standard]
    has_error = "train_accuracy" in history
    has_schedule = "learning_rate" in history or "bumps" in history
    panels = 1 + has_error + has_schedule + len(extra)
    fig = Figure(figsize=(4.7 * panels, 4), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    loss_ax = axes.pop(0)
    series = [("loss", loss_ax, "loss", lambda v: np.asarray(v, dtype=float))]
    if has_error:
        error_ax = axes.pop(0)
        series.append(("accuracy", error_ax, "error [%]",
                       lambda v: 100 * (1 - np.asarray(v, dtype=float))))
    for metric, ax, label, transform in series:
        values = []
        for split, style in (("train", "-"), ("val", "--")):
            name = "training" if split == "train" else "validation"
            curve = transform(history[f"{split}_{metric}"])
            values.append(curve)
            ax.plot(epochs, curve, style, label=f"{name} (final {curve[-1]:.4g})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        if np.all(np.concatenate(values)[np.isfinite(np.concatenate(values))] > 0):
            _log_axis(ax)  # a log axis needs positive values to show
    loss_ax.set_title("Loss")
    if has_error:
        error_ax.set_title("Classification error")
    if has_schedule:
        lr_ax = axes.pop(0)
        title = []
        if "learning_rate" in history:
            lr_ax.step(epochs, history["learning_rate"], where="mid", color="C2")
            _log_axis(lr_ax)
            lr_ax.set_ylabel("learning rate", color="C2")
            title.append("Learning rate")
        if "bumps" in history:
            bumps_ax = lr_ax.twinx() if "learning_rate" in history else lr_ax
            bumps_ax.bar(epochs, history["bumps"], color="C4", alpha=0.4, width=0.8)
            bumps_ax.set_ylabel("weight bumps (batches)", color="C4")
            bumps_ax.set_ylim(0, 1.1 * max(1, max(history["bumps"])))
            bumps_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            title.append(f"weight bumps (total {int(np.sum(history['bumps']))})")
        lr_ax.set_xlabel("epoch")
        lr_ax.set_title(" and ".join(title))
    for key, ax in zip(extra, axes):
        ax.plot(epochs, history[key], color="C5")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key.replace("_", " "))
    return fig


def plot_regression(evaluation, split: str) -> Figure:
    """Network output against target (every output value), the identity line for reference."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    target = np.asarray(evaluation.targets if evaluation.targets is not None
                        else evaluation.inputs, dtype=float).reshape(len(evaluation.outputs), -1)
    output = evaluation.outputs.reshape(len(evaluation.outputs), -1)
    ax.scatter(target.ravel(), output.ravel(), s=4, alpha=0.4)
    low, high = float(np.min(target)), float(np.max(target))
    ax.plot([low, high], [low, high], color="black", linewidth=0.8, label="output = target")
    ax.set_xlabel("target")
    ax.set_ylabel("network output")
    ax.set_title(f"Outputs against targets, {split} set\nloss {evaluation.loss:.5f}, "
                 f"{len(output)} samples")
    ax.legend(fontsize=8)
    return fig


def _layer_rows(trainer) -> list[tuple[str, np.ndarray, int]]:
    """(title, weight [n_in + n_bias, size], n_bias) of every layer that has weights."""
    rows = []
    named = trainer.network.named_layers()
    for i, (path, layer) in enumerate(named):
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            continue
        kind = "output layer" if i == len(named) - 1 else f"hidden layer {i + 1}"
        n_biases = len(getattr(layer, "bias_times", ()))
        rows.append((f"{path} ({layer.type_name}, {kind})", weight.detach().cpu().numpy(),
                     n_biases))
    return rows


def plot_weight_histograms(trainer) -> Figure:
    """Histogram of input and bias weights per layer."""
    layers = _layer_rows(trainer)
    fig = Figure(figsize=(4.5 * len(layers), 3.8), layout="constrained")
    for ax, (title, weight, n_bias) in zip(np.atleast_1d(fig.subplots(1, len(layers))), layers):
        n_in, size = weight.shape[0] - n_bias, weight.shape[1]
        values, colours = [weight[:n_in].ravel()], ["C0"]
        labels = [f"from inputs ({n_in} x {size})"]
        if n_bias:
            values.append(weight[n_in:].ravel())
            colours.append("C1")
            labels.append(f"from biases ({n_bias} x {size})")
        ax.hist(values, bins=40, stacked=True, color=colours, label=labels)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlabel("weight")
        ax.set_ylabel("number of synapses")
        ax.set_title(f"{title}\nmean {weight.mean():.3f}, std {weight.std():.3f}")
        ax.legend(fontsize=8)
    return fig


def plot_weight_matrices(trainer) -> Figure:
    """Weight matrices (presynaptic rows, bias rows last) on a symmetric diverging scale."""
    layers = _layer_rows(trainer)
    fig = Figure(figsize=(5 * len(layers), 5), layout="constrained")
    for ax, (title, weight, n_bias) in zip(np.atleast_1d(fig.subplots(1, len(layers))), layers):
        limit = float(np.abs(weight).max()) or 1.0
        image = ax.imshow(weight, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                          interpolation="nearest")
        n_in = weight.shape[0] - n_bias
        if n_bias:
            ax.axhline(n_in - 0.5, color="black", linewidth=1)
            ax.annotate("bias", (1.0, n_in + n_bias / 2 - 0.5),
                        xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("postsynaptic neuron")
        ax.set_ylabel("presynaptic neuron (bias rows last)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, label="weight")
    return fig


def plot_spike_time_histograms(evaluation, split: str) -> Figure:
    """Histograms of finite hidden and output spike times; silent fractions in the legends."""
    panels = len(evaluation.hidden) + 1
    fig = Figure(figsize=(4.5 * panels, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, panels))
    for i, (ax, times) in enumerate(zip(axes, evaluation.hidden)):
        never = int(np.sum(~np.isfinite(times).any(0)))
        ax.hist(times[np.isfinite(times)], bins=50, color="0.4",
                label=f"{times.shape[1]} neurons, {_silent_text(times)}\n"
                      f"{never} never spike")
        ax.set_title(f"Hidden layer {i + 1}")
    outputs, labels = evaluation.outputs, evaluation.labels
    is_label = np.zeros(outputs.shape, dtype=bool)
    is_label[np.arange(len(labels)), labels] = True
    finite = outputs[np.isfinite(outputs)]
    bins = np.histogram_bin_edges(finite, bins=50) if len(finite) else 50
    ax = axes[-1]
    for mask, colour, name in ((is_label, "C0", "label neuron"),
                               (~is_label, "C1", "other neurons")):
        times = outputs[mask]
        ax.hist(times[np.isfinite(times)], bins=bins, color=colour, alpha=0.6,
                label=f"{name}, {_silent_text(times)}")
    ax.set_title("Output layer")
    for ax in axes:
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel("number of spikes")
        ax.legend(fontsize=8)
    fig.suptitle(f"Spike times on the {split} set ({len(labels)} samples)")
    return fig


def _draw_yin_yang(ax) -> None:
    """Outline of the Yin-Yang shape in the (x, y) plane."""
    r_big, r_small = YIN_YANG_R_BIG, YIN_YANG_R_SMALL
    style = {"fill": False, "color": "black", "linewidth": 0.8}
    ax.add_patch(Circle((r_big, r_big), r_big, **style))
    for centre in (0.5 * r_big, 1.5 * r_big):
        ax.add_patch(Circle((centre, r_big), r_small, **style))
    ax.add_patch(Arc((1.5 * r_big, r_big), r_big, r_big, theta1=0, theta2=180, **style))
    ax.add_patch(Arc((0.5 * r_big, r_big), r_big, r_big, theta1=180, theta2=360, **style))


def _input_plane_axes(ax, title: str) -> None:
    _draw_yin_yang(ax)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (input 1)")
    ax.set_ylabel("y (input 2)")
    ax.set_title(title)


def _class_cmap(n_classes: int) -> ListedColormap:
    """Class colours for indices 0..n-1 and grey for the silent prediction at index n."""
    return ListedColormap([CLASS_COLOURS[c % len(CLASS_COLOURS)] for c in range(n_classes)]
                          + [SILENT_COLOUR])


def plot_yin_yang_classification(evaluation, coordinates: np.ndarray,
                                 names: list[str]) -> Figure:
    """Test samples over the input plane coloured by predicted class, errors crossed out."""
    fig = Figure(figsize=(7, 6.5), layout="constrained")
    ax = fig.add_subplot()
    predictions, labels = evaluation.predictions, evaluation.labels
    colours = _class_cmap(len(names))
    for c, name in enumerate(names + [SILENT]):
        chosen = predictions == (c if c < len(names) else -1)
        if chosen.any() or c < len(names):
            ax.scatter(*coordinates[chosen].T, s=24, color=colours(c),
                       edgecolor="black", linewidth=0.3, label=f"predicted {name}")
    wrong = predictions != labels
    ax.scatter(*coordinates[wrong].T, marker="x", s=14, color="black", linewidth=0.9,
               label=f"misclassified ({int(wrong.sum())})")
    _input_plane_axes(ax, f"Classification of the test set ({len(labels)} samples), "
                          f"accuracy {100 * evaluation.accuracy:.2f}%")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def plot_yin_yang_maps(trainer, names: list[str], resolution: int = MAP_RESOLUTION) -> Figure:
    """Spike time of each output neuron and the predicted class over a resolution x resolution
    grid of the input plane (also outside the circle, where no sample lies)."""
    _, values = yin_yang_grid(resolution)
    outputs = network_outputs(trainer, values)
    predictions = trainer.task.predict(torch.from_numpy(outputs)).numpy()
    n_outputs, n_classes = outputs.shape[1], len(names)
    shape = (resolution, resolution)
    finite = outputs[np.isfinite(outputs)]
    vmin, vmax = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    cmap = colormaps["viridis"].with_extremes(bad=SILENT_COLOUR)
    fig = Figure(figsize=(4.6 * (n_outputs + 1), 4.8), layout="constrained")
    axes = fig.subplots(1, n_outputs + 1)
    extent = (0, 1, 0, 1)
    for j, ax in enumerate(axes[:-1]):
        times = np.ma.masked_invalid(outputs[:, j].reshape(shape))
        image = ax.imshow(times, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        neuron = names[j] if j < n_classes else str(j)
        _input_plane_axes(ax, f"output '{neuron}'\n{_silent_text(outputs[:, j])} (grey)")
    fig.colorbar(image, ax=axes[:-1], label=f"output {TIME_LABEL}", shrink=0.8)
    ax = axes[-1]
    classes = np.where(predictions < 0, n_classes, predictions).reshape(shape)
    class_cmap = _class_cmap(n_classes)
    image = ax.imshow(classes, origin="lower", extent=extent, cmap=class_cmap, vmin=-0.5,
                      vmax=n_classes + 0.5, interpolation="nearest")
    _input_plane_axes(ax, "predicted class\n")  # two lines, as the panels beside it
    bar = fig.colorbar(image, ax=ax, ticks=range(n_classes + 1), shrink=0.8)
    bar.ax.set_yticklabels(names + [SILENT])
    fig.suptitle(f"Network over the input plane ({resolution} x {resolution} grid)")
    return fig


# -- all of them --------------------------------------------------------------------------------

def _spike_classification(trainer) -> bool:
    return trainer.task.type_name == "spike_classification"


def _classification_figures(trainer, evaluations: dict, options: dict) -> dict:
    names = class_names(trainer.config["dataset"], evaluations["test"].outputs.shape[1])
    return {f"confusion_{split}": plot_confusion(evaluations[split], names, split)
            for split in ("train", "test")}


def _spike_time_figures(trainer, evaluations: dict, options: dict) -> dict:
    names = class_names(trainer.config["dataset"], evaluations["test"].outputs.shape[1])
    return {"output_times_by_class": plot_output_times_by_class(
                evaluations["val"], names, "validation", trainer.task),
            "spike_time_histograms": plot_spike_time_histograms(evaluations["test"], "test")}


def _yin_yang_figures(trainer, evaluations: dict, options: dict) -> dict:
    names = class_names("yin_yang", evaluations["test"].outputs.shape[1])
    return {"yin_yang_classification": plot_yin_yang_classification(
                evaluations["test"], trainer.dataset("test").coordinates, names),
            "yin_yang_output_maps": plot_yin_yang_maps(trainer, names,
                                                       options["map_resolution"])}


def _regression_figures(trainer, evaluations: dict, options: dict) -> dict:
    """Outputs against targets, where every output value has a target value (not, e.g.,
    line completion's cells x pixels against the line's pixels)."""
    evaluation = evaluations["test"]
    target = evaluation.targets if evaluation.targets is not None else evaluation.inputs
    if np.size(target) != np.size(evaluation.outputs):
        log.info("regression_test.png is left out: %d output values against %d target values",
                 np.size(evaluation.outputs), np.size(target))
        return {}
    return {"regression_test": plot_regression(evaluation, "test")}


def _has_history(trainer) -> bool:
    """Whether any epoch was trained here (an imported network's restored history holds
    only NaN rows)."""
    if np.isfinite(np.asarray(trainer.history.get("train_loss", []), dtype=float)).any():
        return True
    log.warning("no training history (e.g. an imported network): "
                "training_curves.png is left out")
    return False


for _plot in (
    Plot("training_curves", _has_history,
         lambda trainer, *_: {"training_curves": plot_training_curves(trainer.history)}),
    Plot("confusion", lambda trainer: trainer.task.classifies, _classification_figures),
    Plot("spike_times", _spike_classification, _spike_time_figures),
    Plot("weights", lambda trainer: bool(_layer_rows(trainer)),
         lambda trainer, *_: {"weight_histograms": plot_weight_histograms(trainer),
                             "weight_matrices": plot_weight_matrices(trainer)}),
    Plot("regression", lambda trainer: not trainer.task.classifies, _regression_figures),
    Plot("yin_yang", lambda trainer: (trainer.config["dataset"] == "yin_yang"
                                      and _spike_classification(trainer)), _yin_yang_figures),
):
    PLOTS.register(_plot)


def write_all(trainer, folder: Path, map_resolution: int = MAP_RESOLUTION) -> list[Path]:
    """Write every registered plot that applies to `trainer`'s run into `folder`; the paths
    of the files written.

    `map_resolution` is the number of grid points per axis of the Yin-Yang maps.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    evaluations = {split: trainer.evaluate(split, keep_hidden=True)
                   for split in ("train", "val", "test")}
    written = []
    for plot in PLOTS.values():
        if not plot.applies(trainer):
            continue
        figures = plot.draw(trainer, evaluations, {"map_resolution": map_resolution,
                                                   "plots_dir": folder})
        for stem, figure in figures.items():
            path = folder / f"{stem}.png"
            figure.savefig(path, dpi=DPI)
            written.append(path)
    return written
