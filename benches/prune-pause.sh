#!/usr/bin/env bash
# The longest pause of a daemon recording at full speed while 10^6 old sessions (and their events) are
# pruned in steps, against the same daemon on the same file without pruning, the two alternating so both
# see the same machine load. The daemon (`splitstore daemon`, group commit of 1000) is the load generator
# and the meter: its summary line gives the longest gap between two commits, its 99th and 99.9th
# percentiles, and with --prune-older-than-days what was pruned and the longest prune step. Goal: longest
# pause while pruning <= 20 ms. Needs ~0.6 GB of disk. Each copy is synced before its run: otherwise the
# daemon's first checkpoint (an fsync of activity.db) waits for the kernel to write the whole copy out,
# a pause of 30-130 ms that belongs to `cp`, not to the daemon.
# Usage: cargo build --release && benches/prune-pause.sh [ROUNDS] [STEP_ROWS...]
set -euo pipefail
B=${B:-target/release/splitstore}
W=${W:-$(mktemp -d /tmp/splitstore-prune.XXXXXX)}
mkdir -p "$W"
# Removed however the run ends (a failure, Ctrl-C): the run's copy, and the work folder unless OLD was given.
trap 'rm -rf "$W/run"; if [ "$OLD" = "$W/old" ]; then rm -rf "$W"; fi' EXIT
ROUNDS=${1:-2}
shift || true
STEPS=("${@:-500}")
OLD=${OLD:-$W/old}
if [ ! -e "$OLD/activity.db" ]; then
  echo "recording 10^6 sessions of one event each, 400 days ago:"
  $B daemon --data-dir "$OLD" --backdate-days 400 --session-events 1 --events 1000000 --batch 1000
fi
ls -la "$OLD/activity.db"
for i in $(seq 1 "$ROUNDS"); do
  for rows in "${STEPS[@]}"; do
    rm -rf "$W/run" && cp -r "$OLD" "$W/run" && sync
    echo "plain           : $($B daemon --data-dir "$W/run" --batch 1000 --seconds 20)"
    rm -rf "$W/run" && cp -r "$OLD" "$W/run" && sync
    echo "prune, $rows rows: $($B daemon --data-dir "$W/run" --batch 1000 --seconds 20 --prune-older-than-days 365 \
      --prune-step-rows "$rows")"
  done
done
