#!/usr/bin/env bash
# The demo: the whole loop in one command, on a fresh Debian machine, in a few minutes.
#   install + build -> generate a bank -> train -> serve -> home pages of contrasting customers
#   -> feedback changes the next page -> a cap blocks an over-contacted customer -> a WeChat
#   push run (and its re-run sends nothing twice) -> a governed campaign (maker-checker, dry run,
#   an occurrence, audit log, effect report) -> an event trigger (a salary arrives, an offer is
#   chosen at once, a retry replays) -> retrain on the new events -> reload under
#   load without a failed request -> clean stop -> retention: churn risk learned from behaviour,
#   portraits, a retention campaign for at-risk affluent customers with a holdout.
# Prints what it does as it goes; exits 0. Output lands in $QM_DEMO_DIR (default out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

step "1. Install dependencies and build (scripts/setup.sh, scripts/build.sh)"
bash scripts/build.sh qianmian
QM=$ROOT/build/tools/qianmian
VIEW=$ROOT/scripts/demo_view.py
OUT=${QM_DEMO_DIR:-out/demo}
PORT=${QM_DEMO_PORT:-5571}
ADDR=tcp://127.0.0.1:$PORT
HTTP_PORT=${QM_DEMO_HTTP_PORT:-$((PORT + 1))}
export QM_PROGRESS=${QM_PROGRESS:-1}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BANK=$OUT/bank
ART=$OUT/artifacts
# The demo's clock: noon (Asia/Shanghai) on the day after the generated 60 days.
NOW=1793505600000
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
client() { "$QM" client --connect "$ADDR" "$@"; }

step "2. Generate a synthetic bank (20,000 customers, 200 products, 2,000 content items, 60 days) and train"
"$QM" generate --out "$BANK" --customers 20000 --products 200 --contents 2000 --days 60 --seed 7
"$QM" inspect --data "$BANK"
"$QM" train --data "$BANK" --artifacts "$ART"
V1=$(cat "$ART/CURRENT")
say "published version $V1 (MANIFEST.json lists every file with its SHA-256)"

start_server() {
  QIANMIAN_SERVER_HTTP_BIND=127.0.0.1:$HTTP_PORT "$QM" serve --data "$BANK" --artifacts "$ART" --bind "$ADDR" \
    >> "$OUT/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 240); do
    if client health > /dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$OUT/serve.log"; echo "demo: the server did not start" >&2; exit 1; fi
    sleep 0.5
  done
  client health > /dev/null
  say "server up at $ADDR (pid $SERVER_PID), log in $OUT/serve.log; HTTP port http://127.0.0.1:$HTTP_PORT"
}
# http PATH [BODY]: the HTTP port (GET, or POST with BODY), the status and the body.
http() {
  python3 - "http://127.0.0.1:$HTTP_PORT$1" "${2-}" <<'PY'
import sys, urllib.error, urllib.request
url, body = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, data=body.encode() if body else None)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())
PY
}
stop_server() {
  kill -TERM "$SERVER_PID"
  set +e
  wait "$SERVER_PID"
  local code=$?
  set -e
  SERVER_PID=""
  say "server stopped (SIGTERM: requests in flight drained, event store closed), exit status $code"
  [ "$code" -eq 0 ]
}

step "3. Start the server and ask for the home page of three contrasting customers"
# The console's operator accounts (passwords hashed with Argon2id), made before the server locks
# the embedded store. Demo passwords only: a bank's admin types them (qianmian user add NAME --role R).
add_operator() { printf '%s\n' "$3" | "$QM" user add "$1" --role "$2" --data "$BANK" --operator demo-setup > /dev/null; }
add_operator alice marketer alice-demo-pass
add_operator bob approver bob-demo-pass
add_operator carol service_agent carol-demo-pass
add_operator admin admin admin-demo-pass
start_server
YOUNG=$("$VIEW" pick "$BANK/customers.csv" young_payroll "$NOW")
RETIREE=$("$VIEW" pick "$BANK/customers.csv" affluent_c2_retiree "$NOW")
UNKNOWN=C9999999-new
for who in "$YOUNG" "$RETIREE" "$UNKNOWN"; do
  echo
  "$VIEW" customer "$BANK/customers.csv" "$who"
  client recommend "{\"customer_id\":\"$who\",\"channel\":\"app_home\",\"count\":8,\"now_ms\":$NOW,\"debug\":true}" > "$OUT/page-$who.json"
  "$VIEW" page "$BANK/items.csv" "$OUT/page-$who.json"
