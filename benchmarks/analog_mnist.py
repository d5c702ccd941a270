"""A 784-500-10 ReLU MNIST classifier trained in the loop on the mock chip's matrix-multiply mode.

The data of issue 10's acceptance: the MNIST t10k images (grey levels / 255), images
0..7,999 for training and 8,000..9,999 held out. Both layers run on the chip
(`hw.analog`: forward on the mock, backward straight through); plain torch loop, Adam
(or SGD with momentum and a StepLR schedule, as `experiment_configs/linear_mnist.yaml`),
cross-entropy, weights clipped to +-weight_max after each step (what a layer's
`constrain_` would do; in the runs so far no weight came near it). Prints per epoch the
held-out accuracy on the chip, the same weights' float accuracy, the epoch time and the
saturation counts; `--float` trains the same network in float instead (the reference). The analog settings default to
`HardwareConfig().analog`; override them as in a config (`--input-max 1,4`).

    python benchmarks/analog_mnist.py [--epochs 8] [--chip calibration/mock_chip_b.h5]
        [--input-max 1,4] [--weight-max 0.5] [--num-sends 4,8] [--noise-scale 1] [--float]
        [--optimizer sgd --lr 0.02 --momentum 0.9 --batch 32 --lr-step 8 --lr-gamma 0.3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from hw import AnalogSession, HardwareConfig
from snnsim.datasets import read_idx

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"


def load_mnist(folder: Path) -> tuple[torch.Tensor, ...]:
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz", 3).reshape(10000, -1) / 255.0
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", 1).astype(np.int64)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    return x[:8000], y[:8000], x[8000:], y[8000:]


def _numbers(kind):
    return lambda text: [kind(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--momentum", type=float, default=0.0, help="sgd only")
    parser.add_argument("--lr-step", type=int, help="StepLR step size in epochs (default: none)")
    parser.add_argument("--lr-gamma", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chip", type=Path, help="calibration file (default: mock chip a)")
    parser.add_argument("--mnist", type=Path, default=MNIST, help="folder of the t10k files")
    parser.add_argument("--input-max", type=_numbers(float))
    parser.add_argument("--weight-max", type=_numbers(float))
    parser.add_argument("--num-sends", type=_numbers(int))
    parser.add_argument("--noise-scale", type=float)
    parser.add_argument("--float", action="store_true", help="train in float (reference)")
    args = parser.parse_args()

    analog = {key: value for key, value in (
        ("input_max", args.input_max), ("weight_max", args.weight_max),
        ("num_sends", args.num_sends), ("noise_scale", args.noise_scale)) if value is not None}
    hardware = {"analog": analog}
    if args.chip is not None:
        hardware["calibration"] = str(args.chip.resolve())
    config = HardwareConfig.from_dict(hardware)
    session = AnalogSession(config, seed=args.seed)
    print(f"chip {session.chip_id}: {session.describe()['calibration']['analog_note']}; "
          f"mean gain {session.describe()['calibration']['gain_mean']:.3g}, mean noise "
          f"{session.describe()['calibration']['noise_std_mean']:.3g} ADC steps; analog "
          f"{config.analog.to_dict()}")

    x_train, y_train, x_test, y_test = load_mnist(args.mnist)
    torch.manual_seed(args.seed)
    shapes = [(784, args.hidden), (args.hidden, 10)]
    weights = [torch.nn.Parameter(torch.randn(n, m, dtype=torch.float64) * (2.0 / n) ** 0.5)
               for n, m in shapes]
    biases = [torch.nn.Parameter(torch.zeros(m, dtype=torch.float64)) for _, m in shapes]
    chip = [session.linear_backend(i) for i in range(len(shapes))]

    def forward(x: torch.Tensor, on_chip: bool) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(weights, biases)):
            x = chip[i].linear(x, w, b) if on_chip else x @ w + b
            if i < len(weights) - 1:
                x = torch.relu(x)
        return x

    def accuracy(on_chip: bool) -> float:
        with torch.no_grad():
            hits = sum(int((forward(x_test[k:k + 500], on_chip).argmax(1)
                            == y_test[k:k + 500]).sum()) for k in range(0, len(x_test), 500))
        return 100.0 * hits / len(x_test)

    parameters = [*weights, *biases]
    optimizer = (torch.optim.Adam(parameters, lr=args.lr) if args.optimizer == "adam" else
                 torch.optim.SGD(parameters, lr=args.lr, momentum=args.momentum))
    scheduler = (torch.optim.lr_scheduler.StepLR(optimizer, args.lr_step, args.lr_gamma)
                 if args.lr_step else None)
    generator = torch.Generator().manual_seed(args.seed)
    mode = "float" if args.float else "chip"
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x_train), generator=generator)
        for k in range(0, len(order), args.batch):
            batch = order[k:k + args.batch]
            loss = torch.nn.functional.cross_entropy(forward(x_train[batch], not args.float),
                                                     y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if not args.float:
                with torch.no_grad():
                    for i, w in enumerate(weights):
                        w.clamp_(-chip[i].mapping.weight_max, chip[i].mapping.weight_max)
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - start
        before = session.stats
        chip_accuracy = accuracy(True)
        after = session.stats
        test = {k: after[k] - before[k] for k in after}
        print(f"epoch {epoch + 1} ({mode}, {seconds:.1f} s): held-out accuracy on the chip "
              f"{chip_accuracy:.2f} %, in float {accuracy(False):.2f} %; held-out pass: "
              f"{100 * test['saturated_readouts'] / test['readouts']:.3f} % readouts and "
              f"{100 * test['saturated_outputs'] / test['outputs']:.3f} % outputs saturated, "
              f"{100 * test['clipped_inputs'] / test['inputs']:.3f} % inputs clipped", flush=True)
    stats = session.layer_stats()
    for index, counts in stats.items():
        print(f"layer {index} (all passes): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
