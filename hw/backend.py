"""The `bss2` backend module: one layer on the default mock chip.

`snnsim.first_spike_times(t_in, w, params, backend="bss2")` runs the layer on the
shipped mock chip a with the published hardware settings (`HardwareConfig()`).
The module is repeatable: every forward call draws the same jitter, as a freshly built,
identically seeded session would. Building a session (reading, validating and hashing
the calibration file, placing the layer) is done once per (calibration file, its
modification time and size, layer shape) and reused by later forward and backward calls;
each call restores the session's RNG to its initial state, under a lock per session.
Networks and training use `ChipSession` instead, which keeps one chip, its RNG and its
statistics for a whole run.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from hw.config import HardwareConfig
from hw.session import ChipSession
from snnsim.params import NeuronParams

SESSION_CACHE_SIZE = 8  # (calibration file, layer shape) pairs kept


def check_available() -> None:
    """The mock chip needs nothing beyond snnsim itself."""


@dataclass(frozen=True, eq=False)
class _Cached:
    session: ChipSession
    rng_state: dict
    lock: threading.Lock


@functools.lru_cache(maxsize=SESSION_CACHE_SIZE)
def _cached_session(calibration: str, mtime_ns: int, size: int,
                    shape: tuple[int, int]) -> _Cached:
    """The session of one layer of `shape` on the default chip with `calibration`; the
    file's mtime and size are part of the key, so that a changed file is read again."""
    session = ChipSession(HardwareConfig(calibration=Path(calibration)), [shape])
    return _Cached(session, session.rng.bit_generator.state, threading.Lock())


@contextmanager
def _session(w: torch.Tensor) -> Iterator[ChipSession]:
    """The cached session for layers shaped like `w`, its RNG at the initial state, held
    for this call alone."""
    calibration = os.path.abspath(HardwareConfig().calibration)
    try:
        stat = os.stat(calibration)
        mtime_ns, size = stat.st_mtime_ns, stat.st_size
    except OSError:  # the session says what is wrong with the file (and is not cached)
        mtime_ns, size = -1, -1
    cached = _cached_session(calibration, mtime_ns, size, tuple(w.shape))
    with cached.lock:
        cached.session.rng.bit_generator.state = cached.rng_state
        yield cached.session


def forward(t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """Measured first-spike times of one layer on the default mock chip (`params` unused)."""
    with _session(w) as session:
        return session.layer_backend(0).forward(t_in, w, params)


def backward(t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor, grad_t_out: torch.Tensor,
             params: NeuronParams, max_dw_norm: float | None = None):
    """Gradients in the default mock chip's model at the measured times; see `hw.session`."""
    with _session(w) as session:
        return session.layer_backend(0).backward(t_in, w, t_out, grad_t_out, params,
                                                 max_dw_norm)
