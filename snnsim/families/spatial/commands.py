"""Subcommands on the results folder of a `spatial_multitask` run (`experiment.py <name>`):

    record <results> [--split val] [--statistic mean|variance]
        per task, the mean (or variance) of every unit's |activity| (sequential mode);
        writes <results>/record_<statistic>.npz (layer_<k>: [T, units], tasks)
    plot <results>
        <results>/plots/spatial_positions.png (learned positions coloured by the task each
        unit serves, connections by weight) and spatial_task_strength.png (sequential mode)
    split <results> [--assign greedy|activity] [--finetune N]
        the split into one sub-network per task (`analysis.py`: the published greedy
        assignment from the weights, or by the activity recorded on the training split);
        writes one results folder per task, <results>/split/<task>/ (config.yaml,
        checkpoints/), that `inference` reads, and <results>/split/assignment.npz; with
        --finetune N each sub-network trains N more epochs on its own task, its removed
        weights kept at 0
    score <results> [--split test] [--assign greedy|activity]
        every sub-network (from `split` and its assignment, else split on the fly by
        --assign) and the full network on every task; writes <results>/split_scores.csv
        and split_summary.yaml and prints `separation: X.XXX` (mean silhouette of the
        positions by the task each unit serves under the published greedy assignment,
        `costs.py`, as the per-epoch metric; with another assignment also its own),
        next to each layer's position spread (`costs.spread`: a silhouette measured
        inside units collapsed to one spot is noted as such)
"""
from __future__ import annotations

import argparse
import copy
import shutil
from pathlib import Path

import numpy as np
import torch

from snnsim.checkpoint import save_checkpoint
from snnsim.datasets import Dataset
from snnsim.registry import COMMANDS, Command
from snnsim.results import (
    checkpoint_path,
    write_metrics_csv,
    write_npz,
    write_rows_csv,
    write_yaml,
)

from .analysis import (
    ASSIGNMENTS,
    apply_subnetwork_,
    assignment,
    record_activity,
    separation,
    spatial_chain,
    subnetwork_masks,
    task_strength,
)
from .costs import spread
from .data import N_LABELS
from .plots import positions_figure, strength_figure

SPLIT_FOLDER = "split"
ASSIGNMENT_FILE = "assignment.npz"
SCORES_CSV = "split_scores.csv"
# Below this position spread (costs.spread) `score` notes that a layer's units collapsed.
COLLAPSED_SPREAD = 0.05
SCORE_COLUMNS = ("network", "task", "accuracy", "full_accuracy", "fraction_of_full",
                 "chance", "own_task")


def _load(results: Path, epoch: int | None = None, backend: str | None = None):
    from snnsim import runs

    trainer = runs.load_trainer(results, epoch, backend)
    spatial_chain(trainer.network)  # a clear error for networks that are not all spatial
    if trainer.task.type_name != "spatial_multitask":
        raise ValueError(f"{results}: a {trainer.task.type_name!r} run; these commands read "
                         f"spatial_multitask runs")
    return trainer


def _add_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="results folder of a spatial_multitask run")
    parser.add_argument("--epoch", type=int, default=None, help="checkpoint (default: latest)")
    parser.add_argument("--backend", default=None, help="default: the run's")


# -- record ----------------------------------------------------------------------------------

def _record_arguments(parser: argparse.ArgumentParser) -> None:
    _add_results(parser)
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--statistic", default="mean", choices=("mean", "variance"))


def record(args: argparse.Namespace) -> Path:
    trainer = _load(args.results, args.epoch, args.backend)
    activity = record_activity(trainer, args.split, args.statistic)
    path = Path(args.results) / f"record_{args.statistic}.npz"
    write_npz(path, tasks=np.array(trainer.task.task_names),
              **{f"layer_{k}": a for k, a in enumerate(activity)})
    for k, a in enumerate(activity):
        strong = (task_strength(a) > 0).sum(1)
        print(f"layer {k}: {a.shape[1]} units; units stronger for "
              + ", ".join(f"{name}: {n}" for name, n in zip(trainer.task.task_names, strong)))
    print(f"record: {path}")
    return path


# -- plot ------------------------------------------------------------------------------------

def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    _add_results(parser)
    parser.add_argument("--split", default="val", choices=("train", "val", "test"),
                        help="split whose activity the strength map shows")
    _add_assign(parser)


def plot(args: argparse.Namespace) -> list[Path]:
    trainer = _load(args.results, args.epoch, args.backend)
    layers = spatial_chain(trainer.network)
    names = trainer.task.task_names
    folder = Path(args.results) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"spatial_positions": positions_figure(
        layers, assignment(trainer, args.assign), names)}
    if trainer.task.mode == "sequential":
        strengths = [task_strength(a) for a in record_activity(trainer, args.split, "mean")]
        figures["spatial_task_strength"] = strength_figure(strengths, names)
    written = []
    for stem, figure in figures.items():
        written.append(folder / f"{stem}.png")
        figure.savefig(written[-1], dpi=120)
    print(f"plots: {', '.join(str(p) for p in written)}")
    return written


