"""Mapping a feed-forward network onto one BrainScaleS-2 chip: placement and 6-bit weights.

Resources. 512 neuron circuits in two hemispheres of 256; each hemisphere has a
synapse array of 256 rows x 256 columns, and a neuron circuit (column) receives only
from the rows of its own hemisphere. A synapse holds a 6-bit value 0..63; the sign
comes from the row: rows come in pairs driven by the same spike label, the even row
excitatory, the odd row inhibitory. A signed weight w becomes

    q = round(w * scale_weights), clipped to +-63;  q >= 0 -> (exc, inh) = (q, 0), else (0, -q)

(round half to even, as torch.round in the published code).

Sources. Layer l receives the spikes of its inputs in order: for l > 0 the first
n_{l-1} inputs are the neurons of layer l-1 (one row pair each, label = their
neuron circuit), the rest - and all inputs of layer 0 - are external sources
(network inputs and bias spikes). External sources are replicated
`n_input_repetitions` times as in the published experiments: each replica is its
own spike label on its own row pair, carrying the same value q (the published
training code hands its chip backend one integer matrix round(w * 30) per layer and
the replication happens below it, so w is not divided among the replicas). The
replicas add up: an external source drives its neurons with r = n_input_repetitions
times the current of one row. The effective model weight of a synapse is therefore

    w_eff[i, j] = r_i * gain_j * q_ij / scale_weights        (r_i = 1 for neuron sources)

Replication is what gives the few inputs of a layer like Yin-Yang's (4 + bias)
enough drive with 6-bit weights; it costs rows.

Placement. Layers are placed in order; a layer's neurons go into one hemisphere
that has room for them and for all its row pairs (the one with the most free
rows), else they are split over both hemispheres, with the row pairs present in
each. Layers are run one at a time (hardware in the loop): the session re-injects
the measured spikes of layer l-1 as the input events of layer l, so on-chip routing
of neuron spikes is not used. A network that does not fit raises MappingError
naming the limit (neurons, rows) and by how much it is exceeded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

N_HEMISPHERES = 2
NEURONS_PER_HEMISPHERE = 256
ROWS_PER_HEMISPHERE = 256
N_NEURON_CIRCUITS = N_HEMISPHERES * NEURONS_PER_HEMISPHERE
MAX_WEIGHT_VALUE = 63  # 6 bits
EXTERNAL_LABEL_BASE = N_NEURON_CIRCUITS  # labels of external sources; a neuron's label is its circuit


class MappingError(ValueError):
    """A network does not fit on the chip, or its weights are out of the representable range."""


def quantize_weights(w: np.ndarray, scale_weights: float) -> tuple[np.ndarray, int]:
    """(signed 6-bit values q = round(w * scale_weights) clipped to +-63 as int16, number clipped)."""
    w = np.asarray(w, dtype=np.float64)
    q = np.empty(w.shape, dtype=np.int16)
    clipped = _quantize_kernel(w.reshape(-1), float(scale_weights), q.reshape(-1))
    return q, int(clipped)


@njit(cache=True)
def _quantize_kernel(w, scale_weights, q):
    """q = clip(rint(w * scale_weights), +-63) (flat arrays); the number of values clipped."""
    clipped = 0
    for a in range(w.shape[0]):
        raw = np.rint(w[a] * scale_weights)
        clipped += abs(raw) > MAX_WEIGHT_VALUE
        q[a] = min(max(raw, -MAX_WEIGHT_VALUE), MAX_WEIGHT_VALUE)
    return clipped


@dataclass
class ChipConfig:
    """Everything the chip is configured with (what `Connection.configure` receives).

    synapses[h, row, column]: 6-bit value (0..63) of a synapse of hemisphere h;
    row_label[h, row]: the spike label driving the row (-1: unused);
    row_sign[h, row]: +1 excitatory, -1 inhibitory, 0 unused;
    neuron_enabled[circuit]: whether the circuit is part of the network.
    """

    synapses: np.ndarray
    row_label: np.ndarray
    row_sign: np.ndarray
    neuron_enabled: np.ndarray

    @classmethod
    def empty(cls) -> ChipConfig:
        shape = (N_HEMISPHERES, ROWS_PER_HEMISPHERE)
        return cls(synapses=np.zeros(shape + (NEURONS_PER_HEMISPHERE,), dtype=np.uint8),
                   row_label=np.full(shape, -1, dtype=np.int64),
                   row_sign=np.zeros(shape, dtype=np.int8),
                   neuron_enabled=np.zeros(N_NEURON_CIRCUITS, dtype=bool))

    def copy(self) -> ChipConfig:
        return ChipConfig(self.synapses.copy(), self.row_label.copy(), self.row_sign.copy(),
                          self.neuron_enabled.copy())


@dataclass(frozen=True, eq=False)
class LayerPlacement:
    """Where one layer lives on the chip.

    circuits[j]: neuron circuit of the layer's neuron j; labels[i, k]: spike label of
    replica k of input i (-1 past its replica count); replicas[i]: that count;
    hemispheres: the hemispheres holding the layer's neurons; pair_rows[h_index, i, k]:
    the excitatory row (its inhibitory partner is the next row) of replica k of input i
    in hemispheres[h_index] (-1 past the replica count).
    """

    index: int
    n_inputs: int
    n_neurons: int
    n_neuron_sources: int
    circuits: np.ndarray
    labels: np.ndarray
    replicas: np.ndarray
    hemispheres: tuple[int, ...]
    pair_rows: np.ndarray

    @property
    def rows_per_hemisphere(self) -> int:
        return 2 * int(self.replicas.sum())

    def describe(self) -> dict:
        return {
            "index": self.index,
            "shape": [self.n_inputs, self.n_neurons],
            "neuron_sources": self.n_neuron_sources,
            "external_sources": self.n_inputs - self.n_neuron_sources,
            "replicas_per_external_source": int(self.replicas[self.n_neuron_sources:].max())
            if self.n_inputs > self.n_neuron_sources else 0,
            "hemispheres": list(self.hemispheres),
            "neuron_circuits": _ranges(self.circuits),
            "rows_per_hemisphere": self.rows_per_hemisphere,
        }


def _ranges(values: np.ndarray) -> list[list[int]]:
    """[[first, last], ...] runs of consecutive integers, for compact descriptions."""
    out: list[list[int]] = []
    for v in (int(x) for x in values):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


@dataclass(frozen=True, eq=False)
class NetworkMapping:
    """The placement of every layer and the chip configuration skeleton (rows and labels)."""

    layers: tuple[LayerPlacement, ...]
    n_input_repetitions: int

    def chip_config(self) -> ChipConfig:
        """A configuration with every row labelled and signed, all synapses 0."""
        config = ChipConfig.empty()
        for layer in self.layers:
            config.neuron_enabled[layer.circuits] = True
            valid = layer.labels >= 0
            for h_index, h in enumerate(layer.hemispheres):
                rows = layer.pair_rows[h_index][valid]
                config.row_label[h, rows] = layer.labels[valid]
                config.row_label[h, rows + 1] = layer.labels[valid]
                config.row_sign[h, rows] = 1
                config.row_sign[h, rows + 1] = -1
        return config

    def write_weights(self, config: ChipConfig, index: int, q: np.ndarray) -> None:
        """Write the signed 6-bit values q[N, M] of layer `index` into `config`."""
        layer = self.layers[index]
        _write_synapses(config.synapses, np.ascontiguousarray(q, dtype=np.int16),
                        layer.pair_rows, np.asarray(layer.hemispheres, dtype=np.int64),
                        layer.circuits)

    def describe(self) -> dict:
        rows = [0] * N_HEMISPHERES
        for layer in self.layers:
            for h in layer.hemispheres:
                rows[h] += layer.rows_per_hemisphere
        return {
            "n_input_repetitions": self.n_input_repetitions,
            "neurons_used": int(sum(layer.n_neurons for layer in self.layers)),
            "neuron_circuits": N_NEURON_CIRCUITS,
            "rows_used_per_hemisphere": rows,
            "rows_per_hemisphere": ROWS_PER_HEMISPHERE,
            "layers": [layer.describe() for layer in self.layers],
        }


def place_network(layer_shapes, n_input_repetitions: int) -> NetworkMapping:
    """Place the layers (N_l inputs incl. biases, M_l neurons) of a feed-forward network."""
    shapes = [tuple(int(v) for v in shape) for shape in layer_shapes]
    if not shapes:
        raise MappingError("the network has no layers to map")
    for index, shape in enumerate(shapes):
        if len(shape) != 2 or min(shape) < 1:
            raise MappingError(f"layer {index} has shape {shape}; expected (inputs, neurons) "
                               f"with both >= 1")
    total = sum(m for _, m in shapes)
    if total > N_NEURON_CIRCUITS:
        raise MappingError(f"the network has {total} neurons but the chip has "
                           f"{N_NEURON_CIRCUITS} neuron circuits ({total - N_NEURON_CIRCUITS} "
                           f"too many; layer sizes {[m for _, m in shapes]})")
    free_columns = [0] * N_HEMISPHERES  # next free column per hemisphere
    free_rows = [0] * N_HEMISPHERES  # next free row per hemisphere
    next_label = EXTERNAL_LABEL_BASE
    layers = []
    for index, (n_in, m) in enumerate(shapes):
        n_prev = shapes[index - 1][1] if index > 0 else 0
        if n_in < n_prev:
            raise MappingError(f"layer {index} has {n_in} inputs but layer {index - 1} has "
                               f"{n_prev} neurons; a feed-forward layer's first inputs are the "
                               f"previous layer's neurons")
        replicas = np.concatenate([np.ones(n_prev, dtype=np.int64),
                                   np.full(n_in - n_prev, n_input_repetitions, dtype=np.int64)])
        rows_needed = 2 * int(replicas.sum())
        rows_left = [ROWS_PER_HEMISPHERE - r for r in free_rows]
        cols_left = [NEURONS_PER_HEMISPHERE - c for c in free_columns]
        fits = [h for h in range(N_HEMISPHERES) if cols_left[h] >= m and rows_left[h] >= rows_needed]
        if fits:
            hemispheres = (max(fits, key=lambda h: (rows_left[h], -h)),)
        elif all(r >= rows_needed for r in rows_left) and sum(cols_left) >= m:
            hemispheres = tuple(range(N_HEMISPHERES))
        else:
            raise MappingError(_rows_message(index, n_in, m, n_prev, n_input_repetitions,
                                             rows_needed, rows_left, cols_left))
        circuits = []
        for h in hemispheres:
            take = min(m - len(circuits), cols_left[h])
            start = h * NEURONS_PER_HEMISPHERE + free_columns[h]
            circuits.extend(range(start, start + take))
            free_columns[h] += take
        hemispheres = tuple(sorted({c // NEURONS_PER_HEMISPHERE for c in circuits}))
        r_max = int(replicas.max())
        labels = np.full((n_in, r_max), -1, dtype=np.int64)
        if index > 0:
            labels[:n_prev, 0] = layers[index - 1].circuits
        n_ext = n_in - n_prev
        if n_ext:
            labels[n_prev:, :n_input_repetitions] = next_label + np.arange(
                n_ext * n_input_repetitions).reshape(n_ext, n_input_repetitions)
            next_label += n_ext * n_input_repetitions
        pair_rows = np.full((len(hemispheres), n_in, r_max), -1, dtype=np.int64)
        valid = labels >= 0
        for h_index, h in enumerate(hemispheres):
            pair_rows[h_index][valid] = free_rows[h] + 2 * np.arange(int(valid.sum()))
            free_rows[h] += rows_needed
        layers.append(LayerPlacement(index=index, n_inputs=n_in, n_neurons=m,
                                     n_neuron_sources=n_prev,
                                     circuits=np.asarray(circuits, dtype=np.int64),
                                     labels=labels, replicas=replicas, hemispheres=hemispheres,
                                     pair_rows=pair_rows))
    return NetworkMapping(layers=tuple(layers), n_input_repetitions=n_input_repetitions)


def _rows_message(index, n_in, m, n_prev, reps, rows_needed, rows_left, cols_left) -> str:
    n_ext = n_in - n_prev
    need = (f"layer {index} ({n_in} inputs -> {m} neurons) needs {rows_needed} synapse rows in "
            f"every hemisphere holding its neurons ({n_prev} neuron sources x 1 + {n_ext} "
            f"external sources x {reps} repetitions, 2 rows (excitatory, inhibitory) each)")
    if rows_needed > ROWS_PER_HEMISPHERE:
        return (f"network does not fit on the chip: {need}, but a hemisphere has "
                f"{ROWS_PER_HEMISPHERE} rows ({rows_needed - ROWS_PER_HEMISPHERE} rows too "
                f"many); reduce n_input_repetitions or the layer's inputs")
    best = max(range(N_HEMISPHERES), key=lambda h: rows_left[h])
    if any(r >= rows_needed for r in rows_left):
        return (f"network does not fit on the chip: layer {index} needs {m} neuron circuits in "
                f"a hemisphere with {rows_needed} free rows, but only "
                f"{max(c for c, r in zip(cols_left, rows_left) if r >= rows_needed)} circuits "
                f"are free there (free circuits per hemisphere: {cols_left}, free rows: "
                f"{rows_left})")
    return (f"network does not fit on the chip: {need}, but at most {rows_left[best]} rows are "
            f"still free in a hemisphere after placing layers 0..{index - 1} "
            f"({rows_needed - rows_left[best]} rows short; free rows per hemisphere: "
            f"{rows_left})")


@njit(cache=True)
def _write_synapses(synapses, q, pair_rows, hemispheres, circuits):
    """synapses[h, row, column] = the excitatory / inhibitory part of q on every replica's rows."""
    for h_index in range(hemispheres.shape[0]):
        h = hemispheres[h_index]
        for j in range(q.shape[1]):
            if circuits[j] // NEURONS_PER_HEMISPHERE != h:
                continue
            column = circuits[j] % NEURONS_PER_HEMISPHERE
            for i in range(q.shape[0]):
                excitatory = max(q[i, j], 0)
                inhibitory = max(-q[i, j], 0)
                for k in range(pair_rows.shape[2]):
                    row = pair_rows[h_index, i, k]
                    if row < 0:
                        break
                    synapses[h, row, column] = excitatory
                    synapses[h, row + 1, column] = inhibitory
