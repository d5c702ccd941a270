"""`--tensorboard DIR`: the events hold every metric series of metrics.csv and the plots.

The events are read back with TensorBoard's own reader (EventAccumulator), which applies
the purge of a continued run the way the TensorBoard UI does.
"""
import csv
import io
import math
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("tensorboard", reason="the optional extra 'tensorboard' is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from snnsim.cli import main
from snnsim.runs import TensorBoardSink

REPO = Path(__file__).resolve().parents[1]
BARS = REPO / "experiment_configs" / "bars.yaml"  # 30 samples: quick to train and plot


def _read_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _metrics_csv(results: Path) -> dict[str, list[float]]:
    with open(results / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def _config_with_snapshot(tmp_path: Path) -> Path:
    """bars, 2 epochs with a checkpoint after epoch 1 (to continue from)."""
    config = yaml.safe_load(BARS.read_text())
    config["training_params"].update(epoch_number=2, epoch_snapshots=[1])
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tags_follow_the_metric_series():
    assert TensorBoardSink.tag("train_loss") == "loss/train"
    assert TensorBoardSink.tag("val_accuracy") == "accuracy/val"
    assert TensorBoardSink.tag("learning_rate") == "learning_rate"
    assert TensorBoardSink.tag("epoch_seconds") == "epoch_seconds"


def test_train_continue_eval_write_metrics_and_plots(tmp_path, capsys):
    results, board = tmp_path / "run", tmp_path / "tb"
    assert main(["--threads", "1", "train", str(_config_with_snapshot(tmp_path)), "--output",
                 str(results), "--quiet", "--no-plots", "--tensorboard", str(board)]) == 0
    first = _metrics_csv(results)
    # Continue from epoch 1 into the same folder: epoch 2 is trained again (identical
    # values, another epoch_seconds) and epoch 3 added; TensorBoard must show the new run.
    assert main(["--threads", "1", "continue", str(results), "1", "3", "--quiet", "--no-plots",
                 "--tensorboard", str(board)]) == 0
    history = _metrics_csv(results)
    assert len(history["train_loss"]) == 3
    assert history["epoch_seconds"][1] != first["epoch_seconds"][1]

    run_dir = board / "run"
    events = _read_events(run_dir)
    scalars = events.Tags()["scalars"]
    expected = {TensorBoardSink.tag(series): values for series, values in history.items()}
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "learning_rate",
            "bumps", "epoch_seconds"} <= set(expected)
    assert sorted(scalars) == sorted(tag for tag, values in expected.items()
                                     if not all(math.isnan(v) for v in values))
    for tag, values in expected.items():
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [epoch for epoch, v in enumerate(values, 1)
                                            if not math.isnan(v)], tag
        assert [e.value for e in logged] == pytest.approx(
            [v for v in values if not math.isnan(v)], rel=1e-5), tag  # csv: 6 digits

    capsys.readouterr()
    assert main(["--threads", "1", "eval", str(results), "--tensorboard", str(board)]) == 0
    assert "tensorboard: " in capsys.readouterr().out
    events = _read_events(run_dir)
    plots = sorted((results / "plots").glob("*.png"))
    assert plots
    assert sorted(events.Tags()["images"]) == sorted(f"plots/{p.stem}" for p in plots)
    import matplotlib.image

    for path in plots:
        (image,) = events.Images(f"plots/{path.stem}")
        assert image.step == 3
        logged = matplotlib.image.imread(io.BytesIO(image.encoded_image_string), format="png")
        drawn = matplotlib.image.imread(path)[..., :3]
        assert logged.shape[:2] == drawn.shape[:2] == (image.height, image.width)
        assert abs(logged[..., :3] - drawn).max() <= 1 / 255 + 1e-6, path.name
    # eval only adds: the scalars are still there, each epoch once
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]


def test_missing_extra_is_a_clear_error_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    results = tmp_path / "run"
    assert main(["train", str(BARS), "--output", str(results), "--quiet",
                 "--tensorboard", str(tmp_path / "tb")]) == 1
    error = capsys.readouterr().err
    assert "--tensorboard needs the package 'tensorboard'" in error
    assert "pip install 'snnsim[tensorboard]'" in error
    assert not results.exists()
