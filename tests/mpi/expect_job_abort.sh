#!/usr/bin/env bash
# Runs one failure scenario of zo2_mpi_tests (--crash=...) under mpirun and checks that the whole job
# ends with a non-zero status within LIMIT seconds, that every rank it started is gone, and that the
# output holds each --expect text.
# usage: expect_job_abort.sh LIMIT_S NP [--expect TEXT]... -- MPIEXEC [mpiexec args] PROGRAM [args]
set -u
limit=$1 np=$2
shift 2
expects=()
while [ "$1" != "--" ]; do
  [ "$1" = "--expect" ] || { echo "expect_job_abort.sh: bad argument '$1'"; exit 2; }
  expects+=("$2")
  shift 2
done
shift

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ZO2_TEST_PID_DIR=$work
start_ms=$(date +%s%3N)
# The outer timeout only keeps a broken abort path from hanging ctest; the limit is checked below.
timeout -s KILL $((limit + 60)) "$@" >"$work/log" 2>&1
rc=$?
elapsed_ms=$(($(date +%s%3N) - start_ms))
cat "$work/log"
echo "---- mpirun exit status $rc after ${elapsed_ms} ms (limit ${limit} s)"

if [ "$rc" = 77 ] && grep -q "skipped" "$work/log"; then
  echo "SKIPPED"
  exit 77
fi
failed=0
fail() { echo "FAIL: $*"; failed=1; }
[ "$rc" -ne 0 ] || fail "the job exited with status 0"
started=$(find "$work" -name '*.pid' | wc -l)
[ "$started" -eq "$np" ] || fail "$started of $np ranks started"
# Every rank must be gone within the limit too (mpirun may return while the kills are still landing).
# A rank counts as gone once it is a zombie (dead, waiting for init to reap it) or no longer exists.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }
pids=$(cat "$work"/*.pid 2>/dev/null)
while :; do
  left=""
  for pid in $pids; do alive "$pid" && left="$left $pid"; done
  elapsed_ms=$(($(date +%s%3N) - start_ms))
  [ -n "$left" ] && [ "$elapsed_ms" -le $((limit * 1000)) ] || break
  sleep 0.2
done
echo "---- ranks still running after ${elapsed_ms} ms:${left:- none}"
[ "$elapsed_ms" -le $((limit * 1000)) ] || fail "the job took ${elapsed_ms} ms, more than ${limit} s"
for pid in $left; do
  fail "rank process $pid is still running"
  kill -KILL "$pid" 2>/dev/null  # ours: started by this script's mpirun
done
for text in "${expects[@]}"; do
  grep -qF -- "$text" "$work/log" || fail "the output lacks '$text'"
done
[ "$failed" -eq 0 ] && echo "PASS"
exit "$failed"
