"""NIR export and import: round trips of every shipped spiking config, the parameter mapping
on a hand-checked neuron against a fine-step integration of the NIR equations, bad files,
and the published Yin-Yang network simulated by a peer simulator (Norse) through its own
NIR import.

Run as a script to measure the peer agreement at another time step, of the exported graph
or (--exact-steps) of the diagnostic exact_step_graph:

    python tests/test_nir.py --dt 0.001 [--exact-steps]
"""
from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

nir = pytest.importorskip("nir", reason="NIR export/import needs the package 'nir' "
                                        "(pip install '.[interop]')")

from snnsim import interchange, runs
from snnsim.cli import main
from snnsim.config import ConfigError, load_config, resolve_config
from snnsim.interchange import NIRFormatError
from snnsim.layers import RunSettings
from snnsim.network import Network, neuron_params_from_config
from snnsim.spike_times import first_spike_times

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = Path(__file__).resolve().parent / "data" / "fastanddeep" / "yinyang_et_300epochs"
PEER_DT = 0.0025  # the CI's time step of the peer simulation, in units of tau_syn


def _spiking_configs() -> list[Path]:
    """The shipped configs whose networks are lif_ttfs layers only (sweeps and rate
    networks are not)."""
    found = []
    for path in sorted((REPO / "experiment_configs").glob("*.yaml")):
        try:
            layout = load_config(path)["network_layout"]
        except ConfigError:
            continue  # a sweep definition, not a run config
        if "heads" not in layout and all(e["type"] == "lif_ttfs" for e in layout["layers"]):
            found.append(path)
    return found


