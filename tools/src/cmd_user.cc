// `qianmian user add|passwd|role|disable|enable|list|audit` (issue 19): the console's operator
// accounts (campaign/operators.h) on the event store of --data / [store]. A password is read from
// --password-file (its first line) or stdin (prompted without echo on a terminal), never from the
// command line (where `ps` shows it). Beside a running server with the embedded store (which locks
// it), an admin manages accounts in the console instead; with Redis, any time.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/campaign/operators.h"
#include "qianmian/core/file.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"

namespace qm::tools {

namespace {

using json = nlohmann::json;

struct UserOptions {
  CommonOptions common;
  std::string action, name, role, password_file, who, format = "text", out;
};

Result<std::string> ReadPassword(const UserOptions& o) {
  std::string line;
  if (!o.password_file.empty()) {
    std::ifstream in(o.password_file);
    if (!in) return Status::IoError("cannot read the password file '" + o.password_file + "'");
    std::getline(in, line);
  } else if (isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "password for %s: ", o.name.c_str());
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::getline(std::cin, line);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  } else {
    std::getline(std::cin, line);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string Who(const UserOptions& o) {
  if (!o.who.empty()) return o.who;
  const char* user = std::getenv("USER");
  return user && *user ? std::string(user) : std::string("cli");
}

Status Run(const UserOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  const bool reads = o.action == "list" || o.action == "audit";
  policy::StoreConfig sc = config.store;
  sc.read_only = reads && sc.backend == "embedded";
  QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore> store, policy::EventStore::Open(sc));
  campaign::Operators ops(store.get());
  auto write = [&](const std::string& text) -> Status {
    if (!o.out.empty() && o.out != "-") return WriteFileAtomically(o.out, {text});
    std::fputs(text.c_str(), stdout);
    return Status::Ok();
  };
  if (o.action == "list") {
    QM_ASSIGN_OR_RETURN(std::vector<campaign::OperatorAccount> all, ops.List());
    json list = json::array();
    std::string text;
    for (const campaign::OperatorAccount& a : all) {
      list.push_back(json::parse(campaign::OperatorAccountJson(a)));
      text += a.name + "\t" + campaign::RoleName(a.role) + "\t" + (a.disabled ? "disabled" : "active") + "\t" +
              FormatIsoUtc(a.created_at) + "\t" + a.created_by + "\n";
    }
    return write(o.format == "json" ? list.dump(2) + "\n" : text);
  }
  if (o.action == "audit") {  // the account's changes, then its actions
    QM_ASSIGN_OR_RETURN(std::vector<std::string> changes, ops.AccountAudit(o.name));
    QM_ASSIGN_OR_RETURN(std::vector<campaign::OperatorAction> actions, ops.Actions(o.name));
    std::string text;
    for (const std::string& c : changes) text += json{{"account", json::parse(c)}}.dump() + "\n";
    for (const campaign::OperatorAction& a : actions) {
      text += campaign::OperatorActionJson(a) + "\n";
    }
    return write(text);
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const campaign::Actor by{Who(o), std::string("cli@") + host, kNoTime};
  Result<campaign::OperatorAccount> done = Status::Internal("no action");
  if (o.action == "add" || o.action == "passwd") {
    if (o.action == "add" && !campaign::ParseRole(o.role)) {
      return Status::InvalidArgument("--role: one of viewer, marketer, approver, service_agent, admin (got '" + o.role +
                                     "')");
    }
    QM_ASSIGN_OR_RETURN(std::string password, ReadPassword(o));
    done = o.action == "add" ? ops.Add(o.name, *campaign::ParseRole(o.role), password, by)
                             : ops.SetPassword(o.name, password, by);
  } else if (o.action == "role") {
    const std::optional<campaign::Role> role = campaign::ParseRole(o.role);
    if (!role) {
      return Status::InvalidArgument("--role: one of viewer, marketer, approver, service_agent, admin (got '" + o.role +
                                     "')");
    }
    done = ops.SetRole(o.name, *role, by);
  } else {
    done = ops.SetDisabled(o.name, o.action == "disable", by);
  }
  QM_RETURN_IF_ERROR(done.status());
  QM_RETURN_IF_ERROR(ops.LogAction(by.who, {NowMs(), by.from, "users." + o.action, "operator " + o.name}));
  std::printf("operator %s: %s (%s%s)\n", done->name.c_str(), o.action.c_str(), campaign::RoleName(done->role),
              done->disabled ? ", disabled" : "");
  return Status::Ok();
}

}  // namespace

Command AddUserCommand(CLI::App& root) {
  auto opts = std::make_shared<UserOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("user",
                                "The console's operator accounts (roles viewer, marketer, approver, service_agent, "
                                "admin; passwords hashed with Argon2id) on the event store of --data / [store]");
  cmd.app->require_subcommand(1);
  const std::pair<const char*, const char*> subs[] = {
      {"add", "create account NAME with --role; the password from --password-file or stdin (10+ characters)"},
      {"passwd", "set NAME's password (from --password-file or stdin); the account's open sessions end"},
      {"role", "change NAME's --role (takes effect on the account's next console request)"},
      {"disable", "disable NAME: no login, and its open sessions end at their next request"},
      {"enable", "enable NAME again"},
      {"list", "every account: name, role, state, created, by whom (--format json)"},
      {"audit", "NAME's account changes and its actions (logins, lookups, transitions, reloads) as JSON lines"},
  };
  for (const auto& [name_c, help] : subs) {
    const std::string name = name_c;
    CLI::App* sub = cmd.app->add_subcommand(name, help);
    AddCommonOptions(sub, &opts->common);
    sub->callback([opts, name] { opts->action = name; });
    if (name != "list") sub->add_option("name", opts->name, "the account's name")->required();
    if (name == "add" || name == "role") sub->add_option("--role", opts->role, "the account's role")->required();
    if (name == "add" || name == "passwd") {
      sub->add_option("--password-file", opts->password_file, "read the password from this file's first line");
    }
    if (name != "list" && name != "audit") {
      sub->add_option("--operator", opts->who, "who makes the change (recorded; default $USER)");
    }
    if (name == "list")
      sub->add_option("--format", opts->format, "text or json")->check(CLI::IsMember({"text", "json"}));
    if (name == "list" || name == "audit") sub->add_option("--out", opts->out, "write to this file instead of stdout");
  }
  cmd.run = [opts] { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
