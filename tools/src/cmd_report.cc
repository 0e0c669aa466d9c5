// `qianmian report --experiment LAYER [--from T] [--to T] [--json FILE] [--plot FILE.png]`: the effect report of
// one experiment layer of [experiments] (issue 17). Every customer of customers.csv is assigned
// as the engine assigns them; their events in [from, to) (events.csv and the event store) are
// counted per customer, with the ghosts of the decision log (a control customer's would-be
// sends); each arm is compared with the layer's control arm. With --from, the equally long
// period before it is the pre-period of CUPED.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "engine_config.h"
#include "json_output.h"
#include "qianmian/core/time.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/experiment/report.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/training/pipeline.h"
#include "report_counts.h"

namespace qm::tools {

namespace {

struct ReportOptions {
  CommonOptions common;
  std::string experiment;
  std::string from, to;
  std::string json;
  std::string plot;
  std::string baseline;
  bool no_cuped = false;
};

Result<TimeMs> TimeOption(const std::string& name, const std::string& value, const TimeZone& tz) {
  if (value.empty()) return kNoTime;
  auto t = ParseTime(value, tz);
  if (!t) return Status::InvalidArgument(name + ": cannot parse time '" + value + "'");
  return *t;
}

// Adds event `e` of `ds` to its customer's counts.
void Count(const Dataset& ds, size_t e, double* counts) {
  const Item& it = ds.items[ds.events.item[e]];
  experiment::CountEvent(ds.events.type[e], it.service, it.value, counts);
}

// Adds each ghost decision (a control customer's would-be send) of the event store to its
// customer's counts. No store yet: nothing to add.
Status CountGhosts(const policy::StoreConfig& config, const Dataset& ds, const experiment::ReportWindow& w,
                   std::vector<experiment::CustomerOutcome>* outcomes) {
  policy::StoreConfig sc = config;
  if (sc.backend == "embedded") {
    if (!std::filesystem::exists(std::filesystem::path(sc.path) / "CURRENT")) return Status::Ok();
    sc.read_only = true;
  }
  QM_ASSIGN_OR_RETURN(auto store, policy::EventStore::Open(sc));
  return AddGhosts(
      store.get(), [&](const std::string& id) { return ds.FindCustomer(id); }, w, outcomes);
}

Status Run(const ReportOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  const auto& ex = config.experiments.config;
  QM_ASSIGN_OR_RETURN(const int layer, experiment::FindLayer(ex, o.experiment, "--experiment"));
  int baseline = -1;
  if (!o.baseline.empty()) {
    QM_ASSIGN_OR_RETURN(baseline, experiment::FindArm(ex.layers[layer], o.baseline, "--baseline"));
  }
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  QM_ASSIGN_OR_RETURN(TimeMs from, TimeOption("--from", o.from, tz));
  QM_ASSIGN_OR_RETURN(TimeMs to, TimeOption("--to", o.to, tz));
  if (from != kNoTime && to != kNoTime && from >= to) return Status::InvalidArgument("--from must be before --to");
  QM_ASSIGN_OR_RETURN(Dataset ds, training::LoadForTraining(config.data.dir, config.data, &config.store, nullptr));
  const EventLog& ev = ds.events;
  TimeMs first = kNoTime, last = kNoTime;
  for (size_t e = 0; e < ev.size(); ++e) {
    first = first == kNoTime ? ev.ts[e] : std::min(first, ev.ts[e]);
    last = last == kNoTime ? ev.ts[e] : std::max(last, ev.ts[e]);
  }
  experiment::ReportWindow w;
  w.pre = from != kNoTime && !o.no_cuped;
  w.from = from == kNoTime ? first : from;
  w.to = to == kNoTime ? (last == kNoTime ? kNoTime : last + 1) : to;
  w.pre_from = w.pre ? w.from - (w.to - w.from) : w.from;
  from = w.from;
  to = w.to;

  std::vector<experiment::CustomerOutcome> outcomes =
      experiment::AssignedOutcomes(experiment::Assigner(ex), layer, ds.customers.size(),
                                   [&](size_t c) -> const std::string& { return ds.customers[c].id; });
  bool pre_events = false;
  for (size_t e = 0; e < ev.size(); ++e) {
    experiment::CustomerOutcome& c = outcomes[ev.customer[e]];
    if (double* counts = w.Counts(ev.ts[e], &c)) {
      Count(ds, e, counts);
      pre_events |= counts == c.pre_period;
    }
  }
  QM_RETURN_IF_ERROR(CountGhosts(config.store, ds, w, &outcomes).Annotate("reading the decision log"));
  experiment::ExperimentReport r = experiment::BuildReport(ex.layers[layer], outcomes, w.pre && pre_events, baseline);
  r.from = from;
  r.to = to;
  if (o.json != "-") {
    std::printf("window %s .. %s, %zu customers\n", FormatIsoLocal(from, tz).c_str(), FormatIsoLocal(to, tz).c_str(),
                ds.customers.size());
    std::fputs(experiment::FormatReport(r).c_str(), stdout);
  }
  if (!o.json.empty()) QM_RETURN_IF_ERROR(WriteJson(o.json, experiment::ReportJson(r)));
  if (!o.plot.empty()) QM_RETURN_IF_ERROR(experiment::WriteReportPlot(r, o.plot));
  return Status::Ok();
}

}  // namespace

Command AddReportCommand(CLI::App& root) {
  auto opts = std::make_shared<ReportOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("report", "effect report of an experiment layer: arms against the control");
  AddCommonOptions(cmd.app, &opts->common);
  cmd.app->add_option("--experiment", opts->experiment, "the layer's name in [experiments]")->required();
  cmd.app->add_option("--from", opts->from, "window start (default: the first event); also opens a pre-period");
  cmd.app->add_option("--to", opts->to, "window end, exclusive (default: after the last event)");
  cmd.app->add_option("--json", opts->json, kJsonHelp);
  cmd.app->add_option("--plot", opts->plot, "also draw the arms' means and intervals to FILE.png");
  cmd.app->add_option("--baseline", opts->baseline,
                      "compare the arms with this arm (default: the first arm with `control`, else the first)");
  cmd.app->add_flag("--no-cuped", opts->no_cuped, "no CUPED adjustment even with --from");
  cmd.run = [opts]() { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
