"""Tasks: what the network's output means — its loss, its prediction and its metrics.

A task (registered in `snnsim.registry.TASKS`, chosen by the config's `task: {type: ...}`,
by default the data set's) is built as `cls(entry, config)` and provides

    metric_names            per-epoch metrics it reports ("loss" first; the primary metric
                            is `primary_metric`: what `inference` prints)
    batch(x, target, generator, training) -> (network input, loss target)
    per_sample_loss(output, target) -> [B];  loss(output, target) -> scalar
    scores(output, target) -> {metric: sum over the batch} (e.g. correct predictions)
    predict(output)         class per sample (classification) or the output itself

Spike-time classification (published losses, times in units of tau_s):

    TTFS:  L = log sum_k exp(-t_k / (xi tau_s)) + t_y / (xi tau_s) + alpha exp(t_y / (beta tau_s))
           (cross-entropy of a softmax over -t, plus a push towards early label spikes);
           a sample whose label neuron did not spike costs MISSING_SPIKE_LOSS.
           Prediction: the earliest output.
    MSE:   L = 1/2 (t_k - target_k)^2 averaged over samples and outputs, target t_correct for
           the label neuron and t_wrong for the others; an output that did not spike costs
           MISSING_SPIKE_LOSS. Prediction: the output closest to t_correct.

A sample whose selected output did not spike counts as wrong (prediction -1).

Rate tasks: classification (cross-entropy of the output logits, prediction argmax),
regression (L = mean over outputs of (y - target)^2), de-noising (input x + sigma n,
n ~ N(0, 1), target the clean x, the same squared error; the noise stays on when
evaluating, drawn from a generator seeded per evaluation so scores are reproducible).
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from snnsim.registry import TASKS
from snnsim.schema import NUMBER, Field, non_negative

MISSING_SPIKE_LOSS = 100.0
TYPE_ONLY = {"type": Field((str,), None, required=True)}


class Task:
    """Base of all tasks: classification defaults (labels as targets, no input change)."""

    type_name: ClassVar[str]
    config_fields: ClassVar[dict[str, Field]] = TYPE_ONLY
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy")
    primary_metric: ClassVar[str] = "accuracy"
    classifies: ClassVar[bool] = True
    # A small config this task runs on (data set and network): docs and conformance tests.
    example: ClassVar[dict] = {
        "dataset": "yin_yang", "network_layout": {"n_inputs": 4, "layers": [
            {"type": "linear", "size": 8}, {"type": "linear", "size": 3,
                                            "activation": "identity"}]}}

    def __init__(self, entry: dict, config: dict):
        self.entry = entry

    def training_batches(self, targets: torch.Tensor | None, n_samples: int, batch_size: int,
                         generator: torch.Generator, epoch: int = 0) -> list[torch.Tensor]:
        """Sample indices of one training epoch's batches, in training order: a random
        permutation of all samples cut into batches of `batch_size` (the last may be
        smaller). A task may order them otherwise (e.g. one task per batch, in turn);
        every sample should appear once. `epoch` is the 0-based index of the epoch (the
        epochs trained before it, restored on `continue`): a task that draws its epochs
        from a stream of its own derives them from it, so that a continued run trains on
        what an uninterrupted one would."""
        return list(torch.randperm(n_samples, generator=generator).split(batch_size))

    def batch(self, x: torch.Tensor, target: torch.Tensor | None, generator: torch.Generator,
              training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The network input and the loss target of a batch."""
        return x, target

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample_loss(output, target).mean()

    def scores(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Sums over the batch of the metrics other than the loss."""
        return {"accuracy": float((self.predict(output) == target).sum())}

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output.argmax(1)


@TASKS.register
class SpikeTimeClassification(Task):
    """Classification by first-spike times of the output layer (TTFS or MSE loss).

    The loss is the published one of `training_params.loss`.
    """

    type_name = "spike_classification"
    example: ClassVar[dict] = {"dataset": "xor", "network_layout": {
        "n_inputs": 4, "layer_sizes": [6, 2], "n_biases": [1, 1], "bias_times": [0.9],
        "weight_means": [1.5, 0.5], "weight_stdevs": [0.8, 0.8]}}

    def __init__(self, entry: dict, config: dict):
        super().__init__(entry, config)
        loss = config["training_params"]["loss"]
        self.kind = loss["type"]
        self.tau_syn = float(config["neuron_params"]["tau_syn"])
        self.xi, self.alpha, self.beta = loss["xi"], loss["alpha"], loss["beta"]
        self.t_correct = loss["t_correct"] * self.tau_syn
        self.t_wrong = loss["t_wrong"] * self.tau_syn

    def per_sample_loss(self, t_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of every sample (no gradient flows through non-spiking outputs)."""
        fired = torch.isfinite(t_out)
        # Missing spikes are replaced before any arithmetic so that no inf*0 reaches autograd.
        t = torch.where(fired, t_out, torch.zeros_like(t_out))
        if self.kind == "TTFS":
            scale = self.xi * self.tau_syn
            t_label = t.gather(1, labels[:, None])[:, 0]
            logits = torch.where(fired, -t / scale, torch.full_like(t, -torch.inf))
            loss = (torch.logsumexp(logits, 1) + t_label / scale
                    + self.alpha * torch.exp(t_label / (self.beta * self.tau_syn)))
            label_fired = fired.gather(1, labels[:, None])[:, 0]
            return torch.where(label_fired, loss, torch.full_like(loss, MISSING_SPIKE_LOSS))
        target = torch.full_like(t, self.t_wrong)
        target.scatter_(1, labels[:, None], self.t_correct)
        element = torch.where(fired, 0.5 * (t - target) ** 2,
                              torch.full_like(t, MISSING_SPIKE_LOSS))
        return element.mean(1)

    def predict(self, t_out: torch.Tensor) -> torch.Tensor:
        """Selected class per sample, -1 where the selected output did not spike."""
        if self.kind == "TTFS":
            choice = t_out.argmin(1)
        else:
            distance = torch.where(torch.isfinite(t_out), (t_out - self.t_correct).abs(),
                                   torch.full_like(t_out, torch.inf))
            choice = distance.argmin(1)
        fired = torch.isfinite(t_out.gather(1, choice[:, None])[:, 0])
        return torch.where(fired, choice, torch.full_like(choice, -1))


@TASKS.register
class Classification(Task):
    """Classification of real-valued outputs (logits) by cross-entropy; prediction argmax."""

    type_name = "classification"

    def per_sample_loss(self, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, labels, reduction="none")


@TASKS.register
class Regression(Task):
    """Regression: L = mean over the outputs of (y - target)^2, averaged over samples."""

    type_name = "regression"
    metric_names = ("loss",)
    primary_metric = "loss"
    classifies = False
    example: ClassVar[dict] = {
        "dataset": "sine", "data": {"n_train": 64, "n_val": 32, "n_test": 32},
        "network_layout": {"n_inputs": 1, "layers": [
            {"type": "linear", "size": 8, "activation": "tanh"},
            {"type": "linear", "size": 1, "activation": "identity"}]}}

    def per_sample_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target.to(output.dtype)).pow(2).flatten(1).mean(1)

    def scores(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {}

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output


@TASKS.register
class Denoising(Regression):
    """De-noising: input x + noise_std n, n ~ N(0, 1); target the clean x (squared error).

    The noise stays on when evaluating (`noise_at_eval`), as in the published work.
    """

    type_name = "denoising"
    example: ClassVar[dict] = {
        "dataset": "teacher_student",
        "data": {"n_inputs": 6, "n_train": 64, "n_val": 32, "n_test": 32},
        "network_layout": {"n_inputs": 6, "layers": [
            {"type": "linear", "size": 12}, {"type": "linear", "size": 6,
                                             "activation": "identity"}]}}
    config_fields: ClassVar[dict] = {
        **TYPE_ONLY,
        "noise_std": Field(NUMBER, 0.1, non_negative, "a number >= 0"),
        "noise_at_eval": Field((bool,), True),
    }

    def batch(self, x: torch.Tensor, target: torch.Tensor | None, generator: torch.Generator,
              training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not (training or self.entry["noise_at_eval"]) or self.entry["noise_std"] == 0:
            return x, x
        noise = torch.randn(x.shape, dtype=x.dtype, generator=generator).to(x.device)
        return x + self.entry["noise_std"] * noise, x
