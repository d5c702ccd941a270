"""The learning rules of the feedback family as autograd Functions, each with a plain-torch
reference of its gradients (`reference_*`, used by the tests).

Notation (one dense layer): x [B, N] its input, a = x W + b [B, M], y = f(a) its output,
W [N, M]; L the loss and d_y = dL/dy the error that reaches the layer's output. The true
local gradients are dL/dW = x^T d_a and dL/db = sum_batch d_a with d_a = f'(a) * d_y;
backpropagation passes d_x = d_a W^T to the layer below.

* `error_route(a, x, B)` (feedback alignment): forward a unchanged; backward d_a to a
  (so W and b get their true local gradients from whatever computed a) and d_a B^T to x
  instead of d_a W^T. B has W's shape and is fixed.
* `tied(W, B)` (Kolen-Pollack): forward W; backward W's gradient to W *and* to B, so an
  optimiser gives both the same update. With weight decay lambda inside the update
  (SGD: p <- p - lr (g + lambda p)) the difference shrinks geometrically,
  W - B <- (1 - lr lambda)(W - B), and B -> W.
* `direct_feedback(y, x_prev, chain, index, B)` (direct feedback alignment): every DFA layer
  of a forward pass joins one `DFAChain`; in the backward pass the last layer of the
  chain (the output) records the error at its output, e = dL/dy_out [B, n_out], and
  passes it on unchanged (its own true gradient); every earlier layer l replaces the
  error arriving at its output by e B_l^T (B_l [M_l, n_out], fixed), so that autograd
  continues with d_a_l = f'(a_l) * (e B_l^T) and W_l, b_l get their local gradients
  from that. Layers of a chain pass no error to each other (zeros, which keep the
  backward order: the output runs first); the first layer of a chain passes d_a W^T to
  a non-DFA layer below it, if any.

The chain is a per-forward object, carried by the activations themselves (it is an
attribute of their autograd node, `y.grad_fn.dfa_chain`), so there is no global state,
any depth works, and two forward passes never share an error.
"""
from __future__ import annotations

import torch

# -- feedback alignment ----------------------------------------------------------------------


class _ErrorRoute(torch.autograd.Function):
    """Identity on a; the error to x goes through `matrix` (see the module docstring)."""

    @staticmethod
    def forward(ctx, a, x, matrix):
        ctx.save_for_backward(matrix)
        return a.view_as(a)

    @staticmethod
    def backward(ctx, grad_a):
        (matrix,) = ctx.saved_tensors
        grad_x = grad_a @ matrix.T if ctx.needs_input_grad[1] else None
        return grad_a, grad_x, None


