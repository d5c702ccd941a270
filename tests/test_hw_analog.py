"""The analog matrix-multiply mode: chip arithmetic, float mapping, noise, gradients, files."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from backends import BackendUnavailableError
from calibration import (
    DEFAULT_ANALOG,
    SHIPPED_CHIPS,
    CalibrationError,
    default_calibration_path,
    generate_mock_calibration,
    load_calibration,
    shipped_calibration_path,
)
from calibration.mock import ANALOG_GAIN_RANGE, ANALOG_NOISE_RANGE
from hw import AnalogSession, HardwareConfig, MappingError, MockAnalogConnection, chip_mac
from hw.analog import circuits, n_blocks

OLD_CALIBRATION = Path(__file__).resolve().parent / "data" / "old_calibration" / "mock_chip_a_v1.h5"


def _config(tmp_path=None, calibration=None, **analog) -> HardwareConfig:
    hardware = {"analog": analog}
    if calibration is not None:
        hardware["calibration"] = str(calibration)
    return HardwareConfig.from_dict(hardware)


def _layer(n=300, m=20, batch=16, seed=0, x_scale=1.0, w_scale=0.05):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, n, dtype=torch.float64, generator=g) * x_scale
    w = torch.randn(n, m, dtype=torch.float64, generator=g) * w_scale
    b = torch.randn(m, dtype=torch.float64, generator=g) * 0.1
    return x, w, b


def reference_mac(x_int, w_int, gain, noise, num_sends):
    """hxtorch's mock MAC in plain numpy integers, one block of 128 rows at a time.

    x_int [B, N], w_int [N, M] integers; gain [K, M]; noise [K, B, M] (ADC steps)."""
    x_int = np.asarray(x_int, dtype=np.int64)
    w_int = np.asarray(w_int, dtype=np.int64)
    batch, n = x_int.shape
    total = np.zeros((batch, w_int.shape[1]), dtype=np.int64)
    saturated = 0
    for k, start in enumerate(range(0, n, 128)):
        partial = x_int[:, start:start + 128] @ w_int[start:start + 128]   # exact integers
        v = partial * (gain[k] * num_sends) + noise[k]
        readout = np.floor(v).astype(np.int64)
        saturated += int(((readout < -128) | (readout > 127)).sum())
        total += np.clip(readout, -128, 127)
    saturated_sum = int(((total < -128) | (total > 127)).sum())
    return np.clip(total, -128, 127), saturated, saturated_sum


# -- the chip's integer arithmetic ------------------------------------------------------------

@pytest.mark.parametrize("n, gain_scale", [(100, 1.0), (128, 1.0), (300, 1.0), (784, 1.0),
                                           (300, 20.0)])
def test_chip_mac_is_hxtorchs_block_model(n, gain_scale):
    rng = np.random.default_rng(n)
    m, batch = 37, 25
    k = math.ceil(n / 128)
    x_int = rng.integers(0, 32, (batch, n))
    w_int = rng.integers(-63, 64, (n, m))
    gain = rng.uniform(0.8e-3, 1.6e-3, (k, m)) * gain_scale
    noise = 2.0 * rng.standard_normal((k, batch, m))
    expected, saturated, saturated_sum = reference_mac(x_int, w_int, gain, noise, 3)
    a, counts = chip_mac(torch.tensor(x_int, dtype=torch.float64),
                         torch.tensor(w_int, dtype=torch.float64), torch.from_numpy(gain), 3,
                         torch.from_numpy(noise))
    np.testing.assert_array_equal(a.numpy(), expected)
    assert counts == {"saturated_readouts": saturated, "saturated_outputs": saturated_sum}
    if gain_scale > 1:
        assert saturated > 0 and saturated_sum > 0
    assert a.min() >= -128 and a.max() <= 127


def test_circuits_alternate_hemispheres_and_wrap_columns():
    c = circuits(300, 600)
    assert c.shape == (3, 600) == (n_blocks(300), 600)
    assert (c[0, :3] == [0, 1, 2]).all() and (c[1, :3] == [256, 257, 258]).all()
    assert (c[2] == c[0]).all() and c[0, 256] == 0 and c[1, 511] == 511
    assert n_blocks(1) == 1 and n_blocks(128) == 1 and n_blocks(129) == 2 and n_blocks(784) == 7


def test_session_forward_is_the_reference_with_the_sessions_noise():
    """End to end: float mapping, calibrated column gains and noise, the session's generator."""
    config = _config(input_max=1.0, weight_max=0.2, num_sends=3)
    session = AnalogSession(config, seed=5)
    x, w, b = _layer()
    y = session.linear_backend(0).linear(x, w, b)

    cal = load_calibration(config.calibration)
    c = circuits(300, 20)
    gain, noise_std = cal.analog["gain"][c], cal.analog["noise_std"][c]
    z = np.random.default_rng(5).standard_normal((3, 16, 20))
    s_in, s_w = 31.0, 63 / 0.2
    x_int = np.round(np.clip(x.numpy() * s_in, 0, 31))
    w_int = np.round(np.clip(w.numpy() * s_w, -63, 63))
    a, _, _ = reference_mac(x_int, w_int, gain, z * noise_std[:, None, :], 3)
    rows = np.array([128, 128, 44])
    mean_gain = (rows[:, None] * gain).sum(0) / 300
    expected = a / (s_in * s_w * 3 * mean_gain) + b.numpy()
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


