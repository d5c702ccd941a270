"""Parameters of the current-based LIF neuron with exponential synapses.

    C dV/dt = -g_L (V - E_L) + I(t),   I(t) = sum_i w_i H(t - t_i) exp(-(t - t_i) / tau_s)

with tau_m = C / g_L. As in the published fastAndDeep code the capacitance is
C = tau_m * g_L, so g_L only enters through the drive needed to reach threshold,
g_L (theta - E_L), and published weights mean the same here.

Each field is a float or, for hardware models with fixed-pattern noise, a 1-D
array with one value per neuron of the layer (stored as a read-only copy, so a
record cannot change after it was validated).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Value = float | np.ndarray

EQUAL = "equal"  # tau_m == tau_s: Lambert W closed form
DOUBLE = "double"  # tau_m == 2 tau_s: quadratic closed form
GENERAL = "general"  # any other ratio: bracketed Newton on each interval


def _as_value(name: str, value) -> Value:
    try:
        if value is None or isinstance(value, (str, bytes)):
            raise TypeError
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"NeuronParams.{name} must be a number or a 1-D array of numbers, "
                         f"got {value!r}") from error
    if array.ndim > 1 or array.size == 0:
        raise ValueError(
            f"NeuronParams.{name} must be a number or a 1-D array (one value per neuron), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"NeuronParams.{name} must be finite, got {value!r}")
    if array.ndim == 0:
        return float(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class NeuronParams:
    """LIF neuron parameters: time constants, threshold theta, leak E_L, leak conductance g_L.

    `tau_mem` defaults to `tau_syn` (the published model's equal-time-constant case).
    """

    tau_syn: Value = 1.0
    tau_mem: Value | None = None
    threshold: Value = 1.0
    leak: Value = 0.0
    g_leak: Value = 1.0

    def __post_init__(self) -> None:
        if self.tau_mem is None:
            object.__setattr__(self, "tau_mem", self.tau_syn)
        for name in ("tau_syn", "tau_mem", "threshold", "leak", "g_leak"):
            object.__setattr__(self, name, _as_value(name, getattr(self, name)))
        for name in ("tau_syn", "tau_mem", "g_leak"):
            if np.any(np.asarray(getattr(self, name)) <= 0):
                raise ValueError(f"NeuronParams.{name} must be > 0, got {getattr(self, name)!r}")
        if np.any(np.asarray(self.threshold) <= np.asarray(self.leak)):
            raise ValueError(
                f"NeuronParams.threshold must be above leak, got threshold={self.threshold!r}, "
                f"leak={self.leak!r}"
            )
        sizes = {np.size(getattr(self, n)) for n in ("tau_syn", "tau_mem", "threshold", "leak",
                                                    "g_leak")} - {1}
        if len(sizes) > 1:
            raise ValueError(f"NeuronParams per-neuron arrays have different lengths {sorted(sizes)}")
        # Derived values are computed once: the engine asks for them on every call.
        object.__setattr__(self, "_regime", self._find_regime())
        object.__setattr__(self, "_arrays", {})

    @property
    def regime(self) -> str:
        """Which closed form applies: EQUAL, DOUBLE or GENERAL (the same for every neuron)."""
        return self._regime

    def _find_regime(self) -> str:
        tau_m, tau_s = np.asarray(self.tau_mem), np.asarray(self.tau_syn)
        if np.all(tau_m == tau_s):
            return EQUAL
        if np.all(tau_m == 2.0 * tau_s):
            return DOUBLE
        if np.any(tau_m == tau_s) or np.any(tau_m == 2.0 * tau_s):
            raise ValueError(
                "NeuronParams mixes neurons with tau_mem == tau_syn (or 2 tau_syn) and others; "
                "perturb them or split the layer so that one regime applies to all neurons"
            )
        return GENERAL

    @property
    def n_neurons(self) -> int | None:
        """The layer size fixed by per-neuron arrays, or None when all fields are scalars."""
        sizes = {np.size(getattr(self, n)) for n in ("tau_syn", "tau_mem", "threshold", "leak",
                                                    "g_leak")} - {1}
        return sizes.pop() if sizes else None

    def arrays(self, n_neurons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tau_mem, tau_syn, drive) as float64 arrays of length 1 (shared) or n_neurons.

        drive = g_L (theta - E_L) is the value that sum_i w_i K(t - t_i) must reach.
        """
        if n_neurons not in self._arrays:
            self._arrays[n_neurons] = self._compute_arrays(n_neurons)
        return tuple(a.copy() for a in self._arrays[n_neurons])

    def _compute_arrays(self, n_neurons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.n_neurons not in (None, n_neurons):
            raise ValueError(
                f"NeuronParams has per-neuron values for {self.n_neurons} neurons, "
                f"but the layer has {n_neurons}"
            )
        tau_m = np.atleast_1d(np.asarray(self.tau_mem, dtype=np.float64))
        tau_s = np.atleast_1d(np.asarray(self.tau_syn, dtype=np.float64))
        if tau_m.size != tau_s.size:
            tau_m, tau_s = np.broadcast_arrays(tau_m, tau_s)
        drive = np.atleast_1d(
            np.asarray(self.g_leak, dtype=np.float64)
            * (np.asarray(self.threshold, dtype=np.float64) - np.asarray(self.leak, dtype=np.float64))
        )
        return np.ascontiguousarray(tau_m), np.ascontiguousarray(tau_s), np.ascontiguousarray(drive)