# -- split -----------------------------------------------------------------------------------

def _add_assign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assign", default="greedy", choices=ASSIGNMENTS,
                        help="which task each unit serves: greedy (published, from the "
                             "weights) or activity (the task whose training samples drive "
                             "it most; sequential mode)")


def _split_arguments(parser: argparse.ArgumentParser) -> None:
    _add_results(parser)
    _add_assign(parser)
    parser.add_argument("--finetune", type=int, default=0, metavar="N",
                        help="train each sub-network N more epochs on its own task")


def _own_task_data(trainer, task: int) -> dict[str, Dataset]:
    """Sequential mode: the training split restricted to `task`'s samples."""
    if trainer.task.mode != "sequential":
        return {}
    data = trainer.dataset("train")
    keep = data.targets // N_LABELS == task
    return {"train": Dataset(data.name, "train", data.inputs[keep], data.targets[keep],
                             n_classes=data.n_classes)}


def _finetune(trainer, masks: list[dict], epochs: int) -> None:
    """Train `epochs` epochs with the removed weights held at zero: their gradients are
    masked and the optimiser starts afresh (no momentum from the full run moves them).
    The data hold one task, so batches are drawn at random (an ordered sampler would
    leave every other batch empty)."""
    trainer.task.ordered = False
    layers = spatial_chain(trainer.network)
    for layer, mask in zip(layers, masks):
        for name, m in mask.items():
            getattr(layer, name).register_hook(lambda g, m=m: g * m.to(g.dtype))
    trainer.optimizer.state.clear()
    for _ in range(epochs):
        trainer.train_epoch()


def split(args: argparse.Namespace) -> Path:
    if args.finetune < 0:
        raise ValueError(f"--finetune {args.finetune}: expected a number of epochs >= 0")
    results = Path(args.results)
    base = _load(results, args.epoch, args.backend)
    units_task = assignment(base, args.assign)
    folder = results / SPLIT_FOLDER
    folder.mkdir(exist_ok=True)
    # an earlier split's assignment and sub-networks go first (its later checkpoints
    # would otherwise be read as this split's); the assignment is written last
    (folder / ASSIGNMENT_FILE).unlink(missing_ok=True)
    for name in base.task.task_names:
        shutil.rmtree(folder / name, ignore_errors=True)
    from snnsim.training import Trainer

    checkpoint = base.checkpoint()
    for t, name in enumerate(base.task.task_names):
        trainer = Trainer(base.config, base.backend_name, datasets=_own_task_data(base, t))
        trainer.restore(checkpoint)
        sub = spatial_chain(trainer.network)
        masks = subnetwork_masks(sub, units_task, t)
        apply_subnetwork_(sub, masks)
        if args.finetune:
            _finetune(trainer, masks, args.finetune)
        out = folder / name
        out.mkdir(exist_ok=True)
        write_yaml(out / "config.yaml", trainer.config)
        write_metrics_csv(out / "metrics.csv", trainer.history)
        save_checkpoint(checkpoint_path(out, trainer.epoch), trainer.checkpoint())
        units = [int((a == t).sum()) for a in units_task]
        print(f"{name} ({args.assign} assignment): units per layer {units}"
              + (f", fine-tuned {args.finetune} epochs" if args.finetune else "")
              + f" -> {out}")
    write_npz(folder / ASSIGNMENT_FILE, tasks=np.array(base.task.task_names),
              method=np.array(args.assign), finetune=np.array(args.finetune),
              **{f"layer_{k}": a for k, a in enumerate(units_task)})
    return folder


# -- score -----------------------------------------------------------------------------------

def _score_arguments(parser: argparse.ArgumentParser) -> None:
    _add_results(parser)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--assign", default=None, choices=ASSIGNMENTS,
                        help="assignment of an on-the-fly split (default: the one `split` "
                             "saved, else greedy)")


def _per_task(trainer, split_name: str) -> list[float]:
    metrics = trainer.evaluate(split_name).metrics
    return [metrics[f"accuracy_{name}"] for name in trainer.task.task_names]


def _chance(trainer, split_name: str) -> list[float]:
    """1 / (number of labels a task uses in this split)."""
    targets = trainer.dataset(split_name).targets
    task = trainer.task
    if task.mode == "sequential":
        which, label = task.split_target(torch.from_numpy(targets))
        return [1.0 / len(torch.unique(label[which == t])) for t in range(task.n_tasks)]
    return [1.0 / len(np.unique(targets[:, t])) for t in range(task.n_tasks)]


def score_rows(base, subnetworks: dict[str, object], split_name: str) -> list[dict]:
    """Rows of split_scores.csv: the full network and every sub-network on every task."""
    names = base.task.task_names
    full = _per_task(base, split_name)
    chance = _chance(base, split_name)
    rows = []
    for network, trainer in [("full", base), *subnetworks.items()]:
        accuracies = full if trainer is base else _per_task(trainer, split_name)
        for t, name in enumerate(names):
            rows.append({"network": network, "task": name, "accuracy": accuracies[t],
                         "full_accuracy": full[t],
                         "fraction_of_full": accuracies[t] / full[t] if full[t] else np.nan,
                         "chance": chance[t], "own_task": network in ("full", name)})
    return rows


