#!/usr/bin/env bash
# Issue 22, for operators: the version from CMake (`--version`, `stats`, MANIFEST.json); every
# setting overridable by a QIANMIAN_<SECTION>_<KEY> variable, secrets from files (never copied
# into a manifest); `--json` of inspect, eval, push and report; exit codes a scheduler acts on:
# 2 = bad input (do not retry), 75 = a dependency unavailable (retry later).
# Usage: ops_test.sh QIANMIAN_BINARY VERSION
set -u
QM=${1:?usage: ops_test.sh QIANMIAN VERSION}
VERSION=${2:?version}
source "$(dirname "$0")/lib.sh"
SERVER_PID=
REDIS_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  if [ -n "$REDIS_PID" ]; then kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; fi
  [ -z "${QM_KEEP:-}" ] && rm -rf "$W"
}
trap cleanup EXIT
# json_get FILE EXPR: a Python expression over the parsed document `j`.
json_get() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# expect_rc CODE "description" cmd...: the command exits with CODE.
expect_rc() {
  local want=$1 what=$2
  shift 2
  "$@" >"$W/rc.out" 2>"$W/rc.err"
  local rc=$?
  [ $rc -eq "$want" ] && ok "$what (exit $rc)" || bad "$what: exit $rc, not $want ($(tail -2 "$W/rc.err"))"
}

# --- the version, from CMake's project(VERSION)
[ "$($QM --version)" = "qianmian $VERSION" ] && ok "--version prints qianmian $VERSION" ||
  bad "--version: $($QM --version)"

# --- a version trained with overrides from the environment (one of them a secret)
export QIANMIAN_TRAINING_SEED=7 QIANMIAN_STORE_REDIS_PASSWORD=hunter2-not-for-manifests
quick_bank 300 20 60 10 11
unset QIANMIAN_TRAINING_SEED QIANMIAN_STORE_REDIS_PASSWORD
M="$W/art/$(cat "$W/art/CURRENT")/MANIFEST.json"
[ "$(json_get "$M" 'j["qianmian_version"]')" = "$VERSION" ] && ok "MANIFEST.json records qianmian_version $VERSION" ||
  bad "manifest version: $(json_get "$M" 'j.get("qianmian_version")')"
[ "$(json_get "$M" 'j["config"]["training"]["seed"]')" = 7 ] &&
  ok "QIANMIAN_TRAINING_SEED reached training and the manifest's configuration" ||
  bad "manifest config: $(json_get "$M" 'j["config"]')"
if grep -q hunter2 "$M"; then bad "the secret is in MANIFEST.json"; else ok "a secret is not copied into the manifest"; fi

# --- bad input: exit 2, one line naming the problem
expect_rc 2 "a misspelt setting variable is bad input" env QIANMIAN_SERVER_BINDD=x $QM inspect --data "$W/bank"
grep -q "unknown setting QIANMIAN_SERVER_BINDD" "$W/rc.err" || bad "message: $(cat "$W/rc.err")"
expect_rc 2 "a variable of the wrong type is bad input" env QIANMIAN_SERVER_WORKERS=many $QM inspect --data "$W/bank"
grep -q "'server.workers' (from QIANMIAN_SERVER_WORKERS)" "$W/rc.err" || bad "message: $(cat "$W/rc.err")"
expect_rc 2 "a missing data folder is bad input" $QM inspect --data "$W/none"
expect_rc 2 "an unknown option is bad input" $QM inspect --data "$W/bank" --no-such-flag
expect_rc 2 "an unknown configuration key is bad input" $QM inspect --data "$W/bank" --config <(printf '[data]\nx = 1\n')
expect_rc 2 "a missing secret file is bad input" env QIANMIAN_STORE_REDIS_PASSWORD_FILE="$W/none" $QM inspect --data "$W/bank"
expect_rc 2 "a bad audience is bad input" $QM push --data "$W/bank" --artifacts "$W/art" --dry-run --audience 'agee > 3' \
  --out "$W/x.csv"

