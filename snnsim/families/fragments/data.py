"""Straight lines through the image centre (the Net Fragments data, Sager et al.).

An image is `size` x `size` (32) with one white 1-pixel line drawn by PIL
(`ImageDraw.line`, width 1, as the published generator) between

    (2, y) and (size - 2, size - y),  y uniform in 2..size - 2    (probability 1/2)
    (x, 2) and (size - x, size - 2),  x uniform in 2..size - 2    (otherwise)

so every line passes through (size / 2, size / 2). "val" and "test" hold the evaluation
lines: `n_eval` (60, as the published table) end points rotated counter-clockwise
along the square, starting from (2, 16)-(30, 16). Pixel values are 0 and 1.

Training lines, option `lines`:

* `fixed` (default): split "train" holds `n_train` lines drawn once from `seed` (numpy); every
  epoch trains on these same lines.
* `fresh` (the published data set): a fresh random line at every access, drawn by
  Python's `random.Random(seed)` exactly as the published generator (`random() < 0.5`, then
  `randint(2, size - 2)`), `n_train` (300) per epoch. The published run shared that stream
  with its validation set of `validation_draws` (4) lines, drawn before the first epoch and
  after every epoch; the stream here skips as many. Split "train" then holds every line the
  generator can draw (`all_lines`, 2 (size - 3)); the task `line_completion` picks each
  epoch's lines from it (`LineStream`). With `seed` 1 (the published run's
  `seed_everything(1)`) this is the published run's sequence of training lines.

`interrupt(image, line, n)` removes n pixels at the line's centre as the published
evaluation does (the n line pixels around the one nearest to the centre, in row-major
order of the drawn pixels).
"""
from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from snnsim.datasets import Dataset, DatasetSpec
from snnsim.registry import DATASETS
from snnsim.schema import Field, non_negative, one_of, positive

Line = tuple[tuple[int, int], tuple[int, int]]


def draw_line(line: Line, size: int = 32) -> np.ndarray:
    """A size x size float64 image with the line's pixels at 1 (PIL, width 1)."""
    image = Image.new("L", (size, size), color=0)
    ImageDraw.Draw(image).line(line, fill=255, width=1)
    return (np.asarray(image) > 128).astype(np.float64)


def random_lines(n: int, seed: int, size: int = 32) -> list[Line]:
    """n random lines through the centre (module docstring), from `seed`."""
    rng = np.random.default_rng(seed)
    horizontal = rng.random(n) < 0.5
    start = rng.integers(2, size - 1, n)          # 2..size - 2 inclusive
    return [((2, int(s)), (size - 2, size - int(s))) if h else
            ((int(s), 2), (size - int(s), size - 2)) for h, s in zip(horizontal, start)]


def published_line(rng: random.Random, size: int = 32) -> Line:
    """One line of the published generator (`StraightLine._get_random_line_coords`) from the
    Python random stream `rng`: horizontal-ish with probability 1/2, start 2..size - 2."""
    if rng.random() < 0.5:
        start = rng.randint(2, size - 2)
        return (2, start), (size - 2, size - start)
    start = rng.randint(2, size - 2)
    return (start, 2), (size - start, size - 2)


def all_lines(size: int = 32) -> list[Line]:
    """Every line `published_line` can draw, in the order of `line_indices`: the start
    y = 2..size - 2 of (2, y)-(size - 2, size - y), then x = 2..size - 2 of
    (x, 2)-(size - x, size - 2)."""
    starts = range(2, size - 1)
    return ([((2, y), (size - 2, size - y)) for y in starts]
            + [((x, 2), (size - x, size - 2)) for x in starts])


def line_indices(lines: list[Line], size: int = 32) -> list[int]:
    """The positions of `published_line` lines in `all_lines(size)` (the first of equal
    entries: (2, 2)-(size - 2, size - 2) is both a y and an x start)."""
    table = {}
    for index, line in enumerate(all_lines(size)):
        table.setdefault(line, index)
    return [table[line] for line in lines]


