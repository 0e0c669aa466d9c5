// `qianmian push` (SPEC §3, §6; issue 7): a WeChat push run for an audience through the engine's
// batched push path, every contact rule applied, sends reserved under the run id before the send
// list is written, and a summary table (and optionally a PNG of the contact pressure).

#include <cstdio>

#include "commands.h"
#include "engine_config.h"
#include "json_output.h"
#include "qianmian/core/time.h"
#include "qianmian/push/push_run.h"
#include "qianmian/serving/engine.h"

namespace qm::tools {

namespace {

struct PushOptions {
  CommonOptions common;
  push::PushRunOptions run;
  std::string now;
  std::string json;  // --json FILE ("-": stdout)
  std::string shard;
};

Status Run(PushOptions o) {
  if (!o.shard.empty()) {
    QM_ASSIGN_OR_RETURN(o.run.shard, push::ParseShard(o.shard));
  }
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  if (!o.now.empty()) {
    auto t = ParseTime(o.now, tz);
    if (!t) return Status::InvalidArgument("--now: cannot parse time '" + o.now + "'");
    o.run.now = *t;
  }
  if (!o.run.dry_run && o.run.run_id.empty())
    return Status::InvalidArgument("--run-id is required (except with --dry-run)");
  o.run.time_zone = config.data.timezone;
  serving::EngineOptions eo = EngineOptionsFrom(config);
  // Opening verifies the artifact version: a bundle that fails is refused before anything is reserved.
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(std::move(eo)));
  QM_ASSIGN_OR_RETURN(push::PushSummary summary, push::RunPush(engine.get(), o.run));
  if (o.json != "-") {
    std::fputs(summary.Format().c_str(), stdout);
    std::fflush(stdout);
  }
  if (!o.json.empty()) QM_RETURN_IF_ERROR(WriteJson(o.json, PushSummaryJson(summary)));
  return Status::Ok();
}

}  // namespace

Command AddPushCommand(CLI::App& root) {
  auto opts = std::make_shared<PushOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("push",
                                "A WeChat push run for an audience: picks the best content per customer through the "
                                "engine, honours every contact rule, reserves the sends under the run id and writes "
                                "the send list CSV customer_id,item_id,scheduled_at,reasons. Re-running a run id sends "
                                "nothing twice: it re-emits the same list (and completes a run that was killed)");
  AddCommonOptions(cmd.app, &opts->common);
  auto& r = opts->run;
  cmd.app->add_option("--run-id", r.run_id, "push run id: the reservation key (required unless --dry-run)");
  cmd.app
      ->add_option("--audience", r.audience,
                   "'all', an expression such as 'tier in (affluent, private) and region = \"Jinan\" and "
                   "tag:payroll and age >= 30', or @FILE with one customer id per line")
      ->required();
  cmd.app->add_option("--out", r.out, "send list CSV (written atomically)")->required();
  cmd.app->add_option("--shard", opts->shard,
                      "K/N: only the audience's customers in shard K of N (by a hash of the customer id), for N "
                      "machines sharing the store; the run id stays the reservation key across shards");
  cmd.app->add_option("--now", opts->now, "time of the run (ISO-8601 or epoch ms; default now)");
  cmd.app->add_flag("--dry-run", r.dry_run, "check every rule but reserve nothing; the list is what would be sent");
  cmd.app->add_option("--channel", r.channel, "push channel (default wechat_push)");
  cmd.app->add_option("--per-customer", r.per_customer, "items sent to each customer, 1..10 (default 1)");
  cmd.app->add_flag(
      "--include-service", r.include_service,
      "also push service items (account alerts); SPEC 6 exempts them from opt-outs, caps and quiet hours");
  cmd.app->add_option("--summary", r.summary, "also write the summary table to this file");
  cmd.app->add_option("--json", opts->json, kJsonHelp);
  cmd.app->add_option("--plot", r.plot, "write the contact-pressure histogram (PNG) to this file");
  cmd.app->add_option("--threads", r.threads, "worker threads (default 4 per core: store writes overlap computation)");
  cmd.app->add_option("--batch", r.batch, "customers per engine call (default 256)");
  cmd.app->add_option("--stop-after", r.stop_after, "testing: stop as if killed after N customers")->group("");
  cmd.run = [opts]() -> Status { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
