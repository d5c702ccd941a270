"""Data of the sparse coding family: any `.npy` array of vectors (e.g. image latents).

``npy_vectors`` reads a float array [n_samples, ...] from `path` (absolute, or relative
to the data folder: `data_dir`, else $SNNSIM_DATA_DIR, else ./data) and splits its rows
by a permutation drawn from `seed`:

    val  = the first round(n val_fraction) rows of the permutation,
    test = the next round(n test_fraction) rows (test_fraction 0: test = val),
    train = the rest.

The values are used as stored (cast to float64); no targets (de-noising reconstructs
the input). The published runs used 256-dimensional ConvMixer latents of CIFAR-10.

``mnist_unlabelled``: `mnist_values` (same options, same splits) without its labels, for
de-noising: the clean input is the only target, so what reads a split's targets (the
regression plot of `eval`) sees the images, not the class labels.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from snnsim.datasets import Dataset, DatasetSpec, resolve_data_dir
from snnsim.errors import ConfigError
from snnsim.registry import DATASETS
from snnsim.schema import Field, fraction

DEFAULT_PATH = "sparse/vectors.npy"  # relative to the data folder (tests/data in the tests)


def vectors_path(options: dict) -> Path:
    """The `.npy` file the options name (absolute, or inside the data folder)."""
    path = Path(options["path"]).expanduser()
    return path if path.is_absolute() else resolve_data_dir(options["data_dir"]) / path


def split_rows(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """Row indices {train, val, test} of n rows (the module docstring's split)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    val = order[:n_val]
    test = order[n_val:n_val + n_test] if n_test else val
    train = order[n_val + n_test:]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _load_npy_vectors(split: str, options: dict) -> Dataset:
    path = vectors_path(options)
    if not path.is_file():
        raise FileNotFoundError(f"npy_vectors: data file {path} does not exist (data.path = "
                                f"{options['path']!r}, relative to the data folder "
                                f"{resolve_data_dir(options['data_dir'])})")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"npy_vectors: {path} is not a numeric .npy array: {error}") from None
    if array.ndim < 2 or not np.issubdtype(array.dtype, np.number) or len(array) < 2:
        raise ValueError(f"npy_vectors: {path} holds an array of shape {array.shape} and "
                         f"dtype {array.dtype}; expected numbers [n_samples >= 2, ...]")
    if options["val_fraction"] + options["test_fraction"] >= 1:
        raise ConfigError(f"data.val_fraction + data.test_fraction = "
                          f"{options['val_fraction'] + options['test_fraction']}: expected < 1 "
                          f"(some rows must be left to train on)")
    rows = split_rows(len(array), options["val_fraction"], options["test_fraction"],
                      options["seed"])[split]
    if len(rows) == 0:
        raise ConfigError(f"npy_vectors: the {split} split of {path} ({len(array)} rows) is "
                          f"empty; raise data.val_fraction")
    values = np.asarray(array[rows], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"npy_vectors: {path} holds non-finite values")
    return Dataset("npy_vectors", split, values, None)


def _load_mnist_unlabelled(split: str, options: dict) -> Dataset:
    labelled = DATASETS.get("mnist_values").load(split, options)
    return dataclasses.replace(labelled, name="mnist_unlabelled", targets=None, n_classes=None)


DATASETS.register(DatasetSpec(
    "mnist_unlabelled", _load_mnist_unlabelled,
    {**DATASETS.get("mnist_values").fields}, task="denoising",
    description="mnist_values without labels (de-noising: the image is the target)"))

DATASETS.register(DatasetSpec("npy_vectors", _load_npy_vectors, {
    "data_dir": Field((str, type(None)), None, None, "a folder (relative paths start there)"),
    "download": Field((bool,), False),  # nothing to download: the file must exist
    "path": Field((str,), DEFAULT_PATH, None, "the path of a .npy file"),
    "val_fraction": Field((int, float), 0.1, lambda v: 0 < v < 1, "a fraction in (0, 1)"),
    "test_fraction": Field((int, float), 0.0, fraction,
                           "a fraction in [0, 1) (0: the test split is the validation split)"),
    "seed": Field((int,), 0),
}, task="denoising", description="rows of a .npy array of vectors (e.g. latents), "
                                 "split train/val(/test) from a seed"))
