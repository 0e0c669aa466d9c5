#!/usr/bin/env bash
# Black-box test of `qianmian push` (issue 7): a run killed with SIGKILL half-way resumes to the
# list an uninterrupted run writes, with no customer sent twice; a re-run re-emits the same list;
# a dry run reserves nothing; bad input fails with a one-line reason before anything is reserved;
# every send is in the decision log, which `qianmian export` writes as CSV.
# Usage: push_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: push_test.sh QIANMIAN}
source "$(dirname "$0")/lib.sh"

quick_bank 3000 40 300 20 5
NOW=$(tail -n +2 "$W/bank/events.csv" | cut -d, -f1 | sort -n | tail -1)
NOW=$((NOW + 12 * 3600 * 1000))  # half a day after the last event
P=(--data "$W/bank" --artifacts "$W/art" --now "$NOW")

# 1. A dry run reserves nothing (and seeds the store); its list is what the real run will send.
if $QM push "${P[@]}" --dry-run --audience all --out "$W/dry.csv" >"$W/dry.txt" 2>"$W/dry.err" &&
   grep -q "DRY RUN" "$W/dry.txt" && [ "$(sent "$W/dry.txt")" -gt 1000 ]; then
  ok "dry run lists $(sent "$W/dry.txt") sends"
else
  bad "dry run: $(tail -3 "$W/dry.err")"
fi
cp -r "$W/bank/store" "$W/store.ref"

# 2. Bad input fails with one line before anything is reserved.
expect_fail_one_line "unknown field in the audience points at it" "position 17: unknown field 'agee'" \
  $QM push "${P[@]}" --run-id bad --audience 'tier = mass and agee > 3' --out "$W/bad.csv"
expect_fail_one_line "a parse error points at its position" "position 13: expected ')'" \
  $QM push "${P[@]}" --run-id bad --audience '(tag:payroll' --out "$W/bad.csv"
expect_fail_one_line "unknown channel" "unknown channel 'fax'" \
  $QM push "${P[@]}" --run-id bad --audience all --channel fax --out "$W/bad.csv"
expect_fail_one_line "unwritable output" "cannot write --out" \
  $QM push "${P[@]}" --run-id bad --audience all --out "$W/no/such/dir/list.csv"
cp -r "$W/art" "$W/art.bad"
v=$(cat "$W/art.bad/CURRENT")
printf 'x' >> "$W/art.bad/$v/ranker.pt"
expect_fail_one_line "an artifact version failing verification is refused" "refused" \
  $QM push --data "$W/bank" --artifacts "$W/art.bad" --now "$NOW" --run-id bad --audience all --out "$W/bad.csv"
[ ! -e "$W/bad.csv" ] && ok "no list written on bad input" || bad "a list was written on bad input"
$QM push "${P[@]}" --dry-run --audience all --out "$W/dry2.csv" >/dev/null 2>&1
diff "$W/dry.csv" "$W/dry2.csv" >/dev/null && ok "bad input reserved nothing (the dry run is unchanged)" ||
  bad "the dry run changed after bad input"

# 3. A run killed with SIGKILL half-way, then resumed.
env -u QM_PROGRESS $QM push "${P[@]}" --run-id run-1 --audience all --out "$W/killed.csv" --threads 1 --batch 4 \
  >"$W/killed.txt" 2>"$W/killed.err" &
pid=$!
for _ in $(seq 1 600); do  # up to 60 s: until the progress bar passes 20%
  grep -qE '^push \[.*\] +([2-9][0-9])%' "$W/killed.err" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ ! -e "$W/killed.csv" ] && ok "a killed run wrote no list" || bad "a killed run left a list"
if $QM push "${P[@]}" --run-id run-1 --audience all --out "$W/resumed.csv" >"$W/resumed.txt" 2>"$W/resumed.err"; then
  ok "the killed run resumes"
else
  bad "resume failed: $(tail -3 "$W/resumed.err")"
fi
r=$(replayed "$W/resumed.txt")
[ -n "$r" ] && [ "$r" -gt 0 ] && [ "$r" -lt "$(sent "$W/resumed.txt")" ] &&
  ok "the resumed run replayed the $r sends reserved before the kill" ||
  bad "resumed run replayed '$r' of $(sent "$W/resumed.txt") (the kill came too early or too late?)"
dups=$(tail -n +2 "$W/resumed.csv" | cut -d, -f1 | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] && ok "no customer twice in the resumed list" || bad "$dups customers twice in the resumed list"

