#!/usr/bin/env bash
# Black-box test of issue 16's headline: `eval`'s served figure is what `recommend` serves.
# Trains a version (refit off, so that `eval` evaluates it afresh), lets `eval` report the served
# Recall@20 and NDCG@20, then computes them independently: `recommend` on the bank without its
# held-out events (written by this test) for every customer with a held-out target, at the start
# of the held-out period, scored in Python against the held-out targets. Both must agree to
# +-0.005. Also: a refit version is not evaluated in-sample.
# Usage: served_eval_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: served_eval_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"

$QM generate --out "$W/bank" --customers 1500 --products 40 --contents 240 --days 20 --seed 21 >"$W/gen.txt" 2>&1 ||
  { bad "generate: $(tail -3 "$W/gen.txt")"; exit 1; }
cat >"$W/noref.toml" <<'TOML'
[training]
refit = false
[training.two_tower]
epochs = 1
[training.ranker]
epochs = 1
TOML
$QM train --data "$W/bank" --artifacts "$W/art" --config "$W/noref.toml" >"$W/train.txt" 2>&1 ||
  { bad "train: $(tail -5 "$W/train.txt")"; exit 1; }
$QM eval --data "$W/bank" --artifacts "$W/art" --config "$W/noref.toml" --no-baselines --pages "$W/pages.csv" \
  >"$W/eval.txt" 2>&1 || { bad "eval: $(tail -5 "$W/eval.txt")"; exit 1; }
grep -q "^served" "$W/eval.txt" && ok "eval reports the served pages first" || bad "eval has no served row"

# The independent computation: the bank as it was at the start of the held-out period, served
# by `recommend`, scored here.
python3 - "$W" <<'PY' >"$W/prep.txt" 2>&1 || { bad "preparing: $(tail -3 "$W/prep.txt")"; exit 1; }
import csv, json, os, sys
w = sys.argv[1]
start = json.load(open(f"{w}/bank/truth/oracle.json"))["holdout_start_ms"]
os.makedirs(f"{w}/then", exist_ok=True)
for f in ("customers.csv", "items.csv"):
    open(f"{w}/then/{f}", "w").write(open(f"{w}/bank/{f}").read())
positive = {"click", "convert", "push_open"}
seen, later = {}, {}
with open(f"{w}/bank/events.csv") as src, open(f"{w}/then/events.csv", "w", newline="") as dst:
    r = csv.DictReader(src)
    out = csv.DictWriter(dst, fieldnames=r.fieldnames)
    out.writeheader()
    for e in r:
        ts = int(e["ts"])
        if ts < start:
            out.writerow(e)
            if e["type"] in positive:
                seen.setdefault(e["customer_id"], set()).add(e["item_id"])
        elif e["type"] in positive:
            later.setdefault(e["customer_id"], set()).add(e["item_id"])
targets = {c: items - seen.get(c, set()) for c, items in later.items()}
targets = {c: t for c, t in targets.items() if t}
json.dump({c: sorted(t) for c, t in targets.items()}, open(f"{w}/targets.json", "w"))
open(f"{w}/customers.txt", "w").write("".join(c + "\n" for c in sorted(targets)))
open(f"{w}/now.txt", "w").write(str(start))
PY
$QM recommend --data "$W/then" --artifacts "$W/art" --customers "$W/customers.txt" --channel app_home --count 20 \
  --now "$(cat "$W/now.txt")" --out "$W/rec.csv" >"$W/rec.txt" 2>&1 || { bad "recommend: $(tail -3 "$W/rec.txt")"; exit 1; }
python3 - "$W" <<'PY' >"$W/check.txt" 2>&1
import csv, json, math, sys
w = sys.argv[1]
targets = json.load(open(f"{w}/targets.json"))
pages = {}
for row in csv.DictReader(open(f"{w}/rec.csv")):
    pages.setdefault(row["customer_id"], []).append((int(row["rank"]), row["item_id"]))
