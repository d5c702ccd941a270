"""`experiment.py rules-summary <sweep folder>`: the learning rules of a sweep side by side.

Reads every point folder of a sweep (`experiment.py sweep`, e.g. `rules_sweep.yaml`; each
holds config.yaml, metrics.csv and summary.yaml), names each point's rule from its layer
types (bp: `linear` only; fa, kp, dfa: the family's layers; mixed otherwise) and writes

* ``rules_summary.csv``: one row per point: point, status, rule, backend, seed, the test
  value of the task's primary metric, the final smallest cos(W, B) over the layers, the
  final update angle to backprop (all layers), the gradient norm ratio, epochs, seconds;

and prints one line per (rule, backend): the number of runs and the mean, standard
deviation and range of each of those columns.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import statistics
from pathlib import Path

import yaml

from snnsim.registry import COMMANDS, Command
from snnsim.results import write_rows_csv

RULE_OF_TYPE = {"linear": "bp", "fa_linear": "fa", "kp_linear": "kp", "dfa_linear": "dfa",
                "dfa_output": "dfa"}
COLUMNS = ("point", "status", "rule", "backend", "seed", "primary_metric", "test",
           "min_cos_wb", "update_angle_deg", "grad_norm_ratio", "epochs", "seconds")
NUMERIC = ("test", "min_cos_wb", "update_angle_deg", "grad_norm_ratio", "seconds")


def rule_of(layers: list[dict]) -> str:
    """bp, fa, kp or dfa when every layer follows that rule, else mixed."""
    rules = {RULE_OF_TYPE.get(entry.get("type"), "other") for entry in layers}
    return rules.pop() if len(rules) == 1 else "mixed"


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def point_row(folder: Path) -> dict:
    """One row of rules_summary.csv for the point folder `folder`."""
    row = {"point": folder.name}
    config_path, metrics_path = folder / "config.yaml", folder / "metrics.csv"
    if not config_path.is_file() or not metrics_path.is_file():
        row["status"] = "failed" if (folder / "error.txt").is_file() else "incomplete"
        return row
    config = yaml.safe_load(config_path.read_text())
    series = list(csv.DictReader(io.StringIO(metrics_path.read_text())))
    last = series[-1] if series else {}
    summary_path = folder / "summary.yaml"
    summary = (yaml.safe_load(summary_path.read_text()) or {}) if summary_path.is_file() else {}
    primary = summary.get("primary_metric", "")
    cos = [_number(v) for k, v in last.items() if k.endswith(".cos_wb")]
    row.update({
        "status": "ok" if summary else "running",
        "rule": rule_of(config["network_layout"]["layers"]),
        "backend": summary.get("backend", ""),
        "seed": config["training_params"]["torch_seed"],
        "primary_metric": primary,
        "test": summary.get(f"test_{primary}", ""),
        "min_cos_wb": min(cos) if cos else "",
        "update_angle_deg": last.get("update_angle_deg", ""),
        "grad_norm_ratio": last.get("grad_norm_ratio", ""),
        "epochs": len(series),
        "seconds": f"{sum(_number(r.get('epoch_seconds')) for r in series):.1f}",
    })
    return row


def sweep_rows(folder: Path) -> list[dict]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sweep folder {folder} does not exist")
    points = sorted(p for p in folder.iterdir() if p.is_dir() and (
        (p / "config.yaml").exists() or (p / "error.txt").exists()))
    if not points:
        raise FileNotFoundError(f"{folder} holds no point folders; give the folder that "
                                f"`experiment.py sweep` wrote")
    return [point_row(p) for p in points]


def _stats(values: list[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return ""
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4g} ± {spread:.2g} ({min(values):.4g} .. {max(values):.4g})"


def rule_table(rows: list[dict]) -> list[dict]:
    """Per (rule, backend) of the complete points: runs and the statistics of NUMERIC."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row.get("status") == "ok":
            groups.setdefault((row["rule"], row["backend"]), []).append(row)
    table = []
    for (rule, backend), members in groups.items():
        entry = {"rule": rule, "backend": backend, "runs": len(members)}
        entry.update({key: _stats([_number(m.get(key)) for m in members]) for key in NUMERIC})
        table.append(entry)
    return table


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", type=Path, help="the folder `experiment.py sweep` wrote")


def _run(args: argparse.Namespace) -> list[dict]:
    rows = sweep_rows(args.sweep_dir)
    path = write_rows_csv(Path(args.sweep_dir) / "rules_summary.csv", rows, COLUMNS)
    table = rule_table(rows)
    metric = next((r["primary_metric"] for r in rows if r.get("primary_metric")), "metric")
    print(f"| rule | backend | runs | test {metric} | min cos(W, B) | update angle [°] | "
          f"‖g_BP‖/‖g_rule‖ | seconds |")
    print("| --- | --- | ---: | --- | --- | --- | --- | --- |")
    for entry in table:
        print(f"| {entry['rule']} | {entry['backend']} | {entry['runs']} | {entry['test']} | "
              f"{entry['min_cos_wb']} | {entry['update_angle_deg']} | "
              f"{entry['grad_norm_ratio']} | {entry['seconds']} |")
    incomplete = [r["point"] for r in rows if r.get("status") != "ok"]
    if incomplete:
        print(f"not complete: {', '.join(incomplete)}")
    print(f"table: {path}")
    return rows


COMMANDS.register(Command(
    "rules-summary", "the learning rules of a sweep side by side (test score, cos(W, B), "
    "update angle; mean, spread, range per rule) and rules_summary.csv", _add_arguments, _run))
