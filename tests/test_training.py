"""The training loop: bumping, noise, clipping, rounding, determinism, restore."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.config import load_config
from snnsim.datasets import Dataset
from snnsim.layers import RunSettings
from snnsim.training import Trainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    config = load_config(REPO / "experiment_configs" / "yin_yang_small.yaml")
    config["network_layout"]["layers"][0]["size"] = 10
    return config


def _tiny_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.random((n, 2))
    labels = (values[:, 0] > values[:, 1]).astype(np.int64)
    # Yin-Yang-like values (x, y, 1 - x, 1 - y): the config's encoding makes them times
    return Dataset("toy", "train", np.concatenate([values, 1 - values], 1), labels, 3)


def _trainer(config, **overrides):
    config = copy.deepcopy(config)
    config["training_params"].update(overrides)
    data = _tiny_data()
    return Trainer(config, "cpu", datasets={"train": data, "val": data, "test": data})


def test_same_seed_same_metrics(config):
    a, b = _trainer(config), _trainer(config)
    for _ in range(3):
        assert a.train_epoch() | {"epoch_seconds": 0} == b.train_epoch() | {"epoch_seconds": 0}
    assert torch.equal(a.network.layers[0].weight, b.network.layers[0].weight)


def test_restore_continues_identically(config):
    uninterrupted = _trainer(config)
    for _ in range(2):
        uninterrupted.train_epoch()
    snapshot = uninterrupted.checkpoint()
    expected = [uninterrupted.train_epoch() for _ in range(2)]
    resumed = _trainer(config)
    resumed.restore(snapshot)
    got = [resumed.train_epoch() for _ in range(2)]
    for e, g in zip(expected, got):
        assert e | {"epoch_seconds": 0} == g | {"epoch_seconds": 0}


# an epoch of bumps only steps the schedule without an optimiser step: no torch warning
@pytest.mark.filterwarnings("error::UserWarning")
def test_targeted_exponential_bumping(config):
    trainer = _trainer(config, batch_size=60)
    hidden = trainer.network.layers[0]
    with torch.no_grad():
        hidden.weight.fill_(-1.0)  # every hidden neuron silent
        hidden.weight[:, 0] = 3.0  # except neuron 0
    before = hidden.weight.detach().clone()
    value = config["training_params"]["weight_bumping_value"]
    trainer.train_epoch()
    delta = hidden.weight.detach() - before
    assert torch.all(delta[:, 0] == 0)
    assert torch.allclose(delta[:, 1:], torch.full_like(delta[:, 1:], value))
    trainer.train_epoch()
    delta = hidden.weight.detach() - before
    assert torch.allclose(delta[:, 1:], torch.full_like(delta[:, 1:], 3 * value))  # v + 2v
    assert trainer.history["bumps"] == [1, 1]
    assert math.isnan(trainer.history["train_loss"][0])  # no update happened


def test_noise_is_reflected_at_zero(config):
    trainer = _trainer(config, training_noise={"mean": 0.0, "std_dev": 5.0})
    times = torch.tensor([[0.1, math.inf, 1.0, 2.0]] * 1000, dtype=torch.float64)
    noisy = trainer._spike_noise(times)
    assert (noisy[:, [0, 2, 3]] >= 0).all() and torch.isinf(noisy[:, 1]).all()
    assert noisy[:, 0].std() > 1.0


def test_weight_clipping(config):
    trainer = _trainer(config, clip_weights_max=0.3)
    trainer.train_epoch()
    for layer in trainer.network.layers:
        assert layer.weight.abs().max() <= 0.3


def test_rounding_uses_rounded_weights_forward_and_float_weights_stay(config):
    trainer = _trainer(config, rounding_precision=0.25)
    layer = trainer.network.layers[0]
    t_in = trainer.network_inputs("train")[:5]
    out = layer(t_in, trainer.backends[0], trainer.settings)
    rounded = copy.deepcopy(layer)
    with torch.no_grad():
        rounded.weight.copy_(torch.round(layer.weight / 0.25) * 0.25)
    assert torch.equal(out, rounded(t_in, trainer.backends[0], RunSettings()))
    assert not torch.equal(layer.weight, rounded.weight)


def test_forward_integrator_option_is_close_to_exact(config):
    exact = _trainer(config)
    integrated = _trainer(config, use_forward_integrator=True, resolution=0.001, sim_time=6.0)
    a, b = exact.evaluate("val"), integrated.evaluate("val")
    both = np.isfinite(a.outputs) & np.isfinite(b.outputs)
    assert both.mean() > 0.9
    assert np.abs(a.outputs - b.outputs)[both].max() < 0.01
