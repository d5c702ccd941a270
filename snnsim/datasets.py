"""Data sets: real-valued inputs and targets, and the spike-time encoding of spiking inputs.

A data set (registered in `snnsim.registry.DATASETS`) yields a `Dataset` per split:
inputs (coordinates, grey levels, ...), targets (labels, regression targets or none)
and metadata. Spiking networks see the inputs through a latency code
(`encode_times`, the config's `encoding:` section), one spike time per input value in
model units (tau_s = 1); ``+inf`` means the input does not spike. The published data
set names keep their published encodings as defaults (early = 0.15, late = 2.0):

* ``yin_yang`` and ``xor``: the values v in [0, 1] of (x, y, 1 - x, 1 - y) become
  ``t = early + v * (late - early)``.
* ``bars``: a 3x3 image; a pixel on the bar spikes at ``t = early``, any other at ``t = late``.
* ``mnist`` (28x28, 784 inputs, the published convention): a grey level u in 0..255 becomes
  ``t = 0.15 + (1 - u / 256) * 1.85``; no pixel is sent to +inf (u = 0 spikes at 2.0).
* ``16x16_mnist`` and ``mnist_t10k_split`` (256 inputs): the central 24x24 crop (rows and
  columns 2..25) is resized to 16x16 as PIL's antialiased bilinear resize does and rounded to
  an 8-bit grey level u; then ``t = 0.15 + (1 - u / 255) * 1.85``, and u = 0 gives +inf: the
  background does not spike.

Splits: Yin-Yang train/val/test are 5000/1000/1000 samples drawn with seeds 42/41/40 (the
published arrays, bit for bit); XOR and bars are tiny and every split holds the same samples;
``mnist`` and ``16x16_mnist`` train on train images 0..49,999, validate on 50,000..59,999 and
test on the 10,000 t10k images. ``mnist_t10k_split`` needs only the t10k files (so it trains
offline with the test set alone): train = t10k images 0..7,999, val = test = the 2,000
held-out images 8,000..9,999.

MNIST is read from the standard IDX files ``<data_dir>/mnist/{train,t10k}-images-idx3-ubyte``
and ``...-labels-idx1-ubyte``, gzipped (``.gz``) or not. Nothing is downloaded unless
``load_dataset(..., download=True)`` is asked for.

Data sets for rate networks: ``mnist_values`` (flattened, normalised images; t10k split
8,000 / 2,000 or the full train/test split), ``teacher_student`` and ``sine`` (regression,
generated from a seed, each split from its own stream).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import itertools
import math
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from snnsim.registry import DATASETS
from snnsim.schema import NUMBER, Field, non_negative, one_of, positive, validate_section

SPLITS: tuple[str, ...] = ("train", "val", "test")

EARLY = 0.15
LATE = 2.0

# Yin-Yang (Kriener et al.): sizes and seeds of the published train/validation/test arrays.
YIN_YANG_SPLITS: dict[str, tuple[int, int]] = {"train": (5000, 42), "val": (1000, 41),
                                               "test": (1000, 40)}
YIN_YANG_R_SMALL = 0.1
YIN_YANG_R_BIG = 0.5

XOR_REPEATS = 75  # 4 patterns x 75 = 300 samples per split
BARS_SAMPLES_PER_CLASS = 10  # as the published BarsDataset(3, noise_level=0)

MNIST_SHAPE = (28, 28)
MNIST_COUNTS = {"train": 60000, "t10k": 10000}
MNIST_TRAIN_END = 50000  # train images 0..49,999 train, 50,000..59,999 validate
T10K_SPLIT_TRAIN_END = 8000  # mnist_t10k_split: t10k 0..7,999 train, 8,000..9,999 val = test
DATA_DIR_ENV = "SNNSIM_DATA_DIR"


@dataclass(frozen=True)
class Dataset:
    """One split of a data set: real-valued inputs, targets and what they mean.

    `inputs` are the data set's own values (coordinates, grey levels, latents), float64
    [n_samples, *input_shape]; `targets` are class labels (int64 [n]), regression
    targets (float64 [n, k]) or None (de-noising: the input is its own target).
    `encoding` is the spike-time encoding published with the data set (None where
    there is none); `times` applies it.
    """

    name: str
    split: str
    inputs: np.ndarray
    targets: np.ndarray | None
    n_classes: int | None = None
    encoding: dict | None = None
    coordinates: np.ndarray | None = None  # yin_yang only: raw (x, y) per sample, for plots

    def __post_init__(self) -> None:
        where = f"data set {self.name!r}, split {self.split!r}"
        if self.inputs.ndim < 2 or self.inputs.dtype != np.float64:
            raise ValueError(f"{where}: inputs must be a float64 array [n_samples, ...], got "
                             f"{self.inputs.dtype} with shape {self.inputs.shape}")
        if self.targets is not None and self.targets.shape[:1] != self.inputs.shape[:1]:
            raise ValueError(f"{where}: expected one target per sample "
                             f"({self.inputs.shape[0]}), got shape {self.targets.shape}")
        if self.n_classes is not None and (self.targets is None
                                           or self.targets.dtype != np.int64):
            raise ValueError(f"{where}: a classification set needs int64 labels")

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    @property
    def n_inputs(self) -> int:
        """Number of input values (neurons) per sample."""
        return math.prod(self.input_shape)

    @property
    def labels(self) -> np.ndarray:
        """The class labels (classification sets)."""
        if self.n_classes is None:
            raise ValueError(f"data set {self.name!r} has no class labels")
        return self.targets

    @functools.cached_property
    def times(self) -> np.ndarray:
        """Input spike times under the data set's published encoding."""
        if self.encoding is None:
            raise ValueError(f"data set {self.name!r} has no spike-time encoding; give one "
                             f"in the config's `encoding:` section")
        return encode_times(self.inputs, self.encoding)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """Data directory: ``data_dir`` if given, else ``$SNNSIM_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.cwd() / "data"


def times_from_values(values: np.ndarray, early: float = EARLY, late: float = LATE) -> np.ndarray:
    """Spike times ``early + v * (late - early)`` of values v in [0, 1] (float64)."""
    return early + np.asarray(values, dtype=np.float64) * (late - early)


def encode_times(inputs: np.ndarray, encoding: dict) -> np.ndarray:
    """Latency code of real-valued inputs x, one spike time per input value (float64).

        v = x / scale                  (invert: v = 1 - x / scale)
        t = early + v (late - early)
        t = +inf where x == silent_value   (that input does not spike)

    The keys are those of `ENCODING_FIELDS`; the published data sets name theirs.
    """
    if encoding["type"] != "latency":
        raise ValueError(f"unknown spike-time encoding {encoding['type']!r}; expected 'latency'")
    x = np.asarray(inputs, dtype=np.float64)
    x = x.reshape(len(x), -1)
    values = x / encoding["scale"] if encoding["scale"] != 1 else x
    if encoding["invert"]:
        values = 1.0 - values
    times = times_from_values(values, encoding["early"], encoding["late"])
    if encoding["silent_value"] is not None:
        times = np.where(x == encoding["silent_value"], np.inf, times)
    return times


ENCODING_FIELDS = {
    "type": Field((str,), "latency", one_of("latency"), "'latency'"),
    "early": Field(NUMBER, EARLY, non_negative, "a time >= 0"),
    "late": Field(NUMBER, LATE, non_negative, "a time >= 0"),
    "scale": Field(NUMBER, 1.0, positive, "a number > 0 (the input value that maps to `late`)"),
    "invert": Field((bool,), False),
    "silent_value": Field(NUMBER + (type(None),), None),
}


def latency(**keys) -> dict:
    """A complete latency encoding: the defaults of ENCODING_FIELDS overridden by `keys`."""
    return validate_section("encoding", keys, ENCODING_FIELDS)


def _yin_yang_class(x: float, y: float) -> int:
    """Class of a point inside the big circle: 0 yin, 1 yang, 2 dot (Kriener et al.)."""
    r_small, r_big = YIN_YANG_R_SMALL, YIN_YANG_R_BIG
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = (d_right <= r_small
              or r_small < d_left <= 0.5 * r_big
              or (y > r_big and d_right > 0.5 * r_big))
    return int(is_yin)


def yin_yang_coordinates(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Yin-Yang samples [n, 4] = (x, y, 1 - x, 1 - y) and labels [n] (int64).

    Reproduces the published generator draw for draw: ``RandomState(seed)``, a goal class
    ``randint(3)`` per sample, then ``rand(2) * 2 * r_big`` until the point lies inside the
    big circle and is of the goal class (class balance by rejection sampling).
    """
    rng = np.random.RandomState(seed)
    samples = np.empty((n, 4), dtype=np.float64)
    labels = np.empty(n, dtype=np.int64)
    r_big = YIN_YANG_R_BIG
    for i in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if _yin_yang_class(x, y) == goal:
                break
        samples[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return samples, labels


def _load_yin_yang(split: str, options: dict) -> Dataset:
    size, seed = YIN_YANG_SPLITS[split]
    samples, labels = yin_yang_coordinates(size, seed)
    return Dataset("yin_yang", split, samples, labels, n_classes=3,
                   coordinates=samples[:, :2].copy())


def _load_xor(split: str, options: dict) -> Dataset:
    """XOR: the four corners of {0, 1}^2 as (x, y, 1 - x, 1 - y), label x XOR y.

    Every split holds the same 300 samples (the four patterns in turn, 75 times).
    """
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    values = np.hstack([corners, 1.0 - corners])
    labels = np.array([0, 1, 1, 0], dtype=np.int64)
    return Dataset("xor", split, np.tile(values, (XOR_REPEATS, 1)), np.tile(labels, XOR_REPEATS),
                   n_classes=2)


def _load_bars(split: str, options: dict) -> Dataset:
    """Bars: 3x3 images of a horizontal (class 0), vertical (1) or diagonal (2) bar.

    As the published ``BarsDataset(3, noise_level=0)``: the patterns are the 3 rows, the 3
    columns and the 2 diagonals; each class gets 10 samples cycling through its patterns, and
    every split holds the same 30 samples. Inputs are the pixels (1 on the bar, 0 off). Unlike
    the published set (bar pixels late at 0.5, background early at 0.05), a bar pixel spikes
    early (0.15) and the background late (2.0).
    """
    horizontal = [np.outer(np.eye(3)[row], np.ones(3)) for row in range(3)]
    vertical = [h.T for h in horizontal]
    diagonal = [np.eye(3), np.eye(3)[::-1]]
    images, labels = [], []
    for label, patterns in enumerate((horizontal, vertical, diagonal)):
        for i in range(BARS_SAMPLES_PER_CLASS):
            images.append(patterns[i % len(patterns)].ravel())
            labels.append(label)
    return Dataset("bars", split, np.array(images, dtype=np.float64),
                   np.array(labels, dtype=np.int64), n_classes=3)


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Array of unsigned bytes stored in an IDX file, raw or gzipped (detected from content).

    Raises ``ValueError`` naming the file when the magic number, the number of dimensions or
    the size does not match an IDX file of unsigned bytes (truncated or wrong files).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(f"{path}: expected a complete gzip file, decompression failed: "
                             f"{err}") from err
    magic_ok = len(raw) >= 4 and raw[:3] == b"\x00\x00\x08" and raw[3] > 0
    if not magic_ok or (ndim is not None and raw[3] != ndim):
        expected_magic = "0x000008" + (f"{ndim:02x}" if ndim is not None else "NN (NN > 0)")
        raise ValueError(f"{path}: expected an IDX file of unsigned bytes with magic number "
                         f"{expected_magic}, found 0x{raw[:4].hex()}")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header, expected {header} bytes, found "
                         f"{len(raw)}")
    shape = struct.unpack(f">{raw[3]}I", raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise ValueError(f"{path}: expected {expected} bytes for an IDX array of shape {shape}, "
                         f"found {len(raw)}" + (" (truncated)" if len(raw) < expected else ""))
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _mnist_path(data_dir: Path, filename: str) -> Path:
    """Path of an MNIST IDX file, raw or ``.gz``."""
    raw = data_dir / "mnist" / filename
    gz = raw.with_name(filename + ".gz")
    for candidate in (raw, gz):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file not found: {gz} (nor {raw}). Set the data directory with the "
        f"`data.data_dir` config key or the {DATA_DIR_ENV} environment variable, or fetch the "
        f"files into {raw.parent} with --download (config key `data.download: true`).")


