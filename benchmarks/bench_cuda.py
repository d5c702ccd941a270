"""Inference throughput of the `cuda` backend against the dense causal-set algorithm, one GPU.

The network is 16x16-MNIST-sized, 256 -> 128 -> 10 LIF neurons with tau_m = tau_s = 1
(the regime the dense algorithm covers); about 25% of the inputs spike, at times in
[0.15, 2.0] as the 16x16 MNIST coding gives, the rest never (+inf). Weights are drawn so
that about 93% of the hidden and nearly all output neurons fire. Both algorithms run in
this process on the same GPU and inputs, in float32 and float64; the dense one (the
published O(B n^2 M) algorithm, `snnsim.reference.dense_causal_set_times`) runs on
batches small enough for its B x n x n x M tensors to fit in --dense-memory-gib.

    python benchmarks/bench_cuda.py [--batch 65536] [--repeats 20] [--dense-memory-gib 8]

Prints a table of samples/s and the cuda/dense ratio; exits with a message where the
cuda backend cannot run (no extension built, no device).
"""
from __future__ import annotations

import argparse
import functools
import itertools
import time

import torch

from backends import BackendUnavailableError, get_backend
from snnsim import NeuronParams
from snnsim.reference import dense_causal_set_times

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
    """Best of `repeats` timed calls (after a warm-up call), in samples per second."""
    run()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return batch / best


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


if __name__ == "__main__":
    main()
