"""Noise-induced sparse coding (Bricken et al., "Noise transforms feed-forward networks
into sparse coding networks"; FAMILIES.md section 4).

A one-hidden-layer network trained to reconstruct clean inputs from noisy ones
(the `denoising` / `noisy_denoising` tasks) develops a sparse code; this package holds

* layers `tracked_linear` (encoder with activity tracking and an optional inhibitory
  circuit) and `topk_linear` (Sparse-Distributed-Memory Top-K layer), `layers.py`;
* the data set `npy_vectors` (any .npy array of vectors), `data.py`;
* the task `noisy_denoising` (Gaussian or Laplace noise), `tasks.py`;
* the per-epoch activity metrics (`sparse_activity`), `metrics.py`;
* the plots `eval` draws for tracked layers, and for a sweep folder the active fraction
  against sigma, `plots.py`.
"""
from . import data, layers, metrics, plots, tasks  # noqa: F401  (registration)
