"""Dense rate layers that learn without backpropagation's transposed weights.

Every layer computes y = f(x W + b), W [n_inputs, size], the matrix product on the run's
rate backend (`backend.linear`: torch, or the chip's analog matrix-multiply mode with
`--backend bss2`); W and b always get their true local gradients from the error that
reaches the layer. What differs is the error a layer passes on (`functions.py`):

* `fa_linear` (feedback alignment): the layer below gets d_a B^T, B [n_inputs, size] a
  fixed random matrix (a buffer: checkpointed, never trained).
* `kp_linear` (Kolen-Pollack): as FA, but B is a parameter that gets W's gradient, so
  the optimiser updates both alike; with weight decay lambda inside the update (the
  layer's `weight_decay`, else the run's `training_params.weight_decay`) W - B shrinks
  by (1 - lr lambda) per SGD step. (Adam adds lambda p to the gradient *before* its
  per-element scaling, so there W and B get different updates and the shrink factor
  does not hold; use SGD, with or without momentum, for KP.)
* `dfa_linear` (direct feedback alignment, hidden): d_a = f'(a) * (e B^T), e the output
  error of the network (dL/dy of the last DFA layer), B [size, error_size] fixed.
* `dfa_output`: the last layer of a DFA network (identity activation by default): its
  own update is the true gradient, and the error at its output is e. A DFA network is
  dfa_linear layers ending in one dfa_output layer; its layers pass no error to each
  other. (A dfa_linear layer that ends a network plays the output's part; its B is unused.)

W and B are drawn, in that order, from the run's generator with the layer's `init` /
`init_scale` and `feedback_init` / `feedback_scale` (LeCun normal by default, as the
published code). `alignment_metrics: false` leaves a layer out of the per-epoch
alignment metrics (`metrics.py`). Outside training (no autograd) every layer is the
plain dense layer; `true_gradients(network)` makes them compute backprop's gradients
for a while (the metrics' comparison).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import nn

from snnsim.layers import (
    ACTIVATIONS,
    INIT_SCHEMES,
    LINEAR_FIELDS,
    LayerContext,
    LinearLayer,
    RunSettings,
    init_weight_,
)
from snnsim.registry import LAYERS
from snnsim.schema import NUMBER, Field, one_of, positive

from .functions import DFAChain, chain_of, direct_feedback, error_route, tied

FEEDBACK_FIELDS = {
    **LINEAR_FIELDS,
    "type": Field((str,), "fa_linear"),
    "feedback_init": Field((str,), "lecun_normal", one_of(*INIT_SCHEMES),
                           ", ".join(INIT_SCHEMES) + " (the feedback matrix B)"),
    "feedback_scale": Field(NUMBER, 1.0, positive, "a number > 0 (scale of B's init)"),
    "alignment_metrics": Field((bool,), True),
}
KP_FIELDS = {
    **FEEDBACK_FIELDS,
    "type": Field((str,), "kp_linear"),
    "weight_decay": Field(NUMBER + (type(None),), None, lambda v: v is None or v >= 0,
                          "a number >= 0 (lambda inside the update of W, B and b: "
                          "p <- p - lr (g + lambda p)), or null for the run's "
                          "training_params.weight_decay"),
}
DFA_FIELDS = {
    **FEEDBACK_FIELDS,
    "type": Field((str,), "dfa_linear"),
    "error_size": Field((int,), None, positive,
                        "an integer > 0: the size of the output error e, i.e. the number "
                        "of outputs of the network's dfa_output layer", required=True),
}
DFA_OUTPUT_FIELDS = {
    **LINEAR_FIELDS,
    "type": Field((str,), "dfa_output"),
    "activation": Field((str,), "identity", one_of(*ACTIVATIONS), ", ".join(ACTIVATIONS)),
    "alignment_metrics": Field((bool,), True),
}


class FeedbackLayer(LinearLayer):
    """Base of the family's layers: a dense layer with its own backward pass."""

    config_fields = FEEDBACK_FIELDS

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry, context)
        self.alignment_metrics = entry["alignment_metrics"]
        self.backprop = False  # True: backprop's gradients instead of the rule's (metrics)

    def describe(self) -> str:
        return f"{self.type_name} layer ({self.n_inputs} -> {self.output_size})"

    @staticmethod
    def _draw_feedback(shape: tuple[int, int], entry: dict,
                       generator: torch.Generator) -> torch.Tensor:
        return init_weight_(torch.empty(*shape, dtype=torch.float64), entry["feedback_init"],
                            entry["feedback_scale"], generator)


