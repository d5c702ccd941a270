"""Plots of a Net Fragments run, drawn by `python experiment.py eval <results-dir>`.

* ``net_fragments_metrics.png``: noise reduction, recall, precision and accuracy against
  the noise level (no interruption), and the gap reconstruction against the gap length
  (no noise), with the published figures;
* ``net_fragments_activity.png``: for a few evaluation lines the input, S1 and the
  merged S2 cells at every time step (colour: feature);
* ``net_fragments_weights.png``: the lateral kernel of each feature's cells, summed
  over the input channels (one panel per feature x alternative cell).

Drawing the metric figure runs the evaluation grid; as a side effect it writes
``net_fragments_eval.csv`` beside the plots folder and prints the table (the core's
`eval` has no per-task evaluation hook; see the family's README section).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from snnsim.families.fragments.data import draw_line, evaluation_lines
from snnsim.families.fragments.evaluation import (
    CSV_NAME,
    PUBLISHED,
    fragment_layers,
    run_grid,
    run_lines,
    write_csv,
)
from snnsim.families.fragments.layers import LateralLayer, LineFeatures
from snnsim.registry import PLOTS, Plot

FEATURE_COLOURS = ListedColormap(["white", "tab:red", "tab:green", "tab:blue", "tab:orange"])


def _applies(trainer) -> bool:
    layers = [layer for _, layer in trainer.network.named_layers()]
    return (any(isinstance(layer, LineFeatures) for layer in layers)
            and any(isinstance(layer, LateralLayer) for layer in layers))


def _feature_map(maps: np.ndarray) -> np.ndarray:
    """[4, H, W] binary -> [H, W] colour index (0 background, 1 + first active feature)."""
    active = maps > 0.5
    return np.where(active.any(0), active.argmax(0) + 1, 0)


def plot_metrics(rows: list[dict]) -> Figure:
    figure = Figure(figsize=(11, 4.2))
    left, right = figure.subplots(1, 2)
    noise_rows = [row for row in rows if row["line_interrupt"] == 0]
    noise = [row["noise"] for row in noise_rows]
    for key, marker in (("noise_reduction", "o"), ("recall", "s"), ("precision", "^"),
                        ("accuracy", "d")):
        left.plot(noise, [row[key] for row in noise_rows], marker=marker, label=key)
    published = sorted(PUBLISHED["noise"].items())
    for index, (key, marker) in enumerate((("noise_reduction", "o"), ("recall", "s"),
                                           ("precision", "^"))):
        left.scatter([p for p, _ in published], [v[index] for _, v in published],
                     marker=marker, facecolors="none", edgecolors="k",
                     label="published" if index == 0 else None)
    left.set_xlabel("noise (fraction of S1 bits flipped)")
    left.set_ylabel("fraction")
    left.set_ylim(0, 1.02)
    left.legend(fontsize=8)
    gap_rows = [row for row in rows if row["noise"] == 0 and row["line_interrupt"] > 0]
    right.plot([row["line_interrupt"] for row in gap_rows],
               [row["reconstruction"] for row in gap_rows], marker="o", label="this run")
    right.plot(range(1, 8), PUBLISHED["reconstruction"], "k--", marker="x", label="published")
    right.set_xlabel("gap length (pixels)")
    right.set_ylabel("reconstruction")
    right.set_ylim(0, 1.02)
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_activity(trainer, n_examples: int = 3) -> Figure:
    s1, s2 = fragment_layers(trainer.network)
    lines = evaluation_lines(60, s2.height)
    chosen = [lines[i] for i in np.linspace(0, len(lines) - 1, n_examples).astype(int)]
    images = np.stack([draw_line(line, s2.height) for line in chosen])
    result = run_lines(s1, s2, torch.from_numpy(images))
    steps = result["features"].numpy()                           # [T, B, 4, H, W]
    ff = result["ff"].cpu().numpy()
    n_steps = steps.shape[0]
    figure = Figure(figsize=(1.8 * (n_steps + 2), 1.9 * n_examples))
    axes = np.asarray(figure.subplots(n_examples, n_steps + 2)).reshape(n_examples, -1)
    for row in range(n_examples):
        panels = [("input", images[row], "gray_r"), ("S1", _feature_map(ff[row]), None)]
        panels += [(f"S2 t={t}", _feature_map(steps[t, row]), None) for t in range(n_steps)]
        for ax, (title, image, cmap) in zip(axes[row], panels):
            if cmap is None:
                ax.imshow(image, cmap=FEATURE_COLOURS, vmin=0, vmax=4, interpolation="nearest")
            else:
                ax.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_weights(trainer) -> Figure:
    _, s2 = fragment_layers(trainer.network)
    weight = s2.weight.detach().cpu().numpy().sum(1)              # [C, k, k]
    figure = Figure(figsize=(1.2 * s2.cells + 1, 1.3 * s2.n_features))
    axes = np.asarray(figure.subplots(s2.n_features, s2.cells)).reshape(s2.n_features, -1)
    for f in range(s2.n_features):
        for c in range(s2.cells):
            ax = axes[f, c]
            ax.imshow(weight[f * s2.cells + c], cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(("|", "/", "-", "\\")[f] if s2.n_features == 4 else f"f{f}")
    figure.suptitle("lateral weights into each cell (summed over inputs)", fontsize=9)
    return figure


class GridFigure:
    """The metric figure together with its grid rows. `eval` saves every drawn figure with
    `savefig(path, dpi=...)`, which is the only place a plot learns the output folder: here
    it also writes the grid as CSV into the results folder (the parent of `plots/`)."""

    def __init__(self, figure: Figure, rows: list[dict]):
        self.figure, self.rows = figure, rows

    def savefig(self, path, **options) -> None:
        path = Path(path)
        self.figure.savefig(path, **options)
        folder = path.parent.parent if path.parent.name == "plots" else path.parent
        write_csv(self.rows, folder / CSV_NAME)
        print(f"line-completion grid written to {folder / CSV_NAME}")


def _draw_metrics(trainer, evaluations: dict, options: dict) -> dict:
    rows = run_grid(trainer)
    return {"net_fragments_metrics": GridFigure(plot_metrics(rows), rows)}


PLOTS.register(Plot("net_fragments_metrics", _applies, _draw_metrics))
PLOTS.register(Plot("net_fragments_activity", _applies,
                    lambda trainer, *_: {"net_fragments_activity": plot_activity(trainer)}))
PLOTS.register(Plot("net_fragments_weights", _applies,
                    lambda trainer, *_: {"net_fragments_weights": plot_weights(trainer)}))
