"""Every registered layer type, task and data set against the contracts of the rate core.

Parametrised over the registries, so that a model family's parts are checked here
without new test code: build, shapes, gradients, checkpoint round trip, determinism
from the seed, and a short run of each task that continues identically from a
checkpoint.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.checkpoint import load_checkpoint, save_checkpoint
from snnsim.config import resolve_config
from snnsim.datasets import SPLITS, load_dataset
from snnsim.layers import LayerContext, RunSettings, TorchRate, build_layer
from snnsim.network import neuron_params_from_config
from snnsim.registry import DATASETS, LAYERS, TASKS
from snnsim.training import Trainer

BATCH, N_INPUTS = 7, 5
TRAINING = {"epoch_number": 3, "batch_size": 16, "batch_size_eval": 64, "learning_rate": 0.01,
            "torch_seed": 11}


def _layer(name: str, seed: int = 0):
    layer_type = LAYERS.get(name)
    config = resolve_config({"dataset": "yin_yang" if layer_type.kind == "spiking" else "sine",
                             "network_layout": {"n_inputs": N_INPUTS,
                                                "layers": [layer_type.example_entry]},
                             "training_params": {"epoch_number": 1}})
    entry = config["network_layout"]["layers"][0]
    context = LayerContext(neuron_params_from_config(config), torch.Generator().manual_seed(seed))
    return build_layer(N_INPUTS, entry, context)


def _layer_input(layer, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if layer.spiking:
        return 0.15 + 1.85 * torch.rand(BATCH, N_INPUTS, generator=generator,
                                        dtype=torch.float64)
    return torch.randn(BATCH, N_INPUTS, generator=generator, dtype=torch.float64)


def _backend(layer):
    return "cpu" if layer.spiking else TorchRate()


@pytest.mark.parametrize("name", LAYERS.names())
def test_layer_contract(name: str, tmp_path: Path):
    layer = _layer(name)
    assert layer.type_name == name and layer.kind in ("spiking", "rate")
    assert set(layer.example_entry) <= set(layer.config_fields)
    x = _layer_input(layer).requires_grad_(True)
    out = layer(x, _backend(layer), RunSettings())
    assert out.shape == (BATCH, layer.output_size)
    finite = torch.isfinite(out)
    assert finite.any(), "the example entry should give some finite outputs"
    # gradients reach the input and every parameter
    out[finite].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for parameter_name, parameter in layer.named_parameters():
        assert parameter.grad is not None, parameter_name
    # the same seed builds the same layer; another seed another one (if it draws any)
    same, other = _layer(name, seed=0), _layer(name, seed=5)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, same.state_dict()[key])
    if layer.random_init:
        assert any(not torch.equal(v, other.state_dict()[k])
                   for k, v in layer.state_dict().items()
                   if v.is_floating_point() and v.numel() > 1)
    # a checkpoint round trip restores the layer's outputs exactly
    from snnsim.checkpoint import Checkpoint

    path = save_checkpoint(tmp_path / "layer.h5", Checkpoint(
        epoch=0, config={}, parameters=dict(layer.state_dict())))
    other.load_state_dict(load_checkpoint(path).parameters)
    with torch.no_grad():
        again = other(x.detach(), _backend(other), RunSettings())
    assert torch.equal(torch.nan_to_num(again, posinf=-1.0),
                       torch.nan_to_num(out.detach(), posinf=-1.0))


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_contract(name: str, shared_data: Path):
    spec = DATASETS.get(name)
    options = {"data_dir": str(shared_data)} if "data_dir" in spec.fields else {}
    loaded = {}
    for split in SPLITS:
        if "data_dir" in spec.fields and not (shared_data / "mnist" / "train-images-idx3-ubyte.gz"
                                               ).exists() and name in ("mnist", "16x16_mnist") \
                and split != "test":
            continue  # only the t10k files ship with the tests
        data = load_dataset(name, split, options=options)
        assert data.split == split and len(data) > 0
        assert data.inputs.dtype == np.float64 and np.isfinite(data.inputs).all()
        if data.n_classes is not None:
            assert data.targets.dtype == np.int64
            assert 0 <= data.targets.min() and data.targets.max() < data.n_classes
        if spec.encoding is not None:
            times = data.times
            assert times.shape == (len(data), data.n_inputs)
            assert not np.isnan(times).any() and np.all(times >= 0)
        again = load_dataset(name, split, options=options)
        assert np.array_equal(data.inputs, again.inputs)  # determinism from the seed
        loaded[split] = data
    assert loaded, "no split could be loaded"


def example_config(task: str) -> dict:
    """A task's registered example run, with the short training of these tests."""
    task_type = TASKS.get(task)
    raw = copy.deepcopy(task_type.example)
    raw["task"] = {"type": task}
    raw["training_params"] = {**TRAINING, **raw.get("training_params", {})}
    return raw


def _strip_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "epoch_seconds"}


@pytest.mark.parametrize("task", TASKS.names())
def test_task_contract_and_continue(task: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNSIM_DATA_DIR", str(shared_data))
    config = resolve_config(example_config(task))
    uninterrupted = Trainer(config, "cpu")
    assert uninterrupted.task.primary_metric in uninterrupted.task.metric_names
    first = uninterrupted.train_epoch()
    for name in uninterrupted.task.metric_names:
        assert np.isfinite(first[f"train_{name}"]) and np.isfinite(first[f"val_{name}"])
    snapshot = uninterrupted.checkpoint()
    expected = [_strip_time(uninterrupted.train_epoch()) for _ in range(2)]
    resumed = Trainer(config, "cpu")
    resumed.restore(snapshot)
    assert [_strip_time(resumed.train_epoch()) for _ in range(2)] == expected
    for key, value in uninterrupted.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key])
    assert list(resumed.history) == list(uninterrupted.history)
    evaluation = resumed.evaluate("test")
    assert evaluation.metrics == uninterrupted.evaluate("test").metrics  # reproducible
    assert len(evaluation.outputs) == len(resumed.dataset("test"))
