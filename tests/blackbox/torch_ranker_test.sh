#!/usr/bin/env bash
# Issue 22, "their own ranker, end to end": `export rank-rows` (.npy folder and CSV, the same
# rows), the PyTorch template python/examples/torch_ranker.py trained on them and exported as
# TorchScript (Debian's python3-torch), `import ranker` putting it into a new version (hashed in
# the manifest, refused when it does not accept the version's vocabularies or contract), and a
# server serving that version with the module's scores.
# Skipped (77) without python3-torch.
# Usage: torch_ranker_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: torch_ranker_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PYTHONPATH="$ROOT/python"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  [ -z "${QM_KEEP:-}" ] && rm -rf "$W"
}
trap cleanup EXIT
$PY -c 'import torch, numpy, zmq, msgpack' 2>/dev/null || { echo "python3-torch is not installed: skipped"; exit 77; }

# A small bank and a quick version fit on the split only (refit off), so that `eval` of the
# imported version scores the held-out rows afresh.
$QM generate --out "$W/bank" --customers 400 --products 20 --contents 80 --days 10 --seed 5 >"$W/gen.txt" 2>&1 ||
  { bad "generate: $(tail -3 "$W/gen.txt")"; exit 1; }
printf '[training]\nrefit = false\nmax_eval_customers = 100\n[training.two_tower]\nepochs = 1\n[training.ranker]\nepochs = 1\n' \
  >"$W/fast.toml"
$QM train --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" >"$W/train.txt" 2>&1 ||
  { bad "train: $(tail -5 "$W/train.txt")"; exit 1; }
V1=$(cat "$W/art/CURRENT")

# Rows: a folder of .npy files and a CSV hold the same rows, within the version's vocabularies.
out=$($QM export rank-rows --data "$W/bank" --artifacts "$W/art" --out "$W/rows" 2>&1) &&
  $QM export rank-rows --data "$W/bank" --artifacts "$W/art" --version "$V1" --out "$W/rows.csv" >/dev/null 2>&1 &&
  ok "export rank-rows writes .npy and CSV: $out" || bad "export rank-rows: $out"
