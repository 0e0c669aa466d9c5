#!/usr/bin/env bash
# Black-box test of event triggers (issue 18) over real sockets and a real redis-server: a
# trigger naming an unknown attribute or event type is refused at creation; an approved,
# scheduled triggered campaign fires on `events.ingest` for matching events only, sends within
# the contact rules to the outbox (one line per send, with its idempotency key) or records a
# ghost for its holdout; the same events again replay (nothing new counted); a budget is never
# passed; a campaign with two channels sends each event on one, with its reason; a delayed trigger decides later; business events from a Redis stream are decided and
# acknowledged, a bad entry is set aside, and entries delivered but never acknowledged (a crash)
# are decided when the consumer comes back.
# Usage: trigger_test.sh QIANMIAN_BINARY   (exit 77 = skipped: redis-server is not installed)
set -u
QM=${1:?usage: trigger_test.sh QIANMIAN}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "redis-server or redis-cli is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
private_redis
quick_bank 300 20 60 10 9
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
printf '[store]\nbackend = "redis"\nredis_port = %s\nredis_prefix = "qmtrig"\n' "$REDIS_PORT" >"$W/replica.toml"
printf '[server]\ncampaign_tick = "1s"\ntrigger_stream = "qmtrig:events"\ncodel_target = 0\n' >>"$W/replica.toml"
QIANMIAN_SERVER_TRIGGER_OUTBOX="$W/outbox" QIANMIAN_SERVER_TRIGGER_CONSUMER=consumer-a start_replica a "$W/replica.toml" ||
  { bad "replica a: $(tail -3 "$W/a.log")"; exit 1; }
ok "a replica with a Redis store consumes qmtrig:events"

call() { $QM client --connect "ipc://$W/a.sock" "$1" "$2" 2>&1; }
NOW=$(($(date +%s) * 1000))
ALL=$(tail -n +2 "$W/bank/customers.csv" | cut -d, -f1)
CUSTOMERS=$(printf '%s\n' $ALL | head -120)          # the wire's events
STREAM=$(printf '%s\n' $ALL | sed -n '121,160p')     # the stream's (no contact yet: caps allow one)
CRASH=$(printf '%s\n' $ALL | sed -n '161,180p')      # the stream's after a crash
LATE=$(printf '%s\n' $ALL | sed -n '200p')           # the delayed event's
MULTI=$(printf '%s\n' $ALL | sed -n '201,300p')      # channel choice's (no contact yet)
# trig ID EVENT CONDITION [FIELDS]: a triggered campaign's definition.
trig() {
  printf '{"id":"%s","name":"salary day","channel":"wechat_push","audience":"all","holdout":0.2,' "$1"
  printf '"trigger":{"event":"%s","condition":"%s","expiry_s":86400%s}%s}' "$2" "$3" "${5:-}" "${4:-}"
}
live() {  # live ID DEFINITION: create, submit (alice), approve (bob), schedule
  local out
  out=$(call campaigns.create "{\"operator\":\"alice\",\"definition\":$2}")
  printf '%s' "$out" | grep -q '"state":"draft"' || { bad "create $1: $out"; return 1; }
  call campaigns.transition "{\"operator\":\"alice\",\"campaign_id\":\"$1\",\"to\":\"submitted\"}" >/dev/null
  call campaigns.transition "{\"operator\":\"bob\",\"campaign_id\":\"$1\",\"to\":\"approved\"}" >/dev/null
  out=$(call campaigns.transition "{\"operator\":\"bob\",\"campaign_id\":\"$1\",\"to\":\"scheduled\"}")
  printf '%s' "$out" | grep -q '"state":"scheduled"' || { bad "schedule $1: $out"; return 1; }
}
# events TYPE AMOUNT PREFIX: one event per customer, as an events.ingest request.
events() {
  local sep="" c
  printf '{"now_ms":%s,"events":[' "$NOW"
  for c in $CUSTOMERS; do
    printf '%s{"event_id":"%s-%s","customer_id":"%s","type":"%s","ts_ms":%s,"attrs":{"amount":%s}}' \
      "$sep" "$3" "$c" "$c" "$1" "$NOW" "$2"
    sep=,
  done
  printf ']}'
}
count() { grep -o "$1" | wc -l; }

