"""Epoch and step time of the four learning rules (BP, FA, KP, DFA) on MNIST, one process.

The networks are `experiment_configs/{bp,fa,kp,dfa}_mnist.yaml` (784-500-500-10 ReLU, SGD,
batch 32) on the 8,000 training images of the `mnist_values` t10k split:

* epoch: `Trainer.train_epoch()` as `experiment.py train` runs it: 250 steps, validation
  on the 2,000 held-out images and the alignment metrics (FA/KP/DFA; their own time is
  reported apart). Target: <= 2 s for every rule.
* step: forward, loss and backward (the custom backward passes; target: <= 1.5 x BP's),
  and the whole step with the optimiser (the loop's `forward` and `_step`; KP's optimiser
  updates B as well, with its weight decay), on one batch of 32, median of `--steps`.

Both for `training_params.dtype` float64 (the loop's default) and float32 (what the
configs use). Rules alternate epoch by epoch and step by step so that a busy machine slows
them alike; medians are reported, epochs also as CPU time of the process (all its threads):
on a shared, busy machine the CPU time with `--threads 1` is what the work costs one core.

    SNNSIM_DATA_DIR=tests/data python benchmarks/bench_feedback.py [--epochs 3]
        [--steps 100] [--dtype float64|float32|both] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from snnsim.config import load_config
from snnsim.families.feedback.metrics import alignment
from snnsim.training import Trainer

CONFIGS = Path(__file__).resolve().parent.parent / "experiment_configs"
RULES = ("bp", "fa", "kp", "dfa")


def make_trainer(rule: str, dtype: str) -> Trainer:
    config = load_config(CONFIGS / f"{rule}_mnist.yaml")
    config["training_params"]["dtype"] = dtype
    trainer = Trainer(config, "cpu")
    for split in ("train", "val"):
        trainer.network_inputs(split)
    return trainer


def timed(run) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of run()."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def step_times(trainers: dict[str, Trainer], steps: int) -> dict[str, dict[str, float]]:
    """Per rule, median (wall, CPU) seconds of forward + backward (`backward`) and of the
    whole step with the optimiser (`step`) on one batch; rules alternate step by step."""
    first = next(iter(trainers.values()))
    size = first.config["training_params"]["batch_size"]
    x, target = first.network_inputs("train")[:size], first.targets("train")[:size]

    def backward(trainer):
        output, _ = trainer.forward(x)
        trainer.optimizer.zero_grad()
        trainer.task.loss(output, target).backward()

    def step(trainer):
        output, _ = trainer.forward(x)
        trainer._step(trainer.task.loss(output, target))

    times = {rule: {"backward": [], "step": []} for rule in trainers}
    for i in range(steps + 5):
        for rule, trainer in trainers.items():
            for name, run in (("backward", backward), ("step", step)):
                if i >= 5:  # warm-up
                    times[rule][name].append(timed(lambda t=trainer, r=run: r(t)))
                else:
                    run(trainer)
    return {rule: {f"{name}{suffix}": statistics.median(t[k] for t in values)
                   for name, values in by_name.items() for k, suffix in ((0, ""), (1, "_cpu"))}
            for rule, by_name in times.items()}


def bench(dtype_name: str, epochs: int, steps: int) -> dict[str, dict[str, float]]:
    trainers = {rule: make_trainer(rule, dtype_name) for rule in RULES}
    for trainer in trainers.values():
        trainer.train_epoch()  # warm-up (first-call costs)
    epoch_times = {rule: [] for rule in RULES}
    metric_times = {rule: [] for rule in RULES}
    for _ in range(epochs):
        for rule, trainer in trainers.items():
            epoch_times[rule].append(timed(trainer.train_epoch))
            if rule != "bp":
                metric_times[rule].append(timed(lambda t=trainer: alignment(t))[0])
    results = step_times(trainers, steps)
    for rule in trainers:
        results[rule].update(epoch=statistics.median(t[0] for t in epoch_times[rule]),
                             epoch_cpu=statistics.median(t[1] for t in epoch_times[rule]),
                             metrics=(statistics.median(metric_times[rule])
                                      if metric_times[rule] else 0.0))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per rule")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per rule")
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, nproc "
          f"{os.cpu_count()}; load average {load:.1f} before the run")
    print(f"epoch: 8,000 t10k images in batches of 32 + validation on 2,000 + alignment "
          f"metrics (median of {args.epochs}); step: one batch of 32 (median of {args.steps})")
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    for dtype in dtypes:
        results = bench(dtype, args.epochs, args.steps)
        bp = results["bp"]
        print(f"\n{dtype}:")
        print("| rule | epoch wall [s] | epoch CPU [s] | metrics wall [s] | forward + backward "
              "[ms] | / BP | step with optimiser [ms] | / BP |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for rule, r in results.items():
            print(f"| {rule.upper()} | {r['epoch']:.2f} | {r['epoch_cpu']:.2f} | "
                  f"{r['metrics']:.2f} | {1e3 * r['backward']:.2f} | "
                  f"{r['backward'] / bp['backward']:.2f} | {1e3 * r['step']:.2f} | "
                  f"{r['step'] / bp['step']:.2f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} after the run")


if __name__ == "__main__":
    main()