done

echo
say "Suitability: $RETIREE has tolerance C2; every R3-R5 product is blocked for them, on every channel."
RISKY=$(python3 -c "import csv,json,sys; print(','.join(json.dumps(r['item_id']) for r in csv.DictReader(open(sys.argv[1], encoding='utf-8')) if r['kind'] == 'product' and r['risk_level'] in ('R3', 'R4', 'R5')))" "$BANK/items.csv")
client score "{\"customer_id\":\"$RETIREE\",\"channel\":\"app_home\",\"item_ids\":[$RISKY],\"now_ms\":$NOW}" > "$OUT/score-risky.json"
python3 - "$OUT/score-risky.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["scores"]
blocked = [x for x in s if "suitability" in x["blocked_by"]]
print(f"   R3-R5 products checked: {len(s)}; blocked by suitability: {len(blocked)}; eligible: {sum(x['eligible'] for x in s)}")
if any(x["eligible"] for x in s):
    sys.exit("demo: a C2 customer could be shown an R3-R5 product")
PY
for k in 1 2 3 4 5; do
  client recommend "{\"customer_id\":\"$RETIREE\",\"channel\":\"app_home\",\"count\":20,\"now_ms\":$((NOW + k * 60000))}" > "$OUT/retiree-$k.json"
done
"$VIEW" risk "$BANK/items.csv" "$OUT"/retiree-*.json

echo
say "the operators' side, the HTTP port: readiness, a page through the JSON API, Prometheus metrics"
say "   GET /readyz -> $(http /readyz)"
http /v1/recommend "{\"customer_id\":\"$RETIREE\",\"channel\":\"app_home\",\"count\":3,\"now_ms\":$((NOW + 360000))}" |
  cut -c1-150 | sed 's/^/   POST \/v1\/recommend -> /'
http /metrics | grep -E '^qianmian_(requests_total\{op="recommend",code="ok"\}|served_items_total|policy_blocked_total\{rule="suitability"|ready )' |
  sed 's/^/   /'
say "the operator console: http://127.0.0.1:$HTTP_PORT/console/ (zh/en) with the accounts made above:"
"$QM" user list --data "$BANK" 2>/dev/null | cut -f1,2 | sed 's/^/   /' || true
say "   (passwords: alice-demo-pass, bob-demo-pass, carol-demo-pass, admin-demo-pass)"
say "what the service agent carol sees when $RETIREE calls ('why do you keep showing me this?'):"
python3 - "http://127.0.0.1:$HTTP_PORT" "$RETIREE" <<'PY'
import http.cookiejar, json, sys, urllib.error, urllib.request
base, customer = sys.argv[1], sys.argv[2]
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def post(path, body, csrf=""):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
    try:
        with web.open(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
_, me = post("/console/api/login", {"name": "carol", "password": "carol-demo-pass"})
status, h = post("/console/api/op/history", {"customer_id": customer}, me["csrf"])
caps = ", ".join(f"{c['rule']} {c['used']}/{c['limit']}" for c in h["caps"])
last = [d for d in h["decisions"] if d["request_id"] == h["decisions"][0]["request_id"]] if h["decisions"] else []
print(f"   caps used/limit: {caps}")
for d in sorted(last, key=lambda d: d["position"])[:3]:
    print(f"   position {d['position']}: {d['item_id']} by model {d['model_version']}: {' '.join(d['reasons'][:3])}")
status, out = post("/console/api/op/reload", {}, me["csrf"])
print(f"   carol asking to reload the model: {status} {out['error']['message']}")
PY

step "4. Feedback changes the next answer; a cap blocks an over-contacted customer"
FIRST=$(python3 -c "import json,sys; print(next(i['item_id'] for i in json.load(open(sys.argv[1]))['items'] if i['kind'] == 'content'))" "$OUT/page-$YOUNG.json")
REQ=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['request_id'])" "$OUT/page-$YOUNG.json")
say "$YOUNG sees the page (impressions confirm its reservations) and clicks $FIRST"
python3 - "$OUT/page-$YOUNG.json" "$YOUNG" "$NOW" "$FIRST" > "$OUT/feedback.json" <<'PY'
import json, sys
page, who, now, first = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ev = [{"ts_ms": now + 1000, "customer_id": who, "item_id": i["item_id"], "type": "impression",
       "channel": "app_home", "request_id": page["request_id"]} for i in page["items"]]
