"""Losses and class selection against direct computations of the published formulas."""
import math

import torch

from snnsim.tasks import MISSING_SPIKE_LOSS
from snnsim.tasks import SpikeTimeClassification as _SpikeTask

TTFS = {"type": "TTFS", "xi": 0.2, "alpha": 0.005, "beta": 1.0, "t_correct": 1.7, "t_wrong": 1.0}
MSE = dict(TTFS, type="MSE")


def SpikeTimeClassification(loss: dict, tau_syn: float, n_classes: int) -> _SpikeTask:
    """The task as a config with this loss and tau_syn builds it."""
    config = {"training_params": {"loss": loss}, "neuron_params": {"tau_syn": tau_syn}}
    return _SpikeTask({"type": "spike_classification"}, config)


def test_ttfs_loss_matches_formula():
    task = SpikeTimeClassification(TTFS, tau_syn=1.0, n_classes=3)
    t = torch.tensor([[1.0, 1.5, 2.0], [0.5, math.inf, 0.7]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    expected = []
    for row, y in zip(t.tolist(), labels.tolist()):
        finite = [v for v in row if math.isfinite(v)]
        lse = math.log(sum(math.exp(-v / 0.2) for v in finite))
        expected.append(lse + row[y] / 0.2 + 0.005 * math.exp(row[y] / 1.0))
    assert torch.allclose(task.per_sample_loss(t, labels),
                          torch.tensor(expected, dtype=torch.float64), rtol=1e-12)


def test_mse_loss_and_missing_spikes():
    task = SpikeTimeClassification(MSE, tau_syn=2.0, n_classes=2)
    t = torch.tensor([[3.0, 2.5], [math.inf, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    # targets are in units of tau_syn: t_correct = 3.4, t_wrong = 2.0
    first = 0.5 * ((3.0 - 3.4) ** 2 + (2.5 - 2.0) ** 2) / 2
    second = (MISSING_SPIKE_LOSS + 0.5 * (1.0 - 3.4) ** 2) / 2
    assert torch.allclose(task.per_sample_loss(t, labels),
                          torch.tensor([first, second], dtype=torch.float64))


def test_missing_label_spike_costs_fixed_loss_and_gradients_stay_finite():
    task = SpikeTimeClassification(TTFS, tau_syn=1.0, n_classes=3)
    t = torch.tensor([[math.inf, 1.0, 2.0], [math.inf] * 3], dtype=torch.float64,
                     requires_grad=True)
    loss = task.per_sample_loss(t, torch.tensor([0, 1]))
    assert loss.tolist() == [MISSING_SPIKE_LOSS, MISSING_SPIKE_LOSS]
    loss.sum().backward()
    assert torch.isfinite(t.grad).all()


def test_predictions():
    t = torch.tensor([[1.0, 0.5, 2.0], [math.inf, math.inf, math.inf], [1.6, 1.0, math.inf]],
                     dtype=torch.float64)
    assert SpikeTimeClassification(TTFS, 1.0, 3).predict(t).tolist() == [1, -1, 1]
    assert SpikeTimeClassification(MSE, 1.0, 3).predict(t).tolist() == [2, -1, 0]
