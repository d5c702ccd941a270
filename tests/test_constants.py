"""The solver constants have one Python definition (snnsim.constants), used by both Python
backends, and the CUDA header that repeats them for device code agrees with it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends import cpu, torch_backend
from snnsim import constants
from snnsim.params import DOUBLE, EQUAL, GENERAL, NeuronParams

SPIKE_MATH_H = Path(__file__).resolve().parents[1] / "backends" / "cuda" / "csrc" / "spike_math.h"


def header_constants(text: str) -> dict[str, float]:
    """`constexpr <type> NAME = <number>;` definitions of a C++ header, as numbers."""
    found = {}
    for name, value in re.findall(
            r"^\s*constexpr\s+(?:int|double|float|int64_t|long)\s+(\w+)\s*=\s*([-+0-9.eE]+)\s*;",
            text, flags=re.MULTILINE):
        found[name] = float(value)
    return found


def test_python_backends_use_the_one_definition():
    for module in (cpu, torch_backend):
        assert module.MIN_SLOPE_FRACTION is constants.MIN_SLOPE_FRACTION, module.__name__
        assert module.NEWTON_MAX_ITERATIONS is constants.NEWTON_MAX_ITERATIONS, module.__name__
    assert cpu.REGIME_CODES is constants.REGIME_CODES


def test_regime_codes():
    assert constants.regime_code(EQUAL) == constants.EQUAL_CODE == 0
    assert constants.regime_code(DOUBLE) == constants.DOUBLE_CODE == 1
    assert constants.regime_code(GENERAL) == constants.GENERAL_CODE == 2
    assert constants.regime_code(NeuronParams(tau_syn=1.0, tau_mem=1.7).regime) == 2
    with pytest.raises(ValueError, match="unknown regime 'triple'"):
        constants.regime_code("triple")


def test_header_parser():
    text = "namespace snn {\nconstexpr int A = 3;  // x\n  constexpr double B = 1e-9;\n"
    assert header_constants(text) == {"A": 3.0, "B": 1e-9}


def test_cuda_header_agrees_with_the_python_definition():
    """spike_math.h is read, not compiled: this runs wherever the sources are."""
    found = header_constants(SPIKE_MATH_H.read_text())
    expected = {
        "EQUAL": constants.EQUAL_CODE,
        "DOUBLE": constants.DOUBLE_CODE,
        "GENERAL": constants.GENERAL_CODE,
        "NEWTON_MAX_ITERATIONS": constants.NEWTON_MAX_ITERATIONS,
        "MIN_SLOPE_FRACTION": constants.MIN_SLOPE_FRACTION,
    }
    missing = sorted(set(expected) - set(found))
    assert not missing, f"{SPIKE_MATH_H} no longer defines {missing} as constexpr"
    assert {name: found[name] for name in expected} == expected


def test_cuda_backend_regime_codes_agree():
    """The cuda backend's launch code (importable without a GPU or a built extension)
    hands the kernels the same codes."""
    import backends.cuda as cuda_backend

    assert cuda_backend.REGIME_CODES == constants.REGIME_CODES
