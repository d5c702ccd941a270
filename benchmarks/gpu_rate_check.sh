#!/usr/bin/env bash
# The rate core and the model families on the GPU (`--backend cuda`: network and batches
# on the device, rate layers as torch there), for a machine with an NVIDIA GPU, run from
# the repository root after the extensions are built (benchmarks/gpu_check.sh builds them):
#
#     bash benchmarks/gpu_rate_check.sh       # logs under $OUT (default: ./gpu_rate_out)
#
# 1. tests/test_cuda_rate.py: every registered task trains alike on the GPU and the CPU;
# 2. shipped family configs trained a few epochs with --backend cuda and with cpu, each
#    line printing the run's summary and its wall time.
set -o pipefail
export PYTHONUNBUFFERED=1
export SNNSIM_DATA_DIR=${SNNSIM_DATA_DIR:-$PWD/tests/data}   # the shipped MNIST t10k
OUT=${OUT:-gpu_rate_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}

echo "=== tests/test_cuda_rate.py"
timeout 200 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_rate.py 2>&1 \
    | tee "$OUT/pytest_cuda_rate.log" | tail -25

echo "=== shipped configs, cuda against cpu (config, epochs)"
for spec in "linear_mnist 3" "fa_mnist 2" "sparse_coding_mnist 3" "spatial_two_tasks 2" \
            "net_fragments 10"; do
    set -- $spec
    for backend in cuda cpu; do
        start=$(date +%s%N)
        timeout 150 "$PY" experiment.py --threads 8 train "experiment_configs/$1.yaml" \
            --epochs "$2" --backend "$backend" --output "$OUT/runs/${1}_$backend" \
            --quiet --no-plots > "$OUT/train_${1}_$backend.log" 2>&1
        status=$?
        end=$(date +%s%N)
        printf '%-22s %-4s exit %s  %6d ms  %s\n' "$1" "$backend" "$status" \
            $(( (end - start) / 1000000 )) "$(grep -m1 '^test' "$OUT/train_${1}_$backend.log")"
        [ "$status" = 0 ] || tail -5 "$OUT/train_${1}_$backend.log"
    done
done
