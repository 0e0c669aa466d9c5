# Shared by the black-box tests (source it after setting QM): a scratch folder $W removed on
# exit, pass/fail counting, checks that a command fails with the expected reason (on one stderr
# line, SPEC §3), and a small generated bank with a quickly trained version.
W=$(mktemp -d)
trap '[ -z "${QM_KEEP:-}" ] && rm -rf "$W"' EXIT
export QM_PROGRESS=0
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }

# expect_fail "description" "needle" cmd...: non-zero exit and needle on stderr (which may also
# list details, e.g. the rejected rows of a file).
expect_fail() { expect_fail_lines any "$@"; }

# expect_fail_one_line: the same, and stderr is exactly one line (SPEC §3's one-line reason).
expect_fail_one_line() { expect_fail_lines 1 "$@"; }

# expect_fail_lines LINES "description" "needle" cmd...: both of the above; LINES is "any" or
# the exact number of non-empty stderr lines.
expect_fail_lines() {
  local lines=$1 what=$2 needle=$3
  shift 3
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -ne 0 ] && printf '%s' "$err" | grep -qF -- "$needle" &&
     { [ "$lines" = any ] || [ "$(printf '%s\n' "$err" | grep -c .)" -eq "$lines" ]; }; then
    ok "$what"
  else
    bad "$what (exit $rc, stderr: $(printf '%s' "$err" | tail -2))"
  fi
}

# quick_bank CUSTOMERS PRODUCTS CONTENTS DAYS SEED: generates $W/bank and trains $W/art with one
# epoch per model; exits the test when either fails.
quick_bank() {
  $QM generate --out "$W/bank" --customers "$1" --products "$2" --contents "$3" --days "$4" --seed "$5" \
    >"$W/gen.txt" 2>&1 || { bad "generate: $(tail -3 "$W/gen.txt")"; exit 1; }
  printf '[training]\nmax_eval_customers = 100\n[training.two_tower]\nepochs = 1\n[training.ranker]\nepochs = 1\n' \
    >"$W/fast.toml"
  $QM train --data "$W/bank" --artifacts "$W/art" --config "$W/fast.toml" >"$W/train.txt" 2>&1 ||
    { bad "train: $(tail -5 "$W/train.txt")"; exit 1; }
}

# Push-run outputs: a send list's rows (customer,item,scheduled_at, sorted), and from a run's
# summary the sends and the sends replayed from an earlier run of the same id.
sends() { tail -n +2 "$1" | cut -d, -f1-3 | sort; }
sent() { sed -n 's/^ *sends (rows of the send list) *\([0-9]*\)$/\1/p' "$1"; }
replayed() { sed -n 's/^ *replayed from this run id *\([0-9]*\)$/\1/p' "$1"; }

# wait_ready QM ADDR PID: waits (up to 60 s) until the server at ADDR answers `health`; fails
# at once when the process PID has exited. QM is split into words (a binary and its wrapper).
wait_ready() {
  local qm=$1 addr=$2 pid=$3
  for _ in $(seq 1 240); do
    $qm client --connect "$addr" --timeout 500 health >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

# redis_at PORT: a private redis-server (append-only, fsync always, its files in $W) on PORT;
# sets REDIS_PID and waits until it answers (1 when it does not within 4 s; then stopped).
redis_at() {
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always --dir "$W" \
    >>"$W/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 40); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=
  return 1
}

# start_redis: redis_at a free loopback port; sets REDIS_PORT and REDIS_PID (the caller stops
# it). Returns 1 when none starts. Ports stay below Linux's ephemeral range (32768-60999): there a
# client's own outgoing port could take the port while the server is down (the outage tests).
start_redis() {
  REDIS_PORT=
  local p
  for _ in $(seq 1 20); do
    p=$((20000 + RANDOM % 12000))
    if redis_at "$p"; then
      REDIS_PORT=$p
      return 0
    fi
  done
  return 1
}

# private_redis: for tests of replicas sharing a private redis-server. Sets an EXIT trap that kills
# the replicas (start_replica), stops the redis-server and removes $W, then start_redis; the test
# fails at once when none starts.
private_redis() {
  REDIS_PID=
  trap stop_replicas_and_redis EXIT
  start_redis || { bad "could not start redis-server: $(tail -2 "$W/redis.log")"; exit 1; }
}
stop_replicas_and_redis() {
  for p in "${REPLICA_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${REDIS_PID:-}" ]; then kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; fi
  rm -rf "$W"
}

# start_replica NAME CONFIG: `serve --config CONFIG` on $W/bank and $W/art at ipc://$W/NAME.sock
# (log $W/NAME.log), its pid in REPLICA_PID[NAME]; waits until it answers (1 if it does not).
declare -A REPLICA_PID
start_replica() {
  $QM serve --config "$2" --data "$W/bank" --artifacts "$W/art" --bind "ipc://$W/$1.sock" >>"$W/$1.log" 2>&1 &
  REPLICA_PID[$1]=$!
  wait_ready "$QM" "ipc://$W/$1.sock" "${REPLICA_PID[$1]}"
}

# capped_replica_settings LIMIT: the TOML (after a [store] section) of the replicas that
# cap_burst tests: app_home impressions capped at LIMIT a day per customer, two workers, and no
# shedding by delay (every page must be answered; issue 20's controls are tested in ServerTest).
capped_replica_settings() {
  printf '\n[[policy.caps]]\nname = "home_daily"\nscope = "customer_channel"\nchannel = "app_home"\n'
  printf 'event = "impression"\nlimit = %s\nwindow = "1d"\n\n' "$1"
  printf '[server]\nworkers = 2\ncodel_target = 0\napp_home_deadline = 0\n'
}

# cap_burst CUSTOMER LIMIT: 24 concurrent app_home pages of 2 items each for CUSTOMER (48 slots,
# far above a cap), half to the replica at ipc://$W/a.sock and half to b: all must be answered,
# and exactly LIMIT marketing items (those not in $W/service.txt) served across both.
cap_burst() {
  local c=$1 limit=$2 i r p failed=0 pids=()
  for i in $(seq 1 24); do
    r=$([ $((i % 2)) -eq 0 ] && echo a || echo b)
    $QM client --connect "ipc://$W/$r.sock" recommend \
      "{\"customer_id\":\"$c\",\"channel\":\"app_home\",\"count\":2,\"id\":\"burst-$i\"}" >"$W/reply-$i.json" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  [ "$failed" -eq 0 ] && ok "24 concurrent requests over two replicas all answered" ||
    bad "$failed requests failed: $(cat "$W"/reply-*.json | grep -v '"ok":true' | head -2)"
  cat "$W"/reply-*.json | grep -o '"item_id":"[^"]*"' | cut -d'"' -f4 | sort >"$W/served.txt"
  local marketing
  marketing=$(comm -23 "$W/served.txt" "$W/service.txt" | wc -l)
  [ "$marketing" -eq "$limit" ] && ok "exactly $limit marketing items were served across both replicas (cap $limit per day)" ||
    bad "$marketing marketing items served across both replicas, cap $limit"
}

# finish NAME: prints the counts; the exit status is the verdict.
finish() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
