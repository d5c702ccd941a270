"""Tests of snnsim.datasets against the published Yin-Yang arrays and the real MNIST test set."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from snnsim.datasets import (
    DATASETS,
    Dataset,
    load_dataset,
    read_idx,
    resize_mnist_16x16,
    resolve_data_dir,
    times_from_values,
    yin_yang_coordinates,
)

# Label counts and first labels of the MNIST test set (t10k), as published with the data.
T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
YIN_YANG_FILES = {"train": "train", "val": "validation", "test": "test"}


@pytest.fixture(scope="module")
def t10k(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real MNIST test images [10000, 28, 28] and labels [10000]."""
    folder = shared_data / "mnist"
    return (read_idx(folder / "t10k-images-idx3-ubyte.gz"),
            read_idx(folder / "t10k-labels-idx1-ubyte.gz"))


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """Write a uint8 array as an IDX file, straight from the format description."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def pil_style_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of an antialiased bilinear downscale as PIL computes them.

    Triangle filter whose support grows with the downscale factor, sampled at pixel centres
    and normalised per output pixel.
    """
    scale = in_size / out_size
    support = max(scale, 1.0)
    weights = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), in_size)
        for pixel in range(first, stop):
            weights[out, pixel] = max(0.0, 1.0 - abs((pixel + 0.5 - centre) / support))
        weights[out] /= weights[out].sum()
    return weights


def pil_style_resize(crops: np.ndarray, out_size: int) -> np.ndarray:
    """Separable resize of uint8 images [n, h, w] rounding to 8 bits after each pass, as PIL."""
    def to_uint8(values: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(values + 0.5), 0, 255)

    w_rows = pil_style_weights(crops.shape[1], out_size)
    w_cols = pil_style_weights(crops.shape[2], out_size)
    horizontal = to_uint8(np.einsum("nhw,ow->nho", crops.astype(np.float64), w_cols))
    return to_uint8(np.einsum("oh,nhw->now", w_rows, horizontal)).astype(np.uint8)


# --- Yin-Yang ------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_yin_yang_reproduces_published_arrays_bit_for_bit(shared_data: Path, split: str):
    stem = YIN_YANG_FILES[split]
    samples = np.load(shared_data / "yin_yang" / f"{stem}_samples.npy")
    labels = np.load(shared_data / "yin_yang" / f"{stem}_labels.npy")
    size, seed = {"train": (5000, 42), "val": (1000, 41), "test": (1000, 40)}[split]

    ours, our_labels = yin_yang_coordinates(size, seed)
    assert ours.dtype == samples.dtype and ours.tobytes() == samples.tobytes()
    assert np.array_equal(our_labels, labels) and our_labels.dtype == np.int64

    data = load_dataset("yin_yang", split)
    assert (data.name, data.split, data.n_classes) == ("yin_yang", split, 3)
    assert np.array_equal(data.labels, labels)
    assert np.array_equal(data.coordinates, samples[:, :2])
    assert np.array_equal(data.times, 0.15 + samples * (2.0 - 0.15))


def test_yin_yang_geometry_and_class_balance():
    samples, labels = yin_yang_coordinates(3000, seed=7)
    x, y = samples[:, 0], samples[:, 1]
    np.testing.assert_array_equal(samples[:, 2:], 1.0 - samples[:, :2])
    assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5)
    dots = labels == 2
    near_dot = np.minimum(np.hypot(x - 0.25, y - 0.5), np.hypot(x - 0.75, y - 0.5))
    assert np.all(near_dot[dots] < 0.1) and np.all(near_dot[~dots] >= 0.1)
    # The goal class is drawn uniformly: each count is binomial(3000, 1/3), sd ~ 26.
    assert np.all(np.abs(np.bincount(labels, minlength=3) - 1000) < 5 * 26)


def test_times_from_values_formula():
    values = np.array([[0.0, 1.0, 0.5, 0.25]])
    np.testing.assert_allclose(times_from_values(values), [[0.15, 2.0, 1.075, 0.6125]])
    np.testing.assert_allclose(times_from_values([0.0, 1.0], early=1.0, late=3.0), [1.0, 3.0])
    assert times_from_values(np.array([0, 1])).dtype == np.float64


# --- XOR and bars --------------------------------------------------------------------------

def test_xor_patterns_and_labels():
    data = load_dataset("xor", "train")
    assert data.n_classes == 2 and 100 <= len(data) <= 1000 and data.n_inputs == 4
    x_on, y_on = data.times[:, 0] == 0.15, data.times[:, 1] == 0.15
    np.testing.assert_array_equal(data.labels, (~x_on ^ ~y_on).astype(np.int64))
    # (1 - x, 1 - y) mirror (x, y): exactly one of each pair spikes early.
    assert np.all((data.times[:, :2] == 0.15) != (data.times[:, 2:] == 0.15))
    assert set(np.unique(data.times)) == {0.15, 2.0}
    for pattern in range(4):  # all four corners present equally often
        assert np.sum(2 * ~x_on + ~y_on == pattern) == len(data) // 4
    np.testing.assert_array_equal(load_dataset("xor", "test").times, data.times)


