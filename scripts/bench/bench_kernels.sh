#!/usr/bin/env bash
# GPU micro-benchmark of the fused ZO kernel: update_perturb on an 8192 x 8192 matrix (fp16, bf16, fp32
# variants) next to a device-to-device copy timed in the same run. Prints GB/s counting theta read
# once, written once (when updated) and one write per perturbed copy.
# Usage (GPU machine, after building zo2_gpu_tests): scripts/bench/bench_kernels.sh [build-dir]
set -euo pipefail
build=${1:-build}
nvidia-smi --query-gpu=name,clocks.max.memory,memory.total --format=csv,noheader || true
"$build/tests/zo2_gpu_tests" --gtest_also_run_disabled_tests --gtest_filter='ZoKernelsGpuBench.*'
