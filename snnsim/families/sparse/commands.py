"""`experiment.py sparse-summary <sweep folder>`: the sparse-coding table of a sweep.

Reads every point folder of a sweep (`experiment.py sweep`; each holds config.yaml and
metrics.csv) and writes

* ``sparse_summary.csv``: point, layer, width, sigma, k, active_fraction, dead_neurons,
  dead_fraction, activity_entropy, enc_dec_cosine, loss (the last epoch's validation
  loss, noise on), test_loss, epochs, seconds (training time);
* ``plots/active_fraction_vs_sigma.png``: active fraction against sigma, one line per
  layer type and k (complete points only), with the published curve for reference;

and prints the table. Points still running or failed are listed with status only.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

import yaml

from snnsim.registry import COMMANDS, Command
from snnsim.results import write_rows_csv

from .layers import TopKLinear, TrackedLinear

COLUMNS = ("point", "status", "layer", "width", "sigma", "k", "active_fraction",
           "dead_neurons", "dead_fraction", "activity_entropy", "enc_dec_cosine", "loss",
           "test_loss", "epochs", "seconds")
TRACKED_TYPES = (TrackedLinear.type_name, TopKLinear.type_name)


def _read_metrics(path: Path) -> tuple[dict[str, str], int, float]:
    """The last row of metrics.csv, the number of epochs and the summed epoch seconds."""
    lines = list(csv.DictReader(io.StringIO(path.read_text())))
    if not lines:
        return {}, 0, math.nan
    seconds = sum(float(row.get("epoch_seconds") or "nan") for row in lines)
    return lines[-1], len(lines), seconds


def point_row(folder: Path) -> dict:
    """One row of the table for the point folder `folder`."""
    row = {"point": folder.name}
    config_path, metrics_path = folder / "config.yaml", folder / "metrics.csv"
    if not config_path.is_file() or not metrics_path.is_file():
        row["status"] = "failed" if (folder / "error.txt").is_file() else "incomplete"
        return row
    config = yaml.safe_load(config_path.read_text())
    layers = config["network_layout"]["layers"]
    tracked = next((entry for entry in layers if entry["type"] in TRACKED_TYPES), layers[0])
    last, epochs, seconds = _read_metrics(metrics_path)
    summary_path = folder / "summary.yaml"
    summary = yaml.safe_load(summary_path.read_text()) if summary_path.is_file() else {}
    row.update({
        "status": "ok" if summary else "running",
        "layer": tracked["type"] + (f" ({tracked['mode']})" if "mode" in tracked else ""),
        "width": tracked["size"],
        "sigma": config["task"].get("noise_std", ""),
        "k": last.get("k", ""),
        "loss": last.get("val_loss", ""),
        "test_loss": (summary or {}).get("test_loss", ""),
        "epochs": epochs,
        "seconds": f"{seconds:.1f}",
    })
    for key in ("active_fraction", "dead_neurons", "dead_fraction", "activity_entropy",
                "enc_dec_cosine"):
        row[key] = last.get(key, "")
    return row


def sweep_rows(folder: Path) -> list[dict]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sweep folder {folder} does not exist")
    points = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "plots")
    if not points:
        raise FileNotFoundError(f"{folder} holds no point folders; give the folder that "
                                f"`experiment.py sweep` wrote")
    return [point_row(p) for p in points]


def write_table(path: Path, rows: list[dict]) -> None:
    write_rows_csv(path, rows, COLUMNS)


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def active_vs_sigma_groups(rows: list[dict]) -> dict[str, list[tuple[float, float]]]:
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row.get("status") != "ok":  # points still training are left out of the figure
            continue
        sigma, fraction = _as_float(row.get("sigma")), _as_float(row.get("active_fraction"))
        if math.isfinite(sigma) and math.isfinite(fraction):
            label = f"{row['layer']}, {row['width']} units"
            if row.get("k") not in ("", None):
                label += f", k = {int(float(row['k']))}"
            groups.setdefault(label, []).append((sigma, fraction))
    return groups


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", type=Path, help="the folder `experiment.py sweep` wrote")


def _run(args: argparse.Namespace) -> list[dict]:
    from .plots import plot_active_vs_sigma

    rows = sweep_rows(args.sweep_dir)
    table = Path(args.sweep_dir) / "sparse_summary.csv"
    write_table(table, rows)
    groups = active_vs_sigma_groups(rows)
    if groups:
        plots = Path(args.sweep_dir) / "plots"
        plots.mkdir(exist_ok=True)
        plot_active_vs_sigma(groups).savefig(plots / "active_fraction_vs_sigma.png", dpi=120)
    shown = ("point", "status", "sigma", "k", "active_fraction", "dead_neurons", "loss",
             "epochs", "seconds")
    print("  ".join(shown))
    for row in rows:
        print("  ".join(str(row.get(key, "")) for key in shown))
    print(f"table: {table}")
    return rows


COMMANDS.register(Command(
    "sparse-summary", "the sparse-coding table (sigma, k, active fraction, dead neurons, "
    "loss) and the active-fraction-against-sigma plot of a sweep folder", _add_arguments, _run))
