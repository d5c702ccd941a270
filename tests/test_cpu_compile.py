"""What a first run compiles in the `cpu` backend (benchmarks/bench_first_run.py times it),
and that the pieces changed to compile less compute what they replaced."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from numba.core.registry import CPUDispatcher

from backends import cpu
from snnsim.params import NeuronParams

ROOT = Path(__file__).resolve().parents[1]


def _dispatchers():
    return {name: value for name, value in vars(cpu).items() if isinstance(value, CPUDispatcher)}


def test_no_parfor_kernels():
    """numba's parallel=True compilation (parfors) more than doubles a first run's compile
    time; the chunks run on threads instead (nogil)."""
    parallel = [name for name, d in _dispatchers().items() if d.targetoptions.get("parallel")]
    assert parallel == []
    assert cpu._forward_chunk.targetoptions.get("nogil")
    assert cpu._backward_chunk.targetoptions.get("nogil")


def test_first_run_compiles_each_kernel_once(tmp_path: Path):
    """A fresh process with an empty kernel cache compiles every kernel of a Yin-Yang training
    step for one signature only (no extra variants for literal arguments)."""
    script = textwrap.dedent("""
        import json
        import torch
        from numba.core.registry import CPUDispatcher
        from backends import cpu
        from snnsim.params import NeuronParams
        p = NeuronParams()
        g = torch.Generator().manual_seed(0)
        t_in = torch.cat([0.15 + 1.85 * torch.rand(40, 4, generator=g, dtype=torch.float64),
                          torch.full((40, 1), 0.9, dtype=torch.float64)], 1)
        w = 1.5 + 0.8 * torch.randn(5, 120, generator=g, dtype=torch.float64)
        t_out, state = cpu.forward_with_state(t_in, w, p)
        cpu.backward_with_state(state, t_in, w, t_out, torch.ones_like(t_out), p, 0.2)
        cpu.backward(t_in, w, t_out, torch.ones_like(t_out), p)
        print(json.dumps({name: len(d.signatures) for name, d in vars(cpu).items()
                          if isinstance(d, CPUDispatcher)}))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    signatures = json.loads(result.stdout.strip().splitlines()[-1])
    assert signatures["_forward_chunk"] == signatures["_backward_chunk"] == 1
    assert {name: n for name, n in signatures.items() if n > 1} == {}


@pytest.mark.parametrize("spread", ["even", "ties", "uneven"])
def test_sort_matches_stable_argsort(spread: str):
    """sorted_finite_inputs (bucket, insertion and merge sort) orders the finite times as a
    stable sort does, ties in input order; the merge sort alone too."""
    rng = np.random.default_rng({"even": 0, "ties": 1, "uneven": 2}[spread])
    for n in (0, 1, 2, 5, 16, 17, 33, 100, 257, 1000):
        times = rng.uniform(0.0, 3.0, n)
        if spread == "ties":
            times = np.round(times, 1)
        elif spread == "uneven":  # buckets overflow: the merge sort takes over
            times = np.exp(rng.uniform(-30.0, 3.0, n))
        times[rng.random(n) < 0.2] = np.inf
        finite = np.flatnonzero(np.isfinite(times))
        expected = finite[np.argsort(times[finite], kind="stable")]
        workspace = cpu.sort_workspace(n)
        count = cpu.sorted_finite_inputs(times, *workspace)
        keys, index = workspace[0], workspace[1]
        assert count == len(finite)
        np.testing.assert_array_equal(index[:count], expected)
        np.testing.assert_array_equal(keys[:count], times[expected])
        keys = times[finite].copy()
        index = finite.astype(np.int64)
        cpu._merge_sort(keys, index, len(finite), np.empty(n), np.empty(n, np.int64))
        np.testing.assert_array_equal(index, expected)


def test_chunks_on_threads_give_the_single_thread_results(monkeypatch: pytest.MonkeyPatch):
    """Every sample's times and input gradients are the same bit for bit whether the batch
    runs as one chunk or as several chunks on threads."""
    g = torch.Generator().manual_seed(3)
    t_in = 2.0 * torch.rand(203, 30, generator=g, dtype=torch.float64)
    w = 0.3 + 0.5 * torch.randn(30, 17, generator=g, dtype=torch.float64)
    p = NeuronParams(tau_syn=1.0, tau_mem=1.7, threshold=0.9)
    grad = torch.randn(203, 17, generator=g, dtype=torch.float64)
    results = {}
    for threads in (1, 4):
        monkeypatch.setattr(cpu.numba, "get_num_threads", lambda threads=threads: threads)
        assert cpu._chunks(203).shape[0] - 1 == threads
        t_out, state = cpu.forward_with_state(t_in, w, p)
        grad_t_in, grad_w = cpu.backward_with_state(state, t_in, w, t_out, grad, p, 0.5)
        results[threads] = (t_out, grad_t_in, grad_w)
    assert torch.equal(results[1][0], results[4][0])
    assert torch.equal(results[1][1], results[4][1])
    torch.testing.assert_close(results[1][2], results[4][2], rtol=1e-13, atol=1e-14)  # sum order
