"""Sweeps: one base config, a grid of overrides, one training run per grid point, on Ray.

A sweep file:

    base: linear_mnist.yaml             # a config (relative to this file) or an inline mapping
    grid:                               # dotted keys into the raw config: [values]
      training_params.learning_rate: [0.01, 0.001]
      network_layout.layers.0.size: [100, 500]   # an integer part indexes a list
    overrides:                          # optional: fixed overrides of every point
      training_params.epoch_number: 3
    columns:                            # optional: named columns of summary.csv
      lr: training_params.learning_rate   #   a dotted key of the points' configs, or
      loss: final_val_loss                #   a summary.csv column (final_<series>, ...)
    backend: cpu                        # optional (default cpu; --backend overrides it)
    cpus_per_point: 1                   # optional: CPUs Ray reserves for each point

The grid expands to its cartesian product (the last key varies fastest). `grid` may
also be a list of sub-grids, each such a mapping with optional `overrides:` of its own
(set on top of the sweep's); the points are the union of the sub-grids' points, in order:

    grid:
      - task.noise_std: [0, 0.8, 10]            # points 0-2: the base's layer
      - network_layout.layers.0.mode: [mask, subtract]   # points 3-4: a Top-K layer
        overrides:
          network_layout.layers.0: {type: topk_linear, size: 1000, k: 100}

Each point trains into its own folder of the sweep folder, named by its index and its
grid values (`000_learning_rate=0.01_size=100`); `summary.csv` has one row per point, one
column per grid key of any sub-grid (in a point of another sub-grid: its config's value
there, empty if its config has no such key; so are named config columns). The
sweep folder keeps a copy of the sweep (`sweep.yaml`) so that running the sweep again
into the same folder skips the complete points (those whose folder holds `summary.yaml`)
and trains the others afresh (and rewrites summary.csv, with the sweep file's `columns`).

Points run as Ray tasks (a local Ray instance by default, or a cluster); without Ray
installed they run one after another in this process.

`experiment.py eval <sweep folder>` draws the figures of the whole sweep into
`<sweep folder>/plots/`: every registered `SweepPlot` (`SWEEP_PLOTS`) that applies to
its summary.csv, among them the primary metric against each numeric grid key.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import datetime
import difflib
import io
import itertools
import json
import logging
import math
import os
import re
import shutil
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from snnsim.atomic import atomic_path
from snnsim.errors import ConfigError
from snnsim.registry import COMMANDS, Command, Registry
from snnsim.results import write_rows_csv

log = logging.getLogger(__name__)

SWEEP_KEYS = ("base", "grid", "overrides", "columns", "backend", "cpus_per_point",
              "config_dir")
SWEEP_FILE = "sweep.yaml"          # the sweep's copy in its folder
SUMMARY_CSV = "summary.csv"
PLOTS_DIR = "plots"                # `eval <sweep folder>` draws the sweep's figures here
RESULT_COLUMNS = ("point", "status", "primary_metric", "epochs", "training_seconds")
RESULT_PREFIXES = ("test_", "final_")  # test_<metric>, final_<series of metrics.csv>
POINT_SUMMARY = "summary.yaml"     # a point is complete when its folder holds this
POINT_ERROR = "error.txt"          # the traceback of a point that failed
DEFAULT_PRIMARY_METRIC = "accuracy"  # runs whose summary names no primary_metric
EPOCHS_KEY = "training_params.epoch_number"
SNAPSHOTS_KEY = "training_params.epoch_snapshots"


class SweepFailed(RuntimeError):
    """Some points of a sweep failed (the others ran); their errors are in summary.csv."""

    def __init__(self, failed: list[str], total: int, summary_csv: Path, first_error: str = ""):
        self.failed, self.total, self.summary_csv = failed, total, summary_csv
        super().__init__(f"{len(failed)} of {total} sweep points failed "
                         f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}"
                         f"{f'; the first: {first_error}' if first_error else ''}); "
                         f"their errors are in the status column of {summary_csv} and in "
                         f"<point>/{POINT_ERROR}; run the sweep again into the same folder "
                         f"to redo them")


@dataclass
class Sweep:
    """A parsed sweep file: the raw base config, the grid and how to run the points."""

    name: str                      # names the default output folder
    base: dict                     # raw base config (before validation)
    grid: dict[str, list] | list[dict]  # as in the file: one grid (dotted key -> values)
                                   # or a list of sub-grids (each may hold `overrides`)
    overrides: dict[str, Any]      # dotted key -> value, applied to every point
    columns: dict[str, str] = field(default_factory=dict)  # summary.csv name -> its source
    backend: str = "cpu"
    cpus_per_point: float = 1
    config_dir: Path = Path(".")   # where relative paths of the base config are resolved
    source: str = "sweep"          # for error messages

    @property
    def sub_grids(self) -> list[SubGrid]:
        return sub_grids(self.grid)

    def definition(self) -> dict:
        """What the sweep folder keeps of the sweep (and compares when resuming)."""
        return {"base": self.base, "grid": self.grid, "overrides": self.overrides,
                "columns": self.columns, "backend": self.backend,
                "cpus_per_point": self.cpus_per_point, "config_dir": str(self.config_dir)}


@dataclass
class SubGrid:
    """One cartesian grid of a sweep and the overrides of its points (on top of the
    sweep's own)."""

    grid: dict[str, list]          # dotted key -> values, in the file's order
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Point:
    """One grid point: its index, folder name, grid values, full raw config, and where it
    comes from (for messages: `point 003_mode=mask`, `grid[1] point 003_mode=mask`)."""

    index: int
    name: str
    values: dict[str, Any]         # grid key -> value of this point
    config: dict
    where: str = ""


@dataclass
class SweepResult:
    folder: Path
    summary_csv: Path
    rows: list[dict]               # one per point, in grid order (as in summary.csv)


# --------------------------------------------------------------------------- parsing


def _nearest(name: str, options) -> str:
    near = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.5)
    return f"; did you mean {near[0]!r}?" if near else ""


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep file (see the module's docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read sweep file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"sweep file {path} is not valid YAML: {error}") from None
    return sweep_from_mapping(data, folder=path.resolve().parent, name=path.stem,
                              source=str(path))


def sweep_from_mapping(data: Any, folder: str | os.PathLike = ".", name: str = "sweep",
                       source: str = "sweep") -> Sweep:
    """A Sweep from a parsed sweep file; relative paths in it are relative to `folder`."""
    folder = Path(folder).resolve()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a sweep file is a mapping with the keys "
                          f"{', '.join(SWEEP_KEYS)}; got {type(data).__name__}")
    for key in data:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r}{_nearest(key, SWEEP_KEYS)} "
                              f"(a sweep file has {', '.join(SWEEP_KEYS)})")
    for key in ("base", "grid"):
        if key not in data:
            raise ConfigError(f"{source}: missing required key {key!r}")

    base, config_dir = data["base"], None
    if isinstance(base, (str, os.PathLike)):
        base_path = folder / base
        try:
            base = yaml.safe_load(base_path.read_text())
        except OSError as error:
            raise ConfigError(f"{source}: cannot read base config {base_path}: "
                              f"{error.strerror or error}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: base config {base_path} is not valid YAML: "
                              f"{error}") from None
        config_dir = base_path.resolve().parent
        if not isinstance(base, dict):
            raise ConfigError(f"{source}: base config {base_path} is not a mapping")
    elif not isinstance(base, dict):
        raise ConfigError(f"{source}: base must be the path of a config or a config mapping, "
                          f"got {type(base).__name__}")
    if data.get("config_dir") is not None:
        config_dir = folder / str(data["config_dir"])
    config_dir = Path(config_dir or folder).resolve()

    overrides = _parse_overrides(data.get("overrides"), "overrides", source)
    grid = _parse_grid(data["grid"], overrides, source)
    columns = _parse_columns(data.get("columns"), grid_keys(grid), source)

    backend = data.get("backend") or "cpu"
    if not isinstance(backend, str):
        raise ConfigError(f"{source}: backend must be a backend name, got {backend!r}")
    cpus = data.get("cpus_per_point", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0 \
            or not math.isfinite(cpus):
        raise ConfigError(f"{source}: cpus_per_point must be a positive number, got {cpus!r}")
    return Sweep(name=name, base=base, grid=grid, overrides=overrides,
                 columns=columns, backend=backend, cpus_per_point=cpus,
                 config_dir=config_dir, source=source)


GRID_EXAMPLE = "e.g. `training_params.learning_rate: [0.01, 0.001]`"


def _parse_overrides(overrides: Any, where: str, source: str) -> dict[str, Any]:
    """`overrides` (None: none) checked to be a mapping of dotted keys to values."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict) or not all(isinstance(k, str) and k for k in overrides):
        raise ConfigError(f"{source}: {where} must be a mapping of dotted config keys to "
                          f"values, got {overrides!r}")
    return dict(overrides)


def _parse_cartesian(grid: dict, where: str, source: str) -> dict[str, list]:
    """One cartesian grid (`where` names it: `grid`, `grid[1]`) checked: dotted keys to
    non-empty lists of values."""
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{source}: {where} key {key!r} is not a dotted config key")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: {where}.{key} must be a non-empty list of values, "
                              f"got {values!r}")
    return dict(grid)


def _parse_grid(grid: Any, overrides: dict, source: str) -> dict[str, list] | list[dict]:
    """The sweep file's `grid`, checked: one cartesian grid (a mapping), or a list of
    sub-grids, each a mapping with optional `overrides`. A grid key may not also be one
    of the sweep's overrides or of its sub-grid's (where would its value come from?)."""
    if isinstance(grid, dict) and grid:
        grid = _parse_cartesian(grid, "grid", source)
        clash = sorted(set(overrides) & set(grid))
        if clash:
            raise ConfigError(f"{source}: {', '.join(clash)} is both in grid and in "
                              f"overrides")
        return grid
    if not isinstance(grid, list) or not grid:
        raise ConfigError(f"{source}: grid must be a non-empty mapping of dotted config keys "
                          f"to lists of values ({GRID_EXAMPLE}), or a non-empty list of such "
                          f"mappings (sub-grids, each with optional `overrides:`), got "
                          f"{grid!r}")
    parsed = []
    for number, item in enumerate(grid):
        where = f"grid[{number}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: {where} must be a mapping of dotted config keys to "
                              f"lists of values ({GRID_EXAMPLE}) with optional `overrides:`, "
                              f"got {item!r}")
        own = _parse_overrides(item.get("overrides"), f"{where}.overrides", source)
        cartesian = _parse_cartesian({k: v for k, v in item.items() if k != "overrides"},
                                     where, source)
        if not cartesian:
            raise ConfigError(f"{source}: {where} has no grid key, only overrides; give it "
                              f"one ({GRID_EXAMPLE}; a single point: a list of one value)")
        for others, whose in ((overrides, "the sweep's overrides"),
                              (own, f"{where}.overrides")):
            clash = sorted(set(others) & set(cartesian))
            if clash:
                raise ConfigError(f"{source}: {where}: {', '.join(clash)} is both a grid key "
                                  f"and in {whose}")
        parsed.append({**cartesian, **({"overrides": own} if own else {})})
    return parsed


def sub_grids(grid: dict[str, list] | list[dict]) -> list[SubGrid]:
    """The sub-grids of a (checked) sweep grid: a mapping is one."""
    if isinstance(grid, dict):
        return [SubGrid(dict(grid))]
    return [SubGrid({k: v for k, v in item.items() if k != "overrides"},
                    dict(item.get("overrides") or {})) for item in grid]


def grid_keys(grid: dict[str, list] | list[dict]) -> list[str]:
    """The keys of all sub-grids, each once, in the order they first appear (the grid
    columns of summary.csv)."""
    return list(dict.fromkeys(key for sub in sub_grids(grid) for key in sub.grid))


def is_result_column(name: str) -> bool:
    """Whether `name` is a column summary.csv gets from the points' results (as opposed
    to a dotted key of the points' configs)."""
    return name in RESULT_COLUMNS or name.startswith(RESULT_PREFIXES)


def _parse_columns(columns: Any, grid: list[str], source: str) -> dict[str, str]:
    """The `columns:` mapping {name in summary.csv: its source}; a source is a dotted key
    of every point's config (`task.noise_std`) or a result column (`final_val_loss`)."""
    if columns is None:
        return {}
    example = "e.g. `sigma: task.noise_std` or `loss: final_val_loss`"
    if not isinstance(columns, dict):
        raise ConfigError(f"{source}: columns must be a mapping of new summary.csv column "
                          f"names to a dotted config key or a summary.csv column ({example}), "
                          f"got {columns!r}")
    for name, column in columns.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"{source}: columns: {name!r} is not a column name (letters, "
                              f"digits, _ . -, starting with a letter or _)")
        if name in grid or is_result_column(name):
            raise ConfigError(f"{source}: columns.{name}: summary.csv already has a column "
                              f"{name!r}; choose another name")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{source}: columns.{name} must name a dotted config key or a "
                              f"summary.csv column ({example}), got {column!r}")
    return dict(columns)


