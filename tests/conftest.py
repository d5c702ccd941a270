"""Shared fixtures: where the project's shared data lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """`$SNNSIM_SHARED_DATA`, else the `shared/data` folder beside the repository."""
    return Path(os.environ.get("SNNSIM_SHARED_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} is missing (set SNNSIM_SHARED_DATA)")
    return path
