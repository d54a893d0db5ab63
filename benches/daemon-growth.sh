#!/usr/bin/env bash
# Per-event cost as activity.db grows: the daemon's rate on a file of 10^4 events against one of 10^7,
# with the small and big runs alternating so both see the same machine load. Goal: cost at 10^7 <= 1.5x
# the cost at 10^4. Needs ~1.2 GB of disk. Usage: cargo build --release && benches/daemon-growth.sh
set -euo pipefail
B=${B:-target/release/splitstore}
W=${W:-$(mktemp -d /tmp/splitstore-growth.XXXXXX)}
# Removed however the run ends (a failure, Ctrl-C): 1.2 GB left in /tmp otherwise.
trap 'rm -rf "$W"' EXIT
BIG=$W/big
echo "growing $BIG to 10^7 events:"
$B daemon --data-dir "$BIG" --batch 1000 --events 10000000
ls -la "$BIG/activity.db"
for i in 1 2 3; do
  S=$W/small$i
  $B daemon --data-dir "$S" --batch 1000 --events 10000 > /dev/null
  echo "batch  small(1e4): $($B daemon --data-dir "$S" --batch 1000 --events 100000)"
  echo "batch  big(1e7):   $($B daemon --data-dir "$BIG" --batch 1000 --events 100000)"
  rm -rf "$S"
  $B daemon --data-dir "$S" --batch 1000 --events 10000 > /dev/null
  echo "single small(1e4): $($B daemon --data-dir "$S" --events 10000)"
  echo "single big(1e7):   $($B daemon --data-dir "$BIG" --events 10000)"
  rm -rf "$S"
done
