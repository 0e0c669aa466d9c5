#!/usr/bin/env bash
# The demo: generate a bank and look at it. It grows with every issue (train, serve,
# recommend, feedback, push, retrain + reload). Prints what it does; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "Install dependencies and build"
bash scripts/build.sh qianmian
QM=build/tools/qianmian
OUT=${QM_DEMO_DIR:-out/demo}
mkdir -p "$OUT"

step "Generate a synthetic bank: 20,000 customers, 200 products, 2,000 content items, 60 days"
$QM generate --out "$OUT/bank" --customers 20000 --products 200 --contents 2000 --days 60 --seed 7

step "Load it back and summarise (every row is checked against SPEC §2)"
$QM inspect --data "$OUT/bank"

step "The planted truth: best achievable Recall@K on the held-out days vs. popularity"
cat "$OUT/bank/truth/oracle.json"
echo

if [ -d ../shared/data/ml-100k ]; then
  step "Import the public MovieLens-100k benchmark through the same loader"
  $QM import movielens ../shared/data/ml-100k --out "$OUT/ml100k"
  $QM inspect --data "$OUT/ml100k"
fi
step "Done. Files are in $OUT/"