@LAYERS.register
class FALinear(FeedbackLayer):
    """Feedback alignment: the layer below receives d_a B^T, B fixed (module docstring)."""

    type_name = "fa_linear"
    kind = "rate"
    config_fields = FEEDBACK_FIELDS
    example_entry: ClassVar[dict] = {"type": "fa_linear", "size": 6, "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry, context)
        self._keep_feedback(self._draw_feedback((n_inputs, entry["size"]), entry,
                                                context.generator))

    def _keep_feedback(self, matrix: torch.Tensor) -> None:
        self.register_buffer("feedback", matrix)

    def _weight(self) -> torch.Tensor:
        """The weight of the forward pass (KP: tied to B's gradient)."""
        return self.weight

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        if self.backprop or not (torch.is_grad_enabled() and x.requires_grad):
            a = backend.linear(x, self.weight if self.backprop else self._weight(), self.bias)
        else:
            a = error_route(backend.linear(x.detach(), self._weight(), self.bias), x,
                            self.feedback)
        return ACTIVATIONS[self.activation_name](a)


@LAYERS.register
class KPLinear(FALinear):
    """Kolen-Pollack: feedback alignment whose B gets W's updates (module docstring)."""

    type_name = "kp_linear"
    config_fields = KP_FIELDS
    example_entry: ClassVar[dict] = {"type": "kp_linear", "size": 6, "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry, context)
        self.weight_decay = entry["weight_decay"]

    def _keep_feedback(self, matrix: torch.Tensor) -> None:
        self.feedback = nn.Parameter(matrix)

    def _weight(self) -> torch.Tensor:
        return tied(self.weight, self.feedback) if torch.is_grad_enabled() else self.weight

    def parameter_groups(self) -> list[dict]:
        """W, b and B in one optimiser group, with the layer's own weight decay if it has one."""
        group = {"params": [p for p in self.parameters() if p.requires_grad]}
        if self.weight_decay is not None:
            group["weight_decay"] = self.weight_decay
        return [group]

    def constrain_(self, settings: RunSettings) -> None:
        if self.weight_max:
            self.weight.clamp_(-self.weight_max, self.weight_max)
            self.feedback.clamp_(-self.weight_max, self.weight_max)


class _DirectLayer(FeedbackLayer):
    """A member of a DFA chain (`functions.direct_feedback`)."""

    error_size: int | None = None  # that of the feedback matrix; None: an output layer

    def forward(self, x: torch.Tensor, backend, settings: RunSettings) -> torch.Tensor:
        if self.backprop or not torch.is_grad_enabled():
            return ACTIVATIONS[self.activation_name](backend.linear(x, self.weight, self.bias))
        found = chain_of(x)
        if found is None:  # the first DFA layer: a layer below that is not DFA gets d_a W^T
            chain, x_prev, x_in = DFAChain(), None, x
        else:
            chain, index = found
            if index != chain.tip:
                raise ValueError(f"DFA: {self.describe()} takes its input from "
                                 f"{chain.members[index]}, which already feeds another DFA "
                                 f"layer; a DFA network has one output (no heads)")
            if chain.error_sizes[-1] is None:
                raise ValueError(f"DFA: {self.describe()} follows {chain.members[-1]}, but "
                                 f"a dfa_output layer must be the last DFA layer")
            x_prev, x_in = x, x.detach()
        index = chain.join(f"{self.describe()} (DFA layer {chain.tip + 1})", self.error_size)
        self._check_chain(chain)
        y = ACTIVATIONS[self.activation_name](backend.linear(x_in, self.weight, self.bias))
        return direct_feedback(y, x_prev, chain, index, getattr(self, "feedback", None))

    def _check_chain(self, chain: DFAChain) -> None:
        """Checks once this layer has joined `chain` (raise ValueError)."""


@LAYERS.register
class DFALinear(_DirectLayer):
    """A hidden layer of direct feedback alignment (module docstring)."""

    type_name = "dfa_linear"
    kind = "rate"
    config_fields = DFA_FIELDS
    example_entry: ClassVar[dict] = {"type": "dfa_linear", "size": 6, "error_size": 3,
                                     "activation": "tanh"}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        super().__init__(n_inputs, entry, context)
        self.error_size = entry["error_size"]
        self.register_buffer("feedback", self._draw_feedback(
            (entry["size"], entry["error_size"]), entry, context.generator))


@LAYERS.register
class DFAOutput(_DirectLayer):
    """The output layer of a DFA network: true gradient; its output error is e."""

    type_name = "dfa_output"
    kind = "rate"
    config_fields = DFA_OUTPUT_FIELDS
    example_entry: ClassVar[dict] = {"type": "dfa_output", "size": 3}

    def _check_chain(self, chain: DFAChain) -> None:
        for member, size in zip(chain.members[:-1], chain.error_sizes[:-1]):
            if size != self.output_size:
                raise ValueError(f"DFA: {member} has error_size {size}, but the output layer "
                                 f"of its network, {self.describe()}, has {self.output_size} "
                                 f"outputs; set error_size: {self.output_size}")


@contextlib.contextmanager
def true_gradients(network: nn.Module) -> Iterator[None]:
    """Within the block the family's layers of `network` compute backprop's gradients."""
    layers = [m for m in network.modules() if isinstance(m, FeedbackLayer)]
    for layer in layers:
        layer.backprop = True
    try:
        yield
    finally:
        for layer in layers:
            layer.backprop = False
