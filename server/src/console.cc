// The operator console of the HTTP port (console.h).
#include "console.h"

#include <httplib.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>

#include "codec.h"
#include "http.h"
#include "qianmian/campaign/operators.h"
#include "qianmian/core/time.h"

namespace qm::server {

namespace {

using json = nlohmann::json;
using campaign::Role;

constexpr const char* kCookie = "qm_session";
constexpr size_t kMaxSessions = 10000;
constexpr int kMaxVerifying = 4;  // Argon2id verifications at once (64 MiB each)

// The console's own account ops.
const std::vector<std::string> kAccountOps = {"users.list",    "users.add",    "users.passwd",   "users.role",
                                              "users.disable", "users.enable", "operators.audit"};
const std::vector<std::string> kViewerOps = {"pressure",       "stats",         "health",
                                             "campaigns.list", "campaigns.get", "campaigns.audit",
                                             "segments.list",  "segments.get",  "report"};

// What a role may call ("password.change", one's own password, every role may).
std::vector<std::string> OpsOf(Role r, const std::vector<std::string>& wire_ops) {
  std::vector<std::string> ops;
  switch (r) {
    case Role::kViewer:
      ops = kViewerOps;
      break;
    case Role::kMarketer:
      ops = kViewerOps;
      ops.insert(ops.end(),
                 {"campaigns.create", "campaigns.update", "campaigns.transition", "campaigns.dryrun", "segments.save"});
      break;
    case Role::kApprover:
      ops = kViewerOps;
      ops.insert(ops.end(), {"campaigns.transition", "campaigns.dryrun"});
      break;
    case Role::kServiceAgent:
      ops = {"health", "history", "profile", "campaigns.list", "campaigns.get"};
      break;
    case Role::kAdmin:
      ops = wire_ops;
      ops.insert(ops.end(), kAccountOps.begin(), kAccountOps.end());
      break;
  }
  ops.push_back("password.change");
  return ops;
}

// The states a role may move a campaign to (the maker drafts, submits and runs what was
// approved; the checker approves or rejects; both may pause or cancel). Maker-checker itself
// (an author never approves) is the campaigns' own rule, for admins too.
std::vector<std::string> TransitionsOf(Role r) {
  switch (r) {
    case Role::kMarketer:
      return {"draft", "submitted", "scheduled", "paused", "running", "cancelled"};
    case Role::kApprover:
      return {"approved", "rejected", "scheduled", "paused", "running", "cancelled"};
    case Role::kAdmin:
      return {"draft", "submitted", "approved", "rejected", "scheduled", "paused", "running", "completed", "cancelled"};
    default:
      return {};
  }
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

json Error(const std::string& code, const std::string& message) {
  return json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

// The wire code and HTTP status of a local Status (the wire's own mapping).
std::pair<std::string, int> CodeOf(const Status& st) {
  const std::string code = ErrorCodeOf(st);
  return {code, HttpStatusOf(code)};
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), buf.data(), buf.size());
  hex.pop_back();
  return hex;
}

// The session table's key of a cookie token: its hash (a lookup by the token itself would leak
// timing about other tokens).
std::string KeyOf(const std::string& token) {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(token.data()), token.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string CookieOf(const httplib::Request& req) {
  const std::string cookies = req.get_header_value("Cookie");
  const std::string key = std::string(kCookie) + "=";
  size_t at = 0;
  while (at < cookies.size()) {
    while (at < cookies.size() && (cookies[at] == ' ' || cookies[at] == ';')) ++at;
    size_t end = cookies.find(';', at);
    if (end == std::string::npos) end = cookies.size();
    if (cookies.compare(at, key.size(), key) == 0) return cookies.substr(at + key.size(), end - at - key.size());
    at = end;
  }
  return "";
}

}  // namespace

class Console {
 public:
  Console(ConsoleConfig config, ConsoleHooks hooks) : config_(std::move(config)), hooks_(std::move(hooks)) {}

  struct Session {
    std::string name;
    Role role = Role::kViewer;
    std::string csrf;
    TimeMs created = 0, last_seen = 0;
  };

  void Mount(httplib::Server& h);

