"""`spatial_tasks`: several image classification tasks offered to one network.

Tasks (each a source of 28x28 images, a fixed input transform and a labelling; every
task has n_labels = 10 logits, a two-class task uses the first two):

    digits            MNIST digit
    parity            MNIST digit parity (even 0, odd 1)
    digits_permuted   MNIST digit, pixels permuted by a fixed permutation (from `seed`)
    parity_permuted   MNIST parity, permuted pixels (the same permutation)
    digits_rotated    MNIST digit, image rotated by 90 degrees
    fashion_mnist, kmnist, qmnist   their own labels, when their files are present

Sources are read from IDX files: MNIST from ``<data_dir>/mnist/t10k-*`` (the shipped test
images; `download: true` fetches them); the others from ``<data_dir>/<name>/t10k-images-
idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]`` (MNIST-format files, never shipped).
Of a source's n images the first 80 % train and the rest are val = test (MNIST t10k:
8,000 / 2,000, as the core's `mnist_t10k_split`). Grey levels become u / 255.

Input modes (T tasks, L = the largest task's sample count in the split; a shorter task
is upsampled with replacement to L, drawn from (seed, split)):

    sequential    one task per sample: T L samples of 784 inputs; label l of task t
                  becomes l + t n_labels (the published convention);
    concatenate   the T tasks' images side by side: L samples of T 784 inputs;
    mix           their pixel-wise sum: L samples of 784 inputs;

concatenate and mix have targets [L, T] (label of each task); task t > 0 is paired
with a shuffled order of its samples, so that tasks built from the same images do
not share labels sample by sample. The network's output is n_labels x T logits,
interleaved: logit l T + t is label l of task t (`spatial_multitask`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnsim.datasets import (
    FILE_FIELDS,
    SPLITS,
    Dataset,
    DatasetSpec,
    load_dataset,
    read_idx,
    resolve_data_dir,
)
from snnsim.registry import DATASETS
from snnsim.schema import Field, one_of

N_LABELS = 10
IMAGE = (28, 28)
TRAIN_FRACTION = 0.8
INPUT_MODES = ("sequential", "concatenate", "mix")
SAMPLERS = ("random", "ordered")
EXTERNAL_SOURCES = ("fashion_mnist", "kmnist", "qmnist")


def _identity(images: np.ndarray, seed: int) -> np.ndarray:
    return images


def _permute(images: np.ndarray, seed: int) -> np.ndarray:
    """Pixels in a fixed order drawn from `seed` (the same for every split)."""
    order = np.random.default_rng([seed, 1000]).permutation(images.shape[1])
    return images[:, order]


def _rotate(images: np.ndarray, seed: int) -> np.ndarray:
    """Each 28x28 image rotated by 90 degrees (counter-clockwise)."""
    return np.rot90(images.reshape(-1, *IMAGE), k=1, axes=(1, 2)).reshape(len(images), -1)


@dataclass(frozen=True)
class TaskSpec:
    """One task: where its images come from, how they are changed, how they are labelled."""

    source: str
    transform: Callable[[np.ndarray, int], np.ndarray]
    label: Callable[[np.ndarray], np.ndarray]


def _same(labels: np.ndarray) -> np.ndarray:
    return labels


def _parity(labels: np.ndarray) -> np.ndarray:
    return labels % 2


TASK_SPECS: dict[str, TaskSpec] = {
    "digits": TaskSpec("mnist", _identity, _same),
    "parity": TaskSpec("mnist", _identity, _parity),
    "digits_permuted": TaskSpec("mnist", _permute, _same),
    "parity_permuted": TaskSpec("mnist", _permute, _parity),
    "digits_rotated": TaskSpec("mnist", _rotate, _same),
    **{name: TaskSpec(name, _identity, _same) for name in EXTERNAL_SOURCES},
}


def _source_files(data_dir: Path, source: str) -> tuple[Path, Path]:
    found = []
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = data_dir / source / stem
        gz = raw.with_name(stem + ".gz")
        path = next((p for p in (raw, gz) if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"data set source {source!r}: {gz} (nor {raw}) not found; "
                                    f"put the MNIST-format t10k files of {source} there (set "
                                    f"the folder with data_dir or $SNNSIM_DATA_DIR)")
        found.append(path)
    return found[0], found[1]


def load_source(source: str, split: str, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Flattened grey levels / 255 [n, 784] and labels [n] of one split of a source."""
    if source == "mnist":
        data = load_dataset("mnist_values", split, options={
            "data_dir": options["data_dir"], "download": options["download"],
            "split": "t10k", "normalise": "unit"})
        return data.inputs, data.targets
    images_path, labels_path = _source_files(resolve_data_dir(options["data_dir"]), source)
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if images.shape[1:] != IMAGE or len(images) != len(labels):
        raise ValueError(f"{images_path}: expected images of shape [n, 28, 28] with one "
                         f"label each in {labels_path}, got {images.shape} and "
                         f"{labels.shape}")
    end = round(TRAIN_FRACTION * len(images))
    rows = slice(0, end) if split == "train" else slice(end, None)
    x = images[rows].reshape(-1, IMAGE[0] * IMAGE[1]).astype(np.float64) / 255.0
    return x, labels[rows].astype(np.int64)


