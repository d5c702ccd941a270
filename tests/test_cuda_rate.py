"""The rate core and the model families on `--backend cuda` (network and batches on the GPU).

Every registered task's example run trains on the GPU and on the CPU from the same seed;
in float64 the two agree to rounding (the GPU's reductions sum in another order), and a
checkpoint written on the GPU loads on the CPU. Skipped where no CUDA device is visible.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_conformance import example_config

from snnsim.config import resolve_config
from snnsim.registry import TASKS, load_families
from snnsim.training import Trainer

load_families()
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device is visible")
EPOCHS = 2


def _run(config: dict, backend: str) -> tuple[list[dict], dict]:
    trainer = Trainer(config, backend)
    history = [{k: v for k, v in trainer.train_epoch().items() if k != "epoch_seconds"}
               for _ in range(EPOCHS)]
    state = {k: v.detach().cpu() for k, v in trainer.network.state_dict().items()}
    return history, state


@pytest.mark.parametrize("task", TASKS.names())
def test_task_trains_alike_on_gpu_and_cpu(task: str, shared_data: Path,
                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    config = resolve_config(example_config(task))
    gpu_history, gpu_state = _run(config, "cuda")
    cpu_history, cpu_state = _run(config, "cpu")
    for gpu_epoch, cpu_epoch in zip(gpu_history, cpu_history):
        assert gpu_epoch.keys() == cpu_epoch.keys()
        for name, value in cpu_epoch.items():
            assert np.isclose(gpu_epoch[name], value, rtol=1e-6, atol=1e-9), \
                (name, gpu_epoch[name], value)
    for name, value in cpu_state.items():
        assert gpu_state[name].dtype == value.dtype, name
        if value.is_floating_point():
            torch.testing.assert_close(gpu_state[name], value, rtol=1e-6, atol=1e-9, msg=name)
        else:
            assert torch.equal(gpu_state[name], value), name


def test_gpu_checkpoint_loads_on_cpu(shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    config = resolve_config(example_config("classification"))
    trainer = Trainer(config, "cuda")
    trainer.train_epoch()
    on_cpu = Trainer(config, "cpu")
    on_cpu.restore(trainer.checkpoint())
    gpu, cpu = trainer.evaluate("test"), on_cpu.evaluate("test")
    for name, value in cpu.metrics.items():
        assert np.isclose(gpu.metrics[name], value, rtol=1e-6), name