def _forward(network: Network, t_in: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output spike times (reference torch backend)."""
    _, records = network(t_in, ["torch"] * len(network.layers), RunSettings())
    return [r.output for r in records]


def _round_trip(graph, tmp_path: Path, config=None):
    path = interchange.write_nir(graph, tmp_path / "net.nir")
    return interchange.graph_to_network(interchange.read_nir(path), config)


# -- round trips --------------------------------------------------------------------------------

SPIKING_CONFIGS = _spiking_configs()


def test_the_shipped_spiking_configs_are_found():
    names = {p.stem for p in SPIKING_CONFIGS}
    assert {"yin_yang", "yin_yang_small", "mnist", "16x16_mnist", "xor", "bars"} <= names
    assert "bp_mnist" not in names  # a rate network


@pytest.mark.parametrize("config_path", SPIKING_CONFIGS, ids=lambda p: p.stem)
def test_round_trip_gives_identical_spike_times(config_path, tmp_path):
    config = load_config(config_path)
    network = Network(config, torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(1)
    t_in = 0.15 + 1.85 * torch.rand(4, network.n_inputs, generator=generator,
                                    dtype=torch.float64)
    t_in[torch.rand(t_in.shape, generator=generator) < 0.2] = torch.inf
    # Initial weights made for a chip's gain (yin_yang_bss2) hardly spike in the model:
    # scale them up until every layer spikes, or the comparison would be of +inf only.
    for _ in range(4):
        before = _forward(network, t_in)
        if all(torch.isfinite(out).any() for out in before):
            break
        with torch.no_grad():
            for layer in network.layers:
                layer.weight.mul_(4.0)
    assert all(torch.isfinite(out).any() for out in before), "the check needs spikes"

    graph = interchange.network_to_nir(network, config)
    imported_config, imported = _round_trip(graph, tmp_path)
    assert imported_config == config
    for ours, theirs in zip(network.layers, imported.layers):
        assert torch.equal(ours.weight, theirs.weight)
        assert torch.equal(ours.bias_times, theirs.bias_times)
    for a, b in zip(before, _forward(imported, t_in)):
        assert torch.equal(a, b)


def test_export_import_cli_and_inference(tmp_path, capsys):
    imported = tmp_path / "published"
    assert main(["import-fastanddeep", str(PUBLISHED), "--output", str(imported)]) == 0
    nir_file = tmp_path / "yy.nir"
    assert main(["export-nir", str(imported), "--epoch", "300", "--output", str(nir_file)]) == 0
    back = tmp_path / "back"
    assert main(["import-nir", str(nir_file), "--output", str(back)]) == 0
    capsys.readouterr()
    lines = []
    for folder in (imported, back):
        assert main(["inference", str(folder), "--backend", "torch"]) == 0
        lines.append(capsys.readouterr().out)
    assert lines[0] == lines[1] and lines[0].startswith("accuracy: 96.00%")
    assert (back / "IMPORTED.txt").read_text().startswith("Imported from")
    graph = nir.read(nir_file)
    assert graph.metadata["epoch"] == 300
    assert yaml.safe_load(graph.metadata["snnsim_config"])["dataset"] == "yin_yang"
    assert all(int(node.metadata["fires_once"]) == 1 for node in graph.nodes.values()
               if isinstance(node, nir.CubaLIF))


def test_rate_network_export_is_refused_naming_the_layer():
    config = load_config(REPO / "experiment_configs" / "bp_sine.yaml")
    network = Network(config, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=r"layer layers\.0 has type 'linear' \(a rate layer\)"):
        interchange.network_to_nir(network, config)


def test_time_scale_scales_times_and_round_trips(tmp_path):
    config = load_config(REPO / "experiment_configs" / "yin_yang_small.yaml")
    network = Network(config, torch.Generator().manual_seed(3))
    graph = interchange.network_to_nir(network, config, time_scale=1e-3)
    lif = graph.nodes["layers.0"]
    assert np.allclose(lif.tau_syn, 1e-3) and np.allclose(lif.w_in, 1e-3)
    assert np.allclose(graph.nodes["input"].metadata["bias_channel_times"], 0.9e-3)
    _, imported = _round_trip(graph, tmp_path)
    t_in = torch.tensor([[0.2, 1.0, 1.8, 0.6], [1.5, 0.3, 0.5, 1.9]], dtype=torch.float64)
    for a, b in zip(_forward(network, t_in), _forward(imported, t_in)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# -- the parameter mapping on one neuron ---------------------------------------------------------

def _integrate_cubalif(graph, t_in: np.ndarray, t_end: float, steps: int):
    """First and second threshold crossings of the single CubaLIF layer of `graph`, from a
    fine-step RK4 integration of NIR's CubaLIF equations

        tau_syn dI/dt = -I + w_in S(t),   tau_mem dV/dt = (v_leak - V) + r I,
        S(t) = sum_i W[:, i] delta(t - t_i)   (so I jumps by w_in W[:, i] / tau_syn),
        V -> v_reset after a crossing of v_threshold,

    with input spikes at the times `t_in` (plus the bias channels of the Input node); the
    input times must lie on the grid of `steps` steps. Returns (first, second) crossing
    times per neuron, linearly interpolated inside the step (+inf: none)."""
    lif, weight = graph.nodes["layers.0"], graph.nodes["layers.0.weight"].weight
    meta = graph.nodes["input"].metadata
    times = np.concatenate([t_in, np.atleast_1d(meta["bias_channel_times"])])
    h = t_end / steps
    arrive = np.rint(times / h).astype(int)
    assert np.allclose(arrive * h, times, atol=1e-12 * t_end), "inputs must lie on the grid"
    size = weight.shape[0]
    current, v = np.zeros(size), np.array(lif.v_leak, dtype=float)
    crossings = [np.full(size, np.inf), np.full(size, np.inf)]

    def slope(i, u):
        return -i / lif.tau_syn, (lif.v_leak - u + lif.r * i) / lif.tau_mem

    for k in range(steps):
        for channel in np.flatnonzero(arrive == k):
            current = current + lif.w_in * weight[:, channel] / lif.tau_syn
        k1 = slope(current, v)
        k2 = slope(current + h / 2 * k1[0], v + h / 2 * k1[1])
        k3 = slope(current + h / 2 * k2[0], v + h / 2 * k2[1])
        k4 = slope(current + h * k3[0], v + h * k3[1])
        new_current = current + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        new_v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        crossed = (new_v >= lif.v_threshold) & (v < lif.v_threshold)
        for n in np.flatnonzero(crossed):
            when = (k + (lif.v_threshold[n] - v[n]) / (new_v[n] - v[n])) * h
            slot = 0 if np.isinf(crossings[0][n]) else 1
            crossings[slot][n] = min(crossings[slot][n], when)
        new_v = np.where(crossed, lif.v_reset, new_v)
        current, v = new_current, new_v
    return crossings


NEURONS = {  # tau_syn, tau_mem: the three closed forms of the engine
    "equal": (1.0, 1.0),
    "double": (0.8, 1.6),
    "general": (1.0, 1.7),
}


@pytest.mark.parametrize("regime", NEURONS)
def test_cubalif_node_reproduces_the_analytic_spike_time(regime):
    tau_syn, tau_mem = NEURONS[regime]
    scale = 1e-3  # NIR times in "seconds" of a model whose unit is 1 ms
    config = resolve_config({
        "dataset": "xor",
        "neuron_params": {"tau_syn": tau_syn, "tau_mem": tau_mem, "threshold": 0.7,
                          "leak": -0.2, "g_leak": 0.6},
        "network_layout": {"n_inputs": 3, "layers": [
            {"type": "lif_ttfs", "size": 3, "n_biases": 1, "bias_times": [0.5]}]},
        "training_params": {"epoch_number": 1},
    })
    network = Network(config, torch.Generator().manual_seed(0))
    with torch.no_grad():  # rows: 3 inputs then the bias; neuron 2 is driven hard
        network.layers[0].weight.copy_(torch.tensor(
            [[1.6, 0.2, 3.0], [0.6, -0.3, 3.0], [0.4, 0.1, 3.0], [0.3, 0.1, 1.0]],
            dtype=torch.float64))
    t_in = np.array([0.1, 0.3, 0.8])
    ours = first_spike_times(torch.tensor([[*t_in, 0.5]]), network.layers[0].weight.detach(),
                             neuron_params_from_config(config), "torch")[0].numpy()
    assert np.isfinite(ours[[0, 2]]).all() and np.isinf(ours[1])

    graph = interchange.network_to_nir(network, config, time_scale=scale)
    steps = 4000  # RK4 at h = 0.002 tau: error ~1e-11 in V, far inside the step
    first, second = _integrate_cubalif(graph, t_in * scale, 8.0 * scale, steps)
    step = 8.0 / steps
    np.testing.assert_allclose(first / scale, ours, atol=step, rtol=0)
    assert np.all(np.isinf(second)), "the exported neurons must fire once"

    # The fire-once reset is what stops the hard-driven neuron from firing again.
    lif = graph.nodes["layers.0"]
    lif.v_reset = np.array(lif.v_leak)
    _, again = _integrate_cubalif(graph, t_in * scale, 8.0 * scale, steps)
    assert np.isfinite(again[2])


# -- foreign graphs and bad files ----------------------------------------------------------------

def _foreign_graph(w_in: float = 1.0) -> nir.NIRGraph:
    """Input(4) -> Linear -> CubaLIF(5) -> Linear -> CubaLIF(3) -> Output, no metadata."""
    rng = np.random.default_rng(0)
    nodes = {"in": nir.Input(np.array([4])), "out": nir.Output(np.array([3]))}
    for name, (n_in, n) in {"a": (4, 5), "b": (5, 3)}.items():
        ones = np.ones(n)
        nodes[f"w{name}"] = nir.Linear(rng.normal(1.0, 1.0, (n, n_in)))
        nodes[name] = nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones, v_leak=0 * ones,
                                  v_threshold=ones, w_in=w_in * ones)
    edges = [("in", "wa"), ("wa", "a"), ("a", "wb"), ("wb", "b"), ("b", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_foreign_graph_gets_defaults_and_warnings(tmp_path, caplog):
    graph = _foreign_graph(w_in=2.0)
    path = tmp_path / "foreign.nir"
    nir.write(path, graph)
    with caplog.at_level(logging.WARNING, logger="snnsim.interchange"):
        results = interchange.import_nir(path, tmp_path / "run")
    text = caplog.text
    assert "carries no snnsim config" in text and "may fire again" in text
    config, network, _ = runs.load_network(results)
    assert config["dataset"] == interchange.DEFAULT_DATASET
    # w_in = 2 tau_syn doubles every jump of I: the weights carry the factor.
    expected = 2.0 * graph.nodes["wa"].weight.T
    np.testing.assert_array_equal(network.layers[0].weight.detach().numpy(), expected)
    assert runs.inference(results, backend="torch").outputs.shape == (1000, 3)


def test_foreign_graph_with_a_config_file(tmp_path, caplog):
    path = tmp_path / "foreign.nir"
    nir.write(path, _foreign_graph())
    with caplog.at_level(logging.WARNING, logger="snnsim.interchange"):
        assert main(["import-nir", str(path), "--output", str(tmp_path / "run"), "--config",
                     str(REPO / "experiment_configs" / "yin_yang.yaml")]) == 0
    assert "carries no snnsim config" not in caplog.text
    config, _, epoch = runs.load_network(tmp_path / "run")
    assert epoch == 300 and config["training_params"]["loss"]["type"] == "MSE"
    assert [e["size"] for e in config["network_layout"]["layers"]] == [5, 3]
    assert [e["max_num_missing_spikes"] for e in config["network_layout"]["layers"]] == [0.3, 0]


def _write_and_edit(tmp_path: Path, edit) -> Path:
    """Our yin_yang_small graph written to a file, then changed by edit(h5py node group)."""
    import h5py

    config = load_config(REPO / "experiment_configs" / "yin_yang_small.yaml")
    path = interchange.write_nir(
        interchange.network_to_nir(Network(config, torch.Generator().manual_seed(0)), config),
        tmp_path / "net.nir")
    with h5py.File(path, "r+") as f:
        edit(f["node"]["nodes"])
    return path


def _replace(group, name: str, value) -> None:
    del group[name]
    group.create_dataset(name, data=value)


@pytest.mark.parametrize("edit, message", [
    (lambda g: _replace(g["layers.1"], "type", b"Banana"),
     r"node 'layers.1' has type 'Banana'; snnsim reads Input, Output"),
    (lambda g: g["layers.0"].__delitem__("tau_mem"),
     r"node 'layers.0' \(CubaLIF\) is missing a parameter"),
    (lambda g: _replace(g["layers.0"], "v_threshold", np.ones(7)),
     r"node 'layers.0' \(CubaLIF\) has malformed parameters"),
    (lambda g: _replace(g["layers.1.weight"], "weight", np.ones((3, 7))),
     r"node 'layers.1.weight': weight of shape \(3, 7\) between 'layers.0'"),
    (lambda g: _replace(g["layers.0"], "tau_syn", np.linspace(1, 2, 40)),
     r"node 'layers.0': tau_syn differs between neurons"),
])
def test_bad_files_name_the_node(tmp_path, edit, message):
    path = _write_and_edit(tmp_path, edit)
    with pytest.raises(NIRFormatError, match=message):
        interchange.import_nir(path, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unsupported_node_and_structure_errors(tmp_path):
    graph = _foreign_graph()
    graph.nodes["a"] = nir.LIF(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5),
                               v_threshold=np.ones(5))
    with pytest.raises(NIRFormatError, match=r"node 'a' has type 'LIF'"):
        interchange.graph_to_network(graph)
    graph = _foreign_graph()
    graph.edges.append(("b", "wb"))  # a recurrent edge into a weight node
    with pytest.raises(NIRFormatError, match=r"node 'wb' \(Linear\) has inputs \['a', 'b'\]"):
        interchange.graph_to_network(graph)
    graph = _foreign_graph()
    graph.nodes["wa"] = nir.Affine(graph.nodes["wa"].weight, np.full(5, 0.1))
    with pytest.raises(NIRFormatError, match=r"node 'wa' \(Affine\) has a non-zero bias"):
        interchange.graph_to_network(graph)


def test_not_a_nir_file(tmp_path, capsys):
    path = tmp_path / "config.nir"
    path.write_text("dataset: yin_yang\n")
    with pytest.raises(NIRFormatError, match="not a NIR file"):
        interchange.read_nir(path)
    assert main(["import-nir", str(path), "--output", str(tmp_path / "run")]) == 1
    assert "not a NIR file" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such NIR file"):
        interchange.read_nir(tmp_path / "missing.nir")


# -- the peer simulator --------------------------------------------------------------------------

def exact_step_graph(graph, dt: float):
    """A copy of `graph` whose CubaLIF parameters make Norse's forward-Euler step at `dt`
    the exact propagator of the original node (for v_leak = 0; the peer check's diagnostic,
    not the exported network).

    Norse's step (see `simulate_with_norse`) is the linear recursion

        I_{k+1} = (1 - dt/tau_syn') I_k + (w_in'/tau_syn') W x_k,
        V_{k+1} = (1 - dt/tau_mem') V_k + (dt/tau_mem') r' I_{k+1},

    and the exact solution of the original node over one step, for input spikes at the
    step's start (J_k = I(k dt+), the current just after them), is

        J_{k+1} = e_s J_k + (w_in/tau_syn) W x_{k+1},   V_{k+1} = e_m V_k + P J_k,
        e_s = exp(-dt/tau_syn),  e_m = exp(-dt/tau_mem),
        P = r tau_syn (e_s - e_m) / (tau_syn - tau_mem)   (r (dt/tau) e^{-dt/tau} if equal).

    Norse's I_{k+1} is J_k when tau_syn' = dt/(1 - e_s), w_in' = tau_syn' w_in/tau_syn, and
    its V is exact when tau_mem' = dt/(1 - e_m), r' = P tau_mem'/dt. Threshold crossings
    are still seen at the grid points only, and spikes still travel on the grid."""
    import copy

    graph = copy.deepcopy(graph)
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.CubaLIF):
            continue
        tau_syn, tau_mem, r = (np.asarray(x, dtype=np.float64)
                               for x in (node.tau_syn, node.tau_mem, node.r))
        e_s, e_m = np.exp(-dt / tau_syn), np.exp(-dt / tau_mem)
        equal = np.isclose(tau_syn, tau_mem, rtol=1e-12, atol=0)
        spread = np.where(equal, 1.0, tau_syn - tau_mem)
        p = np.where(equal, r * dt / tau_mem * e_m, r * tau_syn * (e_s - e_m) / spread)
        tau_syn_step, tau_mem_step = dt / (1 - e_s), dt / (1 - e_m)
        graph.nodes[name] = nir.CubaLIF(
            tau_syn=tau_syn_step, tau_mem=tau_mem_step, r=p * tau_mem_step / dt,
            v_leak=node.v_leak, v_threshold=node.v_threshold, v_reset=node.v_reset,
            w_in=tau_syn_step * node.w_in / tau_syn, metadata=node.metadata)
    return graph


def simulate_with_norse(graph, t_in: np.ndarray, dt: float, t_end: float) -> list[np.ndarray]:
    """First-spike times of every CubaLIF layer of `graph` from Norse (its own NIR import,
    `norse.torch.from_nir`), time-stepped at `dt`.

    Norse's CubaLIF is a leaky integrator (the synapse) feeding a LIF "box" neuron, each a
    forward-Euler step; with x_k the Linear node's output in step k:

        I_{k+1} = I_k + dt/tau_syn (w_in x_k - I_k),
        V_{k+1} = V_k + dt/tau_mem (v_leak - V_k + r I_{k+1}),   spike if V_{k+1} > v_threshold.

    (Norse also uses v_leak as the synapse's rest value: the harness requires v_leak = 0.)
    Adaptations, conventions of Norse's import rather than of the network: Norse takes a
    spike as a pulse of height 1 for one step (area dt), NIR as a Dirac impulse (area 1), so
    every CubaLIF's w_in is divided by dt; Norse's import ignores v_reset (it resets to 0),
    so the reset method it accepts sets the graph's v_reset.

    Time conventions (measured in docs/design.md section 8): an input spike at t enters in
    step k = floor(t/dt), and its jump drives V from k dt, the step's start (on average half
    a step early); a spike in step k, whose crossing lies in (k dt, (k+1) dt], is reported
    at (k+1) dt, the step's end (on average half a step late): the two cancel for the first
    layer. Norse's graph runs every node in each step, so a spike of one CubaLIF drives the
    next in the step it occurred, from that step's start (on average half a step early per
    layer boundary); that is the peer's discretisation, left as it is.
    """
    import norse.torch
    from norse.torch.utils.import_nir import CubaLIF

    lifs = [name for name, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)]
    v_reset = np.unique(np.concatenate([graph.nodes[n].v_reset for n in lifs]))
    assert v_reset.size == 1, f"the harness takes one v_reset, got {v_reset}"
    for name in lifs:
        leak = np.asarray(graph.nodes[name].v_leak)
        if np.any(leak != 0):
            raise ValueError(f"node {name!r}: v_leak = {leak.flat[0]!r}; the Norse harness "
                             "expects 0 (Norse's import gives the synapse the same v_leak)")

    def reset(z, v, _reset, _threshold):
        return torch.where(z > 0, torch.full_like(v, float(v_reset[0])), v)

    with warnings.catch_warnings():  # Norse calls nirtorch.load, which nirtorch deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        model = norse.torch.from_nir(graph, dt=dt, reset_method=reset)
    for module in model.modules():
        if isinstance(module, CubaLIF):
            module.w_in = module.w_in / dt
    bias = np.atleast_1d(graph.nodes["input"].metadata["bias_channel_times"])
    times = np.concatenate([t_in, np.broadcast_to(bias, (len(t_in), bias.size))], axis=1)
    # floor(t/dt), where a time within 1e-9 steps below a grid point counts as on it (a
    # time put on the grid as k * dt may come back from / dt as k - 1e-13).
    step_of = torch.from_numpy(np.where(np.isfinite(times), np.floor(times / dt + 1e-9), -1)
                               .astype(np.int64))
    keys = [name.replace(".", "_") for name in lifs]  # Norse's names of the modules
    first = {key: None for key in keys}
    state = None
    with torch.no_grad():
        for k in range(round(t_end / dt)):
            _, state = model((step_of == k).float(), state)
            for key in keys:
                z = state.cache[key] > 0
                if first[key] is None:
                    first[key] = torch.full(z.shape, torch.inf, dtype=torch.float64)
                first[key] = torch.where(z & torch.isinf(first[key]), (k + 1) * dt, first[key])
    return [first[key].numpy() for key in keys]


def _chain(tau_syn: float, tau_mem: float, dt: float, n: int = 200):
    """A two-layer chain (3 inputs -> 1 neuron -> 1 neuron, yin_yang's threshold, leak and
    g_L), n input patterns on the grid of dt, and our analytic spike times per layer."""
    config = resolve_config({
        "dataset": "xor",
        "neuron_params": {"tau_syn": tau_syn, "tau_mem": tau_mem, "threshold": 1.0,
                          "leak": 0.0, "g_leak": 1.0},
        "network_layout": {"n_inputs": 3, "layers": [
            {"type": "lif_ttfs", "size": 1, "n_biases": 0, "bias_times": []},
            {"type": "lif_ttfs", "size": 1, "n_biases": 0, "bias_times": []}]},
        "training_params": {"epoch_number": 1},
    })
    network = Network(config, torch.Generator().manual_seed(0))
    drive = 1.0 if tau_mem == tau_syn else 1.5  # the slower membrane needs more
    with torch.no_grad():
        network.layers[0].weight.copy_(drive * torch.tensor([[1.5], [1.2], [0.9]],
                                                            dtype=torch.float64))
        network.layers[1].weight.fill_(3.0 * (1.0 if tau_mem == tau_syn else 2.0))
    generator = torch.Generator().manual_seed(5)
    t_in = 0.2 + 1.5 * torch.rand(n, 3, generator=generator, dtype=torch.float64)
    t_in = torch.round(t_in / dt) * dt
    ours = [t.detach().numpy().ravel() for t in _forward(network, t_in)]
    assert all(np.isfinite(t).all() for t in ours), "every neuron of the chain must spike"
    return interchange.network_to_nir(network, config), t_in.numpy(), ours


@pytest.mark.parametrize("regime", ["equal", "general"])
def test_peer_conventions_on_a_two_layer_chain(regime):
    """Where the peer's error comes from, layer by layer, with inputs on the grid (so the
    injection step is exact): with the exact-step parameters, Norse's V is exact at the
    grid points, so a first-layer spike is reported at the end of the step holding our
    analytic time (error in [0, dt]), and the second layer, whose input arrives at the
    start of that step (same-step propagation), stays within one step. Norse's own forward
    Euler moves the second layer's spikes further: the measured error is the peer's."""
    pytest.importorskip("norse", reason="the peer check needs Norse (pip install '.[interop]')")
    dt = PEER_DT
    graph, t_in, ours = _chain(*NEURONS[regime], dt)
    exact_first, exact_second = (peer.ravel() - t for peer, t in zip(
        simulate_with_norse(exact_step_graph(graph, dt), t_in, dt, 6.0), ours))
    assert np.all((exact_first >= -1e-6 * dt) & (exact_first <= dt * (1 + 1e-6))), \
        exact_first / dt
    assert np.all(np.abs(exact_second) <= dt), exact_second / dt
    euler_first, euler_second = (peer.ravel() - t for peer, t in zip(
        simulate_with_norse(graph, t_in, dt, 6.0), ours))
    assert np.all(np.abs(euler_first) <= dt), euler_first / dt
    # Measured at dt = 0.0025 (error / dt, mean [min, max]; docs/design.md section 8):
    # exact-step first layer +0.49 [0, 0.99], second -0.13
    # [-0.62, 0.37] (equal taus) and -0.08 [-0.57, 0.41] (tau_m = 1.7 tau_s); forward Euler
    # second layer -1.75 [-2.28, -1.20] (none within one step) and -0.54 [-1.54, 0.00].
    bias = np.mean(euler_second - exact_second) / dt
    assert bias < (-1.0 if regime == "equal" else -0.3), bias


def exact_and_graph(results_dir: Path):
    """Our exact evaluation of the test set (hidden layers kept), the task, the exported
    graph as the peer reads it (`nir.read`) and the simulated time."""
    trainer = runs.load_trainer(results_dir, backend="torch")  # numba threads slow torch
    ours = trainer.evaluate("test", keep_hidden=True)
    config, network, _ = runs.load_network(results_dir)
    graph = nir.read(interchange.write_nir(interchange.network_to_nir(network, config),
                                           results_dir / "peer.nir"))
    return ours, trainer.task, graph, config["training_params"]["sim_time"]


def peer_agreement(exact, dt: float, n_samples: int | None = None,
                   exact_steps: bool = False) -> dict:
    """Norse against our exact spike times on the Yin-Yang test set (figures as a dict):
    the exported graph as it is, or with `exact_steps` the diagnostic `exact_step_graph`."""
    ours, task, graph, sim_time = exact
    n = n_samples or len(ours.inputs)
    if exact_steps:
        graph = exact_step_graph(graph, dt)
    start = time.perf_counter()
    hidden, output = simulate_with_norse(graph, ours.inputs[:n], dt, sim_time)
    seconds = time.perf_counter() - start
    predicted = task.predict(torch.from_numpy(output)).numpy()
    figures = {"dt": dt, "samples": n, "exact_steps": exact_steps, "seconds": seconds,
               "classes_agree": float(np.mean(predicted == ours.predictions[:n]))}
    for name, exact_times, peer in (("hidden", ours.hidden[0][:n], hidden),
                                    ("output", ours.outputs[:n], output)):
        both = np.isfinite(exact_times) & np.isfinite(peer)
        error = np.abs(peer[both] - exact_times[both])
        figures.update({
            f"{name}_spiking_agree": float(np.mean(np.isfinite(exact_times)
                                                   == np.isfinite(peer))),
            f"{name}_within_dt": float(np.mean(error <= dt)),
            f"{name}_median_bias_steps": float(np.median(peer[both] - exact_times[both]) / dt),
            f"{name}_median_error": float(np.median(error)),
            f"{name}_p99_error": float(np.quantile(error, 0.99)),
            f"{name}_max_error": float(error.max()),
        })
    return figures


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    pytest.importorskip("norse", reason="the peer check needs Norse (pip install '.[interop]')")
    return exact_and_graph(runs.import_fastanddeep(
        PUBLISHED, tmp_path_factory.mktemp("nir") / "published"))


def test_peer_norse_agrees_with_the_exact_spike_times(exact):
    """The issue's target: classes agree on >= 99 % (met) and first-spike times within
    the time step (not met by Norse: the asserts below are the measured figures, at
    dt = 0.0025, python tests/test_nir.py [--exact-steps])."""
    figures = peer_agreement(exact, PEER_DT)
    assert figures["classes_agree"] >= 0.99, figures
    for name in ("hidden", "output"):
        assert figures[f"{name}_spiking_agree"] >= 0.99, figures
    # The exported graph in Norse's forward Euler: 94.4 % of hidden and 34.3 % of output
    # spikes within dt, medians -0.18 and -1.30 steps early.
    assert figures["hidden_within_dt"] >= 0.93, figures
    assert figures["hidden_median_error"] <= PEER_DT, figures
    assert figures["output_within_dt"] >= 0.33, figures
    assert figures["output_median_error"] <= 2 * PEER_DT, figures

    # The same network with exact-step parameters (exact_step_graph): Norse's recursion is
    # then the exact solution at the grid points, and what is left is the grid (spikes
    # enter a layer at the start of a step) and same-step propagation: 98.9 % of hidden and
    # 79.9 % of output spikes within dt, medians +0.14 and -0.37 steps. The gap to the
    # figures above is Norse's own integration error.
    exact_steps = peer_agreement(exact, PEER_DT, exact_steps=True)
    assert exact_steps["classes_agree"] >= 0.99, exact_steps
    assert exact_steps["hidden_within_dt"] >= 0.985, exact_steps
    assert exact_steps["output_within_dt"] >= 0.78, exact_steps
    assert abs(exact_steps["output_median_bias_steps"]) < 0.5, exact_steps
    assert figures["output_median_bias_steps"] < -1.0, figures


def test_peer_error_shrinks_with_the_time_step(exact):
    coarse = peer_agreement(exact, 0.02, n_samples=200)
    fine = peer_agreement(exact, 0.01, n_samples=200)
    for name in ("hidden", "output"):
        assert fine[f"{name}_median_error"] < 0.7 * coarse[f"{name}_median_error"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dt", type=float, default=PEER_DT)
    parser.add_argument("--samples", type=int, help="default: the whole test set")
    parser.add_argument("--exact-steps", action="store_true",
                        help="give Norse exact_step_graph(graph, dt) (the diagnostic)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        run = runs.import_fastanddeep(PUBLISHED, Path(folder) / "published")
        for key, value in peer_agreement(exact_and_graph(run), args.dt, args.samples,
                                         args.exact_steps).items():
            print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
