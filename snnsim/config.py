"""Experiment configs: YAML with the keys of the published fastAndDeep configs.

`load_config(path)` reads and validates a file; `resolve_config(dict)` validates
a parsed config, fills defaults, and expands the published network shorthand

    network_layout: {n_inputs, n_layers, layer_sizes, n_biases, bias_times,
                     weight_means, weight_stdevs}

into an explicit list `network_layout.layers = [{type: lif_ttfs, size, n_biases,
bias_times, weight_mean, weight_stdev}, ...]`. A config may give that list
directly (and mix layer types registered in `snnsim.layers.LAYER_TYPES`).
Errors name the file, the key, the value and what was expected; an unknown key
also names the nearest valid one.
"""
from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnsim.datasets import DATASET_NAMES


class ConfigError(ValueError):
    """A config that cannot be used, with the reason a user can act on."""


@dataclass(frozen=True)
class Field:
    """One config key: accepted types, default (REQUIRED if none), and a range check."""

    types: tuple
    default: Any = None
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    required: bool = False


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _fraction(v) -> bool:
    return 0 <= v <= 1


NUMBER = (int, float)
OFF = (bool, type(None))  # published configs write `false` for "disabled"

NEURON_FIELDS = {
    "tau_syn": Field(NUMBER, 1.0, _positive, "a number > 0"),
    "tau_mem": Field(NUMBER + (type(None),), None, lambda v: v is None or v > 0,
                     "a number > 0 (default: tau_syn)"),
    "threshold": Field(NUMBER, 1.0),
    "leak": Field(NUMBER, 0.0),
    "g_leak": Field(NUMBER, 1.0, _positive, "a number > 0"),
}

LAYOUT_FIELDS = {
    "n_inputs": Field((int,), None, _positive, "an integer > 0", required=True),
    "n_layers": Field((int,), None, _positive, "an integer > 0"),
    "layer_sizes": Field((list,), None, None, "a list of layer sizes"),
    "n_biases": Field((list,), None, None, "a list with one bias count per layer"),
    "bias_times": Field((list,), [], None, "a list of times, or one list per layer"),
    "weight_means": Field((list,), None, None, "a list with one mean per layer"),
    "weight_stdevs": Field((list,), None, None, "a list with one standard deviation per layer"),
    "layers": Field((list,), None, None, "a list of layer entries"),
}

LOSS_FIELDS = {
    "type": Field((str,), "TTFS", lambda v: v in ("TTFS", "MSE"), "'TTFS' or 'MSE'"),
    "xi": Field(NUMBER, 0.2, _positive, "a number > 0"),
    "alpha": Field(NUMBER, 0.005, _non_negative, "a number >= 0"),
    "beta": Field(NUMBER, 1.0, _positive, "a number > 0"),
    "t_correct": Field(NUMBER, 1.7, _non_negative, "a time >= 0 (units of tau_syn)"),
    "t_wrong": Field(NUMBER, 1.0, _non_negative, "a time >= 0 (units of tau_syn)"),
}

SCHEDULER_FIELDS = {
    "type": Field((str, type(None)), None,
                  lambda v: v in (None, "StepLR", "MultiStepLR", "ExponentialLR"),
                  "StepLR, MultiStepLR, ExponentialLR or null"),
    "gamma": Field(NUMBER, 1.0, _positive, "a number > 0"),
    "step_size": Field((int,), 1, _positive, "an integer > 0"),
    "milestones": Field((list,), [], None, "a list of epochs"),
}

NOISE_FIELDS = {
    "mean": Field(NUMBER, 0.0),
    "std_dev": Field(NUMBER, 0.0, _non_negative, "a number >= 0"),
}

