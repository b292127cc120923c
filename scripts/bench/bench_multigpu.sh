#!/usr/bin/env bash
# Throughput of zo2 on 1 and 2 GPUs of this node: data parallel and perturbation parallel, every
# block resident and every block streamed (with one shared host store per node, and with a private
# copy per rank), OPT-1.3B fp16, batch 1 x 2048 per rank. Builds nothing; about 3-4 minutes for
# opt-1.3b on 2 H100/H200.
#
# usage: scripts/bench/bench_multigpu.sh BUILD_DIR
# environment: OUT (logs and results go to $OUT/bench_multigpu, else a fresh temporary directory),
#   MODELS (default "opt-1.3b"; e.g. "opt-1.3b opt-6.7b"), STEPS (8), WARMUP (2), SEQ (2048), BATCH (1),
#   RUN_TIMEOUT (seconds per run, 300), MPIRUN (mpirun), DTYPE (f16), BACKEND (nccl; mpi with DTYPE=f32 and a
#   fake nvidia-smi listing 2 GPUs runs the script's plumbing on a CPU machine).
#
# Prints per run: samples/s (distinct samples), sample-directions/s (samples x directions: what
# perturbation parallelism multiplies), bytes sent per rank per step, host memory per rank; then the
# 2-GPU/1-GPU ratios (goal >= 1.9): data parallel on samples/s, perturbation parallel on
# sample-directions/s against one GPU with q = 2.
set -uo pipefail

build=${1:?usage: bench_multigpu.sh BUILD_DIR}
build=$(cd "$build" && pwd)
zo2=$build/zo2
zo2run=$build/zo2run
[ -x "$zo2" ] && [ -x "$zo2run" ] || { echo "bench_multigpu: $zo2 or $zo2run missing (build the zo2 target)"; exit 2; }
out=${OUT:-$(mktemp -d)}/bench_multigpu
mkdir -p "$out"
models=${MODELS:-opt-1.3b}
steps=${STEPS:-8}
warmup=${WARMUP:-2}
seq=${SEQ:-2048}
batch=${BATCH:-1}
limit=${RUN_TIMEOUT:-300}
dtype=${DTYPE:-f16}
backend=${BACKEND:-nccl}
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)

{
  echo "bench_multigpu: $(date -u +%FT%TZ) on $(hostname), $gpus GPU(s), build $build"
  nvidia-smi -L 2>/dev/null
  echo "/dev/shm: $(df -h /dev/shm | tail -1)"
  echo "ulimit -l: $(ulimit -l)"
} | tee "$out/env.txt"
if [ "$gpus" -lt 2 ]; then
  echo "bench_multigpu: needs 2 GPUs, found $gpus"
  exit 2
fi

# run NAME RANKS ZO2-BENCH-ARGS...: one measurement; its JSON line goes to $out/NAME.json.
run() {
  local name=$1 ranks=$2
  shift 2
  rm -f "$out/$name.json"
  local cmd
  if [ "$ranks" = 1 ]; then
    cmd=(env CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" "$zo2" bench --backend single)
  else
    cmd=("$zo2run" --np "$ranks" --gpus-per-node "$gpus" --mpirun "${MPIRUN:-mpirun}" --exe "$zo2" -- bench --backend "$backend")
  fi
  local t0=$SECONDS
  timeout -s KILL "$limit" "${cmd[@]}" "$@" --json "$out/$name.json" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-34s rc %-3s %4ss  ' "$name" "$rc" "$((SECONDS - t0))"
  if [ "$rc" = 0 ] && [ -s "$out/$name.json" ]; then
    python3 - "$out/$name.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
mem = ", ".join(f"r{i} anon {a:.0f}/shmem {s:.0f}/pss_shmem {p:.0f} MiB"
                for i, (a, s, p) in enumerate(zip(r["host_rss_anon_mb"], r["host_rss_shmem_mb"], r["host_pss_shmem_mb"])))
print(f'step {r["step_ms_median"]:.1f} ms, {r["samples_s"]:.2f} samples/s, {r["sample_dirs_s"]:.2f} sample-dirs/s, '
      f'{r["bytes_sent_per_step"]:.0f} B/step, shared store {r["shared_host_store"]}; {mem}')
PY
  else
    echo "FAILED (last lines of $out/$name.log):"
    tail -n 8 "$out/$name.log" | sed 's/^/    /'
  fi
}

for model in $models; do
  common=(--preset "$model" --dtype "$dtype" --batch-size "$batch" --max-length "$seq" --steps "$steps" --warmup "$warmup"
          --kernels false)
  echo "== $model, $dtype, batch $batch x $seq per rank, $steps timed steps"
  run "$model-1gpu-resident" 1 "${common[@]}"
  run "$model-1gpu-resident-q2" 1 "${common[@]}" --q 2
  run "$model-2gpu-dp-resident" 2 "${common[@]}"
  run "$model-2gpu-pp-resident" 2 "${common[@]}" --perturbation-parallel 2
  run "$model-1gpu-streamed" 1 "${common[@]}" --offload true
  run "$model-1gpu-streamed-q2" 1 "${common[@]}" --offload true --q 2
  run "$model-2gpu-dp-streamed-shared" 2 "${common[@]}" --offload true --share-host-store true
  run "$model-2gpu-dp-streamed-private" 2 "${common[@]}" --offload true --share-host-store false
  run "$model-2gpu-pp-streamed-shared" 2 "${common[@]}" --offload true --perturbation-parallel 2 --share-host-store true
done

echo "== ratios (2 GPUs / 1 GPU; goal >= 1.9)"
python3 - "$out" $models <<'PY' | tee "$out/ratios.txt"
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
def get(name, key):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    return json.loads(open(p).readline())[key]
for m in models:
    for mode in ("resident", "streamed"):
        pairs = [(f"data parallel, {mode}", f"{m}-2gpu-dp-{mode}" + ("-shared" if mode == "streamed" else ""),
                  f"{m}-1gpu-{mode}", "samples_s"),
                 (f"data parallel, {mode}, private stores", f"{m}-2gpu-dp-{mode}-private", f"{m}-1gpu-{mode}", "samples_s"),
                 (f"perturbation parallel, {mode}", f"{m}-2gpu-pp-{mode}" + ("-shared" if mode == "streamed" else ""),
                  f"{m}-1gpu-{mode}-q2", "sample_dirs_s")]
        for label, two, one, key in pairs:
            a, b = get(two, key), get(one, key)
            if a is None or b is None:
                if mode == "streamed" or "private" not in label:
                    print(f"{m} {label}: missing ({two} or {one} failed)")
                continue
            print(f"{m} {label}: {a:.2f} / {b:.2f} {key} = {a / b:.2f}x")
PY
echo "logs and JSON: $out"
