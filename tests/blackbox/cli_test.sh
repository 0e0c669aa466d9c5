#!/usr/bin/env bash
# Black-box test of the `qianmian` command line: generate -> inspect -> train -> eval on a small
# bank, artifact verification, and clear one-line errors for bad input.
# Usage: cli_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: cli_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"

# 1. generate a small bank and load it back cleanly.
if $QM generate --out "$W/bank" --customers 3000 --products 60 --contents 400 --days 30 --seed 3 >"$W/gen.txt" 2>&1; then
  ok "generate writes a bank"
else
  bad "generate failed: $(tail -3 "$W/gen.txt")"
fi
for f in customers.csv items.csv events.csv truth/oracle.json; do
  [ -s "$W/bank/$f" ] && ok "generate wrote $f" || bad "generate did not write $f"
done
if $QM inspect --data "$W/bank" >"$W/inspect.txt" 2>"$W/inspect.err" && grep -q "^customers  3000" "$W/inspect.txt" &&
   grep -q "events.csv: [0-9]* rows, 0 rejected" "$W/inspect.err"; then
  ok "inspect loads the generated bank with no rejected row"
else
  bad "inspect: $(cat "$W/inspect.txt" "$W/inspect.err" | tail -5)"
fi

# 2. train a quick version and evaluate it.
cat > "$W/fast.toml" <<'TOML'
[training]
max_eval_customers = 300
[training.two_tower]
epochs = 1
[training.ranker]
epochs = 1
TOML
if $QM train --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" >"$W/train.txt" 2>&1; then
  ok "train publishes a version"
else
  bad "train failed: $(tail -5 "$W/train.txt")"
fi
v=$(cat "$W/art/CURRENT" 2>/dev/null)
[ -n "$v" ] && [ -f "$W/art/$v/MANIFEST.json" ] && ok "CURRENT names a version with a manifest" || bad "no CURRENT/manifest"
for f in features.json two_tower.pt products.index content.index ranker.pt rank_inputs.json; do
  grep -q "\"$f\"" "$W/art/$v/MANIFEST.json" 2>/dev/null && ok "manifest lists $f" || bad "manifest misses $f"
done
grep -q "two_stage" "$W/train.txt" && grep -q "oracle" "$W/train.txt" && ok "train reports two-stage metrics beside the oracle" ||
  bad "train output lacks metrics"
# versions and rollback: a second version, CURRENT moved back to the first (verified first),
# refused for an unknown or corrupted version with CURRENT unchanged.
$QM train --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" >"$W/train2.txt" 2>&1 || bad "second train"
v2=$(cat "$W/art/CURRENT")
$QM versions --artifacts "$W/art" >"$W/versions.txt" 2>&1
[ "$v2" != "$v" ] && grep -q "^  $v " "$W/versions.txt" && grep -q "^\* $v2 " "$W/versions.txt" &&
  ok "versions lists both, * on CURRENT ($v2)" || bad "versions: $(cat "$W/versions.txt")"
$QM rollback "$v" --artifacts "$W/art" >"$W/rollback.txt" 2>&1 && [ "$(cat "$W/art/CURRENT")" = "$v" ] &&
  grep -q "$v2 -> $v (verified)" "$W/rollback.txt" && ok "rollback moves CURRENT back to $v" ||
  bad "rollback: $(cat "$W/rollback.txt")"
expect_fail_one_line "rollback to an unknown version is refused" "v-nope" $QM rollback v-nope --artifacts "$W/art"
printf 'x' >>"$W/art/$v2/ranker.pt"
expect_fail_one_line "rollback to a corrupted version is refused" "ranker.pt" $QM rollback "$v2" --artifacts "$W/art"
[ "$(cat "$W/art/CURRENT")" = "$v" ] && ok "CURRENT unchanged by the refused rollbacks" || bad "CURRENT moved: $(cat "$W/art/CURRENT")"
if $QM eval --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" >"$W/eval.txt" 2>&1 && grep -q "^popularity" "$W/eval.txt"; then
  ok "eval reports the version beside the baselines"
else
  bad "eval: $(tail -5 "$W/eval.txt")"
