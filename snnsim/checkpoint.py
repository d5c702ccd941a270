"""HDF5 checkpoints: one file per snapshot, written atomically, never pickles.

Layout of a checkpoint file:

    attrs:      format = "snnsim-checkpoint", format_version, epoch, created, config (YAML),
                info (JSON: backend, training-loop state, hardware description, ...)
    /parameters/<module path>        every parameter and buffer of the network
    /optimizer/state/<i>/<name>      optimiser state tensors; attrs param_groups (JSON)
    /scheduler                       attrs state (JSON)
    /rng/<name>                      generator states (uint8)
    /metrics/<name>                  per-epoch histories (float64)

The file is written to `<name>.tmp` beside the target, flushed to disk and then
renamed over the target, so a crash mid-write never leaves a damaged checkpoint.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from snnsim.atomic import atomic_path

FORMAT = "snnsim-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, truncated, foreign or incomplete."""


@dataclass
class Checkpoint:
    """The contents of one checkpoint file."""

    epoch: int
    config: dict
    parameters: dict[str, torch.Tensor]
    optimizer: dict | None = None
    scheduler: dict | None = None
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _json(value) -> str:
    return json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` to `path` atomically (temp file + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["epoch"] = int(checkpoint.epoch)
        f.attrs["created"] = datetime.datetime.now().isoformat(timespec="seconds")
        f.attrs["config"] = yaml.safe_dump(checkpoint.config, sort_keys=False)
        f.attrs["info"] = _json(checkpoint.info)
        group = f.create_group("parameters")
        for name, tensor in checkpoint.parameters.items():
            group.create_dataset(name, data=tensor.detach().cpu().numpy())
        if checkpoint.optimizer is not None:
            opt = f.create_group("optimizer")
            opt.attrs["param_groups"] = _json(checkpoint.optimizer["param_groups"])
            states = opt.create_group("state")
            for index, state in checkpoint.optimizer["state"].items():
                entry = states.create_group(str(index))
                for key, value in state.items():
                    entry.create_dataset(key, data=torch.as_tensor(value).cpu().numpy())
        if checkpoint.scheduler is not None:
            f.create_group("scheduler").attrs["state"] = _json(checkpoint.scheduler)
        rng = f.create_group("rng")
        for name, state in checkpoint.rng.items():
            rng.create_dataset(name, data=state.cpu().numpy())
        metrics = f.create_group("metrics")
        for name, values in checkpoint.metrics.items():
            metrics.create_dataset(name, data=np.asarray(values, dtype=np.float64))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise CheckpointError(
            f"checkpoint {path} cannot be read: the file is truncated or not HDF5 ({error})"
        ) from error
    with f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(
                f"{path} is not an snnsim checkpoint (attribute 'format' is "
                f"{f.attrs.get('format')!r}, expected {FORMAT!r})"
            )
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise CheckpointError(f"checkpoint {path} has format version {version}; this "
                                  f"snnsim reads up to {FORMAT_VERSION}")
        try:
            parameters = {name: torch.from_numpy(np.asarray(ds[()]))
                          for name, ds in f["parameters"].items()}
            optimizer = None
            if "optimizer" in f:
                state = {int(i): {k: torch.from_numpy(np.asarray(v[()])) for k, v in g.items()}
                         for i, g in f["optimizer/state"].items()}
                optimizer = {"state": state,
                             "param_groups": json.loads(f["optimizer"].attrs["param_groups"])}
            scheduler = (json.loads(f["scheduler"].attrs["state"]) if "scheduler" in f
                         else None)
            return Checkpoint(
                epoch=int(f.attrs["epoch"]),
                config=yaml.safe_load(f.attrs["config"]),
                parameters=parameters,
                optimizer=optimizer,
                scheduler=scheduler,
                rng={name: torch.from_numpy(ds[()]) for name, ds in f["rng"].items()},
                metrics={name: ds[()] for name, ds in f["metrics"].items()},
                info=json.loads(f.attrs["info"]),
            )
        except (KeyError, OSError, ValueError) as error:
            raise CheckpointError(f"checkpoint {path} is incomplete or damaged: {error}") from error
