"""The batch as one spike train: building it, cutting the reply, sample-boundary cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backends import cpu
from hw import ChipSession, HardwareConfig, SpikeTrain, build_train, cut_spikes

INF = np.inf


def test_build_train_offsets_samples_and_replicates_inputs():
    t_in = np.array([[0.5, INF], [1.0, 2.0]])
    labels = np.array([[512, 513], [514, -1]])
    train = build_train(t_in, labels, sample_gap=10.0, us_per_unit=6.0)
    np.testing.assert_allclose(train.times_us, [3.0, 3.0, 66.0, 66.0, 72.0])
    np.testing.assert_array_equal(train.ids, [512, 513, 512, 513, 514])
    assert (train.duration_us, train.sample_period_us, train.n_windows) == (120.0, 60.0, 2)


@pytest.mark.parametrize("seed", range(5))
def test_build_train_is_a_stable_sort_of_all_events_when_samples_overlap(seed):
    """Inputs later than the sample gap put a sample's events after the next sample's: the
    train is then the stable sort by time of the (sample, input, replica) sequence."""
    rng = np.random.default_rng(seed)
    t_in = rng.choice([0.5, 1.0, 2.5, 7.0, INF], size=(6, 5))  # ties, overlaps, silence
    labels = rng.integers(-1, 40, size=(5, 3))
    train = build_train(t_in, labels, sample_gap=3.0, us_per_unit=2.0)
    events = [((t_in[b, i] + 3.0 * b) * 2.0, labels[i, k]) for b in range(6) for i in range(5)
              for k in range(3) if np.isfinite(t_in[b, i]) and labels[i, k] >= 0]
    expected = sorted(events, key=lambda event: event[0])  # Python's sort is stable
    last = [np.max(np.where(np.isfinite(row), row, -INF)) + 3.0 * b for b, row in enumerate(t_in)]
    first = [np.min(row) + 3.0 * b for b, row in enumerate(t_in)]
    assert any(last[b] > first[b + 1] for b in range(5))  # the samples do overlap
    np.testing.assert_array_equal(train.times_us, [t for t, _ in expected])
    np.testing.assert_array_equal(train.ids, [label for _, label in expected])


def _sent(first_inputs_us, period_us=100.0):
    """A sent train with one event per window at the given local times."""
    times = np.array([w * period_us + t for w, t in enumerate(first_inputs_us)])
    return SpikeTrain(times, np.full(len(times), 600), len(times) * period_us, period_us)


def _reply(spikes, period_us=100.0, n_windows=3):
    spikes = sorted(spikes)
    return SpikeTrain(np.array([t for t, _ in spikes], dtype=float),
                      np.array([c for _, c in spikes], dtype=np.int64), n_windows * period_us,
                      period_us)


def test_cut_takes_the_first_spike_per_window():
    sent = _sent([1.0, 1.0, 1.0])
    reply = _reply([(10.0, 20), (12.0, 20), (150.0, 21), (130.0, 21), (250.0, 20)])
    t_out, counts = cut_spikes(reply, sent, np.array([20, 21]), us_per_unit=2.0)
    np.testing.assert_array_equal(t_out, [[5.0, INF], [INF, 15.0], [25.0, INF]])
    assert counts == {"boundary_spikes": 0, "discarded_spikes": 0, "stray_spikes": 0}


def test_late_spike_before_the_next_samples_first_input_goes_back():
    sent = _sent([1.0, 30.0, 5.0])
    reply = _reply([(120.0, 20),   # window 1 before its first input (130): sample 0's, late
                    (135.0, 20),   # sample 1's own spike
                    (110.0, 21),   # late too, but neuron 21 already fired in sample 0
                    (50.0, 21),
                    (203.0, 21),   # window 2 before its first input (205): sample 1's, late
                    (260.0, 20),   # after window 2's first input: window 2's (published rule)
                    (40.0, 7)])    # a neuron outside the layer
    t_out, counts = cut_spikes(reply, sent, np.array([20, 21]), us_per_unit=1.0)
    np.testing.assert_array_equal(t_out, [[120.0, 50.0], [35.0, 103.0], [60.0, INF]])
    assert counts == {"boundary_spikes": 2, "discarded_spikes": 1, "stray_spikes": 1}


def test_empty_reply():
    t_out, counts = cut_spikes(_reply([]), _sent([1.0, 2.0, 3.0]), np.array([3]), 6.0)
    assert np.isinf(t_out).all() and t_out.shape == (3, 1) and sum(counts.values()) == 0


def _single_neuron_session(**overrides) -> ChipSession:
    config = HardwareConfig(jitter=0.0, sample_gap=3.0, n_input_repetitions=3, **overrides)
    return ChipSession(config, [(1, 1)])


def _engine(session, t_in, w):
    return cpu.forward(t_in, session.effective_weights(0, w), session.neuron_params(0))


def test_samples_recovered_exactly_and_late_spikes_given_back():
    session = _single_neuron_session()
    w = torch.tensor([[2.0]], dtype=torch.float64)
    # sample 0's input comes late in its window, so its spike lands in window 1, before
    # sample 1's input; sample 2 is ordinary; sample 3 sends nothing
    t_in = torch.tensor([[2.8], [1.0], [0.2], [INF]], dtype=torch.float64)
    expected = torch.cat([_engine(session, t_in[b:b + 1], w) for b in range(4)])
    assert expected[0, 0] > 3.0 and torch.isfinite(expected[:3]).all()
    t_out = session.run_layer(0, t_in, w)
    torch.testing.assert_close(t_out, expected, rtol=0, atol=1e-12)
    assert session.stats["boundary_spikes"] == 1
    assert session.connection.stats["crossing_spikes"] == 1


def test_late_input_event_drives_the_next_sample():
    session = _single_neuron_session()
    w = torch.tensor([[2.0]], dtype=torch.float64)
    t_in = torch.tensor([[3.4], [INF]], dtype=torch.float64)  # sample 0's input after the gap
    t_out = session.run_layer(0, t_in, w)
    shifted = _engine(session, torch.tensor([[0.4]], dtype=torch.float64), w)
    # the chip sees the event in window 1: sample 1 "fires", sample 0 stays silent
    assert torch.isinf(t_out[0, 0])
    torch.testing.assert_close(t_out[1], shifted[0], rtol=0, atol=1e-12)
    assert session.stats["late_inputs"] == 1


@pytest.mark.parametrize("gap", [4.0, 30.0])
def test_batch_equals_samples_run_alone(gap):
    session = ChipSession(HardwareConfig(jitter=0.0, sample_gap=gap), [(5, 30)])
    generator = torch.Generator().manual_seed(3)
    t_in = 0.15 + 1.85 * torch.rand(25, 5, dtype=torch.float64, generator=generator)
    w = torch.empty(5, 30, dtype=torch.float64).normal_(0.4, 0.3, generator=generator)
    batch = session.run_layer(0, t_in, w)
    alone = torch.cat([session.run_layer(0, t_in[b:b + 1], w) for b in range(25)])
    assert torch.isfinite(batch).float().mean() > 0.3
    torch.testing.assert_close(batch, alone, rtol=0, atol=1e-11)
