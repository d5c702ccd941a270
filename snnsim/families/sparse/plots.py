"""Plots `eval` draws for runs with tracked layers (`tracked_linear`, `topk_linear`):

* ``sparse_activity_curves.png``: the activity metrics per epoch (active fraction, dead
  fraction, activity entropy, encoder-decoder cosine);
* ``sparse_active_histogram.png``: per validation input (noise on, as in training) the
  fraction of active neurons, histogram per tracked layer;
* ``receptive_fields.png``: the input weights of a sample of neurons of the first tracked
  layer as images (inputs that form a square image, e.g. MNIST's 28 x 28).

And the sweep figure `eval <sweep folder>` draws for a sweep whose summary.csv has a
sigma and an active fraction: the named columns `sigma` and `active_fraction` (as
sparse_coding_sweep.yaml names them), else the raw columns
`task.noise_std` (a grid key) and `final_active_fraction`:

* ``active_fraction_vs_sigma.png``: active fraction against sigma (log x), one line per
  layer (`layer`, `mode`, `width` columns), Top-K points (a `k` column) marked with their
  k, beside the published curves (FAMILIES.md section 4).
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from snnsim.registry import PLOTS, Plot
from snnsim.sweep import SWEEP_PLOTS, SweepPlot, SweepTable, as_float, set_x_scale

from .metrics import series_prefix, tracked_layers

N_RECEPTIVE_FIELDS = 25
CURVES = (("active_fraction", "active fraction per input"), ("dead_fraction", "dead fraction"),
          ("activity_entropy", "activity entropy (bits)"),
          ("enc_dec_cosine", "cos(encoder row, decoder column)"))
# Published fraction of active neurons (Bricken et al., CIFAR-10 latents; FAMILIES.md 4).
PUBLISHED_SIGMAS = (0, 0.05, 0.1, 0.3, 0.8, 1.5, 3, 10)
PUBLISHED_ACTIVE = {
    100: (.999, .999, .995, .68, .56, .59, .47, .16),
    1000: (.99, .94, .75, .40, .29, .21, .11, .07),
    10000: (.77, .46, .34, .13, .04, .03, .022, .028),
}
PUBLISHED_MNIST_10000 = ((0, .96), (10, .067))  # MNIST, 10,000 units: sigma, active fraction
# The summary.csv columns the sweep figure reads: the named one (`columns:` of the sweep
# file), else the raw one.
SIGMA = ("sigma", "task.noise_std")
ACTIVE = ("active_fraction", "final_active_fraction")
K = ("k", "final_k")


def plot_activity_curves(history: dict, prefixes: list[str]) -> Figure:
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, (name, label) in zip(axes, CURVES):
        for prefix in prefixes:
            values = np.asarray(history.get(prefix + name, []), dtype=float)
            if values.size and np.isfinite(values).any():
                ax.plot(np.arange(1, values.size + 1), values,
                        label=prefix.rstrip(".") or "first tracked layer")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if name in ("active_fraction", "dead_fraction"):
            ax.set_ylim(-0.02, 1.02)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle("Activity of the tracked layers (training inputs, noise on)")
    return fig


def per_input_active_fraction(hidden: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of neurons with |y| > threshold, per input row of `hidden` [n, size]."""
    return (np.abs(hidden) > threshold).mean(axis=1)


def plot_active_histogram(fractions: dict[str, np.ndarray]) -> Figure:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for label, values in fractions.items():
        ax.hist(values, bins=np.linspace(0, 1, 51), alpha=0.6,
                label=f"{label}: mean {values.mean():.3f}")
    ax.set_xlabel("fraction of neurons active per input")
    ax.set_ylabel("validation inputs")
    ax.legend(fontsize=8)
    ax.set_title("Active neurons per input, validation set (noise on)")
    return fig