# --- --json
expect_rc 0 "inspect --json -" $QM inspect --data "$W/bank" --json -
cp "$W/rc.out" "$W/inspect.json"
customers=$(($(wc -l <"$W/bank/customers.csv") - 1))
[ "$(json_get "$W/inspect.json" 'j["customers"]["count"]')" = "$customers" ] &&
  [ "$(json_get "$W/inspect.json" 'j["ok"]')" = True ] && [ "$(json_get "$W/inspect.json" 'j["files"]["events"]["bad_rows"]')" = 0 ] &&
  ok "inspect --json: $customers customers, the files' reports" || bad "inspect json: $(head -c 300 "$W/inspect.json")"
# One customer of an unknown tier: rejected, reported with its line.
cp -r "$W/bank" "$W/badbank"
python3 - "$W/badbank/customers.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[1][rows[0].index("tier")] = "platinum"
csv.writer(open(sys.argv[1], "w", newline="")).writerows(rows)
PY
expect_rc 0 "inspect --json FILE of a bank with a rejected row" $QM inspect --data "$W/badbank" --json "$W/bad.json"
[ "$(json_get "$W/bad.json" 'j["files"]["customers"]["bad_rows"]')" = 1 ] &&
  [ "$(json_get "$W/bad.json" 'j["files"]["customers"]["errors"][0]["line"]')" = 2 ] &&
  json_get "$W/bad.json" 'j["files"]["customers"]["errors"][0]["reason"]' | grep -q platinum &&
  ok "inspect --json reports the rejected row (line 2, its reason)" || bad "bad bank json: $(head -c 600 "$W/bad.json")"
grep -q "^customers " "$W/rc.out" || bad "inspect --json FILE should still print the text summary"
expect_rc 0 "eval --json FILE" $QM eval --data "$W/bank" --artifacts "$W/art" --no-baselines --config "$W/fast.toml" \
  --json "$W/eval.json"
[ "$(json_get "$W/eval.json" 'j["version"]')" = "$(cat "$W/art/CURRENT")" ] &&
  json_get "$W/eval.json" '"served.recall@20" in j["metrics"]' | grep -q True &&
  ok "eval --json: the version and its metrics" || bad "eval json: $(head -c 300 "$W/eval.json")"
expect_rc 0 "push --dry-run --json -" $QM push --data "$W/bank" --artifacts "$W/art" --dry-run --audience all \
  --out "$W/dry.csv" --json -
cp "$W/rc.out" "$W/push.json"
sends=$(($(wc -l <"$W/dry.csv") - 1))
[ "$(json_get "$W/push.json" 'j["audience"]')" = "$customers" ] && [ "$(json_get "$W/push.json" 'j["sends"]')" = "$sends" ] &&
  [ "$(json_get "$W/push.json" 'j["dry_run"]')" = True ] && ok "push --json -: audience $customers, $sends sends (the list's rows)" ||
  bad "push json: $(head -c 300 "$W/push.json")"
cat >"$W/exp.toml" <<'TOML'
[[experiments.layers]]
name = "cap"
salt = "ops-test"
[[experiments.layers.arms]]
name = "control"
share = 0.5
control = ["wechat_push"]
[[experiments.layers.arms]]
name = "treat"
share = 0.5
TOML
expect_rc 0 "report --json -" $QM report --data "$W/bank" --config "$W/exp.toml" --experiment cap --json -
cp "$W/rc.out" "$W/report.json"
json_get "$W/report.json" 'len(j["arms"])' | grep -qx 2 && ok "report --json -: two arms, nothing but JSON on stdout" ||
  bad "report json: $(head -c 300 "$W/report.json")"

# --- a server configured by the environment alone; the store it holds is "in use" for others
ADDR="ipc://$W/s.sock"
QIANMIAN_SERVER_BIND="$ADDR" QIANMIAN_SERVER_WORKERS=1 $QM serve --data "$W/bank" --artifacts "$W/art" \
  >"$W/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$QM" "$ADDR" "$SERVER_PID" || true  # the checks below say what failed
