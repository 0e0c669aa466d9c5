#!/usr/bin/env bash
# Black-box test of the operator console (issue 19): accounts made with `qianmian user`, the
# console's session API from outside (console_api_test.py: logins, rate limiting, CSRF, roles,
# maker-checker, masking, disabling, password changes, the action logs, a fuzz), then the console
# itself in headless Chromium (console_selenium.py: a marketer creates and submits a campaign, is
# refused approving it, an approver approves and schedules it, an author is refused approving
# their own, a service agent sees the reasons of a customer's last page, zh/en, the admin's
# users and audit pages). Usage: console_test.sh QIANMIAN_BINARY
# (exit 77 = skipped: chromium, chromedriver or python3-selenium missing)
set -u
QM=${1:?usage: console_test.sh QIANMIAN}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
for need in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$need" ] || { echo "$need is not installed: skipped"; exit 77; }
done
$PY -c "import selenium" 2>/dev/null || { echo "python3-selenium is not installed: skipped"; exit 77; }
source "$HERE/lib.sh"
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
quick_bank 300 20 60 10 3

# The accounts, made before the server opens the embedded store.
add_user() {  # add_user NAME ROLE PASSWORD
  printf '%s\n' "$3" | $QM user add "$1" --role "$2" --data "$W/bank" --operator setup >>"$W/users.txt" 2>&1 ||
    { bad "user add $1: $(tail -2 "$W/users.txt")"; exit 1; }
}
add_user alice marketer alice-password-1
add_user bob approver bob-password-12
add_user carol service_agent carol-password-1
add_user root admin root-password-1
add_user vic viewer vic-password-12
out=$(printf 'short\n' | $QM user add eve --role admin --data "$W/bank" 2>&1) && bad "a short password accepted" ||
  { printf '%s' "$out" | grep -q "at least 10" && ok "user add refuses a short password" || bad "short: $out"; }
out=$(printf 'eve-password-1\n' | $QM user add eve --role boss --data "$W/bank" 2>&1) && bad "an unknown role accepted" ||
  { printf '%s' "$out" | grep -q -- "--role" && ok "user add refuses an unknown role" || bad "role: $out"; }
$QM user list --data "$W/bank" --format json >"$W/users.json" 2>&1
$PY -c 'import json,sys; u=json.load(open(sys.argv[1])); sys.exit(0 if sorted((x["name"], x["role"]) for x in u) ==
  [("alice","marketer"),("bob","approver"),("carol","service_agent"),("root","admin"),("vic","viewer")] and
  all("hash" not in x for x in u) else 1)' "$W/users.json" && ok "user list: the five accounts with their roles, no hash" ||
  bad "user list: $(cat "$W/users.json")"
grep -rq 'alice-password-1' "$W/bank/store" 2>/dev/null && bad "a password in clear in the store" ||
  ok "no password in clear in the store's files"

# The JSON API's bearer tokens: two clients, one limited to paging.
$QM keygen --http-token --out "$W/app" >"$W/app.txt" 2>&1 && $QM keygen --http-token --out "$W/ops" >"$W/ops.txt" 2>&1 ||
  { bad "keygen --http-token: $(cat "$W/app.txt")"; exit 1; }
[ "$(stat -c %a "$W/app.token")" = 600 ] && ok "keygen --http-token: the token file is mode 0600" || bad "token mode"
$QM keygen --http-token --out "$W/app" >/dev/null 2>&1 && bad "a token overwritten" || ok "keygen never overwrites a token"
{
  printf '[[clients]]\nname = "app"\n%s\nops = ["recommend", "health"]\n' "$(grep token_sha256 "$W/app.txt")"
  printf '[[clients]]\nname = "ops"\n%s\nops = ["*"]\n' "$(grep token_sha256 "$W/ops.txt")"
} >"$W/http_clients.toml"
grep -q "$(cat "$W/app.token")" "$W/http_clients.toml" && bad "a token in clear in the clients file" ||
  ok "the clients file holds the tokens' hashes only"

PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOCKOUT=10  # long enough for 5 Argon2id checks on a loaded machine
printf '[server]\nhttp_bind = "127.0.0.1:%s"\nworkers = 1\nconsole_login_failures = 5\nconsole_lockout = "%ss"\n' \
  "$PORT" "$LOCKOUT" >"$W/console.toml"
printf 'http_clients = "%s"\n' "$W/http_clients.toml" >>"$W/console.toml"
$QM serve --config "$W/console.toml" --data "$W/bank" --artifacts "$W/art" --bind "ipc://$W/s.sock" >"$W/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$QM" "ipc://$W/s.sock" "$SERVER_PID" || { bad "serve: $(tail -3 "$W/serve.log")"; exit 1; }
C=$(sed -n 2p "$W/bank/customers.csv" | cut -d, -f1)
# A page for the customer, so that the lookup has decisions with reasons.
$QM client --connect "ipc://$W/s.sock" recommend '{"customer_id":"'"$C"'","channel":"app_home","count":4}' \
  >"$W/page.json" 2>&1 && grep -q '"items"' "$W/page.json" && ok "a page served to $C" || bad "page: $(cat "$W/page.json")"

# api PATH TOKEN BODY -> "STATUS CODE" of POST /v1/PATH with that bearer token ("" = none).
api() {
  $PY - "http://127.0.0.1:$PORT/v1/$1" "$2" "$3" <<'PY'
import json, sys, urllib.error, urllib.request
url, token, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode(), method="POST",
                             headers={"Authorization": "Bearer " + token} if token else {})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, "ok")
