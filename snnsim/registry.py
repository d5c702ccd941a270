"""Registries: the named parts a config or the command line can ask for.

One small type serves every kind of part (layers, tasks, data sets, metric
callbacks, plots, command-line subcommands). A model family adds entries from its
own package under `snnsim/families/`; the training loop and the command line look
parts up here by name and never import a family directly.

    from snnsim.registry import LAYERS

    @LAYERS.register
    class MyLayer(Layer):
        type_name = "my_layer"

An unknown name is an error that names the nearest registered one.
"""
from __future__ import annotations

import argparse
import difflib
import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from snnsim.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Parts of one kind by name; `register` adds one, `get` finds one or says what is near."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T | None = None, *, name: str | None = None):
        """Register `entry` under `name` (default: its `type_name` or `name` attribute).

        Usable as `@REGISTRY.register`, `@REGISTRY.register(name="x")` or a plain call.
        """
        def add(item: T) -> T:
            key = name or getattr(item, "type_name", None) or getattr(item, "name", None)
            if not isinstance(key, str) or not key:
                raise TypeError(f"cannot register {item!r} as a {self.kind}: it has no name")
            if key in self._entries and self._entries[key] is not item:
                raise ValueError(f"{self.kind} {key!r} is registered twice "
                                 f"({self._entries[key]!r} and {item!r})")
            self._entries[key] = item
            return item

        return add if entry is None else add(entry)

    def get(self, key: str, where: str = "") -> T:
        """The entry named `key`; ConfigError naming the nearest names if there is none."""
        load_families()
        if key in self._entries:
            return self._entries[key]
        near = difflib.get_close_matches(str(key), list(self._entries), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        what = f"{where} = {key!r}: unknown {self.kind}" if where else \
            f"unknown {self.kind} {key!r}"
        raise ConfigError(f"{what}{hint} (expected one of {', '.join(sorted(self._entries))})")

    def names(self) -> list[str]:
        load_families()
        return sorted(self._entries)

    def __contains__(self, key: object) -> bool:
        load_families()
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(key, self._entries[key]) for key in self.names()]

    def values(self) -> list[T]:
        return [self._entries[key] for key in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


@dataclass(frozen=True)
class Command:
    """A subcommand of `experiment.py`: its help line, its arguments and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]


@dataclass(frozen=True)
class Plot:
    """Plots `eval` draws when `applies(trainer)`: `draw(trainer, evaluations, options)`
    returns {file stem: matplotlib Figure}; `evaluations` holds the train/val/test
    `Evaluation`s (hidden layers kept), `options` {"map_resolution": 100, "plots_dir":
    the folder the figures go to (a plot may write a table beside them)}."""

    name: str
    applies: Callable[[Any], bool]
    draw: Callable[[Any, dict], dict]


@dataclass(frozen=True)
class MetricCallback:
    """Per-epoch metrics of a run: `compute(trainer)` returns {series name: float}, called
    after each training epoch when `applies(trainer)`; the values join `metrics.csv`."""

    name: str
    applies: Callable[[Any], bool]
    compute: Callable[[Any], dict[str, float]]


LAYERS: Registry = Registry("layer type")
TASKS: Registry = Registry("task")
DATASETS: Registry = Registry("data set")
METRICS: Registry[MetricCallback] = Registry("metric callback")
PLOTS: Registry[Plot] = Registry("plot")
COMMANDS: Registry[Command] = Registry("command")

_CORE_MODULES = ("snnsim.layers", "snnsim.tasks", "snnsim.datasets", "snnsim.plots",
                 "snnsim.sweep", "snnsim.interchange")


@functools.cache
def load_families() -> None:
    """Import the core parts and every package under `snnsim.families` (once), so that
    their entries are registered before the first look-up."""
    for module in _CORE_MODULES:
        importlib.import_module(module)
    from snnsim import families

    for info in pkgutil.iter_modules(families.__path__, families.__name__ + "."):
        importlib.import_module(info.name)
