"""Mapping onto the chip: 6-bit quantisation, sign rows, replication, placement and its limits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hw import ChipSession, HardwareConfig, MappingError, place_network, quantize_weights
from hw.mapping import EXTERNAL_LABEL_BASE, NEURONS_PER_HEMISPHERE

YIN_YANG = [(5, 120), (120, 3)]


def test_quantisation_rounds_half_to_even_and_clips():
    w = np.array([0.0, 1 / 60, 3 / 60, -1 / 60, 0.51 / 30, 2.1, 2.2, -5.0])
    q, clipped = quantize_weights(w, 30.0)
    np.testing.assert_array_equal(q, [0, 0, 2, 0, 1, 63, 63, -63])
    assert clipped == 2 and q.dtype == np.int16
    np.testing.assert_array_equal(q.astype(float), torch.round(torch.from_numpy(
        np.clip(w, -2.1, 2.1) * 30)).numpy())


def test_yin_yang_placement():
    mapping = place_network(YIN_YANG, n_input_repetitions=5)
    hidden, output = mapping.layers
    assert hidden.hemispheres == (0,) and output.hemispheres == (1,)
    np.testing.assert_array_equal(hidden.circuits, np.arange(120))
    np.testing.assert_array_equal(output.circuits, 256 + np.arange(3))
    assert hidden.rows_per_hemisphere == 5 * 5 * 2 and output.rows_per_hemisphere == 240
    assert mapping.describe()["rows_used_per_hemisphere"] == [50, 240]
    # external sources: 5 replicas with their own labels; neuron sources: the circuit itself
    np.testing.assert_array_equal(hidden.replicas, [5] * 5)
    assert len(set(hidden.labels.ravel())) == 25 and hidden.labels.min() >= EXTERNAL_LABEL_BASE
    np.testing.assert_array_equal(output.labels[:, 0], hidden.circuits)


def test_sign_rows_and_replicas_carry_the_6bit_values():
    mapping = place_network([(3, 4), (4, 2)], n_input_repetitions=2)
    config = mapping.chip_config()
    q0 = np.array([[5, -7, 0, 63], [-63, 1, 2, 0], [0, 0, -1, 9]], dtype=np.int16)
    mapping.write_weights(config, 0, q0)
    layer = mapping.layers[0]
    h = layer.hemispheres[0]
    cols = layer.circuits % NEURONS_PER_HEMISPHERE
    for i in range(3):
        for k in range(2):
            exc = layer.pair_rows[0, i, k]
            assert config.row_sign[h, exc] == 1 and config.row_sign[h, exc + 1] == -1
            assert config.row_label[h, exc] == config.row_label[h, exc + 1] == layer.labels[i, k]
            np.testing.assert_array_equal(config.synapses[h, exc, cols], np.maximum(q0[i], 0))
            np.testing.assert_array_equal(config.synapses[h, exc + 1, cols], np.maximum(-q0[i], 0))
    assert config.synapses.max() <= 63 and config.neuron_enabled.sum() == 6


def test_effective_weights_add_replicas_and_gain():
    session = ChipSession(HardwareConfig(), YIN_YANG)
    w = torch.linspace(-1, 1, 600, dtype=torch.float64).reshape(5, 120)
    gain = session.calibration.neurons["synaptic_gain"][session.mapping.layers[0].circuits]
    expected = 5 * gain[None, :] * torch.round(w * 30).numpy() / 30
    np.testing.assert_allclose(session.effective_weights(0, w).numpy(), expected, rtol=1e-14)
    w1 = torch.full((120, 3), 0.5, dtype=torch.float64)
    gain1 = session.calibration.neurons["synaptic_gain"][256:259]
    np.testing.assert_allclose(session.effective_weights(1, w1).numpy()[0], gain1 * 15 / 30)


def test_too_many_neurons():
    with pytest.raises(MappingError, match=r"600 neurons but the chip has 512 neuron circuits "
                                           r"\(88 too many"):
        place_network([(4, 300), (300, 300)], 1)


def test_too_many_rows_for_one_layer():
    with pytest.raises(MappingError, match=r"layer 0 \(30 inputs -> 10 neurons\) needs 300 "
                                           r"synapse rows .* 30 external sources x 5 repetitions"
                                           r".*\(44 rows too many\)"):
        place_network([(30, 10), (10, 2)], 5)


def test_rows_exhausted_by_earlier_layers():
    with pytest.raises(MappingError, match=r"layer 2 .* needs 240 synapse rows.* at most 16 rows "
                                           r"are still free .* \(224 rows short"):
        place_network([(24, 120), (120, 120), (120, 3)], 5)


def test_16x16_mnist_needs_more_rows_than_a_hemisphere_has():
    with pytest.raises(MappingError, match=r"needs 2560 synapse rows"):
        ChipSession(HardwareConfig(), [(256, 246), (246, 10)])


def test_large_layer_is_split_over_both_hemispheres():
    mapping = place_network([(10, 300)], 1)
    layer = mapping.layers[0]
    assert layer.hemispheres == (0, 1) and len(layer.circuits) == 300
    config = mapping.chip_config()
    mapping.write_weights(config, 0, np.ones((10, 300), dtype=np.int16))
    assert config.synapses[0].sum() == 10 * 256 and config.synapses[1].sum() == 10 * 44


def test_inconsistent_layer_shapes():
    with pytest.raises(MappingError, match="layer 1 has 3 inputs but layer 0 has 4 neurons"):
        place_network([(5, 4), (3, 2)], 5)


def test_weight_overflow_error_mode():
    session = ChipSession(HardwareConfig(weight_overflow="error"), YIN_YANG)
    w = torch.zeros(5, 120, dtype=torch.float64)
    w[2, 7] = 2.5
    with pytest.raises(MappingError, match=r"layer 0: weight w\[2, 7\] = 2.5 is outside the "
                                           r"chip's range \+-2.1"):
        session.quantized_weights(0, w)
    clipping = ChipSession(HardwareConfig(), YIN_YANG)
    assert clipping.quantized_weights(0, w)[2, 7] == 63
    with pytest.raises(ValueError, match=r"mapped as 5 inputs x 120 neurons"):
        clipping.quantized_weights(0, w[:, :10])