def error_route(a: torch.Tensor, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """a unchanged; in the backward pass x receives d_a matrix^T (FA: matrix = B)."""
    return _ErrorRoute.apply(a, x, matrix.detach())


# -- Kolen-Pollack ---------------------------------------------------------------------------


class _Tied(torch.autograd.Function):
    """W in the forward pass; its gradient goes to W and to B."""

    @staticmethod
    def forward(ctx, weight, feedback):
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        # Two tensors: an optimiser or a gradient clip changes .grad in place.
        return grad, grad.clone()


def tied(weight: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """`weight` in the forward pass; in the backward pass `feedback` gets `weight`'s gradient."""
    if weight.shape != feedback.shape:
        raise ValueError(f"Kolen-Pollack: feedback matrix {tuple(feedback.shape)} and weight "
                         f"{tuple(weight.shape)} must have the same shape")
    return _Tied.apply(weight, feedback)


# -- direct feedback alignment ---------------------------------------------------------------


class DFAChain:
    """The DFA layers of one forward pass, which share the output error e.

    `members[i]` describes layer i of the chain (for messages); `error_sizes[i]` is the
    size of the error its feedback matrix expects (None: no feedback matrix, an output
    layer). `error` is e once the backward pass has reached the last layer.
    """

    def __init__(self) -> None:
        self.members: list[str] = []
        self.error_sizes: list[int | None] = []
        self.error: torch.Tensor | None = None

    @property
    def tip(self) -> int:
        """Index of the last layer that joined (the output, once the forward pass is done)."""
        return len(self.members) - 1

    def join(self, description: str, error_size: int | None) -> int:
        self.members.append(description)
        self.error_sizes.append(error_size)
        return self.tip


def chain_of(x: torch.Tensor) -> tuple[DFAChain, int] | None:
    """(chain, index) of the DFA layer that produced x, or None if no DFA layer did."""
    node = x.grad_fn
    chain = getattr(node, "dfa_chain", None)
    return None if chain is None else (chain, node.dfa_index)


class _DirectFeedback(torch.autograd.Function):
    """Identity on y; in the backward pass the chain's output records e, the others
    replace their error by e B^T (module docstring)."""

    @staticmethod
    def forward(ctx, y, x_prev, chain: DFAChain, index: int, feedback):
        ctx.dfa_chain, ctx.dfa_index = chain, index
        ctx.x_prev_shape = None if x_prev is None else x_prev.shape
        ctx.save_for_backward(feedback)
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad_y):
        chain, index = ctx.dfa_chain, ctx.dfa_index
        if index == chain.tip:
            chain.error = grad_y
            grad = grad_y
        else:
            if chain.error is None:
                raise RuntimeError(
                    f"DFA: {chain.members[index]} got no output error: the backward pass did "
                    f"not start at the chain's output layer ({chain.members[-1]}); compute "
                    f"the loss from the network's output")
            (feedback,) = ctx.saved_tensors
            if feedback.shape[1] != chain.error.shape[1]:
                raise ValueError(
                    f"DFA: {chain.members[index]} has a feedback matrix for an output error "
                    f"of {feedback.shape[1]} values (error_size), but its chain's output "
                    f"layer {chain.members[-1]} has {chain.error.shape[1]} outputs")
            grad = chain.error @ feedback.T
        grad_x = None
        if ctx.x_prev_shape is not None and ctx.needs_input_grad[1]:
            grad_x = grad_y.new_zeros(()).expand(ctx.x_prev_shape)
        return grad, grad_x, None, None, None


def direct_feedback(y: torch.Tensor, x_prev: torch.Tensor | None, chain: DFAChain, index: int,
                    feedback: torch.Tensor | None) -> torch.Tensor:
    """y unchanged; its error in the backward pass as in the module docstring. `x_prev` is
    the layer's input when an earlier member of `chain` produced it (it then gets a zero
    error), else None."""
    if feedback is not None:
        feedback = feedback.detach()
    return _DirectFeedback.apply(y, x_prev, chain, index, feedback)


# -- plain-torch references (for tests) ------------------------------------------------------


def activation_derivative(name: str, a: torch.Tensor) -> torch.Tensor:
    """f'(a) of the rate activations."""
    if name == "relu":
        return (a > 0).to(a.dtype)
    if name == "sigmoid":
        s = torch.sigmoid(a)
        return s * (1 - s)
    if name == "tanh":
        return 1 - torch.tanh(a) ** 2
    if name == "identity":
        return torch.ones_like(a)
    raise ValueError(f"unknown activation {name!r}")


def reference_feedback_gradients(x: torch.Tensor, weight: torch.Tensor, grad_a: torch.Tensor,
                                 feedback: torch.Tensor) -> dict[str, torch.Tensor]:
    """A feedback-alignment layer's gradients given d_a: W, b (true local ones) and x."""
    return {"weight": x.T @ grad_a, "bias": grad_a.sum(0), "x": grad_a @ feedback.T}


def reference_dfa_gradients(xs: list[torch.Tensor], activations: list[str],
                            pre_activations: list[torch.Tensor],
                            feedbacks: list[torch.Tensor | None],
                            error: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Gradients of W_l and b_l of every layer of a DFA network given the output error e.

    xs[l] is layer l's input, pre_activations[l] its a_l; the last layer is the output:
    d_a_out = f'(a_out) * e; hidden layers: d_a_l = f'(a_l) * (e B_l^T).
    """
    grads = []
    last = len(xs) - 1
    for l, (x, name, a, feedback) in enumerate(zip(xs, activations, pre_activations,
                                                   feedbacks)):
        d_y = error if l == last else error @ feedback.T
        d_a = activation_derivative(name, a) * d_y
        grads.append({"weight": x.T @ d_a, "bias": d_a.sum(0)})
    return grads
