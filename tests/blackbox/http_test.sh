#!/usr/bin/env bash
# Black-box test of the server's HTTP port (issue 19): /livez and /readyz; /metrics parsed by
# Prometheus's own text parser (python3-prometheus-client), its counters agreeing with the
# requests made and with `stats`; the JSON API (POST /v1/<op>) answering as the ZeroMQ wire does
# (the same page, the same error codes as HTTP statuses); a body over max_frame_bytes, a body that
# is not JSON, an unknown path; 600 fuzzed bodies (random bytes, random JSON, injection-like
# text), each answered with JSON and a mapped status; /readyz 503 while the server drains.
# Usage: http_test.sh QIANMIAN_BINARY   (exit 77 = skipped: python3-prometheus-client is missing)
set -u
QM=${1:?usage: http_test.sh QIANMIAN}
PY=/usr/bin/python3
$PY -c "import prometheus_client" 2>/dev/null || { echo "python3-prometheus-client is not installed: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
quick_bank 300 20 60 10 3
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HTTP="http://127.0.0.1:$PORT"
printf '[server]\nhttp_bind = "127.0.0.1:%s"\nworkers = 1\ncodel_target = 0\napp_home_deadline = 0\n' "$PORT" >"$W/http.toml"
printf 'log_format = "json"\naccess_log = true\n' >>"$W/http.toml"
$QM serve --config "$W/http.toml" --data "$W/bank" --artifacts "$W/art" --bind "ipc://$W/s.sock" >"$W/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$QM" "ipc://$W/s.sock" "$SERVER_PID" || { bad "serve: $(tail -3 "$W/serve.log")"; exit 1; }
C=$(sed -n 2p "$W/bank/customers.csv" | cut -d, -f1)

# get|post PATH [BODY] -> "STATUS BODY" (Python's urllib: no curl needed).
http() {
  $PY - "$HTTP$2" "${3-}" "$1" <<'PY'
import sys, urllib.request, urllib.error
url, body, method = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(body[1:], "rb").read() if body.startswith("@") else body.encode("utf-8", "surrogateescape")
req = urllib.request.Request(url, data=data if method == "post" else None, method=method.upper())
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())
PY
}
out=$(http get /livez) && [ "$out" = "200 ok" ] && ok "/livez: 200" || bad "/livez: $out"
out=$(http get /readyz) && [ "$out" = "200 ready" ] && ok "/readyz: 200 (a version loaded, the store up)" || bad "/readyz: $out"

# The JSON API answers as the ZeroMQ wire does.
page='{"customer_id":"'$C'","channel":"app_home","count":4,"now_ms":1790000000000,"id":"h1"}'
zmq=$($QM client --connect "ipc://$W/s.sock" score '{"customer_id":"'$C'","channel":"app_home","item_ids":["x"]}' 2>&1)
out=$(http post /v1/recommend "$page")
printf '%s' "$out" | grep -q '^200 {"id":"h1",.*"items":\[{"item_id"' && ok "POST /v1/recommend: 200 with the page and the id" ||
  bad "recommend over HTTP: $out"
# The same engine: the page's items scored over HTTP and over ZeroMQ (read-only, so comparable).
ids=$(printf '%s' "${out#200 }" | $PY -c 'import json, sys; print(json.dumps([i["item_id"] for i in json.load(sys.stdin)["items"]]))')
req='{"customer_id":"'$C'","channel":"app_home","item_ids":'$ids',"now_ms":1790000000000}'
s_http=$(http post /v1/score "$req" | sed 's/^200 //' | $PY -c 'import json, sys; print(json.load(sys.stdin)["scores"])')
s_zmq=$($QM client --connect "ipc://$W/s.sock" score "$req" | $PY -c 'import json, sys; print(json.load(sys.stdin)["scores"])')
[ -n "$s_http" ] && [ "$s_http" = "$s_zmq" ] && ok "POST /v1/score gives the ZeroMQ wire's scores" || bad "http $s_http, zmq $s_zmq"
check_error() {  # check_error WHAT PATH BODY STATUS CODE [NEEDLE]
  local out
  out=$(http post "$2" "$3")
  if printf '%s' "$out" | grep -q "^$4 .*\"code\":\"$5\"" && printf '%s' "$out" | grep -qF "${6:-$5}"; then
    ok "$1: $4 $5"
  else
    bad "$1: $out"
  fi
}
check_error "a bad field" /v1/recommend '{"customer_id":"'$C'","channel":"app_hom","count":3}' 400 bad_request "'channel'"
check_error "a missing field" /v1/recommend '{"channel":"app_home","count":3}' 400 bad_request "customer_id"
check_error "an unknown op" /v1/nosuch '{}' 404 unknown_op
check_error "an unknown customer's profile" /v1/profile '{"customer_id":"NOBODY"}' 404 not_found
check_error "a body that is not JSON" /v1/recommend '{"customer_id":' 400 bad_request "not JSON"
check_error "text that is not UTF-8" /v1/recommend $'{"customer_id":"\xc3(","channel":"app_home","count":3}' 400 bad_request
check_error "an op in the body that is not the path's" /v1/recommend '{"op":"reload"}' 400 bad_request "'op'"
$PY -c 'print("{\"pad\":\"" + "x" * 1100000 + "\"}")' >"$W/big.json"
check_error "a body over max_frame_bytes" /v1/health "@$W/big.json" 413 bad_request "max_frame_bytes"
out=$(http get /nowhere) && printf '%s' "$out" | grep -q '^404 .*"code":"not_found"' && ok "an unknown path: 404" || bad "unknown path: $out"
out=$(http post /v1/feedback '{"events":[{"ts_ms":1790000000000,"customer_id":"'$C'","item_id":"x","type":"click","channel":"app_home"}]}')
printf '%s' "$out" | grep -q '^200 .*"rejected":\[{' && ok "feedback over HTTP: 200, the bad event rejected on its own" || bad "feedback: $out"

