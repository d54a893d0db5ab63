#!/usr/bin/env bash
# migrate-split on a legacy file against sqlite3 doing the same work (benches/split-equal-work.sql) and
# against a bare ATTACH + CREATE TABLE AS of the same tables (benches/split-create-table-as.sql), and that
# copy followed by the schema's indexes (benches/split-indexes.sql), the four alternating round after round
# (in a rotating order) so all see the same machine load. Prints each
# run's wall time, CPU time and peak RSS (`/usr/bin/time -v`) and, for migrate-split, where its time went
# (the phases of its report), then the medians and their ratios.
# Goals: migrate-split <= 1.0x sqlite3 doing the same work, <= 2.5x CREATE TABLE AS, peak RSS < 100 MB.
#
# Usage: cargo build --release -p migrate-split && benches/split-vs-sqlite3.sh LEGACY [ROUNDS]
# A 1 GB legacy file: cargo run --release -p migrate-split --features fixtures --example build_fixture -- \
#   /tmp/legacy-large.db large 3   (a few minutes; ~1 GB of disk, and ~2.5 GB more while this runs)
set -euo pipefail
LEGACY=$(realpath "$1")
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
MS=${MS:-$HERE/../target/release/migrate-split}
W=$(mktemp -d /tmp/split-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
command -v sqlite3 > /dev/null || { echo "sqlite3 is needed (apt-get install sqlite3)"; exit 2; }
echo "legacy: $LEGACY ($(stat -c %s "$LEGACY") bytes); $(sqlite3 --version | cut -d' ' -f1-2); $(nproc) cores"

# run NAME COMMAND...: runs in a fresh directory holding legacy.db, appends "NAME wall_s cpu_s rss_kb".
run() {
  local name=$1
  shift
  rm -rf "$W/run" && mkdir "$W/run" && ln -s "$LEGACY" "$W/run/legacy.db"
  (cd "$W/run" && /usr/bin/time -v "$@" > "$W/out.txt" 2> "$W/time.txt") || {
    cat "$W/out.txt" "$W/time.txt"
    exit 1
  }
  local wall cpu rss
  wall=$(awk -F': ' '/Elapsed/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$W/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$W/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$W/time.txt")
  printf '%-16s wall %7.2f s  cpu %7.2f s  peak RSS %4d MB  (load %s)\n' "$name" "$wall" "$cpu" $((rss / 1024)) \
    "$(cut -d' ' -f1 /proc/loadavg)"
  echo "$name $wall $cpu $rss" >> "$W/results"
  # migrate-split says where its time went (its report's phases).
  grep '^  time: ' "$W/time.txt" || true
}

split_tool() { run migrate-split "$MS" --legacy legacy.db --data-dir data; }
equal_work() { run sqlite3-same-work sh -c "sqlite3 activity.db < '$HERE/split-equal-work.sql'"; }
ctas() { run create-table-as sh -c "sqlite3 activity.db < '$HERE/split-create-table-as.sql'"; }
ctas_indexes() {
  run ctas-and-indexes sh -c "cat '$HERE/split-create-table-as.sql' '$HERE/split-indexes.sql' | sqlite3 activity.db"
}

for round in $(seq 1 "$ROUNDS"); do
  case $((round % 4)) in
    1) split_tool; equal_work; ctas; ctas_indexes ;;
    2) equal_work; ctas; ctas_indexes; split_tool ;;
    3) ctas; ctas_indexes; split_tool; equal_work ;;
    0) ctas_indexes; split_tool; equal_work; ctas ;;
  esac
done

median() { awk -v n="$1" -v col="$2" '$1 == n {print $col}' "$W/results" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ms=$(median migrate-split 2); eq=$(median sqlite3-same-work 2); ct=$(median create-table-as 2)
ci=$(median ctas-and-indexes 2)
msc=$(median migrate-split 3); eqc=$(median sqlite3-same-work 3); ctc=$(median create-table-as 3)
rss=$(awk '$1 == "migrate-split" {print $4}' "$W/results" | sort -n | tail -1)
echo "medians over $ROUNDS rounds: migrate-split $ms s (cpu $msc s), sqlite3 same work $eq s (cpu $eqc s), CREATE TABLE AS $ct s (cpu $ctc s), CREATE TABLE AS and the indexes $ci s"
awk -v a="$ms" -v b="$eq" -v c="$ct" -v d="$ci" -v ac="$msc" -v bc="$eqc" -v cc="$ctc" -v r="$rss" 'BEGIN {
  printf "ratio migrate-split / sqlite3 same work = %.2f (cpu %.2f; goal <= 1.0)\n", a / b, ac / bc
  printf "ratio migrate-split / CREATE TABLE AS = %.2f (cpu %.2f; goal <= 2.5)\n", a / c, ac / cc
  printf "ratio migrate-split / CREATE TABLE AS and the schema'"'"'s indexes = %.2f (reported)\n", a / d
  printf "migrate-split peak RSS %d MB (goal < 100 MB)\n", r / 1024
}'