# -- the float mapping -------------------------------------------------------------------------

def test_noise_free_chip_is_the_quantised_layer_up_to_the_adc_floor():
    """y_chip - (x_q (W_q * R) + b) lies in (-K / c_j, 0]: each block's ADC floors once."""
    session = AnalogSession(_config(input_max=2.0, weight_max=0.25, num_sends=2,
                                    noise_scale=0.0), seed=0)
    backend = session.linear_backend(0)
    x, w, b = _layer(n=700, m=30, x_scale=2.0)
    y = backend.linear(x, w, b).detach()
    x_int, w_int, _ = backend.quantize(x, w)
    mean_gain, ratio = session.gain_ratio(700, 30)
    s_in, s_w = 31 / 2.0, 63 / 0.25
    exact = (x_int / s_in) @ ((w_int / s_w) * ratio) + b
    lsb = 1.0 / (s_in * s_w * 2 * mean_gain)                 # one ADC step in float units
    difference = y - exact
    assert (difference <= 1e-12).all()
    assert (difference > -n_blocks(700) * lsb - 1e-12).all()
    assert session.stats["saturated_outputs"] == 0
    # and close to the float layer itself: the floors, rounding and per-block gains apart
    assert (y - (x @ w + b)).abs().max() < n_blocks(700) * lsb.max() + 0.2


def test_inputs_and_weights_are_clamped_and_counted(caplog):
    session = AnalogSession(_config(input_max=1.0, weight_max=0.1), seed=0)
    backend = session.linear_backend(0)
    x = torch.tensor([[0.5, 1.7, -0.3, 1.0], [2.0, 0.0, 0.2, -1.0]], dtype=torch.float64)
    w = torch.tensor([[0.05], [0.2], [-0.3], [0.1]], dtype=torch.float64)
    with caplog.at_level(logging.WARNING, logger="snnsim.hw"):
        x_int, w_int, counts = backend.quantize(x, w)
        backend.quantize(x, w)
    assert x_int.tolist() == [[16.0, 31.0, 0.0, 31.0], [31.0, 0.0, 6.0, 0.0]]
    assert w_int.flatten().tolist() == [32.0, 63.0, -63.0, 63.0]
    assert counts == {"clipped_inputs": 2, "negative_inputs": 2, "clipped_weights": 2}
    assert sum("negative inputs" in r.message for r in caplog.records) == 1  # warned once
    backend.linear(x, w, None)
    stats = session.stats
    assert (stats["clipped_inputs"], stats["negative_inputs"], stats["clipped_weights"]) == (2, 2, 2)
    assert (stats["inputs"], stats["weights"], stats["outputs"], stats["readouts"]) == (8, 4, 2, 2)


