#!/usr/bin/env bash
# scripts/bench_triggers.sh QIANMIAN DATA ART [RATE] [DURATION] (issue 18): event-to-decision
# latency of a triggered campaign at RATE events a second (default 500) for DURATION seconds
# (default 30), over the wire (`events.ingest`) and through a Redis stream, with the server's
# embedded store, 2 workers, and the decisions in a Redis outbox stream. Starts a private
# redis-server and the server on loopback ports and stops them; not in CI.
# Needs redis-server, python3-zmq and python3-msgpack. Prints the percentiles (bench_triggers.py).
set -eu
QM=$(readlink -f "$1"); DATA=$(readlink -f "$2"); ART=$(readlink -f "$3"); RATE=${4:-500}; DUR=${5:-30}
W=$(mktemp -d)
RP=$((20000 + RANDOM % 12000)); SP=$((RP + 1))
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir "$W" >"$W/redis.log" 2>&1 &
RPID=$!
cleanup() { kill "${SPID:-}" 2>/dev/null || true; sleep 1; kill "$RPID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
cat >"$W/bench.toml" <<TOML
[store]
path = "$W/store"
redis_port = $RP
[server]
workers = 2
trigger_stream = "qmbench:events"
trigger_outbox = "redis:qmbench:outbox"
TOML
sleep 0.5
"$QM" serve --config "$W/bench.toml" --data "$DATA" --artifacts "$ART" --bind "tcp://127.0.0.1:$SP" >"$W/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 1 240); do "$QM" client --connect "tcp://127.0.0.1:$SP" health >/dev/null 2>&1 && break; sleep 0.5; done
call() { "$QM" client --connect "tcp://127.0.0.1:$SP" "$@"; }
DEF='{"id":"salary","name":"salary day","channel":"wechat_push","audience":"all","holdout":0.1,"trigger":{"event":"salary_credited","condition":"amount >= 5000","expiry_s":3600}}'
call campaigns.create "{\"operator\":\"alice\",\"definition\":$DEF}" >/dev/null
call campaigns.transition '{"operator":"alice","campaign_id":"salary","to":"submitted"}' >/dev/null
call campaigns.transition '{"operator":"bob","campaign_id":"salary","to":"approved"}' >/dev/null
call campaigns.transition '{"operator":"bob","campaign_id":"salary","to":"scheduled"}' | grep -q '"state":"scheduled"'
tail -n +2 "$DATA/customers.csv" | cut -d, -f1 >"$W/ids.txt"
echo "bench_triggers: $(wc -l <"$W/ids.txt") customers, $RATE events/s for $DUR s, $(nproc) cores, $(date -u +%FT%TZ)"
/usr/bin/python3 "$(dirname "$0")/bench_triggers.py" --connect "tcp://127.0.0.1:$SP" --customers "$W/ids.txt" \
  --rate "$RATE" --duration "$DUR" --redis-port "$RP"
