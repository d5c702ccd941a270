"""The training loop shared by every model family (DESIGN.md section 3).

One `Trainer` owns a run: the network, the optimiser and scheduler, one seeded
`torch.Generator` (weight init, shuffling, input noise), the task and the data.
Per batch:

1. optional input noise, t <- |t + N(mean, std)| (reflected at 0);
2. forward pass through all layers;
3. weight bumping: if in the first layer (from the input side) the fraction of
   silent (sample, neuron) pairs exceeds that layer's `max_num_missing_spikes`, the
   update is skipped and the weights into that layer's silent neurons (targeted)
   or all its weights are raised by a value that doubles while the same layer keeps
   needing it (`weight_bumping_exp`), else resets to `weight_bumping_value`;
4. otherwise loss (task loss + layers' `extra_loss()`), backward, optimiser step,
   layers' `local_update()`;
5. weights clipped to +-`clip_weights_max`.

The scheduler steps once per epoch, then the validation set is evaluated.
Everything that influences the next epoch is in `state_dict()`, so a run
continued from a checkpoint is identical to an uninterrupted one.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnsim.checkpoint import Checkpoint
from snnsim.datasets import SpikeDataset, load_dataset
from snnsim.layers import RunSettings
from snnsim.network import Network
from snnsim.reference import EulerIntegratorBackend
from snnsim.tasks import SpikeTimeClassification

HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                "bumps", "epoch_seconds")


@dataclass
class Evaluation:
    """Outputs and scores of the network on one data split."""

    loss: float
    accuracy: float
    outputs: np.ndarray          # [n, n_classes] output spike times
    hidden: list[np.ndarray]     # per hidden layer [n, size]
    predictions: np.ndarray      # [n], -1 where the selected output did not spike
    labels: np.ndarray
    inputs: np.ndarray


def make_backends(backend, n_layers: int, config: dict, network: Network,
                  config_dir: Path | None) -> tuple:
    """One backend per layer: the chosen name, wrapped for the Euler integrator if asked,
    or a BrainScaleS-2 session's per-layer backends for `bss2`."""
    if backend == "bss2":
        from hw import ChipSession, HardwareConfig

        hardware = HardwareConfig.from_dict(config.get("hardware") or {},
                                            base_dir=config_dir)
        # Record the settings with the calibration's absolute path, and keep weights in the
        # range the 6-bit synapses can represent (as the published hardware runs did).
        config["hardware"] = hardware.to_dict()
        tp = config["training_params"]
        tp["clip_weights_max"] = min(tp["clip_weights_max"] or math.inf, hardware.max_weight)
        session = ChipSession(hardware, network.layer_shapes)
        return tuple(session.layer_backend(i) for i in range(n_layers)), session
    from backends import get_backend

    get_backend(backend)  # fail early with a clear message
    tp = config["training_params"]
    if tp["use_forward_integrator"]:
        backend = EulerIntegratorBackend(tp["resolution"], tp["sim_time"], backend)
    return (backend,) * n_layers, None


