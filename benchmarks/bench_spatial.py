"""Epoch time of the two-task spatial network with wiring costs on, against the control.

    python benchmarks/bench_spatial.py [--repeats 3] [--data-dir tests/data]

Trains one epoch of experiment_configs/spatial_two_tasks.yaml (costs on) and of
spatial_two_tasks_control.yaml (alpha = beta = 0), alternating, `repeats` times each
(each from a fresh trainer, data loaded beforehand), and prints the median epoch time of
each, their ratio, and the median time of one cost evaluation (forward + backward of
alpha P + beta Tr) against one batch's forward + backward. Target: <= 5 s per epoch
with the costs on (issue 13).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from snnsim.config import load_config
from snnsim.training import Trainer

ROOT = Path(__file__).resolve().parent.parent


def _trainer(name: str, data_dir: str) -> Trainer:
    config = load_config(ROOT / "experiment_configs" / name)
    config["data"]["data_dir"] = data_dir
    trainer = Trainer(config)
    trainer.network_inputs("train"), trainer.network_inputs("val")
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=str(ROOT / "tests" / "data"))
    args = parser.parse_args()
    times = {"spatial_two_tasks.yaml": [], "spatial_two_tasks_control.yaml": []}
    for _ in range(args.repeats):
        for name, measured in times.items():
            trainer = _trainer(name, args.data_dir)
            start = time.perf_counter()
            trainer.train_epoch()
            measured.append(time.perf_counter() - start)
    on, off = (statistics.median(v) for v in times.values())
    print(f"threads: {torch.get_num_threads()}")
    print(f"epoch, costs on:  median {on:.2f} s of {times['spatial_two_tasks.yaml']}")
    print(f"epoch, control:   median {off:.2f} s")
    print(f"ratio on / control: {on / off:.2f}")

    trainer = _trainer("spatial_two_tasks.yaml", args.data_dir)
    x = trainer.network_inputs("train")[:256]
    target = trainer.targets("train")[:256]
    cost_times, batch_times = [], []
    for _ in range(20):
        start = time.perf_counter()
        output, _ = trainer.forward(x)
        trainer.task.per_sample_loss(output, target).mean().backward()
        batch_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        trainer.task.cost(output).backward()
        cost_times.append(time.perf_counter() - start)
    print(f"per batch of 256: forward + backward {statistics.median(batch_times) * 1e3:.1f} ms, "
          f"costs forward + backward {statistics.median(cost_times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
