#!/usr/bin/env bash
# zo2 train on 2 CPU ranks (ctest mpi_train_cli): rank 1 is started with other --seed/--init-seed
# values and must adopt rank 0's (else the replica checksums, compared after every step, differ and
# the job fails); the streamed blocks in one shared host copy give the same losses as private copies;
# every step sends 24 bytes per rank (16 for the losses, 8 for the token count), each checksum 8 bytes
# per block plus 8.
# usage: train_cli_test.sh MPIEXEC ZO2
set -u
mpiexec=$1
zo2=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# 32 language-modelling examples of 16 ids (opt-tiny: vocabulary 512), one fixed pattern.
for i in $(seq 0 31); do
  ids="2"
  for j in $(seq 1 15); do ids="$ids, $(((i * 37 + j * 101 + i * j * 7) % 508 + 4))"; done
  echo "{\"ids\": [$ids]}"
done >data.jsonl

args=(train --preset opt-tiny --device cpu --data data.jsonl --steps 6 --batch-size 2 --lr 1e-3 --progress false
      --offload true)
run() {  # run NAME MPIEXEC-ARGS...
  local name=$1
  shift
  "$@" >"$name.log" 2>&1
  local rc=$?
  [ "$rc" = 0 ] || { fail "$name exited with $rc"; sed 's/^/    /' "$name.log" | tail -20; }
}

run seeds "$mpiexec" --oversubscribe -np 1 "$zo2" "${args[@]}" --seed 7 --init-seed 3 --checksum-every 1 \
  --share-host-store true --metrics seeds.jsonl : -np 1 "$zo2" "${args[@]}" --seed 8 --init-seed 4 \
  --checksum-every 1 --share-host-store true
grep -q "rank 1 was given --seed 8; using rank 0's 7" seeds.log || fail "no warning about rank 1's --seed"
grep -q "rank 1 was given --init-seed 4; using rank 0's 3" seeds.log || fail "no warning about rank 1's --init-seed"
grep -q "one shared host copy per node" seeds.log || fail "the host store was not shared"
[ "$(grep -c '"replicas_identical":true' seeds.jsonl)" = 6 ] || fail "expected 6 replica checks in seeds.jsonl"

for share in true false; do
  run "share_$share" "$mpiexec" --oversubscribe -np 2 "$zo2" "${args[@]}" --share-host-store "$share" \
    --checksum-every 3 --metrics "share_$share.jsonl"
  grep -o '"loss_minus":\[[^]]*\],"loss_plus":\[[^]]*\]' "share_$share.jsonl" >"losses_$share.txt"
done
[ "$(wc -l <losses_true.txt)" = 6 ] || fail "expected 6 steps of losses"
cmp -s losses_true.txt losses_false.txt || fail "shared and private host stores gave different losses"
[ "$(grep -c '"bytes_sent":24,' share_true.jsonl)" = 6 ] || fail "a step did not send 24 bytes"
grep -q '"checksum_bytes":24,' share_true.jsonl || fail "a checksum (opt-tiny: 3 values) did not send 24 bytes"

[ "$failed" = 0 ] && echo PASS
exit "$failed"