def test_overflow_error_names_layer_value_and_range():
    session = AnalogSession(_config(input_max=1.0, weight_max=0.1, overflow="error"), seed=0)
    backend = session.linear_backend(2)
    w = torch.full((3, 2), 0.05, dtype=torch.float64)
    with pytest.raises(MappingError, match=r"chip layer 2: input x\[0, 1\] = 1.5 is outside "
                                           r"\[0, input_max = 1\]"):
        backend.linear(torch.tensor([[0.1, 1.5, 0.0]], dtype=torch.float64), w)
    with pytest.raises(MappingError, match=r"input x\[0, 0\] = -0.1"):
        backend.linear(torch.tensor([[-0.1, 0.5, 0.0]], dtype=torch.float64), w)
    w[2, 1] = -0.2
    with pytest.raises(MappingError, match=r"weight w\[2, 1\] = -0.2 is outside "
                                           r"\+-weight_max = 0.1 \(1 weights are"):
        backend.linear(torch.full((1, 3), 0.5, dtype=torch.float64), w)
    assert session.stats["runs"] == 0


def test_saturation_is_counted_and_bounds_the_output():
    session = AnalogSession(_config(input_max=1.0, weight_max=0.05, num_sends=8), seed=0)
    x = torch.ones(4, 256, dtype=torch.float64)
    w = torch.full((256, 3), 0.05, dtype=torch.float64)
    y = session.linear_backend(0).linear(x, w).detach()
    mean_gain, _ = session.gain_ratio(256, 3)
    assert torch.allclose(y, 127 / (31 * 63 / 0.05 * 8 * mean_gain.expand(4, 3)))
    stats = session.stats
    assert stats["saturated_readouts"] == stats["readouts"] == 4 * 2 * 3
    assert stats["saturated_outputs"] == stats["outputs"] == 12


# -- noise -------------------------------------------------------------------------------------

def test_noise_has_the_calibrated_std_per_column_and_is_independent_per_block():
    cal = load_calibration(default_calibration_path())
    rng = np.random.default_rng(3)
    mock = MockAnalogConnection(cal, noise_scale=1.0, rng=rng)
    batch, m = 4000, 256
    x = torch.zeros(batch, 256, dtype=torch.float64)        # two blocks, no signal
    a, _ = mock.mac(x, torch.zeros(256, m, dtype=torch.float64), 1)
    a = a.numpy()
    c = circuits(256, m)
    expected_var = (cal.analog["noise_std"][c] ** 2).sum(0) + 2 / 12   # two floors
    ratio = a.var(0) / expected_var
    assert abs(ratio.mean() - 1) < 0.01                    # 256 columns x 4000 samples
    assert np.abs(ratio - 1).max() < 0.15
    assert abs(a.mean() + 1.0) < 0.02                      # floor: -1/2 per block
    # per-column differences are resolved: noisy columns measure noisier
    measured = np.sqrt(a.var(0))
    assert np.corrcoef(measured, np.sqrt(expected_var))[0, 1] > 0.8
    # noise_scale multiplies it, 0 switches it off (and draws nothing)
    state = rng.bit_generator.state
    quiet = MockAnalogConnection(cal, noise_scale=0.0, rng=rng)
    a0, _ = quiet.mac(x, torch.zeros(256, m, dtype=torch.float64), 1)
    assert (a0 == 0).all() and rng.bit_generator.state == state


def test_noise_averages_out_to_the_noise_free_output():
    x, w, b = _layer(n=200, m=10, batch=1)
    xs = x.expand(3000, -1)
    noisy = AnalogSession(_config(weight_max=0.2, num_sends=2), seed=1).linear_backend(0)
    quiet = AnalogSession(_config(weight_max=0.2, num_sends=2, noise_scale=0.0),
                          seed=1).linear_backend(0)
    y_noisy = noisy.linear(xs, w, b).detach()
    mean_gain, ratio = noisy.session.gain_ratio(200, 10)
    x_int, w_int, _ = noisy.quantize(x, w)
    exact = (x_int / 31) @ ((w_int / (63 / 0.2)) * ratio) + b
    lsb = 1 / (31 * 63 / 0.2 * 2 * mean_gain)
    # the floor of a noisy value averages to value - 1/2 per block (noise >> 1 step)
    assert torch.allclose(y_noisy.mean(0), exact[0] - n_blocks(200) * lsb / 2,
                          atol=0.15 * float(lsb.max()))
    assert y_noisy.std(0).min() > 0 and quiet.linear(xs, w, b).std(0).max() == 0


