"""Runs as the command line drives them: train, continue, inference, import.

Each function works on a results folder (see `snnsim.results`) and raises on bad
input; `experiment.py` turns the errors into messages and exit codes.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from snnsim.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snnsim.config import ConfigError, load_config, resolve_config
from snnsim.network import Network
from snnsim.results import (
    checkpoint_path,
    find_checkpoint,
    list_checkpoints,
    new_results_dir,
    write_metrics_csv,
    write_yaml,
)
from snnsim.training import Evaluation, Trainer


class TensorBoardSink:
    """A run's metrics and plots as TensorBoard events in `<log_dir>/<name of the results
    folder>`, so that `tensorboard --logdir <log_dir>` compares runs (needs the extra
    `tensorboard`).

    Scalars, at step = epoch: every series of the run's metric history (the columns of
    `metrics.csv`), tagged `<metric>/train` and `<metric>/val` for `train_<metric>` and
    `val_<metric>` (so a metric's splits sit side by side) and by the column name for the
    rest (`learning_rate`, `bumps`, `epoch_seconds`, a family's series); NaN (a series
    absent that epoch) is left out. Images: the eval plots, tagged `plots/<file stem>`, at
    the evaluated checkpoint's epoch.

    A sink opened with a history (training, continued training) rewrites it from epoch 1
    and tells TensorBoard to drop what earlier writers put into the same run folder from
    step 1 on (`purge_step`), so a run continued from a savepoint shows each epoch once.
    A sink opened without one (eval) only adds.
    """

    def __init__(self, log_dir: Path, results_dir: Path,
                 history: dict[str, list[float]] | None = None):
        writer_class = tensorboard_writer_class()
        self.writer = writer_class(log_dir=str(Path(log_dir) / Path(results_dir).resolve().name),
                                   purge_step=None if history is None else 1)
        for epoch, values in enumerate(zip(*(history or {}).values()), start=1):
            self.write_epoch(epoch, dict(zip(history, values)))

    @staticmethod
    def tag(series: str) -> str:
        """TensorBoard tag of a metric series: `train_loss` -> `loss/train`."""
        for split in ("train", "val"):
            if series.startswith(f"{split}_"):
                return f"{series[len(split) + 1:]}/{split}"
        return series

    def write_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        for series, value in metrics.items():
            if not math.isnan(value):
                self.writer.add_scalar(self.tag(series), float(value), global_step=epoch)
        self.writer.flush()

    def write_images(self, paths: list[Path], epoch: int) -> None:
        """The plots (PNG files) as images `plots/<stem>` at step `epoch`."""
        import matplotlib.image

        for path in paths:
            image = matplotlib.image.imread(path)  # [height, width, RGB(A)] in [0, 1]
            self.writer.add_image(f"plots/{Path(path).stem}", image[..., :3],
                                  global_step=epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tensorboard_writer_class():
    """torch's SummaryWriter; a ConfigError naming the extra if TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ConfigError(f"--tensorboard needs the package 'tensorboard' ({error}): "
                          f"pip install 'snnsim[tensorboard]' (or pip install tensorboard)") \
            from None
    return SummaryWriter


def _train_until(trainer: Trainer, results_dir: Path, last_epoch: int, snapshots: list[int],
                 progress: bool, tensorboard: Path | None = None) -> None:
    """Train epochs trainer.epoch+1 .. last_epoch, writing checkpoints and metrics (and,
    with `tensorboard`, the metrics as TensorBoard scalars: `TensorBoardSink`)."""
    sink = None if tensorboard is None else TensorBoardSink(tensorboard, results_dir,
                                                            trainer.history)
    epochs = range(trainer.epoch, last_epoch)
    try:
        with tqdm(epochs, desc="training", unit="epoch", disable=not progress,
                  mininterval=1.0) as bar:
            for _ in bar:
                metrics = trainer.train_epoch()
                bar.set_postfix(progress_fields(metrics), refresh=False)
                write_metrics_csv(results_dir / "metrics.csv", trainer.history)
                if sink is not None:
                    sink.write_epoch(trainer.epoch, metrics)
                if trainer.epoch in snapshots or trainer.epoch == last_epoch:
                    save_checkpoint(checkpoint_path(results_dir, trainer.epoch),
                                    trainer.checkpoint())
    finally:
        if sink is not None:
            sink.close()


def progress_fields(metrics: dict) -> dict[str, str]:
    """The progress bar's view of an epoch: loss, and train/val accuracy where there is one."""
    fields = {"loss": f"{metrics['train_loss']:.4f}"}
    for split, name in (("train_accuracy", "train"), ("val_accuracy", "val")):
        if split in metrics:
            fields[name] = f"{100 * metrics[split]:.1f}%"
    if "val_accuracy" not in metrics:
        fields["val_loss"] = f"{metrics['val_loss']:.4f}"
    return fields


def format_metric(name: str, value: float) -> str:
    """`accuracy: 98.20%` for accuracies, `loss: 0.01234` for the rest."""
    return f"{name}: {100 * value:.2f}%" if name.endswith("accuracy") else f"{name}: {value:.5f}"


def _summarise(trainer: Trainer, results_dir: Path) -> dict:
    test = trainer.evaluate("test")
    primary = trainer.task.primary_metric
    summary = {"epochs": trainer.epoch, "backend": trainer.backend_name,
               "primary_metric": primary}
    summary.update({f"test_{name}": value for name, value in test.metrics.items()})
    for split in ("val", "train"):
        summary[f"{split}_{primary}"] = trainer.history[f"{split}_{primary}"][-1]
    summary["training_seconds"] = round(float(sum(trainer.history["epoch_seconds"])), 2)
    write_yaml(results_dir / "summary.yaml", summary)
    return summary


def train(config_path: Path | dict, backend: str = "cpu", output: Path | None = None,
          seed: int | None = None, epochs: int | None = None,
          progress: bool = True, config_dir: Path | None = None,
          download: bool = False, tensorboard: Path | None = None) -> tuple[Path, dict]:
    """Train a config from scratch into a new results folder; returns (folder, summary).

    `config_path` is a YAML file or an already parsed (raw) config mapping; relative
    paths in it (calibration files) are resolved against `config_dir`, by default the
    file's folder (or the working directory for a mapping). `download` fetches missing
    data files first (as `data.download: true`). `tensorboard` also writes the metrics
    into `<tensorboard>/<results folder name>` (`TensorBoardSink`).
    """
    if tensorboard is not None:
        tensorboard_writer_class()  # fail before training if the extra is missing
    if isinstance(config_path, dict):
        config = resolve_config(copy.deepcopy(config_path), source="config")
        config_dir = Path(config_dir or Path.cwd()).resolve()
        config_path = Path(output or "config")
    else:
        config = load_config(config_path)
        config_dir = Path(config_dir or Path(config_path).resolve().parent)
    _allow_download(config, download)
    tp = config["training_params"]
    if seed is not None:
        tp["torch_seed"] = tp["numpy_seed"] = seed
    if epochs is not None:
        tp["epoch_number"] = epochs
        tp["epoch_snapshots"] = [e for e in tp["epoch_snapshots"] if e <= epochs]
    trainer = Trainer(config, backend, config_dir=config_dir)
    results_dir = new_results_dir(config_path, output)
    write_yaml(results_dir / "config.yaml", trainer.config)
    _train_until(trainer, results_dir, tp["epoch_number"], tp["epoch_snapshots"], progress,
                 tensorboard)
    return results_dir, _summarise(trainer, results_dir)


def _allow_download(config: dict, download: bool) -> None:
    if download:
        if "download" not in config["data"]:
            raise ConfigError(f"--download: data set {config['dataset']!r} reads no files")
        config["data"]["download"] = True


def read_checkpoint(results_dir: Path, epoch: int | None = None) -> tuple[Checkpoint, dict]:
    """A results folder's checkpoint of `epoch` (default: the latest) and its config,
    validated and completed with defaults."""
    checkpoint = load_checkpoint(find_checkpoint(Path(results_dir), epoch))
    return checkpoint, resolve_config(checkpoint.config,
                                      source=f"{results_dir} checkpoint config")


def load_network(results_dir: Path, epoch: int | None = None) -> tuple[dict, Network, int]:
    """(config, network, epoch) of a results folder's checkpoint (default: the latest),
    without data, optimiser or backends (for export and inspection)."""
    checkpoint, config = read_checkpoint(results_dir, epoch)
    network = Network(config, torch.Generator().manual_seed(0))
    network.load_parameters_(checkpoint.parameters, f"{results_dir}: checkpoint")
    return config, network, checkpoint.epoch


def load_trainer(results_dir: Path, epoch: int | None = None,
                 backend: str | None = None, download: bool = False) -> Trainer:
    """A trainer restored from a results folder's checkpoint (default: the latest)."""
    checkpoint, config = read_checkpoint(results_dir, epoch)
    _allow_download(config, download)
    backend = backend or checkpoint.info.get("backend") or "cpu"
    trainer = Trainer(config, backend, config_dir=Path(results_dir))
    trainer.restore(checkpoint)
    return trainer


def continue_training(results_dir: Path, from_epoch: int, snapshots: list[int],
                      backend: str | None = None, output: Path | None = None,
                      progress: bool = True, download: bool = False,
                      tensorboard: Path | None = None) -> tuple[Path, dict]:
    """Resume from the checkpoint of `from_epoch` up to max(snapshots), saving at each
    (`tensorboard`: as in `train`, the history up to `from_epoch` included)."""
    results_dir = Path(results_dir)
    if tensorboard is not None:
        tensorboard_writer_class()
    if not snapshots or min(snapshots) <= from_epoch:
        raise ValueError(f"new savepoints {snapshots} must all lie after the savepoint "
                         f"{from_epoch} that training continues from")
    trainer = load_trainer(results_dir, from_epoch, backend, download)
    target = results_dir if output is None else new_results_dir(results_dir, output)
    clash = sorted(set(snapshots) & set(list_checkpoints(target)))
    if clash:
        raise FileExistsError(f"{target} already has checkpoints for epochs {clash}; "
                              f"continue into another folder with --output")
    tp = trainer.config["training_params"]
    tp["epoch_number"] = max(snapshots)
    tp["epoch_snapshots"] = sorted(snapshots)
    write_yaml(target / "config.yaml", trainer.config)
    _train_until(trainer, target, max(snapshots), snapshots, progress, tensorboard)
    return target, _summarise(trainer, target)


def inference(results_dir: Path, split: str = "test", backend: str | None = None,
              epoch: int | None = None) -> Evaluation:
    """Evaluate a trained network of a results folder on one split."""
    return load_trainer(results_dir, epoch, backend).evaluate(split)


def import_fastanddeep(published_dir: Path, output: Path | None = None) -> Path:
    """Convert a network saved by the published code into a results folder of ours."""
    from snnsim.fastanddeep import load_published_network

    published = load_published_network(published_dir)
    raw = copy.deepcopy(published.config)
    config = resolve_config(raw, source=f"{published_dir}/config.yaml")
    network = Network(config, torch.Generator().manual_seed(0))
    if len(published.weights) != len(network.layers):
        raise ConfigError(f"{published_dir}: the saved network has {len(published.weights)} "
                          f"layers, its config {len(network.layers)}")
    with torch.no_grad():
        for layer, weight in zip(network.layers, published.weights):
            if tuple(layer.weight.shape) != weight.shape:
                raise ConfigError(f"{published_dir}: weight shape {weight.shape} does not fit "
                                  f"the config's layer {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(weight))
    return write_imported_run(published_dir, output, config, network,
                              "weights only; the published optimiser state and histories are "
                              "not part of the saved network")


def write_imported_run(source: Path, output: Path | None, config: dict, network: Network,
                       note: str) -> Path:
    """A results folder for a network imported from `source` (default
    `experiment_results/<source name>_imported`): its config, one checkpoint at the config's
    last epoch, and IMPORTED.txt saying where it came from (`note` adds what was taken)."""
    source = Path(source).resolve()
    if output is None:
        output = Path.cwd() / "experiment_results" / f"{source.stem}_imported"
    results_dir = new_results_dir(source, output)
    write_yaml(results_dir / "config.yaml", config)
    epoch = config["training_params"]["epoch_number"]
    save_checkpoint(checkpoint_path(results_dir, epoch), Checkpoint(
        epoch=epoch, config=config, parameters=dict(network.state_dict()),
        info={"backend": "cpu", "imported_from": str(source)}))
    (results_dir / "IMPORTED.txt").write_text(f"Imported from {source} by snnsim ({note}).\n")
    return results_dir


def read_summary(results_dir: Path) -> dict:
    path = Path(results_dir) / "summary.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}
