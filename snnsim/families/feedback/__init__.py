"""Feedback alignment, Kolen-Pollack and direct feedback alignment (FAMILIES.md section 1;
the published JAX/Flax code is bioflax).

Learning rules that replace backpropagation's transposed weights W^T in the backward pass
by feedback matrices a chip or a brain could hold:

* layers `fa_linear`, `kp_linear`, `dfa_linear` and `dfa_output` (`layers.py`), usable from
  YAML like every layer; their backward passes are autograd Functions (`functions.py`, with
  plain-torch references); the forward product runs on the run's rate backend, so the
  same layers run on the chip's analog matrix multiply with `--backend bss2`;
* the per-epoch alignment metrics (`metrics.py`): cos(W, B), the angle between each rule's
  update and backprop's gradient, and their norm ratio, in `metrics.csv`;
* the plot `alignment.png` that `eval` draws (`plots.py`);
* `experiment.py rules-summary <sweep folder>`: the rules of a sweep side by side
  (`commands.py`).

The backprop control is the rate core's `linear` layer in the same configs.
"""
from . import commands, layers, metrics, plots  # noqa: F401  (registration)
