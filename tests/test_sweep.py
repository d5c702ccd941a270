"""Sweeps: grid expansion, sub-grids, overrides, summary.csv and its named columns, resuming,
failures, interrupts, the sweep's figures (`eval <sweep folder>`); the in-process path and
the Ray path on a real local Ray instance."""
from __future__ import annotations

import csv
import logging
import os
import sys
from pathlib import Path

import pytest
import yaml

from snnsim import runs, sweep
from snnsim.errors import ConfigError
from snnsim.registry import COMMANDS

REPO = Path(__file__).resolve().parents[1]
XOR = REPO / "experiment_configs" / "xor.yaml"
LEARNING_RATE = "training_params.learning_rate"
HIDDEN = "network_layout.layer_sizes.0"


def xor_sweep(tmp_path: Path, grid: dict | None = None, name: str = "xor_sweep",
              **extra) -> Path:
    """A sweep file over the XOR config, one epoch per point (about a second each)."""
    path = tmp_path / f"{name}.yaml"
    data = {"base": str(XOR),
            "grid": grid or {LEARNING_RATE: [0.005, 0.01], HIDDEN: [10]},
            "overrides": {"training_params.epoch_number": 1}, **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- the grid


def test_grid_expands_in_nested_loop_order_with_readable_stable_names():
    grid = {"training_params.learning_rate": [0.01, 1e-05],
            "network_layout.layers.0.size": [100, 500],
            "training_params.optimizer": ["adam"]}
    assert sweep.expand_grid(grid) == [
        {"training_params.learning_rate": 0.01, "network_layout.layers.0.size": 100,
         "training_params.optimizer": "adam"},
        {"training_params.learning_rate": 0.01, "network_layout.layers.0.size": 500,
         "training_params.optimizer": "adam"},
        {"training_params.learning_rate": 1e-05, "network_layout.layers.0.size": 100,
         "training_params.optimizer": "adam"},
        {"training_params.learning_rate": 1e-05, "network_layout.layers.0.size": 500,
         "training_params.optimizer": "adam"},
    ]
    assert sweep.point_names(grid) == [
        "000_learning_rate=0.01_size=100_optimizer=adam",
        "001_learning_rate=0.01_size=500_optimizer=adam",
        "002_learning_rate=1e-05_size=100_optimizer=adam",
        "003_learning_rate=1e-05_size=500_optimizer=adam",
    ]
    assert sweep.point_names(grid) == sweep.point_names(dict(grid))  # stable


def test_labels_grow_until_unique_and_odd_values_stay_folder_safe():
    keys = ["network_layout.layers.0.size", "network_layout.layers.1.size", "a.lr"]
    assert sweep.short_labels(keys) == {"network_layout.layers.0.size": "0.size",
                                        "network_layout.layers.1.size": "1.size",
                                        "a.lr": "lr"}
    names = sweep.point_names({"loss": [{"type": "MSE", "t_correct": 1.7}, None, True],
                               "x": list(range(1001))})
    assert len(names) == 3 * 1001 and len(set(names)) == len(names)
    assert names[0] == '0000_loss=t_correct-1.7-type-MSE_x=0'
    assert names[-1] == "3002_loss=true_x=1000"
    assert all("/" not in n and " " not in n for n in names)


def test_overrides_set_nested_keys_and_list_items_of_a_copy():
    base = {"training_params": {"learning_rate": 0.1, "epoch_number": 300,
                                "epoch_snapshots": [1, 100, 200]},
            "network_layout": {"layers": [{"type": "linear", "size": 500}]}}
    config = sweep.apply_overrides(base, {"training_params.learning_rate": 0.01,
                                          "network_layout.layers.0.size": 100,
                                          "training_params.momentum": 0.9,  # a new leaf
                                          "training_params.epoch_number": 50})
    assert config["training_params"] == {"learning_rate": 0.01, "epoch_number": 50,
                                         "epoch_snapshots": [1], "momentum": 0.9}
    assert config["network_layout"]["layers"][0] == {"type": "linear", "size": 100}
    assert base["training_params"]["learning_rate"] == 0.1  # the base is untouched
    assert base["training_params"]["epoch_snapshots"] == [1, 100, 200]
    kept = sweep.apply_overrides(base, {"training_params.epoch_number": 50,
                                        "training_params.epoch_snapshots": [10]})
    assert kept["training_params"]["epoch_snapshots"] == [10]


@pytest.mark.parametrize("key, message", [
    ("training_params.learnig_rate.x",
     "training_params has no key 'learnig_rate'; did you mean 'training_params.learning_rate'?"),
    ("trainig_params.learning_rate",
     "the config has no key 'trainig_params'; did you mean 'training_params.learning_rate'?"),
    ("network_layout.layers.3.size",
     "network_layout.layers has 1 items; index 3 is past its end"),
    ("network_layout.layers.first.size",
     "network_layout.layers is a list; 'first' is not an index into it"),
    ("training_params.learning_rate.x",
     "training_params.learning_rate is a value (0.1), not a mapping or a list"),
])
def test_override_of_a_missing_key_names_the_key_the_point_and_the_nearest(key, message):
    base = {"training_params": {"learning_rate": 0.1},
            "network_layout": {"layers": [{"size": 500}]}}
    with pytest.raises(ConfigError) as error:
        sweep.apply_overrides(base, {key: 1}, where="s.yaml: point 002_x=1")
    assert str(error.value).startswith(f"s.yaml: point 002_x=1: override key {key!r}: ")
    assert message in str(error.value)


def test_plan_checks_every_point_before_anything_runs(tmp_path):
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01], "network_layot.layer_sizes.0": [4]})
    with pytest.raises(ConfigError, match=r"point 000_learning_rate=0.01_0=4: override key "
                                          r"'network_layot.layer_sizes.0': the config has no "
                                          r"key 'network_layot'; did you mean "
                                          r"'network_layout.layer_sizes.0'\?"):
        sweep.plan(sweep.load_sweep(path))
    # A new leaf of an existing mapping is set, and the config's own checks judge it.
    path = xor_sweep(tmp_path, grid={"network_layout.layer_size": [4]})
    with pytest.raises(ValueError, match=r"point 000_layer_size=4: network_layout: unknown "
                                         r"key 'layer_size'; did you mean 'layer_sizes'"):
        sweep.plan(sweep.load_sweep(path))
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01, "fast"]})
    with pytest.raises(ValueError, match=r"point 001_learning_rate=fast: .*learning_rate"):
        sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "out", use_ray=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data, message", [
    ({"base": "x.yaml", "gird": {}}, "unknown key 'gird'; did you mean 'grid'?"),
    ({"grid": {"a": [1]}}, "missing required key 'base'"),
    ({"base": "missing.yaml", "grid": {"a": [1]}}, "cannot read base config"),
    ({"base": {}, "grid": {"a": 0.1}}, "grid.a must be a non-empty list of values"),
    ({"base": {}, "grid": {}}, "grid must be a non-empty mapping"),
    ({"base": {}, "grid": {"a": [1]}, "overrides": {"a": 2}}, "a is both in grid and in"),
    ({"base": {}, "grid": {"a": [1]}, "cpus_per_point": True}, "cpus_per_point must be a"),
    ({"base": {}, "grid": {"a": [1]}, "columns": ["a"]},
     "columns must be a mapping of new summary.csv column names"),
    ({"base": {}, "grid": {"a": [1]}, "columns": {"a": "final_x"}},
     "columns.a: summary.csv already has a column 'a'"),
    ({"base": {}, "grid": {"a": [1]}, "columns": {"final_loss": "final_val_loss"}},
     "columns.final_loss: summary.csv already has a column"),
    ({"base": {}, "grid": {"a": [1]}, "columns": {"my loss": "final_val_loss"}},
     "columns: 'my loss' is not a column name"),
    ({"base": {}, "grid": {"a": [1]}, "columns": {"loss": 3}},
     "columns.loss must name a dotted config key or a summary.csv column"),
])
def test_sweep_file_errors(tmp_path, data, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        sweep.load_sweep(path)


def test_base_is_relative_to_the_sweep_file_or_inline(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text(XOR.read_text())
    (tmp_path / "sweeps").mkdir()
    by_path = tmp_path / "sweeps" / "s.yaml"
    by_path.write_text("base: ../configs/base.yaml\ngrid: {training_params.alpha: [1, 2]}\n")
    loaded = sweep.load_sweep(by_path)
    assert loaded.base == yaml.safe_load(XOR.read_text())
    assert loaded.config_dir == (tmp_path / "configs").resolve()
    assert loaded.name == "s" and loaded.backend == "cpu" and loaded.cpus_per_point == 1
    inline = tmp_path / "sweeps" / "inline.yaml"
    inline.write_text(yaml.safe_dump({"base": loaded.base, "grid": {"dataset": ["xor"]},
                                      "backend": "torch", "cpus_per_point": 2}))
    loaded = sweep.load_sweep(inline)
    assert loaded.config_dir == (tmp_path / "sweeps").resolve()
    assert (loaded.backend, loaded.cpus_per_point) == ("torch", 2)


def test_sweep_command_is_registered():
    command = COMMANDS.get("sweep")
    assert command.run is sweep.run and command.add_arguments is sweep.add_arguments
    import argparse

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["s.yaml", "--output", "o", "--ray-address", "auto",
                              "--workers", "3", "--backend", "torch"])
    assert (args.sweep, args.output, args.ray_address, args.workers, args.backend) == (
        Path("s.yaml"), Path("o"), "auto", 3, "torch")


# --------------------------------------------------------------------------- running in-process


@pytest.fixture
def count_training(monkeypatch):
    """Counts the points trained (in this process) by the folder they train into."""
    trained = []
    real_train = runs.train

    def train(config, backend="cpu", output=None, **kwargs):
        trained.append(Path(output).name)
        return real_train(config, backend, output=output, **kwargs)

    monkeypatch.setattr(runs, "train", train)
    return trained


def test_in_process_sweep_writes_point_folders_and_summary(tmp_path, count_training):
    out = tmp_path / "out"
    result = sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path)), output=out,
                             use_ray=False, progress=False)
    names = ["000_learning_rate=0.005_0=10", "001_learning_rate=0.01_0=10"]
    assert count_training == names
    assert result.summary_csv == out / "summary.csv"
    rows = read_csv(out / "summary.csv")
    assert list(rows[0])[:6] == ["point", "status", LEARNING_RATE, HIDDEN, "primary_metric",
                                 "test_accuracy"]
    assert [r["point"] for r in rows] == names
    assert [r[LEARNING_RATE] for r in rows] == ["0.005", "0.01"]
    for row in rows:
        folder = out / row["point"]
        summary = yaml.safe_load((folder / "summary.yaml").read_text())
        metrics = read_csv(folder / "metrics.csv")
        assert row["status"] == "ok" and row["primary_metric"] == "accuracy"
        assert float(row["test_accuracy"]) == summary["test_accuracy"]
        assert (int(row["epochs"]), float(row["training_seconds"])) == (
            summary["epochs"], summary["training_seconds"])
        finals = {k[len("final_"):]: v for k, v in row.items() if k.startswith("final_")}
        assert finals == {k: v for k, v in metrics[-1].items() if k != "epoch"}
        assert "train_loss" in finals and "val_accuracy" in finals
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["training_params"]["learning_rate"] == float(row[LEARNING_RATE])
        assert config["training_params"]["epoch_number"] == 1
    assert [r["point"] for r in result.rows] == names
    stored = yaml.safe_load((out / "sweep.yaml").read_text())
    assert stored["grid"] == {LEARNING_RATE: [0.005, 0.01], HIDDEN: [10]}