# -- gradients ---------------------------------------------------------------------------------

def test_backward_is_the_straight_through_formula():
    session = AnalogSession(_config(input_max=1.0, weight_max=0.2), seed=0)
    backend = session.linear_backend(0)
    x, w, b = _layer(n=300, m=12, batch=9)
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)
    g = torch.randn(9, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    backend.linear(x, w, b).backward(g)
    _, ratio = session.gain_ratio(300, 12)
    with torch.no_grad():
        torch.testing.assert_close(x.grad, g @ (w * ratio).T, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(w.grad, (x.T @ g) * ratio, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(b.grad, g.sum(0), rtol=1e-13, atol=1e-13)
    # the ratio R = G[k(i), j] / g_j: columns differ, rows of one block share it
    assert not torch.allclose(ratio, torch.ones_like(ratio))
    assert torch.equal(ratio[0], ratio[127]) and not torch.equal(ratio[0], ratio[128])
    torch.testing.assert_close(ratio.mean(0), torch.ones(12, dtype=torch.float64))  # g_j: mean


def _saturating_layer():
    """A one-block layer whose columns 0-2 saturate (high, high, low) and some inputs clip."""
    x, w, b = _layer(n=100, m=8, batch=9, seed=3, x_scale=1.3, w_scale=0.02)
    w[:, :2] = 0.2
    w[:, 2] = -0.2
    return x, w, b


@pytest.mark.parametrize("mode", ["cancel", "pass"])
def test_backward_formula_where_the_chip_saturates(mode):
    session = AnalogSession(_config(input_max=1.0, weight_max=0.2, num_sends=8,
                                    saturation_gradient=mode), seed=0)
    backend = session.linear_backend(0)
    x, w, b = (t.requires_grad_(True) for t in _saturating_layer())
    g = torch.randn(9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = backend.linear(x, w, b)
    y.backward(g)
    with torch.no_grad():
        a = torch.round((y - b) * backend.output_scale(w))
        rail = (a <= -128) | (a >= 127)
        assert rail[:, :3].all() and not rail[:, 3:].any()
        clipped = x > 1.0
        assert clipped.any() and session.stats["clipped_inputs"] == int(clipped.sum())
        _, ratio = session.gain_ratio(100, 8)
        if mode == "cancel":
            g_in = g.masked_fill(rail, 0.0)
            expected_x = (g_in @ (w * ratio).T) * ~clipped
            expected_w = (x.clamp(0, 1).T @ g_in) * ratio
        else:
            expected_x, expected_w = g @ (w * ratio).T, (x.T @ g) * ratio
        torch.testing.assert_close(x.grad, expected_x, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(w.grad, expected_w, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(b.grad, g.sum(0), rtol=1e-13, atol=1e-13)


def test_cancelled_gradient_is_the_ideal_models_at_saturation():
    config = _config(input_max=1.0, weight_max=0.2, num_sends=8, noise_scale=0.0)
    session = AnalogSession(config, seed=0)
    x, w, b = _saturating_layer()
    inputs = tuple(t.clone().requires_grad_(True) for t in (x, w, b))
    ideal = session.ideal_backend(0)
    y_ideal = ideal.linear(*inputs)
    gain = torch.from_numpy(session.analog_params.gain[circuits(100, 8)[0]])
    v = (x.clamp(0, 1) * 31) @ (w * 63 / 0.2) * gain * 8        # before the ADC's clamp
    assert (v[:, :2] > 130).all() and (v[:, 2] < -130).all() and (v[:, 3:].abs() < 120).all()
    g = torch.randn(9, 8, dtype=torch.float64)
    exact = torch.autograd.grad(y_ideal, inputs, g)
    chip = torch.autograd.grad(session.linear_backend(0).linear(*inputs), inputs, g)
    for c, e in zip(chip, exact):
        torch.testing.assert_close(c, e, rtol=1e-13, atol=1e-13)


def test_backward_is_the_exact_gradient_of_the_ideal_path():
    """Finite differences of the noise-free, unquantised, unsaturated model = the chip's backward."""
    session = AnalogSession(_config(), seed=0)
    ideal = session.ideal_backend(0)
    x, w, b = _layer(n=140, m=3, batch=2)
    inputs = tuple(t.clone().requires_grad_(True) for t in (x, w, b))
    assert torch.autograd.gradcheck(lambda *t: ideal.linear(*t), inputs)
    g = torch.randn(2, 3, dtype=torch.float64)
    ideal_grads = torch.autograd.grad(ideal.linear(*inputs), inputs, g)
    chip_grads = torch.autograd.grad(session.linear_backend(0).linear(*inputs), inputs, g)
    for chip, exact in zip(chip_grads, ideal_grads):
        torch.testing.assert_close(chip, exact, rtol=1e-13, atol=1e-13)


def test_one_gain_per_chip_gives_the_float_layers_gradient(tmp_path):
    """Old files (the defaults: one gain everywhere): R = 1, grad as for x W + b."""
    session = AnalogSession(_config(calibration=OLD_CALIBRATION), seed=0)
    x, w, b = (t.requires_grad_(True) for t in _layer(n=200, m=5, batch=4))
    g = torch.randn(4, 5, dtype=torch.float64)
    chip = torch.autograd.grad(session.linear_backend(0).linear(x, w, b), (x, w, b), g)
    exact = torch.autograd.grad(x @ w + b, (x, w, b), g)
    for c, e in zip(chip, exact):
        torch.testing.assert_close(c, e, rtol=1e-13, atol=1e-13)


def test_bias_none_and_float32():
    session = AnalogSession(_config(), seed=0)
    x, w, _ = _layer(n=50, m=3, batch=2)
    x32, w32 = x.float().requires_grad_(True), w.float().requires_grad_(True)
    y = session.linear_backend(0).linear(x32, w32, None)
    assert y.dtype == torch.float32 and y.shape == (2, 3)
    y.sum().backward()
    assert x32.grad.dtype == torch.float32 and w32.grad.shape == (50, 3)
    with pytest.raises(ValueError, match=r"chip layer 0: expected x \[B, N\] and weight \[N, M\]"):
        session.linear_backend(0).linear(x, w.T)
    with pytest.raises(ValueError, match=r"bias has shape \(4,\), expected \(3,\)"):
        session.linear_backend(0).linear(x, w, torch.zeros(4, dtype=torch.float64))


# -- determinism, state ------------------------------------------------------------------------

def _three_batches(session):
    out = []
    for k in range(3):
        x, w, b = _layer(n=260, m=8, batch=5, seed=k)
        out.append(session.linear_backend(k % 2).linear(x, w, b).detach())
    return out


def test_noise_is_determined_by_the_seed():
    a = _three_batches(AnalogSession(_config(), seed=11))
    b = _three_batches(AnalogSession(_config(), seed=11))
    c = _three_batches(AnalogSession(_config(), seed=12))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])
    torch.manual_seed(0)
    np.random.seed(0)
    d = _three_batches(AnalogSession(_config(), seed=11))
    assert all(torch.equal(p, q) for p, q in zip(a, d))   # no global generator involved


def test_state_dict_round_trip_continues_like_an_uninterrupted_session():
    uninterrupted = AnalogSession(_config(), seed=4)
    expected = _three_batches(uninterrupted) + _three_batches(uninterrupted)

    first = AnalogSession(_config(), seed=4)
    _three_batches(first)
    state = json.loads(json.dumps(first.state_dict()))       # plain data
    resumed = AnalogSession(_config(), seed=99)
    resumed.load_state_dict(state)
    again = _three_batches(resumed)
    assert all(torch.equal(p, q) for p, q in zip(again, expected[3:]))
    assert resumed.stats == uninterrupted.stats
    assert resumed.layer_stats() == uninterrupted.layer_stats()


def test_describe_is_plain_data():
    session = AnalogSession(_config(input_max=[1.0, 6.0], num_sends=[3, 9]), seed=2)
    _three_batches(session)
    d = json.loads(json.dumps(session.describe()))
    assert d["backend"] == "bss2" and d["mode"] == "analog matrix multiply"
    assert d["chip_id"] == "mock-chip-a" and d["calibration"]["analog_measured"] is True
    assert d["layers"] == {"0": {"input_max": 1.0, "weight_max": 0.5, "num_sends": 3},
                           "1": {"input_max": 6.0, "weight_max": 0.5, "num_sends": 9}}
    assert d["stats"]["runs"] == 3 and d["layer_stats"]["1"]["runs"] == 1
    assert d["hardware_config"]["analog"]["input_max"] == [1.0, 6.0]
    assert session.linear_backend(5).mapping.input_max == 6.0   # last entry holds deeper


def test_real_connection_says_what_is_missing():
    try:
        import hxtorch  # noqa: F401
        pytest.skip("the vendor stack is installed here")
    except ImportError:
        pass
    config = HardwareConfig.from_dict({"connection": "real"})
    with pytest.raises(BackendUnavailableError, match=r"BrainScaleS-2 software stack.*"
                                                      r"`connection: mock`"):
        AnalogSession(config, seed=0)


# -- the calibration files ---------------------------------------------------------------------

def test_old_files_load_with_the_documented_defaults(tmp_path, caplog):
    old = load_calibration(OLD_CALIBRATION)
    assert old.analog is None and old.analog_spread is None
    params = old.analog_params()
    assert not params.measured
    assert (params.gain == DEFAULT_ANALOG["gain"]).all()
    assert (params.noise_std == DEFAULT_ANALOG["noise_std"]).all()
    note = old.summary()["analog"]["note"]
    assert "written before" in note and "0.0012" in note
    assert old.summary()["analog"]["measured"] is False
    # the neuron values are those of today's file: the spiking path is unchanged
    new = load_calibration(default_calibration_path())
    for group in ("neurons", "spread"):
        for name, values in getattr(old, group).items():
            np.testing.assert_array_equal(values, getattr(new, group)[name])
    # an old file round-trips as an old file and runs the analog mode with the defaults
    copy = old.save(tmp_path / "old.h5")
    with h5py.File(copy) as f:
        assert "analog" not in f
    with caplog.at_level(logging.WARNING, logger="snnsim.hw"):
        session = AnalogSession(_config(calibration=copy), seed=0)
    assert "written before" in caplog.text
    assert session.describe()["calibration"]["analog_measured"] is False


def test_shipped_files_hold_the_generators_analog_values():
    for name, seed in SHIPPED_CHIPS.items():
        shipped = load_calibration(shipped_calibration_path(name))
        again = generate_mock_calibration(seed)
        for key in ("gain", "noise_std"):  # to rounding: numpy versions differ by an ulp
            np.testing.assert_allclose(shipped.analog[key], again.analog[key], rtol=1e-12)
            np.testing.assert_allclose(shipped.analog_spread[key], again.analog_spread[key],
                                       rtol=1e-12)
        assert shipped.summary()["analog"]["measured"] is True


def test_generator_draws_plausible_per_chip_analog_values():
    a, b, c = (generate_mock_calibration(s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.analog["gain"], b.analog["gain"])
    assert not np.array_equal(a.analog["gain"], c.analog["gain"])
    for cal in (a, c):
        s = cal.summary()["analog"]
        assert ANALOG_GAIN_RANGE[0] * 0.9 < s["gain"]["mean"] < ANALOG_GAIN_RANGE[1] * 1.1
        assert 0.02 < s["gain"]["relative_spread"] < 0.1
        assert ANALOG_NOISE_RANGE[0] * 0.9 < s["noise_std"]["mean"] < ANALOG_NOISE_RANGE[1] * 1.1
        assert (cal.analog["gain"] > 0).all() and (cal.analog["gain"] <= 1).all()
    for seed in range(200):                    # every draw is a valid calibration
        generate_mock_calibration(seed)
    # the analog draws do not move the neuron values of a seed (own random stream)
    shipped = load_calibration(OLD_CALIBRATION)
    fresh = generate_mock_calibration(SHIPPED_CHIPS["mock_chip_a"])
    np.testing.assert_array_equal(shipped.neurons["tau_mem"], fresh.neurons["tau_mem"])


def test_round_trip_keeps_the_analog_values(tmp_path):
    original = generate_mock_calibration(8, chip_id="rt", created="2026-01-01T00:00:00")
    loaded = load_calibration(original.save(tmp_path / "chip.h5"))
    for key in ("gain", "noise_std"):
        np.testing.assert_array_equal(loaded.analog[key], original.analog[key])
        np.testing.assert_array_equal(loaded.analog_spread[key], original.analog_spread[key])
    with pytest.raises(ValueError):
        loaded.analog["gain"][0] = 1.0                          # read-only like the rest
    with h5py.File(tmp_path / "chip.h5") as f:
        assert f["analog/gain"].attrs["units"] == "CADC/(input*weight)"
        assert f["analog/noise_std"].attrs["units"] == "CADC"


def _replace(name, values):
    def edit(f):
        units = f[name].attrs["units"]
        del f[name]
        f[name] = values
        f[name].attrs["units"] = units
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.__delitem__("analog/noise_std"), r"dataset /analog/noise_std is missing"),
    (lambda f: f.__delitem__("analog/spread"), r"dataset /analog/spread/gain is missing"),
    (_replace("analog/gain", np.full(512, 2.0)),
     r"/analog/gain\[0\] = 2 CADC/\(input\*weight\) is out of range; expected in \[1e-06, 1\]"),
    (_replace("analog/gain", np.zeros(512)), r"/analog/gain\[0\] = 0 .* is out of range"),
    (_replace("analog/noise_std", np.full(512, -1.0)), (r"/analog/noise_std\[0\] = -1 CADC is "
                                                       r"negative")),
    (_replace("analog/gain", np.full(100, 1e-3)), r"/analog/gain has shape \(100,\)"),
    (lambda f: f["analog/gain"].attrs.__setitem__("units", "1"),
     r"/analog/gain has units '1', expected 'CADC/\(input\*weight\)'"),
])
def test_malformed_analog_groups_name_the_dataset(tmp_path, edit, message):
    path = generate_mock_calibration(7).save(tmp_path / "chip.h5")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)


# -- the config section ------------------------------------------------------------------------

def test_analog_config_defaults_lists_and_errors(tmp_path):
    c = HardwareConfig()
    assert c.analog.layer(0) == (1.0, 0.5, 4) and c.analog.layer(1) == c.analog.layer(7)
    assert (c.analog.wait_between_events, c.analog.noise_scale, c.analog.overflow,
            c.analog.saturation_gradient) == (5, 1.0, "clip", "cancel")
    d = HardwareConfig.from_dict({"analog": {"input_max": [1, 3], "weight_max": 0.3,
                                             "num_sends": [2, 5, 7]}})
    assert d.analog.layer(0) == (1.0, 0.3, 2) and d.analog.layer(2) == (3.0, 0.3, 7)
    assert HardwareConfig.from_dict(d.to_dict()).analog == d.analog
    assert d.to_dict()["analog"]["weight_max"] == 0.3 and d.to_dict()["analog"]["num_sends"] == [
        2, 5, 7]
    for bad, message in [({"input_mx": 1}, (r"unknown key hardware.analog.input_mx; did you mean "
                                           r"'input_max'")),
                         ({"num_sends": 2.5}, r"num_sends = 2.5 \(float\) has the wrong type"),
                         ({"num_sends": [2, 0]}, r"num_sends = \[2, 0\] is invalid"),
                         ({"weight_max": []}, r"weight_max = \[\] is invalid"),
                         ({"noise_scale": True}, r"noise_scale = True \(bool\)"),
                         ({"overflow": "wrap"}, (r"overflow = 'wrap' is invalid; expected one of "
                                                r"clip, error"))]:
        with pytest.raises((TypeError, ValueError), match=message):
            HardwareConfig.from_dict({"analog": bad})
    with pytest.raises(TypeError, match="hardware.analog must be a mapping"):
        HardwareConfig.from_dict({"analog": 3})


def test_old_calibration_copy_is_intact():
    """The copy under tests/data is the file shipped before the analog mode (kept on purpose)."""
    with h5py.File(OLD_CALIBRATION) as f:
        assert "analog" not in f and f.attrs["chip_id"] == "mock-chip-a"
        assert f.attrs["format_version"] == 1
