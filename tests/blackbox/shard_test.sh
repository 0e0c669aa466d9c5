#!/usr/bin/env bash
# Black-box test of sharded batch work (issue 21): three `push --shard K/3` processes run at
# once against one shared Redis event store under one run id; together they send exactly what
# one unsharded run sends (on a store of its own), no customer is in two shards, and re-running
# a shard, or the whole run by mistake, sends nothing twice (the run id stays the reservation
# key). `recommend --shard K/3` outputs add up to the unsharded output. A bad --shard is refused
# with a one-line reason. Starts its own redis-server on a loopback port and stops it.
# Usage: shard_test.sh QIANMIAN_BINARY   (exit 77 = skipped: redis-server is not installed)
set -u
QM=${1:?usage: shard_test.sh QIANMIAN}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "redis-server or redis-cli is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
private_redis
ok "redis-server on 127.0.0.1:$REDIS_PORT"

quick_bank 1500 30 200 14 21
NOW=$(tail -n +2 "$W/bank/events.csv" | cut -d, -f1 | sort -n | tail -1)
NOW=$((NOW + 12 * 3600 * 1000))
for prefix in whole sharded; do
  printf '[store]\nbackend = "redis"\nredis_port = %s\nredis_prefix = "%s:"\n' "$REDIS_PORT" "$prefix" \
    >"$W/$prefix.toml"
done
P=(--data "$W/bank" --artifacts "$W/art" --now "$NOW" --run-id weekly-1 --audience all)

# One unsharded run on a store of its own: the reference.
$QM push --config "$W/whole.toml" "${P[@]}" --out "$W/whole.csv" --summary "$W/whole.txt" >/dev/null 2>"$W/whole.err" ||
  { bad "unsharded push: $(tail -2 "$W/whole.err")"; exit 1; }
[ "$(sent "$W/whole.txt")" -gt 100 ] && ok "the unsharded run sent $(sent "$W/whole.txt")" ||
  bad "the unsharded run sent only $(sent "$W/whole.txt")"

# Three shards at once on the shared store, one run id.
pids=()
for k in 1 2 3; do
  $QM push --config "$W/sharded.toml" "${P[@]}" --shard "$k/3" --out "$W/s$k.csv" --summary "$W/s$k.txt" \
    >/dev/null 2>"$W/s$k.err" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] && ok "three concurrent shards finished" || { bad "$failed shards failed: $(cat "$W"/s*.err | tail -3)"; exit 1; }
for k in 1 2 3; do
  grep -q "shard of the audience *$k/3" "$W/s$k.txt" && ok "shard $k's summary names its shard ($(sent "$W/s$k.txt") sends)" ||
    bad "shard $k's summary: $(head -3 "$W/s$k.txt")"
done
cat "$W"/s[123].csv | grep -v '^customer_id,' | cut -d, -f1-3 | sort >"$W/union.txt"
sends "$W/whole.csv" >"$W/whole.txt.rows"
if cmp -s "$W/union.txt" "$W/whole.txt.rows"; then
  ok "the three shards' send lists add up to the unsharded list ($(wc -l <"$W/union.txt") rows)"
else
  bad "the shards' union differs from the unsharded list: $(diff "$W/union.txt" "$W/whole.txt.rows" | head -4 | tr '\n' ' ')"
fi
audience=0
for k in 1 2 3; do
  a=$(sed -n 's/^ *audience (customers) *\([0-9]*\)$/\1/p' "$W/s$k.txt")
  audience=$((audience + a))
done
whole_audience=$(sed -n 's/^ *audience (customers) *\([0-9]*\)$/\1/p' "$W/whole.txt")
[ "$audience" -eq "$whole_audience" ] && ok "the shards' audiences add up to the whole audience ($audience)" ||
  bad "shard audiences add up to $audience, the whole audience is $whole_audience"
twice=$(for k in 1 2 3; do tail -n +2 "$W/s$k.csv" | cut -d, -f1 | sort -u; done | sort | uniq -d | wc -l)
[ "$twice" -eq 0 ] && ok "no customer is in two shards' lists" || bad "$twice customers are in two shards' lists"

# Shard 2 again: everything replayed, nothing new reserved.
$QM push --config "$W/sharded.toml" "${P[@]}" --shard 2/3 --out "$W/s2b.csv" --summary "$W/s2b.txt" >/dev/null 2>&1
if [ "$(replayed "$W/s2b.txt")" -gt 0 ] && cmp -s <(sends "$W/s2.csv") <(sends "$W/s2b.csv"); then
  ok "re-running shard 2/3 re-emits its list ($(replayed "$W/s2b.txt") customers replayed)"
else
  bad "shard 2/3 re-run: replayed $(replayed "$W/s2b.txt"), lists $(cmp "$W/s2.csv" "$W/s2b.csv" 2>&1)"
fi
# The whole run by mistake on the sharded store: every customer with a send is replayed.
$QM push --config "$W/sharded.toml" "${P[@]}" --out "$W/again.csv" --summary "$W/again.txt" >/dev/null 2>&1
customers=$(tail -n +2 "$W/whole.csv" | cut -d, -f1 | sort -u | wc -l)
if [ "$(replayed "$W/again.txt")" -ge "$customers" ] && cmp -s <(sends "$W/again.csv") "$W/whole.txt.rows"; then
  ok "an unsharded run with the same run id after the shards sends nothing new ($customers customers replayed)"
else
  bad "unsharded re-run: replayed $(replayed "$W/again.txt") of $customers customers"
fi

# recommend --shard: the shards' outputs add up to the unsharded output.
cut -d, -f1 "$W/bank/customers.csv" | tail -n +2 | head -400 >"$W/ids.txt"
R=(--data "$W/bank" --artifacts "$W/art" --now "$NOW" --customers "$W/ids.txt")
$QM recommend "${R[@]}" --out "$W/rec.csv" >/dev/null 2>&1 || bad "recommend"
for k in 1 2 3; do $QM recommend "${R[@]}" --shard "$k/3" --out "$W/rec$k.csv" >/dev/null 2>&1 || bad "recommend --shard $k/3"; done
if cmp -s <(tail -q -n +2 "$W"/rec[123].csv | sort) <(tail -n +2 "$W/rec.csv" | sort); then
  ok "recommend --shard K/3 outputs add up to the unsharded output ($(tail -n +2 "$W/rec.csv" | wc -l) rows)"
else
  bad "recommend shards differ from the unsharded output"
fi

expect_fail_one_line "push --shard 4/3 is refused" "--shard must be K/N" \
  $QM push --config "$W/sharded.toml" "${P[@]}" --shard 4/3 --out "$W/bad.csv"
expect_fail_one_line "recommend --shard 1of3 is refused" "--shard must be K/N" \
  $QM recommend "${R[@]}" --shard 1of3 --out "$W/bad.csv"
finish shard_test
