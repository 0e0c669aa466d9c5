#!/usr/bin/env bash
# scripts/bench_ab.sh OLD_BIN NEW_BIN DATA ART [ROUNDS] (issue 21): serving throughput of two
# qianmian binaries back to back, alternating OLD, NEW, OLD, NEW, ... for ROUNDS rounds (default
# 3), because this host's speed drifts within minutes. Each run starts `serve` on DATA (a folder
# with customers.csv, items.csv, events.csv) and the artifact root ART, warms up for 5 s, then
# measures a closed loop (BENCH_CONCURRENCY connections, default 4, BENCH_SECONDS s, default 20)
# and prints one line: ok pages/s, ok p50/p99 and the server's CPU-seconds per 1,000 ok pages.
# STORE_SEED=DIR: the event store is copied from DIR before each run (a seeded store of a large
# bank; without it the store starts empty). The server serves at its clock: for a generated
# bank's data, weeks old, customers then have no recent history and pages cost about a quarter
# less; export QIANMIAN_DATA_CLOCK=data_end to serve at the data's end, as the in-process benchmark
# does. Not in CI; records go to docs/BENCHMARKS.md.
set -u
OLD=$1; NEW=$2; DATA=$3; ART=$4; ROUNDS=${5:-3}
PORT=${PORT:-5597}; CONC=${BENCH_CONCURRENCY:-4}; SECS=${BENCH_SECONDS:-20}
WORK=$(mktemp -d /tmp/qm-bench-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/data"
for f in customers.csv items.csv events.csv; do ln -s "$(readlink -f "$DATA/$f")" "$WORK/data/$f"; done
# BENCH_CUSTOMERS=N: the pages go to N customers drawn at random (fixed seed) from the whole
# bank, as a bank's traffic does; default: the first 5,000 customers (the earlier records).
if [ -n "${BENCH_CUSTOMERS:-}" ]; then
  cut -d, -f1 "$DATA/customers.csv" | tail -n +2 |
    shuf -n "$BENCH_CUSTOMERS" --random-source=<(yes qianmian) >"$WORK/ids.txt"
else
  cut -d, -f1 "$DATA/customers.csv" | tail -n +2 | head -5000 >"$WORK/ids.txt"
fi
HZ=$(getconf CLK_TCK)

run() {  # run LABEL BIN
  local label=$1 bin=$2 sp t0 t1 out
  rm -rf "$WORK/data/store"
  [ -n "${STORE_SEED:-}" ] && cp -r "$STORE_SEED" "$WORK/data/store"
  "$bin" serve --data "$WORK/data" --artifacts "$ART" --bind tcp://127.0.0.1:$PORT >"$WORK/serve-$label.log" 2>&1 &
  sp=$!
  for _ in $(seq 1 300); do
    "$bin" client --connect tcp://127.0.0.1:$PORT health 2>/dev/null | grep -q '"ok":true' && break
    sleep 1
  done
  "$bin" bench --connect tcp://127.0.0.1:$PORT --customers "$WORK/ids.txt" --duration 5 --concurrency "$CONC" >/dev/null 2>&1
  t0=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
  out=$("$bin" bench --connect tcp://127.0.0.1:$PORT --customers "$WORK/ids.txt" --duration "$SECS" --concurrency "$CONC" 2>&1)
  t1=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
  kill -TERM $sp
  wait $sp
  local ok okn lat
  read -r okn ok <<<"$(echo "$out" | sed -n 's/.*ok \([0-9]*\) (\([0-9.]*\) req\/s).*/\1 \2/p' | head -1)"
  lat=$(echo "$out" | grep -E "latency \(ok\)" | head -1)
  awk -v l="$label" -v ok="$ok" -v n="$okn" -v c="$(( t1 - t0 ))" -v hz="$HZ" -v lat="$lat" \
    'BEGIN { printf "%s: %.1f ok pages/s, server %.3f CPU-s per 1,000 ok pages; %s\n", l, ok, 1000 * c / hz / n, lat }'
}

for round in $(seq 1 "$ROUNDS"); do
  run "round $round old" "$OLD"
  run "round $round new" "$NEW"
done
