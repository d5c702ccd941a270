"""Shared fixtures: where the tests' reference data lives.

The data ship with the repository in `tests/data/` (see `tests/data/README.md` for what
each file is and where it comes from); `$SNNSIM_TEST_DATA` may point the tests at
another folder of the same layout.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_DATA_ENV = "SNNSIM_TEST_DATA"
TEST_DATA_DIR = Path(__file__).resolve().parent / "data"


def reference_data_dir() -> Path:
    """`$SNNSIM_TEST_DATA`, else the `tests/data` folder of the repository."""
    return Path(os.environ.get(TEST_DATA_ENV) or TEST_DATA_DIR)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the tests' reference data (`yin_yang/`, `mnist/`, `fastanddeep/`)."""
    path = reference_data_dir()
    if not path.is_dir():
        pytest.fail(f"test data folder {path} is missing (it ships with the repository in "
                    f"tests/data; {TEST_DATA_ENV} may point elsewhere)")
    return path
