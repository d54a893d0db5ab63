#!/usr/bin/env bash
# How soon a daemon asked to stop (SIGTERM) during its first start's split of a legacy file stops: the
# daemon is started on an empty data directory beside the legacy file, and signalled as its stderr names
# each phase of the split; the time from the signal to its exit is printed with its exit code, its last
# line and what is left in the data directory (only the lock files, unless the split was already closing
# its outputs, in which case it finishes, opens, and stops). Goal: a few seconds at most in every phase
# before closing, not the rest of the split. The legacy file: `cargo run --release -p migrate-split
# --features fixtures --example build_fixture -- FILE large` (1 GB).
# Usage: cargo build --release && benches/split-stop.sh LEGACY_FILE [PHASE...]
set -euo pipefail
B=${B:-target/release/splitstore}
L=${1:?usage: benches/split-stop.sh LEGACY_FILE [PHASE...]}
shift
PHASES=("$@")
if [ ${#PHASES[@]} -eq 0 ]; then
  PHASES=("copying activity_events" "building indexes" "computing the running totals"
    "finishing the legacy file's checks" "verifying" "closing" "putting the outputs in place")
fi
W=$(mktemp -d /tmp/splitstore-split-stop.XXXXXX)
trap 'rm -rf "$W"' EXIT
for phase in "${PHASES[@]}"; do
  rm -rf "$W/data" && mkdir "$W/data"
  $B daemon --data-dir "$W/data" --legacy "$L" --seconds 600 >/dev/null 2>"$W/stderr" &
  pid=$!
  until grep -qF "($phase, " "$W/stderr"; do
    kill -0 "$pid" 2>/dev/null || { echo "$phase: the daemon ended before it"; break; }
    sleep 0.05
  done
  t0=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  t1=$(date +%s.%N)
  printf '%-36s exit %s after %.2f s; left: %s\n  %s\n' "$phase" "$rc" "$(echo "$t1 - $t0" | bc)" \
    "$(ls -A "$W/data" | tr '\n' ' ')" "$(tail -1 "$W/stderr" | cut -c1-160)"
done
