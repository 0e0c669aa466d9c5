#!/usr/bin/env bash
# Black-box test of two `qianmian serve` replicas sharing one Redis event store (SPEC §6
# consistency): concurrent home-page requests for one customer, spread over both replicas, never
# serve more marketing items than the customer x channel cap allows, and both replicas report the
# same cap usage. Starts its own redis-server on a loopback port and stops it.
# Usage: replicas_test.sh QIANMIAN_BINARY   (exit 77 = skipped: redis-server is not installed)
set -u
QM=${1:?usage: replicas_test.sh QIANMIAN}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "redis-server or redis-cli is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"

# A private redis-server on a free loopback port.
private_redis
PORT=$REDIS_PORT
ok "redis-server on 127.0.0.1:$PORT"

quick_bank 300 20 60 10 9
LIMIT=5
cat >"$W/replica.toml" <<EOF
[store]
backend = "redis"
redis_port = $PORT
redis_prefix = "qmtest:"
EOF
capped_replica_settings "$LIMIT" >>"$W/replica.toml"

for r in a b; do
  if start_replica $r "$W/replica.toml"; then ok "replica $r serves with the Redis store"; else bad "replica $r: $(tail -3 "$W/$r.log")"; exit 1; fi
done

# A customer who may be contacted on app_home (no opt-out), and the service (cap-exempt) items.
C=$(awk -F, 'NR > 1 && $8 == "" { print $1; exit }' "$W/bank/customers.csv")
awk -F, 'NR > 1 && $16 == "1" { print $1 }' "$W/bank/items.csv" | sort >"$W/service.txt"

# 24 concurrent requests of 2 items each (48 slots, far above the cap), half on each replica.
cap_burst "$C" "$LIMIT"

# Both replicas see the same usage of the cap.
for r in a b; do
  out=$($QM client --connect "ipc://$W/$r.sock" history "{\"customer_id\":\"$C\"}")
  cap=$(printf '%s' "$out" | tr -d ' ' | grep -o '{[^{}]*"rule":"home_daily"[^{}]*}')
  if printf '%s' "$cap" | grep -q "\"used\":$LIMIT[,}]" && printf '%s' "$cap" | grep -q "\"limit\":$LIMIT[,}]"; then
    ok "replica $r's history shows home_daily used $LIMIT of $LIMIT"
  else
    bad "replica $r's history: $(printf '%s' "$out" | grep -o '"caps":.*' | head -c 300)"
  fi
done

# A request after the cap, on either replica, gets no marketing item.
$QM client --connect "ipc://$W/a.sock" recommend "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"count\":3}" |
  grep -o '"item_id":"[^"]*"' | cut -d'"' -f4 | sort >"$W/after.txt"
[ "$(comm -23 "$W/after.txt" "$W/service.txt" | wc -l)" -eq 0 ] && ok "after the cap a replica serves no marketing item" ||
  bad "marketing items after the cap: $(comm -23 "$W/after.txt" "$W/service.txt" | tr '\n' ' ')"

# Issue 20: redis-server killed (SIGKILL) and restarted under the replicas. While it is down,
# requests answer `unavailable` (never a page served without its contact counted); serving resumes
# by itself once it is back; acknowledged feedback is still there (appendfsync always) and the
# cap stays exact.
C2=$(awk -F, 'NR > 1 && $8 == "" { n++; if (n == 2) { print $1; exit } }' "$W/bank/customers.csv")
ITEM=$(awk -F, 'NR > 1 && $16 != "1" { print $1; exit }' "$W/bank/items.csv")
TS=$(($(date +%s) * 1000 - 60000))
ack=$($QM client --connect "ipc://$W/b.sock" feedback \
  "{\"events\":[{\"ts_ms\":$TS,\"customer_id\":\"$C2\",\"item_id\":\"$ITEM\",\"type\":\"click\",\"channel\":\"app_home\"}]}")
