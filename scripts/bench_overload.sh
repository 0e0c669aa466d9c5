#!/usr/bin/env bash
# scripts/bench_overload.sh BIN LABEL (issue 20): serves a bank with the qianmian binary ./BIN
# (data/ and the artifact root ART, default /work/exp/art20k, in the current folder's terms) and
# measures the unloaded latency (open loop, 100/s), the capacity (closed loop, 8 connections) and
# an open loop at three times that capacity; prints ok throughput, outcomes and ok latencies.
# Run it from a folder holding BIN and data/ (customers.csv, items.csv, events.csv); not in CI.
# SERVER_CPUS=1.5 (root, cgroup v1 cpu controller): the server runs in a cgroup with that CPU
# quota, so on a 2-core machine the load generator's own CPU (which grows with the offered load)
# does not come out of the server's share: capacity and the 3x run then measure the server on the
# same CPU budget.
set -u
BIN=$1; LABEL=$2; PORT=${PORT:-5599}; ART=${ART:-/work/exp/art20k}
rm -rf data/store
cut -d, -f1 data/customers.csv | tail -n +2 | head -5000 > ids.txt
"./$BIN" serve --data data --artifacts "$ART" --bind tcp://127.0.0.1:$PORT > serve-$LABEL.log 2>&1 &
SP=$!
if [ -n "${SERVER_CPUS:-}" ]; then
  CG=/sys/fs/cgroup/cpu/qm-bench-$$
  mkdir -p "$CG"
  echo 100000 >"$CG/cpu.cfs_period_us"
  python3 -c "print(int(100000 * float('$SERVER_CPUS')))" >"$CG/cpu.cfs_quota_us"
  echo "$SP" >"$CG/cgroup.procs"
  echo "server $SP limited to $SERVER_CPUS CPUs (cgroup $CG)"
  trap 'rmdir "$CG" 2>/dev/null' EXIT
fi
for i in $(seq 1 120); do "./$BIN" client --connect tcp://127.0.0.1:$PORT health 2>/dev/null | grep -q '"ok":true' && break; sleep 1; done
"./$BIN" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 5 --concurrency 4 > /dev/null 2>&1   # warm-up
echo "== $LABEL unloaded (open loop 100/s)"; "./$BIN" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --rate 100 --duration 10 --concurrency 4 2>&1 | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
echo "== $LABEL capacity (closed loop, 8 connections)"; "./$BIN" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 10 --concurrency 8 2>&1 | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
CAP=$("./$BIN" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --duration 10 --concurrency 8 2>&1 | sed -n 's/.*ok [0-9]* (\([0-9.]*\) req\/s).*/\1/p' | head -1)
echo "capacity (second closed-loop run): $CAP ok/s"
R=$(python3 -c "print(int(3*float('$CAP')))")
echo "== $LABEL overload: open loop at $R/s (3x), 8 connections"; /usr/bin/time -f "bench cpu: %U s user + %S s sys over 10 s" "./$BIN" bench --connect tcp://127.0.0.1:$PORT --customers ids.txt --rate $R --duration 10 --concurrency 8 2>&1 | grep -E "requests|outcomes|latency \(ok\)|bench cpu"
kill -TERM $SP; wait $SP