# --------------------------------------------------------------------------- the grid


def expand_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The cartesian product of one grid, one {key: value} per point; the first key
    varies slowest, the last fastest (like nested loops in the file's order)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


def grid_points(grid: dict[str, list] | list[dict]) -> list[tuple[int, dict[str, Any]]]:
    """(sub-grid number, {key: value}) of every point: the union of the sub-grids'
    cartesian products, in order."""
    return [(number, values) for number, sub in enumerate(sub_grids(grid))
            for values in expand_grid(sub.grid)]


def short_labels(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with
    (`network_layout.layers.0.size` -> `size`, or `0.size` beside `layers.1.size`)."""
    labels = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            if not any(other != key and (other == label or other.endswith("." + label))
                       for other in keys):
                break
        labels[key] = label
    return labels


def _format_value(value: Any) -> str:
    """A value as it appears in summary.csv (YAML-like scalars, JSON for the rest)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _folder_safe(text: str, limit: int = 40) -> str:
    text = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"
    return text[:limit]


def point_names(grid: dict[str, list] | list[dict]) -> list[str]:
    """Folder names of the grid's points, in grid order: their index and grid values,
    `000_learning_rate=0.01_size=100` (labels unambiguous among all sub-grids' keys)."""
    points = [values for _, values in grid_points(grid)]
    labels = short_labels(grid_keys(grid))
    width = max(3, len(str(len(points) - 1)))
    names = []
    for index, values in enumerate(points):
        parts = [f"{_folder_safe(labels[k], 60)}={_folder_safe(_format_value(v))}"
                 for k, v in values.items()]
        names.append(f"{index:0{width}d}_" + "_".join(parts)[:180])
    return names


def _paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key of a raw config (mappings and list items)."""
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, child in items:
        path = f"{prefix}{key}"
        yield path
        yield from _paths(child, path + ".")


def set_dotted(config: dict, key: str, value: Any, where: str) -> None:
    """Set `key` (dotted; integer parts index lists) in the raw `config`, in place.

    Every part but the last must exist; the last may be a new key of an existing mapping.
    """
    parts = key.split(".")
    node: Any = config
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        reached = ".".join(parts[:depth]) or "the config"

        def missing(why: str):
            return ConfigError(f"{where}: override key {key!r}: {why}"
                               f"{_nearest(key, list(_paths(config)))}")

        if isinstance(node, dict):
            if part not in node and not last:
                raise missing(f"{reached} has no key {part!r}")
            if last:
                node[part] = copy.deepcopy(value)
            else:
                node = node[part]
        elif isinstance(node, list):
            if not re.fullmatch(r"\d+", part):
                raise missing(f"{reached} is a list; {part!r} is not an index into it")
            if int(part) >= len(node):
                raise missing(f"{reached} has {len(node)} items; index {part} is past its end")
            if last:
                node[int(part)] = copy.deepcopy(value)
            else:
                node = node[int(part)]
        else:
            raise missing(f"{reached} is a value ({node!r}), not a mapping or a list")


def _get_dotted(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def config_value(config: dict, key: str) -> str | None:
    """The value of the dotted key `key` of a raw config as summary.csv writes it; None
    (an empty cell) if the config has no such key."""
    try:
        return _format_value(_get_dotted(config, key))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def check_config_columns(sweep: Sweep, points: list[Point]) -> None:
    """ConfigError if a named column's dotted config key is in no point's config (a
    misspelt key); a key only some points have (the `mode` of a Top-K layer) is fine."""
    for name, key in sweep.columns.items():
        if is_result_column(key) or any(config_value(p.config, key) is not None
                                        for p in points):
            continue
        keys = dict.fromkeys(path for point in points for path in _paths(point.config))
        raise ConfigError(
            f"{sweep.source}: columns.{name}: {key!r} is neither a key of any point's config "
            f"nor a summary.csv column ({', '.join(RESULT_COLUMNS)}, test_<metric>, "
            f"final_<series of metrics.csv>){_nearest(key, keys)}")


def apply_overrides(base: dict, overrides: dict[str, Any], where: str = "sweep") -> dict:
    """A deep copy of the raw `base` config with the dotted-key `overrides` set.

    As with `experiment.py train --epochs`, a new `training_params.epoch_number` drops
    the base's `epoch_snapshots` after it, unless the snapshots are overridden too.
    """
    config = copy.deepcopy(base)
    for key, value in overrides.items():
        set_dotted(config, key, value, where)
    if EPOCHS_KEY in overrides and SNAPSHOTS_KEY not in overrides:
        try:
            epochs, snapshots = _get_dotted(config, EPOCHS_KEY), _get_dotted(config,
                                                                              SNAPSHOTS_KEY)
        except (KeyError, IndexError, TypeError):
            pass
        else:
            if isinstance(epochs, int) and isinstance(snapshots, list):
                set_dotted(config, SNAPSHOTS_KEY,
                           [e for e in snapshots if not isinstance(e, int) or e <= epochs], where)
    return config


def plan(sweep: Sweep, validate: bool = True) -> list[Point]:
    """The sweep's points with their configs, in grid order: the base config with the
    sweep's overrides, then its sub-grid's overrides, then its grid values. Every point's
    overrides (and, with `validate`, its config) are checked before anything runs, and no
    two points may have the same config (overlapping sub-grids)."""
    several = isinstance(sweep.grid, list)
    subs = sweep.sub_grids
    base = apply_overrides(sweep.base, sweep.overrides, f"{sweep.source}: overrides")
    points, seen = [], {}
    for index, (name, (number, values)) in enumerate(zip(point_names(sweep.grid),
                                                         grid_points(sweep.grid), strict=True)):
        where = f"{sweep.source}: {f'grid[{number}] ' if several else ''}point {name}"
        config = apply_overrides(base, {**subs[number].overrides, **values}, where)
        key = json.dumps(config, sort_keys=True, default=repr)
        if key in seen:
            raise ConfigError(f"{where} has the same config as point {seen[key]}; a sweep "
                              f"trains each config once: remove the repeated value or "
                              f"sub-grid")
        seen[key] = name
        points.append(Point(index, name, values, config, where))
    check_config_columns(sweep, points)
    if validate:
        from snnsim.config import resolve_config

        for point in points:
            resolve_config(copy.deepcopy(point.config), source=point.where)
    return points


def check_data(sweep: Sweep, points: list[Point]) -> None:
    """Load, in this process, the validation split of each distinct file-based data set
    (one that reads `data_dir`) of `points`, so that a missing or damaged data file stops
    the sweep before any point starts, naming the file. (A cluster's nodes, which may
    hold their data elsewhere, are not checked.)"""
    from snnsim.config import resolve_config
    from snnsim.datasets import DATASETS, load_dataset

    checked = []
    for point in points:
        where = point.where
        config = resolve_config(copy.deepcopy(point.config), source=where)
        data = (config["dataset"], config["data"])
        if "data_dir" not in DATASETS.get(config["dataset"]).fields or data in checked:
            continue
        checked.append(data)
        try:
            load_dataset(config["dataset"], "val", options=config["data"])
        except OSError as error:
            raise type(error)(f"{where}: {error}") from None
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None


# --------------------------------------------------------------------------- one point


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_complete(point_dir: Path) -> bool:
    return (Path(point_dir) / POINT_SUMMARY).is_file()


def read_point(point_dir: Path) -> dict:
    """The summary.csv data of a complete point: its primary metric, test value, epochs,
    training time and the last value of each series in its metrics.csv."""
    point_dir = Path(point_dir)
    summary = yaml.safe_load((point_dir / POINT_SUMMARY).read_text()) or {}
    primary = summary.get("primary_metric") or DEFAULT_PRIMARY_METRIC
    row = {"status": "ok", "primary_metric": primary,
           f"test_{primary}": summary.get(f"test_{primary}"),
           "epochs": summary.get("epochs"), "training_seconds": summary.get("training_seconds")}
    metrics = point_dir / "metrics.csv"
    if metrics.is_file():
        lines = list(csv.reader(io.StringIO(metrics.read_text())))
        if len(lines) > 1:
            for column, value in zip(lines[0], lines[-1], strict=False):
                if column != "epoch":
                    row[f"final_{column}"] = value
    return row


def run_point(config: dict, backend: str, point_dir: str, config_dir: str) -> dict:
    """Train one point into `point_dir` (removing an incomplete earlier try first) and
    return its summary.csv data; a failure is returned as {"status": "failed: ..."}, with
    the traceback in `<point_dir>/error.txt`. Runs in a Ray worker or in-process."""
    from snnsim.runs import train

    point_dir = Path(point_dir)
    if is_complete(point_dir):
        return read_point(point_dir)
    if point_dir.exists():
        shutil.rmtree(point_dir)
    try:
        train(config, backend, output=point_dir, progress=False, config_dir=Path(config_dir))
    except Exception as error:  # noqa: BLE001 - a failed point is reported, the sweep goes on
        point_dir.mkdir(parents=True, exist_ok=True)
        (point_dir / POINT_ERROR).write_text(traceback.format_exc())
        return {"status": f"failed: {_one_line(error)}"}
    return read_point(point_dir)


# --------------------------------------------------------------------------- summary.csv


def summary_rows(sweep: Sweep, points: list[Point], results: dict[str, dict],
                 pending_status: str = "pending") -> list[dict]:
    rows = []
    for point in points:
        row = {"point": point.name}
        result = results.get(point.name, {"status": pending_status})
        row["status"] = result["status"]
        # a grid key of another sub-grid: this point's config value, if it has that key
        row.update({key: _format_value(point.values[key]) if key in point.values
                    else config_value(point.config, key) for key in grid_keys(sweep.grid)})
        row.update({k: v for k, v in result.items() if k != "status"})
        for name, column in sweep.columns.items():
            row[name] = row.get(column) if is_result_column(column) else \
                config_value(point.config, column)
        rows.append(row)
    return rows


def write_summary(path: Path, sweep: Sweep, rows: list[dict]) -> None:
    """summary.csv: point, status, the sweep's named `columns`, one column per grid key
    (of all sub-grids), primary_metric, test_<metric>..., final_<series>..., epochs,
    training_seconds; written atomically."""
    columns = ["point", "status", *sweep.columns, *grid_keys(sweep.grid), "primary_metric"]
    tests, finals = [], []
    for row in rows:
        for key in row:
            if key.startswith("test_") and key not in tests:
                tests.append(key)
            elif key.startswith("final_") and key not in finals:
                finals.append(key)
    write_rows_csv(path, rows, columns + tests + finals + ["epochs", "training_seconds"])


def check_result_columns(sweep: Sweep, rows: list[dict], folder: Path) -> None:
    """ConfigError if a named column's result column is in no complete point's row (a
    misspelt series, say); a series only some points have (the k of a Top-K layer) is
    fine, and is empty in the others' rows."""
    complete = [row for row in rows if row["status"] == "ok"]
    have = sorted({key for row in complete for key, value in row.items()
                   if is_result_column(key) and value not in (None, "")})
    for name, column in sweep.columns.items():
        if complete and is_result_column(column) and column not in have:
            raise ConfigError(
                f"{sweep.source}: columns.{name}: no point has the column {column!r}"
                f"{_nearest(column, have)} (they have {', '.join(have)}), so it is empty in "
                f"{folder / SUMMARY_CSV}; correct `columns` and run the sweep again into "
                f"{folder}: its complete points are kept and summary.csv is rewritten")


# --------------------------------------------------------------------------- running


def _sweep_folder(sweep: Sweep, output: str | os.PathLike | None) -> Path:
    """The sweep folder: a new one, or `output` (empty, or a folder of the same sweep)."""
    if output is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        output = Path.cwd() / "experiment_results" / f"{sweep.name}_{stamp}"
    folder = Path(output)
    stored_path = folder / SWEEP_FILE
    if stored_path.is_file():
        stored = yaml.safe_load(stored_path.read_text()) or {}
        ours = sweep.definition()
        differ = [k for k in ("base", "grid", "overrides", "backend") if stored.get(k) != ours[k]]
        if differ:
            raise ConfigError(f"{folder} holds another sweep (its {', '.join(differ)} differ "
                              f"from {sweep.source}); resume it with the same sweep and backend "
                              f"or choose another --output")
    elif folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty and holds no {SWEEP_FILE}; choose "
                              f"another --output (or the folder of an earlier run of this sweep "
                              f"to resume it)")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(stored_path) as tmp:  # (a resumed sweep may have changed its columns)
        tmp.write_text(yaml.safe_dump(sweep.definition(), sort_keys=False))
    return folder


def _ray_or_none(use_ray: bool | None):
    """The ray module, or None to run in-process (saying so once if Ray is missing)."""
    if use_ray is False:
        return None
    try:
        import ray
    except ImportError as error:
        if use_ray:
            raise ImportError(f"the sweep was asked to run on Ray, but Ray cannot be imported "
                              f"({error}); install it with `pip install -e \".[ray]\"`") from None
        log.warning("Ray is not installed: running the sweep's points one after another in "
                    "this process (pip install -e \".[ray]\" to run them in parallel)")
        return None
    return ray


def run_sweep(sweep: Sweep, output: str | os.PathLike | None = None,
              backend: str | None = None, workers: int | None = None,
              ray_address: str | None = None, use_ray: bool | None = None,
              progress: bool = True) -> SweepResult:
    """Run every incomplete point of the sweep into its folder and write summary.csv.

    `use_ray`: None runs on Ray if it is installed, else in-process; True requires Ray;
    False runs in-process. On Ray, the points run on the Ray instance this process is
    already connected to, else on the cluster at `ray_address`, else on a new local
    instance with `workers` CPUs (default: all); each point reserves `cpus_per_point`
    CPUs. On a cluster, `workers` caps the points in flight, and the output folder must
    be on a file system every node sees.

    Raises SweepFailed at the end if points failed; KeyboardInterrupt after cancelling
    the points in flight and writing summary.csv (finished points are kept).
    """
    if backend is not None and backend != sweep.backend:
        sweep = copy.copy(sweep)
        sweep.backend = backend
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    points = plan(sweep)
    if not ray_address:
        check_data(sweep, [p for p in points
                           if output is None or not is_complete(Path(output) / p.name)])
    folder = _sweep_folder(sweep, output)
    summary_csv = folder / SUMMARY_CSV
    results: dict[str, dict] = {}
    for point in points:
        if is_complete(folder / point.name):
            results[point.name] = read_point(folder / point.name)
    todo = [p for p in points if p.name not in results]
    write_summary(summary_csv, sweep, summary_rows(sweep, points, results))
    if results:
        log.info("%s: %d of %d points are complete and skipped", folder, len(results),
                 len(points))

    def finished(point: Point, result: dict, bar) -> None:
        results[point.name] = result
        write_summary(summary_csv, sweep, summary_rows(sweep, points, results))
        bar.update(1)
        failed = sum(r["status"] != "ok" for r in results.values())
        if failed:
            bar.set_postfix(failed=failed)

    ray = _ray_or_none(use_ray) if todo else None
    with tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point",
              disable=not progress, dynamic_ncols=True) as bar:
        try:
            if ray is None:
                for point in todo:
                    finished(point, run_point(point.config, sweep.backend,
                                              str(folder / point.name), str(sweep.config_dir)),
                             bar)
            elif todo:
                _run_on_ray(ray, sweep, todo, folder, workers, ray_address, finished, bar)
        except KeyboardInterrupt:
            write_summary(summary_csv, sweep,
                          summary_rows(sweep, points, results, pending_status="interrupted"))
            raise
    rows = summary_rows(sweep, points, results)
    failed = [row for row in rows if row["status"] != "ok"]
    if failed:
        raise SweepFailed([row["point"] for row in failed], len(points), summary_csv,
                          failed[0]["status"].removeprefix("failed: "))
    check_result_columns(sweep, rows, folder)
    return SweepResult(folder, summary_csv, rows)