# Refused at creation, naming the field.
out=$(call campaigns.create "{\"operator\":\"alice\",\"definition\":$(trig bad1 salary_credited 'amout >= 5000')}")
printf '%s' "$out" | grep -q "'trigger.condition'.*'amout' is not an attribute of salary_credited" &&
  ok "a trigger naming an unknown attribute is refused at creation" || bad "unknown attribute: $out"
out=$(call campaigns.create "{\"operator\":\"alice\",\"definition\":$(trig bad2 pay_day '')}")
printf '%s' "$out" | grep -q "'trigger.event': unknown event type 'pay_day'" &&
  ok "an unknown event type is refused at creation" || bad "unknown event type: $out"
out=$(call campaigns.create "{\"operator\":\"alice\",\"definition\":$(trig bad3 salary_credited 'amount >= 5000' ',"schedule":{"kind":"once","at":"2030-01-01T09:30"}')}")
printf '%s' "$out" | grep -q "'schedule': a triggered campaign has no schedule" &&
  ok "a triggered campaign with a schedule is refused" || bad "trigger with schedule: $out"

live salary "$(trig salary salary_credited 'amount >= 5000')" && ok "a triggered campaign approved and scheduled (no schedule needed)"

# Bad events: refused whole, nothing decided.
out=$(call events.ingest "{\"events\":[{\"event_id\":\"x1\",\"customer_id\":\"C1\",\"type\":\"salary_credited\",\"ts_ms\":$NOW,\"attrs\":{\"bonus\":1}}]}")
printf '%s' "$out" | grep -q '"code":"bad_request".*events\[0\].attrs.bonus: not an attribute of salary_credited' &&
  ok "an event with an unknown attribute is refused, naming it" || bad "bad event: $out"
out=$(call events.ingest '{"events":[{"event_id":"x2","customer_id":"C1","type":"pay_day","ts_ms":1}]}')
printf '%s' "$out" | grep -q "events\[0\].type: unknown event type" && ok "an unknown event type is refused" || bad "$out"

# Below the condition: nothing decided.
out=$(call events.ingest "$(events salary_credited 1000 low)")
printf '%s' "$out" | grep -q '"decisions":\[\]' && ok "events below the condition decide nothing" || bad "low: $out"

# Matching events: one decision each; sends in the outbox, the holdout as ghosts.
call events.ingest "$(events salary_credited 9000 pay)" >"$W/pay1.json"
n=$(count '"campaign_id":"salary"' <"$W/pay1.json")
sent1=$(count '"outcome":"sent"' <"$W/pay1.json")
hold1=$(count '"outcome":"holdout"' <"$W/pay1.json")
[ "$n" -eq 120 ] && ok "120 matching events, 120 decisions" || bad "decisions: $n ($(head -c 300 "$W/pay1.json"))"
[ "$sent1" -gt 30 ] && [ "$hold1" -gt 5 ] && ok "sent $sent1, holdout ghosts $hold1" ||
  bad "sent $sent1 holdout $hold1: $(head -c 400 "$W/pay1.json")"