def test_primary_metric_of_the_summary_is_used(tmp_path):
    point = tmp_path / "p"
    point.mkdir()
    (point / "summary.yaml").write_text("primary_metric: loss\ntest_loss: 0.25\n"
                                        "test_accuracy: 0.5\n")
    (point / "metrics.csv").write_text("epoch,train_loss,sparsity\n1,0.5,0.1\n2,0.4,0.2\n")
    assert sweep.read_point(point) == {"status": "ok", "primary_metric": "loss",
                                       "test_loss": 0.25, "epochs": None,
                                       "training_seconds": None, "final_train_loss": "0.4",
                                       "final_sparsity": "0.2"}


# --------------------------------------------------------------------------- named columns


NAMED = {"lr": LEARNING_RATE, "seed": "training_params.torch_seed",
         "sizes": "network_layout.layer_sizes", "acc": "final_val_accuracy",
         "score": "test_accuracy", "run": "point"}


def test_named_columns_come_first_with_the_values_of_their_sources(tmp_path, count_training):
    out = tmp_path / "out"
    result = sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path, columns=NAMED)), output=out,
                             use_ray=False, progress=False)
    rows = read_csv(out / "summary.csv")
    header = list(rows[0])
    assert header[:10] == ["point", "status", *NAMED, LEARNING_RATE, HIDDEN]
    assert header[-2:] == ["epochs", "training_seconds"]
    for row in rows:
        config = yaml.safe_load((out / row["point"] / "config.yaml").read_text())
        assert float(row["lr"]) == config["training_params"]["learning_rate"] \
            == float(row[LEARNING_RATE])
        assert row["seed"] == "2000" and row["sizes"] == "[10,2]"  # a list as JSON
        assert row["acc"] == row["final_val_accuracy"] != ""
        assert row["score"] == row["test_accuracy"] != "" and row["run"] == row["point"]
    assert [r["acc"] for r in result.rows] == [r["acc"] for r in rows]
    stored = yaml.safe_load((out / "sweep.yaml").read_text())
    assert stored["columns"] == NAMED


