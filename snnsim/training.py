"""The training loop shared by every model family (docs/design.md, section 7).

One `Trainer` owns a run: a private copy of the resolved config, the network, the
optimiser and scheduler, one seeded `torch.Generator` (weight init, shuffling, input
noise), the task and the data. Per batch:

1. the inputs: the data set's values, as spike times (the config's `encoding`) when the
   first layer is spiking; optional spike-time noise t <- |t + N(mean, std)| (reflected
   at 0); then the task's own change (e.g. de-noising adds noise, the clean input
   becomes the target);
2. forward pass through all layers;
3. weight bumping (spiking layers only): if in the first spiking layer (from the input
   side) the fraction of silent (sample, neuron) pairs exceeds that layer's
   `max_num_missing_spikes`, the update is skipped and the weights into that layer's
   silent neurons (targeted) or all its weights are raised by a value that doubles while
   the same layer keeps needing it (`weight_bumping_exp`), else resets to
   `weight_bumping_value`;
4. otherwise loss (task loss + layers' `extra_loss()`), backward, gradient clipping
   (`max_grad_norm`), optimiser step (weight decay inside it: p <- p - lr (g + wd p) for
   SGD), then layers' `local_update(input, output)` under `no_grad`;
5. layers' `constrain_(settings)` (weight clipping and other per-layer constraints).

After the epoch the scheduler steps, the layers' `epoch_end(epoch)` run, the validation
split is evaluated and the registered metric callbacks add their series. Everything
that influences the next epoch is in `state_dict()`, so a run continued from a
checkpoint is identical to an uninterrupted one.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from snnsim.checkpoint import Checkpoint
from snnsim.datasets import Dataset, encode_times, load_dataset
from snnsim.layers import RunSettings, TorchRate
from snnsim.network import Network
from snnsim.reference import EulerIntegratorBackend
from snnsim.registry import METRICS, TASKS

EVAL_SEED_OFFSET = 7919  # evaluation noise (de-noising) is drawn from torch_seed + this


@dataclass
class Evaluation:
    """Outputs and scores of the network on one data split."""

    metrics: dict[str, float]    # the task's metrics ("loss", "accuracy", ...)
    outputs: np.ndarray | dict   # [n, n_outputs] (spike times for spiking outputs); a dict
                                 # {head: [n, n_head]} for a multi-head network
    predictions: np.ndarray | dict  # [n] classes (-1: the selected output did not spike),
                                    # or the outputs for regression
    targets: np.ndarray          # what the loss compared with: labels, regression targets,
                                 # the clean inputs of de-noising
    inputs: np.ndarray           # the network's inputs (spike times for spiking networks)
    hidden: list[np.ndarray] = field(default_factory=list)  # only if asked: per hidden layer

    @property
    def loss(self) -> float:
        return self.metrics["loss"]

    @property
    def accuracy(self) -> float:
        return self.metrics.get("accuracy", math.nan)

    @property
    def labels(self) -> np.ndarray | None:
        return self.targets


def make_backends(backend: str, config: dict, network: Network, config_dir: Path | None,
                  generator_seed: int) -> tuple[tuple, list]:
    """One backend per layer of `network.named_layers()`, and the hardware sessions.

    Spiking layers get the chosen spike backend (wrapped for the Euler integrator if
    asked) or, for `bss2`, a BrainScaleS-2 session's per-layer backends; rate layers
    get torch (`cpu`, `torch`, `cuda`) or the chip's analog matrix-multiply mode (`bss2`).
    Records the hardware settings in `config` (the trainer's own copy).
    """
    named = network.named_layers()
    spiking = [layer for _, layer in named if layer.spiking]
    rate_indices = [i for i, (_, layer) in enumerate(named) if not layer.spiking]
    tp = config["training_params"]
    sessions = []
    if backend == "bss2":
        from hw import ChipSession, HardwareConfig

        hardware = HardwareConfig.from_dict(config.get("hardware") or {}, base_dir=config_dir)
        # Record the settings with the calibration's absolute path, and keep weights in the
        # range the 6-bit synapses can represent (as the published hardware runs did).
        config["hardware"] = hardware.to_dict()
        spike_backends, rate_backends = [], []
        if spiking:
            tp["clip_weights_max"] = min(tp["clip_weights_max"] or math.inf, hardware.max_weight)
            session = ChipSession(hardware, [tuple(layer.weight.shape) for layer in spiking])
            sessions.append(session)
            spike_backends = [session.layer_backend(i) for i in range(len(spiking))]
        if rate_indices:
            from hw.analog import AnalogSession

            analog = AnalogSession(hardware, seed=generator_seed)
            sessions.append(analog)
            rate_backends = [analog.linear_backend(i) for i in rate_indices]
    else:
        from backends import get_backend

        get_backend(backend)  # fail early with a clear message
        spike = backend
        if tp["use_forward_integrator"]:
            spike = EulerIntegratorBackend(tp["resolution"], tp["sim_time"], backend)
        spike_backends = [spike] * len(spiking)
        rate_backends = [TorchRate()] * len(rate_indices)
    spike_iter, rate_iter = iter(spike_backends), iter(rate_backends)
    backends = tuple(next(spike_iter) if layer.spiking else next(rate_iter)
                     for _, layer in named)
    return backends, sessions


def map_output(fn, output):
    """`fn` applied to a network output: a tensor, or {head: tensor} of a multi-head network."""
    return {head: fn(value) for head, value in output.items()} if isinstance(output, dict) \
        else fn(output)


def _concatenate(batches: list):
    """Per-batch outputs (tensors or {head: tensor}) joined along the samples."""
    if isinstance(batches[0], dict):
        return {head: torch.cat([b[head] for b in batches]) for head in batches[0]}
    return torch.cat(batches)


class Trainer:
    """A training run: network, optimiser, scheduler, RNG, task and data."""

    def __init__(self, config: dict, backend: str = "cpu", datasets: dict | None = None,
                 config_dir: Path | None = None):
        config = copy.deepcopy(config)
        tp = config["training_params"]
        self.config = config
        self.backend_name = backend
        self.device = torch.device("cuda" if backend == "cuda" else "cpu")
        self.generator = torch.Generator().manual_seed(tp["torch_seed"])
        self.network = Network(config, self.generator)
        # The backends first: an unavailable one (no GPU, no chip) fails with its reason.
        self.backends, self.hardware_sessions = make_backends(
            backend, config, self.network, config_dir, tp["torch_seed"])
        self.dtype = getattr(torch, tp["dtype"])
        self.network.to(self.device, self.dtype)
        self._datasets = dict(datasets or {})
        self._inputs: dict[str, torch.Tensor] = {}
        self.task = TASKS.get(config["task"]["type"])(config["task"], config)
        self.optimizer = self._make_optimizer(tp)
        self.scheduler = self._make_scheduler(tp["lr_scheduler"])
        self.settings = RunSettings(max_dw_norm=tp["max_dw_norm"],
                                    rounding_precision=tp["rounding_precision"],
                                    clip_weights_max=tp["clip_weights_max"])
        self.epoch = 0
        self.bump_value = float(tp["weight_bumping_value"])
        self.last_bumped = -1
        self.history: dict[str, list[float]] = {key: [] for key in self._history_keys()}

    # -- construction ----------------------------------------------------------------------

    def _history_keys(self) -> list[str]:
        """The per-epoch series every run of this config records, in metrics.csv order."""
        keys = [f"{split}_{name}" for split in ("train", "val")
                for name in self.task.metric_names]
        if self.optimizer is not None:
            keys.append("learning_rate")
        if self.network.spiking_layers:
            keys.append("bumps")
        return keys + ["epoch_seconds"]

    def _parameter_groups(self) -> list[dict]:
        """Optimiser groups: the layers' own (`parameter_groups()`), the rest in one."""
        default, groups = [], []
        for _, layer in self.network.named_layers():
            if hasattr(layer, "parameter_groups"):
                groups.extend(layer.parameter_groups())
            else:
                default.extend(p for p in layer.parameters() if p.requires_grad)
        return ([{"params": default}] if default else []) + groups

    def _make_optimizer(self, tp: dict):
        kind = tp["optimizer"].lower()
        if kind == "none":
            return None
        groups = self._parameter_groups()
        if not groups:
            raise ValueError("the network has no parameters that train by gradient; "
                             "set training_params.optimizer: none")
        if kind == "adam":
            return torch.optim.Adam(groups, lr=tp["learning_rate"],
                                    weight_decay=tp["weight_decay"])
        return torch.optim.SGD(groups, lr=tp["learning_rate"], momentum=tp["momentum"],
                               weight_decay=tp["weight_decay"])

    def _make_scheduler(self, spec: dict):
        kind = spec["type"]
        if kind is None or self.optimizer is None:
            return None
        if kind == "StepLR":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=spec["step_size"],
                                                   gamma=spec["gamma"])
        if kind == "MultiStepLR":
            return torch.optim.lr_scheduler.MultiStepLR(self.optimizer,
                                                        milestones=spec["milestones"],
                                                        gamma=spec["gamma"])
        return torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=spec["gamma"])

    # -- data ------------------------------------------------------------------------------

    def dataset(self, split: str) -> Dataset:
        """Split `split` of the run's data set (loaded once; no other split is read)."""
        if split not in self._datasets:
            self._datasets[split] = load_dataset(self.config["dataset"], split,
                                                 options=self.config["data"])
        return self._datasets[split]

    def network_inputs(self, split: str) -> torch.Tensor:
        """The network's inputs [n, n_inputs] of a split: spike times under the config's
        encoding for a spiking first layer, else the data set's values."""
        if split not in self._inputs:
            data = self.dataset(split)
            if data.n_inputs != self.network.n_inputs:
                raise ValueError(f"data set {data.name!r} has {data.n_inputs} inputs per "
                                 f"sample but network_layout.n_inputs is "
                                 f"{self.network.n_inputs}")
            self._inputs[split] = torch.from_numpy(self.as_network_input(data.inputs)).to(
                self.dtype)
        return self._inputs[split]

    def as_network_input(self, values: np.ndarray) -> np.ndarray:
        """Data values [n, ...] as network inputs [n, n_inputs]: spike times under the
        config's encoding for a spiking first layer, else the values, flattened."""
        if self.network.input_kind == "spiking":
            return encode_times(values, self.config["encoding"])
        return np.asarray(values, dtype=np.float64).reshape(len(values), -1)

    def targets(self, split: str) -> torch.Tensor | None:
        targets = self.dataset(split).targets
        return None if targets is None else torch.from_numpy(targets)

    # -- one batch -------------------------------------------------------------------------

    def forward(self, x: torch.Tensor):
        """(output, layer records) of the network on a batch (on the run's device, in its
        dtype)."""
        return self.network(x.to(self.device, self.dtype), self.backends, self.settings)

    def _spike_noise(self, t_in: torch.Tensor) -> torch.Tensor:
        noise = self.config["training_params"]["training_noise"]
        if not noise:
            return t_in
        jitter = torch.empty_like(t_in).normal_(noise["mean"], noise["std_dev"],
                                                generator=self.generator)
        return (t_in + jitter).abs()

    def _bump_if_silent(self, records) -> int:
        """Bump weights into silent neurons if needed; the bumped layer's index or -1."""
        tp = self.config["training_params"]
        for index, record in enumerate(records):
            layer = record.layer
            if not layer.spiking:
                continue
            silent = ~torch.isfinite(record.output)
            if silent.float().mean().item() <= layer.max_num_missing_spikes:
                continue
            if tp["weight_bumping_exp"] and index == self.last_bumped:
                self.bump_value *= 2.0
            else:
                self.bump_value = float(tp["weight_bumping_value"])
            with torch.no_grad():
                if tp["weight_bumping_targeted"]:
                    layer.weight += self.bump_value * silent.any(0).to(layer.weight.dtype)
                else:
                    layer.weight += self.bump_value
            return index
        return -1

    def _step(self, loss: torch.Tensor) -> None:
        if self.optimizer is None:
            return
        self.optimizer.zero_grad()
        if loss.requires_grad:
            loss.backward()
        max_norm = self.config["training_params"]["max_grad_norm"]
        if max_norm:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), max_norm)
        self.optimizer.step()

    def train_epoch(self, progress=None) -> dict:
        """Train one epoch and evaluate on the validation split; returns this epoch's metrics."""
        tp = self.config["training_params"]
        start = time.perf_counter()
        inputs, targets = self.network_inputs("train"), self.targets("train")
        n_samples = len(inputs)
        batches = self.task.training_batches(targets, n_samples, tp["batch_size"],
                                             self.generator, self.epoch)
        losses, sums, n_bumps, n_scored = [], {}, 0, 0
        layers = [layer for _, layer in self.network.named_layers()]
        self.network.train()
        for idx in batches:
            x = inputs[idx]
            if self.network.input_kind == "spiking":
                x = self._spike_noise(x)
            x, target = self.task.batch(x, None if targets is None else targets[idx],
                                        self.generator, training=True)
            target = target.to(self.device)
            output, records = self.forward(x)
            bumped = self._bump_if_silent(records)
            self.last_bumped = bumped
            if bumped >= 0:
                n_bumps += 1
            else:
                loss = self.task.loss(output, target)
                for layer in layers:
                    if hasattr(layer, "extra_loss"):
                        loss = loss + layer.extra_loss()
                self._step(loss)
                with torch.no_grad():
                    for record in records:
                        if hasattr(record.layer, "local_update"):
                            record.layer.local_update(record.input.detach(),
                                                      record.output.detach())
                losses.append(loss.item())
            with torch.no_grad():
                for layer in layers:
                    if hasattr(layer, "constrain_"):
                        layer.constrain_(self.settings)
            for name, value in self.task.scores(map_output(torch.Tensor.detach, output),
                                                target).items():
                sums[name] = sums.get(name, 0.0) + value
            n_scored += len(target)
            if progress is not None:
                progress.update(len(idx))
        metrics = {"train_loss": float(np.mean(losses)) if losses else float("nan")}
        metrics.update({f"train_{name}": value / max(n_scored, 1) for name, value in sums.items()})
        if self.optimizer is not None:
            metrics["learning_rate"] = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            with warnings.catch_warnings():
                # The schedule counts epochs, as published, even one whose batches were all
                # weight bumps (no optimiser step); torch would warn about that order.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                        category=UserWarning)
                self.scheduler.step()
        for layer in layers:
            if hasattr(layer, "epoch_end"):
                metrics.update(layer.epoch_end(self.epoch + 1) or {})
        validation = self.evaluate("val")
        metrics.update({f"val_{name}": value for name, value in validation.metrics.items()})
        if self.network.spiking_layers:
            metrics["bumps"] = n_bumps
        self.epoch += 1
        for callback in METRICS.values():
            if callback.applies(self):
                metrics.update(callback.compute(self))
        metrics["epoch_seconds"] = time.perf_counter() - start
        self._record(metrics)
        return metrics

    def _record(self, metrics: dict) -> None:
        """Append one epoch to the history; a series seen for the first time is padded
        with NaN for the earlier epochs, a series missing this epoch gets NaN."""
        for key in metrics:
            if key not in self.history:
                self.history[key] = [math.nan] * (self.epoch - 1)
        for key, values in self.history.items():
            values.append(float(metrics.get(key, math.nan)))

    # -- evaluation ------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, split: str, keep_hidden: bool = False) -> Evaluation:
        """The task's metrics and the outputs of the network on `split` (no training noise).

        With `keep_hidden` the outputs of every hidden layer are kept too (for plots); by
        default only the output layer's are, so memory does not grow with the width.
        """
        inputs, targets = self.network_inputs(split), self.targets(split)
        batch = self.config["training_params"]["batch_size_eval"]
        generator = torch.Generator().manual_seed(
            self.config["training_params"]["torch_seed"] + EVAL_SEED_OFFSET)
        self.network.eval()
        outputs, hidden, losses, used = [], [], [], []
        for first in range(0, len(inputs), batch):
            x = inputs[first:first + batch]
            target = None if targets is None else targets[first:first + batch]
            x, target = self.task.batch(x, target, generator, training=False)
            output, records = self.forward(x)
            losses.append(self.task.per_sample_loss(output, target.to(self.device)).cpu())
            outputs.append(map_output(torch.Tensor.cpu, output))
            used.append(target)
            if keep_hidden:
                hidden.append([r.output.cpu() for r in records[:-1]])
        output = _concatenate(outputs)
        target = torch.cat(used)
        metrics = {"loss": float(torch.cat(losses).mean())}
        metrics.update({name: value / len(inputs)
                        for name, value in self.task.scores(output, target).items()})
        return Evaluation(
            metrics=metrics,
            outputs=map_output(torch.Tensor.numpy, output),
            predictions=map_output(torch.Tensor.numpy, self.task.predict(output)),
            targets=target.numpy(),
            inputs=inputs.numpy(),
            hidden=[torch.cat([h[i] for h in hidden]).numpy()
                    for i in range(len(hidden[0]))] if hidden else [],
        )

    # -- state -----------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        info = {"backend": self.backend_name, "bump_value": self.bump_value,
                "last_bumped": self.last_bumped, "metric_names": list(self.history)}
        for session in self.hardware_sessions:
            key = "hardware" if len(self.hardware_sessions) == 1 else session.__class__.__name__
            info[key] = session.describe()
            info[f"{key}_state"] = session.state_dict()
        return Checkpoint(
            epoch=self.epoch,
            config=self.config,
            parameters={k: v.detach().cpu().clone()
                        for k, v in self.network.state_dict().items()},
            optimizer=(copy.deepcopy(self.optimizer.state_dict()) if self.optimizer is not None
                       else None),
            scheduler=(copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None
                       else None),
            rng={"torch": self.generator.get_state()},
            metrics={key: np.asarray(values, dtype=np.float64)
                     for key, values in self.history.items()},
            info=info,
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load network, optimiser, scheduler, RNG and loop state from a checkpoint."""
        self.network.load_parameters_(checkpoint.parameters)
        if checkpoint.optimizer is not None and self.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        if checkpoint.scheduler is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint.scheduler)
        if "torch" in checkpoint.rng:
            self.generator.set_state(checkpoint.rng["torch"])
        self.epoch = checkpoint.epoch
        self.bump_value = float(checkpoint.info.get("bump_value", self.bump_value))
        self.last_bumped = int(checkpoint.info.get("last_bumped", -1))
        names = checkpoint.info.get("metric_names") or [
            key for key in self._history_keys() if key in checkpoint.metrics]
        names += [key for key in self._history_keys() if key not in names]
        self.history = {key: list(checkpoint.metrics.get(key, [math.nan] * self.epoch))
                        for key in names}
        for session in self.hardware_sessions:
            key = "hardware" if len(self.hardware_sessions) == 1 else session.__class__.__name__
            if f"{key}_state" in checkpoint.info:
                session.load_state_dict(checkpoint.info[f"{key}_state"])
