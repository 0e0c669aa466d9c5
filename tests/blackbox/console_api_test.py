#!/usr/bin/python3
"""The console's session API (issue 19) from outside, over HTTP: logins (a wrong password and an
unknown name refused alike, rate limited), the cookie's flags, CSRF, the roles' ops and
transitions, the operator taken from the session (never from the body), maker-checker, a service
agent's masked portrait, disabling an account or changing its password ending its sessions, the
operators' action logs, logout, security headers, and a fuzz of the API (never a 500, the server
alive). Usage: console_api_test.py URL CUSTOMER LOCKOUT_SECONDS (accounts as console_test.sh
makes them). Prints ok/not ok lines; exit 1 when any check failed."""
import http.cookiejar
import json
import random
import sys
import time
import urllib.error
import urllib.request

URL, CUSTOMER, LOCKOUT = sys.argv[1].rstrip("/"), sys.argv[2], float(sys.argv[3])
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-12", "carol": "carol-password-1",
             "root": "root-password-1", "vic": "vic-password-12"}
failures = 0


def check(cond, what):
    global failures
    print(("ok - " if cond else "not ok - ") + what, flush=True)
    if not cond:
        failures += 1


class Client:
    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect())
        self.csrf = ""
        self.headers = {}

    def call(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        req = urllib.request.Request(URL + path, data=data, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                self.headers = dict(r.headers)
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            self.headers = dict(e.headers)
            text = e.read().decode()
            status = e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def login(self, name, password=None):
        status, out = self.call("POST", "/console/api/login", {"name": name, "password": password or PASSWORDS[name]})
        if status == 200:
            self.csrf = out["csrf"]
        return status, out

    def op(self, op, body=None, csrf=True):
        return self.call("POST", "/console/api/op/" + op, body or {}, {"X-CSRF-Token": self.csrf} if csrf else {})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def code(out):
    return out.get("error", {}).get("code") if isinstance(out, dict) else None


def definition(cid):
    return {"id": cid, "name": "理财提醒 " + cid, "channel": "wechat_push", "audience": "tier in (affluent, private)",
            "content": {"categories": [], "items": [], "tags": []},
            "schedule": {"kind": "once", "at": time.strftime("%Y-%m-%dT10:00", time.localtime(time.time() + 30 * 86400))},
            "holdout": 0.2,
            "priority": 0, "objective": {"w_click": 1, "w_convert": 0}, "budget": {"per_day": 0, "total": 0}}


anon = Client()
status, page = anon.call("GET", "/console/")
check(status == 200 and "<html" in page.lower(), "GET /console/ serves the console's page")
csp = anon.headers.get("Content-Security-Policy", "")
check("script-src 'self'" in csp and anon.headers.get("X-Frame-Options") == "DENY" and
      anon.headers.get("X-Content-Type-Options") == "nosniff", "the console's files carry CSP, no framing, nosniff")
status, _ = anon.call("GET", "/")
check(status in (301, 302, 303) and anon.headers.get("Location", "").endswith("/console/"), "/ redirects to /console/")
status, out = anon.call("GET", "/console/api/me")
check(status == 401 and code(out) == "unauthenticated", "me without a session: 401")
status, out = anon.call("POST", "/console/api/op/stats", {})
check(status == 401, "an op without a session: 401")

# Logins.
status, wrong = anon.login("alice", "not-her-password")
status2, nobody = anon.login("mallory", "not-her-password")
check(status == 401 and status2 == 401 and wrong == nobody, "a wrong password and an unknown name: the same 401")
status, out = anon.call("POST", "/console/api/login", raw=b"name=alice&password=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
check(status == 415, "a form-encoded login (what a cross-site form can send): 415")
status, out = anon.call("POST", "/console/api/login", raw=b"{not json")
check(status == 400 and code(out) == "bad_request", "a login body that is not JSON: 400")

alice = Client()
status, me = alice.login("alice")
cookie = alice.headers.get("Set-Cookie", "")
check(status == 200 and me["role"] == "marketer" and len(me["csrf"]) == 64 and "approved" not in me["transitions"],
      "alice logs in as a marketer (no 'approved' among her transitions)")
check("HttpOnly" in cookie and "SameSite=Strict" in cookie, "the session cookie is HttpOnly and SameSite=Strict")
status, out = alice.call("GET", "/console/api/me")
check(status == 200 and out["name"] == "alice", "me answers with the session")

# CSRF and content type.
status, out = alice.op("stats", csrf=False)
check(status == 403 and code(out) == "forbidden", "an op without X-CSRF-Token: 403 even with the cookie")
status, out = alice.call("POST", "/console/api/op/stats", {}, {"X-CSRF-Token": "0" * 64})
check(status == 403, "an op with a wrong X-CSRF-Token: 403")
status, out = alice.call("POST", "/console/api/op/stats", raw=b"{}",
                         headers={"X-CSRF-Token": alice.csrf, "Content-Type": "text/plain"})
check(status == 415, "an op that is not application/json: 415")
status, out = alice.op("stats")
check(status == 200 and "experiments" in out and "ops" in out, "stats through the console (with its experiments)")

# The maker: the operator is the session's, whatever the body says.
body = {"definition": definition("api-1"), "operator": "mallory"}
status, out = alice.op("campaigns.create", body)
check(status == 200 and out["campaign"]["created_by"] == "alice", "create: the author is the session's operator")
status, out = alice.op("campaigns.transition", {"campaign_id": "api-1", "to": "submitted"})
check(status == 200 and out["campaign"]["state"] == "submitted", "alice submits")
status, out = alice.op("campaigns.transition", {"campaign_id": "api-1", "to": "approved"})
check(status == 403 and code(out) == "forbidden", "a marketer may not approve: 403")
status, out = alice.op("reload", {})
check(status == 403, "a marketer may not reload: 403")
status, out = alice.op("no.such.op", {})
check(status == 404 and code(out) == "unknown_op", "an unknown op: 404 unknown_op")

# The checker.
bob = Client()
bob.login("bob")
status, out = bob.op("campaigns.dryrun", {"campaign_id": "api-1"})
summary = out.get("summary", {}) if status == 200 else {}
check(status == 200 and summary.get("dry_run") is True and summary.get("audience", 0) > 0 and
      summary.get("sends", 0) + summary.get("skipped", 0) == summary.get("audience") and
      set(summary.get("pressure", {})) == {"before", "after"},
      "bob's dry run before approving: audience = sends + skipped, pressure before and after")
status, again = bob.op("campaigns.dryrun", {"campaign_id": "api-1"})
check(status == 200 and again["summary"]["sends"] == summary.get("sends"), "a dry run reserves nothing: the same again")
status, out = bob.op("campaigns.dryrun", {"campaign_id": "no-such"})
check(status == 404, "a dry run of an unknown campaign: 404")
status, out = bob.op("campaigns.transition", {"campaign_id": "api-1", "to": "approved"})
check(status == 200 and out["campaign"]["approved_by"] == "bob", "bob approves alice's campaign")
status, out = bob.op("campaigns.transition", {"campaign_id": "api-1", "to": "scheduled"})
check(status == 200 and out["campaign"]["state"] == "scheduled", "bob schedules it: %d %s" % (status, str(out)[:200]))
status, out = bob.op("campaigns.create", {"definition": definition("api-2")})
check(status == 403, "an approver may not create: 403")
status, out = bob.op("campaigns.audit", {"campaign_id": "api-1"})
entries = out.get("entries", []) if status == 200 else []
check([(e["who"], e["from"].split(":")[0]) for e in entries] ==
      [("alice", "console"), ("alice", "console"), ("bob", "console"), ("bob", "console")],
      "the campaign's audit log: alice, alice, bob, bob, each from the console")

# An admin authors and cannot approve their own (maker-checker holds for every role).
root = Client()
root.login("root")
status, out = root.op("campaigns.create", {"definition": definition("api-3")})
root.op("campaigns.transition", {"campaign_id": "api-3", "to": "submitted"})
status, out = root.op("campaigns.transition", {"campaign_id": "api-3", "to": "approved"})
check(status == 403 and "maker-checker" in out.get("error", {}).get("message", ""),
      "an admin may not approve a campaign they wrote (maker-checker): 403")

# An admin reloads (the served version again, then one that does not exist): both in the
# overview's reload history and in the admin's action log.
status, out = root.op("reload", {})
check(status == 200, "root reloads: %d %s" % (status, str(out)[:160]))
status, out = root.op("reload", {"version": "v-missing"})
check(status == 404, "a reload of a missing version: 404")
status, st = root.op("stats", {})
recent = st.get("reloads", {}).get("recent", []) if status == 200 else []
check(len(recent) >= 1 and recent[-1]["by"] == "request" and recent[-1]["served"] and not recent[-1]["error"],
      "stats' reload history names the reload, by request, and the version served: %s" % recent[-1:])

# Contact pressure across the customer base: every customer counted once in each window.
status, out = root.op("pressure", {"channel": "wechat_push"})
p = out.get("pressure", {}) if status == 200 else {}
check(status == 200 and p.get("customers", 0) > 0 and sum(p["7d"]["customers_by_bucket"]) == p["customers"] and
      sum(p["30d"]["customers_by_bucket"]) == p["customers"] and p["30d"]["mean"] >= p["7d"]["mean"],
      "pressure: every customer in one bucket of each window, 30 days at least 7: %s" % str(p)[:200])
status, out = root.op("pressure", {"channel": ""})
check(status == 400, "pressure without a channel: 400")

# The service agent.
carol = Client()
carol.login("carol")
status, out = carol.op("history", {"customer_id": CUSTOMER})
check(status == 200 and "caps" in out and "decisions" in out, "carol looks up a customer's history")
portrait = out.get("portrait") if status == 200 else None
check(portrait is None or portrait.get("churn_risk") in (None, "masked"), "the agent's portrait masks the churn risk")
for op, fields in (("campaigns.create", {"definition": definition("api-4")}), ("reload", {}), ("stats", {}),
                   ("campaigns.dryrun", {"campaign_id": "api-1"}), ("pressure", {"channel": "sms"}),
                   ("users.list", {}), ("feedback", {"events": []})):
    status, out = carol.op(op, fields)
    check(status == 403, "a service agent may not call " + op)

# The viewer; then an admin disables it: its open session ends at its next request.
vic = Client()
vic.login("vic")
status, _ = vic.op("campaigns.list", {})
check(status == 200, "a viewer lists campaigns")
status, _ = vic.op("history", {"customer_id": CUSTOMER})
check(status == 403, "a viewer may not look up customers")
status, out = root.op("users.disable", {"name": "vic"})
check(status == 200 and out["user"]["disabled"], "root disables vic")
status, out = vic.op("campaigns.list", {})
check(status == 401, "vic's open session ends at once")
status, out = vic.login("vic")
check(status == 401 and out["error"]["message"] == "account disabled", "vic cannot log in: account disabled")
status, out = root.op("users.disable", {"name": "root"})
check(status == 400, "an admin cannot disable their own account")

# A password set by an admin ends the account's sessions; the new one logs in.
status, _ = root.op("users.passwd", {"name": "alice", "password": "alice-password-2"})
check(status == 200, "root sets alice's password")
status, _ = alice.op("campaigns.list", {})
check(status == 401, "alice's session opened before the change ends")
status, _ = alice.login("alice", "alice-password-2")
check(status == 200, "alice logs in with the new password")
status, out = root.op("users.add", {"name": "dan", "role": "boss", "password": "dan-password-12"})
check(status == 400 and "role" in out["error"]["message"], "users.add with an unknown role: 400 naming it")
status, out = root.op("users.add", {"name": "dan", "role": "viewer", "password": "short"})
check(status == 400 and "password" in out["error"]["message"], "users.add with a short password: 400")
status, out = root.op("users.add", {"name": "alice", "role": "viewer", "password": "alice-password-9"})
check(status == 409, "users.add of an existing name: 409")
status, out = root.op("users.list", {})
names = sorted(u["name"] for u in out.get("users", []))
check(names == ["alice", "bob", "carol", "root", "vic"] and all("hash" not in u for u in out["users"]),
      "users.list: every account, no hash")

# One's own password.
status, out = carol.op("password.change", {"old_password": "wrong-one-12", "password": "carol-password-2"})
check(status == 403, "password.change with a wrong old password: 403")
status, out = carol.op("password.change", {"old_password": PASSWORDS["carol"], "password": "carol-password-2"})
check(status == 200, "carol changes her own password")
status, _ = carol.op("history", {"customer_id": CUSTOMER})
check(status == 200, "and her own session stays")

# The operators' action logs.
status, out = root.op("operators.audit", {"name": "carol"})
actions = [(e["action"], e["detail"]) for e in out.get("entries", [])]
check(("lookup", "customer " + CUSTOMER + " (ok)") in actions and any(a == "login" for a, _ in actions) and
      any(a == "denied" and d == "reload" for a, d in actions),
      "carol's action log: her login, her lookup of the customer, her refused reload")
status, out = root.op("operators.audit", {"name": "alice"})
actions = [e["action"] for e in out.get("entries", [])]
check("login_failed" in actions and "campaigns.transition" in actions and "campaigns.create" in actions,
      "alice's action log: a failed login, her create and transitions")
status, out = root.op("operators.audit", {"name": "root"})
reloads = [e["detail"] for e in out.get("entries", []) if e["action"] == "reload"]
check(reloads == ["version CURRENT (ok)", "version v-missing (not_found)"], "root's action log: both reloads, with "
      "their outcome: %s" % reloads)
status, out = root.op("operators.audit", {"name": "_unknown"})
check(any("mallory" in e["detail"] for e in out.get("entries", [])), "the unknown name's failed login is logged")

# Logout.
status, _ = bob.call("POST", "/console/api/logout", {}, {"X-CSRF-Token": bob.csrf})
check(status == 200, "bob logs out")
status, _ = bob.call("GET", "/console/api/me")
check(status == 401, "bob's session is gone")

# A fuzz of the API: every reply JSON, no 500, no session from garbage.
rng = random.Random(19)
ops = ["stats", "history", "campaigns.create", "campaigns.transition", "users.add", "operators.audit", "profile",
       "report", "password.change", "segments.save"]
pieces = ["", "{", "}", "[]", "null", '"x"', "1e999", "\"\\ud800\"", "{\"name\":[]}", "{\"customer_id\":{}}",
          "{\"definition\":\"<script>\"}", "{\"to\":\"approved\",\"campaign_id\":\"api-1\"}", "\xff\xfe", "' OR 1=1 --"]
bad = 0
for i in range(300):
    if rng.random() < 0.5:
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    else:
        raw = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 5))).encode("utf-8", "surrogateescape")
    who = rng.choice([root, carol, anon])
    path = "/console/api/login" if i % 4 == 0 else "/console/api/op/" + rng.choice(ops)
    status, out = who.call("POST", path, raw=raw, headers={"X-CSRF-Token": who.csrf})
    if status >= 500 or not isinstance(out, dict) or (path.endswith("login") and status == 200):
        bad += 1
        print("# fuzz", path, raw[:60], status, str(out)[:120])
check(bad == 0, "300 fuzzed console requests: each a JSON reply, none a 500, no login from garbage")
status, _ = root.op("stats", {})
check(status == 200, "the server serves after the fuzz")

# Rate limiting (the test server allows 5 failures per name or address in LOCKOUT seconds; this address has had 3).
limited = Client()
statuses = [limited.login("bob", "guess-number-%d" % i)[0] for i in range(5)]
first = statuses.index(429) if 429 in statuses else len(statuses)
check(first >= 2 and all(s == 401 for s in statuses[:first]) and all(s == 429 for s in statuses[first:]),
      "failed logins: 401 until the limit (of the name or of this address), then 429: %s" % statuses)
status, out = limited.login("bob")
retry = limited.headers.get("Retry-After")
check(status == 429 and code(out) == "rate_limited" and retry is not None,
      "past the limit even the right password is refused: 429 with Retry-After")
time.sleep(LOCKOUT + 0.5)
status, _ = limited.login("bob")
check(status == 200, "after the lockout the right password logs in")

print("%d checks failed" % failures if failures else "all checks passed")
sys.exit(1 if failures else 0)
