#!/usr/bin/env bash
# Black-box test of `qianmian serve`, `client` and `bench` as processes: every op through the
# command-line client, error codes and exit status, a short bench, SIGTERM drain (exit 0) and an
# acknowledged feedback event still present after a restart.
# Usage: server_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: server_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  rm -rf "$W"
}
trap cleanup EXIT
ADDR="ipc://$W/s.sock"

start_server() {  # start_server LOG [SERVE OPTIONS...]
  local log=$1
  shift
  $QM serve --data "$W/bank" --artifacts "$W/art" --bind "$ADDR" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$QM" "$ADDR" "$SERVER_PID"
}
STOP_RC=
stop_server() {  # stop_server: SIGTERM; the exit status in STOP_RC
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID"
  STOP_RC=$?
  SERVER_PID=
}

# A small bank and a quick version.
quick_bank 400 20 80 10 5
C=$(sed -n 2p "$W/bank/customers.csv" | cut -d, -f1)
ITEM=$(grep ',content,' "$W/bank/items.csv" | head -1 | cut -d, -f1)

if start_server "$W/serve1.log"; then ok "serve answers health"; else bad "serve did not start: $(tail -3 "$W/serve1.log")"; exit 1; fi

out=$($QM client --connect "$ADDR" recommend "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"count\":4,\"id\":\"a1\"}")
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q '"ok":true' && printf '%s' "$out" | grep -q '"id":"a1"' &&
   [ "$(printf '%s' "$out" | grep -o '"item_id"' | wc -l)" -eq 4 ]; then
  ok "client recommend prints four items as JSON"
else
  bad "client recommend (exit $rc): $out"
fi
for op in stats health; do
  $QM client --connect "$ADDR" $op | grep -q '"ok":true' && ok "client $op" || bad "client $op"
done
out=$($QM client --connect "$ADDR" score "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"item_ids\":[\"$ITEM\"]}")
printf '%s' "$out" | grep -q '"p_click"' && ok "client score" || bad "client score: $out"
err=$($QM client --connect "$ADDR" recommend "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"count\":500}" 2>&1 >/dev/null)
rc=$?
[ $rc -ne 0 ] && printf '%s' "$err" | grep -q "bad_request: 'count'" && ok "a bad count exits non-zero naming the field" ||
  bad "bad count (exit $rc): $err"
err=$($QM client --connect "$ADDR" frobnicate 2>&1 >/dev/null)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q "unknown_op" && ok "an unknown op is unknown_op" || bad "unknown op: $err"
err=$($QM client --connect "$ADDR" recommend '{not json' 2>&1 >/dev/null)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q "JSON object" && ok "client refuses malformed JSON" || bad "malformed JSON: $err"

TS=$(( $(date +%s) * 1000 ))
out=$($QM client --connect "$ADDR" feedback "{\"events\":[{\"ts_ms\":$TS,\"customer_id\":\"$C\",\"item_id\":\"$ITEM\",\"type\":\"click\",\"channel\":\"app_home\",\"request_id\":\"bb-drain-1\"}]}")
printf '%s' "$out" | grep -q '"accepted":1' && ok "feedback is acknowledged" || bad "feedback: $out"

# bench: closed loop, then open loop, with a CSV of latencies.
out=$($QM bench --connect "$ADDR" --data "$W/bank" --duration 1.5 --concurrency 2 2>&1)
if printf '%s' "$out" | grep -q "^requests" && printf '%s' "$out" | grep -q "ok=" && printf '%s' "$out" | grep -q "p99"; then
  ok "bench closed loop reports throughput and percentiles"
else
  bad "bench closed loop: $out"
fi
out=$($QM bench --connect "$ADDR" --data "$W/bank" --rate 50 --duration 1 --concurrency 2 --csv "$W/lat.csv" 2>&1)
rows=$(($(wc -l <"$W/lat.csv") - 1))
if printf '%s' "$out" | grep -q "open loop" && [ "$rows" -ge 40 ] && [ "$rows" -le 60 ]; then
  ok "bench open loop at 50/s sends about 50 requests and writes their latencies ($rows rows)"
else
  bad "bench open loop ($rows rows): $out"
fi
out=$($QM bench --connect "$ADDR" --data "$W/bank" --duration 1 --concurrency 2 --retries 3 2>&1)
if printf '%s' "$out" | grep -q "^retried  *[0-9][0-9]* (overloaded pages sent again, up to 3 times each)"; then
  ok "bench --retries reports the pages it sent again"