def test_a_named_config_key_no_point_has_is_an_error_before_anything_runs(tmp_path):
    path = xor_sweep(tmp_path, columns={"sigma": "task.noise_std"})
    with pytest.raises(ConfigError, match=r"columns.sigma: 'task.noise_std' is neither a key of "
                                          r"any point's config nor a summary.csv column "
                                          r"\(point, status, "):
        sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "out", use_ray=False)
    assert not (tmp_path / "out").exists()
    path = xor_sweep(tmp_path, columns={"lr": "training_params.learnig_rate"})
    with pytest.raises(ConfigError, match=r"did you mean 'training_params.learning_rate'\?"):
        sweep.plan(sweep.load_sweep(path))


def test_a_named_result_column_no_point_has_is_an_error_and_a_rerun_fixes_it(tmp_path,
                                                                             count_training):
    out = tmp_path / "out"
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01]},
                     columns={"loss": "final_val_los"})
    with pytest.raises(ConfigError, match=r"columns.loss: no point has the column "
                                          r"'final_val_los'; did you mean 'final_val_loss'\? "
                                          r"\(they have .*final_val_loss.*\), so it is empty"):
        sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert read_csv(out / "summary.csv")[0]["loss"] == ""
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01]},
                     columns={"loss": "final_val_loss"})
    result = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert len(count_training) == 1  # the complete point is kept, only the summary changes
    row = read_csv(out / "summary.csv")[0]
    assert row["loss"] == row["final_val_loss"] == result.rows[0]["loss"] != ""
    assert yaml.safe_load((out / "sweep.yaml").read_text())["columns"] == {
        "loss": "final_val_loss"}


def test_a_result_column_some_points_lack_is_empty_in_their_rows():
    loaded = sweep.sweep_from_mapping({"base": {"a": 1}, "grid": {"a": [1, 2]},
                                       "columns": {"k": "final_k"}})
    points = sweep.plan(loaded, validate=False)
    results = {points[0].name: {"status": "ok", "final_k": "10"},
               points[1].name: {"status": "ok"}}
    rows = sweep.summary_rows(loaded, points, results)
    assert [r["k"] for r in rows] == ["10", None]
    sweep.check_result_columns(loaded, rows, Path("out"))  # one point has it: fine
    with pytest.raises(ConfigError, match="no point has the column 'final_k'"):
        sweep.check_result_columns(loaded, rows[1:], Path("out"))


# --------------------------------------------------------------------------- sub-grids

SIZE0, SIZE1 = "network_layout.layers.0.size", "network_layout.layers.1.size"