def test_bars_images():
    data = load_dataset("bars", "val")
    assert data.n_classes == 3 and data.n_inputs == 9
    images = data.times.reshape(-1, 3, 3) == 0.15
    assert set(np.unique(data.times)) == {0.15, 2.0}
    for image, label in zip(images, data.labels, strict=True):
        assert image.sum() == 3
        if label == 0:
            assert image.all(axis=1).sum() == 1
        elif label == 1:
            assert image.all(axis=0).sum() == 1
        else:
            assert np.diag(image).all() or np.diag(image[::-1]).all()
    assert np.all(np.bincount(data.labels) == len(data) // 3)


# --- IDX reader ----------------------------------------------------------------------------

def test_read_idx_on_real_t10k(t10k: tuple[np.ndarray, np.ndarray]):
    images, labels = t10k
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.min() == 0 and labels.max() == 9
    assert list(labels[:10]) == T10K_FIRST_LABELS
    assert list(np.bincount(labels)) == T10K_LABEL_COUNTS and sum(T10K_LABEL_COUNTS) == 10000
    assert images.max() == 255 and images.min() == 0
    assert np.all(images[:, 0, :] == 0)  # MNIST digits leave the top row blank


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip_synthetic(tmp_path: Path, compress: bool):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / "tiny-idx3-ubyte"
    write_idx(path, array, compress)
    out = read_idx(path, ndim=3)
    assert out.dtype == np.uint8 and np.array_equal(out, array)
    out[0, 0, 0] = 99  # the result is an ordinary writable array


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated_file_raises_value_error(tmp_path: Path, compress: bool):
    payload_path = tmp_path / "full"
    write_idx(payload_path, np.ones((4, 28, 28), dtype=np.uint8), compress=False)
    payload = payload_path.read_bytes()[:-10]
    path = tmp_path / "cut-images-idx3-ubyte"
    path.write_bytes(gzip.compress(payload)[:-20] if compress else payload)
    with pytest.raises(ValueError, match="expected") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_wrong_magic_or_ndim(tmp_path: Path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.arange(5, dtype=np.uint8), compress=False)
    with pytest.raises(ValueError, match=r"0x00000803.*found 0x00000801"):
        read_idx(path, ndim=3)
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)  # float32
    with pytest.raises(ValueError, match=str(path)):
        read_idx(path)


def test_mnist_wrong_image_count(tmp_path: Path):
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(3), True)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: expected .*10000, 28, 28"):
        load_dataset("mnist", "test", data_dir=tmp_path)


def test_mnist_train_and_val_come_from_the_train_files(tmp_path: Path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 60000)
    images = np.zeros((60000, 28, 28), dtype=np.uint8)
    images[:, 14, 14] = np.arange(60000) % 251 + 1  # a non-zero centre pixel per image
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", images, compress=False)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", labels, compress=False)
    train = load_dataset("16x16_mnist", "train", data_dir=tmp_path)
    val = load_dataset("16x16_mnist", "val", data_dir=tmp_path)
    assert train.times.shape == (50000, 256) and val.times.shape == (10000, 256)
    np.testing.assert_array_equal(train.labels, labels[:50000])
    np.testing.assert_array_equal(val.labels, labels[50000:])
    assert np.all(np.isposinf(train.times[:, 0]))  # corners stay background
    val_pixels = resize_mnist_16x16(images[50000:]).reshape(10000, 256)
    np.testing.assert_array_equal(np.isfinite(val.times), val_pixels > 0)
    assert not np.array_equal(val_pixels, resize_mnist_16x16(images[:10000]).reshape(10000, 256))