def init_ray(ray, address: str | None = None, workers: int | None = None) -> None:
    """Connect to the Ray cluster at `address`, or start a local instance with `workers`
    CPUs (default: all of this machine's)."""
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
                 include_dashboard=False, logging_level=logging.WARNING)


def _run_on_ray(ray, sweep: Sweep, todo: list[Point], folder: Path, workers: int | None,
                ray_address: str | None, finished, bar) -> None:
    owns = not ray.is_initialized()
    if owns:
        if not ray_address:
            local_cpus = workers or os.cpu_count() or 1
            if sweep.cpus_per_point > local_cpus:
                raise ConfigError(f"{sweep.source}: cpus_per_point {sweep.cpus_per_point} is "
                                  f"more than the {local_cpus} CPUs of the local Ray instance "
                                  f"(--workers)")
        init_ray(ray, ray_address, workers)
        if not ray_address:
            workers = None  # the local instance's CPUs bound the points in flight
    pending: dict[Any, Point] = {}
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if sweep.cpus_per_point > cpus:
            raise ConfigError(f"{sweep.source}: cpus_per_point {sweep.cpus_per_point} is more "
                              f"than the {cpus:g} CPUs of the Ray cluster")
        task = ray.remote(num_cpus=sweep.cpus_per_point)(run_point)
        queue = list(todo)
        while queue or pending:
            while queue and (workers is None or len(pending) < workers):
                point = queue.pop(0)
                ref = task.remote(point.config, sweep.backend, str(folder / point.name),
                                  str(sweep.config_dir))
                pending[ref] = point
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                point = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # noqa: BLE001 - a worker that died, ...
                    result = {"status": f"failed: {_one_line(error)}"}
                finished(point, result, bar)
    except KeyboardInterrupt:
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished or gone
                ray.cancel(ref, force=True)
        raise
    finally:
        if owns:
            ray.shutdown()