TRAINING_FIELDS = {
    "batch_size": Field((int,), 150, _positive, "an integer > 0"),
    "batch_size_eval": Field((int,), 200, _positive, "an integer > 0"),
    "epoch_number": Field((int,), 1, _positive, "an integer > 0", required=True),
    "epoch_snapshots": Field((list,), [], None, "a list of epochs"),
    "learning_rate": Field(NUMBER, 0.005, _positive, "a number > 0"),
    "momentum": Field(NUMBER, 0.0, _non_negative, "a number >= 0"),
    "optimizer": Field((str,), "adam", lambda v: v.lower() in ("adam", "sgd"), "'adam' or 'sgd'"),
    "lr_scheduler": Field((dict, type(None)), None),
    "loss": Field((dict,), None),
    "xi": Field(NUMBER, 0.2, _positive, "a number > 0"),
    "alpha": Field(NUMBER, 0.005, _non_negative, "a number >= 0"),
    "beta": Field(NUMBER, 1.0, _positive, "a number > 0"),
    "max_dw_norm": Field(NUMBER + OFF, None, lambda v: v in (None, False) or v > 0,
                         "a number > 0, or false/null for no clipping"),
    "max_num_missing_spikes": Field((list,), None, None, "a list of fractions, one per layer"),
    "weight_bumping_exp": Field((bool,), True),
    "weight_bumping_targeted": Field((bool,), True),
    "weight_bumping_value": Field(NUMBER, 0.0005, _non_negative, "a number >= 0"),
    "training_noise": Field((dict, bool, type(None)), False, lambda v: v in (False, None)
                            or isinstance(v, dict), "false or {mean, std_dev}"),
    "clip_weights_max": Field(NUMBER + OFF, False, lambda v: v in (None, False) or v > 0,
                              "a number > 0, or false"),
    "rounding_precision": Field(NUMBER + OFF, False, lambda v: v in (None, False) or v > 0,
                                "a number > 0, or false"),
    "use_forward_integrator": Field((bool,), False),
    "resolution": Field(NUMBER, 0.01, _positive, "a number > 0"),
    "sim_time": Field(NUMBER, 4.0, _positive, "a number > 0"),
    "numpy_seed": Field((int,), 12345),
    "torch_seed": Field((int,), 2000),
    "print_step_percent": Field(NUMBER, 5.0),
    "enforce_cpu": Field((bool,), False),
    "use_hicannx": Field((bool,), False),
}

TOP_FIELDS = {
    "dataset": Field((str,), None, lambda v: v in DATASET_NAMES,
                     f"one of {', '.join(DATASET_NAMES)}", required=True),
    "neuron_params": Field((dict,), {}),
    "network_layout": Field((dict,), None, required=True),
    "training_params": Field((dict,), None, required=True),
    "data_dir": Field((str, type(None)), None),
    "hardware": Field((dict, type(None)), None),
}

LIF_LAYER_FIELDS = {
    "type": Field((str,), "lif_ttfs"),
    "size": Field((int,), None, _positive, "an integer > 0", required=True),
    "n_biases": Field((int,), 0, _non_negative, "an integer >= 0"),
    "bias_times": Field((list,), [], None, "a list of spike times"),
    "weight_mean": Field(NUMBER, 0.0),
    "weight_stdev": Field(NUMBER, 1.0, _non_negative, "a number >= 0"),
    "max_num_missing_spikes": Field(NUMBER, 1.0, _fraction, "a fraction in [0, 1]"),
}