except urllib.error.HTTPError as e:
    print(e.code, json.load(e)["error"]["code"])
PY
}
APP=$(cat "$W/app.token")
OPS=$(cat "$W/ops.token")
page='{"customer_id":"'"$C"'","channel":"app_home","count":2}'
[ "$(api recommend "" "$page")" = "401 unauthenticated" ] && ok "the JSON API without a token: 401" || bad "no token"
[ "$(api recommend "${APP%?}x" "$page")" = "401 unauthenticated" ] && ok "a wrong token: 401" || bad "wrong token"
[ "$(api recommend "$APP" "$page")" = "200 ok" ] && ok "the app's token pages: 200" || bad "app: $(api recommend "$APP" "$page")"
[ "$(api reload "$APP" '{}')" = "403 forbidden" ] && ok "the app's token may not reload: 403" || bad "app reload"
[ "$(api campaigns.list "$OPS" '{}')" = "200 ok" ] && ok "the ops token lists campaigns (every op)" || bad "ops"
$PY - "http://127.0.0.1:$PORT/metrics" <<'PY' && ok "/metrics counts the refused API requests by reason" || bad "metrics"
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=30).read().decode()
want = {'qianmian_http_refused_total{reason="unauthenticated"} 2', 'qianmian_http_refused_total{reason="forbidden"} 1'}
sys.exit(0 if want <= set(text.splitlines()) else 1)
PY

$PY "$HERE/console_api_test.py" "http://127.0.0.1:$PORT" "$C" "$LOCKOUT" >"$W/api.txt" 2>&1
api=$?
cat "$W/api.txt"
[ $api -eq 0 ] || bad "console_api_test.py failed"

timeout 600 $PY "$HERE/console_selenium.py" --url "http://127.0.0.1:$PORT/console/" \
  --marketer alice:alice-password-2 --approver bob:bob-password-12 --agent carol:carol-password-2 \
  --admin root:root-password-1 --customer "$C" --campaign-id selenium-1 >"$W/selenium.txt" 2>&1
sel=$?
cat "$W/selenium.txt"
[ $sel -eq 0 ] || bad "console_selenium.py failed"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=

# Session expiry: a server whose sessions end after 2 s unused or 5 s after login.
printf '[server]\nhttp_bind = "127.0.0.1:%s"\nworkers = 1\nconsole_idle = "2s"\nconsole_session = "5s"\n' "$PORT" \
  >"$W/expiry.toml"
$QM serve --config "$W/expiry.toml" --data "$W/bank" --artifacts "$W/art" --bind "ipc://$W/s.sock" >>"$W/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$QM" "ipc://$W/s.sock" "$SERVER_PID" || { bad "serve: $(tail -3 "$W/serve.log")"; exit 1; }
$PY - "http://127.0.0.1:$PORT" >"$W/expiry.txt" 2>&1 <<'PY'
import http.cookiejar, json, sys, time, urllib.error, urllib.request
base = sys.argv[1]
def session():
    web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    req = urllib.request.Request(base + "/console/api/login", json.dumps({"name": "root", "password": "root-password-1"}).encode(),
                                 headers={"Content-Type": "application/json"})
    web.open(req, timeout=30).read()
    return web
def me(web):
    try:
        return web.open(base + "/console/api/me", timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code
idle = session()
first = me(idle)
time.sleep(2.5)
print("idle", first, me(idle))
busy = session()
start, seen = time.time(), []
while time.time() - start < 6.5:
    seen.append((round(time.time() - start, 1), me(busy)))
    time.sleep(0.5)
print("busy", all(s == 200 for t, s in seen if t < 4.5), all(s == 401 for t, s in seen if t > 5.5), seen)
PY
grep -q '^idle 200 401$' "$W/expiry.txt" && ok "a session unused for console_idle ends (401)" || bad "idle: $(cat "$W/expiry.txt")"
grep -q '^busy True True' "$W/expiry.txt" && ok "a session in use ends console_session after its login" ||
  bad "absolute: $(cat "$W/expiry.txt")"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=

# The CLI sees the console's actions in the accounts' logs (after the server stops: the embedded
# store is locked while it runs).
$QM user audit carol --data "$W/bank" >"$W/carol.jsonl" 2>&1
grep -q '"action":"lookup","detail":"customer '"$C"' (ok)"' "$W/carol.jsonl" && grep -q '"action":"login"' "$W/carol.jsonl" &&
  ok "user audit carol: her logins and lookups" || bad "user audit: $(head -5 "$W/carol.jsonl")"
grep -q '"action":"passwd"' "$W/carol.jsonl" && ok "user audit carol: her password change" || bad "no passwd entry"
grep -q 'argon2\|password-' "$W/carol.jsonl" && bad "a hash or password in the audit" || ok "no hash or password in the audit"
# Secrets never in the server's log: passwords, hashes, session cookies, API tokens.
leaks=$(grep -c -e 'password-1' -e 'password-2' -e 'argon2' -e "$APP" -e "$OPS" -e 'qm_session=' "$W/serve.log")
[ "$leaks" = 0 ] && ok "no password, hash, cookie or token in the server's log" || bad "$leaks secret(s) in serve.log"
finish console_test
