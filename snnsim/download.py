"""Fetching MNIST: the gzipped IDX files, checked and written atomically.

    download_mnist("data")                      # -> data/mnist/{train,t10k}-*-ubyte.gz
    download_mnist("data", parts=("t10k",), base_url="https://example.org/mnist/")

Files go to ``<data_dir>/mnist/<name>.gz``, where `snnsim.datasets` reads them. Each file
is tried from the mirrors in turn (`MNIST_MIRRORS` unless `base_url` names
others) and accepted only when

* the response is complete (as many bytes as its Content-Length announced),
* it decompresses as a whole gzip stream into an IDX file of unsigned bytes whose header
  matches its size, with the shape MNIST has, and
* the SHA-256 of the *decompressed* content is the published checksum of that file
  (`MNIST_FILES`). The content is checked rather than the ``.gz`` bytes because mirrors
  re-compress the files (the copies in ``tests/data/mnist`` have a 2021 gzip header, so
  their ``.gz`` checksums differ from the original downloads' while the content is the
  same).

Each file is streamed into ``<name>.gz.tmp`` and renamed over the target only once it
passed every check (`snnsim.atomic.atomic_path`): an interrupted or rejected download
leaves no partial file, and a file already present is kept when it passes the same
checks. A file that no mirror delivers intact raises `DownloadError`, naming each URL
tried, the target file and what was expected.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from snnsim.atomic import atomic_path

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CHUNK_BYTES = 1 << 16
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class IdxFile:
    """What one MNIST IDX file must be once decompressed."""

    sha256: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Bytes of the decompressed file: the header and one byte per entry."""
        n = 1
        for d in self.shape:
            n *= d
        return 4 + 4 * len(self.shape) + n


# SHA-256 of the decompressed IDX files, as published with the MNIST data set (and
# repeated by many projects that pin it). The t10k values are those of the copies in
# tests/data/mnist.
MNIST_FILES: dict[str, IdxFile] = {
    "train-images-idx3-ubyte": IdxFile(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", (60000, 28, 28)),
    "train-labels-idx1-ubyte": IdxFile(
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", (60000,)),
    "t10k-images-idx3-ubyte": IdxFile(
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": IdxFile(
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", (10000,)),
}
MNIST_PARTS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DownloadError(OSError):
    """A file could not be fetched intact from any mirror; the message says why for each."""


class BadFileError(ValueError):
    """A file (downloaded or present) is not the expected MNIST file; the message says how."""


def download_mnist(data_dir: str | os.PathLike, parts: Iterable[str] = ("train", "t10k"),
                   base_url: str | Sequence[str] | None = None, progress: bool = True,
                   *, timeout: float = TIMEOUT_S) -> list[Path]:
    """Fetch the MNIST IDX files of `parts` ("train", "t10k") into ``<data_dir>/mnist/``.

    `base_url` is one mirror (a URL ending in "/", to which the file name is appended) or
    several tried in turn; None: `MNIST_MIRRORS`. `progress` shows a tqdm
    bar per file on stderr. Files already present and intact are not fetched again.
    Returns the paths of the ``.gz`` files, images before labels, in the order of `parts`.
    Raises ValueError for an unknown part, DownloadError when a file cannot be fetched
    intact from any mirror.
    """
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    unknown = [p for p in parts if p not in MNIST_PARTS]
    if unknown:
        raise ValueError(f"unknown MNIST part(s) {unknown}; expected some of "
                         f"{', '.join(MNIST_PARTS)}")
    mirrors = _mirrors(base_url)
    folder = Path(data_dir) / "mnist"
    paths = []
    for part in parts:
        for name in MNIST_PARTS[part]:
            target = folder / f"{name}.gz"
            if not _is_intact(target, name):
                _fetch(name, target, mirrors, progress, timeout)
            paths.append(target)
    return paths


def _mirrors(base_url: str | Sequence[str] | None) -> tuple[str, ...]:
    if base_url is None:
        base_url = MNIST_MIRRORS
    mirrors = (base_url,) if isinstance(base_url, str) else tuple(base_url)
    if not mirrors or not all(isinstance(m, str) and m for m in mirrors):
        raise ValueError(f"base_url must be a URL or a non-empty list of URLs, got {base_url!r}")
    return tuple(m if m.endswith("/") else m + "/" for m in mirrors)


def _is_intact(path: Path, name: str) -> bool:
    """Whether `path` exists and passes the checks of a download."""
    if not path.is_file():
        return False
    try:
        check_mnist_file(path.read_bytes(), name)
    except BadFileError:
        return False
    return True


def _fetch(name: str, target: Path, mirrors: tuple[str, ...], progress: bool,
           timeout: float) -> None:
    expected = MNIST_FILES[name]
    errors = []
    for mirror in mirrors:
        url = f"{mirror}{name}.gz"
        try:
            with atomic_path(target) as tmp:
                _stream(url, tmp, progress, timeout)
                check_mnist_file(tmp.read_bytes(), name)
            return
        except BadFileError as error:
            errors.append(f"  {url}: {error}")
        except (OSError, http.client.HTTPException) as error:
            errors.append(f"  {url}: {_describe(error)}")
    raise DownloadError(
        f"could not download {name}.gz into {target}: no mirror delivered the expected file "
        f"(a gzipped IDX file of shape {expected.shape}, {expected.size} bytes decompressed, "
        f"SHA-256 {expected.sha256} decompressed):\n" + "\n".join(errors))


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({error.reason})"
    return f"{type(error).__name__}: {error}"


def _stream(url: str, path: Path, progress: bool, timeout: float) -> None:
    """Write the body of `url` to `path` with a progress bar; BadFileError if it is cut short."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with open(path, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=path.name[:-len(".tmp")],
                                           disable=not progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except http.client.IncompleteRead as error:
                    received += len(error.partial)
                    raise BadFileError(f"truncated: the connection closed after {received} of "
                                    f"{total} bytes") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise BadFileError(f"truncated: received {received} of the {total} bytes announced")


def check_mnist_file(data: bytes, name: str) -> None:
    """Raise BadFileError unless `data` (gzipped or not) is the MNIST IDX file `name`
    (one of `MNIST_FILES`)."""
    expected = MNIST_FILES[name]
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise BadFileError(f"not a complete gzip file (truncated or corrupt: {error})") from None
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] != len(expected.shape):
        raise BadFileError(f"not an IDX file of unsigned bytes with {len(expected.shape)} "
                        f"dimension(s) (magic number 0x{data[:4].hex()}, expected "
                        f"0x000008{len(expected.shape):02x})")
    header = 4 + 4 * len(expected.shape)
    shape = struct.unpack(f">{len(expected.shape)}I", data[4:header]) if len(data) >= header else None
    if shape != expected.shape:
        raise BadFileError(f"IDX shape {shape}, expected {expected.shape}")
    if len(data) != expected.size:
        raise BadFileError(f"{len(data)} bytes decompressed, expected {expected.size} for shape "
                        f"{expected.shape}" + (" (truncated)" if len(data) < expected.size else ""))
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.sha256:
        raise BadFileError(f"SHA-256 mismatch: the decompressed content has {digest}, expected "
                        f"{expected.sha256}")
