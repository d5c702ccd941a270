"""experiment.py end to end: train -> continue -> inference -> eval, import, errors."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import experiment

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "experiment_configs" / "yin_yang_small.yaml"
ACCURACY_FLOOR = 0.80  # yin_yang_small reaches ~89 %; chance is 33 %


def _accuracy(text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith("accuracy:"))
    return float(line.split()[1].rstrip("%")) / 100


def test_train_continue_inference_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert experiment.main(["train", str(SMALL), "--output", str(run), "--quiet",
                            "--no-plots"]) == 0
    summary = yaml.safe_load((run / "summary.yaml").read_text())
    assert summary["test_accuracy"] >= ACCURACY_FLOOR
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch_0015.h5", "epoch_0030.h5"]
    capsys.readouterr()

    assert experiment.main(["inference", str(run)]) == 0
    assert _accuracy(capsys.readouterr().out) == pytest.approx(summary["test_accuracy"])

    resumed = tmp_path / "resumed"
    assert experiment.main(["continue", str(run), "15", "30", "--output", str(resumed),
                            "--quiet", "--no-plots"]) == 0
    original = (run / "metrics.csv").read_text().splitlines()
    continued = (resumed / "metrics.csv").read_text().splitlines()
    strip_time = [line.rsplit(",", 1)[0] for line in original]
    assert [line.rsplit(",", 1)[0] for line in continued] == strip_time

    assert experiment.main(["continue", str(run), "30", "35", "--quiet", "--no-plots"]) == 0
    assert (run / "checkpoints" / "epoch_0035.h5").is_file()
    capsys.readouterr()
    assert experiment.main(["inference", str(run), "--epoch", "35", "--split", "val"]) == 0
    assert _accuracy(capsys.readouterr().out) >= ACCURACY_FLOOR

    assert experiment.main(["eval", str(run)]) == 0
    assert len(list((run / "plots").glob("*.png"))) >= 5


def test_import_fastanddeep_reproduces_published_accuracy(shared_data, tmp_path, capsys):
    out = tmp_path / "imported"
    published = shared_data / "fastanddeep" / "yinyang_et_300epochs"
    assert experiment.main(["import-fastanddeep", str(published), "--output", str(out)]) == 0
    capsys.readouterr()
    assert experiment.main(["inference", str(out)]) == 0
    # The published network's test accuracy, computed with the published algorithm
    # (dense causal sets) on the same weights, is 96.0 %.
    assert _accuracy(capsys.readouterr().out) == pytest.approx(0.96)


def test_refuses_to_overwrite_results(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    assert experiment.main(["train", str(SMALL), "--output", str(run), "--quiet"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (run / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("args, message", [
    (["train", "missing.yaml"], "missing.yaml does not exist"),
    (["inference", "no_such_results"], "no_such_results does not exist"),
])
def test_errors_become_messages(args, message, capsys):
    assert experiment.main(args) == 1
    assert message in capsys.readouterr().err


def test_unbuilt_backend_fails_clearly(tmp_path, capsys):
    code = experiment.main(["train", str(SMALL), "--output", str(tmp_path / "r"), "--quiet",
                            "--backend", "cuda"])
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        assert code == 1
        assert "cuda" in capsys.readouterr().err


def test_help_documents_every_command():
    result = subprocess.run([sys.executable, str(REPO / "experiment.py"), "--help"],
                            capture_output=True, text=True, check=True)
    for command in ("train", "inference", "eval", "continue", "import-fastanddeep", "calibrate"):
        assert command in result.stdout
    bad = subprocess.run([sys.executable, str(REPO / "experiment.py"), "train"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "config" in bad.stderr


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only errors of the user's input become one-line messages; a bug propagates."""
    from snnsim import runs

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(runs, "train", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        experiment.main(["train", str(SMALL), "--quiet"])


def test_rate_run_through_the_command_line(tmp_path, capsys):
    """A regression run trains, prints its loss (the primary metric) and infers."""
    config = tmp_path / "sine.yaml"
    config.write_text(
        "dataset: sine\n"
        "data: {n_train: 64, n_val: 32, n_test: 32}\n"
        "network_layout:\n  n_inputs: 1\n  layers:\n"
        "    - {type: linear, size: 8, activation: tanh}\n"
        "    - {type: linear, size: 1, activation: identity}\n"
        "training_params: {epoch_number: 2, batch_size: 16}\n")
    run = tmp_path / "run"
    assert experiment.main(["train", str(config), "--output", str(run), "--quiet"]) == 0
    assert "test loss: " in capsys.readouterr().out
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "regression_test.png", "training_curves.png", "weight_histograms.png",
        "weight_matrices.png"]
    assert experiment.main(["inference", str(run)]) == 0
    assert capsys.readouterr().out.startswith("loss: ")
    assert experiment.main(["train", str(config), "--output", str(tmp_path / "r2"), "--quiet",
                            "--download"]) == 1
    assert "reads no files" in capsys.readouterr().err


def test_eval_of_an_imported_network(tmp_path: Path, shared_data: Path):
    """An imported network has no training history: eval draws everything else."""
    run = tmp_path / "imported"
    published = shared_data / "fastanddeep" / "yinyang_et_300epochs"
    assert experiment.main(["import-fastanddeep", str(published), "--output", str(run)]) == 0
    assert experiment.main(["eval", str(run)]) == 0
    written = {path.name for path in (run / "plots").glob("*.png")}
    assert {"confusion_test.png", "yin_yang_classification.png"} <= written
    assert "training_curves.png" not in written
