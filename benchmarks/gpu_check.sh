#!/usr/bin/env bash
# One-call GPU check of the `cuda` backend, for a machine with an NVIDIA GPU (sm_90 build:
# H100/H200; set SNNSIM_CUDA_ARCHS for another card), run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # logs under $OUT (default: ./gpu_check_out)
#
# Stages, each under `timeout` and each run whatever the earlier ones gave, so that one
# call yields everything (about two minutes on an H200, machine start not counted):
#   1. the card and nvcc;
#   2. the extensions built in place (`setup.py build_ext --inplace`), the cuda one imported;
#   3. in parallel: tests/test_cuda.py in full (pytest_cuda.log), and compute-sanitizer
#      memcheck, racecheck and synccheck over its GPU tests (the training test left out;
#      sanitizer_*.log, non-zero exit on any report);
#   4. alone on the GPU, for clean timings: benchmarks/bench_cuda.py (bench_cuda.log).
# Ends with a summary of every stage's exit status (summary.log).
set -o pipefail
export PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # benchmarks/*.py import backends, snnsim
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
ARCHS=${SNNSIM_CUDA_ARCHS:-90}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-300}
declare -A STATUS

stage() { echo; echo "=== $* ($(date +%T), ${SECONDS}s in) ==="; }

stage "device"
nvidia-smi -L
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nvcc --version | tail -2
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
          torch.cuda.is_available() and torch.cuda.get_device_name())'

stage "build (SNNSIM_CUDA_ARCHS=$ARCHS)"
SNNSIM_CUDA_ARCHS=$ARCHS timeout 240 "$PY" setup.py build_ext --inplace --force \
    > "$OUT/build.log" 2>&1
STATUS[build]=$?
tail -25 "$OUT/build.log"
timeout 60 "$PY" -c 'import backends.cuda._snnsim_cuda as m, backends.cuda._snnsim_host as h
print("imported", m.IMPLEMENTATION, "and", h.IMPLEMENTATION, "; runtime problem:",
      repr(m.runtime_problem()))'
STATUS[import]=$?

# GPU tests of tests/test_cuda.py for the sanitizers: -k cannot select on "cuda" (every
# test's module is test_cuda.py), so the host-only and GPU-free tests are left out by name.
GPU_KEEP="not host and not constants and not yin_yang and not max_dw_norm_drops and not chunk_count"
GPU_TESTS=(tests/test_cuda.py -k "$GPU_KEEP and not without_gpu and not missing_ext and not is_built")
# The forward kernel's shared memory and barrier: racecheck/synccheck over these only.
SHARED_TESTS=(tests/test_cuda.py::test_kernels_agree_with_cpu_and_torch
              tests/test_cuda.py::test_launch_geometry
              tests/test_cuda.py::test_sort_buffer_at_and_past_the_shared_memory_limit
              tests/test_cuda.py::test_cuda_edge_cases -k "not host")
PYTEST=("$PY" -m pytest -q -p no:cacheprovider)
SANITIZER=(compute-sanitizer --error-exitcode 9 --target-processes all --print-limit 50)

# numba compiles the cpu backend (the tests' reference) once, into its on-disk cache,
# before the parallel runs, so that they do not all compile it at the same time.
stage "numba warm-up"
timeout 120 "$PY" -c '
import torch
from backends import cpu
from snnsim import NeuronParams
for regime in ((1.0, 1.0), (2.0, 1.0), (1.6, 1.0)):
    p = NeuronParams(tau_mem=regime[0], tau_syn=regime[1])
    t, w = torch.rand(4, 6, dtype=torch.float64), torch.rand(6, 3, dtype=torch.float64)
    out = cpu.forward(t, w, p)
    cpu.backward(t, w, out, torch.ones_like(out), p)
print("numba cache warm")'

stage "tests and sanitizers, in parallel"
timeout 200 "${PYTEST[@]}" tests/test_cuda.py > "$OUT/pytest_cuda.log" 2>&1 &
pid_pytest=$!
# No caching allocator for memcheck: each tensor is its own allocation, so an access past
# a tensor's end is caught rather than landing in a neighbouring block of torch's pool.
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 150 "${SANITIZER[@]}" --tool memcheck \
    --leak-check no "${PYTEST[@]}" "${GPU_TESTS[@]}" > "$OUT/sanitizer_memcheck.log" 2>&1 &
pid_memcheck=$!
timeout 150 "${SANITIZER[@]}" --tool racecheck \
    "${PYTEST[@]}" "${SHARED_TESTS[@]}" > "$OUT/sanitizer_racecheck.log" 2>&1 &
pid_racecheck=$!
timeout 150 "${SANITIZER[@]}" --tool synccheck \
    "${PYTEST[@]}" "${SHARED_TESTS[@]}" > "$OUT/sanitizer_synccheck.log" 2>&1 &
pid_synccheck=$!
wait $pid_pytest; STATUS[pytest]=$?
wait $pid_memcheck; STATUS[memcheck]=$?
wait $pid_racecheck; STATUS[racecheck]=$?
wait $pid_synccheck; STATUS[synccheck]=$?
echo "--- pytest_cuda.log (tail)"
tail -40 "$OUT/pytest_cuda.log"
for tool in memcheck racecheck synccheck; do
    echo "--- sanitizer_$tool.log (exit ${STATUS[$tool]}; ERROR SUMMARY lines, pytest result, first reports)"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed|error" "$OUT/sanitizer_$tool.log" | tail -6
    grep -m 12 -E "^========= (Invalid|Error|Race|Barrier|Uninit|  +at )" "$OUT/sanitizer_$tool.log"
done

stage "bench_cuda (GPU to itself)"
timeout 240 "$PY" benchmarks/bench_cuda.py --repeats 10 --train-epochs "$TRAIN_EPOCHS" 2>&1 \
    | tee "$OUT/bench_cuda.log"
STATUS[bench]=$?

stage "summary"
for name in build import pytest memcheck racecheck synccheck bench; do
    echo "$name: exit ${STATUS[$name]}"
done | tee "$OUT/summary.log"
echo "(124: stopped by timeout; sanitizers exit 9 on a report)"
