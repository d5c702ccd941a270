"""Alignment metrics of the feedback family, per epoch (the `feedback_alignment` callback).

After each epoch, for the family's layers with `alignment_metrics: true` (path p, as in
`Network.named_layers()`):

    p.cos_wb            cos(W, B) of the flattened matrices (fa_linear, kp_linear)
    p.update_angle_deg  angle between the rule's update g_rule = (dL/dW, dL/db) of the layer
                        and backprop's g_BP on the same batch with the same parameters
    update_angle_deg    the same over all those layers' (W, b) together
    grad_norm_ratio     ||g_BP|| / ||g_rule|| over all those layers

The gradients are taken at the parameters the next epoch starts from (before its first
step), on a fixed sample of the training split: its first `ALIGNMENT_BATCHES` batches of
`training_params.batch_size` samples in stored order (the task's evaluation-time input, with
its noise drawn from a generator of its own). As in the published code the cosines are
averaged over those batches, then turned into angles (degrees). Computing them changes
nothing in the run: no optimiser state, no `.grad`, not the run's generator; a hardware
session's noise generator and counters are restored after each pass.
"""
from __future__ import annotations

import math

import torch

from snnsim.registry import METRICS, MetricCallback

from .layers import FeedbackLayer, true_gradients

ALIGNMENT_BATCHES = 5
METRIC_SEED_OFFSET = 4099  # de-noising noise of the metric batches: torch_seed + this


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos of the angle between two tensors, flattened, in float64 (nan if either is zero)."""
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else math.nan


def angle_deg(cos: float) -> float:
    """The angle in degrees of a cosine (clipped to [-1, 1] against rounding)."""
    return math.degrees(math.acos(max(-1.0, min(1.0, cos)))) if math.isfinite(cos) else math.nan


def alignment_layers(trainer) -> list[tuple[str, FeedbackLayer]]:
    """(path, layer) of the family's layers of a run that report alignment metrics."""
    return [(path, layer) for path, layer in trainer.network.named_layers()
            if isinstance(layer, FeedbackLayer) and layer.alignment_metrics]


def _layer_parameters(layer: FeedbackLayer) -> list[torch.Tensor]:
    return [layer.weight] + ([layer.bias] if layer.bias is not None else [])


def metric_batches(trainer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed (input, target) batches the metrics use (module docstring)."""
    tp = trainer.config["training_params"]
    inputs, targets = trainer.network_inputs("train"), trainer.targets("train")
    generator = torch.Generator().manual_seed(tp["torch_seed"] + METRIC_SEED_OFFSET)
    size = tp["batch_size"]
    batches = []
    for first in range(0, min(len(inputs), ALIGNMENT_BATCHES * size), size):
        x = inputs[first:first + size]
        target = None if targets is None else targets[first:first + size]
        batches.append(trainer.task.batch(x, target, generator, training=False))
    return batches


def batch_gradients(trainer, x: torch.Tensor, target: torch.Tensor,
                    layers: list[FeedbackLayer]) -> list[list[torch.Tensor]]:
    """Per layer, the gradients of the task's loss on one batch w.r.t. its (W, b), as the
    layers compute them now (their rule, or backprop inside `true_gradients`)."""
    states = [session.state_dict() for session in trainer.hardware_sessions]
    try:
        with torch.enable_grad():
            output, _ = trainer.forward(x)
            loss = trainer.task.loss(output, target.to(trainer.device))
            parameters = [p for layer in layers for p in _layer_parameters(layer)]
            grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    finally:
        for session, state in zip(trainer.hardware_sessions, states):
            session.load_state_dict(state)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]
    per_layer, start = [], 0
    for layer in layers:
        n = len(_layer_parameters(layer))
        per_layer.append(grads[start:start + n])
        start += n
    return per_layer


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in tensors])


def alignment(trainer) -> dict[str, float]:
    """The metrics of the module docstring for the run's current parameters."""
    named = alignment_layers(trainer)
    layers = [layer for _, layer in named]
    metrics = {}
    for path, layer in named:
        feedback = getattr(layer, "feedback", None)
        if feedback is not None and feedback.shape == layer.weight.shape:
            metrics[f"{path}.cos_wb"] = cosine(layer.weight, feedback)
    layer_cos = [[] for _ in layers]
    total_cos, ratios = [], []
    for x, target in metric_batches(trainer):
        rule = batch_gradients(trainer, x, target, layers)
        with true_gradients(trainer.network):
            backprop = batch_gradients(trainer, x, target, layers)
        for i, (g_rule, g_bp) in enumerate(zip(rule, backprop)):
            layer_cos[i].append(cosine(_flat(g_rule), _flat(g_bp)))
        all_rule, all_bp = _flat([g for gs in rule for g in gs]), _flat(
            [g for gs in backprop for g in gs])
        total_cos.append(cosine(all_rule, all_bp))
        norm_rule = float(all_rule.norm())
        ratios.append(float(all_bp.norm()) / norm_rule if norm_rule > 0 else math.nan)
    for (path, _), values in zip(named, layer_cos):
        metrics[f"{path}.update_angle_deg"] = angle_deg(_mean(values))
    metrics["update_angle_deg"] = angle_deg(_mean(total_cos))
    metrics["grad_norm_ratio"] = _mean(ratios)
    return metrics


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


METRICS.register(MetricCallback("feedback_alignment",
                                lambda trainer: bool(alignment_layers(trainer)), alignment))
