"""Time a Yin-Yang training epoch on the mock BrainScaleS-2 chip against the `cpu` backend.

Same network (4 inputs + 1 bias -> 120 hidden -> 3, the published hardware setup,
weights drawn so that most neurons fire as in a trained network), same data (the
5000 training samples, batch 40), same loss (MSE on spike times, t_correct 1.9,
t_wrong 1.6) and optimiser (Adam, lr 0.002), in one process:

* mock: every layer runs on a `ChipSession` (6-bit weights, per-neuron parameters,
  jitter, the batch as one spike train), backward in the chip's model;
* cpu: the chip's ideal model on the `cpu` backend (nominal parameters, weights
  times their input replication).

Epochs alternate between the two so that a busy machine slows both alike; the median
epoch of each is reported with the ratio (target: mock <= 3x cpu).

    python benchmarks/bench_bss2.py [--epochs 5] [--hidden 120] [--batch 40]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import snnsim
from hw import ChipSession, HardwareConfig
from snnsim.datasets import load_dataset

T_CORRECT, T_WRONG, BIAS_TIME = 1.9, 1.6, 0.9


def train_epoch(backends, weights, optimizer, times, labels, batch: int) -> float:
    """One epoch of MSE training on spike times; returns the seconds it took."""
    start = time.perf_counter()
    params = snnsim.NeuronParams()  # ignored by the chip and by the ideal backend
    for first in range(0, len(labels), batch):
        x = times[first:first + batch]
        for backend, w in zip(backends, weights):
            x = torch.cat([x, torch.full((len(x), w.shape[0] - x.shape[1]), BIAS_TIME,
                                         dtype=x.dtype)], 1)
            x = snnsim.first_spike_times(x, w, params, backend, max_dw_norm=0.2)
        target = torch.full_like(x, T_WRONG)
        target[torch.arange(len(x)), labels[first:first + batch]] = T_CORRECT
        fired = torch.isfinite(x)
        loss = torch.where(fired, (torch.where(fired, x, target) - target) ** 2, 0.0).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for w in weights:
                w.clamp_(-63 / 30, 63 / 30)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per backend")
    parser.add_argument("--hidden", type=int, default=120)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args()

    data = load_dataset("yin_yang", "train")
    times, labels = torch.from_numpy(data.times), torch.from_numpy(data.labels)
    shapes = [(data.n_inputs + 1, args.hidden), (args.hidden, data.n_classes)]
    session = ChipSession(HardwareConfig(), shapes)
    runs = {
        "mock": [session.layer_backend(i) for i in range(len(shapes))],
        "cpu": [session.ideal_backend(i) for i in range(len(shapes))],
    }
    seconds = {name: [] for name in runs}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up (numba compilation, caches)
        for name, backends in runs.items():
            generator = torch.Generator().manual_seed(1234)
            weights = [torch.empty(shapes[0], dtype=torch.float64).normal_(0.3, 0.12,
                                                                           generator=generator),
                       torch.empty(shapes[1], dtype=torch.float64).normal_(0.3, 0.15,
                                                                           generator=generator)]
            weights = [w.requires_grad_() for w in weights]
            optimizer = torch.optim.Adam(weights, lr=0.002)
            elapsed = train_epoch(backends, weights, optimizer, times, labels, args.batch)
            if epoch > 0:
                seconds[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"Yin-Yang epoch ({len(labels)} samples, batch {args.batch}, "
          f"{shapes[0][0]}-{args.hidden}-{shapes[1][1]}), median of {args.epochs}:")
    for name, value in median.items():
        print(f"  {name:5s} {value:7.3f} s   (all: {', '.join(f'{v:.3f}' for v in seconds[name])})")
    print(f"  ratio mock / cpu = {median['mock'] / median['cpu']:.2f}  (target <= 3)")
    print(f"  chip runs {session.stats['runs']}, retries {session.stats['retries']}, "
          f"boundary spikes {session.stats['boundary_spikes']}")


if __name__ == "__main__":
    main()
