"""Exchange spiking networks with other simulators and chips through NIR.

NIR (the Neuromorphic Intermediate Representation, package `nir`) describes a network
as a graph of continuous-time nodes driven by spikes taken as Dirac impulses. A
snnsim network of `lif_ttfs` layers becomes

    Input ─> Linear ─> CubaLIF ─> Linear ─> CubaLIF ─> ... ─> Output
      └───────────────────────────> Linear ─┘   (bias spikes of the later layers)

**Neuron.** Ours (docs/design.md, `snnsim.params`), with C = τ_m g_L:

    C dV/dt = -g_L (V - E_L) + I,   I(t) = Σ_i w_i H(t - t_i) exp(-(t - t_i)/τ_s)

is the same system as

    τ_s dI/dt = -I + τ_s Σ_i w_i δ(t - t_i)         (I jumps by w_i at t_i)
    τ_m dV/dt = (E_L - V) + I / g_L

NIR's CubaLIF is  τ_syn dI/dt = -I + w_in S(t),  τ_mem dV/dt = (v_leak - V) + R I,  with
S(t) = Σ_i W_ji δ(t - t_i) the output of the Linear node in front of it, so an input
spike makes I jump by w_in W_ji / τ_syn. The two coincide for

    tau_syn = s τ_s,  tau_mem = s τ_m,  w_in = tau_syn,  r = 1/g_L,
    v_leak = E_L,  v_threshold = θ,  Linear.weight = Wᵀ   ([out, in], NIR's layout)

(s: the `time_scale`, NIR time units per model time unit, default 1; w_in = tau_syn makes
the jump exactly w_i in any time unit). Import inverts this with the weights
W_ij = Linear.weight[j, i] · w_in[j] / tau_syn[j], which is exact for our own graphs.

**Fire once.** Our neurons spike at most once: the first threshold crossing. NIR's
CubaLIF resets V to v_reset after a spike; the export sets
v_reset = E_L - FIRE_ONCE_DEPTH (θ - E_L), from which the membrane needs about
τ_m ln(FIRE_ONCE_DEPTH) ≈ 20.7 τ_m to climb back, far beyond the few τ of a
time-to-first-spike readout; a time-stepped simulator that honours v_reset thus
reproduces the first spikes. Each CubaLIF's metadata records `fires_once = 1` and the
depth.

**Bias spikes.** The Input node carries the data's spike times in its first `n_inputs`
channels and then one channel per bias spike of every layer, firing once at the bias
time (scaled by s); the Input node's metadata lists each bias channel's layer and time.
Layer 0 reads its bias channels through its own Linear; every later layer through an
extra Linear `layers.<k>.bias` from the Input node (NIR sums the edges into a node).

**Config.** The run's resolved config travels as YAML in the graph's metadata
(`snnsim_config`); import takes the network (sizes, weights, neuron parameters, bias
times) from the graph and everything else (data set, task, training parameters) from
that config, from `config=` when given, or from defaults with a warning for a foreign graph.

Rate layers (`linear` and the families' layers) have no NIR counterpart of their
activations (NIR has no ReLU/tanh node): export refuses them with an error naming the
layer and its type. Networks with task heads are refused the same way.
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from snnsim.atomic import atomic_path
from snnsim.errors import ConfigError
from snnsim.registry import COMMANDS, Command

log = logging.getLogger(__name__)

FORMAT = "snnsim-nir"
FORMAT_VERSION = 1
FIRE_ONCE_DEPTH = 1e9
"""v_reset = E_L - FIRE_ONCE_DEPTH (θ - E_L): the exported neurons cannot fire again for
about τ_m ln(FIRE_ONCE_DEPTH) ≈ 20.7 τ_m after their first spike."""
SUPPORTED_NODES = ("Input", "Output", "Linear", "Affine", "CubaLIF")
# The data set of a foreign graph that brings no config and gets none.
DEFAULT_DATASET = "yin_yang"


class NIRFormatError(ValueError):
    """A NIR file or graph that snnsim cannot read, naming the node and what was expected."""


def _nir():
    try:
        import nir
    except ImportError as error:  # pragma: no cover - nir is a dependency of the extra
        raise ConfigError("NIR export and import need the package 'nir': "
                          "pip install 'snnsim[interop]' (or pip install nir)") from error
    return nir


# -- export --------------------------------------------------------------------------------------

def _effective_weight(layer, config: dict) -> np.ndarray:
    """The weights the layer's forward pass uses (rounded under rounding_precision)."""
    p = config["training_params"].get("rounding_precision")
    w = layer.rounded_weight(p) if p else layer.weight
    return w.detach().to(torch.float64).cpu().numpy().copy()


