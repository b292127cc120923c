#!/usr/bin/env bash
# launcher/zo2run --dry-run: the mpirun command it builds for typical launches, and its refusals.
# Expected commands are written out here from the documented behaviour (docs/multi-node.md).
# Hermetic: every case runs with a fake nvidia-smi first in PATH (none of the machine's GPUs count);
# by default it lists no GPU, FAKE_GPUS=N makes it list N.
# usage: zo2run_dry_run_test.sh PATH/TO/zo2run
set -u
zo2run=$1
failed=0
root_flag=""
[ "$(id -u)" != 0 ] || root_flag=" --allow-run-as-root"
fake=$(mktemp -d)
hostfile=$(mktemp)
trap 'rm -rf "$fake" "$hostfile"' EXIT
cat >"$fake/nvidia-smi" <<'FAKE'
#!/usr/bin/env bash
# like `nvidia-smi -L`: one line per GPU; without GPUs the real one fails
n=${FAKE_GPUS:-0}
[ "$n" -gt 0 ] || { echo "No devices were found"; exit 6; }
for ((i = 0; i < n; i++)); do echo "GPU $i: Fake GPU (UUID: GPU-$i)"; done
FAKE
chmod +x "$fake/nvidia-smi"
PATH="$fake:$PATH"

# expect NAME EXPECTED-COMMAND -- ZO2RUN-ARGS...   (environment: a clean one plus what env(1) sets)
expect() {
  local name=$1 want=$2
  shift 3
  local got
  got=$(env -i PATH="$PATH" HOME="${HOME:-/}" "$@" 2>&1)
  got=${got% }
  if [ "$got" != "$want" ]; then
    echo "FAIL $name"
    echo "  want: $want"
    echo "  got:  $got"
    failed=1
  else
    echo "ok   $name"
  fi
}
# refuse NAME TEXT -- ZO2RUN-ARGS...: exits 2 and says TEXT
refuse() {
  local name=$1 text=$2
  shift 3
  local out rc
  out=$(env -i PATH="$PATH" "$@" 2>&1)
  rc=$?
  if [ "$rc" != 2 ] || [[ "$out" != *"$text"* ]]; then
    echo "FAIL $name: exit $rc, output: $out"
    failed=1
  else
    echo "ok   $name"
  fi
}

printf '# two nodes\nnode1 slots=2\nnode2 slots=2\n\nnode1\n' >"$hostfile"

x=(--exe /opt/zo2 --mpirun mpirun --dry-run)
common="--bind-to none$root_flag -x NCCL_NVLS_ENABLE=0"

expect one_node_two_gpus "mpirun -np 2 --map-by ppr:2:node $common /opt/zo2 train --config run.ini" -- \
  "$zo2run" "${x[@]}" --gpus-per-node 2 -- train --config run.ini
expect np_alone_fills_one_node "mpirun -np 3 --map-by ppr:3:node $common /opt/zo2 inspect m" -- \
  "$zo2run" "${x[@]}" --ranks-per-node 3 inspect m
expect two_hosts "mpirun -np 8 --host a:4\\,b:4 --map-by ppr:4:node $common /opt/zo2 train" -- \
  "$zo2run" "${x[@]}" --hosts a,b --ranks-per-node 4 -- train
expect hostfile_nodes_counted "mpirun -np 4 --hostfile $hostfile --map-by ppr:2:node $common /opt/zo2 train" -- \
  "$zo2run" "${x[@]}" --ranks-per-node 2 --hostfile "$hostfile" -- train
expect exports_nccl_zo2_and_library_path \
  "mpirun -np 2 --map-by ppr:2:node $common -x LD_LIBRARY_PATH -x NCCL_DEBUG -x ZO2_COLLECTIVE_TIMEOUT /opt/zo2 train" -- \
  NCCL_DEBUG=INFO ZO2_COLLECTIVE_TIMEOUT=60 LD_LIBRARY_PATH=/x UNRELATED=1 "$zo2run" "${x[@]}" --ranks-per-node 2 train
expect user_nvls_value_kept "mpirun -np 1 --map-by ppr:1:node --bind-to none$root_flag -x NCCL_NVLS_ENABLE=1 /opt/zo2 train" -- \
  NCCL_NVLS_ENABLE=1 "$zo2run" "${x[@]}" --ranks-per-node 1 train
expect oversubscribe_bind_and_mpi_args \
  "mpirun -np 3 --map-by ppr:3:node --bind-to core --oversubscribe$root_flag -x NCCL_NVLS_ENABLE=0 --mca btl self\\,vader /opt/zo2 train" -- \
  "$zo2run" "${x[@]}" --np 3 --oversubscribe --bind-to core --mpi-arg --mca --mpi-arg btl \
  --mpi-arg self,vader train
expect gpus_from_nvidia_smi "mpirun -np 2 --map-by ppr:2:node $common /opt/zo2 train" -- \
  FAKE_GPUS=2 "$zo2run" "${x[@]}" train
expect np_within_nvidia_smi_gpus "mpirun -np 1 --map-by ppr:2:node $common /opt/zo2 train" -- \
  FAKE_GPUS=2 "$zo2run" "${x[@]}" --np 1 train
expect gpus_per_node_beats_nvidia_smi "mpirun -np 4 --map-by ppr:4:node $common /opt/zo2 train" -- \
  FAKE_GPUS=2 "$zo2run" "${x[@]}" --gpus-per-node 4 train
expect arguments_keep_spaces "mpirun -np 1 --map-by ppr:1:node $common /opt/zo2 train --name a\\ b" -- \
  "$zo2run" "${x[@]}" --ranks-per-node 1 -- train --name "a b"

refuse bad_count "--np 'two' is not a positive integer" -- "$zo2run" "${x[@]}" --np two train
refuse hosts_and_hostfile "not both" -- "$zo2run" "${x[@]}" --hosts a --hostfile "$hostfile" train
refuse too_many_ranks "--np 5 is more than 2 node(s) x 2 ranks" -- "$zo2run" "${x[@]}" --hosts a,b --ranks-per-node 2 --np 5 train
refuse host_slots "--hosts takes names only" -- "$zo2run" "${x[@]}" --hosts a:2 train
refuse np_beyond_nvidia_smi_gpus "--np 3 is more than 1 node(s) x 2 ranks" -- \
  FAKE_GPUS=2 "$zo2run" "${x[@]}" --np 3 train
refuse unknown_option "unknown option '--gpus'" -- "$zo2run" "${x[@]}" --gpus 2 train

[ "$failed" = 0 ] && echo PASS
exit "$failed"