$QM client --connect "$ADDR" stats >"$W/stats.json" 2>&1
[ "$(json_get "$W/stats.json" 'j["versions"]["server"]')" = "$VERSION" ] &&
  ok "QIANMIAN_SERVER_BIND: the server listens there; stats shows server version $VERSION" ||
  bad "stats: $(head -c 300 "$W/stats.json") $(tail -3 "$W/serve.log")"
expect_rc 75 "push while the server holds the embedded store: retry later" $QM push --data "$W/bank" --artifacts "$W/art" \
  --run-id r1 --audience all --out "$W/r1.csv"
grep -q "in use by another process" "$W/rc.err" || bad "message: $(cat "$W/rc.err")"
expect_rc 2 "client: a bad request is bad input" $QM client --connect "$ADDR" recommend '{"customer_id":"x","channel":"app_home","count":0}'
expect_rc 75 "client: no server answering is retry later" $QM client --connect "ipc://$W/nobody.sock" --timeout 300 health
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=

# --- Redis: unreachable = retry later; the password from a file; a wrong one = bad input
port=$((20000 + RANDOM % 12000))
expect_rc 75 "push with the Redis store down: retry later" env QIANMIAN_STORE_BACKEND=redis QIANMIAN_STORE_REDIS_PORT=$port \
  QIANMIAN_STORE_REDIS_TIMEOUT=300ms $QM push --data "$W/bank" --artifacts "$W/art" --run-id r2 --audience all --out "$W/r2.csv"
if command -v redis-server >/dev/null; then
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --requirepass 'pw with spaces' --dir "$W" \
    --user qm on '>qm secret' '~*' '&*' '+@all' \
    >"$W/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 40); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  printf 'pw with spaces\n' >"$W/redis_password"
  expect_rc 0 "push with the Redis password from QIANMIAN_STORE_REDIS_PASSWORD_FILE" env QIANMIAN_STORE_BACKEND=redis \
    QIANMIAN_STORE_REDIS_PORT=$port QIANMIAN_STORE_REDIS_PASSWORD_FILE="$W/redis_password" $QM push --data "$W/bank" \
    --artifacts "$W/art" --run-id r3 --audience all --out "$W/r3.csv"
  expect_rc 2 "a wrong Redis password is bad input" env QIANMIAN_STORE_BACKEND=redis QIANMIAN_STORE_REDIS_PORT=$port \
    QIANMIAN_STORE_REDIS_PASSWORD=wrong $QM push --data "$W/bank" --artifacts "$W/art" --run-id r4 --audience all \
    --out "$W/r4.csv"
  grep -q "AUTH with store.redis_password refused" "$W/rc.err" || bad "message: $(cat "$W/rc.err")"
  printf 'qm secret\n' >"$W/qm_password"
  expect_rc 0 "push as the Redis ACL user of QIANMIAN_STORE_REDIS_USER" env QIANMIAN_STORE_BACKEND=redis \
    QIANMIAN_STORE_REDIS_PORT=$port QIANMIAN_STORE_REDIS_USER=qm QIANMIAN_STORE_REDIS_PASSWORD_FILE="$W/qm_password" \
    $QM push --data "$W/bank" --artifacts "$W/art" --run-id r5 --audience all --out "$W/r5.csv"
  expect_rc 2 "an ACL user with another's password is bad input" env QIANMIAN_STORE_BACKEND=redis \
    QIANMIAN_STORE_REDIS_PORT=$port QIANMIAN_STORE_REDIS_USER=qm QIANMIAN_STORE_REDIS_PASSWORD_FILE="$W/redis_password" \
    $QM push --data "$W/bank" --artifacts "$W/art" --run-id r6 --audience all --out "$W/r6.csv"
else
  echo "skip - redis-server is not installed: the password checks"
fi
finish ops