ev.append({"ts_ms": now + 5000, "customer_id": who, "item_id": first, "type": "click", "channel": "app_home",
           "request_id": page["request_id"]})
print(json.dumps({"events": ev}))
PY
client feedback "$(cat "$OUT/feedback.json")"
client recommend "{\"customer_id\":\"$YOUNG\",\"channel\":\"app_home\",\"count\":8,\"now_ms\":$((NOW + 60000)),\"debug\":true}" > "$OUT/page-$YOUNG-after.json"
"$VIEW" page "$BANK/items.csv" "$OUT/page-$YOUNG-after.json"
"$VIEW" changed "$BANK/items.csv" "$OUT/page-$YOUNG.json" "$OUT/page-$YOUNG-after.json"

echo
say "Contact caps: the bank's own systems already pushed 3 WeChat messages to $YOUNG this week"
say "(recorded through feedback); the policy allows 3 pushes in 7 days, so a 4th is blocked."
python3 - "$YOUNG" "$NOW" "$FIRST" > "$OUT/pushes.json" <<'PY'
import json, sys
who, now, item = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(json.dumps({"events": [{"ts_ms": now - d * 86400000, "customer_id": who, "item_id": item, "type": "push_sent",
                              "channel": "wechat_push", "request_id": f"crm-{d}"} for d in (3, 2, 1)]}))
PY
client feedback "$(cat "$OUT/pushes.json")"
CANDIDATES=$(python3 -c "import json,sys; print(','.join(json.dumps(i['item_id']) for i in json.load(open(sys.argv[1]))['items'] if i['kind'] == 'content'))" "$OUT/page-$YOUNG-after.json")
client score "{\"customer_id\":\"$YOUNG\",\"channel\":\"wechat_push\",\"item_ids\":[$CANDIDATES],\"now_ms\":$NOW}" > "$OUT/cap-score.json"
"$VIEW" scores "$BANK/items.csv" "$OUT/cap-score.json"
client history "{\"customer_id\":\"$YOUNG\",\"limit\":6,\"now_ms\":$NOW}" > "$OUT/history.json"
say "what a service agent sees when $YOUNG asks why (history: newest events, caps in use):"
"$VIEW" history "$OUT/history.json"

step "5. A WeChat push run for a segment; re-running it sends nothing twice"
say "The embedded event store (<data>/store) has one writer process, so the server pauses while the"
say "push run holds it (with the Redis store, [store] backend = \"redis\", both run at once)."
stop_server
SEGMENT='tier in (affluent, private) and region = "Jinan"'
say "audience: $SEGMENT"
"$QM" push --data "$BANK" --artifacts "$ART" --run-id demo-push-1 --audience "$SEGMENT" \
  --now "$((NOW + 2 * 3600000))" --out "$OUT/push-1.csv" --plot "$OUT/push-pressure.png"
say "send list: $(($(wc -l < "$OUT/push-1.csv") - 1)) sends in $OUT/push-1.csv; first lines:"
head -4 "$OUT/push-1.csv" | sed 's/^/   /'
say "re-run with the same run id:"
"$QM" push --data "$BANK" --artifacts "$ART" --run-id demo-push-1 --audience "$SEGMENT" \
  --now "$((NOW + 2 * 3600000))" --out "$OUT/push-1-rerun.csv" > "$OUT/push-rerun.log"
tail -n 20 "$OUT/push-rerun.log" | sed 's/^/   /'
python3 - "$OUT/push-1.csv" "$OUT/push-1-rerun.csv" <<'PY'
import csv, sys
first = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
again = list(csv.DictReader(open(sys.argv[2], encoding="utf-8")))
key = lambda r: (r["customer_id"], r["item_id"])
fresh = {key(r) for r in again} - {key(r) for r in first}
print(f"   first run: {len(first)} sends; re-run: {len(fresh)} new sends (a send already reserved is never repeated)")
if fresh:
    sys.exit("demo: the re-run sent something twice")
