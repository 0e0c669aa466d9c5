#!/usr/bin/env bash
# scripts/bench_overload.sh BIN LABEL (issue 20): serves a bank with the qianmian binary ./BIN
# (data/ and the artifact root ART, default /work/exp/art20k, in the current folder's terms) and
# measures the unloaded latency (open loop, 100/s), the capacity (closed loop, 8 connections) and
# an open loop at three times that capacity; prints ok throughput, outcomes and ok latencies.
# Run it from a folder holding BIN and data/ (customers.csv, items.csv, events.csv); not in CI.
# ROUNDS=N (default 1): N overload runs, each between two capacity runs; each round prints the
# 3x run's ok throughput as a share of the mean of the capacities measured just before and after
# it (this host's speed drifts by a third within minutes, so one capacity figure is not enough).
# SERVER_CPUS=1.5 (root, cgroup v1 cpu controller): the server runs in a cgroup with that CPU
# quota, so on a 2-core machine the load generator's own CPU (which grows with the offered load)
# does not come out of the server's share: capacity and the 3x run then measure the server on the
# same CPU budget.
# TICK_US=N (default 1000): the 3x open loop's load generator sends what is due every N us
# (bench --tick-us; a request sent late counts its lateness), so that it wakes a thousand times a
# second instead of once a request on the cores it shares with the server; 0 = each request at its
# time. The unloaded open loop sends each request at its time. A load generator before bench's
# --tick-us (2026-12-07) needs TICK_US=0.
# BENCH=PATH: the load generator's binary (default ./BIN), e.g. one load generator for two servers.
# The server runs as the README tells deployments to run it: with jemalloc preloaded when it is
# installed (PRELOAD= (empty): glibc's allocator, which spends about a tenth of an overloaded
# server's CPU in malloc and free here).
set -u
BIN=$1; LABEL=$2; PORT=${PORT:-5599}; ART=${ART:-/work/exp/art20k}; BENCH=${BENCH:-./$BIN}
PRELOAD=${PRELOAD-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
if [ -n "$PRELOAD" ] && [ ! -f "$PRELOAD" ]; then PRELOAD=""; fi
echo "server allocator: ${PRELOAD:-glibc}"
rm -rf data/store
cut -d, -f1 data/customers.csv | tail -n +2 | head -5000 > ids.txt
LD_PRELOAD="$PRELOAD" "./$BIN" serve --data data --artifacts "$ART" --bind tcp://127.0.0.1:$PORT > serve-$LABEL.log 2>&1 &
SP=$!
if [ -n "${SERVER_CPUS:-}" ]; then
  CG=/sys/fs/cgroup/cpu/qm-bench-$$
  mkdir -p "$CG"
  echo 10000 >"$CG/cpu.cfs_period_us"
  awk "BEGIN { print int(10000 * $SERVER_CPUS) }" >"$CG/cpu.cfs_quota_us"
  echo "$SP" >"$CG/cgroup.procs"
  echo "server $SP limited to $SERVER_CPUS CPUs (cgroup $CG)"
  trap 'rmdir "$CG" 2>/dev/null' EXIT
fi
for i in $(seq 1 120); do "./$BIN" client --connect tcp://127.0.0.1:$PORT health 2>/dev/null | grep -q '"ok":true' && break; sleep 1; done
"$BENCH" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 5 --concurrency 4 > /dev/null 2>&1   # warm-up
echo "== $LABEL unloaded (open loop 100/s)"; "$BENCH" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --rate 100 --duration 10 --concurrency 4 2>&1 | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
# The server's CPU time in clock ticks (user + system, all threads).
ticks() { awk '{ print $14 + $15 }' "/proc/$SP/stat"; }
HZ=$(getconf CLK_TCK)
# capacity: prints "OK_PER_S OK_COUNT SERVER_CPU_S" of a 10 s closed loop.
capacity() {
  local t0 t1 line
  t0=$(ticks)
  line=$("$BENCH" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 10 --concurrency 8 2>&1 |
    sed -n 's/.*ok \([0-9]*\) (\([0-9.]*\) req\/s).*/\2 \1/p' | head -1)
  t1=$(ticks)
  echo "$line $(awk "BEGIN { print ($t1 - $t0) / $HZ }")"
}
echo "== $LABEL capacity (closed loop, 8 connections)"; "$BENCH" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 10 --concurrency 8 2>&1 | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
read -r CAP CAPN CAPCPU <<<"$(capacity)"
for round in $(seq 1 "${ROUNDS:-1}"); do
  echo "capacity before round $round: $CAP ok/s ($CAPN ok in ${CAPCPU} s of server CPU)"
  R=$(awk "BEGIN { print int(3 * $CAP) }")
  echo "== $LABEL round $round overload: open loop at $R/s (3x), 8 connections"
  T0=$(ticks)
  TICK=()
  if [ "${TICK_US:-1000}" != 0 ]; then TICK=(--tick-us "${TICK_US:-1000}"); fi
  OUT=$(/usr/bin/time -f "bench cpu: %U s user + %S s sys over 10 s" "$BENCH" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --rate $R --duration 10 --concurrency 8 "${TICK[@]}" 2>&1)
  T1=$(ticks)
  echo "$OUT" | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
  read -r OK OKN <<<"$(echo "$OUT" | sed -n 's/.*ok \([0-9]*\) (\([0-9.]*\) req\/s).*/\2 \1/p' | head -1)"
  OKCPU=$(awk "BEGIN { print ($T1 - $T0) / $HZ }")
  read -r AFTER AFTERN AFTERCPU <<<"$(capacity)"
  echo "capacity after round $round: $AFTER ok/s ($AFTERN ok in ${AFTERCPU} s of server CPU)"
  # Two shares: of the ok throughput around it, and of the ok pages per second of server CPU (what
  # the server would serve with the cores to itself, the load generator elsewhere).
  awk "BEGIN { printf \"round $round: ok %.1f/s at 3x = %.1f%% of the mean capacity %.1f/s around it; %.0f ok per server CPU-second = %.1f%% of capacity's %.0f\\n\", $OK, 100 * $OK / (($CAP + $AFTER) / 2), ($CAP + $AFTER) / 2, $OKN / $OKCPU, 100 * ($OKN / $OKCPU) / (($CAPN + $AFTERN) / ($CAPCPU + $AFTERCPU)), ($CAPN + $AFTERN) / ($CAPCPU + $AFTERCPU) }"
  CAP=$AFTER; CAPN=$AFTERN; CAPCPU=$AFTERCPU
done
kill -TERM $SP; wait $SP
