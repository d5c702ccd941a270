"""Subcommands: `import-netfragments` (the published trained network into a results folder)
and `line-eval` (the line-completion grid with chosen θ / γ).

The published checkpoint (sagerpascal/dynamic-link-architecture, `net-fragments.ckpt`) is
a torch zip archive of a plain dict {config, feature_extractor, lateral_network}. It is
read with `torch.load(weights_only=True)`: torch's restricted unpickler, which builds
only tensors and plain containers and refuses every other global, so nothing in the
file runs. `lateral_network["model.s2.W_lateral"]` [C, (F + C) k k, 1, 1] becomes the
`lateral` layer's weight [C, F + C, k, k] (unfold order channel, row, column).
"""
from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path

import torch

from snnsim.config import resolve_config
from snnsim.errors import ConfigError
from snnsim.network import Network
from snnsim.registry import COMMANDS, Command

WEIGHT_KEY = "model.s2.W_lateral"
LICENCE = ("Net Fragments network: MIT License, Copyright (c) 2024 Pascal Sager "
           "(github sagerpascal/dynamic-link-architecture).")
S1_ACTIVATION = {"threshold": "threshold", "bernoulli": "bernoulli", "None": "relu"}


def read_published(path: Path) -> dict:
    """The published checkpoint's dict, loaded without running code from the file;
    ValueError (naming the file) for anything that is not such a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected the published "
                                f"net-fragments.ckpt")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, KeyError,
            AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable Net Fragments checkpoint (weights-only "
                         f"load refused or failed: {str(error).splitlines()[0]})") from None
    if not isinstance(content, dict) or not {"config", "lateral_network"} <= set(content):
        raise ValueError(f"{path}: expected a dict with 'config' and 'lateral_network', got "
                         f"{sorted(content) if isinstance(content, dict) else type(content)}")
    state = content["lateral_network"]
    if not isinstance(state, dict) or not isinstance(state.get(WEIGHT_KEY), torch.Tensor):
        raise ValueError(f"{path}: lateral_network holds no tensor {WEIGHT_KEY!r}")  # noqa: TRY004
    return content


def config_from_published(published: dict) -> dict:
    """Our config of the published run (the final setup's data, S1 and S2 settings)."""
    conf = published["config"]
    try:
        s1 = conf["feature_extractor"]["s1_params"]
        lateral = conf["lateral_model"]
        s2 = lateral["s2_params"]
        threshold = s2["act_threshold"]
        layers = [
            {"type": "line_features", "height": conf["dataset"]["img_height"],
             "width": conf["dataset"]["img_width"],
             "activation": S1_ACTIVATION[str(s1.get("threshold_f", "None"))],
             "larger_weights": bool(s1.get("use_larger_weights", False))},
            {"type": "lateral", "height": conf["dataset"]["img_height"],
             "width": conf["dataset"]["img_width"],
             "alternative_cells": int(conf["n_alternative_cells"]),
             "kernel_size": 2 * int(s2["locality_size"]) + 1,
             "timesteps": int(lateral["max_timesteps"]),
             "output": "bernoulli" if threshold == "bernoulli" else "threshold",
             "threshold": 0.5 if threshold == "bernoulli" else float(threshold),
             "gamma": [float(g) for g in s2["square_factor"]],
             "support_factor": float(s2["support_factor"]),
             "learning_rate": float(s2["lr"]), "negative_correlation": bool(s2["neg_corr"])},
        ]
        size = conf["dataset"]["img_height"]
        raw = {"dataset": "straight_lines",
               "data": {"n_train": conf["dataset"]["train_dataset_params"]["num_images"],
                        "n_eval": conf["dataset"]["test_dataset_params"]["num_images"],
                        "size": size, "seed": 1, "lines": "fresh",   # the published
                        "validation_draws": conf["dataset"]["valid_dataset_params"][
                            "num_images"]},   # stream: seed_everything(1), fresh lines
               "task": {"type": "line_completion"},
               "network_layout": {"n_inputs": size * conf["dataset"]["img_width"],
                                  "layers": layers},
               "training_params": {"epoch_number": int(conf["run"]["n_epochs"]),
                                   "optimizer": "none", "batch_size": 300,
                                   "batch_size_eval": 60, "torch_seed": 0,
                                   "dtype": "float32"}}   # as the published code
    except (KeyError, TypeError) as error:
        raise ConfigError(f"the published config lacks or mistypes {error}") from None
    return resolve_config(raw, source="published net-fragments config")


def import_netfragments(path: Path, output: Path | None = None) -> Path:
    """A results folder (config.yaml, checkpoint, IMPORTED.txt) holding the published
    network; `eval` accepts it."""
    path = Path(path)
    published = read_published(path)
    config = config_from_published(published)
    network = Network(config, torch.Generator().manual_seed(0))
    lateral = network.layers[1]
    weight = published["lateral_network"][WEIGHT_KEY]
    expected = (lateral.weight.shape[0], lateral.weight[0].numel(), 1, 1)
    if tuple(weight.shape) != expected:
        raise ValueError(f"{path}: {WEIGHT_KEY} has shape {tuple(weight.shape)}, the config "
                         f"needs {expected}")
    if not torch.isfinite(weight).all() or weight.min() < 0 or weight.max() > 1:
        raise ValueError(f"{path}: {WEIGHT_KEY} must hold finite weights in [0, 1]")
    with torch.no_grad():
        lateral.weight.copy_(weight.reshape(lateral.weight.shape))
    from snnsim.runs import write_imported_run

    return write_imported_run(path, output, config, network,
                              f"S2 lateral weights; S1 is fixed. {LICENCE}")


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="the published net-fragments.ckpt")
    parser.add_argument("--output", type=Path, help="results folder (default: "
                        "experiment_results/<name>_imported); must not exist or be empty")


def _run_import(args: argparse.Namespace) -> None:
    print(f"imported into {import_netfragments(args.checkpoint, args.output)}")


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="results folder of a Net Fragments run")
    parser.add_argument("--threshold", type=float, help="theta (default: the run's)")
    parser.add_argument("--gamma", type=float, nargs="+", help="gamma per time step")
    parser.add_argument("--lines", type=int, help="number of evaluation lines")
    parser.add_argument("--epoch", type=int, help="checkpoint epoch (default: the latest)")
    parser.add_argument("--noise-seed", type=int, default=1,
                        help="seed of the flipped S1 bits (default 1: the published draws)")


def _run_eval(args: argparse.Namespace) -> None:
    from snnsim.families.fragments.evaluation import CSV_NAME, write_grid
    from snnsim.runs import load_trainer

    trainer = load_trainer(args.results, args.epoch)
    name = CSV_NAME if args.threshold is None and args.gamma is None else \
        f"net_fragments_eval_th{args.threshold}_g{'-'.join(map(str, args.gamma or []))}.csv"
    if args.noise_seed != 1:
        name = name.replace(".csv", f"_noise{args.noise_seed}.csv")
    write_grid(trainer, Path(args.results) / name, args.threshold, args.gamma, args.lines,
               args.noise_seed)


COMMANDS.register(Command("import-netfragments", "import the published Net Fragments network "
                          "(net-fragments.ckpt) into a results folder", _import_arguments,
                          _run_import))
COMMANDS.register(Command("line-eval", "line-completion grid (noise x interruption) of a Net "
                          "Fragments run, optionally with another theta / gamma schedule",
                          _eval_arguments, _run_eval))
