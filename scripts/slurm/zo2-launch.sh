#!/usr/bin/env bash
# Starts `zo2 train` on every task of a Slurm allocation; the zo2-opt*.sbatch scripts set the model's
# defaults and exec this. docs/multi-node.md ("Slurm", "Training on several ranks") explains the knobs.
#
# Environment (the sbatch scripts set defaults; anything set at submission wins):
#   MODEL, DATA           checkpoint directory (config.json + weights) and training set (JSON lines); required
#   EVAL_DATA             evaluation set (optional)
#   ZO2_BUILD             directory with zo2 and zo2run (default: $ZO2_ROOT/build, ZO2_ROOT = the submit dir)
#   ZO2_LAUNCH            mpirun (default: zo2run, i.e. Open MPI's mpirun inside the allocation) or srun
#                         (srun --mpi=pmix; Open MPI built against a PMIx that Slurm supports: srun --mpi=list)
#   GPU_BUDGET            --gpu-memory-budget in GB (0: every block resident)
#   PERTURBATION_PARALLEL --perturbation-parallel (1: data parallel over all ranks)
#   SHM_GB                host memory the shared host store needs per node (checked against /dev/shm)
#   SAVE_EVERY            checkpoint every N steps into $OUTPUT (default 500; the log records every step)
#   STEPS BATCH MAX_LENGTH LR EPS Q CHECKSUM_EVERY OUTPUT EXTRA_ARGS
# A job started again with the same OUTPUT (sbatch --requeue, or OUTPUT set by hand) resumes the run
# there: same bits as an uninterrupted run (docs/checkpoints.md).
set -euo pipefail

: "${MODEL:?set MODEL to the checkpoint directory}"
: "${DATA:?set DATA to the training set (JSON lines)}"
ZO2_ROOT=${ZO2_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
ZO2_BUILD=${ZO2_BUILD:-$ZO2_ROOT/build}
ZO2_LAUNCH=${ZO2_LAUNCH:-mpirun}
GPUS=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-8}}
GPUS=${GPUS##*:}  # "h100:8" -> 8
TASKS=${SLURM_NTASKS_PER_NODE:-$GPUS}
TASKS=${TASKS%%(*}  # "8(x2)" -> 8
OUTPUT=${OUTPUT:-$ZO2_ROOT/runs/${SLURM_JOB_NAME:-zo2}-${SLURM_JOB_ID:-local}}
mkdir -p "$OUTPUT"

# A collective or the shared store waits at most this long for a peer (big models: slow first steps).
export ZO2_COLLECTIVE_TIMEOUT=${ZO2_COLLECTIVE_TIMEOUT:-900}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

if [ -n "${SHM_GB:-}" ] && [ "${SHM_GB%.*}" -gt 0 ]; then
  avail=$(df -B1G --output=avail /dev/shm | tail -1 | tr -d ' ')
  if [ "$avail" -lt "${SHM_GB%.*}" ]; then
    echo "zo2-launch: /dev/shm has ${avail} GB free on $(hostname), the shared host store needs ${SHM_GB} GB" >&2
    echo "zo2-launch: (the job goes on: --share-host-store auto falls back to a private copy per rank)" >&2
  fi
fi

args=(train --model "$MODEL" --data "$DATA" --dtype f16
      --gpu-memory-budget "${GPU_BUDGET:-0}" --perturbation-parallel "${PERTURBATION_PARALLEL:-1}"
      --steps "${STEPS:-1000}" --batch-size "${BATCH:-1}" --max-length "${MAX_LENGTH:-2048}"
      --lr "${LR:-1e-7}" --eps "${EPS:-1e-3}" --q "${Q:-1}" --checksum-every "${CHECKSUM_EVERY:-100}"
      --metrics "$OUTPUT/metrics.jsonl" --progress false --out "$OUTPUT" --save-every "${SAVE_EVERY:-500}")
[ ! -f "$OUTPUT/trajectory.zo2traj" ] || args+=(--resume "$OUTPUT")
[ -z "${EVAL_DATA:-}" ] || args+=(--eval-data "$EVAL_DATA")
# shellcheck disable=SC2206  # EXTRA_ARGS is a list of words on purpose
[ -z "${EXTRA_ARGS:-}" ] || args+=($EXTRA_ARGS)

echo "zo2-launch: ${SLURM_JOB_NUM_NODES:-1} node(s) x $TASKS ranks, $GPUS GPUs per node, via $ZO2_LAUNCH; output $OUTPUT"
case "$ZO2_LAUNCH" in
  mpirun)
    exec "$ZO2_BUILD/zo2run" --ranks-per-node "$TASKS" --gpus-per-node "$GPUS" --exe "$ZO2_BUILD/zo2" -- "${args[@]}" ;;
  srun)
    exec srun --mpi=pmix --ntasks-per-node="$TASKS" --cpu-bind=none --kill-on-bad-exit=1 \
      "$ZO2_BUILD/zo2" "${args[@]}" ;;
  *)
    echo "zo2-launch: ZO2_LAUNCH='$ZO2_LAUNCH' (mpirun or srun)" >&2
    exit 2 ;;
esac