class LineStream:
    """The published stream of training lines (module docstring, `lines: fresh`): Python's
    `random.Random(seed)`, `validation_draws` lines skipped first, then per epoch `n_train`
    training lines followed by `validation_draws` skipped lines.

    `epoch_lines(e)` is a function of (seed, e) alone: the stream is replayed from its seed
    when an earlier epoch is asked for, and skipped forward to a later one."""

    def __init__(self, seed: int, n_train: int, validation_draws: int, size: int = 32):
        self.seed, self.n_train, self.skip, self.size = seed, n_train, validation_draws, size
        self._restart()

    def _restart(self) -> None:
        self.rng = random.Random(self.seed)
        self.epoch = 0                   # the epoch whose lines the stream draws next
        self._draw(self.skip)

    def _draw(self, n: int) -> list[Line]:
        return [published_line(self.rng, self.size) for _ in range(n)]

    def epoch_lines(self, epoch: int) -> list[Line]:
        """The `n_train` training lines of epoch `epoch` (0-based), in training order."""
        if epoch < 0:
            raise ValueError(f"LineStream: epoch must be >= 0, got {epoch}")
        if epoch < self.epoch:
            self._restart()
        while self.epoch <= epoch:
            lines = self._draw(self.n_train)
            self._draw(self.skip)
            self.epoch += 1
        return lines


def _rotate(point: tuple[int, int], size: int) -> tuple[int, int]:
    """The next point counter-clockwise along the square [2, size - 2]^2 (published)."""
    x, y = point
    low, high = 2, size - 2
    if x == low:
        return (x, y + 1) if y < high else (x + 1, y)
    if x < high:
        return (x - 1, y) if y == low else (x + 1, y)
    return (x, y - 1) if y > low else (x - 1, y)


def evaluation_lines(n: int = 60, size: int = 32) -> list[Line]:
    """The published evaluation lines: from (2, size/2)-(size-2, size/2), rotated n-1 times."""
    first, second = (2, size // 2), (size - 2, size // 2)
    lines = [(first, second)]
    for _ in range(n - 1):
        first, second = _rotate(first, size), _rotate(second, size)
        lines.append((first, second))
    return lines


def interrupt(image: np.ndarray, line: Line, n: int) -> np.ndarray:
    """A copy of `image` with n pixels removed at the line's centre (published rule: the
    pixel nearest (in L1) to the end points' integer mean, and the n around it in the
    row-major order of the line pixels; at most all but 2)."""
    out = image.copy()
    if n <= 0:
        return out
    centre = np.array([(line[0][1] + line[1][1]) // 2, (line[0][0] + line[1][0]) // 2])
    pixels = np.argwhere(image > 0.5)
    middle = int(np.abs(pixels - centre).sum(1).argmin())
    n = min(n, len(pixels) - 2)
    lower = middle - n // 2
    upper = middle + (n - (middle - lower))
    removed = pixels[lower:upper]
    out[removed[:, 0], removed[:, 1]] = 0.0
    return out


def _load(split: str, options: dict) -> Dataset:
    size = options["size"]
    if split == "train" and options["lines"] == "fresh":
        lines = all_lines(size)
    elif split == "train":
        lines = random_lines(options["n_train"], options["seed"], size)
    else:
        lines = evaluation_lines(options["n_eval"], size)
    images = np.stack([draw_line(line, size) for line in lines])
    return Dataset("straight_lines", split, images, None)


DATASETS.register(DatasetSpec("straight_lines", _load, {
    "seed": Field((int,), 0),
    "n_train": Field((int,), 300, positive, "an integer > 0 (lines per training epoch)"),
    "n_eval": Field((int,), 60, positive, "an integer > 0 (rotated evaluation lines)"),
    "size": Field((int,), 32, lambda v: v >= 8, "an integer >= 8 (image side)"),
    "lines": Field((str,), "fixed", one_of("fixed", "fresh"),
                   "fixed (n_train lines reused every epoch) or fresh (the published stream)"),
    "validation_draws": Field((int,), 4, non_negative,
                              "an integer >= 0 (lines the published validation set drew "
                              "from the stream before and after every epoch)"),
}, task="line_completion", description="straight lines through the centre (Net Fragments)"))