def test_missing_mnist_file_names_path_and_remedies(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("16x16_mnist", "test", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz") in message
    assert "data_dir" in message and "SNNSIM_DATA_DIR" in message and "--download" in message


def test_missing_train_set_beside_real_test_set(shared_data: Path):
    if (shared_data / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("the shared data holds the MNIST train set")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", "val", data_dir=shared_data)


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SNNSIM_DATA_DIR", raising=False)
    assert resolve_data_dir(None) == tmp_path / "data"
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "key") == tmp_path / "key"
    assert resolve_data_dir(str(tmp_path / "key")) == tmp_path / "key"


def test_data_dir_from_environment(shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    assert len(load_dataset("mnist_t10k_split", "val")) == 2000


# --- MNIST encodings -----------------------------------------------------------------------

def test_full_mnist_times(shared_data: Path, t10k: tuple[np.ndarray, np.ndarray]):
    images, labels = t10k
    data = load_dataset("mnist", "test", data_dir=shared_data)
    assert data.times.shape == (10000, 784) and data.n_classes == 10
    np.testing.assert_array_equal(data.labels, labels)
    assert np.all(np.isfinite(data.times))
    u = images.reshape(10000, 784).astype(np.float64)
    np.testing.assert_allclose(data.times, 0.15 + (1 - u / 256) * 1.85, rtol=0, atol=1e-12)
    assert data.times.max() == 2.0 and data.times.min() == pytest.approx(0.15 + 1.85 / 256)


def test_16x16_resize_matches_pil_style_reference(t10k: tuple[np.ndarray, np.ndarray]):
    images = t10k[0][:500]
    ours = resize_mnist_16x16(images)
    assert ours.shape == (500, 16, 16) and ours.dtype == np.uint8
    reference = pil_style_resize(images[:, 2:26, 2:26], 16)
    diff = np.abs(ours.astype(int) - reference.astype(int))
    assert diff.max() <= 1
    assert np.mean(diff == 0) > 0.9


def test_16x16_resize_matches_pil_if_installed(t10k: tuple[np.ndarray, np.ndarray]):
    image_module = pytest.importorskip("PIL.Image")
    images = t10k[0][:200]
    pil = np.stack([np.asarray(image_module.fromarray(im).crop((2, 2, 26, 26))
                               .resize((16, 16), image_module.BILINEAR)) for im in images])
    assert np.abs(resize_mnist_16x16(images).astype(int) - pil.astype(int)).max() <= 1


def test_16x16_mnist_times(shared_data: Path, t10k: tuple[np.ndarray, np.ndarray]):
    images, labels = t10k
    data = load_dataset("16x16_mnist", "test", data_dir=shared_data)
    assert data.times.shape == (10000, 256) and data.n_inputs == 256
    np.testing.assert_array_equal(data.labels, labels)
    u = resize_mnist_16x16(images).reshape(10000, 256).astype(np.float64)
    background = u == 0
    assert np.all(np.isposinf(data.times[background]))
    assert 0.3 < background.mean() < 0.8
    np.testing.assert_allclose(data.times[~background], 0.15 + (1 - u[~background] / 255) * 1.85,
                               rtol=0, atol=1e-12)
    finite = data.times[~background]
    assert finite.min() == pytest.approx(0.15) and finite.max() < 2.0


def test_mnist_t10k_split(shared_data: Path, t10k: tuple[np.ndarray, np.ndarray]):
    _, labels = t10k
    splits = {split: load_dataset("mnist_t10k_split", split, data_dir=shared_data)
              for split in ("train", "val", "test")}
    assert len(splits["train"]) == 8000 and len(splits["val"]) == len(splits["test"]) == 2000
    np.testing.assert_array_equal(splits["train"].labels, labels[:8000])
    np.testing.assert_array_equal(splits["val"].labels, labels[8000:])
    np.testing.assert_array_equal(splits["val"].times, splits["test"].times)
    full = load_dataset("16x16_mnist", "test", data_dir=shared_data)
    np.testing.assert_array_equal(splits["train"].times, full.times[:8000])


# --- errors and the record -----------------------------------------------------------------

def test_unknown_name_or_split():
    with pytest.raises(ValueError, match=r"'cifar'.*mnist_t10k.*yin_yang"):
        load_dataset("cifar", "train")
    with pytest.raises(ValueError, match=r"'yin_yng'.*did you mean 'yin_yang'"):
        load_dataset("yin_yng", "train")
    with pytest.raises(ValueError, match=r"'validation'.*train, val, test"):
        load_dataset("yin_yang", "validation")
    assert {"yin_yang", "xor", "bars", "mnist", "16x16_mnist", "mnist_t10k_split",
            "mnist_values", "teacher_student", "sine"} <= set(DATASETS.names())


def test_dataset_checks_shapes_and_dtypes():
    values = np.zeros((3, 2))
    with pytest.raises(ValueError, match="one target per sample"):
        Dataset("x", "train", values, np.zeros(2, dtype=np.int64), n_classes=2)
    with pytest.raises(ValueError, match="inputs"):
        Dataset("x", "train", values.astype(np.float32), np.zeros(3, dtype=np.int64), 2)
    with pytest.raises(ValueError, match="int64 labels"):
        Dataset("x", "train", values, np.zeros(3), n_classes=2)


def test_module_keeps_no_cache():
    first = load_dataset("yin_yang", "test")
    first.times[0, 0] = -1.0
    assert load_dataset("yin_yang", "test").times[0, 0] != -1.0