def validate_section(where: str, data: dict, fields: dict[str, Field]) -> dict:
    """Check `data` against `fields` and return a copy with defaults filled in."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(
                f"{where}: unknown key '{key}'{hint} (valid keys: {', '.join(fields)})"
            )
    out = {}
    for key, spec in fields.items():
        if key not in data:
            if spec.required:
                raise ConfigError(f"{where}: missing required key '{key}'")
            out[key] = copy.deepcopy(spec.default)
            continue
        value = data[key]
        ok_type = isinstance(value, spec.types) and not (
            isinstance(value, bool) and bool not in spec.types)
        if not ok_type:
            names = "/".join(t.__name__ if t is not type(None) else "null" for t in spec.types)
            raise ConfigError(f"{where}.{key} = {value!r}: expected {spec.expected or names}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}.{key} = {value!r}: expected a finite number")
        if spec.check is not None and not spec.check(value):
            raise ConfigError(f"{where}.{key} = {value!r}: expected {spec.expected}")
        out[key] = value
    return out


def _per_layer(where: str, values, n_layers: int, name: str, default=None) -> list:
    if values is None:
        if default is None:
            raise ConfigError(f"{where}: missing key '{name}' (one value per layer)")
        return [default] * n_layers
    if len(values) != n_layers:
        raise ConfigError(
            f"{where}.{name} = {values!r}: expected {n_layers} entries (one per layer)"
        )
    return list(values)


def _expand_layout(layout: dict, missing_spikes, source: str) -> list[dict]:
    """The published shorthand as an explicit list of lif_ttfs layer entries."""
    where = f"{source}: network_layout"
    sizes = layout["layer_sizes"]
    if sizes is None:
        raise ConfigError(f"{where}: give either 'layer_sizes' (published form) or 'layers'")
    n_layers = layout["n_layers"] if layout["n_layers"] is not None else len(sizes)
    if n_layers != len(sizes):
        raise ConfigError(f"{where}.n_layers = {n_layers} but layer_sizes has {len(sizes)} "
                          f"entries {sizes!r}")
    n_biases = _per_layer(where, layout["n_biases"], n_layers, "n_biases", 0)
    means = _per_layer(where, layout["weight_means"], n_layers, "weight_means")
    stdevs = _per_layer(where, layout["weight_stdevs"], n_layers, "weight_stdevs")
    bias_times = layout["bias_times"]
    if bias_times and all(isinstance(b, list) for b in bias_times):
        bias_times = _per_layer(where, bias_times, n_layers, "bias_times")
    else:
        bias_times = [list(bias_times)] * n_layers
    missing = _per_layer(f"{source}: training_params", missing_spikes, n_layers,
                         "max_num_missing_spikes", 1.0)
    layers = []
    for i in range(n_layers):
        # Published configs list bias times even for layers with n_biases 0: use the first n.
        times = list(bias_times[i])
        if n_biases[i] > 0 and len(times) == 0:
            raise ConfigError(f"{where}: layer {i} has n_biases = {n_biases[i]} but no bias_times")
        times = (times * n_biases[i])[:n_biases[i]] if times else []
        layers.append({"type": "lif_ttfs", "size": sizes[i], "n_biases": n_biases[i],
                       "bias_times": times, "weight_mean": means[i], "weight_stdev": stdevs[i],
                       "max_num_missing_spikes": missing[i]})
    return layers


def resolve_config(raw: dict, source: str = "config") -> dict:
    """Validate a parsed config and return it resolved (defaults filled, layers explicit)."""
    from snnsim.layers import LAYER_TYPES

    config = validate_section(source, raw, TOP_FIELDS)
    config["neuron_params"] = validate_section(f"{source}: neuron_params",
                                               config["neuron_params"], NEURON_FIELDS)
    training = validate_section(f"{source}: training_params", config["training_params"],
                                TRAINING_FIELDS)
    loss = dict(training["loss"] or {"type": "TTFS"})
    for key in ("xi", "alpha", "beta"):
        loss.setdefault(key, training[key])
    training["loss"] = validate_section(f"{source}: training_params.loss", loss, LOSS_FIELDS)
    training["lr_scheduler"] = validate_section(f"{source}: training_params.lr_scheduler",
                                                training["lr_scheduler"] or {},
                                                SCHEDULER_FIELDS)
    if isinstance(training["training_noise"], dict):
        training["training_noise"] = validate_section(
            f"{source}: training_params.training_noise", training["training_noise"],
            NOISE_FIELDS)
    for key in ("max_dw_norm", "clip_weights_max", "rounding_precision"):
        if training[key] is False:
            training[key] = None
    bad = [e for e in training["epoch_snapshots"]
           if not isinstance(e, int) or not 0 < e <= training["epoch_number"]]
    if bad:
        raise ConfigError(f"{source}: training_params.epoch_snapshots contains {bad!r}: "
                          f"expected epochs in 1..{training['epoch_number']}")
    config["training_params"] = training
    layout = validate_section(f"{source}: network_layout", config["network_layout"],
                              LAYOUT_FIELDS)
    if layout["layers"] is None:
        layers = _expand_layout(layout, training["max_num_missing_spikes"], source)
    else:
        layers = []
        for i, entry in enumerate(layout["layers"]):
            where = f"{source}: network_layout.layers[{i}]"
            kind = entry.get("type", "lif_ttfs") if isinstance(entry, dict) else None
            if kind not in LAYER_TYPES:
                raise ConfigError(f"{where}.type = {kind!r}: expected one of "
                                  f"{', '.join(LAYER_TYPES)}")
            layers.append(validate_section(where, entry, LAYER_TYPES[kind].config_fields))
    for i, layer in enumerate(layers):
        if len(layer.get("bias_times", [])) != layer.get("n_biases", 0):
            raise ConfigError(f"{source}: layer {i} has n_biases = {layer['n_biases']} but "
                              f"bias_times {layer['bias_times']!r}")
        for t in layer.get("bias_times", []):
            if not isinstance(t, NUMBER) or not t >= 0:
                raise ConfigError(f"{source}: layer {i} bias time {t!r}: expected a time >= 0")
    config["network_layout"] = {"n_inputs": layout["n_inputs"], "layers": layers}
    return config


def read_yaml_mapping(path: str | Path) -> dict:
    """The YAML mapping in `path`, unvalidated; ConfigError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> dict:
    """Read, validate and resolve the YAML config at `path`."""
    return resolve_config(read_yaml_mapping(path), source=str(path))
