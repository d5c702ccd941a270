"""Epoch time of a rate network through the shared loop against a bare torch loop, one process.

The network is `experiment_configs/linear_mnist.yaml` (784-500-10 ReLU, SGD with momentum,
batch 32) on the 8,000 training images of the `mnist_values` t10k split. The baseline
is the same computation written as the shortest plain PyTorch loop (shuffle, forward,
cross-entropy, backward, step), in float64 like the loop, and in float32; the loop's
epoch includes what `experiment.py train` does per epoch (validation on 2,000 images,
metrics). The ratio loop / plain is the cost of the shared loop.

    SNNSIM_DATA_DIR=tests/data python benchmarks/bench_rate.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import torch

from snnsim.config import load_config
from snnsim.training import Trainer

CONFIG = Path(__file__).resolve().parent.parent / "experiment_configs" / "linear_mnist.yaml"


def plain_epoch(x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor],
                optimizer: torch.optim.Optimizer, generator: torch.Generator,
                batch: int) -> None:
    (w1, b1), (w2, b2) = weights
    order = torch.randperm(len(x), generator=generator)
    for first in range(0, len(x), batch):
        idx = order[first:first + batch]
        logits = torch.relu(x[idx] @ w1 + b1) @ w2 + b2
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = load_config(CONFIG)
    trainer = Trainer(config, "cpu")
    tp = config["training_params"]
    loop = median_seconds(trainer.train_epoch, args.repeats)
    x, y = trainer.network_inputs("train"), trainer.targets("train")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(x)} samples per epoch, batch {tp['batch_size']}")
    print("| what | seconds per epoch (median) | loop / this |")
    print("| --- | ---: | ---: |")
    print(f"| shared loop (float64, validation included) | {loop:.2f} | 1.00 |")
    for dtype in (torch.float64, torch.float32):
        generator = torch.Generator().manual_seed(0)
        weights = [(torch.randn(784, 500, dtype=dtype, generator=generator) * 0.05,
                    torch.zeros(500, dtype=dtype)),
                   (torch.randn(500, 10, dtype=dtype, generator=generator) * 0.05,
                    torch.zeros(10, dtype=dtype))]
        params = [p.requires_grad_() for pair in weights for p in pair]
        optimizer = torch.optim.SGD(params, lr=tp["learning_rate"], momentum=tp["momentum"])
        xd = x.to(dtype)
        plain = median_seconds(functools.partial(plain_epoch, xd, y, weights, optimizer,
                                                 generator, tp["batch_size"]), args.repeats)
        print(f"| plain torch loop, {str(dtype).removeprefix('torch.')} | {plain:.2f} | "
              f"{loop / plain:.2f} |")


if __name__ == "__main__":
    main()