 private:
  TimeMs ExpiresOf(const Session& s) const {
    return std::min(s.last_seen + config_.idle_ms, s.created + config_.max_ms);
  }
  json SessionJson(const Session& s) const {
    return json{{"ok", true},
                {"name", s.name},
                {"role", campaign::RoleName(s.role)},
                {"csrf", s.csrf},
                {"expires_ms", ExpiresOf(s)},
                {"ops", OpsOf(s.role, hooks_.wire_ops)},
                {"transitions", TransitionsOf(s.role)}};
  }
  void Log(const std::string& who, const std::string& from, const std::string& action, const std::string& detail) {
    if (!hooks_.operators) return;
    Status st = hooks_.operators->LogAction(who, {NowMs(), from, action, detail});
    if (!st.ok())
      spdlog::error("console: operator action not logged ({} {} {}): {}", who, action, detail, st.ToString());
  }
  static std::string From(const httplib::Request& req) { return "console:" + req.remote_addr; }

  // The request's live session (refreshed from its account: role changes apply at once; a
  // disabled account or a password changed since the login ends it), or nullopt after answering
  // 401. `post`: also checks the CSRF token.
  std::optional<Session> Authenticate(const httplib::Request& req, httplib::Response& res, bool post);
  // Failed logins of the name and the address within the window; 0 when neither is locked out,
  // else the seconds until one attempt frees.
  int64_t LockedFor(const std::string& name, const std::string& addr, TimeMs now);
  void Failed(const std::string& name, const std::string& addr, TimeMs now);

  void Login(const httplib::Request& req, httplib::Response& res);
  void Logout(const httplib::Request& req, httplib::Response& res);
  void Me(const httplib::Request& req, httplib::Response& res);
  void Op(const std::string& op, const httplib::Request& req, httplib::Response& res);
  // users.*, operators.audit, password.change: *status and the reply.
  json AccountOp(const std::string& op, const json& body, Session* s, const std::string& from, int* status);

  ConsoleConfig config_;
  ConsoleHooks hooks_;
  std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;             // by KeyOf(token); guarded by mu_
  std::unordered_map<std::string, std::deque<TimeMs>> failures_;  // "n:"+name, "a:"+address; guarded by mu_
  std::atomic<int> verifying_{0};
};

int64_t Console::LockedFor(const std::string& name, const std::string& addr, TimeMs now) {
  const TimeMs window = config_.lockout_ms;
  std::lock_guard<std::mutex> lock(mu_);
  int64_t wait = 0;
  for (const std::string& key : {"n:" + name, "a:" + addr}) {
    auto it = failures_.find(key);
    if (it == failures_.end()) continue;
    std::deque<TimeMs>& times = it->second;
    while (!times.empty() && times.front() <= now - window) times.pop_front();
    if (static_cast<int>(times.size()) >= config_.max_failures) {
      wait = std::max<int64_t>(wait, (times.front() + window - now + 999) / 1000);
    }
  }
  return wait;
}

void Console::Failed(const std::string& name, const std::string& addr, TimeMs now) {
  const TimeMs window = config_.lockout_ms;
  std::lock_guard<std::mutex> lock(mu_);
  if (failures_.size() > 100000) {  // forget addresses and names whose failures are all old
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = it->second.empty() || it->second.back() <= now - window ? failures_.erase(it) : std::next(it);
    }
  }
  for (const std::string& key : {"n:" + name, "a:" + addr}) {
    std::deque<TimeMs>& times = failures_[key];
    times.push_back(now);
    while (static_cast<int>(times.size()) > config_.max_failures) times.pop_front();
  }
}

std::optional<Console::Session> Console::Authenticate(const httplib::Request& req, httplib::Response& res, bool post) {
  const std::string token = CookieOf(req);
  if (token.empty()) {
    Reply(res, 401, Error("unauthenticated", "log in first"));
    return std::nullopt;
  }
  const std::string key = KeyOf(token);
  const TimeMs now = NowMs();
  Session s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(key);
    if (it == sessions_.end() || ExpiresOf(it->second) <= now) {
      if (it != sessions_.end()) sessions_.erase(it);
      Reply(res, 401, Error("unauthenticated", "the session has ended; log in again"));
      return std::nullopt;
    }
    s = it->second;
  }
  if (post && !SameSecret(req.get_header_value("X-CSRF-Token"), s.csrf)) {
    Reply(res, 403, Error("forbidden", "missing or wrong X-CSRF-Token (reload the console)"));
    return std::nullopt;
  }
  Result<campaign::OperatorAccount> a = hooks_.operators->Get(s.name);
  if (!a.ok() && a.status().code() != StatusCode::kNotFound) {
    Reply(res, 503, Error("unavailable", "the event store does not answer: " + a.status().message()));
    return std::nullopt;
  }
  if (!a.ok() || a->disabled || a->password_set_at > s.created) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions_.erase(key);
    }
    Reply(res, 401, Error("unauthenticated", "the account was disabled or its password changed; log in again"));
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {  // logged out meanwhile
    Reply(res, 401, Error("unauthenticated", "the session has ended; log in again"));
    return std::nullopt;
  }
  it->second.role = a->role;
  it->second.last_seen = now;
  return it->second;
}

