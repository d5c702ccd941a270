"""The plot `eval` draws for runs with the family's alignment metrics: ``alignment.png``,
per epoch cos(W, B) of each FA/KP layer, the angle between each layer's update and
backprop's gradient (and over all layers), and ||g_BP|| / ||g_rule||."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from snnsim.registry import PLOTS, Plot

COS_SUFFIX = ".cos_wb"
ANGLE_SUFFIX = ".update_angle_deg"
TOTAL_ANGLE = "update_angle_deg"
NORM_RATIO = "grad_norm_ratio"


def _series(history: dict, suffix: str) -> dict[str, np.ndarray]:
    return {key[:-len(suffix)]: np.asarray(values, dtype=float)
            for key, values in history.items() if key.endswith(suffix)}


def has_alignment(history: dict) -> bool:
    return TOTAL_ANGLE in history


def plot_alignment(history: dict) -> Figure:
    """cos(W, B), update angles and the gradient norm ratio per epoch."""
    cos, angles = _series(history, COS_SUFFIX), _series(history, ANGLE_SUFFIX)
    panels = (["cos"] if cos else []) + ["angle", "ratio"]
    fig = Figure(figsize=(4.8 * len(panels), 4), layout="constrained")
    axes = dict(zip(panels, np.atleast_1d(fig.subplots(1, len(panels)))))
    epochs = np.arange(1, len(history[TOTAL_ANGLE]) + 1)
    if cos:
        ax = axes["cos"]
        for path, values in cos.items():
            ax.plot(epochs, values, label=f"{path} (final {values[-1]:.3f})")
        ax.set_ylim(min(-0.05, np.nanmin([v.min() for v in cos.values()]) - 0.05), 1.05)
        ax.set_ylabel("cos(W, B)")
        ax.set_title("Forward and feedback weights")
        ax.legend(fontsize=8)
    ax = axes["angle"]
    for path, values in angles.items():
        ax.plot(epochs, values, label=path)
    ax.plot(epochs, history[TOTAL_ANGLE], "k--",
            label=f"all layers (final {history[TOTAL_ANGLE][-1]:.1f}°)")
    ax.axhline(90, color="0.7", lw=0.8)
    ax.set_ylim(0, max(95.0, np.nanmax(np.asarray(history[TOTAL_ANGLE], dtype=float)) + 5))
    ax.set_ylabel("angle to backprop's gradient [°]")
    ax.set_title("Update of the rule vs. backprop")
    ax.legend(fontsize=8)
    ax = axes["ratio"]
    ax.plot(epochs, history[NORM_RATIO], color="C2")
    ax.set_ylabel(r"$\|g_{BP}\| / \|g_{rule}\|$")
    ax.set_title("Gradient norm ratio")
    for ax in axes.values():
        ax.set_xlabel("epoch")
    fig.suptitle("Alignment with backpropagation (fixed training batches, the parameters after "
                 "each epoch)")
    return fig


PLOTS.register(Plot("feedback_alignment", lambda trainer: has_alignment(trainer.history),
                    lambda trainer, evaluations, options: {
                        "alignment": plot_alignment(trainer.history)}))