PY

step "5b. A governed campaign: drafted, refused to its author, approved by a second person, sent, reported"
# The campaign's clock: the day after NOW. Its daily occurrences run at 09:30 for a week.
DAY1=$(TZ=Asia/Shanghai date -d "@$((NOW / 1000 + 86400))" +%Y-%m-%d)
DAY7=$(TZ=Asia/Shanghai date -d "@$((NOW / 1000 + 7 * 86400))" +%Y-%m-%d)
cat > "$OUT/campaign.json" <<EOF
{"id": "demo-wealth", "name": "理财知识周", "channel": "wechat_push",
 "audience": "tier in (affluent, private)", "content": {"categories": ["wealth_tips", "retirement_planning"]},
 "objective": {"w_click": 1, "w_convert": 0.5}, "budget": {"total": 1500, "per_day": 1000}, "holdout": 0.2,
 "schedule": {"kind": "daily", "time": "09:30", "from": "$DAY1", "to": "$DAY7"}, "priority": 5}
EOF
C=(--data "$BANK" --artifacts "$ART" --now "$((NOW + 3600000))")
say "alice drafts it ($OUT/campaign.json): affluent and private customers, two content categories,"
say "a budget of 1,000 sends a day and 1,500 in all, 20% held out to measure what it causes"
"$QM" campaign create "${C[@]}" --file "$OUT/campaign.json" --operator alice | sed 's/^/   /'
say "the dry run the approver sees before approving (nothing reserved):"
"$QM" campaign dryrun demo-wealth "${C[@]}" --out "$OUT/campaign-dryrun.csv" > "$OUT/campaign-dryrun.txt"
sed -n 1,16p "$OUT/campaign-dryrun.txt" | sed 's/^/   /'
say "and, this being a generated bank, what its planted world expects of those sends:"
grep -A1 "planted world" "$OUT/campaign-dryrun.txt" | sed 's/^/   /' || true
"$QM" campaign submit demo-wealth "${C[@]}" --operator alice > /dev/null
say "alice tries to approve her own campaign:"
"$QM" campaign approve demo-wealth "${C[@]}" --operator alice 2>&1 | sed 's/^/   /' || true
"$QM" campaign approve demo-wealth "${C[@]}" --operator bob | sed -n 1,3p | sed 's/^/   /'
"$QM" campaign schedule demo-wealth "${C[@]}" --operator alice > /dev/null
say "the first occurrence ($DAY1 09:30) runs as push run demo-wealth/$DAY1 (serve does this by itself at"
say "[server] campaign_tick; here by hand while the server is stopped):"
"$QM" campaign run demo-wealth --data "$BANK" --artifacts "$ART" --operator ops --occurrence "$DAY1" \
  --now "${DAY1}T09:30" --out "$OUT/campaign-$DAY1.csv" | grep -E "audience|sends \(|campaign\.|predicted|running" |
  sed 's/^/   /'
say "the audit log (who did what, from where; CSV for the auditors: campaign audit --format csv):"
"$QM" campaign audit demo-wealth --data "$BANK" --format csv | cut -d, -f1,3-7 | sed 's/^/   /'
say "the customers answer: on this generated bank its planted world opens each send with its true"
say "probability, recorded as push_open feedback of the run (what a delivery system's callbacks would post):"
QM_PROGRESS=0 "$QM" campaign respond demo-wealth --data "$BANK" --artifacts "$ART" --occurrence "$DAY1" \
  --sends "$OUT/campaign-$DAY1.csv" | sed 's/^/   /'
say "its effect report from the store (sent against held out, the same selection):"
"$QM" campaign report demo-wealth --data "$BANK" | sed 's/^/   /'

step "5c. An event trigger: a salary arrives, the engine picks that customer's best offer at once"
start_server
cat > "$OUT/trigger.json" <<EOF
{"id": "demo-salary", "name": "工资到账理财提醒", "channel": "wechat_push", "audience": "tier in (affluent, private)",
 "holdout": 0.2, "budget": {"per_day": 500},
 "trigger": {"event": "salary_credited", "condition": "amount >= 8000", "expiry_s": 3600}}
