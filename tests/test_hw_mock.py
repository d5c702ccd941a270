"""The mock chip against the engine, its noise, faults and retries, the bss2 backend module."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
import yaml

import snnsim
from backends import BackendUnavailableError, cpu, get_backend
from calibration import default_calibration_path, file_sha256
from hw import ChipSession, HardwareConfig, HardwareError
from snnsim.params import GENERAL

SHAPES = [(5, 40), (40, 3)]
PARAMS = snnsim.NeuronParams()  # what a network passes; the chip ignores it


def _batch(n=30, seed=0):
    generator = torch.Generator().manual_seed(seed)
    t_in = 0.15 + 1.85 * torch.rand(n, 4, dtype=torch.float64, generator=generator)
    t_in = torch.cat([t_in, torch.full((n, 1), 0.9, dtype=torch.float64)], 1)
    w0 = torch.empty(SHAPES[0], dtype=torch.float64).normal_(0.3, 0.15, generator=generator)
    w1 = torch.empty(SHAPES[1], dtype=torch.float64).normal_(0.4, 0.3, generator=generator)
    return t_in, w0, w1


def _session(**overrides) -> ChipSession:
    return ChipSession(HardwareConfig(**{"jitter": 0.0, "backoff_s": 0.0, **overrides}), SHAPES)


def test_mock_matches_the_engine_with_the_chips_parameters():
    session = _session()
    t_in, w0, w1 = _batch()
    hidden = session.run_layer(0, t_in, w0)
    out = session.run_layer(1, hidden, w1)
    for index, (x, w, measured) in enumerate([(t_in, w0, hidden), (hidden, w1, out)]):
        params = session.neuron_params(index)
        assert params.regime == GENERAL and params.n_neurons == SHAPES[index][1]
        expected = cpu.forward(x, session.effective_weights(index, w), params)
        assert torch.equal(torch.isfinite(measured), torch.isfinite(expected))
        assert 0.3 < torch.isfinite(measured).double().mean() <= 1.0
        fired = torch.isfinite(expected)
        assert (measured[fired] - expected[fired]).abs().max() <= 1e-9
    assert session.stats["runs"] == 2 and session.stats["retries"] == 0


def test_per_neuron_parameters_come_from_the_calibration():
    session = _session()
    params = session.neuron_params(1)
    circuits = session.mapping.layers[1].circuits
    np.testing.assert_allclose(params.tau_mem,
                               session.calibration.neurons["tau_mem"][circuits] / 6.0)
    assert np.ptp(params.tau_mem) > 0 and np.ptp(params.threshold) > 0


def test_jitter_is_seeded_and_of_the_configured_size():
    t_in, w0, _ = _batch(200)
    exact = _session().run_layer(0, t_in, w0)
    a = _session(jitter=0.05, seed=1).run_layer(0, t_in, w0)
    b = _session(jitter=0.05, seed=1).run_layer(0, t_in, w0)
    c = _session(jitter=0.05, seed=2).run_layer(0, t_in, w0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    fired = torch.isfinite(exact)
    assert torch.equal(torch.isfinite(a), fired)
    assert 0.045 < float((a - exact)[fired].std()) < 0.055


def test_dropped_spikes_are_counted():
    t_in, w0, _ = _batch(200)
    exact = _session().run_layer(0, t_in, w0)
    session = _session(drop_probability=0.3)
    lossy = session.run_layer(0, t_in, w0)
    lost = int((torch.isfinite(exact) & ~torch.isfinite(lossy)).sum())
    assert lost == session.connection.stats["dropped_spikes"] == session.stats["dropped_spikes"]
    assert 0.25 < lost / int(torch.isfinite(exact).sum()) < 0.35


def test_faults_are_retried_and_logged(caplog):
    t_in, w0, _ = _batch()
    expected = _session().run_layer(0, t_in, w0)
    session = _session(retries=3)
    session.connection.inject_faults("stall", "truncate", "corrupt")
    with caplog.at_level(logging.WARNING, logger="snnsim.hw"):
        measured = session.run_layer(0, t_in, w0)
    torch.testing.assert_close(measured, expected, rtol=0, atol=0)
    assert session.stats["retries"] == 3 and session.connection.stats["runs"] == 4
    messages = [r.getMessage() for r in caplog.records if r.name == "snnsim.hw"]
    assert len(messages) == 3
    for message, kind in zip(messages, ("RunTimeout", "TruncatedReply", "CorruptReply")):
        assert kind in message and "retry" in message and session.chip_id in message


def test_retries_exhausted_raise_a_clear_error():
    t_in, w0, _ = _batch()
    session = _session(retries=2)
    session.connection.inject_faults("stall", "truncate", "stall")
    with pytest.raises(HardwareError, match=r"run of layer 0 \(30 samples\) on chip mock-chip-a "
                                            r"failed 3 times; last error: .*injected stall"):
        session.run_layer(0, t_in, w0)
    assert session.stats["retries"] == 2


def test_real_connection_says_what_to_install():
    with pytest.raises(BackendUnavailableError, match=r"hxtorch.*not on PyPI.*connection: mock"):
        ChipSession(HardwareConfig(connection="real"), SHAPES)


def test_backward_is_the_chips_model_at_the_measured_times():
    session = _session(jitter=0.02)
    t_in, w0, _ = _batch()
    w = w0.clone().requires_grad_()
    x = t_in.clone().requires_grad_()
    out = snnsim.first_spike_times(x, w, PARAMS, session.layer_backend(0), max_dw_norm=0.2)
    grad_out = torch.where(torch.isfinite(out), 1.0, 0.0)
    (out.nan_to_num(posinf=0.0) * grad_out).sum().backward()
    grad_x, grad_w_chip = cpu.backward(t_in, session.effective_weights(0, w0), out.detach(),
                                       grad_out, session.neuron_params(0), 0.2)
    multiplier = torch.from_numpy(session.weight_multiplier(0))
    torch.testing.assert_close(x.grad, grad_x)
    torch.testing.assert_close(w.grad, grad_w_chip * multiplier)
    assert w.grad.abs().sum() > 0 and torch.isfinite(w.grad).all()


def test_bss2_backend_module_runs_standalone():
    assert get_backend("bss2").__name__ == "hw.backend"
    t_in, w0, _ = _batch()
    w = w0.clone().requires_grad_()
    out = snnsim.first_spike_times(t_in, w, PARAMS, backend="bss2")
    again = snnsim.first_spike_times(t_in, w0, PARAMS, backend="bss2")
    assert torch.equal(out.detach(), again)  # a fresh, identically seeded chip per call
    assert torch.isfinite(out).any()
    out.nan_to_num(posinf=0.0).sum().backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    session = ChipSession(HardwareConfig(), [tuple(w0.shape)])
    assert torch.equal(again, session.run_layer(0, t_in, w0))
    single = snnsim.first_spike_times(t_in.float(), w0.float(), PARAMS, backend="bss2")
    assert single.dtype == torch.float32 and torch.equal(torch.isfinite(single), torch.isfinite(out))


def test_describe_and_state(tmp_path):
    session = _session(jitter=0.02, seed=5)
    t_in, w0, _ = _batch()
    described = session.describe()
    json.dumps(described)  # plain data, ready for a checkpoint
    assert described["chip_id"] == "mock-chip-a" and described["connection"] == "mock"
    assert described["calibration"]["sha256"] == file_sha256(default_calibration_path())
    assert described["mapping"]["rows_used_per_hemisphere"] == [50, 80]
    state = session.state_dict()
    first = session.run_layer(0, t_in, w0)
    session.load_state_dict(state)
    assert torch.equal(session.run_layer(0, t_in, w0), first)


def test_dry_run_export(tmp_path):
    session = _session()
    t_in, w0, w1 = _batch(3)
    path = session.export(tmp_path / "chip.yaml", [w0, w1], t_in)
    document = yaml.safe_load(path.read_text())
    assert document["chip_id"] == "mock-chip-a"
    assert len(document["synapse_rows"]) == 50 + 80
    row = document["synapse_rows"][0]
    assert row["sign"] == "excitatory" and all(0 <= v <= 63 for v in row["synapses"].values())
    layer0 = document["layers"][0]
    assert len(layer0["sources"][0]["replicas"]) == 5 and layer0["circuits"][:2] == [0, 1]
    np.testing.assert_array_equal(layer0["weights_6bit_signed"], torch.round(w0 * 30).numpy())
    assert len(document["spike_train_layer_0"]["events_time_us_label"]) == 3 * 5 * 5
    assert session.connection.stats["runs"] == 0  # nothing ran
