#!/usr/bin/env bash
# A rank killed with kill -9 in the middle of data-parallel training must end the whole job within 30 s
# (no rank left waiting in a collective), and the last checkpoint rank 0 wrote must load: one process
# resumes from it and trains one more epoch (a resume on another number of ranks).
# Usage: kill-rank.sh NEURON_BINARY MPIRUN_COMMAND...   (e.g. .build/release/neuron mpirun --oversubscribe)
set -uo pipefail
neuron=$1; shift
mpirun=("$@")
dir=$(mktemp -d /tmp/neuron-kill-rank.XXXXXX)
checkpoint=$dir/shapes.checkpoint.safetensors
args=(shapes --train-count 640 --test-count 64 --seed 5 --checkpoint "$checkpoint" --output "$dir/model.safetensors")
fail() { echo "kill-rank: FAIL: $*"; echo "--- job log:"; tail -20 "$dir/job.log"; exit 1; }
cleanup() { [ -n "${job:-}" ] && kill -9 "$job" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"${mpirun[@]}" -np 2 "$neuron" "${args[@]}" --distributed --epochs 100000 >"$dir/job.log" 2>&1 &
job=$!
for _ in $(seq 600); do [ -f "$checkpoint" ] && break; kill -0 "$job" 2>/dev/null || fail "the job ended before its first checkpoint"; sleep 0.2; done
[ -f "$checkpoint" ] || fail "no checkpoint after 120 s"
sleep 0.7  # into a later epoch, possibly during a checkpoint write
victim=""
for pid in $(pgrep -P "$job"); do
  tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$pid
done
[ -n "$victim" ] || fail "rank 1 not found among mpirun's children ($(pgrep -P "$job" | tr '\n' ' '))"
kill -9 "$victim"
start=$(date +%s%N)
for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
kill -0 "$job" 2>/dev/null && fail "the job still runs 30 s after rank 1 (pid $victim) was killed"
wait "$job"; status=$?
job=""
millis=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$status" -ne 0 ] || fail "the job exited 0 although a rank was killed"
echo "kill-rank: rank 1 (pid $victim) killed with SIGKILL; mpirun ended the job (exit $status) after $((millis / 1000)).$(printf %03d $((millis % 1000))) s"
ls "$dir" | grep -q '\.tmp' && echo "kill-rank: note: a temporary file was left beside the checkpoint (the killed write)"

# One process loads the last checkpoint and trains one more epoch.
out=$("$neuron" "${args[@]}" --resume --epochs 1 2>&1) || { echo "$out"; fail "the checkpoint did not load"; }
done_epochs=$(echo "$out" | sed -n 's/^resumed from .* after epoch \([0-9]*\)$/\1/p')
[ -n "$done_epochs" ] || { echo "$out"; fail "no resume line"; }
out=$("$neuron" "${args[@]}" --resume --epochs $((done_epochs + 1)) 2>&1) || { echo "$out"; fail "resumed training failed"; }
echo "$out" | grep -q "^epoch $((done_epochs + 1))/$((done_epochs + 1)) " || { echo "$out"; fail "no epoch $((done_epochs + 1)) after resuming"; }
echo "kill-rank: the last checkpoint (after epoch $done_epochs) loads; one process resumed and trained epoch $((done_epochs + 1)): $(echo "$out" | grep "^epoch $((done_epochs + 1))/" | tail -1)"
