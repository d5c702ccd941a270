"""Layers of the noise-induced sparse coding family (Bricken et al., "Noise transforms
feed-forward networks into sparse coding networks").

`tracked_linear`: the de-noising network's encoder, y = f(mu), mu = x W + b, with an
optional inhibitory circuit on mu and activity tracking (FAMILIES.md section 4).

`topk_linear`: a Sparse-Distributed-Memory layer. No bias; the input is L2-normalised,
x_hat = x / ||x||; every neuron's weight vector (a column w_j of W [n_inputs, size]) is
re-normalised to ||w_j|| = 1 after every optimiser step (and clamped to w >= 0 first
with `positive_weights`, which also passes the input through a ReLU); then

    z = relu(mu),  mu = x_hat W
    mask:      y_j = z_j if j is among the k largest z of the sample, else 0
               (exactly k kept; among ties torch.topk chooses)
    subtract:  y_j = relu(z_j - z_(k)),  z_(k) the k-th largest z (no gradient through it),
               so k - 1 neurons stay active (fewer with ties at z_(k))

k = 0 silences the layer. k follows a schedule stepped at each epoch end (e = epochs done):

    flat:         k(e) = k
    linear:       k(e) = floor(clip(k_start - (k_start - k) e / E, k, k_start))
    exponential:  k(e) = floor(clip(k_start (k / k_start)^(e / E), k, k_start))

with k_start = `k_start` (default: the layer's size) and E = `k_epochs`.

Inhibitory circuit (`inhibition`), between mu and the activation, `inhibition_steps`
steps of size eta = `inhibition_rate` from mu = mu_0:

    mu <- mu + eta (mu_0 - g(W_inh relu(mu)) - mu)

W_inh all-to-all ([size, size], no bias) or through one interneuron
(W_inh r = w_out relu(w_in . r + b_in)); g = relu (`inhibition_signed: false`: the
circuit only inhibits) or the identity (signed: it may also excite).

Both layers count their activity during training (never during evaluation) for the
`sparse_activity` metrics: per input the fraction of neurons with |y| > threshold
(0 for relu and Top-K, 1e-4 otherwise), and per neuron the summed activity of the epoch.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from snnsim.errors import ConfigError
from snnsim.layers import (
    ACTIVATIONS,
    INIT_SCHEMES,
    LINEAR_FIELDS,
    Layer,
    LayerContext,
    LinearLayer,
    RunSettings,
    init_weight_,
)
from snnsim.registry import LAYERS
from snnsim.schema import NUMBER, Field, non_negative, one_of, positive

TOPK_MODES = ("mask", "subtract")
K_SCHEDULES = ("flat", "linear", "exponential")
INHIBITION_TYPES = ("none", "all_to_all", "interneuron")
NON_RELU_THRESHOLD = 1e-4  # |y| above this counts as active for activations other than relu
NORM_EPS = 1e-12


# -- Top-K and its schedule --------------------------------------------------------------------

def top_k(x: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    """Top-K of relu(x) along the last dimension (the module docstring's `mask`/`subtract`)."""
    if mode not in TOPK_MODES:
        raise ValueError(f"Top-K mode {mode!r}: expected one of {', '.join(TOPK_MODES)}")
    n = x.shape[-1]
    if not 0 <= k <= n:
        raise ValueError(f"Top-K k = {k}: expected 0 <= k <= {n} (the number of units)")
    z = torch.relu(x)
    if k == 0:
        return z * 0.0  # keeps the graph: every parameter still gets a (zero) gradient
    values, indices = torch.topk(z, k, dim=-1, sorted=False)
    if mode == "mask":
        keep = torch.zeros_like(z).scatter_(-1, indices, 1.0)
        return z * keep
    kth = values.detach().min(dim=-1, keepdim=True).values
    return torch.relu(z - kth)


def scheduled_k(epoch: int, schedule: str, k: int, k_start: int, epochs: int) -> int:
    """k after `epoch` completed epochs (the module docstring's schedules)."""
    if schedule == "flat" or k_start <= k:
        return k
    progress = epoch / epochs
    if schedule == "linear":
        value = k_start - (k_start - k) * progress
    elif schedule == "exponential":
        value = k_start * (k / k_start) ** progress
    else:
        raise ValueError(f"k schedule {schedule!r}: expected one of {', '.join(K_SCHEDULES)}")
    # floor as published (int()), with a tolerance for values such as 0.3 * 100 = 29.999...
    return int(min(max(math.floor(value + 1e-9), k), k_start))


# -- the inhibitory circuit --------------------------------------------------------------------

class InhibitoryCircuit(nn.Module):
    """mu <- mu + eta (mu_0 - g(W_inh relu(mu)) - mu), `steps` times from mu = mu_0."""

    def __init__(self, size: int, kind: str, signed: bool, rate: float, steps: int,
                 generator: torch.Generator):
        super().__init__()
        self.kind, self.signed, self.rate, self.steps = kind, signed, rate, steps
        if kind == "all_to_all":
            # [size, size] as the layers store weights: input unit (row) -> target unit (column)
            self.weight = nn.Parameter(init_weight_(
                torch.empty(size, size, dtype=torch.float64), "uniform", 1.0, generator))
        else:
            self.weight_in = nn.Parameter(init_weight_(
                torch.empty(size, 1, dtype=torch.float64), "uniform", 1.0, generator))
            self.bias_in = nn.Parameter(torch.zeros(1, dtype=torch.float64))
            self.weight_out = nn.Parameter(init_weight_(
                torch.empty(1, size, dtype=torch.float64), "uniform", 1.0, generator))

    def inhibition(self, r: torch.Tensor) -> torch.Tensor:
        """g(W_inh r) for rates r [B, size]."""
        if self.kind == "all_to_all":
            drive = r @ self.weight
        else:
            drive = torch.relu(r @ self.weight_in + self.bias_in) @ self.weight_out
        return drive if self.signed else torch.relu(drive)

    def forward(self, mu0: torch.Tensor) -> torch.Tensor:
        mu = mu0
        for _ in range(self.steps):
            mu = mu + self.rate * (mu0 - self.inhibition(torch.relu(mu)) - mu)
        return mu


INHIBITION_FIELDS = {
    "inhibition": Field((str,), "none", one_of(*INHIBITION_TYPES), ", ".join(INHIBITION_TYPES)),
    "inhibition_signed": Field((bool,), False),
    "inhibition_rate": Field(NUMBER, 1.0, positive, "a number > 0 (the step size eta)"),
    "inhibition_steps": Field((int,), 1, positive, "an integer > 0"),
}


# -- activity tracking -------------------------------------------------------------------------

class TrackedLayer(Layer):
    """A layer whose outputs are counted during training for the activity metrics.

    Accumulators (non-persistent buffers, reset by `take_activity()` at each epoch's end):
    `activity_sum` [size] (summed activity per neuron: y for relu/Top-K outputs, the count
    of |y| > threshold otherwise, as published), `active_count` (active (sample, neuron)
    pairs) and `sample_count`.
    """

    activity_threshold: float = 0.0
    sums_values: bool = True  # relu / Top-K: sum y itself; else count |y| > threshold

    def _init_tracking(self, size: int) -> None:
        self.register_buffer("activity_sum", torch.zeros(size, dtype=torch.float64),
                             persistent=False)
        self.register_buffer("active_count", torch.zeros((), dtype=torch.float64),
                             persistent=False)
        self.register_buffer("sample_count", torch.zeros((), dtype=torch.float64),
                             persistent=False)

    def _init_inhibition(self, entry: dict, context: LayerContext) -> None:
        self.inhibitory = (None if entry["inhibition"] == "none" else InhibitoryCircuit(
            entry["size"], entry["inhibition"], entry["inhibition_signed"],
            entry["inhibition_rate"], entry["inhibition_steps"], context.generator))

    def _track(self, y: torch.Tensor) -> None:
        if not self.training:
            return
        with torch.no_grad():
            active = y.detach().abs() > self.activity_threshold
            self.active_count += active.sum()
            self.sample_count += y.shape[0]
            self.activity_sum += (y.detach().sum(0) if self.sums_values
                                  else active.sum(0).to(self.activity_sum.dtype))

    def take_activity(self) -> dict[str, torch.Tensor]:
        """The accumulated activity of the epoch (copies), and the accumulators reset."""
        taken = {"activity_sum": self.activity_sum.clone(),
                 "active_count": self.active_count.clone(),
                 "sample_count": self.sample_count.clone()}
        for buffer in (self.activity_sum, self.active_count, self.sample_count):
            buffer.zero_()
        return taken

    def encoder_vectors(self) -> torch.Tensor:
        """Each neuron's input weight vector, [size, n_inputs]."""
        return self.weight.detach().T

    def _pre_activation(self, mu: torch.Tensor) -> torch.Tensor:
        return mu if self.inhibitory is None else self.inhibitory(mu)


def _check_inhibition(entry: dict, where: str) -> None:
    if entry["inhibition"] == "none" and (entry["inhibition_signed"]
                                          or entry["inhibition_steps"] != 1
                                          or entry["inhibition_rate"] != 1.0):
        raise ConfigError(f"{where}: inhibition_signed/_steps/_rate are given but "
                          f"inhibition = 'none'; choose all_to_all or interneuron")


@LAYERS.register
class TrackedLinear(TrackedLayer, LinearLayer):
    """The de-noising network's encoder: y = f(circuit(x W + b)), activity tracked.

    The keys of `linear` plus the inhibitory circuit's (module docstring).
    """

    type_name = "tracked_linear"
    config_fields: ClassVar[dict] = {**LINEAR_FIELDS, "type": Field((str,), "tracked_linear"),
                     **INHIBITION_FIELDS}
    kind = "rate"
    example_entry: ClassVar[dict] = {"type": "tracked_linear", "size": 6, "inhibition": "interneuron",
                     "inhibition_signed": True}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        LinearLayer.__init__(self, n_inputs, entry, context)
        self.activity_threshold = 0.0 if entry["activation"] == "relu" else NON_RELU_THRESHOLD
        self.sums_values = entry["activation"] == "relu"
        self._init_inhibition(entry, context)
        self._init_tracking(entry["size"])

    @classmethod
    def check_entry(cls, entry: dict, where: str) -> None:
        _check_inhibition(entry, where)

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        mu = self._pre_activation(backend.linear(x, self.weight, self.bias))
        y = ACTIVATIONS[self.activation_name](mu)
        self._track(y)
        return y


TOPK_FIELDS = {
    "type": Field((str,), "topk_linear"),
    "size": Field((int,), None, positive, "an integer > 0", required=True),
    "k": Field((int,), None, non_negative,
               "an integer >= 0 (active units; the final k of a schedule)", required=True),
    "mode": Field((str,), "mask", one_of(*TOPK_MODES), ", ".join(TOPK_MODES)),
    "k_schedule": Field((str,), "flat", one_of(*K_SCHEDULES), ", ".join(K_SCHEDULES)),
    "k_start": Field((int, type(None)), None, lambda v: v is None or v > 0,
                     "an integer > 0 (k at epoch 0 of a schedule; default: size)"),
    "k_epochs": Field((int,), 100, positive, "an integer > 0 (epochs of the k schedule)"),
    "positive_weights": Field((bool,), False),
    "normalise_inputs": Field((bool,), True),
    "init": Field((str,), "uniform", one_of(*INIT_SCHEMES), ", ".join(INIT_SCHEMES)),
    **INHIBITION_FIELDS,
}


@LAYERS.register
class TopKLinear(TrackedLayer):
    """Sparse-Distributed-Memory layer: unit-norm neurons, Top-K (module docstring)."""

    type_name = "topk_linear"
    config_fields: ClassVar[dict] = TOPK_FIELDS
    kind = "rate"
    example_entry: ClassVar[dict] = {"type": "topk_linear", "size": 8, "k": 3}
    bias = None

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry)
        self.size = entry["size"]
        self.mode, self.schedule = entry["mode"], entry["k_schedule"]
        self.k_final = entry["k"]
        self.k_start = entry["k_start"] if entry["k_start"] is not None else entry["size"]
        self.k_epochs = entry["k_epochs"]
        self.positive_weights = entry["positive_weights"]
        self.normalise_inputs = entry["normalise_inputs"]
        weight = init_weight_(torch.empty(n_inputs, self.size, dtype=torch.float64),
                              entry["init"], 1.0, context.generator)
        if self.positive_weights:
            weight.abs_()
        self.weight = nn.Parameter(weight)
        with torch.no_grad():
            self.constrain_(RunSettings())
        # the k in use (a buffer, so that a continued run goes on with the same k); shape
        # [1], as checkpoints cannot hold 0-d tensors yet
        self.register_buffer("k_current", torch.tensor([self.k_at(0)], dtype=torch.int64))
        self._init_inhibition(entry, context)
        self._init_tracking(self.size)

    @classmethod
    def check_entry(cls, entry: dict, where: str) -> None:
        if entry["k"] > entry["size"]:
            raise ConfigError(f"{where}.k = {entry['k']}: expected 0 <= k <= size "
                              f"({entry['size']})")
        k_start = entry["k_start"]
        if k_start is not None and not entry["k"] <= k_start <= entry["size"]:
            raise ConfigError(f"{where}.k_start = {k_start}: expected k ({entry['k']}) <= "
                              f"k_start <= size ({entry['size']})")
        _check_inhibition(entry, where)

    def k_at(self, epoch: int) -> int:
        """k used in the epoch after `epoch` completed epochs."""
        return scheduled_k(epoch, self.schedule, self.k_final, self.k_start, self.k_epochs)

    @property
    def k(self) -> int:
        return int(self.k_current[0])

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        if self.positive_weights:
            x = torch.relu(x)
        if self.normalise_inputs:
            x = x / x.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)
        mu = self._pre_activation(backend.linear(x, self.weight, None))
        y = top_k(mu, self.k, self.mode)
        self._track(y)
        return y

    def constrain_(self, settings: RunSettings) -> None:
        """w <- max(w, 0) (positive_weights), then w_j <- w_j / ||w_j|| for every neuron j."""
        if self.positive_weights:
            self.weight.clamp_(min=0.0)
        self.weight.div_(self.weight.norm(dim=0, keepdim=True).clamp_min(NORM_EPS))

    def epoch_end(self, epoch: int) -> dict[str, float]:
        self.k_current.fill_(self.k_at(epoch))
        return {}


