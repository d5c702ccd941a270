"""Input data sets encoded as one spike time per input neuron (time-to-first-spike coding).

Times are in model units (tau_s = 1); ``+inf`` means the input does not spike. With
early = 0.15 and late = 2.0 the encodings are:

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
"""

from __future__ import annotations

import gzip
import http.client
import math
import os
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASET_NAMES: tuple[str, ...] = (
    "yin_yang",
    "xor",
    "bars",
    "mnist",
    "16x16_mnist",
    "mnist_t10k_split",
)
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
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DATA_DIR_ENV = "SNNSIM_DATA_DIR"


@dataclass(frozen=True)
class SpikeDataset:
    """One split of a data set: an input spike time per input neuron and a label per sample."""

    name: str
    split: str
    times: np.ndarray  # float64 [n_samples, n_inputs]; +inf = no spike
    labels: np.ndarray  # int64 [n_samples]
    n_classes: int
    coordinates: np.ndarray | None = None  # yin_yang only: raw (x, y) per sample, for plots

    def __post_init__(self) -> None:
        if self.times.ndim != 2 or self.times.dtype != np.float64:
            raise ValueError(f"SpikeDataset {self.name!r}/{self.split!r}: times must be a 2-D "
                             f"float64 array, got {self.times.dtype} with shape "
                             f"{self.times.shape}")
        if self.labels.shape != self.times.shape[:1] or self.labels.dtype != np.int64:
            raise ValueError(f"SpikeDataset {self.name!r}/{self.split!r}: labels must be int64 "
                             f"with shape {self.times.shape[:1]}, got {self.labels.dtype} "
                             f"with shape {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_inputs(self) -> int:
        """Number of input neurons (columns of ``times``)."""
        return self.times.shape[1]


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


def _load_yin_yang(split: str) -> SpikeDataset:
    size, seed = YIN_YANG_SPLITS[split]
    samples, labels = yin_yang_coordinates(size, seed)
    return SpikeDataset("yin_yang", split, times_from_values(samples), labels, n_classes=3,
                        coordinates=samples[:, :2].copy())


def _load_xor(split: str) -> SpikeDataset:
    """XOR: the four corners of {0, 1}^2 as (x, y, 1 - x, 1 - y), label x XOR y.

    Every split holds the same 300 samples (the four patterns in turn, 75 times).
    """
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    values = np.hstack([corners, 1.0 - corners])
    labels = np.array([0, 1, 1, 0], dtype=np.int64)
    return SpikeDataset("xor", split, times_from_values(np.tile(values, (XOR_REPEATS, 1))),
                        np.tile(labels, XOR_REPEATS), n_classes=2)


def _load_bars(split: str) -> SpikeDataset:
    """Bars: 3x3 images of a horizontal (class 0), vertical (1) or diagonal (2) bar.

    As the published ``BarsDataset(3, noise_level=0)``: the patterns are the 3 rows, the 3
    columns and the 2 diagonals; each class gets 10 samples cycling through its patterns, and
    every split holds the same 30 samples. Unlike the published set (bar pixels late at 0.5,
    background early at 0.05), a bar pixel spikes early (0.15) and the background late (2.0).
    """
    horizontal = [np.outer(np.eye(3)[row], np.ones(3)) for row in range(3)]
    vertical = [h.T for h in horizontal]
    diagonal = [np.eye(3), np.eye(3)[::-1]]
    images, labels = [], []
    for label, patterns in enumerate((horizontal, vertical, diagonal)):
        for i in range(BARS_SAMPLES_PER_CLASS):
            images.append(patterns[i % len(patterns)].ravel())
            labels.append(label)
    pixels_on = np.array(images, dtype=bool)
    times = np.where(pixels_on, EARLY, LATE)
    return SpikeDataset("bars", split, times, np.array(labels, dtype=np.int64), n_classes=3)


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


def _download_mnist_file(filename: str, target: Path) -> None:
    """Fetch ``filename.gz`` from the first MNIST mirror that answers into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    errors = []
    for mirror in MNIST_MIRRORS:
        url = mirror + filename + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                partial.write_bytes(response.read())
            read_idx(partial)
        except (OSError, ValueError, http.client.HTTPException) as err:
            errors.append(f"{url}: {err}")
            partial.unlink(missing_ok=True)
            continue
        partial.replace(target)
        return
    raise OSError(f"could not download {filename}.gz into {target.parent}:\n" + "\n".join(errors))


def _mnist_path(data_dir: Path, filename: str, download: bool) -> Path:
    """Path of an MNIST IDX file, raw or ``.gz``; downloads the ``.gz`` only if asked."""
    raw = data_dir / "mnist" / filename
    gz = raw.with_name(filename + ".gz")
    for candidate in (raw, gz):
        if candidate.is_file():
            return candidate
    if download:
        _download_mnist_file(filename, gz)
        return gz
    raise FileNotFoundError(
        f"MNIST file not found: {gz} (nor {raw}). Set the data directory with the `data_dir` "
        f"config key or the {DATA_DIR_ENV} environment variable, or pass download=True (when "
        f"online) to fetch it into {raw.parent}.")


def _read_mnist(data_dir: Path, part: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [n, 28, 28] and labels int64 [n] of ``part`` ("train" or "t10k")."""
    images_path = _mnist_path(data_dir, f"{part}-images-idx3-ubyte", download)
    labels_path = _mnist_path(data_dir, f"{part}-labels-idx1-ubyte", download)
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


def _times_mnist_28(images: np.ndarray) -> np.ndarray:
    """Published full-MNIST coding t = 0.15 + (1 - u / 256) * 1.85; nothing is sent to +inf."""
    u = images.reshape(len(images), -1).astype(np.float64)
    return times_from_values(1.0 - u / 256.0)


def _times_mnist_16(images: np.ndarray) -> np.ndarray:
    """16x16 coding t = 0.15 + (1 - u / 255) * 1.85 with u = 0 (background) sent to +inf."""
    u = resize_mnist_16x16(images).reshape(len(images), -1).astype(np.float64)
    return np.where(u == 0, np.inf, times_from_values(1.0 - u / 255.0))


def _load_mnist(name: str, split: str, data_dir: Path, download: bool) -> SpikeDataset:
    """One split of ``mnist``, ``16x16_mnist`` or ``mnist_t10k_split`` (ranges: module doc)."""
    if name == "mnist_t10k_split":
        part, train_end = "t10k", T10K_SPLIT_TRAIN_END
    else:
        part, train_end = ("t10k", None) if split == "test" else ("train", MNIST_TRAIN_END)
    images, labels = _read_mnist(data_dir, part, download)
    rows = slice(0, train_end) if split == "train" else slice(train_end, None)
    encode = _times_mnist_28 if name == "mnist" else _times_mnist_16
    return SpikeDataset(name, split, encode(images[rows]), labels[rows].copy(), n_classes=10)


def load_dataset(name: str, split: str, *, data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> SpikeDataset:
    """Split ``split`` ("train", "val" or "test") of data set ``name`` as spike times.

    The splits are listed in the module docstring; ``mnist_t10k_split`` uses only the 10,000
    t10k images: train = images 0..7,999, val = test = images 8,000..9,999.

    ``data_dir`` (resolved by :func:`resolve_data_dir`) is only read for the MNIST sets;
    ``download=True`` fetches missing MNIST files from a public mirror.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for dataset {name!r}; expected one of "
                         f"{', '.join(SPLITS)}")
    if name == "yin_yang":
        return _load_yin_yang(split)
    if name == "xor":
        return _load_xor(split)
    if name == "bars":
        return _load_bars(split)
    return _load_mnist(name, split, resolve_data_dir(data_dir), download)