def _spiking_layers(network) -> list:
    from snnsim.layers import LIFLayer

    if len(network.heads):
        raise ConfigError(f"NIR export: the network has task heads {sorted(network.heads)}; "
                          f"only a single stack of lif_ttfs layers can be exported")
    for path, layer in network.named_layers():
        if not isinstance(layer, LIFLayer):
            kind = "a rate layer" if layer.kind == "rate" else "a spiking layer without a " \
                                                              "CubaLIF counterpart"
            raise ConfigError(
                f"NIR export: layer {path} has type {layer.type_name!r} ({kind}); only "
                f"networks of lif_ttfs layers can be exported (NIR has no node for the "
                f"activations of rate layers)")
    return list(network.layers)


def _scalar_neuron(config: dict) -> dict:
    p = config["neuron_params"]
    tau_mem = p["tau_mem"] if p["tau_mem"] is not None else p["tau_syn"]
    return {"tau_syn": float(p["tau_syn"]), "tau_mem": float(tau_mem),
            "threshold": float(p["threshold"]), "leak": float(p["leak"]),
            "g_leak": float(p["g_leak"])}


def network_to_nir(network, config: dict, time_scale: float = 1.0, source: str = "",
                   epoch: int | None = None):
    """The NIR graph of a network of lif_ttfs layers built from the resolved `config`.

    `time_scale` (NIR time units per model time unit) multiplies every time constant and
    bias time; the mapping is in this module's docstring.
    """
    nir = _nir()
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale)
            and time_scale > 0):
        raise ValueError(f"NIR export: time_scale = {time_scale!r}: expected a number > 0")
    layers = _spiking_layers(network)
    neuron = _scalar_neuron(config)
    n_data = network.n_inputs
    bias_layer, bias_time = [], []
    for k, layer in enumerate(layers):
        bias_layer += [k] * len(layer.bias_times)
        bias_time += [float(t) * time_scale for t in layer.bias_times.tolist()]
    n_channels = n_data + len(bias_time)
    nodes = {"input": nir.Input(np.array([n_channels]), metadata={
        "n_data_inputs": n_data,
        "bias_channel_layers": np.array(bias_layer, dtype=np.int64),
        "bias_channel_times": np.array(bias_time, dtype=np.float64),
        "encoding": "one spike per channel: channels 0..n_data_inputs-1 at the data's "
                    "encoded spike times (none for +inf), then one channel per bias spike "
                    "at bias_channel_times",
    })}
    edges = []
    previous, first_bias = "input", n_data
    for k, layer in enumerate(layers):
        name = f"layers.{k}"
        w = _effective_weight(layer, config)
        n_in, n_bias, size = layer.n_inputs, len(layer.bias_times), layer.size
        if k == 0:
            weight = np.zeros((size, n_channels))
            weight[:, :n_in] = w[:n_in].T
            weight[:, first_bias:first_bias + n_bias] = w[n_in:].T
            nodes[f"{name}.weight"] = nir.Linear(weight)
        else:
            nodes[f"{name}.weight"] = nir.Linear(np.ascontiguousarray(w[:n_in].T))
            if n_bias:
                bias = np.zeros((size, n_channels))
                bias[:, first_bias:first_bias + n_bias] = w[n_in:].T
                nodes[f"{name}.bias"] = nir.Linear(bias)
                edges += [("input", f"{name}.bias"), (f"{name}.bias", name)]
        edges += [(previous, f"{name}.weight"), (f"{name}.weight", name)]
        ones = np.ones(size)
        tau_syn = neuron["tau_syn"] * time_scale
        nodes[name] = nir.CubaLIF(
            tau_syn=tau_syn * ones, tau_mem=neuron["tau_mem"] * time_scale * ones,
            r=ones / neuron["g_leak"], v_leak=neuron["leak"] * ones,
            v_threshold=neuron["threshold"] * ones,
            v_reset=(neuron["leak"] - FIRE_ONCE_DEPTH * (neuron["threshold"] - neuron["leak"]))
            * ones,
            w_in=tau_syn * ones,
            metadata={"fires_once": 1, "fire_once_depth": FIRE_ONCE_DEPTH,
                      "snnsim_layer": name, "n_biases": n_bias})
        previous, first_bias = name, first_bias + n_bias
    nodes["output"] = nir.Output(np.array([layers[-1].size]))
    edges.append((previous, "output"))
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "time_scale": float(time_scale),
                "snnsim_config": yaml.safe_dump(config, sort_keys=False),
                "neuron_model": "CubaLIF nodes fire once (first threshold crossing); spikes "
                                "are Dirac impulses; time unit = time_scale x the model's "
                                "(tau_syn of the config)"}
    if source:
        metadata["source"] = str(source)
    if epoch is not None:
        metadata["epoch"] = int(epoch)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(graph, path: str | Path) -> Path:
    """Write `graph` to the NIR (HDF5) file `path`, atomically."""
    nir = _nir()
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path


