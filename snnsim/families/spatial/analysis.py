"""Task assignment of neurons, sub-networks, recorded activity and separation.

Greedy split (published `options/split/backward/greedy.py`, with biases zeroed too):
output unit i serves task i mod T (interleaved logits); going backwards, a unit j of
layer k serves

    argmax_t  sum over the units i of layer k+1 that serve t of S_ij,
    S = the summed |w| between unit i and unit j (`unit_cost("l1", ...)`),

and no task (-1) if it has no weight to any assigned unit.

Activity assignment (an option beside the published one, sequential mode): output
unit i serves task i mod T as above; a hidden unit j serves

    argmax_t  m_t,j,   m_t,j = the recorded mean |y_j| over task t's samples,

the task whose inputs drive it most (the task with strength_t,j > 0 in the published
strength map below), and no task (-1) if it is silent on every task.

Sub-network t keeps the units serving t; every other unit's incoming weights and bias are zeroed (its output
is then f(0): 0 for relu and tanh). The input is not split.

Recorded activity (sequential mode): per task t and unit j, the mean (or variance)
over task t's samples of |y_j| (a convolution unit's value is averaged over its map);
strength_t,j = max(0, m_t,j - max_{t' != t} m_t',j), the published per-task map.
"""
from __future__ import annotations

import numpy as np
import torch

from .costs import silhouette
from .layers import SPATIAL_LAYERS


def spatial_chain(network) -> list:
    """The trunk's layers, input side first; all of them must be spatial."""
    layers = list(network.layers)
    plain = [i for i, layer in enumerate(layers) if not isinstance(layer, SPATIAL_LAYERS)]
    if plain:
        raise ValueError(f"layer {plain[0]} ({layers[plain[0]].type_name}) is not spatial: the "
                         f"split and the position analyses need every layer to be spatial")
    if len(network.heads):
        raise ValueError("the network has heads; the split reads one interleaved output layer")
    return layers


def is_spatial_run(trainer) -> bool:
    """A `spatial_multitask` run whose layers are all spatial (the analyses apply)."""
    from .task import SpatialMultitask

    if not isinstance(trainer.task, SpatialMultitask):
        return False
    try:
        spatial_chain(trainer.network)
    except ValueError:
        return False
    return True


@torch.no_grad()
def greedy_assignment(layers, n_tasks: int) -> list[np.ndarray]:
    """Task (or -1) of every unit of every layer (module docstring)."""
    out_units = layers[-1].units
    assigned = [np.arange(out_units) % n_tasks]
    for k in range(len(layers) - 1, 0, -1):
        strength = layers[k].unit_cost("l1", layers[k - 1].units).cpu().numpy()  # [n_k, n_k-1]
        later = assigned[0]
        score = np.stack([strength[later == t].sum(0) for t in range(n_tasks)])  # [T, n_k-1]
        choice = score.argmax(0)
        assigned.insert(0, np.where(score.max(0) > 0, choice, -1))
    return assigned


def activity_assignment(activity: list[np.ndarray], n_tasks: int) -> list[np.ndarray]:
    """Task (or -1) of every unit from the recorded mean activity [T, units] per layer
    (module docstring; the output layer's record only gives its size)."""
    if any(a.shape[0] != n_tasks for a in activity):
        raise ValueError(f"activity: expected [{n_tasks}, units] per layer, got "
                         f"{[a.shape for a in activity]}")
    hidden = [np.where(a.max(0) > 0, a.argmax(0), -1) for a in activity[:-1]]
    return hidden + [np.arange(activity[-1].shape[1]) % n_tasks]


ASSIGNMENTS = ("greedy", "activity")


def assignment(trainer, method: str = "greedy", split: str = "train") -> list[np.ndarray]:
    """Task (or -1) of every unit of a spatial run's layers by `method` (module
    docstring): "greedy" (published, from the weights) or "activity" (from the mean
    activity recorded on `split`, sequential mode)."""
    layers = spatial_chain(trainer.network)
    if method == "greedy":
        return greedy_assignment(layers, trainer.task.n_tasks)
    if method == "activity":
        return activity_assignment(record_activity(trainer, split, "mean"),
                                   trainer.task.n_tasks)
    raise ValueError(f"assignment method {method!r}: expected one of {', '.join(ASSIGNMENTS)}")


def subnetwork_masks(layers, assignment: list[np.ndarray], task: int) -> list[dict]:
    """Per layer, the parameter masks that keep only the units serving `task`."""
    return [layer.unit_masks(torch.as_tensor(a == task, device=layer.positions.device))
            for layer, a in zip(layers, assignment)]


def apply_subnetwork_(layers, masks: list[dict]) -> None:
    for layer, mask in zip(layers, masks):
        layer.apply_masks_(mask)


def unit_activity(layer, output: torch.Tensor) -> torch.Tensor:
    """|y| per sample and unit [B, units] (a convolution's map averaged per channel)."""
    return output.abs().reshape(len(output), layer.units, -1).mean(-1)


@torch.no_grad()
def record_activity(trainer, split: str = "val", statistic: str = "mean") -> list[np.ndarray]:
    """[T, units] per layer: the mean (or variance) of each unit's |activity| per task."""
    task = trainer.task
    if task.mode != "sequential":
        raise ValueError(f"record needs data.input_mode: sequential (one task per sample); "
                         f"this run uses {task.mode!r}")
    if statistic not in ("mean", "variance"):
        raise ValueError(f"statistic = {statistic!r}: expected 'mean' or 'variance'")
    layers = spatial_chain(trainer.network)
    inputs, targets = trainer.network_inputs(split), trainer.targets(split)
    which, _ = task.split_target(targets)
    batch = trainer.config["training_params"]["batch_size_eval"]
    trainer.network.eval()
    sums = [torch.zeros(task.n_tasks, layer.units, dtype=torch.float64) for layer in layers]
    squares = [torch.zeros_like(s) for s in sums]
    for first in range(0, len(inputs), batch):
        _, records = trainer.forward(inputs[first:first + batch])
        onehot = torch.nn.functional.one_hot(which[first:first + batch], task.n_tasks).double()
        for k, record in enumerate(records):
            a = unit_activity(record.layer, record.output).cpu().double()
            sums[k] += onehot.T @ a
            squares[k] += onehot.T @ (a * a)
    counts = torch.bincount(which, minlength=task.n_tasks).double()[:, None]
    means = [s / counts for s in sums]
    if statistic == "mean":
        return [m.numpy() for m in means]
    return [(q / counts - m * m).clamp_min(0).numpy() for q, m in zip(squares, means)]


def task_strength(activity: np.ndarray) -> np.ndarray:
    """[T, units]: max(0, a_t - max over the other tasks of a_t') (module docstring)."""
    activity = np.asarray(activity, dtype=np.float64)
    out = np.empty_like(activity)
    for t in range(len(activity)):
        others = np.delete(activity, t, axis=0)
        out[t] = np.maximum(activity[t] - (others.max(0) if len(others) else 0.0), 0.0)
    return out


def separation(layers, assignment: list[np.ndarray]) -> tuple[float, list[float]]:
    """(mean, per layer) silhouette of the positions of each layer's units by the task
    they serve (unassigned units left out; a layer with fewer than two tasks is NaN and
    left out of the mean)."""
    per_layer = []
    for layer, a in zip(layers, assignment):
        keep = a >= 0
        positions = layer.positions.detach().cpu().numpy()[keep]
        per_layer.append(silhouette(positions, a[keep]))
    valid = [s for s in per_layer if np.isfinite(s)]
    return (float(np.mean(valid)) if valid else float("nan")), per_layer