def task_data(name: str, split: str, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [n, 784] and labels [n] of one task's split (limited to `limit` samples)."""
    spec = TASK_SPECS[name]
    x, labels = load_source(spec.source, split, options)
    if options["limit"] is not None:
        x, labels = x[:options["limit"]], labels[:options["limit"]]
    return spec.transform(x, options["seed"]), spec.label(labels)


def _upsample(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of all n samples, then length - n more drawn with replacement."""
    return np.concatenate([np.arange(n), rng.integers(0, n, length - n)])


def _load_spatial_tasks(split: str, options: dict) -> Dataset:
    names, mode = options["tasks"], options["input_mode"]
    parts = [task_data(name, split, options) for name in names]
    length = max(len(x) for x, _ in parts)
    rng = np.random.default_rng([options["seed"], SPLITS.index(split)])
    inputs, labels = [], []
    for t, (x, y) in enumerate(parts):
        index = _upsample(len(x), length, rng)
        if mode != "sequential" and t > 0:
            index = rng.permutation(index)
        inputs.append(x[index])
        labels.append(y[index])
    n_tasks = len(names)
    if mode == "sequential":
        x = np.concatenate(inputs)
        targets = np.concatenate([y + t * N_LABELS for t, y in enumerate(labels)])
        return Dataset("spatial_tasks", split, x, targets, n_classes=N_LABELS * n_tasks)
    x = np.concatenate(inputs, axis=1) if mode == "concatenate" else np.sum(inputs, axis=0)
    return Dataset("spatial_tasks", split, x, np.stack(labels, axis=1),
                   n_classes=N_LABELS)


def _task_list(value) -> bool:
    return (isinstance(value, list) and len(value) > 0 and len(set(value)) == len(value)
            and all(v in TASK_SPECS for v in value))


def n_inputs(options: dict) -> int:
    """The network's inputs per sample under these (validated) `data:` options."""
    pixels = IMAGE[0] * IMAGE[1]
    return pixels * len(options["tasks"]) if options["input_mode"] == "concatenate" else pixels


SPATIAL_TASKS_FIELDS = {
    **FILE_FIELDS,
    "tasks": Field((list,), ["digits", "parity_permuted"], _task_list,
                   f"a list of distinct task names out of {', '.join(TASK_SPECS)}"),
    "input_mode": Field((str,), "sequential", one_of(*INPUT_MODES), ", ".join(INPUT_MODES)),
    "sampler": Field((str,), "random", one_of(*SAMPLERS),
                     "random (samples of all tasks shuffled together) or ordered (each "
                     "training batch holds one task, the tasks taking turns); sequential only"),
    "seed": Field((int,), 1),
    "limit": Field((int, type(None)), None, lambda v: v is None or v > 0,
                   "an integer > 0 (at most this many samples per task and split) or null"),
}

DATASETS.register(DatasetSpec(
    "spatial_tasks", _load_spatial_tasks, SPATIAL_TASKS_FIELDS, task="spatial_multitask",
    description="several image tasks (MNIST digits, parity, permuted, rotated; Fashion-/K-/"
                "QMNIST when present) in sequential, concatenate or mix mode"))