def test_sub_grids_are_the_union_of_their_points_with_their_own_overrides():
    base = {"task": {"noise_std": 0.8},
            "network_layout": {"layers": [{"type": "dense", "size": 10}, {"size": 4}]},
            "training_params": {"epoch_number": 100, "epoch_snapshots": [10, 50]}}
    loaded = sweep.sweep_from_mapping({
        "base": base,
        "overrides": {"training_params.epoch_number": 20, SIZE0: 30},
        "grid": [{"task.noise_std": [0, 0.8], SIZE1: [4, 8]},
                 {"network_layout.layers.0.mode": ["mask", "subtract"],
                  "overrides": {"network_layout.layers.0": {"type": "topk", "size": 50},
                                "training_params.epoch_number": 5}},
                 {SIZE1: [16]}]})
    assert [s.grid for s in loaded.sub_grids] == [
        {"task.noise_std": [0, 0.8], SIZE1: [4, 8]},
        {"network_layout.layers.0.mode": ["mask", "subtract"]}, {SIZE1: [16]}]
    assert sweep.grid_keys(loaded.grid) == ["task.noise_std", SIZE1,
                                            "network_layout.layers.0.mode"]
    points = sweep.plan(loaded, validate=False)
    # each sub-grid in nested-loop order, one after another; one index over all of them
    assert [p.name for p in points] == [
        "000_noise_std=0_size=4", "001_noise_std=0_size=8", "002_noise_std=0.8_size=4",
        "003_noise_std=0.8_size=8", "004_mode=mask", "005_mode=subtract", "006_size=16"]
    assert [p.index for p in points] == list(range(7))
    assert [p.values for p in points][3:5] == [
        {"task.noise_std": 0.8, SIZE1: 8}, {"network_layout.layers.0.mode": "mask"}]
    assert points[4].where == "sweep: grid[1] point 004_mode=mask"
    # the sweep's overrides, then the sub-grid's (replacing the whole layer, its size 30
    # included), then the grid values (a new leaf of the replaced layer)
    layers = [p.config["network_layout"]["layers"] for p in points]
    assert layers[1] == [{"type": "dense", "size": 30}, {"size": 8}]
    assert layers[5] == [{"type": "topk", "size": 50, "mode": "subtract"}, {"size": 4}]
    assert layers[6] == [{"type": "dense", "size": 30}, {"size": 16}]
    training = [p.config["training_params"] for p in points]
    assert training[0] == {"epoch_number": 20, "epoch_snapshots": [10]}
    assert training[4] == {"epoch_number": 5, "epoch_snapshots": []}
    assert [p.config["task"]["noise_std"] for p in points] == [0, 0, 0.8, 0.8, 0.8, 0.8, 0.8]
    assert base["network_layout"]["layers"][0] == {"type": "dense", "size": 10}  # untouched
    # one mapping is one sub-grid without overrides: the same points and names
    one = {"task.noise_std": [0, 0.8], SIZE1: [4, 8]}
    assert sweep.point_names([one]) == sweep.point_names(one) == [p.name for p in points[:4]]
    assert sweep.grid_points([one]) == [(0, v) for v in sweep.expand_grid(one)]


def test_summary_of_sub_grids_has_every_grid_key_filled_from_each_point_config():
    loaded = sweep.sweep_from_mapping({
        "base": {"a": {"x": 1}, "b": 2},
        "grid": [{"a.x": [1, 2]}, {"b": [3], "overrides": {"a": {"y": 5}}}],
        "columns": {"x": "a.x", "y": "a.y", "k": "final_k"}})
    points = sweep.plan(loaded, validate=False)
    rows = sweep.summary_rows(loaded, points, {points[2].name: {"status": "ok",
                                                                "final_k": "4"}})
    # a.x is no key of point 2's config (its layer replaced), b is point 0's base value
    assert [(r["a.x"], r["b"], r["x"], r["y"], r["k"]) for r in rows] == [
        ("1", "2", "1", None, None), ("2", "2", "2", None, None),
        (None, "3", None, "5", "4")]
    sweep.check_result_columns(loaded, rows, Path("out"))  # k: one point has it


@pytest.mark.parametrize("grid, overrides, message", [
    ([], {}, (r"grid must be a non-empty mapping .* or a non-empty list of such mappings "
              r"\(sub-grids, each with optional `overrides:`\), got \[\]")),
    ([{"a": [1]}, [1, 2]], {}, (r"grid\[1\] must be a mapping of dotted config keys to lists "
                                r"of values .* got \[1, 2\]")),
    ([{"a": [1]}, {"overrides": {"a": 2}}], {}, r"grid\[1\] has no grid key, only overrides"),
    ([{"a": [1]}, {"b": 0.5}], {}, r"grid\[1\]\.b must be a non-empty list of values, got 0.5"),
    ([{"a": []}], {}, r"grid\[0\]\.a must be a non-empty list of values, got \[\]"),
    ([{"a": [1], "overrides": [1]}], {}, (r"grid\[0\]\.overrides must be a mapping of "
                                          r"dotted config keys to values, got \[1\]")),
    ([{"a": [1]}, {"b": [1], "overrides": {"b": 2}}], {},
     r"grid\[1\]: b is both a grid key and in grid\[1\]\.overrides"),
    ([{"a": [1]}, {"b": [1]}], {"b": 2}, (r"grid\[1\]: b is both a grid key and in the "
                                          r"sweep's overrides")),
    ({"a": [1]}, {"a": 2}, "a is both in grid and in overrides"),
    ([{"a": [1]}], {}, None),
    ([{"a": [1]}, {"a": [2], "overrides": {"b": 3}}], {"b": 2}, None),  # on top of the sweep's
])
def test_sub_grid_errors_name_the_sub_grid_and_the_key(grid, overrides, message):
    data = {"base": {"a": 0, "b": 0}, "grid": grid, "overrides": overrides}
    if message is None:
        assert sweep.sweep_from_mapping(data, source="s.yaml").grid == grid
        return
    with pytest.raises(ConfigError, match=r"^s\.yaml: " + message):
        sweep.sweep_from_mapping(data, source="s.yaml")


