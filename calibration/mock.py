"""Calibrations of mock chips: realistic fixed-pattern noise drawn from a seed.

The published hardware experiments calibrated every neuron towards tau_m = tau_s =
6 us, leak 80 and threshold 150 CADC (reset 80 CADC, refractory time 16 us). What
remains after calibration is modelled as

    value_j = target * (1 + block offset + residual_j)          (time constants, gain)
    value_j = target + block offset + residual_j                 (threshold, leak in CADC)

* block offset: one draw per CapMem block (4 blocks of 128 neurons: the analog
  parameter memory is shared per quadrant, so its errors are correlated there);
* residual_j: Gaussian, truncated at 4 sigma, a few percent for the time constants
  and the gain, 1-1.5 CADC for the voltages;
* about 1 % of the neurons did not converge and deviate three times as much.

The `spread` datasets hold the standard deviation of each estimate (repeated
measurements of the trace fits), not the chip-wide spread, which
`Calibration.summary()` reports. No neuron gets tau_m within 0.1 % of tau_s (or
2 tau_s), so every layer runs in the engine's general regime, as on the chip.

The analog matrix-multiply mode (`hw.analog`) adds, per neuron column, what hxtorch's
`measure_mock_parameter` measures for the whole chip (a full weight matrix times a test
input, the median ratio to the exact product and the standard deviation of the rest),
resolved per column as a calibration would store it:

    gain_j      = gain_chip * (1 + block offset + residual_j)
    noise_std_j = noise_chip * exp(residual_j)

* gain_chip: one draw per chip, uniform in ANALOG_GAIN_RANGE - where the mode's own
  calibration (synapse DAC bias, integration time) lands differs from chip to chip;
  hxtorch's default mock gain, 0.0012, lies in the middle;
* noise_chip: one draw per chip, uniform in ANALOG_NOISE_RANGE ADC steps (hxtorch's
  default mock noise is 2.0);
* block offset and residual as above (CapMem quadrants, truncated Gaussians, 1 % outliers
  with three times the deviation); the noise's residual is multiplicative, so that an
  outlier column is noisier by up to a factor e^1.2 but never has a negative noise.

These come from a random stream of their own (seeded with [seed, 1]), so the neuron
values of a seed are the same as before the analog mode existed.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from calibration.store import N_NEURONS, PUBLISHED_TARGETS, PUBLISHED_TIME_SCALE_US, Calibration

N_BLOCKS = 4
OUTLIER_FRACTION = 0.01
OUTLIER_FACTOR = 3.0
TRUNCATE_SIGMA = 4.0
MIN_RATIO_DISTANCE = 1e-3  # |tau_m / tau_s - 1| and |tau_m / tau_s - 2| at least this

# (block offset sigma, residual sigma): relative for time constants and gain, CADC otherwise.
NOISE = {
    "tau_mem": (0.01, 0.035),
    "tau_syn": (0.01, 0.03),
    "threshold": (0.5, 1.5),
    "leak": (0.5, 1.2),
    "synaptic_gain": (0.01, 0.03),
}
RELATIVE = {"tau_mem", "tau_syn", "synaptic_gain"}
# Standard deviation of the estimates (relative for time constants and gain, CADC otherwise).
MEASUREMENT_SPREAD = {"tau_mem": 0.015, "tau_syn": 0.015, "threshold": 0.4, "leak": 0.3,
                      "synaptic_gain": 0.015}

# The analog matrix-multiply mode (see the module docstring).
ANALOG_STREAM = 1                   # second entry of the analog draws' seed sequence
ANALOG_GAIN_RANGE = (0.9e-3, 1.5e-3)  # chip-wide gain, ADC steps per (input x weight x send)
ANALOG_GAIN_NOISE = (0.02, 0.04)    # (block offset sigma, residual sigma), relative
ANALOG_NOISE_RANGE = (1.6, 2.4)     # chip-wide membrane noise at the ADC, ADC steps
ANALOG_NOISE_RESIDUAL = 0.1         # per-column spread of the noise's logarithm
# Standard deviation of the estimates, relative (50 samples per column in the measurement).
ANALOG_MEASUREMENT_SPREAD = {"gain": 0.01, "noise_std": 0.1}


def _residuals(rng: np.random.Generator, sigma: float, outliers: np.ndarray) -> np.ndarray:
    z = rng.standard_normal(N_NEURONS)
    while np.any(np.abs(z) > TRUNCATE_SIGMA):
        redraw = np.abs(z) > TRUNCATE_SIGMA
        z[redraw] = rng.standard_normal(int(redraw.sum()))
    return sigma * z * np.where(outliers, OUTLIER_FACTOR, 1.0)


def _analog(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(gain and noise_std per column, their estimates' spread) of mock chip `seed`."""
    rng = np.random.default_rng([seed, ANALOG_STREAM])
    block = np.arange(N_NEURONS) // (N_NEURONS // N_BLOCKS)
    outliers = rng.random(N_NEURONS) < OUTLIER_FRACTION
    gain_chip = rng.uniform(*ANALOG_GAIN_RANGE)
    noise_chip = rng.uniform(*ANALOG_NOISE_RANGE)
    block_sigma, sigma = ANALOG_GAIN_NOISE
    gain = gain_chip * (1.0 + block_sigma * rng.standard_normal(N_BLOCKS)[block]
                        + _residuals(rng, sigma, outliers))
    noise_std = noise_chip * np.exp(_residuals(rng, ANALOG_NOISE_RESIDUAL, outliers))
    values = {"gain": gain, "noise_std": noise_std}
    spread = {name: ANALOG_MEASUREMENT_SPREAD[name] * v for name, v in values.items()}
    return values, spread