def plot_receptive_fields(encoder: np.ndarray, activity: np.ndarray | None = None) -> Figure:
    """Input weights [size, n_inputs] of up to 25 evenly spaced neurons as square images."""
    side = math.isqrt(encoder.shape[1])
    chosen = np.unique(np.linspace(0, len(encoder) - 1,
                                   min(N_RECEPTIVE_FIELDS, len(encoder))).round().astype(int))
    columns = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / columns)
    fig = Figure(figsize=(1.6 * columns, 1.7 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, j in zip(axes, chosen):
        image = encoder[j].reshape(side, side)
        limit = np.abs(image).max() or 1.0
        ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        title = f"neuron {j}"
        if activity is not None:
            title += f"\n{activity[j]:.2f} active"
        ax.set_title(title, fontsize=7)
    fig.suptitle("Receptive fields (input weights) of sampled neurons")
    return fig


def _is_square(n: int) -> bool:
    return n > 1 and math.isqrt(n) ** 2 == n


def _draw(trainer, evaluations: dict, options: dict) -> dict:
    tracked = tracked_layers(trainer)
    figures = {}
    prefixes = [series_prefix(i, path) for i, (path, _, _) in enumerate(tracked)]
    if any(trainer.history.get(p + "active_fraction") for p in prefixes):
        figures["sparse_activity_curves"] = plot_activity_curves(trainer.history, prefixes)
    paths = [path for path, _ in trainer.network.named_layers()]
    hidden = evaluations["val"].hidden
    fractions = {}
    for path, layer, _ in tracked:
        index = paths.index(path)
        if index < len(hidden):
            fractions[path] = per_input_active_fraction(hidden[index], layer.activity_threshold)
    if fractions:
        figures["sparse_active_histogram"] = plot_active_histogram(fractions)
    first_path, first, _ = tracked[0]
    if _is_square(first.n_inputs):
        activity = None
        if first_path in fractions:
            index = paths.index(first_path)
            activity = (np.abs(hidden[index]) > first.activity_threshold).mean(axis=0)
        figures["receptive_fields"] = plot_receptive_fields(
            first.encoder_vectors().cpu().numpy(), activity)
    return figures


PLOTS.register(Plot("sparse_activity", lambda trainer: bool(tracked_layers(trainer)), _draw))


def _number(row: dict, columns: tuple[str, ...]) -> float:
    """The first of `columns` that `row` has a value in, as a float (nan if none)."""
    return as_float(next((row[c] for c in columns if row.get(c) not in (None, "")), None))


def _sigma_points(table: SweepTable) -> list[tuple[dict, float, float]]:
    """(row, sigma, active fraction) of the complete points that have both."""
    points = []
    for row in table.complete:
        sigma, fraction = _number(row, SIGMA), _number(row, ACTIVE)
        if math.isfinite(sigma) and math.isfinite(fraction):
            points.append((row, sigma, fraction))
    return points


def _layer_label(row: dict) -> str:
    """`topk_linear (mask), 1000 units, k = 100` from the row's layer, mode, width, k."""
    label = row.get("layer") or "points"
    if row.get("mode"):
        label += f" ({row['mode']})"
    if row.get("width"):
        label += f", {row['width']} units"
    k = _number(row, K)
    if math.isfinite(k):
        label += f", k = {k:g}"
    return label


def plot_active_vs_sigma(table: SweepTable) -> dict:
    """Active fraction against sigma, one line per layer of the sweep; Top-K points (a k
    value) as squares labelled with k; the published curve of the sweep's width (CIFAR-10
    latents; 1,000 units if the width is not one of 100, 1,000, 10,000) and the published
    MNIST end points at 10,000 units for comparison."""
    groups: dict[str, list[tuple[float, float, float]]] = {}
    for row, sigma, fraction in _sigma_points(table):
        groups.setdefault(_layer_label(row), []).append((sigma, fraction, _number(row, K)))
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    ax = fig.subplots()
    for label, points in groups.items():
        points.sort()
        sigmas, fractions = [p[0] for p in points], [p[1] for p in points]
        topk = math.isfinite(points[0][2])
        ax.plot(sigmas, fractions, "s-" if topk else "o-", markersize=8 if topk else 5,
                label=label)
        if topk:
            for sigma, fraction, k in points:
                ax.annotate(f"k={k:g}", (sigma, fraction), textcoords="offset points",
                            xytext=(6, 4), fontsize=7)
    widths = {as_float(row.get("width")) for row in table.complete}
    width = int(widths.pop()) if len(widths) == 1 and widths <= {100., 1000., 10000.} else 1000
    ax.plot(PUBLISHED_SIGMAS, PUBLISHED_ACTIVE[width], "--", color="0.45",
            label=f"published, CIFAR-10 latents, {width:,} units")
    ax.plot(*zip(*PUBLISHED_MNIST_10000), "x", color="0.3", markersize=8,
            label="published, MNIST, 10,000 units")
    set_x_scale(ax, [*PUBLISHED_SIGMAS, *(p[0] for points in groups.values() for p in points)])
    ax.set_xlabel("noise sigma (log scale above the smallest nonzero sigma)")
    ax.set_ylabel("fraction of neurons active per input")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"Sparsity from noise: {table.folder.name}", fontsize=9)
    return {"active_fraction_vs_sigma": fig}


SWEEP_PLOTS.register(SweepPlot("sparse_active_vs_sigma", lambda t: bool(_sigma_points(t)),
                               plot_active_vs_sigma))
