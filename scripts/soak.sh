#!/usr/bin/env bash
# Soak (issue 20; not in CI): a server under 70% of its measured capacity for MINUTES (default 30)
# with feedback mixed in (an impression for every third page), compaction every 5 minutes.
# Records the server's RSS every 10 s and every latency, measures capacity again at the end, then
# reports per-minute throughput and p99, memory drift, compactions and errors
# (scripts/soak_report.py), with a verdict against the issue's targets: memory flat (+-5% after the
# first 2 minutes), p99 flat, compaction running, zero errors.
# Usage: [COMPACT_INTERVAL=5m] [CAPACITY_FEEDBACK=3] [RATE=pages/s] [PRELOAD=lib.so] [PERF=1] scripts/soak.sh DATA ARTIFACTS [MINUTES] [OUT_DIR]
# Also samples the CPU of the server's threads and of the bench every minute (top.txt), and every
# second the host's steal time, the machine's busy time, the server's CPU time and its threads' run
# delay (time runnable but waiting for a core, /proc/PID/task/*/schedstat) in cpu.csv, which the
# report lines up with each second's shed pages: host stalls and CPU contention told apart from
# the server's own stalls.
set -euo pipefail
DATA=${1:?usage: soak.sh DATA ARTIFACTS [MINUTES] [OUT_DIR]}
ART=${2:?usage: soak.sh DATA ARTIFACTS [MINUTES] [OUT_DIR]}
MINUTES=${3:-30}
OUT=${4:-/tmp/qm-soak}
QM=${QM:-$(dirname "$0")/../build/tools/qianmian}
mkdir -p "$OUT"
rm -f "$OUT/bench.pid"
PORT=$((20000 + RANDOM % 12000))
ADDR="tcp://127.0.0.1:$PORT"
cat >"$OUT/soak.toml" <<TOML
[server]
workers = 2
compact_interval = "${COMPACT_INTERVAL:-5m}"
TOML
# The server runs as the README tells deployments to run it: with jemalloc preloaded when it is
# installed (glibc's arenas grow RSS by a sixth within 15 minutes here). PRELOAD= (empty): glibc.
PRELOAD=${PRELOAD-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
if [ -n "$PRELOAD" ] && [ ! -f "$PRELOAD" ]; then PRELOAD=""; fi
echo "soak: allocator ${PRELOAD:-glibc}"
LD_PRELOAD="$PRELOAD" "$QM" serve --data "$DATA" --artifacts "$ART" --config "$OUT/soak.toml" --bind "$ADDR" >"$OUT/serve.log" 2>&1 &
SERVER=$!
SAMPLER=""
TOPPER=""
CPUS=""
# On exit the server is stopped and waited for (it still writes to the store while it drains;
# a next run that copies a fresh store into DATA must not race it).
trap 'kill -TERM $SERVER 2>/dev/null || true; kill $SAMPLER $TOPPER $CPUS 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  "$QM" client --connect "$ADDR" health >/dev/null 2>&1 && break
  sleep 0.5
done
echo "soak: server pid $SERVER on $ADDR"
# Capacity: closed loop, 4 connections, 30 s (after a 60 s warm-up that gives the store its
# first flushes and compactions), with the soak's feedback mix (CAPACITY_FEEDBACK=0: pages only,
# as before 2026-12-05).
FB_MIX=${CAPACITY_FEEDBACK:-3}
"$QM" bench --connect "$ADDR" --data "$DATA" --duration 60 --concurrency 4 --feedback-every "$FB_MIX" >/dev/null
"$QM" bench --connect "$ADDR" --data "$DATA" --duration 30 --concurrency 4 --feedback-every "$FB_MIX" |
  tee "$OUT/capacity.txt"
CAP=$(sed -n 's/^requests .*ok [0-9]* (\([0-9.]*\) req\/s)$/\1/p' "$OUT/capacity.txt")
RATE=${RATE:-$(python3 -c "print(round(0.7 * $CAP, 1))")}  # RATE=N: a fixed rate (A/B runs of two binaries)
echo "soak: capacity $CAP pages/s, soak at $RATE pages/s for $MINUTES min"
# RSS every 10 s.
(
  echo "t_s,rss_kb"
  t=0
  while kill -0 "$SERVER" 2>/dev/null; do
    echo "$t,$(ps -o rss= -p "$SERVER" | tr -d ' ')"
    sleep 10
    t=$((t + 10))
  done
) >"$OUT/rss.csv" &
SAMPLER=$!
(
  while kill -0 "$SERVER" 2>/dev/null; do
    sleep 60
    date -u +%T
    top -b -H -n 1 -d 1 | sed -n '7,30p'
  done
) >"$OUT/top.txt" 2>&1 &
TOPPER=$!
(
  echo "epoch_s,steal_ticks,busy_ticks,total_ticks,server_ticks,server_run_delay_ns,serving_run_delay_ns,workers_ticks,workers_sys_ticks,rocksdb_ticks,compact_ticks,other_ticks,bench_ticks,minflt,majflt"
  while kill -0 "$SERVER" 2>/dev/null; do
    # /proc/stat's first line: cpu user nice system idle iowait irq softirq steal ...
    read -r _ us ni sy id io hi si st _ </proc/stat
    srv="" faults=","
    read -r srv faults < <(awk '{ print $14 + $15, $10 "," $12 }' "/proc/$SERVER/stat" 2>/dev/null) || true
    faults=${faults:-,}
    # Per thread (one awk over /proc/PID/task/*/stat and schedstat): the run delay of all the
    # server's threads and of those that serve (not RocksDB's background threads and qm-compact,
    # which run in the idle scheduling class and wait by design; qm-compact-lock, which runs the
    # compaction's steps that hold locks, counts with those that serve), and the CPU ticks of the workers
    # (qm-worker-*, qm-writer-*; and their system share), RocksDB's threads, qm-compact and the
    # rest; then the bench's ticks and the server's minor and major page faults.
    threads=$(awk '
      { n = split(FILENAME, p, "/"); tid = p[n - 1] }
      p[n] == "schedstat" { d[tid] = $2; next }
      { line = $0; name = line; sub(/^[^(]*\(/, "", name); sub(/\)[^)]*$/, "", name)
        sub(/^.*\) /, "", line); split(line, f, " "); who[tid] = name; ticks[tid] = f[12] + f[13]; sys[tid] = f[13] }
      END {
        for (t in who) {
          g = who[t] ~ /^qm-(worker|writer)/ ? "w" : who[t] ~ /^rocksdb/ ? "r" : who[t] == "qm-compact" ? "c" : "o"
          c[g] += ticks[t]; if (g == "w") ws += sys[t]; all += d[t]; if (g != "r" && g != "c") serving += d[t]
        }
        printf "%.0f,%.0f,%d,%d,%d,%d,%d\n", all, serving, c["w"], ws, c["r"], c["c"], c["o"]
      }' /proc/"$SERVER"/task/*/stat /proc/"$SERVER"/task/*/schedstat 2>/dev/null)
    bench=""
    [ -f "$OUT/bench.pid" ] && bench=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$(cat "$OUT/bench.pid")/stat" 2>/dev/null)
    echo "$(date +%s.%N),$st,$((us + ni + sy + hi + si)),$((us + ni + sy + id + io + hi + si + st)),$srv,$threads,$bench,$faults"
    sleep 1
  done
) >"$OUT/cpu.csv" 2>/dev/null &
CPUS=$!
date +%s.%N >"$OUT/bench_start"
# PERF=1: the server's CPU samples (99 a second, wall-clock stamps) through the soak, for
# `perf report -i OUT/perf.data --time A,B` over an episode of shedding against a quiet stretch.
PERFREC=""
if [ "${PERF:-0}" = 1 ]; then
  perf record -q -F 99 -k CLOCK_REALTIME -p "$SERVER" -o "$OUT/perf.data" >/dev/null 2>&1 &
  PERFREC=$!
fi
"$QM" bench --connect "$ADDR" --data "$DATA" --rate "$RATE" --duration $((MINUTES * 60)) --concurrency 4 \
  --feedback-every 3 --csv "$OUT/latency.csv" >"$OUT/soak.txt" &
echo $! >"$OUT/bench.pid"
wait "$(cat "$OUT/bench.pid")"
if [ -n "$PERFREC" ]; then kill -INT "$PERFREC" 2>/dev/null; wait "$PERFREC" 2>/dev/null || true; fi
cat "$OUT/soak.txt"
# RocksDB's own log: its flushes and compactions (EVENT_LOG_v1 lines), which the report lines up
# with the shed pages.
cp "$DATA/store/LOG" "$OUT/rocksdb.LOG" 2>/dev/null || true
"$QM" client --connect "$ADDR" stats >"$OUT/stats.json"
kill "$SAMPLER" "$TOPPER" "$CPUS" 2>/dev/null || true
# Capacity again at the end, as at the start (30 s closed loop with the feedback mix), on the
# store and the host as the soak left them: the capacity of a fresh store in the first minutes can
# overstate what the host gives for 30 minutes.
"$QM" bench --connect "$ADDR" --data "$DATA" --duration 30 --concurrency 4 --feedback-every "$FB_MIX" \
  >"$OUT/capacity_end.txt" || true
python3 "$(dirname "$0")/soak_report.py" "$OUT"