EOF
say "alice drafts a triggered campaign ($OUT/trigger.json): a salary of 8,000 or more to an affluent"
say "or private customer; bob approves it; scheduled, it fires on each matching event:"
client campaigns.create "{\"operator\":\"alice\",\"definition\":$(cat "$OUT/trigger.json")}" > /dev/null
client campaigns.transition '{"operator":"alice","campaign_id":"demo-salary","to":"submitted"}' > /dev/null
client campaigns.transition '{"operator":"bob","campaign_id":"demo-salary","to":"approved"}' > /dev/null
client campaigns.transition '{"operator":"bob","campaign_id":"demo-salary","to":"scheduled"}' > "$OUT/trigger-scheduled.json"
python3 - "$OUT/trigger-scheduled.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["campaign"]
print(f"   {c['definition']['id']}: {c['state']}, approved by {c['approved_by']}")
PY
T3=$((NOW + 3 * 86400000))
python3 - "$BANK/customers.csv" "$T3" > "$OUT/salary-events.json" <<'PY'
import csv, json, sys
rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["tier"] in ("affluent", "private")][:6]
t = int(sys.argv[2])
ev = [{"event_id": f"pay-{r['customer_id']}", "customer_id": r["customer_id"], "type": "salary_credited",
       "ts_ms": t, "attrs": {"amount": 12000 if i else 3000, "employer": "Jinan Steel"}} for i, r in enumerate(rows)]
print(json.dumps({"events": ev, "now_ms": t + 2000}))
PY
say "six salary_credited events arrive (events.ingest; a Redis stream works the same way), the first below 8,000:"
client events.ingest "$(cat "$OUT/salary-events.json")" > "$OUT/salary-decisions.json"
python3 - "$OUT/salary-decisions.json" <<'PY'
import json, sys
for d in json.load(open(sys.argv[1]))["decisions"]:
    what = d.get("item_id", d.get("skipped_by", ""))
    print(f"   {d['customer_id']}: {d['outcome']:8s} {what:12s} key {d['key']}")