fi
awk '$1 == "two_stage.candidate_recall" && $2 > 0 && $2 <= 1 { found = 1 } END { exit !found }' "$W/eval.txt" &&
  ok "eval reports the share of targets among the ranker's candidates" || bad "eval lacks two_stage.candidate_recall"
awk '$1 == "attribute_oracle" && $3 > 0 { a = 1 } $1 == "history_oracle" && $3 > 0 { h = 1 }
     $1 == "two_stage.share_of_attribute_oracle@20" && $2 > 0 { s = 1 } END { exit !(a && h && s) }' "$W/eval.txt" &&
  ok "eval reports the attribute and history oracles and two-stage's share of them" ||
  bad "eval lacks the attribute oracle: $(grep -i oracle "$W/eval.txt")"

# 3. a tampered bundle is refused, naming the file.
printf 'x' >> "$W/art/$v/ranker.pt"
expect_fail "eval refuses a bundle that fails verification" "ranker.pt" \
  $QM eval --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml"

# 4. bad input: clear one-line errors, non-zero exit.
printf '[data]\nmax_bad_row_share = 2\nbogus = 1\n' > "$W/bad.toml"
expect_fail "an out-of-range value is named" "'data.max_bad_row_share': must be in [0, 1]" $QM inspect --config "$W/bad.toml" --data "$W/bank"
expect_fail "an unknown key is named" "unknown key 'data.bogus'" $QM inspect --config "$W/bad.toml" --data "$W/bank"
expect_fail "a missing data folder is reported" "does not exist" $QM inspect --data "$W/nope"
mkdir -p "$W/broken"
cp "$W/bank/items.csv" "$W/bank/customers.csv" "$W/broken/"
printf 'ts,customer_id,item_id,type,channel\nnot-a-time,C1,P1,click,app_home\n' > "$W/broken/events.csv"
expect_fail "a file of malformed rows fails with file, count and first reason" "events.csv: 1 of 1 rows are malformed" \
  $QM inspect --data "$W/broken"
printf 'ts,customer_id,item_id,type,channel\n' > "$W/broken/events.csv"
expect_fail "train refuses data without events" "no events" $QM train --data "$W/broken" --artifacts "$W/art2"
expect_fail "generate refuses a zero count" "customers" $QM generate --out "$W/g0" --customers 0
expect_fail "an unknown command is refused" "" $QM frobnicate

# 5. recommend: batch recommendations through the serving engine (a dry run).
head -7 "$W/bank/customers.csv" | tail -6 | cut -d, -f1 > "$W/ids.txt"
echo "NEVER-SEEN" >> "$W/ids.txt"
expect_fail "recommend refuses a bundle that fails verification" "ranker.pt" \
  $QM recommend --data "$W/bank" --artifacts "$W/art" --customers "$W/ids.txt" --out "$W/rec0.csv"
if $QM train --data "$W/bank" --artifacts "$W/art5" --config "$W/fast.toml" >"$W/train5.txt" 2>&1 &&
   $QM recommend --data "$W/bank" --artifacts "$W/art5" --customers "$W/ids.txt" --channel app_home --count 5 \
     --now 2026-11-01T12:00 --out "$W/rec.csv" >"$W/rec.txt" 2>&1; then
  ok "recommend writes recommendations"
else
  bad "recommend failed: $(tail -3 "$W/rec.txt" "$W/train5.txt")"
fi
[ "$(head -1 "$W/rec.csv" 2>/dev/null)" = "customer_id,rank,item_id,kind,score,reasons" ] && ok "recommend writes the CSV header" ||
  bad "recommend header: $(head -1 "$W/rec.csv" 2>/dev/null)"
rows=$(($(wc -l < "$W/rec.csv" 2>/dev/null || echo 1) - 1))
[ "$rows" -eq 35 ] && ok "recommend writes 5 rows for each of 7 customers" || bad "recommend wrote $rows rows, not 35"
grep -q "^NEVER-SEEN,1,.*recall:popular" "$W/rec.csv" && ok "an unknown customer gets popular items" || bad "no popular items for an unknown customer"
$QM recommend --data "$W/bank" --artifacts "$W/art5" --customers "$W/ids.txt" --count 5 --now 2026-11-01T12:00 \
  --out "$W/rec2.csv" >/dev/null 2>&1
