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

from pathlib import Path

import yaml

from snnsim.errors import ConfigError
from snnsim.schema import (
    NUMBER,
    OFF,
    Field,
    fraction,
    non_negative,
    off_or_positive,
    positive,
    validate_section,
)

__all__ = ["ConfigError", "Field", "load_config", "resolve_config", "validate_section"]

_positive, _non_negative, _fraction = positive, non_negative, fraction

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
    "heads": Field((dict, type(None)), None, None,
                   "a mapping {head name: [layer entries]} after the shared `layers`"),
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
    "optimizer": Field((str,), "adam", lambda v: v.lower() in ("adam", "sgd", "none"),
                       "'adam', 'sgd' or 'none' (networks that learn only locally)"),
    "dtype": Field((str,), "float64", lambda v: v in ("float64", "float32"),
                   "'float64' or 'float32' (parameters, inputs and computation)"),
    "weight_decay": Field(NUMBER, 0.0, _non_negative,
                          "a number >= 0 (inside the update: p <- p - lr (g + weight_decay p))"),
    "max_grad_norm": Field(NUMBER + OFF, None, off_or_positive,
                           "a number > 0 (clip the gradients' total norm), or false/null"),
    "lr_scheduler": Field((dict, type(None)), None),
    "loss": Field((dict,), None),
    "xi": Field(NUMBER, 0.2, _positive, "a number > 0"),
    "alpha": Field(NUMBER, 0.005, _non_negative, "a number >= 0"),
    "beta": Field(NUMBER, 1.0, _positive, "a number > 0"),
    "max_dw_norm": Field(NUMBER + OFF, None, off_or_positive,
                         "a number > 0, or false/null for no clipping"),
    "max_num_missing_spikes": Field((list, type(None)), None, None,
                                    "a list of fractions, one per layer"),
    "weight_bumping_exp": Field((bool,), True),
    "weight_bumping_targeted": Field((bool,), True),
    "weight_bumping_value": Field(NUMBER, 0.0005, _non_negative, "a number >= 0"),
    "training_noise": Field((dict, bool, type(None)), False, lambda v: v in (False, None)
                            or isinstance(v, dict), "false or {mean, std_dev}"),
    "clip_weights_max": Field(NUMBER + OFF, False, off_or_positive, "a number > 0, or false"),
    "rounding_precision": Field(NUMBER + OFF, False, off_or_positive, "a number > 0, or false"),
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
    "dataset": Field((str,), None, None, "a registered data set name", required=True),
    "data": Field((dict, type(None)), None, None, "a mapping of the data set's options"),
    "encoding": Field((dict, type(None)), None, None,
                      "a mapping {type: latency, early, late, scale, invert, silent_value}"),
    "task": Field((dict, type(None)), None, None, "a mapping {type: <task>, ...}"),
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

# Keys of the published shorthand that an explicit `layers:` list replaces.
SHORTHAND_KEYS = ("n_layers", "layer_sizes", "n_biases", "bias_times", "weight_means",
                  "weight_stdevs")


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
        if len(times) < n_biases[i]:
            raise ConfigError(f"{where}: layer {i} has n_biases = {n_biases[i]} but only "
                              f"{len(times)} bias_times {times!r}; give one time per bias")
        times = times[:n_biases[i]]
        layers.append({"type": "lif_ttfs", "size": sizes[i], "n_biases": n_biases[i],
                       "bias_times": times, "weight_mean": means[i], "weight_stdev": stdevs[i],
                       "max_num_missing_spikes": missing[i]})
    return layers


def _resolve_training(training: dict, source: str) -> dict:
    training = validate_section(f"{source}: training_params", training, TRAINING_FIELDS)
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
    for key in ("max_dw_norm", "clip_weights_max", "rounding_precision", "max_grad_norm"):
        if training[key] is False:
            training[key] = None
    bad = [e for e in training["epoch_snapshots"]
           if not isinstance(e, int) or not 0 < e <= training["epoch_number"]]
    if bad:
        raise ConfigError(f"{source}: training_params.epoch_snapshots contains {bad!r}: "
                          f"expected epochs in 1..{training['epoch_number']}")
    return training