recall = ndcg = 0.0
for c, t in targets.items():
    page = [i for _, i in sorted(pages.get(c, []))][:20]
    hits = [p for p, i in enumerate(page) if i in t]
    recall += len(hits) / len(t)
    ndcg += sum(1 / math.log2(p + 2) for p in hits) / sum(1 / math.log2(p + 2) for p in range(min(len(t), 20)))
n = len(targets)
ours = {"recall@20": recall / n, "ndcg@20": ndcg / n}
cols, served = None, None
for line in open(f"{w}/eval.txt"):
    f = line.split()
    if f and f[0] == "system": cols = f[1:]
    if f and f[0] == "served" and served is None: served = dict(zip(cols, map(float, f[1:])))  # the table's row
for k, v in ours.items():
    print(f"{k}: eval {served[k]:.4f}, from recommend {v:.4f} over {n} customers")
    if abs(served[k] - v) > 0.005: sys.exit(1)
PY
if [ $? -eq 0 ]; then
  ok "eval's served figures equal those computed from recommend's pages ($(tr '\n' ';' <"$W/check.txt"))"
else
  bad "served figures disagree: $(cat "$W/check.txt")"
fi

# A version fit again on every event is not evaluated on events it learned from.
cat >"$W/refit.toml" <<'TOML'
[training.two_tower]
epochs = 1
[training.ranker]
epochs = 1
TOML
$QM train --data "$W/bank" --artifacts "$W/art2" --config "$W/refit.toml" >"$W/train2.txt" 2>&1 ||
  { bad "train with refit: $(tail -5 "$W/train2.txt")"; exit 1; }
v=$(cat "$W/art2/CURRENT")
grep -q '"stats.refit": *1' "$W/art2/$v/MANIFEST.json" && ok "the manifest records the refit" || bad "no stats.refit in the manifest"
$QM eval --data "$W/bank" --artifacts "$W/art2" --config "$W/refit.toml" --no-baselines >"$W/eval2.txt" 2>&1 &&
  grep -q "^note: version .* was fit again on every event" "$W/eval2.txt" && grep -q "^served" "$W/eval2.txt" &&
  ok "eval of a refit version reports its recorded split-fit figures, and says so" ||
  bad "eval of a refit version: $(head -3 "$W/eval2.txt")"

# evaluate = false (what `simulate` trains with): one fit, on every event, and no figures.
printf '[training]\nevaluate = false\n' | cat - "$W/refit.toml" >"$W/noeval.toml"
$QM train --data "$W/bank" --artifacts "$W/art3" --config "$W/noeval.toml" >"$W/train3.txt" 2>&1 ||
  { bad "train with evaluate = false: $(tail -5 "$W/train3.txt")"; exit 1; }
m="$W/art3/$(cat "$W/art3/CURRENT")/MANIFEST.json"
if python3 - "$m" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
assert m["stats.evaluated"] == 0 and m["stats.refit"] == 1, m.get("stats.evaluated")
assert m["stats.data.fit_events"] == m["stats.data.events"] > 0, (m["stats.data.fit_events"], m["stats.data.events"])
assert not any(k.startswith("served.") for k in m), [k for k in m if k.startswith("served.")]
assert not any(k.startswith("stats.refit.") for k in m)  # fit once, not twice
PY
then ok "evaluate = false: one fit on all events, no figures in the manifest"; else bad "evaluate = false manifest: $m"; fi
$QM eval --data "$W/bank" --artifacts "$W/art3" --config "$W/noeval.toml" --no-baselines >"$W/eval3.txt" 2>&1 &&
  grep -q "^note: version .* without an evaluation" "$W/eval3.txt" && ! grep -q "^served" "$W/eval3.txt" &&
  ok "eval of an unevaluated version says it has no figures" || bad "eval of an unevaluated version: $(head -3 "$W/eval3.txt")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
