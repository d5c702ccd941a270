"""Net Fragments speed, each figure with its baseline measured in the same run:

* the published training loop on single images: the sparse kernels (`local_update`) against
  the dense reference (`run_reference` + `hebbian_update`, spectra / conv2d), per image;
* the S2 steps of 60 evaluation lines: sparse kernels against the dense reference;
* the whole line-completion grid (56 points) of the published network;
* training experiment_configs/net_fragments.yaml for --epochs epochs (Trainer.train_epoch:
  forward pass for the loss, the sequential Hebbian training, the validation lines), and
  whether the trained weights equal the published network's (they do after 100 epochs).

Medians of --repeats; wall and CPU seconds and the load average beside each figure.

    OMP_NUM_THREADS=1 python benchmarks/bench_fragments.py [--epochs 100] [--repeats 3]

Targets (issue 16): 100 training epochs <= 60 s, the whole grid <= 60 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def timed(function, repeats: int = 1) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) over `repeats` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=10,
                        help="training images timed on both paths")
    args = parser.parse_args()

    from snnsim.config import load_config
    from snnsim.families.fragments.commands import import_netfragments
    from snnsim.families.fragments.data import draw_line, evaluation_lines, random_lines
    from snnsim.families.fragments.evaluation import evaluation_grid, format_table, run_lines
    from snnsim.families.fragments.layers import lower_median
    from snnsim.runs import load_trainer
    from snnsim.training import Trainer

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    config = load_config(ROOT / "experiment_configs/net_fragments.yaml")
    config["training_params"]["epoch_number"] = args.epochs
    config["task"]["monitor_every"] = 0

    # -- one training image: sparse kernels against the dense reference ------------------------
    trainer = Trainer(config, "cpu")
    s1, s2 = trainer.network.layers[0], trainer.network.layers[1]
    start = s2.weight.clone()
    images = torch.from_numpy(np.stack([draw_line(line) for line in
                                        random_lines(args.images, seed=11)]))
    ff = s1(images.reshape(len(images), -1).to(s2.weight.dtype))
    s2.train()

    def sparse_loop():
        s2.weight.copy_(start)
        s2.local_update(ff, None)

    def dense_loop():
        s2.weight.copy_(start)
        for image in ff:
            x = s2.binarise_input(image.view(1, 4, 32, 32))
            steps, _ = s2.run_reference(x)
            update = s2.hebbian_update(x, lower_median(steps))
            s2.weight.add_(s2.entry["learning_rate"] * update).clamp_(0, 1)

    sparse_loop()                                        # compiles the kernels
    sparse_wall, sparse_cpu = timed(sparse_loop, args.repeats)
    sparse_weight = s2.weight.clone()
    dense_wall, dense_cpu = timed(dense_loop, args.repeats)
    same = torch.equal(sparse_weight, s2.weight)
    print(f"training, per image ({args.images} images, median of {args.repeats}): sparse "
          f"{sparse_wall / args.images * 1e3:.2f} ms (CPU {sparse_cpu / args.images * 1e3:.2f}),"
          f" dense reference {dense_wall / args.images * 1e3:.1f} ms (CPU "
          f"{dense_cpu / args.images * 1e3:.1f}): {dense_wall / sparse_wall:.0f}x; same "
          f"weights: {same}; {load()}")

    with tempfile.TemporaryDirectory() as folder:
        imported = load_trainer(import_netfragments(
            ROOT / "tests/data/netfragments/net-fragments.ckpt", Path(folder) / "imported"))
        p1, p2 = imported.network.layers[0], imported.network.layers[1]
        lines = torch.from_numpy(np.stack([draw_line(line) for line in evaluation_lines(60)]))
        bits = p2.binarise_input(run_lines(p1, p2, lines)["ff"])
        sparse_wall, _ = timed(lambda: p2.run_chosen(bits), args.repeats)
        dense_wall, _ = timed(lambda: p2.run_reference(bits), args.repeats)
        print(f"S2 steps of 60 lines (published network, median of {args.repeats}): sparse "
              f"{sparse_wall * 1e3:.1f} ms, dense reference {dense_wall * 1e3:.0f} ms "
              f"({dense_wall / sparse_wall:.0f}x); {load()}")
        rows = []
        grid_wall, grid_cpu = timed(lambda: rows.append(evaluation_grid(imported)))
        print(format_table(rows[0]))
        print(f"grid of the published network: {len(rows[0])} points in {grid_wall:.1f} s "
              f"(CPU {grid_cpu:.1f} s; target <= 60 s); {load()}")

    trainer = Trainer(config, "cpu")
    wall, cpu = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        metrics = trainer.train_epoch()
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1}: {metrics['epoch_seconds']:.2f} s, "
                  f"loss {metrics['train_loss']:.4f}", flush=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"training net_fragments.yaml: {args.epochs} epochs in {wall:.1f} s (CPU {cpu:.1f} s; "
          f"target: 100 epochs <= 60 s); {load()}")
    published = torch.load(ROOT / "tests/data/netfragments/net-fragments.ckpt", map_location="cpu",
                           weights_only=True)["lateral_network"]["model.s2.W_lateral"]
    same = torch.equal(trainer.network.layers[1].weight, published.reshape(40, 44, 11, 11))
    print(f"trained weights equal to the published network's: {same}")
    print(format_table(evaluation_grid(trainer)))


if __name__ == "__main__":
    main()