def export_nir(results_dir: Path, output: Path, epoch: int | None = None,
               time_scale: float = 1.0) -> Path:
    """Write the network of a results folder (checkpoint `epoch`, default the latest) as NIR."""
    from snnsim.runs import load_network

    config, network, epoch = load_network(results_dir, epoch)
    graph = network_to_nir(network, config, time_scale, source=str(Path(results_dir).resolve()),
                           epoch=epoch)
    return write_nir(graph, output)


# -- reading -------------------------------------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_nir(path: str | Path):
    """The NIRGraph in the file `path`; NIRFormatError naming the node for a node that NIR
    cannot build (unknown type, missing or malformed parameter)."""
    nir = _nir()
    import h5py
    from nir.serialization import hdf2dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFormatError(f"{path}: an HDF5 file without a 'node' group: not a NIR "
                                     f"file")
            data = hdf2dict(f["node"])
    except OSError as error:
        raise NIRFormatError(f"{path}: not a NIR file (NIR files are HDF5; {error})") from None
    if data.get("type") != "NIRGraph" or not isinstance(data.get("nodes"), dict):
        raise NIRFormatError(f"{path}: the top node is {data.get('type')!r}, expected a "
                             f"NIRGraph with nodes")
    nodes = {}
    for name, node in data["nodes"].items():
        kind = _text(node.get("type", "?")) if isinstance(node, dict) else "?"
        if kind not in SUPPORTED_NODES:
            raise NIRFormatError(f"{path}: node {name!r} has type {kind!r}; snnsim reads "
                                 f"{', '.join(SUPPORTED_NODES)}")
        try:
            nodes[name] = nir.dict2NIRNode(node)
        except TypeError as error:
            raise NIRFormatError(f"{path}: node {name!r} ({kind}) is missing a parameter or "
                                 f"has an unknown one: {error}") from None
        except (AssertionError, ValueError, KeyError) as error:
            raise NIRFormatError(f"{path}: node {name!r} ({kind}) has malformed parameters"
                                 f"{': ' + str(error) if str(error) else ''} (e.g. arrays "
                                 f"of different shapes)") from None
    edges = data.get("edges")
    try:
        edges = [(_text(a), _text(b)) for a, b in np.asarray(edges).reshape(-1, 2)]
    except (TypeError, ValueError):
        raise NIRFormatError(f"{path}: edges {edges!r}: expected pairs of node names") from None
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


# -- import --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layer:
    """One CubaLIF node read back as a lif_ttfs layer: weights [n_in + n_bias, size]."""

    name: str
    weight: np.ndarray
    bias_times: list[float]


