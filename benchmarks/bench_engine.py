"""Throughput of the event-driven engine (`torch` and `cpu` backends) against the dense
causal-set algorithm of the published code, and peak memory, in one run.

Two networks of LIF neurons with tau_m = tau_s = 1, threshold 1, float64, weights drawn
as the published fastAndDeep configs initialise them:

* Yin-Yang-sized, 5 -> 120 -> 3: inputs (x, y, 1-x, 1-y) coded as 0.15 + v * 1.85 plus a
  bias spike at 0.9 into the hidden layer, and the 120 hidden times plus a bias spike
  at 0.9 into the output layer; weights N(1.5, 0.8) and N(0.5, 0.8);
* 16x16-MNIST-sized, 256 -> 128 -> 10: a quarter of the pixels bright (grey level u
  uniform in 1..255, time 0.15 + (1 - u/255) * 1.85), the others background (+inf), as
  in real 16x16 MNIST; weights N(0.1, 0.4) and N(0.6, 0.8).

For each network and backend it times inference (forward, no autograd) and a training
step (forward with autograd, then backward of the sum of the finite output times),
median of --repeats runs after a warm-up run. The `torch` backend (the readable twin,
a Python loop of tensor operations per input) runs on --torch-batch samples (default
at most 1,000) to keep the run short. The dense algorithm
(`snnsim.reference.dense_causal_set_times`, forward only) needs B x n x n x M memory,
so it runs on the largest batch whose n x n x M tensors stay under --dense-memory-mib.
Peak memory is the growth of the peak resident set (Linux VmHWM) of a fresh subprocess
over building batch 10,000 of the 16x16-MNIST network (inputs included) and its training
step with the `cpu` backend, above its resident set after imports and a small warm-up
batch; the process peak is printed as well.

    python benchmarks/bench_engine.py [--quick] [--repeats N] [--batch N]

Prints a markdown table (with the machine and the command) to paste into a README.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnsim import NeuronParams, first_spike_times
from snnsim.reference import dense_causal_set_times

PARAMS = NeuronParams(tau_syn=1.0, tau_mem=1.0, threshold=1.0, leak=0.0, g_leak=1.0)
EARLY, LATE = 0.15, 2.0
BIAS_TIME = 0.9
MNIST_FINITE_FRACTION = 0.25
MEMORY_BATCH = 10_000
DENSE_TEMPORARIES = 4  # B x n x n x M tensors alive at once in the dense algorithm, about
TARGETS = {  # samples/s of the cpu backend, float64, on the 2-core reference machine
    ("16x16 MNIST", "inference"): 20_000,
    ("16x16 MNIST", "training step"): 5_000,
    ("Yin-Yang", "training step"): 100_000,
}
DENSE_RATIO_TARGET = 100  # cpu / dense, 16x16 MNIST inference
MEMORY_TARGET_MIB = 1024


@dataclass
class Network:
    """Inputs, weights and per-layer bias spike times of a two-layer network."""

    name: str
    t_in: torch.Tensor
    weights: list[torch.Tensor]
    bias_times: list[list[float]]

    def layer_inputs(self, t: torch.Tensor, layer: int) -> torch.Tensor:
        """t with the layer's bias spikes appended."""
        if not self.bias_times[layer]:
            return t
        bias = t.new_tensor(self.bias_times[layer]).expand(t.shape[0], -1)
        return torch.cat([t, bias], dim=1)

    def run(self, layer_fn, weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Output times of the network, each layer computed by layer_fn(t, w)."""
        t = self.t_in
        for layer, w in enumerate(self.weights if weights is None else weights):
            t = layer_fn(self.layer_inputs(t, layer), w)
        return t


def normal(generator, shape, mean, std):
    return mean + std * torch.randn(*shape, generator=generator, dtype=torch.float64)


def yin_yang_network(batch: int, seed: int = 0) -> Network:
    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    t_in = EARLY + (LATE - EARLY) * torch.cat([xy, 1.0 - xy], dim=1)
    weights = [normal(generator, (5, 120), 1.5, 0.8), normal(generator, (121, 3), 0.5, 0.8)]
    return Network("Yin-Yang", t_in, weights, [[BIAS_TIME], [BIAS_TIME]])


def mnist16_network(batch: int, seed: int = 0) -> Network:
    generator = torch.Generator().manual_seed(seed)
    grey = torch.randint(1, 256, (batch, 256), generator=generator).to(torch.float64)
    bright = torch.rand(batch, 256, generator=generator) < MNIST_FINITE_FRACTION
    t_in = torch.where(bright, EARLY + (1.0 - grey / 255.0) * (LATE - EARLY), torch.inf)
    weights = [normal(generator, (256, 128), 0.1, 0.4), normal(generator, (128, 10), 0.6, 0.8)]
    return Network("16x16 MNIST", t_in, weights, [[], []])


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: numba compilation, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inference(network: Network, backend: str):
    def run():
        with torch.no_grad():
            network.run(lambda t, w: first_spike_times(t, w, PARAMS, backend))
    return run


def training_step(network: Network, backend: str):
    weights = [w.clone().requires_grad_() for w in network.weights]

    def run():
        out = network.run(lambda t, w: first_spike_times(t, w, PARAMS, backend), weights)
        torch.where(torch.isfinite(out), out, 0.0).sum().backward()
        for w in weights:
            w.grad = None
    return run


def dense_batch(network: Network, memory_mib: float, limit: int) -> int:
    """Largest batch whose dense n x n x M temporaries fit in memory_mib."""
    per_sample = 0
    n_in = network.t_in.shape[1]
    for layer, w in enumerate(network.weights):
        n = n_in + len(network.bias_times[layer])
        per_sample = max(per_sample, DENSE_TEMPORARIES * n * n * w.shape[1] * 8)
        n_in = w.shape[1]
    return max(1, min(limit, int(memory_mib * 2**20 // per_sample)))


def dense_inference(network: Network):
    def run():
        with torch.no_grad():
            network.run(lambda t, w: dense_causal_set_times(t, w, PARAMS))
    return run


def peak_memory_mib() -> tuple[float, float]:
    """(growth, peak) of the resident set, MiB, of a fresh process running batch MEMORY_BATCH
    of the 16x16-MNIST network forward and backward with the cpu backend."""
    result = subprocess.run([sys.executable, __file__, "--memory-child"], check=True,
                            capture_output=True, text=True)
    growth, total = (float(v) for v in result.stdout.split())
    return growth, total


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024


def memory_child() -> None:
    """Body of the peak-memory subprocess: prints the growth of the peak resident set over
    building batch MEMORY_BATCH and its training step, and that peak, in MiB.

    Linux keeps ru_maxrss across exec (a child would report its parent's peak), so this
    reads the address space's own high-water mark, VmHWM, reset after the warm-up.
    """
    training_step(mnist16_network(64, seed=1), "cpu")()  # imports, compilation
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM to the current resident set
    before = _status_mib("VmRSS:")
    training_step(mnist16_network(MEMORY_BATCH), "cpu")()
    peak = _status_mib("VmHWM:")
    print(peak - before, peak)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small batches and 3 repeats, for a smoke test")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per measurement (median reported; default 7, quick 3)")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size of the engine runs (default 10000, quick 1000)")
    parser.add_argument("--torch-batch", type=int, default=None,
                        help="batch size of the torch backend runs (default min(batch, 1000))")
    parser.add_argument("--dense-memory-mib", type=float, default=1024.0,
                        help="memory budget of the dense algorithm's temporaries (default 1024)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child()
        return
    repeats = args.repeats or (3 if args.quick else 7)
    batch = args.batch or (1000 if args.quick else 10_000)
    torch_batch = args.torch_batch or min(batch, 1000)
    if repeats < 1 or batch < 1 or torch_batch < 1:
        parser.error("--repeats, --batch and --torch-batch must be positive")
    load_before = os.getloadavg()[0]

    rows = []  # (network, mode, backend, batch, samples/s)
    rates = {}
    mismatches = {}  # network -> max |t_cpu - t_dense| where both spike
    for make in (yin_yang_network, mnist16_network):
        networks = {"torch": make(torch_batch), "cpu": make(batch)}
        for mode, runner in (("inference", inference), ("training step", training_step)):
            for backend, network in networks.items():
                size = network.t_in.shape[0]
                rate = size / median_seconds(runner(network, backend), repeats)
                rates[network.name, mode, backend] = rate
                rows.append((network.name, mode, backend, size, rate))
        small = dense_batch(networks["cpu"], args.dense_memory_mib, batch)
        dense_network = make(small)
        rate = small / median_seconds(dense_inference(dense_network), repeats)
        rates[dense_network.name, "inference", "dense"] = rate
        rows.append((dense_network.name, "inference", "dense (published O(n²) algorithm)", small,
                     rate))
        # The same problem through both algorithms, as a check that the rates compare alike.
        with torch.no_grad():
            exact = dense_network.run(lambda t, w: first_spike_times(t, w, PARAMS, "cpu"))
            dense = dense_network.run(lambda t, w: dense_causal_set_times(t, w, PARAMS))
        both = torch.isfinite(exact) & torch.isfinite(dense)
        mismatch = (exact[both] - dense[both]).abs().max().item() if bool(both.any()) else 0.0
        mismatches[dense_network.name] = mismatch

    growth, total = peak_memory_mib() if not args.quick else (float("nan"), float("nan"))

    command = "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:])
    cpu_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu_name = next(line.split(":", 1)[1].strip() for line in cpuinfo
                            if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"Machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_name}; "
          f"numba {numba.__version__} with {numba.get_num_threads()} threads, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads; float64; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after the run.")
    print(f"Command: `{command}` (median of {repeats} runs)")
    print()
    print("| network | mode | backend | batch | samples/s |")
    print("| --- | --- | --- | ---: | ---: |")
    for name, mode, backend, size, value in rows:
        print(f"| {name} | {mode} | {backend} | {size} | {fmt_rate(value)} |")
    print()
    for name in ("Yin-Yang", "16x16 MNIST"):
        ratio = rates[name, "inference", "cpu"] / rates[name, "inference", "dense"]
        print(f"- {name} inference, cpu / dense: {ratio:,.0f}x (same outputs: max |Δt| "
              f"{mismatches[name]:.1e} on the dense batch)")
    print(f"- Peak memory, batch {MEMORY_BATCH:,} through 16x16 MNIST, forward + backward, cpu: "
          f"{growth:,.0f} MiB growth of the resident set, inputs included ({total:,.0f} MiB "
          f"process peak, imports and compiled kernels included)")
    print()
    print("Targets (cpu backend, float64, 2-core machine):")
    for (name, mode), target in TARGETS.items():
        rate = rates[name, mode, "cpu"]
        print(f"- {name} {mode}: {fmt_rate(rate)} samples/s "
              f"({'meets' if rate >= target else 'MISSES'} >= {fmt_rate(target)})")
    ratio = rates["16x16 MNIST", "inference", "cpu"] / rates["16x16 MNIST", "inference", "dense"]
    print(f"- 16x16 MNIST cpu / dense: {ratio:,.0f}x "
          f"({'meets' if ratio >= DENSE_RATIO_TARGET else 'MISSES'} >= {DENSE_RATIO_TARGET}x)")
    if args.quick:
        print("- peak memory: not measured with --quick")
    else:
        print(f"- peak memory: {growth:,.0f} MiB "
              f"({'meets' if growth < MEMORY_TARGET_MIB else 'MISSES'} < {MEMORY_TARGET_MIB} MiB)")


if __name__ == "__main__":
    main()
