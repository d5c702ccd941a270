"""A short hardware-in-the-loop training run on the mock chip beats chance by a clear margin."""
from __future__ import annotations

import torch

import snnsim
from hw import ChipSession, HardwareConfig
from snnsim.datasets import load_dataset

T_CORRECT, T_WRONG, BIAS_TIME = 1.9, 1.6, 0.9  # the published hardware MSE targets
HIDDEN = 30


def _forward(session, weights, t_in):
    x = t_in
    for index, w in enumerate(weights):
        if index == 0:
            x = torch.cat([x, torch.full((len(x), 1), BIAS_TIME, dtype=x.dtype)], 1)
        x = snnsim.first_spike_times(x, w, snnsim.NeuronParams(), session.layer_backend(index),
                                     max_dw_norm=0.2)
    return x


def _accuracy(t_out, labels) -> float:
    """Closest output to t_correct wins; a silent winner counts as wrong."""
    distance = (t_out - T_CORRECT).abs().nan_to_num(posinf=float("inf"))
    winner = distance.argmin(1)
    fired = torch.isfinite(t_out.gather(1, winner[:, None]))[:, 0]
    return float(((winner == labels) & fired).double().mean())


def test_in_the_loop_training_beats_chance():
    train, test = load_dataset("yin_yang", "train"), load_dataset("yin_yang", "test")
    x_train, y_train = torch.from_numpy(train.times[:1000]), torch.from_numpy(train.labels[:1000])
    x_test, y_test = torch.from_numpy(test.times[:500]), torch.from_numpy(test.labels[:500])
    session = ChipSession(HardwareConfig(seed=1), [(train.n_inputs + 1, HIDDEN),
                                                   (HIDDEN, train.n_classes)])
    generator = torch.Generator().manual_seed(0)
    weights = [
        torch.empty(train.n_inputs + 1, HIDDEN, dtype=torch.float64).normal_(
            0.3, 0.12, generator=generator).requires_grad_(),
        torch.empty(HIDDEN, train.n_classes, dtype=torch.float64).normal_(
            0.3, 0.15, generator=generator).requires_grad_(),
    ]
    optimizer = torch.optim.Adam(weights, lr=0.01)
    for _ in range(3):
        order = torch.randperm(len(y_train), generator=generator)
        for first in range(0, len(order), 40):
            idx = order[first:first + 40]
            t_out = _forward(session, weights, x_train[idx])
            target = torch.full_like(t_out, T_WRONG)
            target[torch.arange(len(idx)), y_train[idx]] = T_CORRECT
            fired = torch.isfinite(t_out)
            loss = torch.where(fired, (torch.where(fired, t_out, target) - target) ** 2, 0.0)
            optimizer.zero_grad()
            loss.mean().backward()
            optimizer.step()
            with torch.no_grad():
                for w in weights:
                    w.clamp_(-session.config.max_weight, session.config.max_weight)
    with torch.no_grad():
        accuracy = _accuracy(_forward(session, weights, x_test), y_test)
    assert accuracy > 0.6, f"test accuracy {accuracy:.3f} after in-the-loop training"
    assert session.stats["runs"] == 2 * (3 * 25 + 1) and session.stats["retries"] == 0