class Trainer:
    """A training run: network, optimiser, scheduler, RNG, task and data."""

    def __init__(self, config: dict, backend: str = "cpu", datasets: dict | None = None,
                 config_dir: Path | None = None):
        tp = config["training_params"]
        self.config = config
        self.backend_name = backend
        self.generator = torch.Generator().manual_seed(tp["torch_seed"])
        self.network = Network(config, self.generator)
        self._datasets = dict(datasets or {})
        n_classes = self.dataset("train").n_classes
        self.task = SpikeTimeClassification(tp["loss"], config["neuron_params"]["tau_syn"],
                                            n_classes)
        if tp["optimizer"].lower() == "adam":
            self.optimizer = torch.optim.Adam(self.network.parameters(), lr=tp["learning_rate"])
        else:
            self.optimizer = torch.optim.SGD(self.network.parameters(), lr=tp["learning_rate"],
                                             momentum=tp["momentum"])
        self.scheduler = self._make_scheduler(tp["lr_scheduler"])
        backends, self.hardware_session = make_backends(backend, len(self.network.layers),
                                                        config, self.network, config_dir)
        self.settings = RunSettings(backends=backends, max_dw_norm=tp["max_dw_norm"],
                                    rounding_precision=tp["rounding_precision"])
        self.epoch = 0
        self.bump_value = float(tp["weight_bumping_value"])
        self.last_bumped = -1
        self.history = {key: [] for key in HISTORY_KEYS}

    def _make_scheduler(self, spec: dict):
        kind = spec["type"]
        if kind is None:
            return None
        if kind == "StepLR":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=spec["step_size"],
                                                   gamma=spec["gamma"])
        if kind == "MultiStepLR":
            return torch.optim.lr_scheduler.MultiStepLR(self.optimizer,
                                                        milestones=spec["milestones"],
                                                        gamma=spec["gamma"])
        return torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=spec["gamma"])

    def dataset(self, split: str) -> SpikeDataset:
        if split not in self._datasets:
            self._datasets[split] = load_dataset(self.config["dataset"], split,
                                                 data_dir=self.config.get("data_dir"))
        return self._datasets[split]

    # -- one batch -------------------------------------------------------------------------

    def _noisy(self, t_in: torch.Tensor) -> torch.Tensor:
        noise = self.config["training_params"]["training_noise"]
        if not noise:
            return t_in
        jitter = torch.empty_like(t_in).normal_(noise["mean"], noise["std_dev"],
                                                generator=self.generator)
        return (t_in + jitter).abs()

    def _bump_if_silent(self, layer_outputs: list[torch.Tensor]) -> int:
        """Bump weights into silent neurons if needed; the bumped layer's index or -1."""
        tp = self.config["training_params"]
        for index, (layer, times) in enumerate(zip(self.network.layers, layer_outputs)):
            if not getattr(layer, "spiking", False):
                continue
            silent = ~torch.isfinite(times)
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

    def _clip_weights(self) -> None:
        limit = self.config["training_params"]["clip_weights_max"]
        if limit:
            with torch.no_grad():
                for parameter in self.network.parameters():
                    parameter.clamp_(-limit, limit)

    def train_epoch(self, progress=None) -> dict:
        """Train one epoch and evaluate on the validation split; returns this epoch's metrics."""
        tp = self.config["training_params"]
        start = time.perf_counter()
        data = self.dataset("train")
        times = torch.from_numpy(data.times)
        labels = torch.from_numpy(data.labels)
        order = torch.randperm(len(labels), generator=self.generator)
        losses, n_correct, n_bumps = [], 0, 0
        self.network.train()
        for first in range(0, len(order), tp["batch_size"]):
            idx = order[first:first + tp["batch_size"]]
            t_out, hidden = self.network(self._noisy(times[idx]), self.settings)
            bumped = self._bump_if_silent(hidden + [t_out])
            self.last_bumped = bumped
            if bumped >= 0:
                n_bumps += 1
            else:
                loss = self.task.loss(t_out, labels[idx])
                for layer in self.network.layers:
                    if hasattr(layer, "extra_loss"):
                        loss = loss + layer.extra_loss()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                for layer in self.network.layers:
                    if hasattr(layer, "local_update"):
                        layer.local_update({"inputs": times[idx], "outputs": t_out})
                losses.append(loss.item())
            self._clip_weights()
            n_correct += int((self.task.predict(t_out.detach()) == labels[idx]).sum())
            if progress is not None:
                progress.update(len(idx))
        learning_rate = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            with warnings.catch_warnings():
                # The schedule counts epochs, as published, even one whose batches were all
                # weight bumps (no optimiser step); torch would warn about that order.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                        category=UserWarning)
                self.scheduler.step()
        validation = self.evaluate("val")
        self.epoch += 1
        metrics = {
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "train_accuracy": n_correct / len(labels),
            "val_loss": validation.loss,
            "val_accuracy": validation.accuracy,
            "learning_rate": learning_rate,
            "bumps": n_bumps,
            "epoch_seconds": time.perf_counter() - start,
        }
        for key in HISTORY_KEYS:
            self.history[key].append(metrics[key])
        return metrics

    # -- evaluation ------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, split: str) -> Evaluation:
        """Loss, accuracy and all spike times of the network on `split` (no noise)."""
        data = self.dataset(split)
        batch = self.config["training_params"]["batch_size_eval"]
        self.network.eval()
        outputs, hidden, losses = [], [], []
        for first in range(0, len(data.labels), batch):
            t_in = torch.from_numpy(data.times[first:first + batch])
            labels = torch.from_numpy(data.labels[first:first + batch])
            t_out, layer_times = self.network(t_in, self.settings)
            losses.append(self.task.per_sample_loss(t_out, labels))
            outputs.append(t_out)
            hidden.append(layer_times)
        t_out = torch.cat(outputs)
        labels = torch.from_numpy(data.labels)
        predictions = self.task.predict(t_out)
        return Evaluation(
            loss=float(torch.cat(losses).mean()),
            accuracy=float((predictions == labels).double().mean()),
            outputs=t_out.numpy(),
            hidden=[torch.cat([h[i] for h in hidden]).numpy() for i in range(len(hidden[0]))],
            predictions=predictions.numpy(),
            labels=data.labels,
            inputs=data.times,
        )

    # -- state -----------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        info = {"backend": self.backend_name, "bump_value": self.bump_value,
                "last_bumped": self.last_bumped}
        if self.hardware_session is not None:
            info["hardware"] = self.hardware_session.describe()
            info["hardware_state"] = self.hardware_session.state_dict()
        return Checkpoint(
            epoch=self.epoch,
            config=self.config,
            parameters={k: v.detach().clone() for k, v in self.network.state_dict().items()},
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            scheduler=(copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None
                       else None),
            rng={"torch": self.generator.get_state()},
            metrics={key: np.asarray(values, dtype=np.float64)
                     for key, values in self.history.items()},
            info=info,
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load network, optimiser, scheduler, RNG and loop state from a checkpoint."""
        try:
            self.network.load_state_dict(checkpoint.parameters)
        except RuntimeError as error:
            raise ValueError(f"checkpoint does not fit the network of this config: {error}") \
                from error
        if checkpoint.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        if checkpoint.scheduler is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint.scheduler)
        if "torch" in checkpoint.rng:
            self.generator.set_state(checkpoint.rng["torch"])
        self.epoch = checkpoint.epoch
        self.bump_value = float(checkpoint.info.get("bump_value", self.bump_value))
        self.last_bumped = int(checkpoint.info.get("last_bumped", -1))
        self.history = {key: list(checkpoint.metrics.get(key, [])) for key in HISTORY_KEYS}
        if self.hardware_session is not None and "hardware_state" in checkpoint.info:
            self.hardware_session.load_state_dict(checkpoint.info["hardware_state"])