def test_sub_grid_points_are_checked_naming_the_sub_grid_and_repeats_are_errors():
    base = {"a": {"x": 1}, "b": 2}
    bad_key = sweep.sweep_from_mapping({"base": base, "grid": [
        {"a.x": [1]}, {"b": [3], "overrides": {"a.z.w": 1}}]}, source="s.yaml")
    with pytest.raises(ConfigError, match=r"^s\.yaml: grid\[1\] point 001_b=3: override key "
                                          r"'a\.z\.w': a has no key 'z'"):
        sweep.plan(bad_key, validate=False)
    # point 2 (b = 3 by its grid value) repeats point 1 (b = 3 by its sub-grid's overrides)
    repeat = sweep.sweep_from_mapping({"base": base, "grid": [
        {"a.x": [1], "overrides": {"b": 3}}, {"a.x": [5, 1]}, {"b": [3]}]}, source="s.yaml")
    with pytest.raises(ConfigError, match=r"^s\.yaml: grid\[2\] point 003_b=3 has the same "
                                          r"config as point 000_x=1; a sweep trains each "
                                          r"config once"):
        sweep.plan(repeat, validate=False)
    with pytest.raises(ConfigError, match=r"point 001_x=1 has the same config as point "
                                          r"000_x=1"):
        sweep.plan(sweep.sweep_from_mapping({"base": base, "grid": {"a.x": [1, 1]}}),
                   validate=False)
    # a named config key no point has is an error; one some points lack is not
    for columns, error in (({"z": "a.z"}, True), ({"z": "a.y"}, False)):
        loaded = sweep.sweep_from_mapping({"base": base, "columns": columns, "grid": [
            {"a.x": [1]}, {"b": [3], "overrides": {"a.y": 4}}]}, source="s.yaml")
        if error:
            with pytest.raises(ConfigError, match=r"columns\.z: 'a\.z' is neither a key of any "
                                                  r"point's config .*did you mean 'a\.y'\?"):
                sweep.plan(loaded, validate=False)
        else:
            assert len(sweep.plan(loaded, validate=False)) == 2


def test_in_process_sweep_of_sub_grids_writes_resumes_and_compares_its_definition(
        tmp_path, count_training):
    grid = [{LEARNING_RATE: [0.005, 0.01]},
            {HIDDEN: [4], "overrides": {LEARNING_RATE: 0.02,
                                        "training_params.weight_decay": 0.001}}]
    path = xor_sweep(tmp_path, grid=grid,
                     columns={"lr": LEARNING_RATE, "decay": "training_params.weight_decay",
                              "acc": "final_val_accuracy"})
    out = tmp_path / "out"
    result = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False,
                             progress=False)
    names = ["000_learning_rate=0.005", "001_learning_rate=0.01", "002_0=4"]
    assert count_training == names
    rows = read_csv(out / "summary.csv")
    assert list(rows[0])[:8] == ["point", "status", "lr", "decay", "acc", LEARNING_RATE,
                                 HIDDEN, "primary_metric"]
    assert [(r["point"], r["status"], r["lr"], r[LEARNING_RATE], r[HIDDEN], r["decay"])
            for r in rows] == [(names[0], "ok", "0.005", "0.005", "10", ""),
                               (names[1], "ok", "0.01", "0.01", "10", ""),
                               (names[2], "ok", "0.02", "0.02", "4", "0.001")]
    assert all(r["acc"] == r["final_val_accuracy"] != "" for r in rows)
    config = yaml.safe_load((out / names[2] / "config.yaml").read_text())
    assert config["training_params"]["learning_rate"] == 0.02
    assert config["training_params"]["weight_decay"] == 0.001
    assert [layer["size"] for layer in config["network_layout"]["layers"]] == [4, 2]
    assert [r["point"] for r in result.rows] == names
    assert yaml.safe_load((out / "sweep.yaml").read_text())["grid"] == grid

    count_training.clear()
    (out / names[1] / "summary.yaml").unlink()  # as if killed before its summary
    again = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert count_training == [names[1]]
    assert [r["test_accuracy"] for r in again.rows] == [r["test_accuracy"] for r in result.rows]

    grid[1]["overrides"][LEARNING_RATE] = 0.03  # another sub-grid: another sweep
    other = xor_sweep(tmp_path, grid=grid, name="other")
    with pytest.raises(ConfigError, match="holds another sweep .*grid"):
        sweep.run_sweep(sweep.load_sweep(other), output=out, use_ray=False, progress=False)


def test_missing_data_files_stop_the_sweep_before_any_point_starts(tmp_path, count_training):
    base = REPO / "experiment_configs" / "sparse_coding_mnist.yaml"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": str(base), "grid": {"task.noise_std": [0, 0.8]},
                                    "overrides": {"data.data_dir": str(tmp_path / "nodata")}}))
    with pytest.raises(FileNotFoundError, match=r"s.yaml: point 000_noise_std=0: MNIST file "
                                                r"not found: .*nodata/mnist/t10k-images"):
        sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "out", use_ray=False)
    assert count_training == [] and not (tmp_path / "out").exists()