# --------------------------------------------------------------------------- the sweep's figures


@dataclass
class SweepTable:
    """What the figures of a sweep are drawn from: its summary.csv (values as text) and,
    from its sweep.yaml, the grid keys and the named columns."""

    folder: Path
    grid: list[str]                # grid keys (columns of summary.csv)
    columns: dict[str, str]        # named column -> its source (a grid key, a result, ...)
    rows: list[dict[str, str]]     # summary.csv, one per point

    @property
    def complete(self) -> list[dict[str, str]]:
        return [row for row in self.rows if row.get("status") == "ok"]

    def name_of(self, column: str) -> str:
        """How a figure names a column: its named column if it has one (`sigma
        (task.noise_std)`), else its shortest unambiguous grid label or itself."""
        named = [name for name, source in self.columns.items() if source == column]
        short = short_labels(self.grid).get(column, column)
        return f"{named[0]} ({short})" if named else short


@dataclass(frozen=True)
class SweepPlot:
    """Figures of a whole sweep that `experiment.py eval <sweep folder>` draws when
    `applies(table)`: `draw(table)` returns {file stem: matplotlib Figure}."""

    name: str
    applies: Callable[[SweepTable], bool]
    draw: Callable[[SweepTable], dict]


SWEEP_PLOTS: Registry[SweepPlot] = Registry("sweep plot")