void Console::Login(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("name") || !body["name"].is_string() ||
      !body.contains("password") || !body["password"].is_string()) {
    return Reply(res, 400, Error("bad_request", "the body must be {\"name\": ..., \"password\": ...}"));
  }
  if (!hooks_.operators) {
    return Reply(res, 503, Error("unavailable", "operator accounts need the event store, and this server has none"));
  }
  const std::string name = body["name"].get<std::string>().substr(0, 128);
  const std::string password = body["password"];
  const std::string from = From(req);
  const TimeMs now = NowMs();
  if (const int64_t wait = LockedFor(name, req.remote_addr, now); wait > 0) {
    res.set_header("Retry-After", std::to_string(wait));
    return Reply(res, 429,
                 Error("rate_limited", "too many failed logins; try again in " + std::to_string(wait) + " s"));
  }
  if (verifying_.fetch_add(1) >= kMaxVerifying) {
    verifying_.fetch_sub(1);
    res.set_header("Retry-After", "1");
    return Reply(res, 503, Error("overloaded", "too many logins at once; try again"));
  }
  Result<campaign::OperatorAccount> a = hooks_.operators->Verify(name, password);
  verifying_.fetch_sub(1);
  if (!a.ok()) {
    if (a.status().code() != StatusCode::kPermissionDenied) {
      const auto [code, status] = CodeOf(a.status());
      return Reply(res, status, Error(code, a.status().message()));
    }
    Failed(name, req.remote_addr, now);
    Log(name, from, "login_failed", a.status().message());  // an unknown name's under "_unknown"
    return Reply(res, 401, Error("unauthenticated", a.status().message()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.erase("n:" + name);
  }
  Session s{a->name, a->role, RandomHex(32), now, now};
  const std::string token = RandomHex(32);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (sessions_.size() >= kMaxSessions) {
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        it = ExpiresOf(it->second) <= now ? sessions_.erase(it) : std::next(it);
      }
    }
    if (sessions_.size() >= kMaxSessions) {
      return Reply(res, 503, Error("unavailable", "too many open sessions"));
    }
    sessions_[KeyOf(token)] = s;
  }
  Log(s.name, from, "login", campaign::RoleName(s.role));
  res.set_header("Set-Cookie", std::string(kCookie) + "=" + token + "; Path=/console; HttpOnly; SameSite=Strict" +
                                   (config_.secure_cookie ? "; Secure" : ""));
  Reply(res, 200, SessionJson(s));
}

void Console::Logout(const httplib::Request& req, httplib::Response& res) {
  std::optional<Session> s = Authenticate(req, res, true);
  if (!s) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(KeyOf(CookieOf(req)));
  }
  Log(s->name, From(req), "logout", "");
  res.set_header("Set-Cookie", std::string(kCookie) + "=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
  Reply(res, 200, json{{"ok", true}});
}

void Console::Me(const httplib::Request& req, httplib::Response& res) {
  if (!hooks_.operators)
    return Reply(res, 401, Error("unauthenticated", "no accounts: this server has no event store"));
  std::optional<Session> s = Authenticate(req, res, false);
  if (s) Reply(res, 200, SessionJson(*s));
}

