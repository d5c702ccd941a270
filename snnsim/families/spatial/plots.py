"""Plots of spatial runs: the learned positions, and the per-task strength map.

* ``spatial_positions.png``: every layer's units at their learned positions (one panel
  per layer, and all layers in one plane), coloured by the task they serve (greedy
  assignment; grey: none), with each unit's connections to the previous layer's units
  drawn as lines whose opacity grows with the square root of the summed |w| (the strongest `max_lines`
  per layer);
* ``spatial_task_strength.png``: per task, a layer x unit map of
  max(0, a_t - max_{t' != t} a_t'), a the recorded mean |activity| (the published plot).

`eval` draws the positions plot for every spatial_multitask run (`PLOTS`); the
`plot` subcommand draws both.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from snnsim.registry import PLOTS, Plot

from .analysis import greedy_assignment, is_spatial_run, spatial_chain

UNASSIGNED_COLOUR = "0.6"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAX_LINES = 400


def _colours(assignment: np.ndarray) -> list:
    return [f"C{t}" if t >= 0 else UNASSIGNED_COLOUR for t in assignment]


@torch.no_grad()
def positions_figure(layers, assignment: list[np.ndarray], task_names: list[str],
                     max_lines: int = MAX_LINES) -> Figure:
    """Learned positions of every layer, coloured by task, connections by weight."""
    n = len(layers)
    fig = Figure(figsize=(4 * (n + 1), 4.2))
    axes = fig.subplots(1, n + 1, squeeze=False)[0]
    positions = [layer.positions.detach().cpu().numpy() for layer in layers]
    for k, (ax, p, a) in enumerate(zip(axes, positions, assignment)):
        if k > 0:
            strength = layers[k].unit_cost("l1", layers[k - 1].units).cpu().numpy()
            flat = np.argsort(strength, axis=None)[::-1][:max_lines]
            i, j = np.unravel_index(flat, strength.shape)
            top = strength[i, j].max() if len(flat) else 1.0
            segments = np.stack([positions[k - 1][j], p[i]], 1)
            colours = np.zeros((len(flat), 4))
            colours[:, 3] = 0.05 + 0.6 * np.sqrt(strength[i, j] / (top or 1.0))
            for target in (ax, axes[-1]):
                target.add_collection(LineCollection(segments, colors=colours, linewidths=0.6))
            ax.scatter(*positions[k - 1].T, s=10, c="0.85", marker=MARKERS[(k - 1) % 8],
                       zorder=1)
        ax.scatter(*p.T, s=22, c=_colours(a), marker=MARKERS[k % 8], zorder=2,
                   edgecolors="k", linewidths=0.3)
        ax.set_title(f"layer {k} ({layers[k].type_name}, {layers[k].units} units)"
                     + (" over layer " + str(k - 1) if k else ""), fontsize=9)
        axes[-1].scatter(*p.T, s=18, c=_colours(a), marker=MARKERS[k % 8], zorder=2,
                         edgecolors="k", linewidths=0.3)
        axes[-1].scatter([], [], c="w", edgecolors="k", marker=MARKERS[k % 8],
                         label=f"layer {k}")
    axes[-1].set_title("all layers", fontsize=9)
    axes[-1].legend(fontsize=7, loc="best")
    for t, name in enumerate(task_names):
        axes[0].scatter([], [], c=f"C{t}", label=name)
    axes[0].legend(fontsize=7, loc="best", title="serves task", title_fontsize=7)
    for ax in axes:
        ax.set_aspect("equal", adjustable="datalim")
        ax.autoscale_view()
    fig.tight_layout()
    return fig


def strength_figure(strengths: list[np.ndarray], task_names: list[str]) -> Figure:
    """Per task, the layer x unit map of strengths ([T, units] per layer)."""
    width = max(s.shape[1] for s in strengths)
    fig = Figure(figsize=(10, 1.2 + 1.2 * len(task_names)))
    axes = fig.subplots(len(task_names), 1, squeeze=False)[:, 0]
    for t, (ax, name) in enumerate(zip(axes, task_names)):
        grid = np.full((len(strengths), width), np.nan)
        for k, s in enumerate(strengths):
            grid[k, :s.shape[1]] = s[t]
        image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_ylabel("layer")
        ax.set_title(f"{name}: max(0, a_t - max other tasks)", fontsize=9)
        fig.colorbar(image, ax=ax)
    axes[-1].set_xlabel("unit")
    fig.tight_layout()
    return fig


def _draw(trainer, evaluations, options=None) -> dict:
    layers = spatial_chain(trainer.network)
    assignment = greedy_assignment(layers, trainer.task.n_tasks)
    return {"spatial_positions": positions_figure(layers, assignment, trainer.task.task_names)}


PLOTS.register(Plot("spatial_positions", is_spatial_run, _draw))
