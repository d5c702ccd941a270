"""Config schemas: one `Field` per key, checked by `validate_section`.

Every part that reads config keys (the top-level config, a layer type, a task, a
data set) declares its keys as {name: Field}; `validate_section` then rejects an
unknown key naming the nearest valid one, a wrong type or a value out of range
naming the key, the value and what was expected, and fills in the defaults.
"""
from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snnsim.errors import ConfigError

NUMBER = (int, float)
OFF = (bool, type(None))  # published configs write `false` for "disabled"


@dataclass(frozen=True)
class Field:
    """One config key: accepted types, default, a range check and what it expects."""

    types: tuple
    default: Any = None
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    required: bool = False


def positive(v) -> bool:
    return v > 0


def non_negative(v) -> bool:
    return v >= 0


def fraction(v) -> bool:
    return 0 <= v <= 1


def off_or_positive(v) -> bool:
    """`false`/null (disabled) or a number > 0; `true` is not a number."""
    return v is None or v is False or (not isinstance(v, bool) and v > 0)


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def validate_section(where: str, data: dict, fields: dict[str, Field]) -> dict:
    """Check `data` against `fields` and return a copy with defaults filled in."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(
                f"{where}: unknown key '{key}'{hint} (valid keys: {', '.join(fields)})"
            )
    out = {}
    for key, spec in fields.items():
        if key not in data:
            if spec.required:
                raise ConfigError(f"{where}: missing required key '{key}'")
            out[key] = copy.deepcopy(spec.default)
            continue
        value = data[key]
        ok_type = isinstance(value, spec.types) and not (
            isinstance(value, bool) and bool not in spec.types)
        if not ok_type:
            names = "/".join(t.__name__ if t is not type(None) else "null" for t in spec.types)
            raise ConfigError(f"{where}.{key} = {value!r}: expected {spec.expected or names}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}.{key} = {value!r}: expected a finite number")
        if spec.check is not None and not spec.check(value):
            raise ConfigError(f"{where}.{key} = {value!r}: expected {spec.expected}")
        out[key] = copy.deepcopy(value)
    return out
