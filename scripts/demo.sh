#!/usr/bin/env bash
# The demo: generate a bank, load it, train, evaluate; the same on public MovieLens data.
# It grows with the engine (serve, recommend, feedback, push, retrain + reload come with the
# server and push issues). Prints what it does as it goes; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "Install dependencies and build"
bash scripts/build.sh qianmian
QM=build/tools/qianmian
OUT=${QM_DEMO_DIR:-out/demo}
export QM_PROGRESS=${QM_PROGRESS:-1}
rm -rf "$OUT"
mkdir -p "$OUT"

step "Generate a synthetic bank: 20,000 customers, 200 products, 2,000 content items, 60 days"
$QM generate --out "$OUT/bank" --customers 20000 --products 200 --contents 2000 --days 60 --seed 7

step "Load it back and summarise it (every row is checked against SPEC §2)"
$QM inspect --data "$OUT/bank"

step "Train retrieval embeddings and the ranking model; publish a verified artifact version"
$QM train --data "$OUT/bank" --artifacts "$OUT/artifacts"
echo "CURRENT -> $(cat "$OUT/artifacts/CURRENT")"
echo "manifest: $(ls "$OUT/artifacts/$(cat "$OUT/artifacts/CURRENT")")"

step "Evaluate the published version beside popularity, item-kNN and the planted oracle"
$QM eval --data "$OUT/bank" --artifacts "$OUT/artifacts"

if [ -d ../shared/data/ml-100k ]; then
  step "Public benchmark: MovieLens-100k through the same loader and trainer (per-user 80/20 split)"
  $QM import movielens ../shared/data/ml-100k --out "$OUT/ml100k"
  printf '[training]\nsplit = "per_customer"\n' > "$OUT/ml100k.toml"
  $QM train --data "$OUT/ml100k" --artifacts "$OUT/ml-artifacts" --config "$OUT/ml100k.toml"
fi
step "Done. Files are in $OUT/"
