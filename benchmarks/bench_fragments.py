"""Net Fragments speed: the line-completion grid of the published network, training epochs of
experiment_configs/net_fragments.yaml, and one S2 support of 60 lines by FFT against the
conv2d baseline (median of repeats, ratio printed in the same run).

    python benchmarks/bench_fragments.py [--epochs 100] [--repeats 3] [--device cpu|cuda]

Targets (issue 16): 100 training epochs <= 60 s, the whole grid <= 60 s.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from snnsim.config import load_config
    from snnsim.families.fragments.commands import import_netfragments
    from snnsim.families.fragments.evaluation import evaluation_grid, format_table, run_lines
    from snnsim.families.fragments.data import draw_line, evaluation_lines
    from snnsim.runs import load_trainer
    from snnsim.training import Trainer

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    with tempfile.TemporaryDirectory() as folder:
        results = import_netfragments(ROOT / "tests/data/netfragments/net-fragments.ckpt",
                                      Path(folder) / "imported")
        trainer = load_trainer(results, backend=args.device)
        s1, s2 = trainer.network.layers[0], trainer.network.layers[1]
        images = torch.stack([torch.from_numpy(draw_line(line)) for line in evaluation_lines(60)])
        ff = run_lines(s1, s2, images)["ff"]
        x = torch.cat([s2.binarise_input(ff), torch.zeros(60, 40, 32, 32, device=ff.device)], 1)
        fft = median_time(lambda: s2.support(x), args.repeats)
        dense = median_time(lambda: F.conv2d(x, s2.weight, padding=5), args.repeats)
        print(f"S2 support, 60 lines: FFT {fft * 1e3:.1f} ms, conv2d baseline "
              f"{dense * 1e3:.1f} ms (ratio {dense / fft:.1f}x)")
        start = time.perf_counter()
        rows = evaluation_grid(trainer)
        grid = time.perf_counter() - start
        print(format_table(rows))
        print(f"grid of the published network: {len(rows)} points in {grid:.1f} s "
              f"(target <= 60 s)")

    config = load_config(ROOT / "experiment_configs/net_fragments.yaml")
    config["training_params"]["epoch_number"] = args.epochs
    config["task"]["monitor_every"] = 0
    trainer = Trainer(config, args.device)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        metrics = trainer.train_epoch()
        if epoch % 10 == 0:
            print(f"epoch {epoch + 1}: {metrics['epoch_seconds']:.2f} s, "
                  f"loss {metrics['train_loss']:.4f}", flush=True)
    training = time.perf_counter() - start
    print(f"training: {args.epochs} epochs in {training:.1f} s "
          f"(target: 100 epochs <= 60 s)")
    rows = evaluation_grid(trainer)
    print(format_table(rows))


if __name__ == "__main__":
    main()