else
  bad "bench --retries: $out"
fi
before=$($QM client --connect "$ADDR" stats | grep -o '"feedback":{"count":[0-9]*' | grep -o '[0-9]*$')
out=$($QM bench --connect "$ADDR" --data "$W/bank" --duration 1 --concurrency 2 --feedback-every 2 --feedback-connections 3 2>&1)
fed=$(printf '%s' "$out" | sed -n 's/^feedback  *\([0-9]*\) impressions (one per 2 pages served), outcomes ok=\([0-9]*\)$/\1 \2/p')
after=$($QM client --connect "$ADDR" stats | grep -o '"feedback":{"count":[0-9]*' | grep -o '[0-9]*$')
n=${fed%% *}
if [ -n "$fed" ] && [ "$n" -gt 0 ] && [ "$n" = "${fed##* }" ] && [ $((after - before)) -eq "$n" ]; then
  ok "bench --feedback-every 2 feeds back $n impressions, all accepted, each one feedback request at the server"
else
  bad "bench --feedback-every ($before -> $after): $out"
fi
out=$($QM bench --connect "$ADDR" --data "$W/bank" --rate 50 --duration 1 --retries 2 2>&1)
if [ $? -ne 0 ] && printf '%s' "$out" | grep -q "closed loop only"; then
  ok "bench refuses --retries with an open loop"
else
  bad "bench --retries --rate: $out"
fi

# SIGTERM drains and exits 0; the acknowledged event is there after a restart.
stop_server
[ "$STOP_RC" = 0 ] && ok "SIGTERM: serve exits 0" || bad "SIGTERM: exit $STOP_RC: $(tail -3 "$W/serve1.log")"
grep -q "draining" "$W/serve1.log" && ok "serve logs the drain" || bad "no drain in the log"
if start_server "$W/serve2.log"; then ok "serve restarts on the same store"; else bad "restart failed: $(tail -3 "$W/serve2.log")"; fi
out=$($QM client --connect "$ADDR" history "{\"customer_id\":\"$C\",\"limit\":50}")
printf '%s' "$out" | grep -q '"request_id":"bb-drain-1"' && ok "the acknowledged feedback survives the restart" ||
  bad "history after restart lacks the event: $out"
stop_server
[ "$STOP_RC" = 0 ] && ok "second SIGTERM: exit 0" || bad "second SIGTERM: exit $STOP_RC"

# `reload` re-reads [experiments] from the --config file; a bad definition is refused by its key
# and the previous one keeps serving.
V=$(cat "$W/art/CURRENT")
exp_file() {  # exp_file ARM SHARE [EXTRA LINE]
  printf '[experiments]\n[[experiments.layers]]\nname = "l"\nsalt = "s"\n[[experiments.layers.arms]]\nname = "%s"\nshare = %s\n%s\n' \
    "$1" "$2" "${3:-}" >"$W/exp.toml"
}
arms_of() {  # the debug arms of a page for $C
  $QM client --connect "$ADDR" recommend "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"count\":2,\"debug\":true}" |
    grep -o '"arms":\[[^]]*\]'
}
exp_file a 1
if start_server "$W/serve3.log" --config "$W/exp.toml"; then ok "serve starts with [experiments]"; else bad "serve with experiments: $(tail -3 "$W/serve3.log")"; fi
[ "$(arms_of)" = '"arms":["l=a"]' ] && ok "the page names the arm of the file" || bad "arms at start: $(arms_of)"
exp_file b 1 "model_version = \"$V\""
out=$($QM client --connect "$ADDR" reload)
printf '%s' "$out" | grep -q '"ok":true' && [ "$(arms_of)" = '"arms":["l=b"]' ] &&
  ok "reload swaps in the file's new definition" || bad "reload of experiments: $out / $(arms_of)"
exp_file c 0.6
err=$($QM client --connect "$ADDR" reload 2>&1 >/dev/null)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q "'experiments.layers\[0\].arms': the arms' shares sum to 0.6" &&
  [ "$(arms_of)" = '"arms":["l=b"]' ] && ok "a bad definition is refused by its key; the previous one serves" ||
  bad "bad definition: $err / $(arms_of)"