PY
say "the outbox a delivery system reads ($BANK/trigger_outbox, one JSON line per send, keyed):"
cat "$BANK"/trigger_outbox/*.jsonl | head -2 | cut -c1-200 | sed 's/^/   /'
say "the same events again (a retry) are replayed: nothing counted twice:"
client events.ingest "$(cat "$OUT/salary-events.json")" > "$OUT/salary-decisions-2.json"
python3 - "$OUT/salary-decisions-2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["decisions"]
sent = [x for x in d if x["outcome"] == "sent"]
print(f"   {sum(x['replayed'] for x in sent)} of {len(sent)} sends replayed")
if not sent or not all(x["replayed"] for x in sent):
    sys.exit("demo: the retry was not a replay")
PY
stop_server

step "6. Train again on the new events, reload under load, no failed request"
start_server
"$QM" train --data "$BANK" --artifacts "$ART" > "$OUT/train-2.log"
V2=$(cat "$ART/CURRENT")
say "new version $V2 (the store's recorded events joined the training data: see $OUT/train-2.log)"
"$QM" bench --connect "$ADDR" --data "$BANK" --duration 6 --concurrency 2 > "$OUT/bench.log" 2>&1 &
BENCH_PID=$!
sleep 2
client reload "{\"version\":\"$V2\"}"
wait "$BENCH_PID"
sed 's/^/   /' "$OUT/bench.log"
client stats > "$OUT/stats.json"
python3 - "$OUT/stats.json" "$V2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("   serving version:", s.get("model_version") or s.get("versions"))
PY

step "7. Stop cleanly (SIGTERM drains in-flight requests and flushes the event store)"
stop_server
step "8. Retention: who is about to leave (learned from behaviour), and a retention campaign for them"
python3 - "$ART/$V2/MANIFEST.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
print(f"   train's churn model, held out (fit on the data before the last {m['churn.horizon_days']:.0f} days, scored on"
      f" whether each of {m['churn.evaluated']:.0f} active customers was seen again in them):")
print(f"   AUC {m['churn.auc']:.3f} against {m['churn.baseline_auc']:.3f} for 'days since the last activity';"
      f" precision in the top 5% {m['churn.precision@5%']:.3f} against {m['churn.baseline_precision@5%']:.3f}")
PY
say "portraits of the served version ($ART/$V2/portraits.csv): lifecycle, churn risk, value trend, interests"
python3 - "$ART/$V2/portraits.csv" "$BANK/customers.csv" <<'PY'
import csv, collections, sys
tier = {r["customer_id"]: r["tier"] for r in csv.DictReader(open(sys.argv[2], encoding="utf-8"))}
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
print("   lifecycle:", dict(collections.Counter(r["lifecycle"] for r in rows).most_common()))
risky = [r for r in rows if tier[r["customer_id"]] != "mass" and r["lifecycle"] != "dormant" and float(r["churn_risk"]) >= 0.2]
print(f"   affluent or private, not dormant, churn_risk >= 0.2: {len(risky)} customers, e.g.")
for r in sorted(risky, key=lambda r: -float(r["churn_risk"]))[:3]:
    print(f"     {r['customer_id']}: churn_risk {float(r['churn_risk']):.2f}, {r['lifecycle']}, "
          f"{r['days_inactive'] or '-'} days inactive, interests {r['interest_1']} {r['interest_2']}")
PY
cat > "$OUT/retention.json" <<EOF
{"id": "demo-retain", "name": "挽留: 高价值流失预警", "channel": "wechat_push",
 "audience": "tier in (affluent, private) and churn_risk >= 0.2 and lifecycle != dormant",
 "content": {"categories": ["wealth_tips", "fund_insight", "retirement_planning"]},
 "objective": {"w_click": 1, "w_convert": 1}, "holdout": 0.3,
 "schedule": {"kind": "once", "at": "${DAY7}T10:00"}, "priority": 9}
EOF
R=(--data "$BANK" --artifacts "$ART" --now "$((NOW + 3600000))")
export QM_PROGRESS=0  # no progress bars from here on
"$QM" campaign create "${R[@]}" --file "$OUT/retention.json" --operator alice > /dev/null
"$QM" campaign submit demo-retain "${R[@]}" --operator alice > /dev/null
"$QM" campaign approve demo-retain "${R[@]}" --operator bob > /dev/null
"$QM" campaign schedule demo-retain "${R[@]}" --operator alice > /dev/null
say "the retention campaign ($OUT/retention.json: at-risk affluent customers, 30% held out) approved by bob;"
say "its occurrence ($DAY7 10:00) under every contact rule:"
"$QM" campaign run demo-retain --data "$BANK" --artifacts "$ART" --operator ops --occurrence "${DAY7}T10:00" \
  --now "${DAY7}T10:00" --out "$OUT/retention-sends.csv" | grep -E "audience|sends \(|campaign\.|predicted|cap\." |
  sed 's/^/   /'
QM_PROGRESS=0 "$QM" campaign respond demo-retain --data "$BANK" --artifacts "$ART" --occurrence "${DAY7}T10:00" \
  --sends "$OUT/retention-sends.csv" | sed 's/^/   /'
say "its effect report (the held-out 30% against those sent to):"
"$QM" campaign report demo-retain --data "$BANK" | sed -n 1,12p | sed 's/^/   /'
say "the world's app sessions end with its data, so opens are all it can answer after it; what the"
say "campaign causes in app clicks, conversions and opt-outs, the planted world shows by simulation:"
say "one occurrence a week before the data's end, its holdout sent nothing, then the remaining days:"
QM_PROGRESS=0 "$QM" campaign simulate demo-retain --data "$BANK" --artifacts "$ART" | sed 's/^/   /'

step "Done. Everything is in $OUT/ (pages, send lists, the push pressure plot, logs)"
say "To browse the operator console on this bank (log in as alice, bob, carol or admin; passwords above):"
say "   QIANMIAN_SERVER_HTTP_BIND=127.0.0.1:8080 $QM serve --data $BANK --artifacts $ART --bind tcp://127.0.0.1:5555"
say "   then open http://127.0.0.1:8080/console/"