check=$($PY - "$W" "$V1" <<'PY' 2>&1
import json, sys
import numpy as np
from qianmian import data
w, version = sys.argv[1:]
npy, csv = data.read_rank_rows(f"{w}/rows"), data.read_rank_rows(f"{w}/rows.csv")
for name in ("cat", "bag", "labels", "weight", "held_out"):
    assert np.array_equal(npy[name], csv[name]), name
assert np.allclose(npy["dense"], csv["dense"], rtol=1e-6, atol=1e-6), "dense"
inputs = data.read_rank_inputs(f"{w}/art", version)
layout = npy["layout"]
assert layout["version"] == version
assert all(layout[k] == inputs[k] for k in ("C", "K", "B", "cat", "dense", "bag")), "layout != rank_inputs.json"
bounds = data.rank_layout(layout)
assert (npy["cat"] >= 0).all() and (npy["cat"] < bounds["cat_vocab"]).all(), "a cat id outside its vocabulary"
assert (npy["bag"] >= 0).all() and (npy["bag"] < bounds["bag_vocab"]).all(), "a bag id outside its vocabulary"
assert set(np.unique(npy["labels"])) <= {0.0, 1.0} and (npy["weight"] > 0).all()
assert set(np.unique(npy["held_out"])) == {0, 1}, "rows from both sides of the split"
# The rows are exposures of events.csv: as many as its impressions and push sends.
events = np.genfromtxt(f"{w}/bank/events.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
exposures = int(np.isin(events["type"], ["impression", "push_sent"]).sum())
assert layout["rows"] == exposures, (layout["rows"], exposures)
print(f"{layout['rows']} rows ({layout['held_out_rows']} held out), click rate {npy['labels'][:, 0].mean():.3f}")
PY
) && ok "npy and CSV rows agree, match rank_inputs.json, stay in the vocabularies: $check" || bad "rows: $check"
expect_fail_one_line "rank-rows of a missing version is refused" "v-nope" \
  $QM export rank-rows --data "$W/bank" --artifacts "$W/art" --version v-nope --out "$W/x"
expect_fail_one_line "rank-rows takes no time range" "no --from" \
  $QM export rank-rows --data "$W/bank" --artifacts "$W/art" --from 0 --out "$W/x"

# The PyTorch template trains on the rows and writes TorchScript.
summary=$($PY "$ROOT/python/examples/torch_ranker.py" "$W/rows" "$W/model.pt" --epochs 3 2>"$W/torch.txt")
auc=$(printf '%s' "$summary" | $PY -c 'import json, sys; print(json.load(sys.stdin)["held_out_click_auc"])' 2>/dev/null)
if [ -f "$W/model.pt" ] && $PY -c "import sys; sys.exit(not float('$auc') > 0.55)" 2>/dev/null; then
  ok "the template trains and exports TorchScript (held-out click AUC $auc)"
else
  bad "torch_ranker.py: $summary $(tail -3 "$W/torch.txt")"
fi

# Import: a new version holding the module, hashed in its manifest.
out=$($QM import ranker "$W/model.pt" --artifacts "$W/art" 2>&1)
V2=$(cat "$W/art/CURRENT")
check=$($PY - "$W" "$V1" "$V2" <<'PY' 2>&1
import hashlib, json, sys
from qianmian import data
w, v1, v2 = sys.argv[1:]
assert v2 != v1, "CURRENT did not move"
m = data.read_manifest(f"{w}/art", v2)
files = {f["path"]: f["sha256"] for f in m["files"]}
assert files["ranker.pt"] == hashlib.sha256(open(f"{w}/model.pt", "rb").read()).hexdigest(), "ranker.pt hash"
assert json.load(open(f"{w}/art/{v2}/ranker.pt.json"))["format"] == "qianmian.torchscript/1"
assert m["metrics"].get("stats.ranker.torchscript") == 1
base = data.read_manifest(f"{w}/art", v1)["files"]
same = [f["path"] for f in base if f["path"] not in ("ranker.pt", "ranker.pt.json", "bundle.json")]
assert all(files[p] == f["sha256"] for p in same for f in base if f["path"] == p), "other files differ"
assert data.verify_version(f"{w}/art", v2) == []
print(v2)
PY
) && ok "import ranker: new version $check (CURRENT) with the module hashed in its manifest" ||
  bad "import ranker: $out / $check"

# `eval` of the imported version scores the held-out rows with the module: the same AUC as the
# template computed in Python on the exported held-out rows (the same inputs, the same module).
ev=$($QM eval --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" --no-baselines 2>&1)
eval_auc=$(printf '%s\n' "$ev" | sed -n 's/^ranker\.auc  *\([0-9.]*\)$/\1/p')
if [ -n "$eval_auc" ] && $PY -c "import sys; sys.exit(not abs(float('$eval_auc') - float('$auc')) < 1e-3)"; then
  ok "eval of the imported version: ranker.auc $eval_auc, as the template's $auc on the exported held-out rows"
else
  bad "eval ranker.auc '$eval_auc' vs the template's '$auc': $(printf '%s' "$ev" | tail -3)"
fi

# Refused modules: CURRENT stays. (torch.jit.script reads the classes' source: a file, not stdin.)
cat >"$W/bad_models.py" <<'PY'
import sys
import torch
from qianmian import data
w = sys.argv[1]
layout = data.rank_layout(data.read_rank_inputs(f"{w}/art"))
C = len(layout["cat_vocab"])

class Small(torch.nn.Module):  # one id short of the item vocabulary
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(int(layout["cat_vocab"].max()) - 1, 1)
    def forward(self, cat: torch.Tensor, dense: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.emb(cat).sum(1)).repeat(1, 2)

class ThreeOutputs(torch.nn.Module):
    def forward(self, cat: torch.Tensor, dense: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        return torch.zeros(cat.size(0), 3)

class Constant(torch.nn.Module):  # p_click 0.25, p_convert 0.125 for every row
    def forward(self, cat: torch.Tensor, dense: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[0.25, 0.125]]).repeat(cat.size(0), 1)

for name, cls in (("small", Small), ("three", ThreeOutputs), ("constant", Constant)):
    torch.jit.script(cls()).save(f"{w}/{name}.pt")
PY
$PY "$W/bad_models.py" "$W" >"$W/bad_models.txt" 2>&1 || bad "writing the bad modules: $(tail -3 "$W/bad_models.txt")"
printf 'not torchscript' >"$W/junk.pt"
expect_fail_one_line "a module smaller than the vocabularies is refused" "does not accept the version's vocabularies" \
  $QM import ranker "$W/small.pt" --artifacts "$W/art"
expect_fail_one_line "a module breaking the output contract is refused" "does not follow the input contract" \
  $QM import ranker "$W/three.pt" --artifacts "$W/art"
expect_fail_one_line "a file that is not TorchScript is refused" "not a loadable TorchScript module" \
  $QM import ranker "$W/junk.pt" --artifacts "$W/art"
expect_fail_one_line "a missing file is refused" "no file" $QM import ranker "$W/none.pt" --artifacts "$W/art"
[ "$(cat "$W/art/CURRENT")" = "$V2" ] && ok "refused modules leave CURRENT" || bad "CURRENT moved on a refusal"

# Serving: the imported version serves pages, and a version with the constant module scores
# every item with its constants.
ADDR="ipc://$W/s.sock"
# Every request must be answered on a loaded CI machine: no shedding by queue delay.
printf '[server]\ncodel_target = 0\napp_home_deadline = 0\n' >"$W/serve.toml"
$QM serve --data "$W/bank" --artifacts "$W/art" --config "$W/serve.toml" --bind "$ADDR" >"$W/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 240); do
  $QM client --connect "$ADDR" --timeout 500 health >/dev/null 2>&1 && break
  sleep 0.25
done
first_customer() { sed -n 2p "$W/bank/customers.csv" | cut -d, -f1; }
page=$($QM client --connect "$ADDR" recommend "{\"customer_id\":\"$(first_customer)\",\"channel\":\"app_home\",\"count\":4}")
if printf '%s' "$page" | grep -q "\"model_version\":\"$V2\"" && [ "$(printf '%s' "$page" | grep -o '"item_id"' | wc -l)" -eq 4 ]; then
  ok "serve: the trained module's version serves a page of four"
else
  bad "serving $V2: $page $(tail -3 "$W/serve.log")"
fi
$QM import ranker "$W/constant.pt" --artifacts "$W/art" >"$W/import3.txt" 2>&1 || bad "import constant: $(cat "$W/import3.txt")"
V3=$(cat "$W/art/CURRENT")
check=$($PY - "$ADDR" "$V3" "$W" <<'PY' 2>&1
import csv, sys
import qianmian
addr, v3, w = sys.argv[1:]
customer = next(csv.DictReader(open(f"{w}/bank/customers.csv")))["customer_id"]
items = [r["item_id"] for r in csv.DictReader(open(f"{w}/bank/items.csv"))]
with qianmian.Client(addr, timeout_ms=20000) as c:
    assert c.reload(v3)["model_version"] == v3
    scores = c.score(customer, "app_home", items)["scores"]
    eligible = [s for s in scores if s["eligible"]]
    assert eligible and all((s["p_click"], s["p_convert"]) == (0.25, 0.125) for s in eligible), eligible[:3]
print(f"{len(eligible)} eligible items scored 0.25 / 0.125")
PY
) && ok "serve: a version with a constant module scores every eligible item with its constants: $check" ||
  bad "serving the constant module: $check"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=

finish "torch ranker black-box"
