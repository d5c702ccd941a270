"""Why hardware in the loop: train in software, deploy on a (mock) chip, compare.

Two runs of the same config on the same mock chip, in one process:

1. "software": trained with the chip's *ideal* model (nominal neuron parameters, float
   weights, no fixed-pattern noise, no jitter), then evaluated on the ideal model and
   deployed on the mock chip (6-bit weights, per-neuron parameters, jitter);
2. "in the loop": trained with the forward pass on the mock chip and the backward pass
   through the chip's per-neuron model at the measured times, evaluated on the chip.

Prints a markdown table of test accuracies.

    python benchmarks/bss2_deploy.py [--config experiment_configs/yin_yang_bss2.yaml]
                                     [--epochs 100] [--chip calibration/mock_chip_b.h5]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from tqdm import tqdm

from snnsim.config import load_config
from snnsim.training import Trainer

REPO = Path(__file__).resolve().parents[1]


def _train(trainer: Trainer, epochs: int, label: str) -> float:
    start = time.perf_counter()
    for _ in tqdm(range(epochs), desc=label, unit="epoch", mininterval=2.0):
        trainer.train_epoch()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path,
                        default=REPO / "experiment_configs" / "yin_yang_bss2.yaml")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--chip", type=Path, help="calibration file of the mock chip "
                        "(default: the config's)")
    args = parser.parse_args()

    def make_trainer() -> Trainer:
        config = load_config(args.config)
        if args.chip is not None:
            config["hardware"] = dict(config["hardware"] or {},
                                      calibration=str(args.chip.resolve()))
        return Trainer(config, "bss2", config_dir=args.config.resolve().parent)

    software = make_trainer()
    session = software.hardware_session
    on_chip = software.settings
    ideal = dataclasses.replace(on_chip, backends=tuple(
        session.ideal_backend(i) for i in range(len(software.network.layers))))
    software.settings = ideal
    software_seconds = _train(software, args.epochs, "software (ideal model)")
    ideal_accuracy = software.evaluate("test").accuracy
    software.settings = on_chip
    deployed_accuracy = software.evaluate("test").accuracy

    in_the_loop = make_trainer()
    loop_seconds = _train(in_the_loop, args.epochs, "in the loop (mock chip)")
    loop_accuracy = in_the_loop.evaluate("test").accuracy

    chip = session.describe()["chip_id"]
    print(f"\nconfig {args.config.name}, {args.epochs} epochs, mock chip {chip}\n")
    print("| training | evaluated on | test accuracy | training time |")
    print("| --- | --- | --- | --- |")
    print(f"| software, ideal chip model | ideal model | {100 * ideal_accuracy:.1f} % | "
          f"{software_seconds:.0f} s |")
    print(f"| software, ideal chip model | mock chip {chip} | {100 * deployed_accuracy:.1f} % "
          f"| |")
    print(f"| in the loop on mock chip {chip} | mock chip {chip} | {100 * loop_accuracy:.1f} % "
          f"| {loop_seconds:.0f} s |")


if __name__ == "__main__":
    main()