def as_float(text: Any) -> float:
    """A summary.csv value as a float; nan if it is empty or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def set_x_scale(ax, values, max_ticks: int = 12) -> None:
    """Log x if the values are positive and span 20x or more; symlog (linear below the
    smallest positive value) if they include 0 and the positive ones span 20x or more;
    else linear. A log axis of at most `max_ticks` distinct values is ticked at them."""
    positive = [v for v in values if v > 0]
    if len(positive) < 2 or max(positive) < 20 * min(positive) or min(values) < 0:
        return
    if min(values) > 0:
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=min(positive), linscale=0.5)
    ticks = sorted(set(values))
    if len(ticks) <= max_ticks:
        from matplotlib.ticker import NullLocator

        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())


def is_sweep_folder(folder: str | os.PathLike) -> bool:
    return (Path(folder) / SWEEP_FILE).is_file()


def read_sweep_table(folder: str | os.PathLike) -> SweepTable:
    """The SweepTable of a sweep folder (its sweep.yaml and summary.csv)."""
    folder = Path(folder)
    try:
        stored = yaml.safe_load((folder / SWEEP_FILE).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {folder / SWEEP_FILE}: "
                          f"{error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{folder / SWEEP_FILE} is not valid YAML: {error}") from None
    grid = stored.get("grid") if isinstance(stored, dict) else None
    if not (isinstance(grid, dict) or isinstance(grid, list)
            and all(isinstance(item, dict) for item in grid)):
        raise ConfigError(f"{folder / SWEEP_FILE} is not a sweep as `experiment.py sweep` "
                          f"stores it (a mapping with a grid)")
    try:
        text = (folder / SUMMARY_CSV).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} holds {SWEEP_FILE} but no {SUMMARY_CSV}; run the "
                                f"sweep into it (experiment.py sweep ... --output {folder})"
                                ) from None
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    missing = {"point", "status"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{folder / SUMMARY_CSV} is not a sweep summary: it has no "
                         f"{' and no '.join(sorted(missing))} column")
    return SweepTable(folder, grid_keys(grid), dict(stored.get("columns") or {}), rows)


def write_sweep_plots(folder: str | os.PathLike) -> list[Path]:
    """Draw every registered sweep plot that applies to the sweep folder `folder` into
    `<folder>/plots/` (atomically); the files written."""
    from snnsim.plots import DPI

    table = read_sweep_table(folder)
    if not table.complete:
        statuses = sorted({row["status"] for row in table.rows}) or ["no points"]
        raise ValueError(f"{table.folder / SUMMARY_CSV} has no complete point to plot yet "
                         f"(status: {', '.join(statuses)})")
    written = []
    for plot in SWEEP_PLOTS.values():
        if not plot.applies(table):
            continue
        for stem, figure in plot.draw(table).items():
            path = table.folder / PLOTS_DIR / f"{stem}.png"
            with atomic_path(path) as tmp:
                figure.savefig(tmp, format="png", dpi=DPI)
            written.append(path)
    return written


def _numeric_grid_keys(table: SweepTable) -> list[str]:
    """Grid keys whose values in the complete points that have one (points of another
    sub-grid may not) are numbers, two or more of them."""
    keys = []
    for key in table.grid:
        values = [as_float(row[key]) for row in table.complete if row.get(key)]
        if all(math.isfinite(v) for v in values) and len(set(values)) > 1:
            keys.append(key)
    return keys


def _draw_primary_against_grid(table: SweepTable) -> dict:
    """The test value of the primary metric against each numeric grid key, one line per
    combination of the other grid keys' values (`mode unset`: a point without that key)."""
    from matplotlib.figure import Figure

    labels = short_labels(table.grid)
    figures = {}
    primary = table.complete[0].get("primary_metric") or DEFAULT_PRIMARY_METRIC
    for key in _numeric_grid_keys(table):
        lines: dict[str, list[tuple[float, float]]] = {}
        for row in table.complete:
            y = as_float(row.get(f"test_{row.get('primary_metric') or DEFAULT_PRIMARY_METRIC}"))
            if math.isfinite(y) and row.get(key):
                label = ", ".join(f"{labels[k]}={row[k]}" if row.get(k) else
                                  f"{labels[k]} unset" for k in table.grid if k != key)
                lines.setdefault(label, []).append((as_float(row[key]), y))
        if not lines:
            continue
        fig = Figure(figsize=(6, 4.2), layout="constrained")
        ax = fig.subplots()
        for label, points in lines.items():
            points.sort()
            ax.plot([x for x, _ in points], [y for _, y in points], "o-", label=label or None)
        set_x_scale(ax, [x for points in lines.values() for x, _ in points])
        ax.set_xlabel(table.name_of(key))
        ax.set_ylabel(f"test {primary}")
        if len(lines) > 1:
            ax.legend(fontsize=8)
        ax.set_title(f"{table.folder.name}: test {primary} against {labels[key]}", fontsize=9)
        figures[f"sweep_{_folder_safe(primary)}_vs_{_folder_safe(labels[key])}"] = fig
    return figures


