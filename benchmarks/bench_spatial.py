"""Epoch time of the two-task spatial network with wiring costs on, against the control.

    python benchmarks/bench_spatial.py [--repeats 5] [--threads 1] [--dtype float64]
                                       [--data-dir tests/data]

Trains one epoch of experiment_configs/spatial_two_tasks.yaml (costs on) and of
spatial_two_tasks_control.yaml (alpha = beta = 0), alternating, `repeats` times each,
each from a fresh trainer with its data loaded beforehand. An epoch is what `train`
times as `epoch_seconds`: the training batches, the validation pass and the per-epoch
metrics (costs, separation). Prints the median (and min, max) epoch time of each, their
ratio, the median time of one cost evaluation (forward + backward of alpha P + beta Tr)
against one batch's forward + backward, and the load average before and after (the
machine may be shared: compare the two figures of one run, not runs). Target: <= 5 s
per epoch with the costs on (issue 13).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from snnsim.config import load_config
from snnsim.training import Trainer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"costs on": "spatial_two_tasks.yaml", "control": "spatial_two_tasks_control.yaml"}


def _trainer(name: str, data_dir: str, dtype: str) -> Trainer:
    config = load_config(ROOT / "experiment_configs" / name)
    config["data"]["data_dir"] = data_dir
    config["training_params"]["dtype"] = dtype
    trainer = Trainer(config)
    trainer.network_inputs("train"), trainer.network_inputs("val")
    return trainer


def _load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--data-dir", default=str(ROOT / "tests" / "data"))
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}, dtype: {args.dtype}, repeats: {args.repeats}")
    print(f"before: {_load()}")
    times: dict[str, list[float]] = {label: [] for label in CONFIGS}
    for _ in range(args.repeats):
        for label, name in CONFIGS.items():
            trainer = _trainer(name, args.data_dir, args.dtype)
            start = time.perf_counter()
            trainer.train_epoch()
            times[label].append(time.perf_counter() - start)
    for label, measured in times.items():
        print(f"epoch, {label + ':':9} median {statistics.median(measured):.2f} s "
              f"(min {min(measured):.2f}, max {max(measured):.2f}; {CONFIGS[label]})")
    on, off = (statistics.median(times[label]) for label in CONFIGS)
    print(f"ratio costs on / control: {on / off:.2f}")

    trainer = _trainer(CONFIGS["costs on"], args.data_dir, args.dtype)
    batch = trainer.config["training_params"]["batch_size"]
    x = trainer.network_inputs("train")[:batch]
    target = trainer.targets("train")[:batch]
    cost_times, batch_times = [], []
    for _ in range(20):
        start = time.perf_counter()
        output, _ = trainer.forward(x)
        trainer.task.per_sample_loss(output, target).mean().backward()
        batch_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        trainer.task.cost(output).backward()
        cost_times.append(time.perf_counter() - start)
    print(f"per batch of {batch}: forward + backward "
          f"{statistics.median(batch_times) * 1e3:.1f} ms, costs forward + backward "
          f"{statistics.median(cost_times) * 1e3:.1f} ms")
    print(f"after: {_load()}")


if __name__ == "__main__":
    main()
