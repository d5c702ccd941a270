"""HDF5 checkpoints: round trip, atomic writes, clear errors for bad files."""
import re

import h5py
import numpy as np
import pytest
import torch

from snnsim.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint


def _checkpoint() -> Checkpoint:
    parameter = torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    parameter.grad = torch.ones_like(parameter)
    optimizer.step()
    scheduler.step()
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)
    return Checkpoint(epoch=4, config={"dataset": "xor", "nested": {"a": [1, 2]}},
                      parameters={"layers.0.weight": parameter.detach().clone()},
                      optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                      rng={"torch": generator.get_state()},
                      metrics={"val_accuracy": np.array([0.5, 0.75])},
                      info={"backend": "cpu", "bump_value": 0.001})


def test_round_trip(tmp_path):
    original = _checkpoint()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.h5", original))
    assert loaded.epoch == 4 and loaded.config == original.config and loaded.info == original.info
    assert torch.equal(loaded.parameters["layers.0.weight"],
                       original.parameters["layers.0.weight"])
    assert torch.equal(loaded.rng["torch"], original.rng["torch"])
    np.testing.assert_array_equal(loaded.metrics["val_accuracy"], [0.5, 0.75])
    for key, value in original.optimizer["state"][0].items():
        assert torch.equal(loaded.optimizer["state"][0][key], torch.as_tensor(value))
    parameter = torch.nn.Parameter(torch.zeros(5, 3, dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=0.01)
    optimizer.load_state_dict(loaded.optimizer)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler.load_state_dict(loaded.scheduler)
    assert scheduler.last_epoch == 1


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    save_checkpoint(path, _checkpoint())
    before = path.read_bytes()
    broken = _checkpoint()
    broken.metrics = {"bad": object()}  # cannot be stored: the write fails midway
    with pytest.raises(TypeError):
        save_checkpoint(path, broken)
    assert path.read_bytes() == before
    assert not (tmp_path / "c.h5.tmp").exists()


def test_truncated_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.h5", _checkpoint())
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 100):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|damaged|incomplete"):
            load_checkpoint(path)


def test_foreign_and_missing_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(CheckpointError, match="not an snnsim checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not HDF5"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.h5")


def test_checkpoint_that_does_not_fit_its_config_names_the_folder(tmp_path):
    """A checkpoint whose parameters do not fit its config's network (edited or mixed up
    files) is a clear ValueError from every loader, not a torch RuntimeError."""
    from pathlib import Path

    from snnsim import runs
    from snnsim.config import load_config
    from snnsim.network import Network
    from snnsim.results import checkpoint_path

    config = load_config(Path(__file__).resolve().parents[1] / "experiment_configs" / "xor.yaml")
    parameters = dict(Network(config, torch.Generator().manual_seed(0)).state_dict())
    name = next(iter(parameters))
    parameters[name] = torch.zeros(parameters[name].shape[0] + 1, *parameters[name].shape[1:],
                                   dtype=parameters[name].dtype)
    results = tmp_path / "run"
    results.mkdir()
    save_checkpoint(checkpoint_path(results, 1), Checkpoint(epoch=1, config=config,
                                                            parameters=parameters))
    with pytest.raises(ValueError, match=rf"(?s){re.escape(str(results))}: checkpoint does not "
                                         rf"fit the network of its config.*{name}"):
        runs.load_network(results)
    with pytest.raises(ValueError, match=f"(?s)checkpoint does not fit the network.*{name}"):
        runs.load_trainer(results)