lines=$(cat "$W"/outbox/*.jsonl 2>/dev/null | count '"key":"salary/ev:pay-')
[ "$lines" -eq "$sent1" ] && ok "the outbox holds one line per send ($lines), keyed salary/ev:<event>" ||
  bad "outbox lines $lines, sent $sent1"
# The same events again (a client's retry): replayed, nothing new counted, the same items.
call events.ingest "$(events salary_credited 9000 pay)" >"$W/pay2.json"
sent2=$(count '"outcome":"sent"' <"$W/pay2.json")
rep2=$(grep -o '"outcome":"sent"[^}]*"replayed":true' "$W/pay2.json" | wc -l)
[ "$sent2" -eq "$sent1" ] && [ "$rep2" -eq "$sent1" ] && ok "a retry replays all $sent1 sends" ||
  bad "retry: sent $sent2 replayed $rep2 of $sent1"
# decisions FILE: "customer item outcome replayed" per decision of an events.ingest reply.
decisions() {
  python3 -c 'import json, sys
for d in json.load(open(sys.argv[1]))["decisions"]:
    print(d["customer_id"], d.get("item_id", "-"), d["outcome"], d["replayed"])' "$1" | sort
}
[ "$(decisions "$W/pay1.json" | cut -d" " -f1-3)" = "$(decisions "$W/pay2.json" | cut -d" " -f1-3)" ] &&
  ok "the retry chose the same items" || bad "the retry chose other items"
C1=$(decisions "$W/pay1.json" | awk '$3 == "sent" { print $1; exit }')
out=$(call history "{\"customer_id\":\"$C1\"}")
k=$(printf '%s' "$out" | python3 -c 'import json, sys
print(sum(e["request_id"].startswith("salary/ev:pay-") for e in json.load(sys.stdin)["events"]))')
[ "$k" -eq 1 ] && ok "the customer's history counts the send once" || bad "history of $C1: $k sends ($out)"

# A budget is never passed.
live capped "$(trig capped large_inflow 'amount > 100' ',"budget":{"total":7},"holdout":0')"
call events.ingest "$(events large_inflow 500 inflow)" >"$W/inflow.json"
s=$(count '"outcome":"sent"' <"$W/inflow.json")
b=$(count '"skipped_by":"campaign.budget"' <"$W/inflow.json")
[ "$s" -eq 7 ] && [ "$b" -gt 0 ] && ok "a budget of 7: 7 sent, $b skipped as campaign.budget" || bad "budget: sent $s, budget $b"

# Channel choice: each event sent on one channel, its customer's best allowed; a retry replays it there.
live multi "$(trig multi large_outflow 'amount > 100' ',"channels":["wechat_push","sms"],"holdout":0')"
call events.ingest "$(CUSTOMERS=$MULTI events large_outflow 500 outflow)" >"$W/outflow1.json"
call events.ingest "$(CUSTOMERS=$MULTI events large_outflow 500 outflow)" >"$W/outflow2.json"
out=$(python3 - "$W/outflow1.json" "$W/outflow2.json" "$W"/outbox/*.jsonl <<'PY'
import json, sys
first = {d["customer_id"]: d for d in json.load(open(sys.argv[1]))["decisions"] if d["outcome"] == "sent"}
again = {d["customer_id"]: d for d in json.load(open(sys.argv[2]))["decisions"] if d["outcome"] == "sent"}
chans = {d["channel"] for d in first.values()}
assert len(first) > 20 and chans == {"wechat_push", "sms"}, (len(first), chans)
assert all(d["reason"] == "channel:" + d["channel"] + "=best" for d in first.values())
assert again.keys() == first.keys() and all(again[c]["replayed"] and again[c]["channel"] == first[c]["channel"] for c in first)
keys = [json.loads(l)["key"] for f in sys.argv[3:] for l in open(f) if '"key":"multi/ev:' in l]
assert sorted(set(keys)) == sorted("multi/ev:outflow-" + c for c in first), "one outbox key per send"
print(len(first), sum(d["channel"] == "sms" for d in first.values()))
PY
) && ok "channel choice: $(echo "$out" | cut -d' ' -f1) sends, $(echo "$out" | cut -d' ' -f2) on sms, each with its reason; a retry replays on the same channel" ||
  bad "channel choice: $out"

# A delayed trigger: pending now, decided by the server's tick once due.
live later "$(trig later deposit_matured 'amount >= 1' ',"holdout":0' ',"delay_s":2')"
out=$(call events.ingest "{\"events\":[{\"event_id\":\"dm-1\",\"customer_id\":\"$LATE\",\"type\":\"deposit_matured\",\"ts_ms\":$(($(date +%s) * 1000)),\"attrs\":{\"amount\":50000,\"product\":\"fixed_3m\"}}]}")
printf '%s' "$out" | grep -q '"outcome":"pending"' && ok "a delayed trigger answers pending" || bad "delay: $out"
for _ in $(seq 1 40); do
  grep -qh '"key":"later/ev:dm-1"' "$W"/outbox/*.jsonl 2>/dev/null && break
  sleep 0.25
done
grep -qh '"key":"later/ev:dm-1"' "$W"/outbox/*.jsonl 2>/dev/null && ok "the delayed event was decided by the server" ||
  bad "the delayed event was not decided: $(grep -i trigger "$W/a.log" | tail -3)"

# The Redis stream: decided, acknowledged, a bad entry set aside.
live login "$(trig login login 'channel = app' ',"holdout":0')"
for c in $STREAM; do
  rcli XADD qmtrig:events '*' event_id "st-$c" customer_id "$c" type login channel app >/dev/null
done
rcli XADD qmtrig:events '*' event_id st-bad customer_id C1 type login amount 5 >/dev/null
for _ in $(seq 1 60); do
  [ "$(rcli XPENDING qmtrig:events qianmian | head -1)" = 0 ] && [ "$(rcli XLEN qmtrig:events:rejected)" = 1 ] && break
  sleep 0.25
done
[ "$(rcli XPENDING qmtrig:events qianmian | head -1)" = 0 ] && ok "all 41 stream entries acknowledged" ||
  bad "pending: $(rcli XPENDING qmtrig:events qianmian | head -1)"
[ "$(rcli XLEN qmtrig:events:rejected)" = 1 ] && rcli XRANGE qmtrig:events:rejected - + | grep -q "attrs.amount" &&
  ok "the bad entry is in qmtrig:events:rejected with its reason" || bad "rejected: $(rcli XRANGE qmtrig:events:rejected - +)"
st=$(cat "$W"/outbox/*.jsonl | count '"key":"login/ev:st-')
[ "$st" -gt 10 ] && ok "stream events reached the outbox ($st sends)" || bad "stream sends: $st"

# A crash after delivery: entries read by consumer-a but never acknowledged are decided when it comes back.
kill "${REPLICA_PID[a]}"
while kill -0 "${REPLICA_PID[a]}" 2>/dev/null; do sleep 0.1; done
for c in $CRASH; do
  rcli XADD qmtrig:events '*' event_id "cr-$c" customer_id "$c" type login channel app >/dev/null
done
rcli XREADGROUP GROUP qianmian consumer-a COUNT 100 STREAMS qmtrig:events '>' >/dev/null  # delivered, never acked
[ "$(rcli XPENDING qmtrig:events qianmian | head -1)" = 20 ] && ok "20 entries delivered and left unacknowledged" ||
  bad "pending before restart: $(rcli XPENDING qmtrig:events qianmian | head -1)"
QIANMIAN_SERVER_TRIGGER_OUTBOX="$W/outbox" QIANMIAN_SERVER_TRIGGER_CONSUMER=consumer-a start_replica a "$W/replica.toml" ||
  { bad "restart: $(tail -3 "$W/a.log")"; exit 1; }
for _ in $(seq 1 60); do
  [ "$(rcli XPENDING qmtrig:events qianmian | head -1)" = 0 ] && break
  sleep 0.25
done
[ "$(rcli XPENDING qmtrig:events qianmian | head -1)" = 0 ] && ok "after the restart the pending entries were acknowledged" ||
  bad "still pending: $(rcli XPENDING qmtrig:events qianmian | head -1)"
cr=$(cat "$W"/outbox/*.jsonl | grep -o '"key":"login/ev:cr-[^"]*"' | sort -u | wc -l)
[ "$cr" -gt 5 ] && ok "they were decided ($cr sends)" || bad "decided after restart: $cr"

stop_replicas_and_redis
finish "trigger_test"