def test_resume_skips_complete_points_and_redoes_incomplete_ones(tmp_path, count_training):
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005, 0.01, 0.02]})
    out = tmp_path / "out"
    first = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    complete, incomplete, _ = (out / row["point"] for row in first.rows)
    (incomplete / "summary.yaml").unlink()  # as if killed before its summary
    (incomplete / "leftover.txt").write_text("from the killed run")
    (complete / "marker.txt").write_text("kept")
    complete_summary = (complete / "summary.yaml").read_text()
    count_training.clear()

    again = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert count_training == [incomplete.name]
    assert not (incomplete / "leftover.txt").exists() and (incomplete / "summary.yaml").is_file()
    assert (complete / "marker.txt").is_file()
    assert (complete / "summary.yaml").read_text() == complete_summary
    assert [r["status"] for r in again.rows] == ["ok"] * 3
    assert [r["test_accuracy"] for r in again.rows] == [r["test_accuracy"] for r in first.rows]

    count_training.clear()
    sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert count_training == []  # all complete: nothing to do

    other = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.5]})
    with pytest.raises(ConfigError, match="holds another sweep .*grid"):
        sweep.run_sweep(sweep.load_sweep(other), output=out, use_ray=False, progress=False)
    with pytest.raises(ConfigError, match="holds another sweep .*backend"):
        sweep.run_sweep(sweep.load_sweep(path), output=out, backend="torch", use_ray=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(FileExistsError, match="holds no sweep.yaml"):
        sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "busy", use_ray=False)


def test_a_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real_train = runs.train

    def train(config, backend="cpu", output=None, **kwargs):
        if config["training_params"]["learning_rate"] == 0.01:
            raise RuntimeError("diverged\nbadly")
        return real_train(config, backend, output=output, **kwargs)

    monkeypatch.setattr(runs, "train", train)
    out = tmp_path / "out"
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01, 0.005]})
    with pytest.raises(sweep.SweepFailed, match="1 of 2 sweep points failed "
                                                r"\(000_learning_rate=0.01; the first: "
                                                r"RuntimeError: diverged badly\)") as error:
        sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert error.value.summary_csv == out / "summary.csv"
    rows = read_csv(out / "summary.csv")
    assert [r["status"] for r in rows] == ["failed: RuntimeError: diverged badly", "ok"]
    assert rows[0]["test_accuracy"] == "" and rows[1]["test_accuracy"] != ""
    assert "RuntimeError: diverged" in (out / rows[0]["point"] / "error.txt").read_text()
    assert not (out / rows[0]["point"] / "summary.yaml").exists()

    monkeypatch.setattr(runs, "train", real_train)  # fixed: a re-run redoes only that point
    result = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert [r["status"] for r in result.rows] == ["ok", "ok"]
    assert not (out / rows[0]["point"] / "error.txt").exists()


def test_interrupt_keeps_finished_points(tmp_path, monkeypatch):
    real_train = runs.train

    def train(config, backend="cpu", output=None, **kwargs):
        if config["training_params"]["learning_rate"] == 0.01:
            Path(output).mkdir(parents=True)
            (Path(output) / "metrics.csv").write_text("epoch\n")
            raise KeyboardInterrupt
        return real_train(config, backend, output=output, **kwargs)

    monkeypatch.setattr(runs, "train", train)
    out = tmp_path / "out"
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005, 0.01, 0.02]})
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    rows = read_csv(out / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "interrupted", "interrupted"]
    assert (out / rows[0]["point"] / "summary.yaml").is_file()
    monkeypatch.setattr(runs, "train", real_train)
    result = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert [r["status"] for r in result.rows] == ["ok"] * 3


def test_without_ray_the_points_run_in_process_and_it_says_so_once(tmp_path, monkeypatch,
                                                                   caplog, count_training):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    caplog.set_level(logging.WARNING, logger="snnsim.sweep")
    result = sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path)), output=tmp_path / "out",
                             progress=False)
    assert len(count_training) == 2 and [r["status"] for r in result.rows] == ["ok", "ok"]
    warnings = [r.getMessage() for r in caplog.records if "Ray is not installed" in
                r.getMessage()]
    assert len(warnings) == 1 and "one after another in this process" in warnings[0]
    with pytest.raises(ImportError, match="asked to run on Ray"):
        sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path)), output=tmp_path / "o2",
                        use_ray=True)


