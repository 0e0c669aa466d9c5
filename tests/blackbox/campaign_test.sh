#!/usr/bin/env bash
# Black-box test of governed campaigns (issue 18, SPEC §8) over real sockets and a real
# redis-server: two `serve` replicas share one Redis store; bad definitions are refused with
# their field before anything is stored; an author cannot approve; two approvers at once on two
# replicas, and an edit racing an approval, have exactly one winner (the other: conflict); the
# audit log and the CLI on the same store agree. Then the CLI on an embedded store.
# Usage: campaign_test.sh QIANMIAN_BINARY   (exit 77 = skipped: redis-server is not installed)
set -u
QM=${1:?usage: campaign_test.sh QIANMIAN}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "redis-server or redis-cli is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
private_redis
quick_bank 300 20 60 10 9
printf '[store]\nbackend = "redis"\nredis_port = %s\nredis_prefix = "qmcamp"\n' "$REDIS_PORT" >"$W/replica.toml"
printf '[server]\ncampaign_tick = "1s"\n' >>"$W/replica.toml"
for r in a b; do  # each replica's scheduler writes its send lists to its own outbox
  QIANMIAN_SERVER_CAMPAIGN_OUTBOX="$W/outbox-$r" start_replica $r "$W/replica.toml" ||
    { bad "replica $r: $(tail -3 "$W/$r.log")"; exit 1; }
done
ok "two replicas share the Redis store"

