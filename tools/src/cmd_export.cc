// `qianmian export decisions|events`: the event store's decision log or events over a time range
// as CSV (tools/include/qianmian/tools/export.h); `qianmian export rank-rows`: a version's ranker
// rows for model authors (training::ExportRankRows).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/tools/export.h"
#include "qianmian/training/pipeline.h"

namespace qm::tools {

namespace {

struct ExportOptions {
  CommonOptions common;
  std::string what;  // "decisions" | "events" | "rank-rows"
  std::string from, to, out;
  std::string version;  // rank-rows: "" = CURRENT
};

Result<TimeMs> ParseFlagTime(const char* flag, const std::string& text, const TimeZone& tz) {
  auto t = ParseTime(text, tz);
  if (!t) {
    return Status::InvalidArgument(std::string(flag) + ": cannot parse time '" + text +
                                   "' (ISO-8601 such as 2026-12-04 or 2026-12-04T08:00, or epoch ms)");
  }
  return *t;
}

Status RunRankRows(const ExportOptions& o, const EngineConfig& config) {
  if (!o.from.empty() || !o.to.empty()) return Status::InvalidArgument("rank-rows takes no --from/--to");
  training::RankRowsOptions options;
  options.version = o.version;
  options.out = o.out;
  QM_ASSIGN_OR_RETURN(training::RankRowsResult r,
                      training::ExportRankRows(config.data.dir, config.data, config.artifacts_root, config.training,
                                               options, &config.store));
  std::printf("wrote %lld rank rows of version %s (%lld before the split, %lld held out) to %s\n",
              static_cast<long long>(r.rows + r.held_out_rows), r.version.c_str(), static_cast<long long>(r.rows),
              static_cast<long long>(r.held_out_rows), o.out.c_str());
  return Status::Ok();
}

Status Run(const ExportOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  if (o.what == "rank-rows") return RunRankRows(o, config);
  if (!o.version.empty()) return Status::InvalidArgument("--version is for rank-rows");
  if (o.from.empty() || o.to.empty()) return Status::InvalidArgument("export " + o.what + " needs --from and --to");
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  QM_ASSIGN_OR_RETURN(TimeMs from, ParseFlagTime("--from", o.from, tz));
  QM_ASSIGN_OR_RETURN(TimeMs to, ParseFlagTime("--to", o.to, tz));
  if (from > to) return Status::InvalidArgument("--from '" + o.from + "' is after --to '" + o.to + "'");
  policy::StoreConfig sc = config.store;
  sc.read_only = true;  // beside a running server: no lock, the store as of opening
  QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore> store, policy::EventStore::Open(sc));
  const ExportKind kind = o.what == "events" ? ExportKind::kEvents : ExportKind::kDecisions;
  QM_ASSIGN_OR_RETURN(uint64_t rows, ExportCsv(store.get(), kind, from, to, o.out));
  std::printf("wrote %llu %s (%s .. %s) to %s\n", static_cast<unsigned long long>(rows), o.what.c_str(),
              FormatIsoUtc(from).c_str(), FormatIsoUtc(to).c_str(), o.out.c_str());
  return Status::Ok();
}

}  // namespace

Command AddExportCommand(CLI::App& root) {
  auto opts = std::make_shared<ExportOptions>();
  Command cmd;
  cmd.app =
      root.add_subcommand("export",
                          "Writes the event store's decision log (every served item, push send and ghost, "
                          "with version, arms and reasons) or its events with from <= time < to as CSV with a "
                          "header, for the data warehouse. Reads the store without locking it (beside a "
                          "running server). `rank-rows`: the ranker's training rows of an artifact version "
                          "(the inputs the built-in ranker sees, labels, weights) as .npy files in a folder, "
                          "or one CSV, with the column layout, for training a ranker elsewhere (python/examples/)");
  AddCommonOptions(cmd.app, &opts->common);
  cmd.app->add_option("what", opts->what, "decisions | events | rank-rows")
      ->required()
      ->check(CLI::IsMember({"decisions", "events", "rank-rows"}));
  cmd.app->add_option("--from", opts->from,
                      "decisions, events: first time included (ISO-8601 in the bank's time zone, or epoch ms)");
  cmd.app->add_option("--to", opts->to, "decisions, events: end of the range, excluded");
  cmd.app->add_option("--version", opts->version, "rank-rows: the artifact version (default: CURRENT)");
  cmd.app
      ->add_option("--out", opts->out, "CSV file (written atomically); rank-rows: a folder for .npy files, or FILE.csv")
      ->required();
  cmd.run = [opts] { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