def test_cli_run_prints_where_the_summary_is(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args([str(xor_sweep(tmp_path, grid={LEARNING_RATE: [0.01]})),
                              "--output", str(out), "--no-ray", "--quiet"])
    sweep.run(args)
    assert f"summary: {out / 'summary.csv'}" in capsys.readouterr().out


# --------------------------------------------------------------------------- the sweep's figures


def _sweep_folder(folder: Path, grid: dict, rows: list[dict], columns: dict | None = None):
    """A sweep folder as `experiment.py sweep` leaves it: sweep.yaml and summary.csv."""
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text(yaml.safe_dump({"base": {}, "grid": grid,
                                                       "columns": columns or {}}))
    header = list(dict.fromkeys(key for row in rows for key in row))
    with open(folder / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _lines(figure) -> dict[str, list[tuple[float, float]]]:
    (ax,) = figure.axes
    return {line.get_label(): list(zip(line.get_xdata(), line.get_ydata()))
            for line in ax.lines}


def test_primary_metric_against_each_numeric_grid_key(tmp_path):
    rows = [{"point": f"00{i}", "status": status, "lr": lr, "opt": opt,
             "primary_metric": "accuracy", "test_accuracy": acc}
            for i, (status, lr, opt, acc) in enumerate([
                ("ok", "0.001", "adam", "0.5"), ("ok", "0.1", "adam", "0.7"),
                ("ok", "0.01", "adam", "0.9"), ("ok", "0.001", "sgd", "0.4"),
                ("failed: boom", "0.01", "sgd", ""), ("ok", "0.1", "sgd", "0.6")])]
    folder = _sweep_folder(tmp_path / "s", {"lr": [], "opt": []}, rows, {"rate": "lr"})
    table = sweep.read_sweep_table(folder)
    assert table.grid == ["lr", "opt"] and len(table.complete) == 5
    assert sweep._numeric_grid_keys(table) == ["lr"]  # opt is not a number
    figures = sweep._draw_primary_against_grid(table)
    assert list(figures) == ["sweep_accuracy_vs_lr"]
    assert _lines(figures["sweep_accuracy_vs_lr"]) == {
        "opt=adam": [(0.001, 0.5), (0.01, 0.9), (0.1, 0.7)],
        "opt=sgd": [(0.001, 0.4), (0.1, 0.6)]}  # sorted by x, the failed point left out
    (ax,) = figures["sweep_accuracy_vs_lr"].axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "rate (lr)"
    assert ax.get_ylabel() == "test accuracy"


def test_figures_of_sub_grids_leave_out_the_points_without_the_key(tmp_path):
    rows = [{"point": f"00{i}", "status": "ok", "sigma": sigma, "mode": mode,
             "primary_metric": "loss", "test_loss": loss}
            for i, (sigma, mode, loss) in enumerate([
                ("0", "", "0.3"), ("0.8", "", "0.2"), ("10", "", "0.5"),
                ("0.8", "mask", "0.25"), ("", "subtract", "0.4")])]
    folder = _sweep_folder(tmp_path / "s", [{"sigma": []}, {"mode": [], "overrides": {}}],
                           rows)
    table = sweep.read_sweep_table(folder)
    assert table.grid == ["sigma", "mode"]
    assert sweep._numeric_grid_keys(table) == ["sigma"]
    figures = sweep._draw_primary_against_grid(table)
    assert _lines(figures["sweep_loss_vs_sigma"]) == {
        "mode unset": [(0.0, 0.3), (0.8, 0.2), (10.0, 0.5)], "mode=mask": [(0.8, 0.25)]}


@pytest.mark.parametrize("values, scale", [
    ([0.001, 0.01, 0.1], "log"), ([0, 0.05, 0.8, 10], "symlog"), ([1, 2, 3], "linear"),
    ([-1, 1, 100], "linear"), ([0, 5], "linear"), ([0, 1, 19], "linear")])
def test_x_scale(values, scale):
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.plot(values, values)
    sweep.set_x_scale(ax, values)
    assert ax.get_xscale() == scale
    if scale != "linear":
        assert list(ax.get_xticks()) == sorted(values)


def test_eval_of_a_sweep_folder_draws_the_sweep_figures(tmp_path, capsys):
    from snnsim import cli

    out = tmp_path / "out"
    sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005, 0.05]})),
                    output=out, use_ray=False, progress=False)
    assert cli.main(["eval", str(out)]) == 0
    assert f"plots: 1 files in {out / 'plots'}" in capsys.readouterr().out
    assert (out / "plots" / "sweep_accuracy_vs_learning_rate.png").stat().st_size > 1000
    assert cli.main(["eval", str(out), "--epoch", "1"]) == 1
    assert "is a sweep folder; give one point's folder" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda f: _sweep_folder(f, {"a": []}, [{"point": "000", "status": "pending", "a": "1"}]),
     r"has no complete point to plot yet \(status: pending\)"),
    (lambda f: _sweep_folder(f, {"a": []}, [{"name": "000", "a": "1"}]),
     "is not a sweep summary: it has no point and no status column"),
    (lambda f: (_sweep_folder(f, {"a": []}, []), (f / "summary.csv").unlink()),
     "holds sweep.yaml but no summary.csv"),
    (lambda f: (_sweep_folder(f, {"a": []}, []), (f / "summary.csv").write_text("point,status\n")),
     r"has no complete point to plot yet \(status: no points\)"),
    (lambda f: (f.mkdir(), (f / "sweep.yaml").write_text("[1, 2]")),
     "is not a sweep as `experiment.py sweep` stores it"),
    (lambda f: (f.mkdir(), (f / "sweep.yaml").write_text("grid: [{a: [1]}, 3]")),
     "is not a sweep as `experiment.py sweep` stores it"),
])
def test_eval_of_a_broken_sweep_folder_says_what_is_wrong(tmp_path, make, message):
    folder = tmp_path / "s"
    make(folder)
    assert sweep.is_sweep_folder(folder)
    with pytest.raises((ValueError, OSError), match=message):
        sweep.write_sweep_plots(folder)
    assert not (folder / "plots").exists()


# --------------------------------------------------------------------------- on Ray


def _import_ray():
    """Ray, or a skip where it is not installed; in CI (where the ray extra is installed)
    a missing Ray fails the test instead."""
    try:
        import ray
    except ImportError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Ray cannot be imported in CI ({error}); CI installs it with "
                        f"pip install -e \".[test,ray]\"")
        pytest.skip(f"Ray is not installed ({error}); pip install -e \".[ray]\"")
    return ray


@pytest.fixture(scope="module")
def local_ray():
    """One real local Ray instance (2 CPUs), started as the sweep starts its own, for the
    module's Ray tests."""
    ray = _import_ray()
    if not ray.is_initialized():
        sweep.init_ray(ray, workers=2)
    yield ray
    ray.shutdown()


def test_ray_sweep_runs_each_point_as_a_ray_task(tmp_path, local_ray, monkeypatch):
    remote_options = []
    real_remote = local_ray.remote

    def remote(*args, **kwargs):
        remote_options.append(kwargs)
        return real_remote(*args, **kwargs)

    monkeypatch.setattr(local_ray, "remote", remote)
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005, 0.01, 0.02]}, cpus_per_point=1)
    on_ray = sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "ray", use_ray=True,
                             progress=False)
    assert remote_options == [{"num_cpus": 1}]
    assert local_ray.is_initialized()  # not ours to shut down
    assert [r["status"] for r in on_ray.rows] == ["ok"] * 3
    assert all((tmp_path / "ray" / r["point"] / "summary.yaml").is_file() for r in on_ray.rows)

    # The same points in this process give the same numbers (seeded runs).
    in_process = sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "local",
                                 use_ray=False, progress=False)
    timings = ("final_epoch_seconds", "training_seconds")
    timeless = [{k: v for k, v in r.items() if k not in timings} for r in in_process.rows]
    assert [{k: v for k, v in r.items() if k not in timings} for r in on_ray.rows] == timeless