def _vector(graph, name: str, field: str, size: int) -> np.ndarray:
    value = np.asarray(getattr(graph.nodes[name], field), dtype=np.float64)
    value = np.broadcast_to(value, (size,)) if value.size == 1 else value
    if value.shape != (size,) or not np.all(np.isfinite(value)):
        raise NIRFormatError(f"node {name!r}: {field} has shape {value.shape}, expected "
                             f"({size},) finite values")
    return value


def _uniform(graph, name: str, field: str, size: int) -> float:
    value = _vector(graph, name, field, size)
    if np.any(value != value[0]):
        raise NIRFormatError(
            f"node {name!r}: {field} differs between neurons ({value.min()} .. {value.max()}); "
            f"snnsim's config has one value for every neuron")
    return float(value[0])


def _size(graph, name: str) -> int:
    node = graph.nodes[name]
    shape = np.asarray(node.output_type.get("output", []) if hasattr(node, "output_type")
                       else [])
    if shape.size != 1:
        raise NIRFormatError(f"node {name!r} ({type(node).__name__}) has output shape "
                             f"{shape.tolist()}; snnsim reads flat (1-D) layers")
    return int(shape[0])


def _weight_matrix(graph, name: str) -> np.ndarray:
    node = graph.nodes[name]
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 2 or not np.all(np.isfinite(weight)):
        raise NIRFormatError(f"node {name!r} ({type(node).__name__}): weight of shape "
                             f"{weight.shape}: expected a finite [out, in] matrix")
    bias = getattr(node, "bias", None)
    if bias is not None and np.any(np.asarray(bias) != 0):
        raise NIRFormatError(
            f"node {name!r} (Affine) has a non-zero bias: a constant input current has no "
            f"counterpart in snnsim's neurons (their biases are spikes at fixed times)")
    return weight


