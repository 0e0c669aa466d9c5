#!/usr/bin/env bash
# The Python package (python/qianmian) against a real `qianmian serve` on a loopback TCP port:
# every op and its errors (tests/python/test_live_client.py), the wire protocol's JSON Schemas
# against real replies (test_live_schema.py), and the numpy helpers against a real version and
# the `export` and `report` commands' files (test_live_data.py). Debian's python3 with
# python3-zmq, python3-msgpack and python3-numpy (scripts/setup.sh).
# Usage: python_test.sh QIANMIAN_BINARY
set -u
QM=${1:?usage: python_test.sh QIANMIAN}
QM=$(cd "$(dirname "$QM")" && pwd)/$(basename "$QM")  # the Python suites run in tests/python
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
TESTS=$(cd "$(dirname "$0")/../python" && pwd)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  [ -z "${QM_KEEP:-}" ] && rm -rf "$W"
}
trap cleanup EXIT

$PY -c 'import zmq, msgpack, numpy' 2>"$W/py.txt" ||
  { bad "$PY lacks python3-zmq, python3-msgpack or python3-numpy: $(tail -1 "$W/py.txt")"; exit 1; }

quick_bank 400 20 80 10 5
# Every request must be answered on a loaded CI machine: no shedding by queue delay (issue 20's
# overload controls are tested in ServerTest; the client's retries in test_offline.py).
cat >"$W/exp.toml" <<'TOML'
[server]
codel_target = 0
app_home_deadline = 0
[experiments]
holdout_share = 0.05
[[experiments.layers]]
name = "cap"
salt = "py-cap"
[[experiments.layers.arms]]
name = "control"
share = 0.3
control = ["wechat_push"]
[[experiments.layers.arms]]
name = "treat"
share = 0.7
TOML

free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_server() {  # a free loopback port (three tries: another process may take it first)
  for _ in 1 2 3; do
    ADDR="tcp://127.0.0.1:$(free_port)"
    $QM serve --data "$W/bank" --artifacts "$W/art" --config "$W/exp.toml" --bind "$ADDR" >"$W/serve.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "$QM" "$ADDR" "$SERVER_PID" && return 0
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  done
  return 1
}
if start_server; then ok "serve answers on $ADDR"; else bad "serve did not start: $(tail -3 "$W/serve.log")"; exit 1; fi

mkdir -p "$W/work"
for suite in test_live_client test_live_schema test_live_data; do
  if (cd "$TESTS" && QM_ENDPOINT=$ADDR QM_BIN=$QM QM_DATA=$W/bank QM_ARTIFACTS=$W/art QM_CONFIG=$W/exp.toml \
      QM_LAYER=cap QM_WORK=$W/work $PY -m unittest -v "$suite" >"$W/$suite.txt" 2>&1 </dev/null); then
    ok "$suite: $(grep -c ' \.\.\. ok$' "$W/$suite.txt") tests pass"
  else
    bad "$suite: $(grep -E '^(FAIL|ERROR):' "$W/$suite.txt" | head -5)"
    sed -n '/^=====/,$p' "$W/$suite.txt" | head -60
  fi
done
# unittest skips a suite whose environment is missing: make sure nothing was skipped here.
if grep -q "skipped" "$W"/test_live_*.txt; then bad "some live tests were skipped"; else ok "no live test skipped"; fi

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=
[ $rc -eq 0 ] && ok "serve exits 0 on SIGTERM after the Python clients" || bad "serve exit $rc: $(tail -3 "$W/serve.log")"
finish "python black-box"
