"""Activity metrics of the tracked layers (`tracked_linear`, `topk_linear`), per epoch.

From what a layer counted during the epoch's training batches (noisy inputs, as the
published TrackedActFunc), with a_j the summed activity of neuron j over the epoch:

    active_fraction   mean over inputs of the fraction of neurons with |y| > threshold
    dead_neurons      number of neurons with a_j < 1e-5;  dead_fraction = that / size
    activity_entropy  -sum_j p_j log2 p_j,  p_j = a_j / sum_i a_i  (bits; log2(size) if
                      every neuron is equally active, 0 if one neuron does all)
    enc_dec_cosine    mean over neurons of cos(w_j, d_j): w_j the neuron's input weights,
                      d_j its output weights in the next layer (when that layer maps back
                      to the tracked layer's input size, as a de-noising decoder does)
    k                 the k of a Top-K layer during the epoch

The first tracked layer (from the input side) writes these names; further ones prefix
them with their path (`layers.2.active_fraction`).
"""
from __future__ import annotations

import math

import torch

from snnsim.registry import METRICS, MetricCallback

from .layers import TopKLinear, TrackedLayer

DEAD_THRESHOLD = 1e-5
ENTROPY_FLOOR = 1e-15  # as published: p = 0 counts as 1e-15 in p log p


def active_fraction(active_count: float, sample_count: float, size: int) -> float:
    """Mean fraction of active neurons per input."""
    return float(active_count) / (float(sample_count) * size) if sample_count else math.nan


def dead_count(activity_sum: torch.Tensor) -> int:
    """Neurons whose summed activity over the epoch is below 1e-5."""
    return int((activity_sum < DEAD_THRESHOLD).sum())


def activity_entropy(activity_sum: torch.Tensor) -> float:
    """Entropy in bits of the neurons' share of the summed activity (nan if none)."""
    total = activity_sum.sum()
    if not total > 0:
        return math.nan
    p = activity_sum / total
    p = torch.where(p == 0, torch.full_like(p, ENTROPY_FLOOR), p)
    return float(-(p * torch.log2(p)).sum())


def encoder_decoder_cosine(encoder: torch.Tensor, decoder: torch.Tensor) -> float:
    """Mean cosine between rows of encoder [N, d] and rows of decoder [N, d]."""
    return float(torch.nn.functional.cosine_similarity(encoder, decoder, dim=1,
                                                       eps=1e-12).mean())


def tracked_layers(trainer) -> list[tuple[str, TrackedLayer, object]]:
    """(path, tracked layer, the layer after it or None) of a run's network."""
    named = trainer.network.named_layers()
    found = []
    for i, (path, layer) in enumerate(named):
        if isinstance(layer, TrackedLayer):
            following = named[i + 1][1] if i + 1 < len(named) else None
            found.append((path, layer, following))
    return found


def decoder_vectors(layer: TrackedLayer, following) -> torch.Tensor | None:
    """The next layer's output weights of each neuron [size, n_inputs of `layer`], if the
    next layer decodes back to `layer`'s input space."""
    weight = getattr(following, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.shape != (layer.output_size,
                                                                 layer.n_inputs):
        return None
    return weight.detach()


def series_prefix(index: int, path: str) -> str:
    return "" if index == 0 else f"{path}."


def _compute(trainer) -> dict[str, float]:
    metrics = {}
    for index, (path, layer, following) in enumerate(tracked_layers(trainer)):
        prefix = series_prefix(index, path)
        taken = layer.take_activity()
        dead = dead_count(taken["activity_sum"])
        metrics[f"{prefix}active_fraction"] = active_fraction(
            taken["active_count"], taken["sample_count"], layer.output_size)
        metrics[f"{prefix}dead_neurons"] = dead
        metrics[f"{prefix}dead_fraction"] = dead / layer.output_size
        metrics[f"{prefix}activity_entropy"] = activity_entropy(taken["activity_sum"])
        decoder = decoder_vectors(layer, following)
        if decoder is not None:
            metrics[f"{prefix}enc_dec_cosine"] = encoder_decoder_cosine(
                layer.encoder_vectors(), decoder)
        if isinstance(layer, TopKLinear):
            metrics[f"{prefix}k"] = layer.k_at(trainer.epoch - 1)  # the k of this epoch
    return metrics


METRICS.register(MetricCallback("sparse_activity", lambda trainer: bool(tracked_layers(trainer)),
                                _compute))
