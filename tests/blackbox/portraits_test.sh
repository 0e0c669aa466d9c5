#!/usr/bin/env bash
# Black-box test of portraits and churn risk (issue 18): `train` on a generated bank of 4 weeks
# publishes portraits.csv with the churn model's held-out figures in its manifest; the server's
# `profile` op returns a customer's portrait; audiences of push runs and campaigns use
# churn_risk, lifecycle and interest:CATEGORY, and a misspelt portrait field is refused with the
# known ones.
# Usage: portraits_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: portraits_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"
trap 'kill -KILL "${SERVER:-0}" 2>/dev/null; rm -rf "$W"' EXIT
quick_bank 800 20 80 28 5
V=$(cat "$W/art/CURRENT")
[ -f "$W/art/$V/portraits.csv" ] && ok "the version holds portraits.csv" || bad "no portraits.csv in $V"
rows=$(($(wc -l <"$W/art/$V/portraits.csv") - 1))
[ "$rows" -eq 800 ] && ok "one portrait per customer (800)" || bad "portraits: $rows rows"
python3 - "$W/art/$V/MANIFEST.json" <<'PY' && ok "the manifest holds the churn model's held-out figures" || bad "manifest"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
for k in ("churn.auc", "churn.baseline_auc", "churn.precision@5%", "churn.evaluated"):
    assert k in m, k
print(f"   churn AUC {m['churn.auc']:.3f} (days since last activity {m['churn.baseline_auc']:.3f}), "
      f"precision in the top 5% {m['churn.precision@5%']:.3f}, {m['churn.evaluated']:.0f} customers")
PY

printf '[server]\ncodel_target = 0\n' >"$W/serve.toml"  # no shedding by delay: CI's load must not fail a lookup
$QM serve --config "$W/serve.toml" --data "$W/bank" --artifacts "$W/art" --bind "ipc://$W/s.sock" >"$W/serve.log" 2>&1 &
SERVER=$!
wait_ready "$QM" "ipc://$W/s.sock" "$SERVER" || { bad "serve: $(tail -3 "$W/serve.log")"; exit 1; }
C=$(sed -n 2p "$W/art/$V/portraits.csv" | cut -d, -f1)
out=$($QM client --connect "ipc://$W/s.sock" profile "{\"customer_id\":\"$C\"}" 2>&1)
printf '%s' "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin); p = r["portrait"]
assert r["ok"] and 0 <= p["churn_risk"] <= 1 and p["lifecycle"] in ("new", "growing", "mature", "declining", "dormant")
assert p["value_trend"] in ("up", "flat", "down", "none") and isinstance(p["interests"], list)' &&
  ok "profile: churn_risk, lifecycle, value_trend, interests" || bad "profile: $out"
risk=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["portrait"]["churn_risk"])')
ITEM=$(awk -F, 'NR > 1 && $2 == "content" { print $1; exit }' "$W/bank/items.csv")
h=$($QM client --connect "ipc://$W/s.sock" history "{\"customer_id\":\"$C\"}" 2>&1)
s=$($QM client --connect "ipc://$W/s.sock" score "{\"customer_id\":\"$C\",\"channel\":\"wechat_push\",\"item_ids\":[\"$ITEM\"]}" 2>&1)
printf '%s\n%s\n' "$h" "$s" | python3 -c 'import json, sys
h, s = (json.loads(line) for line in sys.stdin.read().splitlines()[:2])
risk = float(sys.argv[1])
assert abs(h["portrait"]["churn_risk"] - risk) < 1e-6 and abs(s["churn_risk"] - risk) < 1e-6, (h.get("portrait"), s)' "$risk" &&
  ok "history and score carry the same churn risk ($risk)" || bad "history/score: $h / $s"
out=$($QM client --connect "ipc://$W/s.sock" profile '{"customer_id":"no-such"}' 2>&1)
printf '%s' "$out" | grep -q '"code":"not_found"' && ok "profile of an unknown customer: not_found" || bad "$out"
kill "$SERVER"
while kill -0 "$SERVER" 2>/dev/null; do sleep 0.1; done

# Audiences over portraits, on the push path (dry runs).
at_risk=$(awk -F, 'NR > 1 && $2 >= 0.5' "$W/art/$V/portraits.csv" | wc -l)
out=$($QM push --data "$W/bank" --artifacts "$W/art" --audience "churn_risk >= 0.5" --dry-run --out "$W/p.csv" 2>&1)
aud=$(printf '%s\n' "$out" | sed -n 's/^ *audience (customers) *\([0-9]*\).*/\1/p' | head -1)
[ "${aud:-x}" = "$at_risk" ] && ok "audience churn_risk >= 0.5: $aud customers, as portraits.csv says" ||
  bad "audience $aud, portraits.csv $at_risk: $(printf '%s' "$out" | head -5)"
declining=$(awk -F, 'NR > 1 && $3 == "declining"' "$W/art/$V/portraits.csv" | wc -l)
out=$($QM push --data "$W/bank" --artifacts "$W/art" --audience "lifecycle = declining" --dry-run --out "$W/p.csv" 2>&1)
aud=$(printf '%s\n' "$out" | sed -n 's/^ *audience (customers) *\([0-9]*\).*/\1/p' | head -1)
[ "${aud:-x}" = "$declining" ] && ok "audience lifecycle = declining: $aud" || bad "declining $aud vs $declining"
CAT=$(awk -F, 'NR > 1 && $6 != "" { print $6; exit }' "$W/art/$V/portraits.csv")
interested=$(awk -F, -v c="$CAT" 'NR > 1 && ($6 == c || $7 == c || $8 == c)' "$W/art/$V/portraits.csv" | wc -l)
out=$($QM push --data "$W/bank" --artifacts "$W/art" --audience "interest:$CAT" --dry-run --out "$W/p.csv" 2>&1)
aud=$(printf '%s\n' "$out" | sed -n 's/^ *audience (customers) *\([0-9]*\).*/\1/p' | head -1)
[ "${aud:-x}" = "$interested" ] && ok "audience interest:$CAT: $aud" || bad "interest $aud vs $interested"
expect_fail "a misspelt portrait field is refused, naming the known ones" "unknown field 'churn_rsk'" \
  $QM push --data "$W/bank" --artifacts "$W/art" --audience "churn_rsk >= 0.5" --dry-run --out "$W/p.csv"
expect_fail "an unknown interest category is refused" "unknown category 'astrology'" \
  $QM push --data "$W/bank" --artifacts "$W/art" --audience "interest:astrology" --dry-run --out "$W/p.csv"
# A retention campaign over them is accepted (checked against the bank and the version).
cat >"$W/retain.json" <<EOF
{"id": "retain", "channel": "wechat_push", "audience": "churn_risk >= 0.5 and lifecycle != dormant",
 "holdout": 0.2, "schedule": {"kind": "once", "at": "2030-01-01T09:30"}}
EOF
out=$($QM campaign create --data "$W/bank" --artifacts "$W/art" --file "$W/retain.json" --operator alice 2>&1)
printf '%s' "$out" | grep -q "draft" && ok "a retention campaign over churn_risk and lifecycle is accepted" ||
  bad "retention campaign: $out"
finish "portraits_test"