def _read_mnist(data_dir: Path, part: str, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [n, 28, 28] and labels int64 [n] of ``part`` ("train" or "t10k");
    fetched first (`snnsim.download`) if `options["download"]` and not there intact."""
    if options["download"]:
        from snnsim.download import download_mnist

        download_mnist(data_dir, parts=(part,), base_url=options["download_url"])
    images_path = _mnist_path(data_dir, f"{part}-images-idx3-ubyte")
    labels_path = _mnist_path(data_dir, f"{part}-labels-idx1-ubyte")
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    count = MNIST_COUNTS[part]
    if images.shape != (count, *MNIST_SHAPE):
        raise ValueError(f"{images_path}: expected MNIST images of shape "
                         f"{(count, *MNIST_SHAPE)}, found {images.shape}")
    if labels.shape != (count,):
        raise ValueError(f"{labels_path}: expected {count} MNIST labels, found {labels.shape[0]}")
    if labels.max() > 9:
        raise ValueError(f"{labels_path}: expected MNIST labels in 0..9, found {labels.max()}")
    return images, labels.astype(np.int64)


def resize_mnist_16x16(images: np.ndarray) -> np.ndarray:
    """Central 24x24 crop (rows and columns 2..25) resized to 16x16, as uint8 [n, 16, 16].

    Antialiased bilinear resize (triangle filter widened by the downscale factor 1.5), the
    filter of PIL's ``Image.resize(..., BILINEAR)``; rounded half up to 8 bits, it agrees with
    PIL within one grey level (PIL rounds to 8 bits between its two separable passes).
    """
    crop = torch.from_numpy(np.asarray(images)[:, 2:26, 2:26].astype(np.float64))
    resized = torch.nn.functional.interpolate(crop[:, None], size=(16, 16), mode="bilinear",
                                              antialias=True, align_corners=False)[:, 0]
    return np.clip(np.floor(resized.numpy() + 0.5), 0, 255).astype(np.uint8)


def _mnist_rows(split: str, train_end: int) -> slice:
    return slice(0, train_end) if split == "train" else slice(train_end, None)


def _load_mnist_spikes(name: str, split: str, options: dict) -> Dataset:
    """One split of ``mnist``, ``16x16_mnist`` or ``mnist_t10k_split`` (ranges: module doc).

    Inputs are grey levels u in 0..255: the 28x28 image for ``mnist``, the 16x16 resize
    for the others.
    """
    data_dir = resolve_data_dir(options["data_dir"])
    if name == "mnist_t10k_split":
        part, train_end = "t10k", T10K_SPLIT_TRAIN_END
    else:
        part, train_end = ("t10k", 0) if split == "test" else ("train", MNIST_TRAIN_END)
    images, labels = _read_mnist(data_dir, part, options)
    rows = _mnist_rows(split, train_end)
    grey = images[rows] if name == "mnist" else resize_mnist_16x16(images[rows])
    inputs = grey.reshape(len(grey), -1).astype(np.float64)
    return Dataset(name, split, inputs, labels[rows].copy(), n_classes=10)


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training images' grey levels / 255


def _load_mnist_values(split: str, options: dict) -> Dataset:
    """``mnist_values``: flattened 28x28 images for rate networks.

    `split: t10k` (default, needs only the t10k files): train = t10k images 0..7,999,
    val = test = 8,000..9,999; `split: full`: train images 0..49,999 / 50,000..59,999 /
    the t10k images. `normalise: standard` gives (u/255 - 0.1307) / 0.3081, `unit` u/255.
    """
    data_dir = resolve_data_dir(options["data_dir"])
    if options["split"] == "t10k":
        part, train_end = "t10k", T10K_SPLIT_TRAIN_END
    else:
        part, train_end = ("t10k", 0) if split == "test" else ("train", MNIST_TRAIN_END)
    images, labels = _read_mnist(data_dir, part, options)
    rows = _mnist_rows(split, train_end)
    x = images[rows].reshape(-1, MNIST_SHAPE[0] * MNIST_SHAPE[1]).astype(np.float64) / 255.0
    if options["normalise"] == "standard":
        x = (x - MNIST_MEAN) / MNIST_STD
    return Dataset("mnist_values", split, x, labels[rows].copy(), n_classes=10)


def _split_seed(seed: int, split: str) -> np.random.Generator:
    """An independent generator per (seed, split): a split never depends on another."""
    return np.random.default_rng([seed, SPLITS.index(split)])


def _load_teacher_student(split: str, options: dict) -> Dataset:
    """Regression targets of a fixed random teacher network (the bioflax task).

    x ~ U[-1, 1)^n_inputs; teacher: Dense(h1) - sigmoid - Dense(h2) - sigmoid - Dense(n_outputs)
    with LeCun-normal weights and zero biases drawn from `seed`; y = teacher(x).
    """
    rng = np.random.default_rng([options["seed"], len(SPLITS)])  # the teacher, split-free
    sizes = [options["n_inputs"], *options["teacher_hidden"], options["n_outputs"]]
    weights = [rng.normal(0.0, 1.0 / np.sqrt(n), size=(n, m)) for n, m in itertools.pairwise(sizes)]
    n = options[f"n_{split}"]
    x = _split_seed(options["seed"], split).uniform(-1.0, 1.0, size=(n, options["n_inputs"]))
    y = x
    for i, w in enumerate(weights):
        y = y @ w
        if i < len(weights) - 1:
            y = 1.0 / (1.0 + np.exp(-y))
    return Dataset("teacher_student", split, x, y)


def _load_sine(split: str, options: dict) -> Dataset:
    """Sine regression: x ~ U[-pi, pi), y = sin x (the bioflax task)."""
    n = options[f"n_{split}"]
    x = _split_seed(options["seed"], split).uniform(-np.pi, np.pi, size=(n, 1))
    return Dataset("sine", split, x, np.sin(x))


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: its loader `load(split, options) -> Dataset`, the keys of its
    `data:` config section, and whether it reads files (`data_dir`, `download`)."""

    name: str
    load: Callable[[str, dict], Dataset]
    fields: dict[str, Field] = field(default_factory=dict)
    task: str = "classification"  # the task a config gets when it names none
    encoding: dict | None = None  # the published spike-time encoding, if any
    description: str = ""


FILE_FIELDS = {
    "data_dir": Field((str, type(None)), None, None, "a folder holding mnist/*.gz"),
    "download": Field((bool,), False),
    "download_url": Field((str, list, type(None)), None, None,
                          "a mirror URL or a list of them (default: snnsim.download's)"),
}
# t = 0.15 + (1 - u / 255) * 1.85 with u = 0 (background) sent to +inf
MNIST_16_ENCODING = latency(scale=255.0, invert=True, silent_value=0.0)
SAMPLE_COUNTS = {"n_train": 1600, "n_val": 320, "n_test": 320}


def _counts(**defaults) -> dict[str, Field]:
    return {key: Field((int,), defaults.get(key, value), positive, "an integer > 0")
            for key, value in SAMPLE_COUNTS.items()}


for _spec in (
    DatasetSpec("yin_yang", _load_yin_yang, task="spike_classification", encoding=latency(),
                description="Yin-Yang (Kriener et al.), 5000/1000/1000, 4 inputs, 3 classes"),
    DatasetSpec("xor", _load_xor, task="spike_classification", encoding=latency(),
                description="XOR corners, 300 samples, 4 inputs, 2 classes"),
    DatasetSpec("bars", _load_bars, task="spike_classification",
                encoding=latency(invert=True),
                description="3x3 bars, 30 samples, 9 inputs, 3 classes"),
    # published coding t = 0.15 + (1 - u / 256) * 1.85; nothing is sent to +inf
    DatasetSpec("mnist", functools.partial(_load_mnist_spikes, "mnist"), FILE_FIELDS,
                task="spike_classification", encoding=latency(scale=256.0, invert=True),
                description="MNIST 28x28, 784 inputs"),
    DatasetSpec("16x16_mnist", functools.partial(_load_mnist_spikes, "16x16_mnist"),
                FILE_FIELDS, task="spike_classification", encoding=MNIST_16_ENCODING,
                description="MNIST resized to 16x16, 256 inputs"),
    DatasetSpec("mnist_t10k_split", functools.partial(_load_mnist_spikes, "mnist_t10k_split"),
                FILE_FIELDS, task="spike_classification", encoding=MNIST_16_ENCODING,
                description="16x16 MNIST from the t10k files alone, 8000/2000"),
    DatasetSpec("mnist_values", _load_mnist_values, {
        **FILE_FIELDS,
        "split": Field((str,), "t10k", one_of("t10k", "full"), "'t10k' or 'full'"),
        "normalise": Field((str,), "standard", one_of("standard", "unit"),
                           "'standard' or 'unit'"),
    }, description="MNIST 28x28 as values (784), t10k 8000/2000 or full 50000/10000/10000"),
    DatasetSpec("teacher_student", _load_teacher_student, {
        "seed": Field((int,), 0),
        "n_inputs": Field((int,), 1, positive, "an integer > 0"),
        "n_outputs": Field((int,), 10, positive, "an integer > 0"),
        "teacher_hidden": Field((list,), [64, 32], lambda v: all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v),
            "a list of layer sizes"),
        **_counts(),
    }, task="regression", description="regression onto a random sigmoid teacher network"),
    DatasetSpec("sine", _load_sine, {"seed": Field((int,), 0), **_counts()},
                task="regression", description="y = sin x, x ~ U[-pi, pi)"),
):
    DATASETS.register(_spec)


def dataset_options(name: str, raw: dict | None, where: str = "data") -> dict:
    """The validated `data:` options of data set `name` (defaults filled in)."""
    return validate_section(where, dict(raw or {}), DATASETS.get(name, where).fields)


def load_dataset(name: str, split: str, *, data_dir: str | os.PathLike | None = None,
                 download: bool = False, options: dict | None = None) -> Dataset:
    """Split ``split`` ("train", "val" or "test") of the registered data set ``name``.

    `options` are its `data:` config keys; `data_dir` and `download` are shortcuts for
    the file-based sets (``data_dir`` resolved by :func:`resolve_data_dir`; ``download``
    fetches missing MNIST files). A split loads alone: no split reads another's files.
    """
    spec = DATASETS.get(name, "dataset")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for dataset {name!r}; expected one of "
                         f"{', '.join(SPLITS)}")
    raw = dict(options or {})
    if "data_dir" in spec.fields:
        if data_dir is not None:
            raw["data_dir"] = str(data_dir)
        raw["download"] = raw.get("download", False) or download
    return dataclasses.replace(spec.load(split, dataset_options(name, raw)),
                               encoding=spec.encoding)