def test_ray_sweep_records_a_failed_point_and_resumes(tmp_path, local_ray):
    # 5 inputs for XOR's 4 features: the config passes its checks, training fails.
    path = xor_sweep(tmp_path, grid={"network_layout.n_inputs": [4, 5]})
    out = tmp_path / "out"
    for attempt in range(2):
        with pytest.raises(sweep.SweepFailed, match="1 of 2 sweep points failed "
                                                    r"\(001_n_inputs=5; the first: "
                                                    r"ValueError: "):
            sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=True, progress=False)
        rows = read_csv(out / "summary.csv")
        assert rows[0]["status"] == "ok" and rows[0]["test_accuracy"] != ""
        assert rows[1]["status"].startswith("failed: ValueError: "), rows[1]
        assert (out / rows[1]["point"] / "error.txt").is_file()
        if attempt == 0:
            (out / rows[0]["point"] / "marker.txt").write_text("kept")
    assert (out / rows[0]["point"] / "marker.txt").is_file()  # skipped on the second run


def test_ray_sweep_starts_and_stops_its_own_instance_when_none_runs(tmp_path, local_ray,
                                                                    monkeypatch):
    """The command line's case: no Ray running here, so the sweep starts a local instance
    (with `init_ray`, as the fixture did) and shuts it down at the end."""
    calls = []
    real_is_initialized = local_ray.is_initialized
    asked = []

    def is_initialized():  # the sweep's own question: no; Ray's internal ones: the truth
        asked.append(1)
        return False if len(asked) == 1 else real_is_initialized()

    monkeypatch.setattr(local_ray, "is_initialized", is_initialized)
    monkeypatch.setattr(local_ray, "init", lambda **kwargs: calls.append(("init", kwargs)))
    monkeypatch.setattr(local_ray, "shutdown", lambda: calls.append(("shutdown", {})))
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005]})
    with pytest.raises(ConfigError, match="cpus_per_point 3 is more than the 2 CPUs of the "
                                          "local Ray instance"):
        sweep.run_sweep(sweep.load_sweep(xor_sweep(tmp_path, name="big", cpus_per_point=3)),
                        output=tmp_path / "big", workers=2, progress=False)
    assert calls == []
    asked.clear()
    result = sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "out", workers=2,
                             progress=False)
    assert [r["status"] for r in result.rows] == ["ok"]
    assert calls == [("init", {"address": "local", "num_cpus": 2, "include_dashboard": False,
                               "logging_level": logging.WARNING}), ("shutdown", {})]
    calls.clear()
    asked.clear()
    sweep.run_sweep(sweep.load_sweep(path), output=tmp_path / "cluster",
                    ray_address="10.0.0.1:6379", progress=False)
    assert calls == [("init", {"address": "10.0.0.1:6379", "logging_level": logging.WARNING}),
                     ("shutdown", {})]


def test_ray_sweep_interrupted_cancels_points_in_flight_and_keeps_finished(tmp_path, local_ray,
                                                                           monkeypatch):
    # Last of the module: force-cancelling kills the two workers that ran the points.
    real_wait, real_cancel = local_ray.wait, local_ray.cancel
    waits, cancelled = [], []

    def wait(refs, num_returns=1, **kwargs):
        waits.append(len(refs))
        if len(waits) == 2:
            raise KeyboardInterrupt
        return real_wait(refs, num_returns=num_returns, **kwargs)

    def cancel(ref, **kwargs):
        cancelled.append(kwargs)
        return real_cancel(ref, **kwargs)

    monkeypatch.setattr(local_ray, "wait", wait)
    monkeypatch.setattr(local_ray, "cancel", cancel)
    path = xor_sweep(tmp_path, grid={LEARNING_RATE: [0.005, 0.01, 0.02, 0.04]})
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(sweep.load_sweep(path), output=out, workers=2, use_ray=True,
                        progress=False)
    rows = read_csv(out / "summary.csv")
    assert [r["status"] for r in rows].count("ok") == 1
    assert [r["status"] for r in rows].count("interrupted") == 3
    finished = next(r for r in rows if r["status"] == "ok")
    assert (out / finished["point"] / "summary.yaml").is_file()
    assert cancelled == [{"force": True}] * 2  # --workers 2: two in flight, one never sent
    assert local_ray.is_initialized()
    # Resuming (here in-process) trains only the three unfinished points.
    result = sweep.run_sweep(sweep.load_sweep(path), output=out, use_ray=False, progress=False)
    assert [r["status"] for r in result.rows] == ["ok"] * 4


def test_sweep_command_takes_a_shipped_sweep_by_name(monkeypatch, tmp_path: Path):
    """From any folder, `sweep linear_sweep.yaml` names the shipped sweep file."""
    import argparse

    from snnsim import resources

    monkeypatch.chdir(tmp_path)
    loaded = []

    def load_and_stop(path):
        loaded.append(Path(path))
        raise ConfigError("stop before running")

    monkeypatch.setattr(sweep, "load_sweep", load_and_stop)
    with pytest.raises(ConfigError, match="stop before running"):
        sweep.run(argparse.Namespace(sweep=Path("linear_sweep.yaml")))
    assert loaded == [resources.configs_dir() / "linear_sweep.yaml"]
