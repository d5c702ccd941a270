"""HDF5 checkpoints: round trip, atomic writes, clear errors for bad files."""
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
