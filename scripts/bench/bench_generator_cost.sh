#!/usr/bin/env bash
# What the z contract's accurate Box-Muller costs per step (docs/PERFORMANCE.md, sixth pass).
# Builds zo2 three times from copies of this source tree and times the resident steps of each in one run:
#   exact   the tree as committed (log_unit, sqrt_unit, sincospi_unit: z within 1e-6 of the CPU's);
#   curand  cuRAND's own device Box-Muller (logf, sqrtf, __sincosf);
#   fast    intrinsics only (__logf, sqrt_unit, __sincosf).
# The last two break the GPU/CPU agreement of docs/zo.md; the script runs
# ZoKernelsGpu.NormalMatchesCpuWithin1e6 on each build and prints its max |z_gpu - z_cpu|. They exist
# only in the temporary trees this script builds, to measure what the goals would need.
# Usage (GPU machine): ZO2_CMAKE_ARGS="<the -D flags of your GPU build>" \
#   scripts/bench/bench_generator_cost.sh [work-dir] [log-dir]
# ZO2_PRESETS (default "opt-1.3b opt-13b") picks the models; 13B and larger run with
# --gpu-memory-budget 70 as in the resident table.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
logs=${2:-$work/logs}
mkdir -p "$logs"
variants="exact curand fast"

# The three builds run side by side: each one's serial tail (nvcc of the kernels, the link) would idle
# the other cores.
build_variant() {
  local v=$1 tree=$work/$1
  rm -rf "$tree" && mkdir -p "$tree"
  tar -C "$repo" --exclude='./build*' --exclude=./.git --exclude=./.dev -cf - . | tar -x -C "$tree"
  python3 - "$tree/src/kernels/zo_element.h" "$v" <<'PY2'
import sys
path, variant = sys.argv[1:]
text = open(path).read()
exact = """  const float s = sqrt_unit(-2.f * log_unit(u));
  float sn, cs;
  sincospi_unit(t, sn, cs);"""
swap = {
    "exact": exact,
    "curand": """  const float s = sqrtf(-2.f * logf(u));
  float sn, cs;
  __sincosf(t * 3.14159265358979f, &sn, &cs);""",
    "fast": """  const float s = sqrt_unit(-2.f * __logf(u));
  float sn, cs;
  __sincosf(t * 3.14159265358979f, &sn, &cs);""",
}
if text.count(exact) != 1:
    sys.exit(f"{path}: box_muller's device body changed; update bench_generator_cost.sh")
open(path, "w").write(text.replace(exact, swap[variant]))
PY2
  # shellcheck disable=SC2086  # ZO2_CMAKE_ARGS is a list of flags
  cmake -S "$tree" -B "$tree/build" -DCMAKE_BUILD_TYPE=Release ${ZO2_CMAKE_ARGS:-} > "$logs/cmake-$v.log" 2>&1 &&
    cmake --build "$tree/build" --target zo2 zo2_gpu_tests -j "$(nproc)" > "$logs/build-$v.log" 2>&1
}
pids=()
for v in $variants; do build_variant "$v" & pids+=($!); done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "build of a variant failed: see $logs/cmake-*.log, $logs/build-*.log" >&2; exit 1; }
done

nvidia-smi --query-gpu=name --format=csv,noheader || true
for v in $variants; do
  "$work/$v/build/tests/zo2_gpu_tests" --gtest_filter=ZoKernelsGpu.NormalMatchesCpuWithin1e6 > "$logs/z-$v.log" 2>&1 || true
  echo "$v: $(grep -o 'max |z_gpu - z_cpu| = .*' "$logs/z-$v.log"); test $(grep -oE '\[ +(OK|FAILED) +\]' "$logs/z-$v.log" | head -1)"
done
for p in ${ZO2_PRESETS:-opt-1.3b opt-13b}; do
  case $p in
    opt-125m|opt-350m|opt-1.3b|opt-2.7b) args=(--steps 10 --warmup 3) ;;
    opt-6.7b) args=(--steps 5 --warmup 2) ;;
    *) args=(--steps 6 --warmup 2 --gpu-memory-budget 70) ;;
  esac
  for v in $variants; do
    common=(bench --preset "$p" --dtype f16 --batch-size 1 --max-length 2048 --kernels false "${args[@]}")
    "$work/$v/build/zo2" "${common[@]}" --json "$logs/$p-$v.json" > "$logs/$p-$v.log" 2>&1
    ZO2_PROFILE=1 "$work/$v/build/zo2" "${common[@]}" --lookahead false > "$logs/$p-$v-phases.log" 2>&1
    echo "$p $v: $(grep -o 'step [0-9.]* ms (median of [0-9]*)' "$logs/$p-$v.log");" \
      "$(grep -o 'zo_kernels [0-9.]* ms' "$logs/$p-$v-phases.log") per step (lookahead off)"
  done
done
