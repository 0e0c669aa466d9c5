#!/usr/bin/env bash
# Black-box fault test of `qianmian push` (issue 20): one run killed with SIGKILL at ten points
# (while it starts, then at the first progress line past 9%, 18%, ... 81%, each kill on the run
# resumed after the previous one), then completed. The list it
# writes equals an uninterrupted run's on the same store, no customer is sent twice, and the event
# store holds exactly one push_sent per send of the run (nothing counted twice).
# Usage: push_kill_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: push_kill_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"

quick_bank 3000 40 300 20 11
NOW=$(tail -n +2 "$W/bank/events.csv" | cut -d, -f1 | sort -n | tail -1)
NOW=$((NOW + 12 * 3600 * 1000))
P=(--data "$W/bank" --artifacts "$W/art" --now "$NOW")
# Seed the store (a dry run reserves nothing) and keep a copy for the uninterrupted reference.
$QM push "${P[@]}" --dry-run --audience all --out "$W/dry.csv" >/dev/null 2>&1 || { bad "dry run"; exit 1; }
cp -r "$W/bank/store" "$W/store.ref"

kills=0
for pct in start 9 18 27 36 45 54 63 72 81; do
  env -u QM_PROGRESS $QM push "${P[@]}" --run-id faults --audience all --out "$W/killed.csv" --threads 1 --batch 1 \
    >"$W/run-$pct.txt" 2>"$W/run-$pct.err" &
  pid=$!
  if [ "$pct" = start ]; then
    sleep 0.3
  else
    for _ in $(seq 1 12000); do  # up to 120 s: until a progress line (one per decile) shows >= pct%
      p=$(grep -oE '^push \[.*\] +[0-9]+%' "$W/run-$pct.err" 2>/dev/null | tail -1 | grep -oE '[0-9]+%$' | tr -d %)
      [ -n "$p" ] && [ "$p" -ge "$pct" ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.01  # a resumed run is short: a coarser poll can miss it (a CI run did)
    done
  fi
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  [ -e "$W/killed.csv" ] && break  # it finished before the kill
  kills=$((kills + 1))
done
[ "$kills" -eq 10 ] && ok "the run was killed at 10 points, none after it finished" ||
  bad "the run finished before kill $((kills + 1))"
[ ! -e "$W/killed.csv" ] && ok "no killed run wrote a list" || bad "a killed run left a list"
if $QM push "${P[@]}" --run-id faults --audience all --out "$W/final.csv" >"$W/final.txt" 2>"$W/final.err"; then
  ok "the run completes after the tenth kill (replayed $(replayed "$W/final.txt") of $(sent "$W/final.txt") sends)"
else
  bad "final resume failed: $(tail -3 "$W/final.err")"
fi
r=$(replayed "$W/final.txt")
[ -n "$r" ] && [ "$r" -gt 0 ] && [ "$r" -lt "$(sent "$W/final.txt")" ] &&
  ok "the sends reserved before the kills were replayed, the rest sent once" || bad "replayed '$r' of $(sent "$W/final.txt")"
dups=$(tail -n +2 "$W/final.csv" | cut -d, -f1 | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] && ok "no customer twice in the list" || bad "$dups customers twice"
printf '[store]\npath = "%s"\n' "$W/store.ref" >"$W/ref.toml"
$QM push "${P[@]}" --config "$W/ref.toml" --run-id faults --audience all --out "$W/reference.csv" >"$W/ref.txt" 2>&1 ||
  bad "reference run failed: $(tail -3 "$W/ref.txt")"
if [ -s "$W/reference.csv" ] && diff <(sends "$W/reference.csv") <(sends "$W/final.csv") >/dev/null; then
  ok "ten kills + resume = one uninterrupted run ($(sent "$W/ref.txt") sends)"
else
  bad "ten kills + resume differ from an uninterrupted run"
fi
$QM export events --data "$W/bank" --from 0 --to $((NOW + 86400000)) --out "$W/events.csv" >/dev/null 2>&1
n=$(tail -n +2 "$W/events.csv" | awk -F, '$5 == "push_sent" && $7 == "faults"' | wc -l)
u=$(tail -n +2 "$W/events.csv" | awk -F, '$5 == "push_sent" && $7 == "faults" { print $3 "," $4 }' | sort -u | wc -l)
[ "$n" = "$(sent "$W/final.txt")" ] && [ "$u" = "$n" ] &&
  ok "the store counted each of the $n sends exactly once" || bad "store: $n push_sent events ($u distinct) for $(sent "$W/final.txt") sends"
finish "push kills"
