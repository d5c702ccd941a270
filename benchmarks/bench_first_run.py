"""First run vs later runs: the training time of the README's first command when the
compiled kernels are not cached yet, against the same run with a warm cache.

Each repeat runs `python experiment.py train <config> --no-plots` twice in fresh
subprocesses that share one new, empty numba cache folder (NUMBA_CACHE_DIR): the
first run compiles every kernel it uses (as a new user's first run does, right after
`pip install`), the second loads them from the cache (as every later run does). The
training time is the run's own `training_seconds` (summary.yaml: the training loop,
data loading and evaluation not included); the whole command's wall time is printed
as well. The figure of merit is the ratio of the medians, cold / warm (target: at most
1.3 for the 300-epoch Yin-Yang run).

    python benchmarks/bench_first_run.py [--config experiment_configs/yin_yang.yaml]
                                         [--epochs N] [--repeats 3] [--backend cpu]

--epochs shortens the run (the compile cost stays the same, so the ratio grows as the
run gets shorter); without it the config's epoch count (300 for yin_yang.yaml) is used.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3


def run_once(config: str, epochs: int | None, backend: str, cache_dir: Path,
             output: Path) -> tuple[float, float]:
    """(training seconds, wall seconds) of one `experiment.py train` in a fresh process."""
    command = [sys.executable, str(ROOT / "experiment.py"), "train", config, "--no-plots",
               "--backend", backend, "--output", str(output)]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    summary = yaml.safe_load((output / "summary.yaml").read_text())
    return float(summary["training_seconds"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="experiment_configs/yin_yang.yaml")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train this many epochs (default: the config's)")
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm pairs (default 3)")
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()

    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="bench_first_run_") as tmp:
        for repeat in range(args.repeats):
            cache = Path(tmp) / f"numba_cache_{repeat}"
            cache.mkdir()
            for label, runs in (("cold", cold), ("warm", warm)):
                runs.append(run_once(args.config, args.epochs, args.backend, cache,
                                     Path(tmp) / f"run_{repeat}_{label}"))
                print(f"repeat {repeat + 1}/{args.repeats} {label}: training "
                      f"{runs[-1][0]:.2f} s, whole command {runs[-1][1]:.2f} s", flush=True)

    def median(runs, i):
        return statistics.median(r[i] for r in runs)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    epochs = f"--epochs {args.epochs}" if args.epochs is not None else "the config's epochs"
    print()
    print(f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; load average {load:.1f} at the end.")
    print(f"Command: `python benchmarks/bench_first_run.py --config {args.config}"
          + (f" --epochs {args.epochs}" if args.epochs is not None else "")
          + f" --repeats {args.repeats}` ({epochs}, backend {args.backend}, median of "
          f"{args.repeats})")
    print()
    print("| run | training s | whole command s |")
    print("| --- | ---: | ---: |")
    print(f"| first (empty kernel cache) | {median(cold, 0):.2f} | {median(cold, 1):.2f} |")
    print(f"| later (cached kernels) | {median(warm, 0):.2f} | {median(warm, 1):.2f} |")
    ratio = median(cold, 0) / median(warm, 0)
    pairs = sorted(c[0] / w[0] for c, w in zip(cold, warm))
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print()
    print(f"first / later training time: {ratio:.2f} (per pair {', '.join(f'{p:.2f}' for p in pairs)}; "
          f"{verdict} <= {TARGET_RATIO}); first-run extra: "
          f"{median(cold, 0) - median(warm, 0):.1f} s of training, "
          f"{median(cold, 1) - median(warm, 1):.1f} s of the whole command")


if __name__ == "__main__":
    main()