def generate_mock_calibration(seed: int, chip_id: str | None = None,
                              created: str | None = None) -> Calibration:
    """Calibration of a mock chip drawn from `seed` (see the module docstring for the model)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    targets = dict(PUBLISHED_TARGETS)
    nominal = {"tau_mem": targets["target_tau_mem_us"], "tau_syn": targets["target_tau_syn_us"],
               "threshold": targets["target_threshold_cadc"],
               "leak": targets["target_leak_cadc"], "synaptic_gain": 1.0}
    block = np.arange(N_NEURONS) // (N_NEURONS // N_BLOCKS)
    outliers = rng.random(N_NEURONS) < OUTLIER_FRACTION
    neurons = {}
    for name, (block_sigma, sigma) in NOISE.items():
        deviation = block_sigma * rng.standard_normal(N_BLOCKS)[block] + _residuals(rng, sigma,
                                                                                   outliers)
        neurons[name] = (nominal[name] * (1.0 + deviation) if name in RELATIVE
                         else nominal[name] + deviation)
    for _ in range(100):
        ratio = neurons["tau_mem"] / neurons["tau_syn"]
        close = ((np.abs(ratio - 1.0) < MIN_RATIO_DISTANCE)
                 | (np.abs(ratio - 2.0) < MIN_RATIO_DISTANCE))
        if not close.any():
            break
        sigma = NOISE["tau_mem"][1]
        neurons["tau_mem"][close] = nominal["tau_mem"] * (
            1.0 + sigma * rng.standard_normal(int(close.sum())))
    spread = {name: (MEASUREMENT_SPREAD[name] * np.abs(neurons[name]) if name in RELATIVE
                     else np.full(N_NEURONS, MEASUREMENT_SPREAD[name]))
              for name in NOISE}
    analog, analog_spread = _analog(int(seed))
    if created is None:
        created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()  # noqa: UP017 (3.10)
    return Calibration(
        chip_id=chip_id or f"mock-{int(seed)}",
        created=created,
        time_scale_us=PUBLISHED_TIME_SCALE_US,
        neurons=neurons,
        spread=spread,
        targets=targets,
        generator=f"snnsim mock chip, generate_mock_calibration(seed={int(seed)})",
        analog=analog,
        analog_spread=analog_spread,
    )
