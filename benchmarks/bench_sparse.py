"""Speed of the sparse family's layers: one training step (forward, backward, Adam step,
constraints) of 784 -> 1,000 -> 784 de-noising networks on MNIST-sized batches, float64.

Prints the median of repeats per encoder and its ratio to the core `linear` encoder (the
baseline, measured in the same run), plus a float32 plain-torch reference:

    OMP_NUM_THREADS=1 python benchmarks/bench_sparse.py [--repeats 5] [--batches 20]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnsim.config import resolve_config
from snnsim.training import Trainer

ENCODERS = {
    "linear (baseline)": {"type": "linear", "size": 1000},
    "tracked_linear": {"type": "tracked_linear", "size": 1000},
    "tracked_linear + interneuron": {"type": "tracked_linear", "size": 1000,
                                     "inhibition": "interneuron"},
    "tracked_linear + all_to_all": {"type": "tracked_linear", "size": 1000,
                                    "inhibition": "all_to_all"},
    "topk_linear mask k=100": {"type": "topk_linear", "size": 1000, "k": 100},
    "topk_linear subtract k=100": {"type": "topk_linear", "size": 1000, "k": 100,
                                   "mode": "subtract"},
}


def trainer_for(encoder: dict) -> Trainer:
    return Trainer(resolve_config({
        "dataset": "sine", "task": {"type": "denoising", "noise_std": 0.8},
        "network_layout": {"n_inputs": 784, "layers": [
            encoder, {"type": "linear", "size": 784, "activation": "identity"}]},
        "training_params": {"epoch_number": 1, "optimizer": "adam", "learning_rate": 1e-3,
                            "max_grad_norm": 1.0}}), "cpu")


def time_steps(trainer: Trainer, batch: torch.Tensor, n: int) -> float:
    layers = [layer for _, layer in trainer.network.named_layers()]
    start = time.perf_counter()
    for _ in range(n):
        x, target = trainer.task.batch(batch, None, trainer.generator, training=True)
        output, _ = trainer.forward(x)
        trainer._step(trainer.task.loss(output, target))
        with torch.no_grad():
            for layer in layers:
                if hasattr(layer, "constrain_"):
                    layer.constrain_(trainer.settings)
    return (time.perf_counter() - start) / n


def plain_float32_step(batch: torch.Tensor, n: int) -> float:
    w1 = torch.randn(784, 1000, requires_grad=True)
    w2 = torch.randn(1000, 784, requires_grad=True)
    opt = torch.optim.Adam([w1, w2], lr=1e-3)
    x = batch.float()
    start = time.perf_counter()
    for _ in range(n):
        y = torch.relu((x + 0.8 * torch.randn_like(x)) @ w1) @ w2
        loss = ((y - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    batch = torch.rand(args.batch_size, 784, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    trainers = {name: trainer_for(entry) for name, entry in ENCODERS.items()}
    times = {name: [] for name in [*ENCODERS, "plain torch float32 (reference)"]}
    for _ in range(args.repeats):  # interleaved, so that load changes hit every variant
        for name, trainer in trainers.items():
            times[name].append(time_steps(trainer, batch, args.batches))
        times["plain torch float32 (reference)"].append(plain_float32_step(batch, args.batches))
    base = statistics.median(times["linear (baseline)"])
    print(f"torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"median of {args.repeats} x {args.batches} steps")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:32s} {1e3 * median:8.2f} ms/step  {median / base:5.2f} x baseline  "
              f"({8000 / args.batch_size * median:5.1f} s per 8,000-sample epoch)")


if __name__ == "__main__":
    main()
