#!/usr/bin/env bash
# Scaling of zo2 over the GPUs of one host (docs/PERFORMANCE.md, "Several GPUs"): OPT-13B and 30B fp16,
# batch 1 x 2048 per rank, at 1, 2, 4 (and 8) ranks; data parallel resident and streamed (one shared host
# copy), perturbation parallel resident against one GPU with q = ranks. Builds nothing.
#
# usage: scripts/bench/bench_scaling.sh BUILD_DIR
# environment: OUT (results under $OUT/scale, else a temporary directory), RANKS (default: 1 2 4 8, those
#   not above the GPU count), MODELS (opt-13b opt-30b), MODES (dp-resident pp-resident dp-streamed),
#   STEPS (4), DEADLINE (seconds; later runs are skipped)
set -uo pipefail
build=$(cd "${1:?usage: bench_scaling.sh BUILD_DIR}" && pwd)
out=${OUT:-$(mktemp -d)}/scale
mkdir -p "$out"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
export NCCL_NVLS_ENABLE=0
run() {  # NAME RANKS ZO2-BENCH-ARGS...
  local name=$1 n=$2 t0=$SECONDS
  shift 2
  if [ "$SECONDS" -gt "${DEADLINE:-100000}" ]; then echo "$name: skipped (deadline)"; return; fi
  local cmd=(env CUDA_VISIBLE_DEVICES=0 "$build/zo2" bench --backend single)
  [ "$n" -gt 1 ] && cmd=("$build/zo2run" --np "$n" --gpus-per-node "$gpus" --mpirun "${MPIRUN:-mpirun}" --exe "$build/zo2" -- bench --backend nccl)
  timeout -s KILL 300 "${cmd[@]}" "$@" --dtype f16 --batch-size 1 --max-length 2048 --kernels false \
    --json "$out/$name.json" >"$out/$name.log" 2>&1
  local rc=$?
  python3 - "$out/$name.json" "$name" "$rc" "$((SECONDS - t0))" <<'PY'
import json, os, sys
p, name, rc, t = sys.argv[1:]
if not os.path.exists(p) or os.path.getsize(p) == 0:
    sys.exit(print(f"{name}: rc {rc}, FAILED after {t} s (see {p[:-5]}.log)"))
r = json.loads(open(p).readline())
print(f'{name}: ranks {r["ranks"]}, step {r["step_ms_median"]:.1f} ms, {r["samples_s"]:.2f} samples/s, '
      f'{r["sample_dirs_s"]:.2f} sample-dirs/s, PCIe floor {r["pcie_floor_ms"]:.1f} ms, H2D {r["h2d_gbps"]:.1f} GB/s '
      f'(rank 0, after the run), {r["bytes_sent_per_step"]:.0f} B/step, {r["streamed_blocks"]} blocks streamed ({t} s)')
PY
}
ranks=()
for n in ${RANKS:-1 2 4 8}; do [ "$n" -le "$gpus" ] && ranks+=("$n"); done
steps=(--steps "${STEPS:-4}" --warmup 1)
modes=" ${MODES:-dp-resident pp-resident dp-streamed} "
want() { [[ $modes == *" $1 "* ]]; }
for m in ${MODELS:-opt-13b opt-30b}; do
  budget=()
  [ "$m" != opt-13b ] && budget=(--gpu-memory-budget 70)
  want dp-resident && for n in "${ranks[@]}"; do run "$m-$n-dp-resident" "$n" --preset "$m" "${steps[@]}" "${budget[@]}"; done
  want pp-resident && for n in "${ranks[@]}"; do
    [ "$n" -gt 1 ] && run "$m-$n-pp-resident" "$n" --preset "$m" "${steps[@]}" "${budget[@]}" --perturbation-parallel "$n"
    [ "$n" -gt 1 ] && run "$m-1-resident-q$n" 1 --preset "$m" "${steps[@]}" "${budget[@]}" --q "$n"
  done
  want dp-streamed && for n in "${ranks[@]}"; do run "$m-$n-dp-streamed" "$n" --preset "$m" "${steps[@]}" --offload true --share-host-store true; done
done
echo "results: $out"
