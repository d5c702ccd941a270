"""The module-level `bss2` backend (hw/backend.py) builds its chip session once per
calibration file and layer shape, and stays repeatable."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

import snnsim
from hw import backend as bss2
from hw.config import HardwareConfig
from hw.session import ChipSession
from snnsim.params import NeuronParams

PARAMS = NeuronParams()


def _batch(shape=(5, 12), batch=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    t_in = 0.15 + 1.85 * torch.rand(batch, shape[0], generator=g, dtype=torch.float64)
    w = 0.5 + 0.8 * torch.randn(*shape, generator=g, dtype=torch.float64)
    return t_in, w


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list:
    """The sessions hw.backend builds (its cache emptied before and after the test)."""
    sessions = []

    class CountingSession(ChipSession):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            sessions.append(self)

    bss2._cached_session.cache_clear()
    monkeypatch.setattr(bss2, "ChipSession", CountingSession)
    yield sessions
    bss2._cached_session.cache_clear()


def test_repeated_calls_reuse_one_session(built: list):
    t_in, w0 = _batch()
    w = w0.clone().requires_grad_()
    for _ in range(3):
        out = snnsim.first_spike_times(t_in, w, PARAMS, backend="bss2")
        out.nan_to_num(posinf=0.0).sum().backward()
    assert len(built) == 1  # three forward and three backward calls
    snnsim.first_spike_times(t_in[:, :4], w0[:4, :5], PARAMS, backend="bss2")
    assert len(built) == 2  # another layer shape, another placement


def test_reused_session_is_repeatable(built: list):
    """Every call draws the jitter a fresh, identically seeded session draws first."""
    t_in, w = _batch()
    first = bss2.forward(t_in, w, PARAMS)
    other_input, _ = _batch(seed=1)
    bss2.forward(other_input, w, PARAMS)  # advances the session's RNG
    again = bss2.forward(t_in, w, PARAMS)
    assert len(built) == 1
    assert torch.equal(first, again)
    fresh = ChipSession(HardwareConfig(), [tuple(w.shape)])
    assert torch.equal(first, fresh.run_layer(0, t_in, w))


def test_changed_calibration_file_is_read_again(built: list, tmp_path, monkeypatch):
    calibration = tmp_path / "chip.h5"
    shutil.copy(HardwareConfig().calibration, calibration)

    def config(**kwargs):
        kwargs.setdefault("calibration", calibration)
        return HardwareConfig(**kwargs)

    monkeypatch.setattr(bss2, "HardwareConfig", config)
    t_in, w = _batch()
    bss2.forward(t_in, w, PARAMS)
    bss2.forward(t_in, w, PARAMS)
    assert len(built) == 1
    stat = calibration.stat()
    os.utime(calibration, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    bss2.forward(t_in, w, PARAMS)
    assert len(built) == 2
    assert built[1].calibration_sha256 == built[0].calibration_sha256


def test_missing_calibration_file_is_named(built: list, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.h5"
    monkeypatch.setattr(bss2, "HardwareConfig",
                        lambda **kwargs: HardwareConfig(**{"calibration": missing, **kwargs}))
    t_in, w = _batch()
    with pytest.raises(Exception, match="nowhere.h5"):
        bss2.forward(t_in, w, PARAMS)