printf '%s' "$ack" | grep -q '"accepted":1' && ok "feedback acknowledged before the outage" || bad "feedback: $ack"
# Load on replica a through the outage: every page is answered ok or unavailable, nothing else.
recommends() {  # replica a's recommend count (stats)
  $QM client --connect "ipc://$W/a.sock" stats 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["ops"]["recommend"]["count"])' 2>/dev/null || echo 0
}
before=$(recommends)
$QM bench --connect "ipc://$W/a.sock" --data "$W/bank" --duration 4 --concurrency 2 --timeout 10000 >"$W/outage-bench.txt" 2>&1 &
BENCH=$!
# The outage starts once the bench is serving (it loads the bank first: slow on a loaded machine).
for _ in $(seq 1 80); do
  [ "$(recommends)" -gt $((before + 20)) ] && break
  sleep 0.1
done
kill -KILL "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
REDIS_PID=
down_ok=0
for r in a b; do
  out=$($QM client --connect "ipc://$W/$r.sock" --timeout 10000 recommend "{\"customer_id\":\"$C2\",\"channel\":\"app_home\",\"count\":2}" 2>&1)
  printf '%s' "$out" | grep -q '"code":"unavailable"' && down_ok=$((down_ok + 1)) || echo "  replica $r while redis is down: $out"
  out=$($QM client --connect "ipc://$W/$r.sock" --timeout 10000 feedback \
    "{\"events\":[{\"ts_ms\":$(($(date +%s) * 1000)),\"customer_id\":\"$C2\",\"item_id\":\"$ITEM\",\"type\":\"dismiss\",\"channel\":\"app_home\"}]}" 2>&1)
  printf '%s' "$out" | grep -q '"accepted":1' && echo "  replica $r acknowledged feedback while redis was down: $out" ||
    down_ok=$((down_ok + 1))
done
[ "$down_ok" -eq 4 ] && ok "while redis-server is down both replicas answer unavailable and acknowledge nothing" ||
  bad "during the outage ($down_ok of 4 as expected)"
redis_at "$PORT" || bad "redis-server did not restart on port $PORT: $(tail -2 "$W/redis.log")"
back=0
for r in a b; do
  for _ in $(seq 1 40); do
    out=$($QM client --connect "ipc://$W/$r.sock" recommend "{\"customer_id\":\"$C2\",\"channel\":\"app_home\",\"count\":2}" 2>&1)
    if printf '%s' "$out" | grep -q '"ok":true'; then back=$((back + 1)); break; fi
    sleep 0.25
  done
done
[ "$back" -eq 2 ] && ok "after redis-server restarts both replicas serve again by themselves" || bad "not serving again: $out"
wait "$BENCH"
outcomes=$(grep '^outcomes' "$W/outage-bench.txt")
if printf '%s' "$outcomes" | grep -q 'ok=' && printf '%s' "$outcomes" | grep -q 'unavailable=' &&
   [ -z "$(printf '%s' "$outcomes" | sed 's/^outcomes *//' | tr ' ' '\n' | grep -v '^ok=\|^unavailable=\|^$')" ]; then
  ok "a bench through the outage got only ok and unavailable ($outcomes)"
else
  bad "bench through the outage: $outcomes"
fi
h=$($QM client --connect "ipc://$W/a.sock" history "{\"customer_id\":\"$C2\"}" | tr -d ' ')
ev=$(printf '%s' "$h" | grep -o "{[^{}]*\"ts_ms\":$TS[,}][^{}]*}")
printf '%s' "$ev" | grep -q "\"item_id\":\"$ITEM\"" && printf '%s' "$ev" | grep -q '"type":"click"' &&
  ok "the feedback acknowledged before the outage survived it" || bad "history after the restart: $(printf '%s' "$h" | head -c 300)"
for r in a b; do
  out=$($QM client --connect "ipc://$W/$r.sock" history "{\"customer_id\":\"$C\"}")
  cap=$(printf '%s' "$out" | tr -d ' ' | grep -o '{[^{}]*"rule":"home_daily"[^{}]*}')
  printf '%s' "$cap" | grep -q "\"used\":$LIMIT[,}]" && ok "replica $r: the cap is still exactly $LIMIT of $LIMIT after the outage" ||
    bad "replica $r's cap after the outage: $cap"
done

for r in a b; do
  kill -TERM "${REPLICA_PID[$r]}"
  wait "${REPLICA_PID[$r]}"
  rc=$?
  [ $rc -eq 0 ] && ok "replica $r stops on SIGTERM with exit 0" || bad "replica $r exit $rc on SIGTERM"
done
REPLICA_PID=()
finish replicas
