#!/usr/bin/env bash
# scripts/bench_security.sh BIN DATA ART [ROUNDS] (issue 19): what the HTTP port and CURVE cost the
# server. Three configurations of one binary, alternating for ROUNDS rounds (default 3), because
# this host's speed drifts within minutes:
#   plain  the ZeroMQ port alone;
#   http   plus [server] http_bind, /metrics scraped every second during the load (as Prometheus
#          would, more often than its usual 15 s);
#   curve  [server] curve = true, bench connecting with a listed client key.
# ORDER="curve http plain" changes the order within a round. Each run starts `serve` on DATA and ART (a fresh store), warms up for 5 s, then measures a closed
# loop (BENCH_CONCURRENCY connections, default 4, BENCH_SECONDS s, default 20) and prints one line:
# ok pages/s, ok p50/p99 and the server's CPU-seconds per 1,000 ok pages. Not in CI; records go to
# docs/BENCHMARKS.md.
set -u
BIN=$1; DATA=$2; ART=$3; ROUNDS=${4:-3}
PORT=${PORT:-5598}; HPORT=${HPORT:-5599}; CONC=${BENCH_CONCURRENCY:-4}; SECS=${BENCH_SECONDS:-20}
WORK=$(mktemp -d /tmp/qm-bench-sec.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/data"
for f in customers.csv items.csv events.csv; do ln -s "$(readlink -f "$DATA/$f")" "$WORK/data/$f"; done
cut -d, -f1 "$DATA/customers.csv" | tail -n +2 | head -5000 >"$WORK/ids.txt"
HZ=$(getconf CLK_TCK)
"$BIN" keygen --out "$WORK/server" >/dev/null && "$BIN" keygen --out "$WORK/bench" >/dev/null || exit 1
printf '[[clients]]\nname = "bench"\npublic_key = "%s"\nops = ["recommend", "health"]\n' \
  "$(sed -n 's/^public_key = "\(.*\)"$/\1/p' "$WORK/bench.pub")" >"$WORK/clients.toml"
printf '[server]\n' >"$WORK/plain.toml"
printf '[server]\nhttp_bind = "127.0.0.1:%s"\n' "$HPORT" >"$WORK/http.toml"
printf '[server]\ncurve = true\ncurve_key = "%s"\ncurve_clients = "%s"\n' "$WORK/server.key" "$WORK/clients.toml" \
  >"$WORK/curve.toml"

run() {  # run LABEL
  local label=$1 sp t0 t1 out keys=() scraper=
  [ "$label" = curve ] && keys=(--curve-key "$WORK/bench.key" --server-key "$WORK/server.pub")
  rm -rf "$WORK/data/store"
  "$BIN" serve --config "$WORK/$label.toml" --data "$WORK/data" --artifacts "$ART" --bind tcp://127.0.0.1:$PORT \
    >"$WORK/serve-$label.log" 2>&1 &
  sp=$!
  for _ in $(seq 1 300); do
    "$BIN" client --connect tcp://127.0.0.1:$PORT "${keys[@]}" --timeout 1000 health 2>/dev/null | grep -q '"ok":true' && break
    sleep 1
  done
  "$BIN" bench --connect tcp://127.0.0.1:$PORT "${keys[@]}" --customers "$WORK/ids.txt" --duration 5 \
    --concurrency "$CONC" >/dev/null 2>&1
  if [ "$label" = http ]; then
    python3 -c "
import time, urllib.request
while True:
    urllib.request.urlopen('http://127.0.0.1:$HPORT/metrics', timeout=5).read()
    time.sleep(1)" 2>/dev/null &
    scraper=$!
  fi
  t0=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
  out=$("$BIN" bench --connect tcp://127.0.0.1:$PORT "${keys[@]}" --customers "$WORK/ids.txt" --duration "$SECS" \
    --concurrency "$CONC" 2>&1)
  t1=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
  kill -TERM $sp
  wait $sp
  local ok okn lat
  read -r okn ok <<<"$(echo "$out" | sed -n 's/.*ok \([0-9]*\) (\([0-9.]*\) req\/s).*/\1 \2/p' | head -1)"
  lat=$(echo "$out" | grep -E "latency \(ok\)" | head -1)
  awk -v l="$label" -v ok="$ok" -v n="$okn" -v c="$((t1 - t0))" -v hz="$HZ" -v lat="$lat" \
    'BEGIN { printf "%-6s %.1f ok pages/s, server %.3f CPU-s per 1,000 ok pages; %s\n", l, ok, 1000 * c / hz / n, lat }'
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r ($(date -u +%H:%M:%S) UTC)"
  for label in ${ORDER:-plain http curve}; do run "$label"; done
done
