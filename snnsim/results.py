"""The results folder of a run and the files in it.

    <results>/config.yaml                 the resolved config the run used
    <results>/checkpoints/epoch_0100.h5   one HDF5 checkpoint per snapshot (and the final epoch)
    <results>/metrics.csv                 per-epoch loss, accuracy, learning rate, bumps, time
    <results>/summary.yaml                final scores (test accuracy, ...) and timings
    <results>/plots/*.png                 written by `experiment.py eval`
"""
from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path

import numpy as np
import yaml

from snnsim.atomic import atomic_path
from snnsim.checkpoint import CheckpointError

CHECKPOINT_PATTERN = re.compile(r"epoch_(\d+)\.h5$")


def checkpoint_path(results_dir: Path, epoch: int) -> Path:
    return Path(results_dir) / "checkpoints" / f"epoch_{epoch:04d}.h5"


def list_checkpoints(results_dir: Path) -> dict[int, Path]:
    """{epoch: path} of the checkpoints in a results folder."""
    folder = Path(results_dir) / "checkpoints"
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = CHECKPOINT_PATTERN.search(path.name)
            if match:
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def find_checkpoint(results_dir: Path, epoch: int | None = None) -> Path:
    """The checkpoint of `epoch` (default: the latest) in a results folder."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise CheckpointError(f"results folder {results_dir} does not exist")
    found = list_checkpoints(results_dir)
    if not found:
        raise CheckpointError(f"results folder {results_dir} holds no checkpoints "
                              f"(expected {results_dir / 'checkpoints' / 'epoch_NNNN.h5'})")
    if epoch is None:
        return found[max(found)]
    if epoch not in found:
        raise CheckpointError(f"results folder {results_dir} has no checkpoint for epoch {epoch}; "
                              f"available: {', '.join(map(str, found))}")
    return found[epoch]


def new_results_dir(config_path: Path, output: Path | None) -> Path:
    """Create the folder of a new run; refuse to reuse an existing non-empty one."""
    if output is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        output = Path.cwd() / "experiment_results" / f"{Path(config_path).stem}_{stamp}"
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"results folder {output} already exists and is not empty; "
                              f"choose another --output or remove it")
    output.mkdir(parents=True, exist_ok=True)
    return output


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file via a temp file and rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_rows_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """A CSV table with a header of `columns` and one line per row (missing or None values
    empty, keys not in `columns` ignored), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text_atomic(Path(path), buffer.getvalue())
    return Path(path)


def write_npz(path: Path, **arrays) -> None:
    """`np.savez` of `arrays`, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def write_yaml(path: Path, data: dict) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def write_metrics_csv(path: Path, history: dict[str, list]) -> None:
    """Per-epoch metrics, one row per epoch (epoch numbers start at 1)."""
    keys = list(history)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch"] + keys)
    for epoch, row in enumerate(zip(*(history[k] for k in keys)), start=1):
        writer.writerow([epoch] + [f"{v:.6g}" for v in row])
    write_text_atomic(path, buffer.getvalue())
