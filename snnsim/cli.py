"""snnsim's command line: train, evaluate and inspect spiking networks.

Run as `python experiment.py ...` in a checkout or as the `snnsim` command of an
installed package (the same parser and subcommands):

    python experiment.py train experiment_configs/yin_yang.yaml
    python experiment.py inference experiment_results/yin_yang_<stamp> --split test
    python experiment.py eval experiment_results/yin_yang_<stamp>
    python experiment.py continue experiment_results/yin_yang_<stamp> 300 "400, 500"
    python experiment.py import-fastanddeep tests/data/fastanddeep/yinyang_et_300epochs
    python experiment.py calibrate --mock --seed 3 --output my_chip.h5

This module (behind `experiment.py` and the `snnsim` command) is the only place where
errors become exit codes: 0 success, 1 a run that
failed on the user's input (bad config, data, checkpoint, backend or hardware; one
line naming the thing), 2 bad command-line usage, 130 interrupted. Any other
exception is a bug and keeps its traceback. Subcommands registered by model
families (`snnsim.registry.COMMANDS`, e.g. `sweep`) appear beside the built-in ones.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

BACKENDS = ("cpu", "torch", "cuda", "bss2")
SPLITS = ("test", "val", "train")


def _parse_epochs(text: str) -> list[int]:
    try:
        epochs = sorted({int(part) for part in text.replace(",", " ").split()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"savepoints must be a list of epochs such as \"400, 500\", got {text!r}") from None
    if not epochs or epochs[0] <= 0:
        raise argparse.ArgumentTypeError(f"savepoints must be positive epochs, got {text!r}")
    return epochs


def _add_backend(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=default,
                        help="where spike times are computed: cpu (numba, default), torch "
                             "(reference), cuda (GPU kernel), bss2 (BrainScaleS-2 or its mock)"
                             + ("" if default else "; default: the backend the run was trained "
                                                   "with"))


def _add_tensorboard(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--tensorboard", type=Path, metavar="DIR",
                        help=f"also write {what} as TensorBoard events into DIR/<results "
                             f"folder name> (extra: pip install 'snnsim[tensorboard]'; "
                             f"view with tensorboard --logdir DIR)")


def _add_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--download", action="store_true",
                        help="fetch missing data files (MNIST) into the data folder first "
                             "(as the config key data.download: true)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnsim" if Path(sys.argv[0]).name == "snnsim" else "experiment.py",
        description="Train and evaluate event-driven spiking networks with exact spike-time "
                    "gradients (fastAndDeep-compatible configs).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[2],
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (retries, ...)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads torch may use (default: torch's choice); 1 is often "
                             "fastest for small rate networks on a busy machine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a network from a YAML config into a new results "
                                     "folder, then write its plots")
    p.add_argument("config", type=Path, help="YAML config (published fastAndDeep keys accepted)")
    _add_backend(p, "cpu")
    p.add_argument("--output", type=Path, help="results folder (default: "
                   "experiment_results/<config>_<timestamp> in the working directory); "
                   "must not exist or be empty")
    p.add_argument("--seed", type=int, help="override torch_seed and numpy_seed of the config")
    p.add_argument("--epochs", type=int, help="override epoch_number (e.g. for a quick try)")
    p.add_argument("--no-plots", action="store_true", help="skip writing the plots at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_tensorboard(p, "every per-epoch metric (scalars) and the plots (images)")
    _add_download(p)

    p = sub.add_parser("inference", help="evaluate a trained network; prints the task's primary "
                                         "metric ('accuracy: XX.XX%%' or 'loss: X.XXXXX')")
    p.add_argument("results", type=Path, help="results folder of a run")
    _add_backend(p, None)
    p.add_argument("--split", choices=SPLITS, default="test", help="data split (default: test)")
    p.add_argument("--epoch", type=int, help="checkpoint epoch (default: the latest)")
    _add_download(p)

    p = sub.add_parser("eval", help="write the plots of a run (or of a sweep) into "
                                    "<results>/plots")
    p.add_argument("results", type=Path, help="results folder of a run, or a sweep folder "
                                              "(the sweep's figures from its summary.csv)")
    _add_backend(p, None)
    p.add_argument("--epoch", type=int, help="checkpoint epoch (default: the latest)")
    _add_tensorboard(p, "the plots as images")
    _add_download(p)

    p = sub.add_parser("continue", help="resume training from a savepoint up to new savepoints")
    p.add_argument("results", type=Path, help="results folder of a run")
    p.add_argument("savepoint", type=int, help="epoch of the checkpoint to continue from")
    p.add_argument("new_savepoints", type=_parse_epochs,
                   help='epochs to save at, e.g. "400, 500"; training runs to the last one')
    _add_backend(p, None)
    p.add_argument("--output", type=Path, help="write into a new folder instead of the same one")
    p.add_argument("--no-plots", action="store_true", help="skip writing the plots at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_tensorboard(p, "every per-epoch metric (scalars, the history up to the savepoint "
                        "included) and the plots (images)")
    _add_download(p)

    p = sub.add_parser("import-fastanddeep", help="convert a network saved by the published "
                                                  "fastAndDeep code (safely, no code executed)")
    p.add_argument("published", type=Path, help="folder with *_network.pt and config.yaml")
    p.add_argument("--output", type=Path, help="results folder (default: "
                   "experiment_results/<folder>_imported)")

    p = sub.add_parser("calibrate", help="write a BrainScaleS-2 calibration file")
    p.add_argument("--mock", action="store_true", required=True,
                   help="generate the calibration of a mock chip (the only mode without a chip)")
    p.add_argument("--seed", type=int, required=True, help="seed of the mock chip")
    p.add_argument("--output", type=Path, required=True, help="HDF5 file to write")
    p.add_argument("--chip-id", help="chip id to record (default: derived from the seed)")

    from snnsim.registry import COMMANDS

    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help))
    return parser


def _print_summary(results_dir: Path, summary: dict) -> None:
    from snnsim.runs import format_metric

    primary = summary["primary_metric"]
    print(f"results: {results_dir}")
    print(f"test {format_metric(primary, summary[f'test_{primary}'])}  "
          f"(val {format_metric(primary, summary[f'val_{primary}'])}, {summary['epochs']} "
          f"epochs in {summary['training_seconds']:.1f} s on {summary['backend']})")


def _write_plots(results_dir: Path, backend: str | None, epoch: int | None = None,
                 download: bool = False, tensorboard: Path | None = None) -> None:
    from snnsim import plots, runs

    if tensorboard is not None:
        runs.tensorboard_writer_class()  # fail before plotting if the extra is missing
    trainer = runs.load_trainer(results_dir, epoch, backend, download=download)
    written = plots.write_all(trainer, results_dir / "plots")
    print(f"plots: {len(written)} files in {results_dir / 'plots'}")
    if tensorboard is not None:
        sink = runs.TensorBoardSink(tensorboard, results_dir)
        try:
            sink.write_images(written, trainer.epoch)
        finally:
            sink.close()
        print(f"tensorboard: {len(written)} images in {sink.writer.log_dir}")


def run(args: argparse.Namespace) -> None:
    from snnsim import runs

    if args.command == "train":
        from snnsim.resources import find_config

        results_dir, summary = runs.train(find_config(args.config), args.backend, args.output,
                                          args.seed, args.epochs, progress=not args.quiet,
                                          download=args.download, tensorboard=args.tensorboard)
        _print_summary(results_dir, summary)
        if not args.no_plots:
            _write_plots(results_dir, args.backend, tensorboard=args.tensorboard)
    elif args.command == "continue":
        results_dir, summary = runs.continue_training(args.results, args.savepoint,
                                                      args.new_savepoints, args.backend,
                                                      args.output, progress=not args.quiet,
                                                      download=args.download,
                                                      tensorboard=args.tensorboard)
        _print_summary(results_dir, summary)
        if not args.no_plots:
            _write_plots(results_dir, args.backend, tensorboard=args.tensorboard)
    elif args.command == "inference":
        from snnsim.resources import find_run

        trainer = runs.load_trainer(find_run(args.results), args.epoch, args.backend,
                                    download=args.download)
        result = trainer.evaluate(args.split)
        primary = trainer.task.primary_metric
        others = [runs.format_metric(name, value) for name, value in result.metrics.items()
                  if name != primary]
        print("  ".join([runs.format_metric(primary, result.metrics[primary]), *others,
                         f"({args.split}, {len(result.inputs)} samples)"]))
    elif args.command == "eval":
        from snnsim import sweep

        if sweep.is_sweep_folder(args.results):  # the figures of the whole sweep
            if args.epoch is not None:
                raise ValueError(f"--epoch {args.epoch}: {args.results} is a sweep folder; "
                                 f"give one point's folder to plot one of its checkpoints")
            written = sweep.write_sweep_plots(args.results)
            print(f"plots: {len(written)} files in {args.results / sweep.PLOTS_DIR}")
        else:
            _write_plots(args.results, args.backend, args.epoch, args.download, args.tensorboard)
    elif args.command == "import-fastanddeep":
        results_dir = runs.import_fastanddeep(args.published, args.output)
        print(f"imported into {results_dir}")
    elif args.command == "calibrate":
        from calibration import generate_mock_calibration

        calibration = generate_mock_calibration(args.seed, chip_id=args.chip_id)
        calibration.save(args.output)
        print(f"mock calibration of chip {calibration.chip_id} written to {args.output}")
    else:
        from snnsim.registry import COMMANDS

        COMMANDS.get(args.command).run(args)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that report a problem with the user's input (config, data, files,
    checkpoints, backend or hardware), not a bug."""
    from backends import BackendUnavailableError
    from hw.connection import HardwareError
    from snnsim.sweep import SweepFailed

    return (ValueError, OSError, BackendUnavailableError, HardwareError, SweepFailed)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    user_errors = _user_errors()
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads {args.threads}: expected a count >= 1", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted; checkpoints written so far are intact", file=sys.stderr)
        return 130
    except user_errors as error:
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0

