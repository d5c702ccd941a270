"""BrainScaleS-2 per-chip calibrations: HDF5 files, a validating loader, mock chips.

`load_calibration(path)` reads a file (format in `calibration.store`),
`generate_mock_calibration(seed)` draws the calibration of a mock chip
(noise model in `calibration.mock`), and two mock chips ship with the package:
`mock_chip_a.h5` (the default, `default_calibration_path()`) and `mock_chip_b.h5`.
Besides the neurons, a file holds the analog matrix-multiply mode's gain and noise per
neuron column (`Calibration.analog_params()`); files written before that mode existed
lack them and load with `DEFAULT_ANALOG` (the old shipped chip a is kept under
`tests/data/old_calibration/`).
"""
from __future__ import annotations

from pathlib import Path

from calibration.mock import generate_mock_calibration
from calibration.store import (
    ANALOG_QUANTITIES,
    DEFAULT_ANALOG,
    FORMAT_NAME,
    FORMAT_VERSION,
    N_NEURONS,
    NEURON_QUANTITIES,
    PUBLISHED_TARGETS,
    PUBLISHED_TIME_SCALE_US,
    AnalogParams,
    Calibration,
    CalibrationError,
    file_sha256,
    load_calibration,
)

SHIPPED_CHIPS = {"mock_chip_a": 1001, "mock_chip_b": 1002}  # file stem -> generator seed


def shipped_calibration_path(name: str) -> Path:
    """Path of a calibration file shipped with snnsim (`mock_chip_a` or `mock_chip_b`)."""
    if name not in SHIPPED_CHIPS:
        raise ValueError(f"no shipped calibration {name!r}; expected one of "
                         f"{', '.join(sorted(SHIPPED_CHIPS))}")
    return Path(__file__).resolve().parent / f"{name}.h5"


def default_calibration_path() -> Path:
    """The calibration used when a config names none: the shipped mock chip a."""
    return shipped_calibration_path("mock_chip_a")


__all__ = [
    "ANALOG_QUANTITIES",
    "DEFAULT_ANALOG",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NEURON_QUANTITIES",
    "N_NEURONS",
    "PUBLISHED_TARGETS",
    "PUBLISHED_TIME_SCALE_US",
    "SHIPPED_CHIPS",
    "AnalogParams",
    "Calibration",
    "CalibrationError",
    "default_calibration_path",
    "file_sha256",
    "generate_mock_calibration",
    "load_calibration",
    "shipped_calibration_path",
]
