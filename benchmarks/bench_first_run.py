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

Wall times swing with the machine's load; the CPU time of each run (user + system, all
its threads) does much less. The first run's extra CPU time over a warm run is the
compilation, which is single-threaded: on an idle machine it is also the first run's
extra wall time. So the script also prints (warm training + extra CPU) / warm training:
the ratio an idle machine with this warm training time would see (with the warm time of
a loaded machine it is too optimistic; take the warm time of an idle run there).

    python benchmarks/bench_first_run.py [--config experiment_configs/yin_yang.yaml]
                                         [--epochs N] [--repeats 3] [--backend cpu]

--epochs shortens the run (the compile cost stays the same, so the ratio grows as the
run gets shorter); without it the config's epoch count (300 for yin_yang.yaml) is used.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(config: str, epochs: int | None, backend: str, cache_dir: Path,
             output: Path) -> tuple[float, float, float]:
    """(training seconds, wall seconds, CPU seconds) of one `experiment.py train` in a fresh
    process."""
    command = [sys.executable, str(ROOT / "experiment.py"), "train", config, "--no-plots",
               "--backend", backend, "--output", str(output)]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    cpu_start, start = _children_cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            check=False)
    wall = time.perf_counter() - start
    cpu = _children_cpu_seconds() - cpu_start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    summary = yaml.safe_load((output / "summary.yaml").read_text())
    return float(summary["training_seconds"]), wall, cpu


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
                      f"{runs[-1][0]:.2f} s, whole command {runs[-1][1]:.2f} s wall, "
                      f"{runs[-1][2]:.2f} s CPU", flush=True)

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
    print("| run | training s | whole command s | whole command CPU s |")
    print("| --- | ---: | ---: | ---: |")
    for label, runs in (("first (empty kernel cache)", cold), ("later (cached kernels)", warm)):
        print(f"| {label} | {median(runs, 0):.2f} | {median(runs, 1):.2f} | "
              f"{median(runs, 2):.2f} |")
    ratio = median(cold, 0) / median(warm, 0)
    pairs = sorted(c[0] / w[0] for c, w in zip(cold, warm))
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print()
    print(f"first / later training time: {ratio:.2f} (per pair {', '.join(f'{p:.2f}' for p in pairs)}; "
          f"{verdict} <= {TARGET_RATIO}); first-run extra: "
          f"{median(cold, 0) - median(warm, 0):.1f} s of training, "
          f"{median(cold, 1) - median(warm, 1):.1f} s of the whole command")
    extra_cpu = median(cold, 2) - median(warm, 2)
    idle_ratio = (median(warm, 0) + extra_cpu) / median(warm, 0)
    print(f"first-run extra CPU time (the compilation): {extra_cpu:.1f} s; "
          f"(warm training + extra CPU) / warm training = {idle_ratio:.2f}")


if __name__ == "__main__":
    main()