def _neuron_params(graph, names: list[str], time_scale: float) -> dict:
    values = {}
    for name in names:
        size = _size(graph, name)
        here = {field: _uniform(graph, name, field, size)
                for field in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold")}
        if values and here != values:
            changed = [f for f in here if here[f] != values[f]]
            raise NIRFormatError(f"node {name!r}: {', '.join(changed)} differ from node "
                                 f"{names[0]!r}; snnsim uses one neuron_params for all layers")
        values = here
    if values["r"] <= 0 or values["tau_syn"] <= 0 or values["tau_mem"] <= 0:
        raise NIRFormatError(f"node {names[0]!r}: r, tau_syn and tau_mem must be > 0, got "
                             f"{values['r']}, {values['tau_syn']}, {values['tau_mem']}")
    return {"tau_syn": values["tau_syn"] / time_scale, "tau_mem": values["tau_mem"] / time_scale,
            "threshold": values["v_threshold"], "leak": values["v_leak"],
            "g_leak": 1.0 / values["r"]}


def _check_fire_once(graph, name: str, size: int) -> None:
    node = graph.nodes[name]
    theta, leak = _vector(graph, name, "v_threshold", size), _vector(graph, name, "v_leak", size)
    reset = np.asarray(node.v_reset, dtype=np.float64)
    deep = np.all(reset <= leak - 1e6 * (theta - leak))
    if not deep and not int(np.asarray(node.metadata.get("fires_once", 0))):
        log.warning("node %r resets to v_reset = %s after a spike and may fire again; snnsim's "
                    "neurons fire once (first spike only), so a network that relies on later "
                    "spikes will compute something else here", name, np.unique(reset)[:3])


def _chain(graph) -> tuple[str, list[str], dict[str, list[str]], dict[str, str]]:
    """(input node, CubaLIF nodes in layer order, incoming weight nodes of each CubaLIF,
    source of each weight node), after checking that the graph is such a chain."""
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    for name, kind in kinds.items():
        if kind not in SUPPORTED_NODES:
            raise NIRFormatError(f"node {name!r} has type {kind!r}; snnsim reads "
                                 f"{', '.join(SUPPORTED_NODES)}")
    for a, b in graph.edges:
        for end in (a, b):
            if end not in kinds:
                raise NIRFormatError(f"edge ({a!r}, {b!r}) names node {end!r}, which the graph "
                                     f"does not have")
    inputs = [n for n, k in kinds.items() if k == "Input"]
    outputs = [n for n, k in kinds.items() if k == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRFormatError(f"the graph has Input nodes {inputs} and Output nodes {outputs}; "
                             f"snnsim reads graphs with exactly one of each")
    sources = {name: [a for a, b in graph.edges if b == name] for name in kinds}
    targets = {name: [b for a, b in graph.edges if a == name] for name in kinds}
    weight_source, incoming = {}, {}
    for name, kind in kinds.items():
        if kind in ("Linear", "Affine"):
            if len(sources[name]) != 1 or kinds[sources[name][0]] not in ("Input", "CubaLIF"):
                raise NIRFormatError(f"node {name!r} ({kind}) has inputs {sources[name]}, "
                                     f"expected the Input node or one CubaLIF node")
            if len(targets[name]) != 1 or kinds[targets[name][0]] != "CubaLIF":
                raise NIRFormatError(f"node {name!r} ({kind}) feeds {targets[name]}; snnsim "
                                     f"reads weight nodes that feed one CubaLIF node")
            weight_source[name] = sources[name][0]
        elif kind == "CubaLIF":
            if not sources[name] or any(kinds[s] not in ("Linear", "Affine")
                                        for s in sources[name]):
                raise NIRFormatError(f"node {name!r} (CubaLIF) has inputs {sources[name]}; "
                                     f"expected Linear or Affine nodes only")
            incoming[name] = sources[name]
    feeders = {lif: {weight_source[w] for w in ws} for lif, ws in incoming.items()}
    first = [lif for lif, fed_by in feeders.items() if fed_by == {inputs[0]}]
    if len(first) != 1:
        raise NIRFormatError(f"CubaLIF nodes fed by the Input node alone: {first}; expected "
                             f"exactly one (the first layer of a feed-forward chain)")
    order = first
    while True:
        following = [lif for lif, fed_by in feeders.items() if order[-1] in fed_by]
        if not following:
            break
        if len(following) > 1 or following[0] in order:
            raise NIRFormatError(f"node {order[-1]!r} feeds CubaLIF nodes {following}; snnsim "
                                 f"reads a feed-forward chain of layers (no recurrence, no "
                                 f"branches)")
        extra = feeders[following[0]] - {order[-1], inputs[0]}
        if extra:
            raise NIRFormatError(f"node {following[0]!r} is fed by {sorted(extra)} besides its "
                                 f"previous layer {order[-1]!r}; snnsim layers take the "
                                 f"previous layer and bias channels only")
        order.append(following[0])
    unused = [n for n in incoming if n not in order]
    if unused:
        raise NIRFormatError(f"CubaLIF nodes {unused} are not on the chain {order}")
    if sources[outputs[0]] != [order[-1]]:
        raise NIRFormatError(f"the Output node {outputs[0]!r} is fed by {sources[outputs[0]]}, "
                             f"expected the last layer {order[-1]!r}")
    return inputs[0], order, incoming, weight_source


def _bias_channels(graph, input_name: str, n_channels: int) -> tuple[int, np.ndarray, np.ndarray]:
    meta = graph.nodes[input_name].metadata or {}
    if "n_data_inputs" not in meta:
        return n_channels, np.zeros(0, dtype=np.int64), np.zeros(0)
    n_data = int(np.asarray(meta["n_data_inputs"]))
    layers = np.atleast_1d(np.asarray(meta.get("bias_channel_layers", []), dtype=np.int64))
    times = np.atleast_1d(np.asarray(meta.get("bias_channel_times", []), dtype=np.float64))
    if n_data + len(layers) != n_channels or len(times) != len(layers):
        raise NIRFormatError(
            f"node {input_name!r}: metadata n_data_inputs = {n_data} with {len(layers)} bias "
            f"channel layers and {len(times)} times does not fit its {n_channels} channels")
    return n_data, layers, times


def nir_to_layers(graph, time_scale: float | None = None) -> tuple[int, dict, list[_Layer]]:
    """(n_inputs, neuron_params, layers) of a NIR graph of the form this module writes."""
    if time_scale is None:
        time_scale = float(np.asarray(graph.metadata.get("time_scale", 1.0)))
    input_name, order, incoming, weight_source = _chain(graph)
    n_channels = _size(graph, input_name)
    n_data, bias_layer, bias_time = _bias_channels(graph, input_name, n_channels)
    neuron = _neuron_params(graph, order, time_scale)
    layers, previous = [], input_name
    for k, name in enumerate(order):
        size = _size(graph, name)
        _check_fire_once(graph, name, size)
        scale = _vector(graph, name, "w_in", size) / _vector(graph, name, "tau_syn", size)
        from_previous = np.zeros((size, _size(graph, previous)))
        from_input = np.zeros((size, n_channels))
        for w in incoming[name]:
            weight, source = _weight_matrix(graph, w), weight_source[w]
            target = from_previous if source == previous else from_input
            if weight.shape != target.shape:
                raise NIRFormatError(f"node {w!r}: weight of shape {weight.shape} between "
                                     f"{source!r} ({target.shape[1]} outputs) and {name!r} "
                                     f"({size} neurons): expected {target.shape}")
            target += weight
        if previous == input_name:  # the first layer reads data and bias channels alike
            data_part, from_input = from_previous[:, :n_data], from_previous.copy()
            from_input[:, :n_data] = 0
        else:
            data_part = from_previous
        own = np.flatnonzero(bias_layer == k) + n_data
        foreign = np.flatnonzero(np.any(from_input != 0, axis=0))
        foreign = foreign[~np.isin(foreign, own)]
        if foreign.size:
            raise NIRFormatError(
                f"node {name!r} reads Input channels {foreign[:5].tolist()}, which are "
                f"neither its data inputs (first layer only) nor its own bias channels")
        weight = np.concatenate([data_part, from_input[:, own]], axis=1).T * scale[None, :]
        layers.append(_Layer(name, np.ascontiguousarray(weight),
                             [float(t) / time_scale for t in bias_time[own - n_data]]))
        previous = name
    return n_data, neuron, layers


def _base_config(graph, config: dict | None) -> dict:
    if config is not None:
        return copy.deepcopy(config)
    text = graph.metadata.get("snnsim_config")
    if text is not None:
        raw = yaml.safe_load(_text(text))
        if not isinstance(raw, dict):
            raise NIRFormatError("graph metadata snnsim_config is not a YAML mapping")
        return raw
    log.warning("the NIR graph carries no snnsim config: using defaults (data set %r, TTFS "
                "loss, 1 epoch); give a config with --config to choose the data set and "
                "training parameters", DEFAULT_DATASET)
    return {"dataset": DEFAULT_DATASET, "training_params": {"epoch_number": 1}}


def _same(value: float, reference) -> float:
    """The config's value where the graph's agrees with it (so round trips are exact)."""
    if reference is not None and math.isclose(value, float(reference), rel_tol=1e-12,
                                              abs_tol=1e-300):
        return float(reference)
    return value


def graph_to_network(graph, config: dict | None = None, time_scale: float | None = None):
    """(resolved config, Network) of a NIR graph: the network from the graph, the rest of
    the config from `config`, else the graph's metadata, else defaults (with a warning)."""
    from snnsim.config import resolve_config
    from snnsim.network import Network

    n_inputs, neuron, layers = nir_to_layers(graph, time_scale)
    raw = _base_config(graph, config)
    old = dict(raw.get("neuron_params") or {})
    reference = {**old, "tau_mem": old.get("tau_mem") or old.get("tau_syn")}
    params = {key: _same(value, reference.get(key)) for key, value in neuron.items()}
    if old.get("tau_mem") is None and params["tau_mem"] == params["tau_syn"]:
        params["tau_mem"] = None  # as the config had it: tau_mem = tau_syn
    raw["neuron_params"] = params
    training = dict(raw.get("training_params") or {"epoch_number": 1})
    missing = training.pop("max_num_missing_spikes", None)  # the published per-layer list
    old_layers = (raw.get("network_layout") or {}).get("layers")
    if not isinstance(old_layers, list) or len(old_layers) != len(layers):
        old_layers = [{} for _ in layers]
    entries = []
    for i, (layer, old_entry) in enumerate(zip(layers, old_layers)):
        old_entry = old_entry if isinstance(old_entry, dict) else {}
        old_times = old_entry.get("bias_times") or []
        times = [_same(t, o) for t, o in zip(layer.bias_times, old_times)] \
            + layer.bias_times[len(old_times):]
        entry = {key: old_entry[key] for key in ("weight_mean", "weight_stdev",
                                                 "max_num_missing_spikes") if key in old_entry}
        if isinstance(missing, list) and len(missing) == len(layers):
            entry.setdefault("max_num_missing_spikes", missing[i])
        entries.append({"type": "lif_ttfs", "size": layer.weight.shape[1],
                        "n_biases": len(times), "bias_times": times, **entry})
    raw["training_params"] = training
    raw["network_layout"] = {"n_inputs": n_inputs, "layers": entries}
    resolved = resolve_config(raw, source="NIR graph config")
    network = Network(resolved, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for module, layer in zip(network.layers, layers):
            module.weight.copy_(torch.from_numpy(layer.weight))
    return resolved, network


def import_nir(path: Path, output: Path | None = None, config_path: Path | None = None,
               time_scale: float | None = None) -> Path:
    """A results folder (as `import-fastanddeep` writes) holding the network of a NIR file."""
    from snnsim.config import read_yaml_mapping
    from snnsim.runs import write_imported_run

    graph = read_nir(path)
    try:
        config, network = graph_to_network(
            graph, read_yaml_mapping(config_path) if config_path else None, time_scale)
    except NIRFormatError as error:
        raise NIRFormatError(f"{path}: {error}") from None
    return write_imported_run(Path(path), output, config, network,
                              "network from the NIR graph; optimiser state and histories "
                              "are not part of NIR")


# -- command line --------------------------------------------------------------------------------

def _time_scale(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"time scale must be a number > 0, got {text!r}")
    return value


def _add_export_arguments(parser) -> None:
    parser.add_argument("results", type=Path, help="results folder of a run (lif_ttfs layers)")
    parser.add_argument("--epoch", type=int, help="checkpoint epoch (default: the latest)")
    parser.add_argument("--output", type=Path, required=True, help="NIR file to write (.nir)")
    parser.add_argument("--time-scale", type=_time_scale, default=1.0, metavar="S",
                        help="NIR time units per model time unit (default 1: NIR times equal "
                             "the config's, tau_syn = 1); e.g. 1e-3 to read tau_syn as 1 ms in "
                             "a simulator that counts seconds")


def _run_export(args) -> None:
    path = export_nir(args.results, args.output, args.epoch, args.time_scale)
    print(f"NIR graph written to {path}")


def _add_import_arguments(parser) -> None:
    parser.add_argument("nir_file", type=Path, help="NIR graph (.nir, HDF5)")
    parser.add_argument("--output", type=Path, help="results folder (default: "
                        "experiment_results/<file>_imported)")
    parser.add_argument("--config", type=Path, help="YAML config for the data set, task and "
                        "training parameters (default: the one the graph carries; defaults "
                        "with a warning for a graph without one); its network is replaced by "
                        "the graph's")
    parser.add_argument("--time-scale", type=_time_scale, metavar="S",
                        help="NIR time units per model time unit (default: the graph's "
                             "metadata, else 1)")


def _run_import(args) -> None:
    results_dir = import_nir(args.nir_file, args.output, args.config, args.time_scale)
    print(f"imported into {results_dir}")


COMMANDS.register(Command(
    "export-nir", "write a trained network of lif_ttfs layers as a NIR graph (CubaLIF nodes "
                  "firing once, bias spikes as input channels, config in the metadata)",
    _add_export_arguments, _run_export))
COMMANDS.register(Command(
    "import-nir", "read a NIR graph into a results folder that inference and eval accept",
    _add_import_arguments, _run_import))