SWEEP_PLOTS.register(SweepPlot(
    "primary_against_grid",
    lambda table: bool(_numeric_grid_keys(table)) and bool(table.complete),
    _draw_primary_against_grid))


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", type=Path, help="sweep file: a base config and a grid of "
                        "dotted-key overrides (see README, Sweeps)")
    parser.add_argument("--output", type=Path,
                        help="sweep folder (default: experiment_results/<sweep>_<timestamp> in "
                             "the working directory); the folder of an earlier run of the same "
                             "sweep resumes it, skipping its complete points")
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="address of a running Ray cluster (default: $RAY_ADDRESS, else a "
                             "new local Ray instance)")
    parser.add_argument("--workers", type=int,
                        help="CPUs of the local Ray instance (default: all); on a cluster, the "
                             "most points in flight")
    parser.add_argument("--backend", help="backend of every point (default: the sweep file's "
                                          "backend, else cpu)")
    parser.add_argument("--no-ray", action="store_true",
                        help="run the points one after another in this process")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> SweepResult:
    from snnsim.resources import find_config

    sweep = load_sweep(find_config(args.sweep))  # a path, or a shipped sweep by name
    try:
        result = run_sweep(sweep, output=args.output, backend=args.backend,
                           workers=args.workers, ray_address=args.ray_address,
                           use_ray=False if args.no_ray else None, progress=not args.quiet)
    except SweepFailed as error:
        print(f"summary: {error.summary_csv}")
        raise
    print(f"summary: {result.summary_csv}  ({len(result.rows)} points)")
    return result


COMMANDS.register(Command(
    "sweep", "train a base config over a grid of overrides, one results folder per point "
             "and summary.csv (points run in parallel on Ray)", add_arguments, run))