json Console::AccountOp(const std::string& op, const json& body, Session* s, const std::string& from, int* status) {
  auto str = [&](const char* key) -> std::string {
    return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : std::string();
  };
  auto fail = [&](const Status& st) {
    const auto [code, http] = CodeOf(st);
    *status = http;
    return Error(code, st.message());
  };
  const campaign::Actor by{s->name, from, kNoTime};
  campaign::Operators& ops = *hooks_.operators;
  auto account = [](const campaign::OperatorAccount& a) { return json::parse(campaign::OperatorAccountJson(a)); };
  *status = 200;
  if (op == "users.list") {
    Result<std::vector<campaign::OperatorAccount>> all = ops.List();
    if (!all.ok()) return fail(all.status());
    json list = json::array();
    for (const auto& a : *all) list.push_back(account(a));
    return json{{"ok", true}, {"users", list}};
  }
  if (op == "operators.audit") {
    Result<std::vector<campaign::OperatorAction>> actions = ops.Actions(str("name"));
    if (!actions.ok()) return fail(actions.status());
    json list = json::array();
    for (const auto& a : *actions) list.push_back(json::parse(campaign::OperatorActionJson(a)));
    return json{{"ok", true}, {"entries", list}};
  }
  Result<campaign::OperatorAccount> done = Status::Internal("unknown account op");
  if (op == "password.change") {
    Result<campaign::OperatorAccount> me = ops.Verify(s->name, str("old_password"));
    if (!me.ok()) return fail(Status::PermissionDenied("'old_password': wrong password"));
    done = ops.SetPassword(s->name, str("password"), by);
    if (done.ok()) {  // this session stays; the account's others end
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [key, other] : sessions_) {
        if (other.name == s->name && other.csrf == s->csrf) other.created = done->password_set_at;
      }
    }
  } else if (op == "users.add" || op == "users.role") {
    const std::optional<Role> role = campaign::ParseRole(str("role"));
    if (!role) {
      return fail(Status::InvalidArgument("'role': one of viewer, marketer, approver, service_agent, admin"));
    }
    done = op == "users.add" ? ops.Add(str("name"), *role, str("password"), by) : ops.SetRole(str("name"), *role, by);
  } else if (op == "users.passwd") {
    done = ops.SetPassword(str("name"), str("password"), by);
  } else if (op == "users.disable" || op == "users.enable") {
    if (op == "users.disable" && str("name") == s->name) {
      return fail(Status::InvalidArgument("'name': an admin cannot disable their own account"));
    }
    done = ops.SetDisabled(str("name"), op == "users.disable", by);
  }
  if (!done.ok()) return fail(done.status());
  return json{{"ok", true}, {"user", account(*done)}};
}

