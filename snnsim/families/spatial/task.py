"""`spatial_multitask`: classification of several tasks by one network, with wiring costs.

Output layout (published): n_labels x T logits, interleaved, logit l T + t = label l of
task t; o_t = out.reshape(B, n_labels, T)[:, :, t] are task t's logits.

    sequential:           L_task = CE(o_t, l) for a sample of task t with label l (the
                          data set's label l + t n_labels);
    concatenate / mix:    L_task = 1/T sum_t CE(o_t, l_t);
    loss = mean over the batch of L_task + alpha P + beta Tr + gamma R,

    P  = mean over the cost layers of proximity(positions)
    Tr = mean over the cost layers after the first layer of
         transport(positions, previous layer's positions, c(W))
    R  = sum over all layers of sum_ij c(W_ij)   (the published `Regularization`: a
         plain l1 / l2 penalty of every weight, no positions, summed, not averaged)

(`costs.py`; alpha = `proximity`, beta = `transport`, gamma = `regularization`, c from
`norm`, the same for Tr and R as published). The costs need
every layer to be spatial (every layer of the published model is); `cost_layers`
names the layers by index (default: all). Validation losses are the task loss alone.

Metrics: accuracy (mean over the tasks of each task's accuracy; tasks are balanced in
every split) and accuracy_<task>. In sequential mode the prediction of a sample is
made among its own task's logits (argmax of o_t); `predict` without the task returns
the argmax over all logits as a combined label l + t n_labels.

With `sampler: ordered` each training batch holds the samples of one task, the tasks
taking turns batch by batch (`training_batches`: each task's samples in a random
order, cut into batches; a task with more batches than the others ends the epoch
alone). Every training sample is used once per epoch, as with `random`.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from snnsim.errors import ConfigError
from snnsim.registry import TASKS
from snnsim.schema import NUMBER, Field, non_negative, one_of
from snnsim.tasks import TYPE_ONLY, Task

from .costs import NORMS, proximity_cost, transport_cost
from .data import N_LABELS, n_inputs
from .layers import SPATIAL_LAYERS, TRACE


def _cost_layers(value) -> bool:
    return value == "all" or (isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value))


TASK_FIELDS = {
    **TYPE_ONLY,
    "proximity": Field(NUMBER, 0.0, non_negative, "a number >= 0 (alpha)"),
    "transport": Field(NUMBER, 0.0, non_negative, "a number >= 0 (beta)"),
    "regularization": Field(NUMBER, 0.0, non_negative, "a number >= 0 (gamma)"),
    "norm": Field((str,), "l2", one_of(*NORMS), "l1 or l2 (the weight's cost)"),
    "cost_layers": Field((str, list), "all", _cost_layers,
                         "'all' or a list of layer indices into network_layout.layers"),
}


def weight_penalty(layers, norm: str) -> torch.Tensor:
    """R = sum over `layers` of sum_ij c(W_ij) (module docstring)."""
    return torch.stack([layer.unit_cost(norm, 1).sum() for layer in layers]).sum()


def proximity_term(layers, cost_layers) -> torch.Tensor:
    """P of a chain of spatial layers (input side first): the mean over `cost_layers` of
    each layer's proximity cost."""
    return torch.stack([proximity_cost(layers[i].positions) for i in cost_layers]).mean()


def transport_term(layers, cost_layers, norm: str) -> torch.Tensor:
    """Tr of a chain of spatial layers (input side first): the mean over the
    `cost_layers` after the first layer of each layer's transport cost to the layer
    before it (0 if there are none)."""
    transport = [transport_cost(layers[i].positions, layers[i - 1].positions,
                                layers[i].unit_cost(norm, layers[i - 1].units))
                 for i in cost_layers if i > 0]
    return torch.stack(transport).mean() if transport else layers[0].positions.new_zeros(())


