"""Wiring costs of spatially embedded layers and the separation score of their positions.

Every neuron ("unit": a dense layer's output neuron, a convolution's output channel) has
a position p_i in the plane. With P the positions of a layer (n units) and Q those of
the layer before it (m units), W the layer's weights reduced to units ([n, m]):

    proximity(P)       = 1/n^2 sum_{i,j} exp(-sqrt(|p_i - p_j|^2 + eps)),  eps = 1e-8
                         (all pairs, i = j included, as published)
    transport(P, Q, W) = 1/(n m) sum_{i,j} |p_i - q_j|_2 * c(W_ij)
                         c(w) = |w| (norm "l1") or w^2 (norm "l2", the default)

The distance is always Euclidean; the norm applies to the weight. For a convolution
W_ij is the kernel between output channel i and input channel j and c sums over its
k_h x k_w entries; a dense layer after a convolution sees one input per (channel,
pixel), each at its channel's position.

Separation (`silhouette`): the mean silhouette of positions X labelled by task,

    s_i = (b_i - a_i) / max(a_i, b_i),
    a_i = mean distance from i to the other points of its own task,
    b_i = min over the other tasks of the mean distance from i to that task's points,

with s_i = 0 for a point alone in its task. Near 1: each task's neurons form a
tight cluster far from the others; near 0: mixed; negative: interleaved.
"""
from __future__ import annotations

import numpy as np
import torch

PROXIMITY_EPS = 1e-8
NORMS = ("l1", "l2")


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """[n, m] matrix sqrt(|a_i - b_j|^2 + eps) of positions a [n, 2] and b [m, 2].

    From the coordinate differences (`torch.cdist` without its |a|^2 + |b|^2 - 2ab
    shortcut, which loses precision). With eps = 0 the gradient at a_i = b_j is taken as
    0 (a subgradient); with eps > 0 the distance is differentiable everywhere.
    """
    distance = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    return distance if eps == 0 else torch.sqrt(distance * distance + eps)


def proximity_cost(positions: torch.Tensor) -> torch.Tensor:
    """Mean over all pairs (i, j) of exp(-sqrt(|p_i - p_j|^2 + 1e-8)) (scalar)."""
    return torch.exp(-pairwise_distance(positions, positions, PROXIMITY_EPS)).mean()


def weight_cost(weight_units: torch.Tensor, norm: str) -> torch.Tensor:
    """c(W): |W| for "l1", W^2 for "l2" (elementwise)."""
    if norm == "l1":
        return weight_units.abs()
    if norm == "l2":
        return weight_units * weight_units
    raise ValueError(f"norm = {norm!r}: expected one of {', '.join(NORMS)}")


def transport_cost(positions: torch.Tensor, previous: torch.Tensor,
                   weight_cost_units: torch.Tensor) -> torch.Tensor:
    """Mean over (i, j) of |p_i - q_j|_2 * C_ij, C [n, m] the weights' costs (scalar).

    The distance has no eps: it is multiplied by a weight cost, and its gradient at
    p_i = q_j (a subgradient) is taken as 0 (`pairwise_distance`).
    """
    distance = pairwise_distance(positions, previous, 0.0)
    return (distance * weight_cost_units).mean()


def spread(points: np.ndarray) -> float:
    """Median over the points [n, d] of their Euclidean distance to the coordinate-wise
    median point: the scale of a layout (about 1.18 for N(0, 1) positions in the plane,
    the median of a Rayleigh distribution, sqrt(2 ln 2)). The silhouette is scale-free;
    next to it, this tells two clusters at the scale of the initial layout from units
    collapsed into one spot."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return float("nan")
    return float(np.median(np.linalg.norm(points - np.median(points, 0), axis=1)))


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of `points` [n, d] by integer `labels` [n] (module docstring).

    NaN when fewer than two labels occur (separation is undefined).
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    groups = np.unique(labels)
    if len(groups) < 2:
        return float("nan")
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    member = labels[None, :] == groups[:, None]                   # [k, n]
    counts = member.sum(1)                                        # [k]
    sums = distance @ member.T.astype(np.float64)                 # [n, k]: sum of distances
    own = np.searchsorted(groups, labels)
    n_own = counts[own] - 1
    a = np.where(n_own > 0, sums[np.arange(len(points)), own] / np.maximum(n_own, 1), 0.0)
    means = sums / counts[None, :]
    means[np.arange(len(points)), own] = np.inf
    b = means.min(1)
    scale = np.maximum(a, b)
    s = np.where((n_own > 0) & (scale > 0), (b - a) / np.where(scale > 0, scale, 1.0), 0.0)
    return float(s.mean())
