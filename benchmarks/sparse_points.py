"""Train points of the sparse-coding sigma sweep directly (no Ray), on the CPU or a GPU.

For machines without Ray, or to train the published-length runs on a GPU: each point is
sparse_coding_mnist.yaml with `task.noise_std = sigma` (and, with --topk MODE, the
1,000-unit topk_linear layer of the Top-K points of sparse_coding_sweep.yaml, k = 100);
metrics.csv per point (the same series as `experiment.py train` writes) and one timing
line per point.

    python benchmarks/sparse_points.py --sigmas 0 0.8 10 --epochs 15 --out DIR
    python benchmarks/sparse_points.py --sigmas 0.8 --topk mask --device cuda --epochs 300

Runs with `--device cuda` move the network to the GPU after building it on the `torch`
backend (the rate layers' matrix products then run on the GPU; the noise is drawn on the
CPU from the run's generator, as on the CPU).
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import yaml

from snnsim.config import resolve_config
from snnsim.results import write_metrics_csv
from snnsim.training import Trainer

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "experiment_configs" / "sparse_coding_mnist.yaml"


def point_config(sigma: float, epochs: int, topk: str | None) -> dict:
    raw = yaml.safe_load(BASE.read_text())
    raw = copy.deepcopy(raw)
    raw["task"]["noise_std"] = sigma
    raw["training_params"]["epoch_number"] = epochs
    if topk:
        raw["network_layout"]["layers"][0] = {"type": "topk_linear", "size": 1000, "k": 100,
                                              "mode": topk}
    return resolve_config(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigmas", type=float, nargs="+", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--topk", choices=("mask", "subtract"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for sigma in args.sigmas:
        name = f"{args.topk or 'relu'}_sigma={sigma:g}"
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(point_config(sigma, args.epochs, args.topk), "torch")
        if args.device == "cuda":
            trainer.device = torch.device("cuda")
            trainer.network.to(trainer.device)
        start = time.perf_counter()
        for _ in range(args.epochs):
            metrics = trainer.train_epoch()
            write_metrics_csv(folder / "metrics.csv", trainer.history)
        seconds = time.perf_counter() - start
        print(f"{name}: {args.epochs} epochs in {seconds:.1f} s on {args.device}; "
              f"active_fraction {metrics['active_fraction']:.4f}, "
              f"dead_neurons {metrics['dead_neurons']:.0f}, val_loss {metrics['val_loss']:.5f}",
              flush=True)


if __name__ == "__main__":
    main()
