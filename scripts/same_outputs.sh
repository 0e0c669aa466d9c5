#!/usr/bin/env bash
# Checks that two builds of qianmian serve the same pages and push the same sends: generates a
# small bank, trains one version with OLD, then runs `recommend` (app_home and wechat_push, 1,500
# customers and two unknown ones) and `push` (a dry run, a real run and a second run eight hours
# later) with each binary on the same inputs and compares the CSVs byte for byte.
# Usage: scripts/same_outputs.sh OLD_QIANMIAN NEW_QIANMIAN [WORKDIR]   (exit 1 on a difference)
set -euo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2"); W=${3:-/tmp/qm_same_outputs}
export QM_PROGRESS=0
mkdir -p "$W"
if [ ! -f "$W/art/CURRENT" ]; then
  rm -rf "$W/bank" "$W/art"
  "$OLD" generate --out "$W/bank" --customers 3000 --products 60 --contents 400 --days 20 --seed 9 >/dev/null
  "$OLD" train --data "$W/bank" --artifacts "$W/art" >"$W/train.log" 2>&1
  awk -F, 'NR > 1 && NR <= 1501 {print $1}' "$W/bank/customers.csv" >"$W/customers.txt"
  printf 'unknown_1\nunknown_2\n' >>"$W/customers.txt"
fi
run() {  # BINARY OUT
  local B=$1 O=$2 NOW=2026-11-01T12:00:00+08:00
  mkdir -p "$O"
  rm -rf "$W/bank/store"
  "$B" recommend --artifacts "$W/art" --data "$W/bank" --customers "$W/customers.txt" --channel app_home --count 10 --out "$O/rec_home.csv" --now $NOW >/dev/null 2>&1
  rm -rf "$W/bank/store"
  "$B" recommend --artifacts "$W/art" --data "$W/bank" --customers "$W/customers.txt" --channel wechat_push --count 3 --out "$O/rec_push.csv" --now $NOW >/dev/null 2>&1
  rm -rf "$W/bank/store"
  "$B" push --artifacts "$W/art" --data "$W/bank" --audience all --dry-run --per-customer 2 --out "$O/push_dry.csv" --now $NOW >/dev/null 2>&1
  rm -rf "$W/bank/store"
  "$B" push --artifacts "$W/art" --data "$W/bank" --audience all --run-id r1 --out "$O/push_1.csv" --now $NOW >/dev/null 2>&1
  "$B" push --artifacts "$W/art" --data "$W/bank" --audience all --run-id r2 --out "$O/push_2.csv" --now 2026-11-01T20:00:00+08:00 >/dev/null 2>&1
  rm -rf "$W/bank/store"
}
run "$OLD" "$W/old"
run "$NEW" "$W/new"
status=0
for f in rec_home rec_push push_dry push_1 push_2; do
  if cmp -s "$W/old/$f.csv" "$W/new/$f.csv"; then
    echo "same       $f.csv ($(wc -l <"$W/old/$f.csv") lines)"
  else
    echo "DIFFERENT  $f.csv"; status=1
  fi
done
exit $status