void Console::Op(const std::string& op, const httplib::Request& req, httplib::Response& res) {
  if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
    return Reply(res, 415, Error("bad_request", "Content-Type must be application/json"));
  }
  if (!hooks_.operators)
    return Reply(res, 401, Error("unauthenticated", "no accounts: this server has no event store"));
  std::optional<Session> s = Authenticate(req, res, true);
  if (!s) return;
  json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return Reply(res, 400, Error("bad_request", "the body must be a JSON object (UTF-8)"));
  }
  const std::string from = From(req);
  const std::vector<std::string> allowed = OpsOf(s->role, hooks_.wire_ops);
  if (!Contains(allowed, op)) {
    const bool known = Contains(hooks_.wire_ops, op) || Contains(kAccountOps, op) || op == "password.change";
    if (!known) return Reply(res, 404, Error("unknown_op", "unknown op '" + op + "'"));
    Log(s->name, from, "denied", op);
    return Reply(res, 403,
                 Error("forbidden", std::string("a ") + campaign::RoleName(s->role) + " may not call '" + op + "'"));
  }
  std::string detail;
  auto field = [&](const char* key) {
    return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : std::string();
  };
  if (op == "campaigns.transition") {
    const std::string to = field("to");
    if (!Contains(TransitionsOf(s->role), to)) {
      Log(s->name, from, "denied", op + " " + field("campaign_id") + " -> " + to);
      return Reply(res, 403,
                   Error("forbidden",
                         std::string("a ") + campaign::RoleName(s->role) + " may not move a campaign to '" + to + "'"));
    }
    detail = field("campaign_id") + " -> " + to;
  } else if (op == "history" || op == "profile") {
    detail = "customer " + field("customer_id");
  } else if (op == "campaigns.create" || op == "campaigns.update") {
    detail = body.contains("definition") && body["definition"].is_object() ? body["definition"].value("id", "") : "";
  } else if (op == "reload") {
    detail = "version " + (field("version").empty() ? std::string("CURRENT") : field("version"));
  } else if (op.rfind("users.", 0) == 0 || op == "operators.audit") {
    detail = "operator " + field("name");
  } else if (op == "segments.save") {
    detail = field("name");
  }
  const bool logged = !Contains(kViewerOps, op) && op != "users.list" && op != "operators.audit";
  int status = 200;
  json out;
  if (Contains(kAccountOps, op) || op == "password.change") {
    Session live = *s;
    out = AccountOp(op, body, &live, from, &status);
  } else {
    body["op"] = op;
    body["operator"] = s->name;  // never what the page sent
    body["_via"] = from;
    out = hooks_.forward(std::move(body), &status);
  }
  if (logged) {
    const std::string outcome = out.value("ok", false) ? "ok" : out["error"].value("code", "error");
    Log(s->name, from, op == "history" || op == "profile" ? "lookup" : op,
        detail.empty() ? outcome : detail + " (" + outcome + ")");
  }
  // A service agent sees what a service call needs: the contacts, caps, decisions and reasons,
  // not the bank's scores of the customer.
  if (s->role == Role::kServiceAgent && out.contains("portrait") && out["portrait"].is_object()) {
    for (const char* hidden : {"churn_risk", "value_trend"}) {
      if (out["portrait"].contains(hidden)) out["portrait"][hidden] = "masked";
    }
  }
  if (status == 503) res.set_header("Retry-After", "1");
  Reply(res, status, out);
}

void Console::Mount(httplib::Server& h) {
  h.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/console/"); });
  h.Get("/console", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/console/"); });
  if (!config_.dir.empty() && std::filesystem::is_regular_file(std::filesystem::path(config_.dir) / "index.html")) {
    if (!h.set_mount_point("/console", config_.dir)) {
      spdlog::warn("console: cannot serve the files of '{}'", config_.dir);
    }
  } else {
    const std::string why =
        config_.dir.empty() ? std::string("no [server] console_dir") : "no index.html in '" + config_.dir + "'";
    spdlog::warn("console: {}: /console/ serves the API only", why);
    h.Get("/console/", [why](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content("the console's files are not installed here (" + why + ")\n", "text/plain");
    });
  }
  // Every reply of the console, its files included: no framing, no sniffing, only our scripts.
  h.set_file_request_handler(
      [](const httplib::Request&, httplib::Response& res) { res.set_header("Cache-Control", "no-cache"); });
  h.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/console", 0) != 0) return;
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                   "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
  });
  h.Post("/console/api/login", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
      return Reply(res, 415, Error("bad_request", "Content-Type must be application/json"));
    }
    Login(req, res);
  });
  h.Post("/console/api/logout", [this](const httplib::Request& req, httplib::Response& res) { Logout(req, res); });
  h.Get("/console/api/me", [this](const httplib::Request& req, httplib::Response& res) { Me(req, res); });
  h.Post(R"(/console/api/op/([a-z][a-z._]{0,63}))",
         [this](const httplib::Request& req, httplib::Response& res) { Op(req.matches[1], req, res); });
}

std::shared_ptr<Console> MountConsole(httplib::Server& http, ConsoleConfig config, ConsoleHooks hooks) {
  if (sodium_init() < 0) spdlog::error("console: libsodium could not be initialised");
  auto c = std::make_shared<Console>(std::move(config), std::move(hooks));
  c->Mount(http);
  return c;
}

}  // namespace qm::server
