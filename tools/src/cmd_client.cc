// `qianmian client` (SPEC §3): one request to a running server, JSON in and out, for operators.
// Prints the reply (JSON) on stdout; exits non-zero when the server answered ok = false (75 when a
// retry may help: overloaded, unavailable, deadline_exceeded; else 2).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "curve_flags.h"
#include "qianmian/client/client.h"

namespace qm::tools {

namespace {

struct ClientCmdOptions {
  std::string connect = "tcp://127.0.0.1:5555";
  std::string op;
  std::string json;
  int64_t timeout_ms = 10000;
  CurveFlags curve;
};

Status Run(const ClientCmdOptions& o) {
  client::ClientOptions co;
  co.endpoint = o.connect;
  co.timeout_ms = o.timeout_ms;
  QM_RETURN_IF_ERROR(ApplyCurve(o.curve, &co));
  QM_ASSIGN_OR_RETURN(auto c, client::Client::Connect(co));
  QM_ASSIGN_OR_RETURN(client::JsonReply reply, c->Call(o.op, o.json));
  std::printf("%s\n", reply.json.c_str());
  std::fflush(stdout);
  if (!reply.ok) {
    // Exit 75 (retry later) for the codes a retry may cure, 2 for the rest (README, "Exit codes").
    const std::string msg = "server answered " + reply.error_code + ": " + reply.error_message;
    const bool later = reply.error_code == "overloaded" || reply.error_code == "unavailable" ||
                       reply.error_code == "deadline_exceeded";
    return later ? Status::Unavailable(msg) : Status::FailedPrecondition(msg);
  }
  return Status::Ok();
}

}  // namespace

Command AddClientCommand(CLI::App& root) {
  auto opts = std::make_shared<ClientCmdOptions>();
  Command c;
  c.app = root.add_subcommand("client",
                              "Sends one request to a running server and prints the reply as JSON, e.g. "
                              "qianmian client --connect tcp://127.0.0.1:5555 recommend "
                              "'{\"customer_id\":\"c1\",\"channel\":\"app_home\",\"count\":5}'");
  c.app->add_option("--connect", opts->connect, "server address (default tcp://127.0.0.1:5555)");
  c.app->add_option("--timeout", opts->timeout_ms, "milliseconds to wait for the reply (default 10000)")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  c.app
      ->add_option("op", opts->op,
                   "recommend, feedback, score, items.upsert, items.retire, customers.upsert, history, reload, "
                   "stats or health")
      ->required();
  c.app->add_option("json", opts->json, "the request's other fields as a JSON object (default {})");
  AddCurveOptions(c.app, &opts->curve);
  c.run = [opts]() -> Status { return Run(*opts); };
  return c;
}

}  // namespace qm::tools