def _resolve_layers(source: str, entries, where: str) -> list[dict]:
    """Each entry validated against its registered layer type's keys."""
    from snnsim.registry import LAYERS

    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: {where} = {entries!r}: expected a non-empty list of "
                          f"layer entries")
    layers = []
    for i, entry in enumerate(entries):
        at = f"{source}: {where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} = {entry!r}: expected a mapping {{type: ..., size: ...}}")
        kind = entry.get("type", "lif_ttfs")
        layer_type = LAYERS.get(kind, f"{at}.type")
        layers.append(validate_section(at, {**entry, "type": kind}, layer_type.config_fields))
        layer_type.check_entry(layers[-1], at)
    return layers


def _resolve_layout(layout: dict, training: dict, source: str) -> dict:
    layout = validate_section(f"{source}: network_layout", layout, LAYOUT_FIELDS)
    missing = training["max_num_missing_spikes"]
    training["max_num_missing_spikes"] = None  # moved into the layer entries
    if layout["layers"] is None:
        layers = _expand_layout(layout, missing, source)
    else:
        shorthand = [k for k in SHORTHAND_KEYS if layout[k] not in (None, [])]
        entries = layout["layers"]
        # Configs resolved by earlier versions repeat the layers' own values here: fine.
        repeated = (isinstance(missing, list) and len(missing) == len(entries) and all(
            isinstance(e, dict) and e.get("max_num_missing_spikes") == m
            for e, m in zip(entries, missing)))
        if missing is not None and not repeated:
            shorthand.append("training_params.max_num_missing_spikes")
        if shorthand:
            raise ConfigError(
                f"{source}: network_layout.layers is given together with the published "
                f"shorthand key(s) {', '.join(shorthand)}; give each layer's values in its "
                f"`layers` entry (size, n_biases, bias_times, weight_mean, weight_stdev, "
                f"max_num_missing_spikes) or use the shorthand alone")
        layers = _resolve_layers(source, layout["layers"], "network_layout.layers")
    resolved = {"n_inputs": layout["n_inputs"], "layers": layers}
    if layout["heads"] is not None:
        if not layout["heads"]:
            raise ConfigError(f"{source}: network_layout.heads is empty: expected a mapping "
                              f"{{head name: [layer entries]}}")
        resolved["heads"] = {str(name): _resolve_layers(source, entries,
                                                        f"network_layout.heads.{name}")
                             for name, entries in layout["heads"].items()}
    return resolved


def resolve_config(raw: dict, source: str = "config") -> dict:
    """Validate a parsed config and return it resolved (defaults filled, layers explicit).

    `raw` is not modified.
    """
    from snnsim.datasets import DATASETS, ENCODING_FIELDS, dataset_options
    from snnsim.registry import LAYERS, TASKS

    config = validate_section(source, raw, TOP_FIELDS)
    spec = DATASETS.get(config["dataset"], f"{source}: dataset")
    config["neuron_params"] = validate_section(f"{source}: neuron_params",
                                               config["neuron_params"], NEURON_FIELDS)
    training = config["training_params"] = _resolve_training(config["training_params"], source)
    config["network_layout"] = _resolve_layout(config["network_layout"], training, source)

    data = dict(config["data"] or {})
    if "data_dir" in spec.fields and config["data_dir"] is not None:
        data.setdefault("data_dir", config["data_dir"])
    config["data"] = dataset_options(config["dataset"], data, f"{source}: data")

    first = LAYERS.get(config["network_layout"]["layers"][0]["type"])
    if first.kind == "spiking":
        encoding = {**(spec.encoding or {}), **(config["encoding"] or {})}
        if not encoding:
            raise ConfigError(f"{source}: the first layer is spiking but data set "
                              f"{config['dataset']!r} has no spike-time encoding; give one "
                              f"in an `encoding:` section")
        config["encoding"] = validate_section(f"{source}: encoding", encoding, ENCODING_FIELDS)
    elif config["encoding"] is not None:
        raise ConfigError(f"{source}: encoding is given but the first layer "
                          f"({first.type_name}) takes real values, not spike times")
    elif training["training_noise"]:
        raise ConfigError(f"{source}: training_params.training_noise jitters input spike "
                          f"times, but the first layer ({first.type_name}) takes real values; "
                          f"use a de-noising task's noise instead")

    task = dict(config["task"] or {})
    task.setdefault("type", spec.task)
    task_type = TASKS.get(task["type"], f"{source}: task.type")
    config["task"] = validate_section(f"{source}: task", task, task_type.config_fields)
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
