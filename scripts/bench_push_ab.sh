#!/usr/bin/env bash
# scripts/bench_push_ab.sh DATA ART NOW ROUNDS LABEL=BIN[:ENV=VALUE,...] ... (issue 21): push runs
# of one or more configurations back to back, alternating A, B, ..., A, B, ... for ROUNDS rounds,
# because this host's speed drifts within minutes. Each run is `qianmian push --audience all
# --now NOW` over DATA (customers.csv, items.csv, events.csv) and the artifact root ART, from an
# empty event store, under /usr/bin/time. ENV settings (e.g.
# QIANMIAN_SERVING_PUSH_EXACT_MAX_ITEMS=0) apply to that configuration only. Prints one line per
# run: the summary's choose + reserve time, the whole command's wall time and its peak RSS; the
# send lists stay in OUT (default ./push_ab) as LABEL-ROUND.csv for scripts/push_send_value.py.
# Not in CI; records go to docs/BENCHMARKS.md.
set -u
DATA=$1; ART=$2; NOW=$3; ROUNDS=$4; shift 4
OUT=${OUT:-push_ab}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/qm-push-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/data"
for f in customers.csv items.csv events.csv; do ln -s "$(readlink -f "$DATA/$f")" "$WORK/data/$f"; done

run() {  # run LABEL BIN ENV ROUND
  local label=$1 bin=$2 env=$3 round=$4 t
  rm -rf "$WORK/data/store"
  local -a envs=()
  [ -n "$env" ] && IFS=, read -r -a envs <<<"$env"
  env QM_PROGRESS=0 "${envs[@]}" /usr/bin/time -v "$bin" push --data "$WORK/data" --artifacts "$ART" \
    --run-id "ab-$label-$round" --audience all --now "$NOW" --out "$OUT/$label-$round.csv" \
    --summary "$OUT/$label-$round.txt" >"$OUT/$label-$round.log" 2>&1 || { echo "$label: push failed"; tail -3 "$OUT/$label-$round.log"; return; }
  t=$(grep -i "choose + reserve" "$OUT/$label-$round.txt" | head -1)
  printf '%s round %s: %s; wall %s; peak RSS %s KB\n' "$label" "$round" "$t" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$OUT/$label-$round.log")" \
    "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/$label-$round.log")"
}

for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    label=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; env=""
    [ "$rest" != "$bin" ] && env=${rest#*:}
    run "$label" "$bin" "$env" "$r"
  done
done
