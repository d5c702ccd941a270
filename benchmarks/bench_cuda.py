"""Inference throughput of the `cuda` backend against the dense causal-set algorithm, one GPU.

The network is 16x16-MNIST-sized, 256 -> 128 -> 10 LIF neurons with tau_m = tau_s = 1
(the regime the dense algorithm covers); about 25% of the inputs spike, at times in
[0.15, 2.0] as the 16x16 MNIST coding gives, the rest never (+inf). Weights are drawn so
that about 93% of the hidden and nearly all output neurons fire. Both algorithms run in
this process on the same GPU and inputs, in float32 and float64; the dense one (the
published O(B n^2 M) algorithm, `snnsim.reference.dense_causal_set_times`) runs on
batches small enough for its B x n x n x M tensors to fit in --dense-memory-gib.

Then it trains the published Yin-Yang network (`experiment_configs/yin_yang.yaml`,
--train-epochs epochs, 300 as published) on the `cuda` and on the `cpu` backend in
this process, timing the epochs (validation included, as `experiment.py train` runs
them) and reporting the test accuracy of each.

    python benchmarks/bench_cuda.py [--batch 65536] [--repeats 20] [--dense-memory-gib 8]
                                    [--train-epochs 300]

Prints the tables and ratios; exits with a message where the cuda backend cannot run
(no extension built, no device).
"""
from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import time
from pathlib import Path

import torch

from backends import BackendUnavailableError, get_backend
from snnsim import NeuronParams
from snnsim.config import load_config
from snnsim.reference import dense_causal_set_times
from snnsim.training import Trainer

YIN_YANG_CONFIG = Path(__file__).resolve().parent.parent / "experiment_configs" / "yin_yang.yaml"

LAYER_SIZES = (256, 128, 10)
FINITE_FRACTION = 0.25
EARLY, LATE = 0.15, 2.0
WEIGHTS = ((0.1, 0.3), (0.1, 0.3))  # (mean, std) per layer
DENSE_TEMPORARIES = 6  # B x n x n x M tensors alive at once in the dense algorithm, about


def make_network(batch: int, dtype: torch.dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    finite = torch.rand(batch, LAYER_SIZES[0], generator=generator) < FINITE_FRACTION
    times = EARLY + (LATE - EARLY) * torch.rand(batch, LAYER_SIZES[0], generator=generator,
                                                dtype=torch.float64)
    t_in = torch.where(finite, times, torch.inf)
    weights = [torch.randn(n, m, generator=generator, dtype=torch.float64) * std + mean
               for (n, m), (mean, std) in zip(itertools.pairwise(LAYER_SIZES), WEIGHTS)]
    return t_in.to("cuda", dtype), [w.to("cuda", dtype) for w in weights]


def network_times(layer, t_in: torch.Tensor, weights, params: NeuronParams) -> torch.Tensor:
    t = t_in
    for w in weights:
        t = layer(t, w, params)
    return t


def samples_per_second(run, batch: int, repeats: int) -> float:
    """Samples per second of the median of `repeats` timed calls (after a warm-up call)."""
    run()
    torch.cuda.synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return batch / statistics.median(seconds)


def train_yin_yang(backend: str, epochs: int) -> tuple[float, float]:
    """(seconds for `epochs` training epochs, test accuracy) of the published Yin-Yang run."""
    config = load_config(YIN_YANG_CONFIG)
    config["training_params"]["epoch_number"] = epochs
    trainer = Trainer(config, backend, config_dir=YIN_YANG_CONFIG.parent)
    start = time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    if backend == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, trainer.evaluate("test").accuracy


def dense_batch_size(dtype: torch.dtype, memory_gib: float) -> int:
    itemsize = torch.finfo(dtype).bits // 8
    per_sample = max(n * n * m for n, m in itertools.pairwise(LAYER_SIZES)) * itemsize
    return max(1, int(memory_gib * 2**30 / (per_sample * DENSE_TEMPORARIES)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=65536, help="samples per cuda call")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dense-memory-gib", type=float, default=8.0,
                        help="GPU memory the dense algorithm's batch may take")
    parser.add_argument("--train-epochs", type=int, default=300,
                        help="Yin-Yang training epochs per backend (0: skip)")
    args = parser.parse_args()
    try:
        cuda = get_backend("cuda")
    except BackendUnavailableError as error:
        raise SystemExit(f"bench_cuda: cannot benchmark here: {error}") from error

    params = NeuronParams(tau_syn=1.0, tau_mem=1.0, threshold=1.0)
    print(f"device: {torch.cuda.get_device_name()}; network {' -> '.join(map(str, LAYER_SIZES))}, "
          f"{FINITE_FRACTION:.0%} of inputs finite, inference (forward only)")
    print("| dtype | cuda samples/s | dense samples/s (batch) | ratio | max abs diff |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for dtype in (torch.float32, torch.float64):
        t_in, weights = make_network(args.batch, dtype)
        with torch.no_grad():
            cuda_rate = samples_per_second(
                functools.partial(network_times, cuda.forward, t_in, weights, params),
                args.batch, args.repeats)
            dense_batch = min(args.batch, dense_batch_size(dtype, args.dense_memory_gib))
            few = t_in[:dense_batch]
            dense_rate = samples_per_second(
                functools.partial(network_times, dense_causal_set_times, few, weights, params),
                dense_batch, max(1, args.repeats // 4))
            ours = network_times(cuda.forward, few, weights, params)
            theirs = network_times(dense_causal_set_times, few, weights, params)
        both = torch.isfinite(ours) & torch.isfinite(theirs)
        difference = float((ours - theirs)[both].abs().max()) if bool(both.any()) else 0.0
        print(f"| {str(dtype).removeprefix('torch.')} | {cuda_rate:,.0f} | {dense_rate:,.0f} "
              f"({dense_batch}) | {cuda_rate / dense_rate:,.0f}x | {difference:.1e} |")

    if args.train_epochs > 0:
        print(f"\nYin-Yang training, {YIN_YANG_CONFIG.name}, {args.train_epochs} epochs:")
        print("| backend | seconds | test accuracy |")
        print("| --- | ---: | ---: |")
        timings = {}
        for backend in ("cuda", "cpu"):
            train_yin_yang(backend, 1)  # untimed: numba compilation, CUDA context, caches
            timings[backend], accuracy = train_yin_yang(backend, args.train_epochs)
            print(f"| {backend} | {timings[backend]:.1f} | {100 * accuracy:.2f} % |")
        print(f"cpu / cuda: {timings['cpu'] / timings['cuda']:.1f}x")


if __name__ == "__main__":
    main()