def _saved_split(results: Path, base) -> dict | None:
    """The assignment `split` saved (method, finetune, layers), if its sub-networks exist."""
    folder = results / SPLIT_FOLDER
    path = folder / ASSIGNMENT_FILE
    names = base.task.task_names
    if not path.is_file() or not all((folder / n / "checkpoints").is_dir() for n in names):
        return None
    with np.load(path) as saved:
        n_layers = sum(key.startswith("layer_") for key in saved.files)
        return {"method": str(saved["method"]) if "method" in saved.files else "greedy",
                "finetune": int(saved["finetune"]) if "finetune" in saved.files else 0,
                "layers": [saved[f"layer_{k}"] for k in range(n_layers)]}


def _subnetworks(results: Path, base, method: str | None = None):
    """({task: trainer of its sub-network}, assignment, method, fine-tuning epochs): the
    sub-networks `split` wrote (with their assignment), else split now by `method`
    (default greedy). A `method` other than the saved split's is an error."""
    from snnsim import runs

    saved = _saved_split(results, base)
    if saved is not None:
        if method not in (None, saved["method"]):
            raise ValueError(f"{results / SPLIT_FOLDER}: split with --assign "
                             f"{saved['method']}, not {method}; run split again with "
                             f"--assign {method}, or score without --assign")
        out = {name: runs.load_trainer(results / SPLIT_FOLDER / name, None, base.backend_name)
               for name in base.task.task_names}
        return out, saved["layers"], saved["method"], saved["finetune"]
    method = method or "greedy"
    units_task = assignment(base, method)
    out = {}
    for t, name in enumerate(base.task.task_names):
        trainer = copy.copy(base)
        trainer.network = copy.deepcopy(base.network)
        sub = spatial_chain(trainer.network)
        apply_subnetwork_(sub, subnetwork_masks(sub, units_task, t))
        out[name] = trainer
    return out, units_task, method, 0


def score(args: argparse.Namespace) -> float:
    results = Path(args.results)
    base = _load(results, args.epoch, args.backend)
    subnetworks, units_task, method, finetune = _subnetworks(results, base, args.assign)
    rows = score_rows(base, subnetworks, args.split)
    write_rows_csv(results / SCORES_CSV, [
        {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()}
        for row in rows], SCORE_COLUMNS)
    layers = spatial_chain(base.network)
    mean, per_layer = separation(layers, assignment(base, "greedy"))
    summary = {
        "split": args.split, "assignment": method, "finetune_epochs": finetune,
        "units_per_task": {name: [int((a == t).sum()) for a in units_task]
                           for t, name in enumerate(base.task.task_names)},
        "separation": mean, "separation_per_layer": [float(s) for s in per_layer],
        "spread_per_layer": [spread(layer.positions.detach().cpu().numpy())
                             for layer in layers]}
    if method != "greedy":
        summary[f"separation_{method}"], other = separation(layers, units_task)
        summary[f"separation_{method}_per_layer"] = [float(s) for s in other]
    summary["scores"] = [{k: (float(v) if isinstance(v, (float, np.floating)) else v)
                          for k, v in row.items()} for row in rows]
    write_yaml(results / "split_summary.yaml", summary)
    print((results / SCORES_CSV).read_text().rstrip())
    print(f"sub-networks: {method} assignment, units per layer "
          + "; ".join(f"{name} {units}" for name, units in summary["units_per_task"].items())
          + (f", fine-tuned {finetune} epochs" if finetune else ", no fine-tuning"))
    if method != "greedy":
        print(f"separation by the {method} assignment: {summary[f'separation_{method}']:.3f} ("
              + ", ".join(f"{s:.3f}" for s in other) + ")")
    print("separation per layer: " + ", ".join(f"{s:.3f}" for s in per_layer))
    spreads = summary["spread_per_layer"]
    print("position spread per layer (median distance to the layer's median position; "
          "N(0, 1) initial positions: 1.18): " + ", ".join(f"{s:.3g}" for s in spreads))
    if min(spreads) < COLLAPSED_SPREAD:
        print(f"note: positions of a layer lie within {min(spreads):.3g} of one spot: the "
              f"silhouette is scale-free, so the separation describes the arrangement "
              f"inside that spot, not clusters at the scale of the initial layout")
    print(f"separation: {mean:.3f}")
    return mean


for _command in (
    Command("record", "spatial networks: per task, the mean or variance of each unit's "
            "activity (record_<statistic>.npz)", _record_arguments, record),
    Command("plot", "spatial networks: learned positions coloured by task, connections by "
            "weight, and the per-task strength map", _plot_arguments, plot),
    Command("split", "spatial networks: split into one sub-network per task (greedy or by "
            "activity; <results>/split/<task>/), optional fine-tuning", _split_arguments, split),
    Command("score", "spatial networks: every sub-network and the full network on every "
            "task (split_scores.csv) and the separation of the positions", _score_arguments,
            score),
):
    COMMANDS.register(_command)