# The same run uninterrupted, on a copy of the store as it was before the run.
printf '[store]\npath = "%s"\n' "$W/store.ref" > "$W/ref.toml"
$QM push "${P[@]}" --config "$W/ref.toml" --run-id run-1 --audience all --out "$W/reference.csv" >"$W/ref.txt" 2>&1 ||
  bad "reference run failed: $(tail -3 "$W/ref.txt")"
if [ -s "$W/reference.csv" ] && diff <(sends "$W/reference.csv") <(sends "$W/resumed.csv") >/dev/null; then
  ok "killed + resumed = one uninterrupted run ($(sent "$W/ref.txt") sends)"
else
  bad "killed + resumed differs from an uninterrupted run"
fi
diff <(sends "$W/dry.csv") <(sends "$W/reference.csv") >/dev/null && ok "the dry run listed what the real run sent" ||
  bad "dry run and real run differ"

# 4. A re-run of the same run id sends nothing new and re-emits the same list.
$QM push "${P[@]}" --run-id run-1 --audience all --out "$W/again.csv" >"$W/again.txt" 2>&1
[ "$(replayed "$W/again.txt")" = "$(sent "$W/resumed.txt")" ] && diff "$W/resumed.csv" "$W/again.csv" >/dev/null &&
  ok "a re-run re-emits the same list, every send replayed" || bad "re-run: $(grep -E 'replayed|sends' "$W/again.txt")"
# A new run id within the cooldown sends nothing to anyone already sent.
$QM push "${P[@]}" --run-id run-2 --audience all --out "$W/second.csv" --summary "$W/second.sum" --plot "$W/second.png" \
  >"$W/second.txt" 2>&1
[ "$(sent "$W/second.txt")" = "0" ] && grep -q "cooldown\|cap\." "$W/second.txt" &&
  ok "a second run inside the cooldown sends nothing and says which rule" || bad "second run: $(cat "$W/second.txt" | head -12)"
head -c 8 "$W/second.png" | grep -q PNG && ok "the pressure plot is a PNG" || bad "no PNG"
cmp -s "$W/second.txt" "$W/second.sum" && ok "--summary holds the printed table" || bad "--summary differs from the table"

# 5. The decision log (issue 17): every send of the killed + resumed run is a push_send decision,
# exported as CSV with `qianmian export`; bad input fails with one line.
E=(--data "$W/bank" --from 0 --to $((NOW + 86400000)))
if $QM export decisions "${E[@]}" --out "$W/decisions.csv" >"$W/export.txt" 2>&1; then
  n=$(tail -n +2 "$W/decisions.csv" | awk -F, '$3 == "push_send" && $4 == "run-1"' | wc -l)
  [ "$n" = "$(sent "$W/resumed.txt")" ] && ok "export decisions: one push_send row per send of the resumed run ($n)" ||
    bad "export decisions: $n push_send rows of run-1, $(sent "$W/resumed.txt") sends"
  head -1 "$W/decisions.csv" | grep -q '^ts_ms,time,kind,request_id,customer_id,channel,item_id,position,' &&
    ok "the decisions CSV has its header" || bad "decisions header: $(head -1 "$W/decisions.csv")"
else
  bad "export decisions failed: $(tail -2 "$W/export.txt")"
fi
$QM export events "${E[@]}" --out "$W/events.csv" >/dev/null 2>&1
n=$(tail -n +2 "$W/events.csv" | awk -F, '$5 == "push_sent" && $7 == "run-1"' | wc -l)
[ "$n" = "$(sent "$W/resumed.txt")" ] && ok "export events: the run's $n push_sent events" ||
  bad "export events: $n push_sent events of run-1"
expect_fail_one_line "export: a bad time" "--from: cannot parse time 'yesterday'" \
  $QM export decisions --data "$W/bank" --from yesterday --to 0 --out "$W/x.csv"
expect_fail_one_line "export: from after to" "is after --to" \
  $QM export decisions --data "$W/bank" --from 2026-12-04 --to 2026-12-03 --out "$W/x.csv"
expect_fail_one_line "export: an unwritable file" "cannot write" \
  $QM export events "${E[@]}" --out "$W/no/such/dir/x.csv"
[ ! -e "$W/x.csv" ] && ok "export wrote nothing on bad input" || bad "export wrote a file on bad input"

finish "push black-box"