cmp -s "$W/rec.csv" "$W/rec2.csv" && ok "recommend is a dry run: a second run gives the same answer" || bad "a second recommend run differs"
expect_fail "recommend refuses a count outside 1..100" "count" \
  $QM recommend --data "$W/bank" --artifacts "$W/art5" --customers "$W/ids.txt" --count 0 --out "$W/rec3.csv"

# 6. the gradient-boosted trees ranker: trained, published, verified, served.
cat "$W/fast.toml" > "$W/gbdt.toml"
printf 'kind = "gbdt"\n[training.ranker.gbdt]\ntrees = 40\n' >> "$W/gbdt.toml"
if $QM train --data "$W/bank" --artifacts "$W/art6" --config "$W/gbdt.toml" >"$W/train6.txt" 2>&1 &&
   grep -q '"qianmian.gbdt/1"' "$W/art6/$(cat "$W/art6/CURRENT")/ranker.pt.json" &&
   $QM recommend --data "$W/bank" --artifacts "$W/art6" --customers "$W/ids.txt" --count 5 --now 2026-11-01T12:00 \
     --out "$W/rec6.csv" >"$W/rec6.txt" 2>&1 && [ "$(($(wc -l < "$W/rec6.csv") - 1))" -eq 35 ] &&
   ! cmp -s "$W/rec.csv" "$W/rec6.csv"; then
  ok "a gbdt ranker is trained, published and served (its pages differ from the cross network's)"
else
  bad "gbdt ranker: $(tail -3 "$W/train6.txt" "$W/rec6.txt")"
fi
printf '[training.ranker]\nkind = "forest"\n' > "$W/badkind.toml"
expect_fail "an unknown ranker kind is named" "'training.ranker.kind': must be \"cross_net\" or \"gbdt\"" \
  $QM train --data "$W/bank" --artifacts "$W/art7" --config "$W/badkind.toml"
printf '[training.ranker.gbdt]\ndepth = 0\n' > "$W/baddepth.toml"
expect_fail "a bad tree depth is named" "'training.ranker.gbdt.depth'" \
  $QM train --data "$W/bank" --artifacts "$W/art7" --config "$W/baddepth.toml"
printf '[training.ranker]\nitem_refit_l2 = -1\n' > "$W/badrefit.toml"
expect_fail "a negative item refit prior is named" "'training.ranker.item_refit_l2': must be >= 0" \
  $QM train --data "$W/bank" --artifacts "$W/art7" --config "$W/badrefit.toml"

# 7. report: an experiment layer's effect report from the events (the generated bank's logging
# policy ignores the arms, so this is an A/A test: same counts, no mismatch).
cat > "$W/exp.toml" <<'TOML'
[experiments]
holdout_share = 0.1
[[experiments.layers]]
name = "push_cap"
salt = "push-cap-test"
[[experiments.layers.arms]]
name = "treated"
share = 0.5
[[experiments.layers.arms]]
name = "control"
share = 0.5
control = ["wechat_push"]
TOML
if $QM report --data "$W/bank" --config "$W/exp.toml" --experiment push_cap --from 2026-10-25 --json "$W/report.json" \
     --plot "$W/report.png" >"$W/report.txt" 2>&1 && [ "$(head -c 4 "$W/report.png" | tail -c 3)" = "PNG" ] &&
   python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
arms = {a['arm']: a for a in r['arms']}
assert sum(a['assigned'] for a in r['arms']) + r['holdout_customers'] == 3000, r
assert arms['control']['control'] and 'lift' not in arms['control']['metrics']['clicks']
assert 'lift' in arms['treated']['metrics']['clicks'] and r['cuped']
assert not r['sample_ratio']['mismatch'] and 200 < r['holdout_customers'] < 400
" "$W/report.json" && grep -q "clicks per customer" "$W/report.txt"; then
  ok "report compares the arms with the control, with the holdout apart and no sample-ratio mismatch, and draws them"
else
  bad "report: $(tail -5 "$W/report.txt")"
