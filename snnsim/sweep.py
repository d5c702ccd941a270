"""Sweeps: one base config, a grid of overrides, one training run per grid point, on Ray.

A sweep file:

    base: linear_mnist.yaml             # a config (relative to this file) or an inline mapping
    grid:                               # dotted keys into the raw config: [values]
      training_params.learning_rate: [0.01, 0.001]
      network_layout.layers.0.size: [100, 500]   # an integer part indexes a list
    overrides:                          # optional: fixed overrides of every point
      training_params.epoch_number: 3
    backend: cpu                        # optional (default cpu; --backend overrides it)
    cpus_per_point: 1                   # optional: CPUs Ray reserves for each point

The grid expands to its cartesian product (the last key varies fastest). Each point
trains into its own folder of the sweep folder, named by its index and its overrides
(`000_learning_rate=0.01_size=100`); `summary.csv` has one row per point. The sweep
folder keeps a copy of the sweep (`sweep.yaml`) so that running the sweep again into
the same folder skips the complete points (those whose folder holds `summary.yaml`) and
trains the others afresh.

Points run as Ray tasks (a local Ray instance by default, or a cluster); without Ray
installed they run one after another in this process.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from snnsim.atomic import atomic_path
from snnsim.errors import ConfigError
from snnsim.registry import COMMANDS, Command
from snnsim.results import write_rows_csv

log = logging.getLogger(__name__)

SWEEP_KEYS = ("base", "grid", "overrides", "backend", "cpus_per_point", "config_dir")
SWEEP_FILE = "sweep.yaml"          # the sweep's copy in its folder
SUMMARY_CSV = "summary.csv"
POINT_SUMMARY = "summary.yaml"     # a point is complete when its folder holds this
POINT_ERROR = "error.txt"          # the traceback of a point that failed
DEFAULT_PRIMARY_METRIC = "accuracy"  # runs whose summary names no primary_metric
EPOCHS_KEY = "training_params.epoch_number"
SNAPSHOTS_KEY = "training_params.epoch_snapshots"


class SweepFailed(RuntimeError):
    """Some points of a sweep failed (the others ran); their errors are in summary.csv."""

    def __init__(self, failed: list[str], total: int, summary_csv: Path):
        self.failed, self.total, self.summary_csv = failed, total, summary_csv
        super().__init__(f"{len(failed)} of {total} sweep points failed "
                         f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}); "
                         f"their errors are in the status column of {summary_csv} and in "
                         f"<point>/{POINT_ERROR}; run the sweep again into the same folder "
                         f"to redo them")


@dataclass
class Sweep:
    """A parsed sweep file: the raw base config, the grid and how to run the points."""

    name: str                      # names the default output folder
    base: dict                     # raw base config (before validation)
    grid: dict[str, list]          # dotted key -> values, in the file's order
    overrides: dict[str, Any]      # dotted key -> value, applied to every point
    backend: str = "cpu"
    cpus_per_point: float = 1
    config_dir: Path = Path(".")   # where relative paths of the base config are resolved
    source: str = "sweep"          # for error messages

    def definition(self) -> dict:
        """What the sweep folder keeps of the sweep (and compares when resuming)."""
        return {"base": self.base, "grid": self.grid, "overrides": self.overrides,
                "backend": self.backend, "cpus_per_point": self.cpus_per_point,
                "config_dir": str(self.config_dir)}


@dataclass
class Point:
    """One grid point: its index, folder name, grid values and full raw config."""

    index: int
    name: str
    values: dict[str, Any]         # grid key -> value of this point
    config: dict


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

    grid = data["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{source}: grid must be a non-empty mapping of dotted config keys "
                          f"to lists of values, e.g. `training_params.learning_rate: [0.01, "
                          f"0.001]`")
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{source}: grid key {key!r} is not a dotted config key")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{key} must be a non-empty list of values, "
                              f"got {values!r}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: overrides must be a mapping of dotted config keys to "
                          f"values, got {overrides!r}")
    clash = sorted(set(overrides) & set(grid))
    if clash:
        raise ConfigError(f"{source}: {', '.join(clash)} is both in grid and in overrides")

    backend = data.get("backend") or "cpu"
    if not isinstance(backend, str):
        raise ConfigError(f"{source}: backend must be a backend name, got {backend!r}")
    cpus = data.get("cpus_per_point", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0 \
            or not math.isfinite(cpus):
        raise ConfigError(f"{source}: cpus_per_point must be a positive number, got {cpus!r}")
    return Sweep(name=name, base=base, grid=dict(grid), overrides=dict(overrides),
                 backend=backend, cpus_per_point=cpus, config_dir=config_dir, source=source)


# --------------------------------------------------------------------------- the grid


def expand_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, one {key: value} per point; the first key
    varies slowest, the last fastest (like nested loops in the file's order)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


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


def point_names(grid: dict[str, list]) -> list[str]:
    """Folder names of the grid's points, in grid order: `000_learning_rate=0.01_size=100`."""
    points = expand_grid(grid)
    labels = short_labels(list(grid))
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
    """The sweep's points with their configs, in grid order; every point's overrides (and,
    with `validate`, its config) are checked before anything runs."""
    names = point_names(sweep.grid)
    points = []
    for index, (name, values) in enumerate(zip(names, expand_grid(sweep.grid), strict=True)):
        where = f"{sweep.source}: point {name}"
        config = apply_overrides(sweep.base, {**sweep.overrides, **values}, where)
        points.append(Point(index, name, values, config))
    if validate:
        from snnsim.config import resolve_config

        for point in points:
            resolve_config(copy.deepcopy(point.config), source=f"{sweep.source}: point "
                                                                f"{point.name}")
    return points


# --------------------------------------------------------------------------- one point


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_complete(point_dir: Path) -> bool:
    return (Path(point_dir) / POINT_SUMMARY).is_file()


def read_point(point_dir: Path) -> dict:
    """The summary.csv data of a complete point: its primary metric, test value and the
    last value of each series in its metrics.csv."""
    point_dir = Path(point_dir)
    summary = yaml.safe_load((point_dir / POINT_SUMMARY).read_text()) or {}
    primary = summary.get("primary_metric") or DEFAULT_PRIMARY_METRIC
    row = {"status": "ok", "primary_metric": primary,
           f"test_{primary}": summary.get(f"test_{primary}")}
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
        row.update({key: _format_value(value) for key, value in point.values.items()})
        row.update({k: v for k, v in result.items() if k != "status"})
        rows.append(row)
    return rows


def write_summary(path: Path, sweep: Sweep, rows: list[dict]) -> None:
    """summary.csv: point, status, one column per grid key, primary_metric, test_<metric>,
    final_<series>...; written atomically."""
    columns = ["point", "status", *sweep.grid, "primary_metric"]
    tests, finals = [], []
    for row in rows:
        for key in row:
            if key.startswith("test_") and key not in tests:
                tests.append(key)
            elif key.startswith("final_") and key not in finals:
                finals.append(key)
    write_rows_csv(path, rows, columns + tests + finals)


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
    if not stored_path.is_file():
        with atomic_path(stored_path) as tmp:
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
    failed = [row["point"] for row in rows if row["status"] != "ok"]
    if failed:
        raise SweepFailed(failed, len(points), summary_csv)
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
    sweep = load_sweep(args.sweep)
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