exp_file c 1 'model_version = "v-nope"'
err=$($QM client --connect "$ADDR" reload 2>&1 >/dev/null)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q "'experiments.layers\[0\].arms\[0\].model_version': no version 'v-nope'" &&
  [ "$(arms_of)" = '"arms":["l=b"]' ] && ok "an unknown arm version is refused by its key" ||
  bad "unknown arm version: $err / $(arms_of)"
stop_server
[ "$STOP_RC" = 0 ] && ok "third SIGTERM: exit 0" || bad "third SIGTERM: exit $STOP_RC"

# CURVE: keys from `qianmian keygen`; only the listed client keys are answered, each within its ops;
# a plaintext client and an unknown key get nothing; no secret key in the log.
K="$W/keys"
mkdir -p "$K"
for n in server app ops stranger; do $QM keygen --out "$K/$n" >/dev/null || bad "keygen $n"; done
expect_fail "keygen never overwrites a key" "never overwritten" $QM keygen --out "$K/app"
[ "$(stat -c %a "$K/app.key")" = 600 ] && ok "keygen: the .key file is private (0600)" || bad "mode $(stat -c %a "$K/app.key")"
pub() { sed -n 's/^public_key = "\(.*\)"$/\1/p' "$K/$1.pub"; }
printf '[[clients]]\nname = "app-backend"\npublic_key = "%s"\nops = ["recommend", "feedback", "health"]\n' "$(pub app)" >"$K/clients.toml"
printf '[[clients]]\nname = "ops"\npublic_key = "%s"\nops = ["*"]\n' "$(pub ops)" >>"$K/clients.toml"
printf '[server]\ncurve = true\ncurve_key = "%s"\ncurve_clients = "%s"\n' "$K/server.key" "$K/clients.toml" >"$W/curve.toml"
$QM serve --config "$W/curve.toml" --data "$W/bank" --artifacts "$W/art" --bind "$ADDR" >"$W/curve.log" 2>&1 &
SERVER_PID=$!
as() { local who=$1; shift; $QM client --connect "$ADDR" --curve-key "$K/$who.key" --server-key "$K/server.pub" "$@"; }
for _ in $(seq 1 240); do as ops --timeout 500 health >/dev/null 2>&1 && break; sleep 0.25; done
out=$(as app recommend "{\"customer_id\":\"$C\",\"channel\":\"app_home\",\"count\":2}" 2>&1)
printf '%s' "$out" | grep -q '"ok":true' && ok "CURVE: the app back end's key pages" || bad "app recommend: $out"
out=$(as app items.retire '{"item_ids":["x"]}' 2>&1)
printf '%s' "$out" | grep -q "forbidden.*'app-backend' may not call 'items.retire'" && ok "CURVE: an op not in the key's list is forbidden" ||
  bad "app items.retire: $out"
out=$($QM client --connect "$ADDR" --timeout 1500 feedback "{\"events\":[{\"ts_ms\":1,\"customer_id\":\"$C\",\"item_id\":\"x\",\"type\":\"click\",\"channel\":\"app_home\",\"request_id\":\"plain-1\"}]}" 2>&1)
printf '%s' "$out" | grep -q "no reply" && ok "CURVE: a plaintext client gets no reply" || bad "plaintext: $out"
out=$(as stranger --timeout 1500 health 2>&1)
printf '%s' "$out" | grep -q "no reply" && ok "CURVE: an unlisted key gets no reply" || bad "stranger: $out"
out=$(as ops history "{\"customer_id\":\"$C\"}" 2>&1)
printf '%s' "$out" | grep -q '"ok":true' && ! printf '%s' "$out" | grep -q plain-1 &&
  ok "CURVE: the ops key reads history; the plaintext feedback was not applied" || bad "ops history: $out"
stop_server
leaked=0
for n in server app ops stranger; do
  grep -qF "$(sed -n 's/^secret_key = "\(.*\)"$/\1/p' "$K/$n.key")" "$W/curve.log" && leaked=1
done
[ "$leaked" = 0 ] && grep -q "refused a connection" "$W/curve.log" && ok "CURVE: refusals logged, no secret key in the log" ||
  bad "log: leaked=$leaked $(grep -c refused "$W/curve.log")"

# A bad [server] value is named.
printf '[server]\nworkers = -3\n' >"$W/bad.toml"
err=$($QM serve --config "$W/bad.toml" --data "$W/bank" --artifacts "$W/art" 2>&1 >/dev/null)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q "'server.workers'" && ok "a bad [server] value is named" || bad "bad config: $err"

finish "server black-box"
