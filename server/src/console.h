// Private: the operator console of the HTTP port (issue 19). Static files (console/ of the
// repository: HTML, CSS, JavaScript) under /console/, and a session-authenticated JSON API under
// /console/api/: login (Argon2id passwords of campaign::Operators, failed logins rate limited),
// logout, me, and op/<op>: a server op forwarded to the wire with `operator` set from the
// session, when the operator's role allows it (the table is in console.cc), plus the account ops
// users.* and operators.audit. Sessions live in this process (HttpOnly SameSite=Strict cookie,
// idle and absolute expiry, a CSRF token every POST must echo); every login, change, reload and
// customer lookup goes to the operator's action log. httplib stays in console.cc and http.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace httplib {
class Server;
}

namespace qm::campaign {
class Operators;
}

namespace qm::server {

struct ConsoleConfig {
  std::string dir;                  // the static files ("" or missing: the API only, "/console/" says so)
  int64_t idle_ms = 30 * 60000;     // a session ends after this long without a request
  int64_t max_ms = 12 * 3600000;    // and this long after its login, whatever its use
  bool secure_cookie = false;       // mark the cookie Secure (behind an HTTPS terminating proxy)
  int max_failures = 5;             // failed logins per name, and per client address, within
  int64_t lockout_ms = 15 * 60000;  // this window before further attempts are refused (429)
};

struct ConsoleHooks {
  campaign::Operators* operators = nullptr;  // null: no event store, so no accounts (login says so)
  std::vector<std::string> wire_ops;         // every op of the server (an admin may call each)
  // Sends one request (a JSON object with "op") through the server's wire; returns its reply
  // and sets *status to the HTTP status of the reply's code.
  std::function<nlohmann::json(nlohmann::json request, int* status)> forward;
};

class Console;

// Registers /console/... routes on `http`. The returned object owns the sessions; keep it alive
// as long as `http` serves.
std::shared_ptr<Console> MountConsole(httplib::Server& http, ConsoleConfig config, ConsoleHooks hooks);

}  // namespace qm::server
