"""`ChipSession`: one network mapped onto one chip, run layer by layer with the model in the loop.

Forward (per layer, in order): quantise the weights to 6-bit values, write them if
they changed, send the batch as one spike train, cut the reply back into
first-spike times. The next layer is given these measured times, so every layer
sees what the chip really did (hardware in the loop).

Backward: the `cpu` backend's exact gradients, taken at the measured times with
the chip's own per-neuron parameters from the calibration and the weights the chip
applied, w_chip[i, j] = r_i gain_j q_ij / scale_weights (see `hw.mapping`). The
quantisation is passed straight through (dq/dw := scale_weights), so

    dL/dw_ij = r_i gain_j dL/dw_chip_ij.

The network's own `params` are not used by either pass: the chip is what it is.

Faults: a run that stalls, returns fewer spikes than the chip counted, or impossible
spikes is retried `retries` times, waiting backoff_s * 2**k before retry k, each
retry logged on the `snnsim.hw` logger; then HardwareError is raised before any
weight changes, so the last checkpoint stays valid.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from backends import cpu as cpu_backend
from calibration import Calibration, file_sha256, load_calibration
from hw.config import HardwareConfig
from hw.connection import (
    Connection,
    CorruptReply,
    HardwareError,
    MockConnection,
    RealConnection,
    RunFault,
    RunResult,
    TruncatedReply,
)
from hw.mapping import (
    N_NEURON_CIRCUITS,
    MappingError,
    NetworkMapping,
    place_network,
    quantize_weights,
)
from hw.spike_train import SpikeTrain, build_train, cut_spikes
from snnsim.atomic import atomic_path
from snnsim.params import NeuronParams

log = logging.getLogger("snnsim.hw")

STAT_KEYS = ("runs", "retries", "configures", "boundary_spikes", "discarded_spikes",
             "stray_spikes", "late_inputs", "clipped_weights")


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


class ChipSession:
    """A feed-forward network of `layer_shapes` [(inputs incl. biases, neurons), ...] on a chip.

    Raises MappingError if the network does not fit. `connection` overrides the one
    the config asks for (tests inject a prepared mock).
    """

    def __init__(self, config: HardwareConfig, layer_shapes, connection: Connection | None = None):
        self.config = config
        self.calibration: Calibration = load_calibration(config.calibration)
        self.calibration_sha256 = file_sha256(config.calibration)
        if abs(self.calibration.time_scale_us - config.time_scale_us) > 1e-9:
            log.warning("calibration %s was made for a time scale of %g us, the config uses "
                        "%g us per model time unit", config.calibration,
                        self.calibration.time_scale_us, config.time_scale_us)
        self.mapping: NetworkMapping = place_network(layer_shapes, config.n_input_repetitions)
        self.rng = np.random.default_rng(config.seed)
        self.us_per_unit = config.time_scale_us / float(config.model_neuron_params.tau_syn)
        self.connection = connection if connection is not None else self._connect()
        self.chip_config = self.mapping.chip_config()
        self._written: list[np.ndarray | None] = [None] * len(self.mapping.layers)
        self._configured = False
        self._counts = dict.fromkeys(STAT_KEYS, 0)
        self._layer_params = []
        self._multipliers = []
        for layer in self.mapping.layers:
            params, gain = self.calibration.model_params(layer.circuits,
                                                         config.model_neuron_params,
                                                         config.time_scale_us)
            self._layer_params.append(params)
            self._multipliers.append(layer.replicas[:, None] * gain[None, :])

    def _connect(self) -> Connection:
        c = self.config
        if c.connection == "real":
            return RealConnection(self.calibration, c.timeout_s)
        return MockConnection(self.calibration, c.model_neuron_params,
                              scale_weights=c.scale_weights, time_scale_us=c.time_scale_us,
                              jitter=c.jitter, drop_probability=c.drop_probability, rng=self.rng)

    @property
    def stats(self) -> dict[str, int]:
        """Counters of this session: runs, retries, configures, boundary / discarded / stray
        spikes, late inputs, clipped weights, and what the connection counts itself (the
        mock: dropped_spikes, crossing_spikes - the true number of spikes that left their
        sample's window)."""
        out = dict(self._counts)
        connection_stats = getattr(self.connection, "stats", None)
        if isinstance(connection_stats, dict):
            for key in ("dropped_spikes", "crossing_spikes"):
                if key in connection_stats:
                    out[key] = int(connection_stats[key])
        return out

    @property
    def chip_id(self) -> str:
        return self.connection.chip_id

    @property
    def n_layers(self) -> int:
        return len(self.mapping.layers)

    # -- the layers as backends --------------------------------------------------------------

    def layer_backend(self, index: int) -> ChipLayerBackend:
        """Backend object (forward on the chip, backward in the model) for layer `index`."""
        self._check_index(index)
        return ChipLayerBackend(self, index)

    def ideal_backend(self, index: int) -> IdealLayerBackend:
        """The chip's ideal model for layer `index`: nominal parameters, float weights times
        the input replication, no fixed-pattern noise, no jitter (for training in software
        what is then deployed on the chip)."""
        self._check_index(index)
        return IdealLayerBackend(self, index)

    def neuron_params(self, index: int) -> NeuronParams:
        """Per-neuron parameters (model units) of layer `index`'s neuron circuits."""
        self._check_index(index)
        return self._layer_params[index]

    def weight_multiplier(self, index: int) -> np.ndarray:
        """r_i gain_j [N, M]: what the chip multiplies a (quantised) weight of layer `index` by."""
        self._check_index(index)
        return self._multipliers[index]

    def quantized_weights(self, index: int, w: torch.Tensor) -> np.ndarray:
        """Signed 6-bit values q[N, M] of layer `index` (MappingError for out-of-range weights
        if the config says `weight_overflow: error`)."""
        return self._quantize(index, w)[0]

    def _quantize(self, index: int, w: torch.Tensor) -> tuple[np.ndarray, int]:
        self._check_weights(index, w)
        w = _as_numpy(w)
        q, clipped = quantize_weights(w, self.config.scale_weights)
        if clipped and self.config.weight_overflow == "error":
            i, j = np.argwhere(np.abs(np.rint(w * self.config.scale_weights)) > 63)[0]
            raise MappingError(f"layer {index}: weight w[{i}, {j}] = {w[i, j]:g} is outside the "
                               f"chip's range +-{self.config.max_weight:g} (63 / scale_weights); "
                               f"{clipped} weights are (weight_overflow: error)")
        return q, clipped

    def effective_weights(self, index: int, w: torch.Tensor) -> torch.Tensor:
        """The weights the chip applies in model units: r_i gain_j q_ij / scale_weights."""
        q = self.quantized_weights(index, w)
        w_chip = self._multipliers[index] * q / self.config.scale_weights
        return torch.from_numpy(w_chip).to(dtype=w.dtype, device=w.device)

    # -- running -------------------------------------------------------------------------------

    def run_layer(self, index: int, t_in: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Measured first-spike times t_out[B, M] of layer `index` on the chip."""
        self._check_index(index)
        layer = self.mapping.layers[index]
        if t_in.dim() != 2 or t_in.shape[1] != layer.n_inputs:
            raise ValueError(f"layer {index} is mapped with {layer.n_inputs} inputs; got t_in of "
                             f"shape {tuple(t_in.shape)}")
        q, clipped = self._quantize(index, w)
        self._counts["clipped_weights"] += clipped
        if self._written[index] is None or not np.array_equal(q, self._written[index]):
            self.mapping.write_weights(self.chip_config, index, q)
            self._written[index] = q
            self._configured = False
        if not self._configured:
            self._with_retries(f"configuring layer {index}",
                               lambda: self.connection.configure(self.chip_config))
            self._counts["configures"] += 1
            self._configured = True
        times = _as_numpy(t_in)
        train = build_train(times, layer.labels, self.config.sample_gap, self.us_per_unit)
        self._counts["late_inputs"] += int(np.count_nonzero(np.isfinite(times)
                                                          & (times >= self.config.sample_gap)))
        reply = self._with_retries(f"run of layer {index} ({t_in.shape[0]} samples)",
                                   lambda: self._checked_run(train))
        t_out, counts = cut_spikes(reply.spikes, train, layer.circuits, self.us_per_unit)
        for key, value in counts.items():
            self._counts[key] += value
        self._counts["runs"] += 1
        return torch.from_numpy(t_out).to(dtype=t_in.dtype, device=t_in.device)

    def _checked_run(self, train: SpikeTrain) -> RunResult:
        reply = self.connection.run(train)
        spikes = reply.spikes
        if reply.event_count is not None and reply.event_count != len(spikes):
            raise TruncatedReply(f"reply holds {len(spikes)} spikes but the chip counted "
                                 f"{reply.event_count}")
        if len(spikes):
            bad = ((spikes.times_us < 0) | (spikes.times_us > train.duration_us)
                   | (spikes.ids < 0) | (spikes.ids >= N_NEURON_CIRCUITS))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise CorruptReply(f"reply holds {int(bad.sum())} impossible spikes, e.g. neuron "
                                   f"{int(spikes.ids[k])} at {spikes.times_us[k]:g} us in a run "
                                   f"of {train.duration_us:g} us")
            if np.any(np.diff(spikes.times_us) < 0):
                order = np.argsort(spikes.times_us, kind="stable")
                spikes = SpikeTrain(spikes.times_us[order], spikes.ids[order],
                                    spikes.duration_us, spikes.sample_period_us)
        return RunResult(spikes=spikes, event_count=reply.event_count)

    def _with_retries(self, what: str, action):
        attempt = 0
        while True:
            try:
                return action()
            except RunFault as fault:
                if attempt == self.config.retries:
                    raise HardwareError(
                        f"{what} on chip {self.chip_id} failed {attempt + 1} times; last error: "
                        f"{fault}. The forward pass of this batch did not complete, so nothing "
                        f"was learned from it; check the chip (connection: "
                        f"{self.config.connection}) and continue from the last checkpoint"
                    ) from fault
                delay = self.config.backoff_s * 2 ** attempt
                attempt += 1
                log.warning("%s on chip %s failed (%s: %s); retry %d of %d in %.2f s", what,
                            self.chip_id, type(fault).__name__, fault, attempt,
                            self.config.retries, delay)
                self._counts["retries"] += 1
                if delay > 0:
                    time.sleep(delay)

    # -- bookkeeping -------------------------------------------------------------------------

    def describe(self) -> dict:
        """Which chip, calibration and mapping this session uses (plain data, for checkpoints)."""
        cal = self.calibration
        return {
            "backend": "bss2",
            "connection": self.config.connection,
            "chip_id": self.chip_id,
            "calibration": {"path": str(self.config.calibration),
                            "sha256": self.calibration_sha256,
                            "chip_id": cal.chip_id, "created": cal.created,
                            "generator": cal.generator},
            "hardware_config": self.config.to_dict(),
            "mapping": self.mapping.describe(),
            "jitter": self.config.jitter,
            "drop_probability": self.config.drop_probability,
            "seed": self.config.seed,
            "stats": self.stats,
        }

    def state_dict(self) -> dict:
        """RNG state and counters, so that a continued run draws the same jitter."""
        return {"rng": self.rng.bit_generator.state, "stats": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._counts.update({k: v for k, v in state.get("stats", {}).items() if k in STAT_KEYS})

    def export(self, path: str | Path, weights: list[torch.Tensor],
               t_in: torch.Tensor | None = None) -> Path:
        """Dry run: write the full chip configuration (and the spike train of layer 0's input
        batch `t_in`, if given) to a YAML file a person can read; nothing is run."""
        if len(weights) != self.n_layers:
            raise ValueError(f"export needs the weights of all {self.n_layers} layers, got "
                             f"{len(weights)}")
        config = self.mapping.chip_config()
        layers = []
        for index, (layer, w) in enumerate(zip(self.mapping.layers, weights)):
            q = self.quantized_weights(index, w)
            self.mapping.write_weights(config, index, q)
            sources = []
            for i in range(layer.n_inputs):
                kind = "neuron" if i < layer.n_neuron_sources else "external"
                replicas = []
                for k in range(int(layer.replicas[i])):
                    replicas.append({"label": int(layer.labels[i, k]), "rows": {
                        int(h): {"excitatory": int(layer.pair_rows[hi, i, k]),
                                 "inhibitory": int(layer.pair_rows[hi, i, k]) + 1}
                        for hi, h in enumerate(layer.hemispheres)}})
                sources.append({"input": i, "kind": kind, "replicas": replicas})
            layers.append({**layer.describe(),
                           "circuits": [int(c) for c in layer.circuits],
                           "sources": sources,
                           "weights_6bit_signed": q.tolist()})
        rows = []
        for h in range(config.row_label.shape[0]):
            for r in np.flatnonzero(config.row_label[h] >= 0):
                columns = np.flatnonzero(config.synapses[h, r])
                rows.append({"hemisphere": h, "row": int(r), "label": int(config.row_label[h, r]),
                             "sign": "excitatory" if config.row_sign[h, r] > 0 else "inhibitory",
                             "synapses": {int(c): int(config.synapses[h, r, c]) for c in columns}})
        document = {"chip_id": self.chip_id,
                    "calibration": {"path": str(self.config.calibration),
                                    "sha256": self.calibration_sha256},
                    "hardware_config": self.config.to_dict(),
                    "mapping": self.mapping.describe(),
                    "layers": layers,
                    "synapse_rows": rows,
                    "enabled_neuron_circuits": [int(c) for c in
                                                np.flatnonzero(config.neuron_enabled)]}
        if t_in is not None:
            train = build_train(_as_numpy(t_in), self.mapping.layers[0].labels,
                                self.config.sample_gap, self.us_per_unit)
            document["spike_train_layer_0"] = {
                "duration_us": float(train.duration_us),
                "sample_period_us": float(train.sample_period_us),
                "events_time_us_label": [[float(t), int(i)] for t, i in
                                         zip(train.times_us, train.ids)]}
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            f.write(f"# BrainScaleS-2 chip configuration (dry run) of chip {self.chip_id}\n")
            yaml.safe_dump(document, f, sort_keys=False, default_flow_style=None, width=100)
        return path

    # -- checks ------------------------------------------------------------------------------

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.n_layers:
            raise IndexError(f"layer index {index} out of range; the session maps "
                             f"{self.n_layers} layers")

    def _check_weights(self, index: int, w: torch.Tensor) -> None:
        layer = self.mapping.layers[index]
        if tuple(w.shape) != (layer.n_inputs, layer.n_neurons):
            raise ValueError(f"layer {index} is mapped as {layer.n_inputs} inputs x "
                             f"{layer.n_neurons} neurons; got weights of shape {tuple(w.shape)}")


class ChipLayerBackend:
    """Backend object of one mapped layer: forward on the chip, backward in the chip's model."""

    def __init__(self, session: ChipSession, index: int):
        self.session = session
        self.index = index

    def forward(self, t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
        return self.session.run_layer(self.index, t_in, w)

    def backward(self, t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor,
                 grad_t_out: torch.Tensor, params: NeuronParams,
                 max_dw_norm: float | None = None):
        s = self.session
        w_chip = s.effective_weights(self.index, w)
        grad_t_in, grad_w_chip = cpu_backend.backward(t_in, w_chip, t_out, grad_t_out,
                                                      s.neuron_params(self.index), max_dw_norm)
        multiplier = torch.from_numpy(s.weight_multiplier(self.index)).to(grad_w_chip)
        return grad_t_in, grad_w_chip * multiplier

    def __repr__(self) -> str:
        return f"ChipLayerBackend(chip={self.session.chip_id!r}, layer={self.index})"


class IdealLayerBackend:
    """The chip's ideal model for one layer: the `cpu` backend with the nominal hardware model,
    weights times their input replication, no quantisation, noise or jitter."""

    def __init__(self, session: ChipSession, index: int):
        self.session = session
        self.index = index
        self._replicas = session.mapping.layers[index].replicas

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return w * torch.from_numpy(self._replicas[:, None]).to(w)

    def forward(self, t_in: torch.Tensor, w: torch.Tensor, params: NeuronParams) -> torch.Tensor:
        return cpu_backend.forward(t_in, self._w(w), self.session.config.model_neuron_params)

    def backward(self, t_in: torch.Tensor, w: torch.Tensor, t_out: torch.Tensor,
                 grad_t_out: torch.Tensor, params: NeuronParams,
                 max_dw_norm: float | None = None):
        grad_t_in, grad_w = cpu_backend.backward(t_in, self._w(w), t_out, grad_t_out,
                                                 self.session.config.model_neuron_params,
                                                 max_dw_norm)
        return grad_t_in, grad_w * torch.from_numpy(self._replicas[:, None]).to(grad_w)

    def __repr__(self) -> str:
        return f"IdealLayerBackend(layer={self.index})"