def wiring_costs(layers, cost_layers, norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, Tr) of a chain of spatial layers (input side first), over `cost_layers`."""
    return proximity_term(layers, cost_layers), transport_term(layers, cost_layers, norm)


@TASKS.register
class SpatialMultitask(Task):
    """Several classification tasks on interleaved logits, plus wiring costs (module doc)."""

    type_name = "spatial_multitask"
    config_fields = TASK_FIELDS
    example: ClassVar[dict] = {
        "dataset": "spatial_tasks",
        "data": {"tasks": ["digits", "parity_permuted"], "limit": 40},
        "network_layout": {"n_inputs": 784, "layers": [
            {"type": "spatial_linear", "size": 8},
            {"type": "spatial_linear", "size": 20, "activation": "identity"}]},
        "task": {"proximity": 0.1, "transport": 0.1},
    }

    def __init__(self, entry: dict, config: dict):
        super().__init__(entry, config)
        where = "task"
        if config["dataset"] != "spatial_tasks":
            raise ConfigError(f"{where}.type = 'spatial_multitask' needs dataset: spatial_tasks, "
                              f"got {config['dataset']!r}")
        data = config["data"]
        self.task_names = list(data["tasks"])
        self.n_tasks = len(self.task_names)
        self.mode = data["input_mode"]
        self.ordered = data["sampler"] == "ordered"
        if self.ordered and self.mode != "sequential":
            raise ConfigError(f"data.sampler = 'ordered' needs data.input_mode: sequential "
                              f"(got {self.mode!r}): only then has a sample one task")
        self.metric_names = ("loss", "accuracy",
                             *(f"accuracy_{name}" for name in self.task_names))
        layout = config["network_layout"]
        if layout.get("heads"):
            raise ConfigError("network_layout.heads: spatial_multitask reads one output layer "
                              "of n_labels x n_tasks interleaved logits; give no heads")
        layers = layout["layers"]
        size, wanted = layers[-1]["size"], N_LABELS * self.n_tasks
        if layers[-1]["type"] == "spatial_conv2d" or size != wanted:
            raise ConfigError(f"network_layout.layers[{len(layers) - 1}].size = {size}: "
                              f"expected a dense output layer of {N_LABELS} labels x "
                              f"{self.n_tasks} tasks = {wanted} logits")
        if layout["n_inputs"] != n_inputs(data):
            raise ConfigError(f"network_layout.n_inputs = {layout['n_inputs']}: data.input_mode "
                              f"{self.mode!r} with {self.n_tasks} tasks gives "
                              f"{n_inputs(data)} inputs")
        self.alpha, self.beta, self.norm = entry["proximity"], entry["transport"], entry["norm"]
        self.gamma = entry["regularization"]
        chosen = entry["cost_layers"]
        self.cost_layers = list(range(len(layers))) if chosen == "all" else list(chosen)
        bad = [i for i in self.cost_layers if not 0 <= i < len(layers)]
        if bad or len(set(self.cost_layers)) != len(self.cost_layers):
            raise ConfigError(f"task.cost_layers = {chosen!r}: expected distinct indices of "
                              f"existing layers, 0..{len(layers) - 1}"
                              + (f" (no layer {bad[0]})" if bad else ""))
        spatial = {cls.type_name for cls in SPATIAL_LAYERS}
        plain = [i for i, e in enumerate(layers) if e["type"] not in spatial]
        if self.costs_on and plain:
            raise ConfigError(f"task.proximity / task.transport / task.regularization: the "
                              f"costs need every layer "
                              f"to be spatial ({', '.join(sorted(spatial))}); layer {plain[0]} "
                              f"is {layers[plain[0]]['type']!r}")

    @property
    def costs_on(self) -> bool:
        return self.alpha > 0 or self.beta > 0 or self.gamma > 0

    # -- logits and labels ---------------------------------------------------------------

    def task_logits(self, output: torch.Tensor) -> torch.Tensor:
        """[B, n_labels, T]: o[:, l, t] = logit of label l of task t."""
        return output.reshape(len(output), N_LABELS, self.n_tasks)

    def split_target(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(task, label) per sample of a sequential target l + t n_labels."""
        return torch.div(target, N_LABELS, rounding_mode="floor"), target % N_LABELS

    def _own_logits(self, output: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        logits = self.task_logits(output)
        index = task[:, None, None].expand(len(output), N_LABELS, 1)
        return logits.gather(2, index)[..., 0]

    # -- the Task contract -----------------------------------------------------------------

    def training_batches(self, targets, n_samples, batch_size, generator, epoch=0):
        """Random batches (the core's), or with the ordered sampler one task per batch,
        the tasks in turn: [t0 b0, t1 b0, ..., t0 b1, t1 b1, ...]."""
        if not self.ordered:
            return super().training_batches(targets, n_samples, batch_size, generator, epoch)
        order = torch.randperm(n_samples, generator=generator)
        task, _ = self.split_target(targets[order])
        per_task = [order[task == t].split(batch_size) for t in range(self.n_tasks)]
        return [batches[i] for i in range(max(map(len, per_task)))
                for batches in per_task if i < len(batches)]

    def per_sample_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(output.device)
        if self.mode == "sequential":
            task, label = self.split_target(target)
            return F.cross_entropy(self._own_logits(output, task), label, reduction="none")
        logits = self.task_logits(output)
        return torch.stack([F.cross_entropy(logits[:, :, t], target[:, t], reduction="none")
                            for t in range(self.n_tasks)], 1).mean(1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.per_sample_loss(output, target).mean() if len(output) else \
            output.sum() * 0.0
        if self.costs_on:
            loss = loss + self.cost(output)
        return loss

    def cost(self, output: torch.Tensor) -> torch.Tensor:
        """alpha P + beta Tr + gamma R of the layers that produced `output` (module
        docstring)."""
        layers = getattr(output, TRACE, ())
        if len(layers) <= max(self.cost_layers):
            raise ValueError(f"spatial_multitask: the output was not made by a chain of "
                             f"{max(self.cost_layers) + 1} spatial layers (found "
                             f"{len(layers)}); cannot add the wiring costs")
        # a term whose coefficient is 0 is not computed (it would cost a pairwise distance
        # matrix per layer, forward and backward, at every step)
        cost = layers[0].positions.new_zeros(())
        if self.alpha:
            cost = cost + self.alpha * proximity_term(layers, self.cost_layers)
        if self.beta:
            cost = cost + self.beta * transport_term(layers, self.cost_layers, self.norm)
        if self.gamma:
            cost = cost + self.gamma * weight_penalty(layers, self.norm)
        return cost

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """[B, T] correct predictions per sample and task (sequential: 0 for other tasks)."""
        target = target.to(output.device)
        if self.mode == "sequential":
            task, label = self.split_target(target)
            hit = self._own_logits(output, task).argmax(1) == label
            onehot = F.one_hot(task, self.n_tasks).bool()
            return onehot & hit[:, None]
        return self.task_logits(output).argmax(1) == target

    def scores(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Sums over the batch; divided by the split's sample count they are accuracies
        (sequential: task t holds 1/T of the samples, hence the factor T)."""
        per_task = self.correct(output, target).sum(0).double()
        if self.mode == "sequential":
            per_task = per_task * self.n_tasks
        out = {"accuracy": float(per_task.sum() / self.n_tasks)}
        out.update({f"accuracy_{name}": float(per_task[t])
                    for t, name in enumerate(self.task_names)})
        return out

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Sequential: combined label l + t n_labels of the largest logit; else [B, T]."""
        if self.mode == "sequential":
            index = output.argmax(1)
            return index // self.n_tasks + (index % self.n_tasks) * N_LABELS
        return self.task_logits(output).argmax(1)