fi
# A push run under the layer: control customers get no send, but a ghost in the decision log,
# which report counts as their would-be contacts.
head -601 "$W/bank/customers.csv" | tail -600 | cut -d, -f1 > "$W/aud.txt"
if $QM push --data "$W/bank" --artifacts "$W/art5" --config "$W/exp.toml" --run-id ghosts1 --audience @"$W/aud.txt" \
     --out "$W/ghost_sends.csv" --now 2026-11-01T10:00 >"$W/ghost_push.txt" 2>&1 &&
   $QM report --data "$W/bank" --config "$W/exp.toml" --experiment push_cap --from 2026-10-30 \
     --json "$W/report2.json" >"$W/report2.txt" 2>&1 &&
   python3 -c "
import json, sys
arms = {a['arm']: a for a in json.load(open(sys.argv[1]))['arms']}
assert arms['control']['ghosted'] > 20 and arms['treated']['ghosted'] == 0, arms
" "$W/report2.json"; then
  ok "report counts the ghosts a push run recorded for the control arm"
else
  bad "ghosts in report: $(tail -3 "$W/ghost_push.txt" "$W/report2.txt")"
fi
if $QM report --data "$W/bank" --config "$W/exp.toml" --experiment push_cap --from 2026-10-25 --baseline treated \
     --json "$W/report3.json" >/dev/null 2>&1 &&
   python3 -c "
import json, sys
arms = {a['arm']: a for a in json.load(open(sys.argv[1]))['arms']}
assert arms['treated']['control'] and not arms['control']['control'] and 'lift' in arms['control']['metrics']['clicks']
" "$W/report3.json"; then
  ok "report --baseline compares the arms with the named arm"
else
  bad "report --baseline"
fi
expect_fail "report names an unknown baseline arm" "--baseline: no arm 'nope' in layer push_cap (arms: treated, control)" \
  $QM report --data "$W/bank" --config "$W/exp.toml" --experiment push_cap --baseline nope
expect_fail "report names an unknown layer" "no layer 'nope' in [experiments] (layers: push_cap)" \
  $QM report --data "$W/bank" --config "$W/exp.toml" --experiment nope
expect_fail "report refuses an empty window" "--from must be before --to" \
  $QM report --data "$W/bank" --config "$W/exp.toml" --experiment push_cap --from 2026-10-25 --to 2026-10-20

# 8. simulate: the closed loop on a small generated world (history by the logging policy, the
# engine serving two arms against the legacy arm for the last days).
$QM generate --out "$W/world" --customers 1500 --products 30 --contents 200 --days 20 --seed 9 >/dev/null 2>&1
cat "$W/fast.toml" > "$W/sim.toml"
cat >> "$W/sim.toml" <<'TOML'
[experiments]
[[experiments.layers]]
name = "strategy"
salt = "strategy-test"
[[experiments.layers.arms]]
name = "legacy"
share = 0.5
[[experiments.layers.arms]]
name = "qianmian"
share = 0.5
TOML
if $QM simulate --world "$W/world" --out "$W/sim" --days 5 --experiment strategy --config "$W/sim.toml" \
     --legacy legacy --retrain-every 3 >"$W/sim.txt" 2>&1 && grep -q "day 3: retrained, now serving v" "$W/sim.txt" &&
   python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
arms = {a['arm']: a for a in r['arms']}
assert sum(a['assigned'] for a in r['arms']) == 1500 and not r['sample_ratio']['mismatch'], r
q, l = arms['qianmian']['metrics'], arms['legacy']['metrics']
assert q['contacts']['per_customer'] > 0 and l['contacts']['per_customer'] > 0
import csv, re
engine = re.compile(r'^r[0-9a-f]{22}$')  # the engine's request ids; the logging policy's are r<n>-<k>
served = {True: 0, False: 0}
for e in csv.DictReader(open(sys.argv[2])):
    if e['type'] == 'impression':
        served[bool(engine.match(e['request_id']))] += 1
assert served[True] > 100 and served[False] > 100, served
" "$W/sim/report.json" "$W/sim/simulated_events.csv"; then
  ok "simulate drives the engine in a closed loop (its pages and the legacy policy's both shown, retrained on day 3) and reports the arms"
else
  bad "simulate: $(tail -5 "$W/sim.txt")"