call() { $QM client --connect "ipc://$W/$1.sock" "$2" "$3" 2>&1; }
# A marketing content item the wechat_push channel allows (items.csv has quoted text: read it as CSV).
ITEM=$(python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")):
    if r["kind"] == "content" and r["service"] != "1" and r["channels"] in ("", "wechat_push"):
        print(r["item_id"]); break' "$W/bank/items.csv")
# def ID [FIELDS]: a definition with the given id, and extra JSON fields.
def() {
  printf '{"id":"%s","name":"test","channel":"wechat_push","audience":"tier in (affluent, private)",' "$1"
  printf '"content":{"items":["%s"]},"budget":{"total":100,"per_day":50},"holdout":0.1,' "$ITEM"
  printf '"schedule":{"kind":"once","at":"2030-01-01T09:30"}%s}' "${2:-}"
}

# Bad definitions: refused with the field, nothing stored.
refused() {
  local out
  out=$(call a campaigns.create "{\"operator\":\"alice\",\"definition\":$2}")
  if printf '%s' "$out" | grep -q '"code":"bad_request"' && printf '%s' "$out" | grep -qF -- "$3"; then
    ok "refused: $1"
  else
    bad "$1: $out"
  fi
}
refused "a holdout share outside 0..1" "$(def bad1 ',"holdout":1.5')" "'holdout'"
refused "a negative budget" "$(def bad2 ',"budget":{"per_day":-1}')" "'budget.per_day'"
refused "an unknown item" "$(def bad3 ',"content":{"items":["no-such-item"]}')" "'content.items[0]': unknown item"
refused "an audience that does not parse" "$(def bad4 ',"audience":"tier in (affluent"')" "'audience'"
refused "an unknown channel" "$(def bad5 ',"channel":"fax"')" "'channel': unknown channel"
refused "a schedule in the past" "$(def bad6 ',"schedule":{"kind":"once","at":"2020-01-01T09:30"}')" "in the past"
out=$(call a campaigns.create "{\"definition\":$(def bad7)}")
printf '%s' "$out" | grep -q "'operator'" && ok "a change without an operator is refused" || bad "no operator: $out"
out=$(call b campaigns.list '{}')
printf '%s' "$out" | grep -q '"campaigns":\[\]' && ok "nothing refused was stored" || bad "list after refusals: $out"

# The lifecycle across the replicas; the author cannot approve.
out=$(call a campaigns.create "{\"operator\":\"alice\",\"definition\":$(def spring)}")
printf '%s' "$out" | grep -q '"state":"draft"' && ok "created in draft on replica a" || bad "create: $out"
out=$(call b campaigns.create "{\"operator\":\"bob\",\"definition\":$(def spring)}")
printf '%s' "$out" | grep -q '"code":"conflict"' && ok "an id already taken (on the other replica) is a conflict" ||
  bad "create twice: $out"
out=$(call b campaigns.transition '{"operator":"alice","campaign_id":"spring","to":"submitted"}')
printf '%s' "$out" | grep -q '"state":"submitted"' && ok "submitted on replica b" || bad "submit: $out"
out=$(call a campaigns.transition '{"operator":"alice","campaign_id":"spring","to":"approved"}')
printf '%s' "$out" | grep -q '"code":"forbidden"' && ok "the author may not approve (forbidden)" || bad "self-approval: $out"

# Races: two approvers at once on two replicas; an edit racing an approval. Each names the
# revision it saw (2: submitted); exactly one wins, the other is told `conflict`.
race() {  # race ID KIND
  call a campaigns.create "{\"operator\":\"alice\",\"definition\":$(def "$1")}" >/dev/null
  call a campaigns.transition "{\"operator\":\"alice\",\"campaign_id\":\"$1\",\"to\":\"submitted\"}" >/dev/null
  if [ "$2" = approvers ]; then
    call a campaigns.transition "{\"operator\":\"bob\",\"campaign_id\":\"$1\",\"to\":\"approved\",\"revision\":2}" \
      >"$W/$1.a" &
  else
    call a campaigns.update "{\"operator\":\"alice\",\"revision\":2,\"definition\":$(def "$1" ',"priority":9')}" \
      >"$W/$1.a" &
  fi
  local first=$!
  call b campaigns.transition "{\"operator\":\"carol\",\"campaign_id\":\"$1\",\"to\":\"approved\",\"revision\":2}" \
    >"$W/$1.b" &
  wait "$first" $!  # not a bare `wait`: the replicas are children too
  local wins conflicts
  wins=$(cat "$W/$1.a" "$W/$1.b" | grep -c '"ok":true')
  conflicts=$(cat "$W/$1.a" "$W/$1.b" | grep -c '"code":"conflict"')
  [ "$wins" -eq 1 ] && [ "$conflicts" -eq 1 ] && return 0
  echo "$(cat "$W/$1.a") / $(cat "$W/$1.b")"
  return 1
}
fails=0
for i in 1 2 3 4 5; do race "appr$i" approvers || fails=$((fails + 1)); done
[ "$fails" -eq 0 ] && ok "two approvers at once on two replicas: exactly one wins, 5 of 5" || bad "$fails of 5 approver races"
fails=0
for i in 1 2 3 4 5; do race "edit$i" edit || fails=$((fails + 1)); done
[ "$fails" -eq 0 ] && ok "an edit racing an approval: exactly one wins, 5 of 5" || bad "$fails of 5 edit races"

# Approve, schedule, read back on the other replica, and the audit log.
call b campaigns.transition '{"operator":"bob","campaign_id":"spring","to":"approved"}' >/dev/null
out=$(call a campaigns.transition '{"operator":"alice","campaign_id":"spring","to":"scheduled"}')
printf '%s' "$out" | grep -q '"state":"scheduled"' && ok "scheduled" || bad "schedule: $out"
out=$(call b campaigns.get '{"campaign_id":"spring"}')
if printf '%s' "$out" | grep -q '"approved_by":"bob"' && printf '%s' "$out" | grep -q '"runs_approved_version":true'; then
  ok "the other replica reads the approved version"
else
  bad "get: $out"
fi
out=$(call a campaigns.audit '{"campaign_id":"spring"}')
[ "$(printf '%s' "$out" | grep -o '"action":' | wc -l)" -eq 4 ] && printf '%s' "$out" | grep -q '"who":"bob"' &&
  ok "the audit log holds the 4 changes, with who made them" || bad "audit: $out"
out=$(call a campaigns.update "{\"operator\":\"dave\",\"definition\":$(def spring ',"priority":2')}")
printf '%s' "$out" | grep -q '"state":"draft"' && printf '%s' "$out" | grep -q '"approved_hash":""' &&
  ok "an edit of a scheduled campaign returns it to draft without approval" || bad "edit: $out"

# The CLI on the same Redis store sees the same campaigns and log.
$QM campaign list --config "$W/replica.toml" --data "$W/bank" >"$W/list.txt" 2>&1
grep -q "^spring	draft	5	" "$W/list.txt" && [ "$(wc -l <"$W/list.txt")" -eq 11 ] &&
  ok "campaign list (CLI) shows the 11 campaigns the replicas wrote" || bad "list: $(head -3 "$W/list.txt")"
$QM campaign audit spring --config "$W/replica.toml" --data "$W/bank" --format csv >"$W/audit.csv" 2>&1
[ "$(tail -n +2 "$W/audit.csv" | wc -l)" -eq 5 ] && grep -q ',dave,zmq:[^,]*,edit,scheduled,draft,' "$W/audit.csv" &&
  ok "campaign audit --format csv (CLI) lists the 5 changes" || bad "audit csv: $(cat "$W/audit.csv")"

# From approved to sent: a dry run for the approver, then an occurrence through the push path on
# the shared store (the CLI beside the replicas), within the budget, its holdout kept back as
# ghosts that a replica's `history` shows; running the occurrence again sends nothing twice.
def sendme ',"audience":"all","content":{},"budget":{"total":40,"per_day":25},"holdout":0.3,"schedule":{"kind":"daily","time":"09:30","from":"2030-01-01","to":"2030-12-31"}' >"$W/sendme.json"
CFG=(--config "$W/replica.toml" --data "$W/bank" --artifacts "$W/art")
$QM campaign create "${CFG[@]}" --file "$W/sendme.json" --operator alice >/dev/null 2>&1
$QM campaign dryrun sendme "${CFG[@]}" --out "$W/dry.csv" >"$W/dry.txt" 2>&1 &&
  grep -q "DRY RUN" "$W/dry.txt" && grep -q "predicted clicks" "$W/dry.txt" && [ "$(tail -n +2 "$W/dry.csv" | wc -l)" -eq 25 ] &&
  ok "campaign dryrun (a draft): 25 sends within the daily budget, predicted clicks, nothing reserved" ||
  bad "dryrun: $(tail -5 "$W/dry.txt")"
# On a generated bank the dry run also gives the planted world's expected opens of those sends.
opens=$(sed -n 's/.*expected push opens \([0-9.]*\) over 25 sends.*/\1/p' "$W/dry.txt")
[ -n "$opens" ] && python3 -c "import sys; sys.exit(not 0 < float(sys.argv[1]) < 25)" "$opens" &&
  ok "campaign dryrun: the planted world expects $opens opens of the 25 sends" ||
  bad "dryrun world estimate: $(grep -A1 'planted world' "$W/dry.txt")"
# ... and what one occurrence causes in the planted world (its holdout sent nothing).
$QM campaign simulate sendme "${CFG[@]}" >"$W/sim.txt" 2>&1
treated=$(awk '/treated \(sent\)/ {print $3}' "$W/sim.txt")
held=$(awk '/held out/ && !/minus/ {print $3}' "$W/sim.txt")
sent=$(sed -n 's/^ *\([0-9]*\) of the treated arm were sent.*/\1/p' "$W/sim.txt")
[ "${treated:-0}" -gt 0 ] && [ "${held:-0}" -gt 0 ] && [ "${sent:-0}" -gt 0 ] && grep -q "clicks .*\[" "$W/sim.txt" &&
  ok "campaign simulate: $treated treated ($sent sent) against $held held out, with intervals" ||
  bad "simulate: $(cat "$W/sim.txt")"
expect_fail_one_line "an unapproved campaign does not run" "only a scheduled or running campaign runs" \
  $QM campaign run sendme "${CFG[@]}" --operator ops --occurrence d1 --out "$W/run.csv"
$QM campaign submit sendme "${CFG[@]}" --operator alice >/dev/null 2>&1
$QM campaign approve sendme "${CFG[@]}" --operator bob >/dev/null 2>&1
$QM campaign schedule sendme "${CFG[@]}" --operator alice >/dev/null 2>&1
$QM campaign run sendme "${CFG[@]}" --operator ops --occurrence d1 --out "$W/run1.csv" >"$W/run1.txt" 2>&1
$QM campaign run sendme "${CFG[@]}" --operator ops --occurrence d2 --out "$W/run2.csv" >"$W/run2.txt" 2>&1
n1=$(tail -n +2 "$W/run1.csv" | wc -l)
n2=$(tail -n +2 "$W/run2.csv" | wc -l)
[ "$n1" -eq 25 ] && [ "$n2" -eq 15 ] && ok "two occurrences sent 25 (the daily budget) and 15 (the rest of 40)" ||
  bad "occurrences sent $n1 and $n2: $(tail -3 "$W/run1.txt")"
$QM campaign run sendme "${CFG[@]}" --operator ops --occurrence d1 --out "$W/run1b.csv" >/dev/null 2>&1
cmp -s <(sort "$W/run1.csv") <(sort "$W/run1b.csv") && grep -q "replayed from this run id *25" <($QM campaign run sendme \
  "${CFG[@]}" --operator ops --occurrence d1 --out "$W/run1c.csv" 2>&1) &&
  ok "an occurrence run again replays the same list and sends nothing twice" || bad "rerun of d1 differs"
G=$(grep -o "campaign.holdout *[0-9]*" "$W/run1.txt" | grep -o "[0-9]*$")
HC=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'qmcamp:{*}:d' | head -400 | while read -r k; do
  redis-cli -p "$REDIS_PORT" zrange "$k" 0 -1 | grep -a -q "campaign:sendme=holdout" && echo "$k"; done | wc -l)
[ "${G:-0}" -gt 0 ] && [ "$HC" -gt 0 ] && ok "the holdout ($G customers) is kept back and recorded as ghosts in the decision log" ||
  bad "holdout: skipped $G, customers with ghost records $HC"
SENT=$(sed -n 2p "$W/run1.csv" | cut -d, -f1)
out=$(call b history "{\"customer_id\":\"$SENT\"}")
printf '%s' "$out" | grep -q '"request_id":"sendme/d1"' && printf '%s' "$out" | grep -q 'campaign:sendme=treatment' &&
  ok "a replica's history shows the send and its decision (run id, arm)" || bad "history: $(printf '%s' "$out" | head -c 400)"
# The planted world answers d1's sends (as a delivery system's callbacks would): the report fills in.
$QM campaign report sendme "${CFG[@]}" --format json >"$W/report0.json" 2>&1
$QM campaign respond sendme "${CFG[@]}" --occurrence d1 --sends "$W/run1.csv" >"$W/respond.txt" 2>&1
$QM campaign report sendme "${CFG[@]}" --format json >"$W/report1.json" 2>&1
$QM campaign respond sendme "${CFG[@]}" --occurrence d1 --sends "$W/run1.csv" >>"$W/respond.txt" 2>&1
$QM campaign report sendme "${CFG[@]}" --format json >"$W/report2.json" 2>&1
out=$(python3 - "$W"/report0.json "$W"/report1.json "$W"/report2.json "$W/respond.txt" <<'PY'
import json, re, sys
r0, r1, r2 = (json.load(open(f))["metrics"]["push_opens"] for f in sys.argv[1:4])
opened = [int(x) for x in re.findall(r"(\d+) opened", open(sys.argv[4]).read())]
assert r0["treatment"]["mean"] == 0, r0
t = r1["treatment"]
assert len(opened) == 2 and opened[0] == opened[1] > 0, opened
assert abs(t["mean"] * t["n"] - opened[0]) < 1e-6 and r1["holdout"]["mean"] == 0, (t, opened)
assert r1["lift"]["low"] > 0 and r2 == r1, (r1["lift"], r2)
print(opened[0], t["n"])
PY
) && ok "campaign respond: the planted world opened $(echo "$out" | cut -d' ' -f1) of the sends; the report counts them against a holdout with none, and answering again adds nothing" ||
  bad "respond: $out $(cat "$W/respond.txt")"
$QM campaign audit sendme "${CFG[@]}" --format csv | cut -d, -f5 | tail -n +2 | sort | uniq -c | tr -s ' ' >"$W/actions.txt"
grep -q "occurrence" "$W/actions.txt" && ok "the audit log records each occurrence" || bad "audit actions: $(cat "$W/actions.txt")"

# The replicas' schedulers: a campaign due in a few seconds runs once, on one replica, by itself.
AT=$(TZ=Asia/Shanghai date -d "@$(($(date +%s) + 25))" +%Y-%m-%dT%H:%M:%S)
def auto ",\"audience\":\"all\",\"content\":{},\"budget\":{\"total\":30,\"per_day\":30},\"holdout\":0,\"schedule\":{\"kind\":\"once\",\"at\":\"$AT\"}" >"$W/auto.json"
for step in "create --file $W/auto.json --operator alice" "submit auto --operator alice" "approve auto --operator bob" \
  "schedule auto --operator alice"; do
  # shellcheck disable=SC2086  # the step is words
  $QM campaign $step "${CFG[@]}" >>"$W/auto.log" 2>&1 || bad "campaign $step: $(tail -1 "$W/auto.log")"
done
state=
for _ in $(seq 1 60); do
  state=$($QM campaign show auto "${CFG[@]}" --format json 2>/dev/null | grep -o '"state":"[a-z]*"' | cut -d'"' -f4)
  [ "$state" = completed ] && break
  sleep 1
done
lists=$(find "$W/outbox-a/auto" "$W/outbox-b/auto" -name '*.csv' 2>/dev/null | wc -l)
occ=$($QM campaign audit auto "${CFG[@]}" --format csv | cut -d, -f5 | grep -c '^occurrence$')
rows=$(find "$W/outbox-a/auto" "$W/outbox-b/auto" -name '*.csv' -exec tail -n +2 {} \; 2>/dev/null | wc -l)
[ "$state" = completed ] && [ "$lists" -eq 1 ] && [ "$occ" -eq 1 ] && [ "$rows" -eq 30 ] &&
  ok "a scheduled occurrence ran by itself, once across two replicas (1 send list of 30, 1 audit entry, completed)" ||
  bad "scheduler: state $state, $lists send lists, $occ occurrence entries, $rows rows; $(grep -h campaign "$W"/a.log "$W"/b.log | tail -3)"

# The CLI on an embedded store: maker-checker, field errors, exit codes.
def cli >"$W/cli.json"
expect_fail_one_line "campaign create refuses a definition field by field" "'holdout'" \
  $QM campaign create --data "$W/bank" --operator alice --file <(def x ',"holdout":-1')
$QM campaign create --data "$W/bank" --operator alice --file "$W/cli.json" >/dev/null 2>&1 &&
  $QM campaign submit cli --data "$W/bank" --operator alice >/dev/null 2>&1 && ok "campaign create and submit (CLI)" ||
  bad "CLI create/submit"
expect_fail_one_line "campaign approve by its author is refused" "maker-checker" \
  $QM campaign approve cli --data "$W/bank" --operator alice
expect_fail_one_line "a change based on an old revision is refused" "changed since it was read" \
  $QM campaign approve cli --data "$W/bank" --operator bob --revision 1
$QM campaign approve cli --data "$W/bank" --operator bob >"$W/approved.txt" 2>&1 &&
  grep -q "approved by bob" "$W/approved.txt" && ok "campaign approve by a second person (CLI)" ||
  bad "approve: $(cat "$W/approved.txt")"

# Saved segments: saved on one replica, named by a campaign on the other; approval snapshots them.
out=$(call a segments.save '{"operator":"alice","name":"rich","audience":"tier in (affluent, private)"}')
printf '%s' "$out" | grep -q '"revision":1' && ok "segments.save on replica a" || bad "segments.save: $out"
out=$(call a segments.save '{"operator":"alice","name":"typo","audience":"teir = mass"}')
printf '%s' "$out" | grep -q '"code":"bad_request"' && printf '%s' "$out" | grep -q "'audience'" &&
  ok "a segment that does not compile is refused" || bad "bad segment: $out"
out=$(call b campaigns.create "{\"operator\":\"alice\",\"definition\":$(def segd ',"audience":"segment:nope"')}")
printf '%s' "$out" | grep -q "unknown segment 'nope'" && ok "a campaign naming an unknown segment is refused" ||
  bad "unknown segment: $out"
call b campaigns.create "{\"operator\":\"alice\",\"definition\":$(def segc ',"audience":"segment:rich"')}" >/dev/null
call b campaigns.transition '{"operator":"alice","campaign_id":"segc","to":"submitted"}' >/dev/null
out=$(call a campaigns.transition '{"operator":"bob","campaign_id":"segc","to":"approved"}')
printf '%s' "$out" | grep -qF '"segments":{"rich":"tier in (affluent, private)"}' &&
  ok "approval snapshots the segment's expression" || bad "approve segc: $out"
call b segments.save '{"operator":"carol","name":"rich","audience":"tier = mass","revision":1}' >/dev/null
out=$(call a campaigns.get '{"campaign_id":"segc"}')
printf '%s' "$out" | grep -qF '"segments":{"rich":"tier in (affluent, private)"}' &&
  printf '%s' "$out" | grep -q '"runs_approved_version":true' &&
  ok "a segment edited after approval leaves the approved campaign as approved" || bad "after edit: $out"
out=$($QM segment show rich "${CFG[@]}" --format json 2>&1)
printf '%s' "$out" | grep -q '"revision":2' && printf '%s' "$out" | grep -q '"updated_by":"carol"' &&
  ok "segment show (CLI) reads the replicas' segment" || bad "segment show: $out"
[ "$($QM segment audit rich "${CFG[@]}" 2>/dev/null | wc -l)" -eq 2 ] && ok "segment audit: one entry a save" ||
  bad "segment audit: $($QM segment audit rich "${CFG[@]}" 2>&1)"

finish "campaign_test"
