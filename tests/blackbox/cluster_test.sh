#!/usr/bin/env bash
# Black-box test of the event store on a Redis Cluster (issue 21): three redis-server nodes on
# loopback ports (append-only, fsync always) form a cluster; two `serve` replicas and a push run
# use it with `[store] redis_cluster = true`. Concurrent pages for one customer over both replicas
# never pass the cap; slots moved between nodes under the replicas (MOVED and ASK) are followed;
# the customers' keys spread over all three nodes; after one node is restarted every cap and
# every reservation is still there (the push run's re-run replays all of it, sends nothing new).
# Usage: cluster_test.sh QIANMIAN_BINARY   (exit 77 = skipped: redis-server is not installed)
set -u
QM=${1:?usage: cluster_test.sh QIANMIAN}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "redis-server or redis-cli is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
declare -A NODE_PID
cleanup() {
  for p in "${REPLICA_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${NODE_PID[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT

start_node() {  # start_node I PORT: node I (its files in $W/nI) on PORT
  mkdir -p "$W/n$1"
  redis-server --port "$2" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$W/n$1/nodes.conf" \
    --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save '' --dir "$W/n$1" \
    >>"$W/n$1/log" 2>&1 &
  NODE_PID[$1]=$!
  for _ in $(seq 1 50); do
    [ "$(redis-cli -p "$2" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "${NODE_PID[$1]}" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
cluster_ok() {  # waits up to 20 s for cluster_state:ok as every node sees it
  local seen
  for _ in $(seq 1 200); do
    seen=0
    for i in "${!PORT[@]}"; do
      redis-cli -p "${PORT[$i]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && seen=$((seen + 1))
    done
    [ "$seen" -eq "${#PORT[@]}" ] && return 0
    sleep 0.1
  done
  return 1
}
declare -A PORT
for i in 1 2 3; do
  for _ in $(seq 1 20); do
    p=$((20000 + RANDOM % 12000))
    if start_node "$i" "$p"; then PORT[$i]=$p; break; fi
    kill -TERM "${NODE_PID[$i]}" 2>/dev/null
  done
  [ -n "${PORT[$i]:-}" ] || { bad "node $i did not start: $(tail -2 "$W/n$i/log")"; exit 1; }
done
redis-cli --cluster create "127.0.0.1:${PORT[1]}" "127.0.0.1:${PORT[2]}" "127.0.0.1:${PORT[3]}" \
  --cluster-replicas 0 --cluster-yes >"$W/create.log" 2>&1 && cluster_ok &&
  ok "a three-node Redis Cluster on ports ${PORT[1]}, ${PORT[2]}, ${PORT[3]}" ||
  { bad "cluster create: $(tail -3 "$W/create.log")"; exit 1; }

quick_bank 400 20 60 10 23
LIMIT=5
cat >"$W/cluster.toml" <<EOF
[store]
backend = "redis"
redis_port = ${PORT[1]}
redis_cluster = true
redis_prefix = "qmc"
EOF
capped_replica_settings "$LIMIT" >>"$W/cluster.toml"
for r in a b; do
  start_replica $r "$W/cluster.toml" && ok "replica $r serves on the cluster" || { bad "replica $r: $(tail -3 "$W/$r.log")"; exit 1; }
done
C=$(awk -F, 'NR > 1 && $8 == "" { print $1; exit }' "$W/bank/customers.csv")
awk -F, 'NR > 1 && $16 == "1" { print $1 }' "$W/bank/items.csv" | sort >"$W/service.txt"

# Slots move between nodes under the running replicas: their slot maps are stale, so their next
# commands meet MOVED replies. A third of node 1's slots go to node 2.
ID1=$(redis-cli -p "${PORT[1]}" cluster myid)
ID2=$(redis-cli -p "${PORT[2]}" cluster myid)
redis-cli --cluster reshard "127.0.0.1:${PORT[1]}" --cluster-from "$ID1" --cluster-to "$ID2" --cluster-slots 1800 \
  --cluster-yes >"$W/reshard.log" 2>&1 && cluster_ok && ok "1,800 slots moved from node 1 to node 2" ||
  bad "reshard: $(tail -3 "$W/reshard.log")"

# 24 concurrent requests of 2 items each for one customer, half on each replica: the cap holds.
cap_burst "$C" "$LIMIT"

# The customer's slot moved by hand under the replicas: first half-way (its keys migrated, the
# slot still MIGRATING on the source: the source answers ASK), then for good (the source answers
# MOVED). Both replicas must still see the cap's use.
SLOT=$(redis-cli -p "${PORT[1]}" cluster keyslot "qmc:{$C}:s")
SRC=
for i in 1 2 3; do
  [ "$(redis-cli -p "${PORT[$i]}" cluster countkeysinslot "$SLOT")" -gt 0 ] && SRC=$i
done
DST=$(( SRC % 3 + 1 ))
SRC_ID=$(redis-cli -p "${PORT[$SRC]}" cluster myid)
DST_ID=$(redis-cli -p "${PORT[$DST]}" cluster myid)
redis-cli -p "${PORT[$DST]}" cluster setslot "$SLOT" importing "$SRC_ID" >/dev/null
redis-cli -p "${PORT[$SRC]}" cluster setslot "$SLOT" migrating "$DST_ID" >/dev/null
mapfile -t KEYS < <(redis-cli -p "${PORT[$SRC]}" cluster getkeysinslot "$SLOT" 100)
redis-cli -p "${PORT[$SRC]}" migrate 127.0.0.1 "${PORT[$DST]}" "" 0 5000 keys "${KEYS[@]}" >"$W/migrate.log" 2>&1
cap_used() {  # cap_used REPLICA: home_daily's use in the customer's history (retrying `unavailable`)
  local out
  for _ in $(seq 1 20); do
    out=$($QM client --connect "ipc://$W/$1.sock" history "{\"customer_id\":\"$C\"}" 2>/dev/null) && break
    sleep 0.2
  done
  printf '%s' "$out" | tr -d ' ' | grep -o '{[^{}]*"rule":"home_daily"[^{}]*}' | grep -o '"used":[0-9]*' | cut -d: -f2
}
[ "$(cap_used a)" = "$LIMIT" ] && ok "slot $SLOT migrating from node $SRC to $DST (${#KEYS[@]} keys moved, ASK): replica a sees $LIMIT of $LIMIT" ||
  bad "while migrating: replica a sees '$(cap_used a)' ($(cat "$W/migrate.log"))"
for i in 1 2 3; do redis-cli -p "${PORT[$i]}" cluster setslot "$SLOT" node "$DST_ID" >/dev/null; done
[ "$(cap_used b)" = "$LIMIT" ] && ok "slot $SLOT now on node $DST (MOVED): replica b sees $LIMIT of $LIMIT" ||
  bad "after the move: replica b sees '$(cap_used b)'"
[ "$(cap_used a)" = "$LIMIT" ] && ok "and so does replica a" || bad "after the move: replica a sees '$(cap_used a)'"

# A push run on the cluster; the customers' keys are on every node.
NOW=$(($(date +%s) * 1000))
P=(--config "$W/cluster.toml" --data "$W/bank" --artifacts "$W/art" --now "$NOW" --run-id cl-1 --audience all)
$QM push "${P[@]}" --out "$W/push1.csv" --summary "$W/push1.txt" >/dev/null 2>"$W/push1.err" &&
  ok "a push run on the cluster sent $(sent "$W/push1.txt")" || bad "push: $(tail -2 "$W/push1.err")"
spread=0
for i in 1 2 3; do
  n=$(redis-cli -p "${PORT[$i]}" dbsize)
  [ "$n" -gt 50 ] && spread=$((spread + 1))
  echo "  node $i holds $n keys"
done
[ "$spread" -eq 3 ] && ok "the customers' keys are spread over all three nodes" || bad "keys on only $spread nodes"

# Node 2 (which took slots from node 1) is restarted: SIGTERM, then the same command line.
kill -TERM "${NODE_PID[2]}"
wait "${NODE_PID[2]}" 2>/dev/null
start_node 2 "${PORT[2]}" && cluster_ok && ok "node 2 restarted and the cluster is ok again" ||
  { bad "node 2 restart: $(tail -3 "$W/n2/log")"; exit 1; }
# The replicas' connections to node 2 broke with it: a request may answer `unavailable` once.
for r in a b; do
  used=$(cap_used $r)
  [ "$used" = "$LIMIT" ] && ok "after the restart replica $r's history shows home_daily used $LIMIT of $LIMIT" ||
    bad "after the restart replica $r sees '$used'"
done
$QM push "${P[@]}" --out "$W/push2.csv" --summary "$W/push2.txt" >/dev/null 2>"$W/push2.err"
customers=$(tail -n +2 "$W/push1.csv" | cut -d, -f1 | sort -u | wc -l)
if [ "$(replayed "$W/push2.txt")" -eq "$customers" ] && cmp -s <(sends "$W/push1.csv") <(sends "$W/push2.csv"); then
  ok "the push run's re-run after the restart replays all $customers customers and sends nothing new"
else
  bad "re-run after the restart: replayed $(replayed "$W/push2.txt") of $customers: $(tail -2 "$W/push2.err")"
fi
# redis_cluster set against a plain redis-server: refused with the reason.
if start_redis; then
  NODE_PID[plain]=$REDIS_PID
  printf '[store]\nbackend = "redis"\nredis_port = %s\nredis_cluster = true\n' "$REDIS_PORT" >"$W/plain.toml"
  expect_fail_one_line "redis_cluster against a server that is not a cluster node is refused" "is not a cluster node" \
    $QM push --config "$W/plain.toml" --data "$W/bank" --artifacts "$W/art" --run-id x --audience all --out "$W/x.csv"
else
  bad "could not start a plain redis-server"
fi
for r in "${!REPLICA_PID[@]}"; do kill -TERM "${REPLICA_PID[$r]}"; wait "${REPLICA_PID[$r]}" 2>/dev/null; done
REPLICA_PID=()
finish cluster_test