fi
# The daily push calendar: every customer is offered a push a day; without caps the engine's arm
# pushes daily, and contact pressure costs opt-outs, which every later run honours (consent).
cat "$W/fast.toml" > "$W/sim3.toml"
cat >> "$W/sim3.toml" <<'TOML'
[experiments]
[[experiments.layers]]
name = "strategy"
salt = "strategy-test"
[[experiments.layers.arms]]
name = "legacy"
share = 0.3
[[experiments.layers.arms]]
name = "qianmian"
share = 0.35
[[experiments.layers.arms]]
name = "no_caps"
share = 0.35
[[experiments.layers.arms.policy.caps]]
scope = "customer_channel"
channel = "wechat_push"
limit = 1000
window = "1d"
TOML
if $QM simulate --world "$W/world" --out "$W/sim3" --days 6 --experiment strategy --config "$W/sim3.toml" \
     --legacy legacy --push-calendar daily --push-time 10:00 --baseline no_caps >"$W/sim3.txt" 2>&1 &&
   grep -q "marketing pushes after an opt-out: 0$" "$W/sim3.txt" && grep -q "engine push runs: 6;" "$W/sim3.txt" &&
   python3 -c "
import csv, json, sys
r = json.load(open(sys.argv[1]))
arms = {a['arm']: a for a in r['arms']}
q, n = arms['qianmian']['metrics'], arms['no_caps']['metrics']
assert 'opt_outs' in q and 'opt_outs' in n, q.keys()
service = {i['item_id'] for i in csv.DictReader(open(sys.argv[3])) if i.get('service') == '1'}
runs, out_at, late = set(), {}, 0
pushes = {}
for e in csv.DictReader(open(sys.argv[2])):
    if e['type'] == 'opt_out':
        out_at.setdefault(e['customer_id'], int(e['ts']))
for e in csv.DictReader(open(sys.argv[2])):
    if e['type'] == 'push_sent' and e['item_id'] not in service:
        if e['request_id'].startswith('sim-d'): runs.add(e['request_id'])
        t = out_at.get(e['customer_id'])
        late += t is not None and int(e['ts']) > t
        pushes[e['customer_id']] = pushes.get(e['customer_id'], 0) + 1
assert late == 0, late
assert runs == {'sim-d%d-daily' % d for d in range(1, 7)}, runs
assert n['contacts']['per_customer'] > q['contacts']['per_customer'], (n['contacts'], q['contacts'])
vs = {a['arm']: a for a in json.load(open(sys.argv[4]))['arms']}
assert vs['no_caps']['control'] and not vs['legacy']['control'], vs
assert abs(vs['qianmian']['metrics']['opt_outs']['lift']['difference'] -
           (q['opt_outs']['per_customer'] - n['opt_outs']['per_customer'])) < 1e-9
counted = sum(a['metrics']['opt_outs']['per_customer'] * a['assigned'] for a in r['arms'])
assert len(out_at) > 0 and abs(counted - len(out_at)) < 1e-6, (counted, len(out_at))
" "$W/sim3/report.json" "$W/sim3/simulated_events.csv" "$W/world/items.csv" "$W/sim3/report_vs_no_caps.json"; then
  ok "simulate's daily push calendar: push runs through the engine, more pushes without caps, opt-outs honoured by every later run"
else
  bad "simulate --push-calendar daily: $(tail -5 "$W/sim3.txt")"
fi
expect_fail "simulate names an unknown baseline arm" "--baseline: no arm 'nope' in layer strategy" \
  $QM simulate --world "$W/world" --out "$W/sim2" --days 5 --experiment strategy --config "$W/sim.toml" --baseline nope
expect_fail "simulate refuses an unknown push calendar" "--push-calendar must be 'planned' or 'daily'" \
  $QM simulate --world "$W/world" --out "$W/sim2" --days 5 --experiment strategy --config "$W/sim.toml" --push-calendar weekly
expect_fail "simulate refuses more closed-loop days than the world has" "--days must be in [1, 19]" \
  $QM simulate --world "$W/world" --out "$W/sim2" --days 20 --experiment strategy --config "$W/sim.toml"
expect_fail "simulate names an unknown legacy arm" "--legacy: no arm 'old' in layer strategy" \
  $QM simulate --world "$W/world" --out "$W/sim2" --days 5 --experiment strategy --config "$W/sim.toml" --legacy old

finish "command-line black-box"