# /metrics, parsed by Prometheus's parser, agrees with the requests made and with `stats`.
for _ in 1 2 3; do http post /v1/recommend "$page" >/dev/null; done
http get /metrics | sed '1s/^200 //' >"$W/metrics.txt"
$QM client --connect "ipc://$W/s.sock" stats >"$W/stats.json"
out=$($PY - "$W/metrics.txt" "$W/stats.json" <<'PY'
import json, sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
stats = json.load(open(sys.argv[2]))
def samples(name, **labels):
    return [s for s in fams[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]
need = ["qianmian_http_refused", "qianmian_requests", "qianmian_request_duration_seconds", "qianmian_queue_depth", "qianmian_shed",
        "qianmian_reloads", "qianmian_store_up", "qianmian_ready", "qianmian_served_items",
        "qianmian_policy_blocked", "qianmian_build_info"]
missing = [n for n in need if n not in fams]
assert not missing, missing
ok_recs = samples("qianmian_requests", op="recommend", code="ok")[0].value
bad_recs = samples("qianmian_requests", op="recommend", code="bad_request")[0].value
assert ok_recs == 4 and bad_recs == 2, (ok_recs, bad_recs)  # 1 + 3 pages, 2 bad fields
refused = {s.labels["reason"]: s.value for s in fams["qianmian_http_refused"].samples}
assert refused["not_json"] == 2 and refused["too_large"] == 1 and refused["op_mismatch"] == 1, refused
assert stats["ops"]["recommend"]["count"] == ok_recs + bad_recs, stats["ops"]["recommend"]
count = samples("qianmian_request_duration_seconds", op="recommend")
total = [s for s in count if s.name.endswith("_count")][0].value
inf = [s for s in count if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"][0].value
assert total == inf == ok_recs + bad_recs, (total, inf)
buckets = [s.value for s in count if s.name.endswith("_bucket")]
assert buckets == sorted(buckets), "cumulative buckets"
served = sum(s.value for s in fams["qianmian_served_items"].samples)
assert served == 4 * 4, served
assert samples("qianmian_ready")[0].value == 1 and samples("qianmian_store_up")[0].value == 1
blocked = {s.labels["rule"]: s.value for s in fams["qianmian_policy_blocked"].samples}
assert sum(blocked.values()) > 0, blocked  # four pages for one customer: the items shown today are capped
print(int(ok_recs), int(bad_recs), int(served), len(fams))
PY
) && ok "/metrics parses ($(echo "$out" | cut -d' ' -f4) families): $(echo "$out" | cut -d' ' -f1) ok and $(echo "$out" | cut -d' ' -f2) bad recommends, as stats says; $(echo "$out" | cut -d' ' -f3) items by source" ||
  bad "metrics: $out"

# Fuzz (seeded): random bytes, random JSON and injection-like text in every op's fields. Every
# reply is JSON with a status the error codes map to, and the server keeps serving.
out=$($PY - "$HTTP" <<'PY'
import json, random, sys, urllib.request, urllib.error
base = sys.argv[1]
rng = random.Random(19)
ops = ["recommend", "feedback", "score", "items.upsert", "items.retire", "customers.upsert", "history", "report",
       "stats", "health", "campaigns.create", "campaigns.transition", "campaigns.get", "events.ingest", "profile",
       "segments.save", "nosuch", "Recommend", "a.b.c"]
nasty = ["<script>alert(1)</script>", "'; DROP TABLE x; --", "../../etc/passwd", "%s%n%x", "\u0000", "理财" * 50,
         "\ud83d\ude00", "a" * 5000, "", " ", "null", "1e309", "-0", "app_home\n"]
def value(depth=0):
    k = rng.randrange(9 if depth < 4 else 6)
    if k == 0: return rng.choice(nasty)
    if k == 1: return rng.randrange(-2**63, 2**63)
    if k == 2: return rng.random() * 10 ** rng.randrange(-5, 300)
    if k == 3: return rng.choice([True, False, None])
    if k == 4: return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(20)))
    if k == 5: return rng.choice(["customer_id", "channel", "count", "items", "events", "now_ms"])
    if k in (6, 7): return {rng.choice(["customer_id", "channel", "count", "item_ids", "events", "items", "id",
                                         "deadline_ms", rng.choice(nasty)]): value(depth + 1)
                            for _ in range(rng.randrange(6))}
    return [value(depth + 1) for _ in range(rng.randrange(5))]
statuses = {}
for i in range(600):
    op = rng.choice(ops)
    if i % 5 == 0:
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    else:
        body = json.dumps(value() if i % 7 else {"customer_id": value(), "channel": value(), "count": value()}).encode()
    req = urllib.request.Request(base + "/v1/" + op, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    reply = json.loads(text.decode("utf-8"))  # strict: valid UTF-8 and JSON
    assert status in (200, 400, 403, 404, 409, 413, 503, 504), (status, op, body[:100], reply)
    assert (status == 200) == reply["ok"], (status, reply)
    statuses[status] = statuses.get(status, 0) + 1
with urllib.request.urlopen(base + "/livez", timeout=5) as r:
    assert r.status == 200
print(" ".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
PY
) && ok "fuzz: 600 random bodies, every reply JSON with a mapped status ($out); still live" || bad "fuzz: $out"

# While the server drains, /readyz says so (503).
$PY - "$HTTP" "$page" "$SERVER_PID" <<'PY' >"$W/drain.txt"
import os, signal, sys, threading, time, urllib.request, urllib.error
base, page, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post():
    try:
        urllib.request.urlopen(urllib.request.Request(base + "/v1/recommend", data=page.encode()), timeout=30).read()
    except Exception:
        pass
def reload():
    try:
        urllib.request.urlopen(urllib.request.Request(base + "/v1/reload", data=b"{}"), timeout=30).read()
    except Exception:
        pass
# One worker and a reload (the write lane: it loads the version again): something to drain.
threads = [threading.Thread(target=reload)] + [threading.Thread(target=post) for _ in range(40)]
for t in threads:
    t.start()
time.sleep(0.02)
os.kill(pid, signal.SIGTERM)
seen = set()
for _ in range(4000):
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            seen.add((r.status, r.read().decode().strip()))
    except urllib.error.HTTPError as e:
        seen.add((e.code, e.read().decode().strip()))
        if e.code == 503:
            break
    except Exception:
        break
print(sorted(seen))
PY
wait "$SERVER_PID"
rc=$?
SERVER_PID=
grep -q "(503, 'not ready: draining')" "$W/drain.txt" && ok "/readyz: 503 while draining" || bad "readyz during drain: $(cat "$W/drain.txt")"
[ "$rc" = 0 ] && ok "SIGTERM: serve exits 0 with the HTTP port open" || bad "serve exit $rc: $(tail -3 "$W/serve.log")"

# log_format = "json": every line of the server's output is a JSON object; access_log: one line
# per reply with op, code, request id, version and time, and no customer id.
out=$($PY - "$W/serve.log" "$C" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
objs = [json.loads(l) for l in lines]  # every line
assert all({"ts", "level", "logger"} <= o.keys() for o in objs)
access = [o for o in objs if o["logger"] == "access"]
assert all({"op", "code", "request_id", "version", "us"} <= o.keys() for o in access)
assert any(o["op"] == "recommend" and o["request_id"] == "h1" and o["code"] == "ok" for o in access)
assert any(o["code"] == "bad_request" for o in access)
assert sys.argv[2] not in open(sys.argv[1]).read(), "a customer id in the log"
print(len(objs), len(access))
PY
) && ok "JSON-lines log: $(echo "$out" | cut -d' ' -f1) lines, $(echo "$out" | cut -d' ' -f2) access lines (op, code, request id, version), no customer id" ||
  bad "json log: $out $(head -3 "$W/serve.log")"
finish "http_test"
