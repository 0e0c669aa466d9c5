// Module experiment: experiment layers, arms and the global holdout (issue 17), and the pure
// assignment of a customer to them, and effect reports. May depend on: core; Boost.Math,
// nlohmann_json (private).
// The effect report of one experiment layer: per arm, the customers assigned and contacted,
// totals, per-customer means with 95% intervals, each arm's lift over the control arm (Welch's
// t, CUPED with the pre-period when given) and the sample-ratio check. Built from per-customer
// outcomes the caller counts from the events (`qianmian report`, the `report` op).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/experiment/effect.h"
#include "qianmian/experiment/experiment_config.h"

namespace qm::experiment {

// The metrics counted per customer, in report order.
// kGhosts: a control customer's would-be sends, recorded in the decision log and never sent.
// kOptOuts: opt_out events (a customer who opts out of two channels counts twice).
enum Metric : int { kContacts = 0, kClicks, kConversions, kValue, kDismissals, kOpens, kGhosts, kOptOuts, kNumMetrics };
// "contacts", "clicks", "conversions", "value", "dismissals", "opens", "ghosts"
const char* MetricName(int metric);

// Adds one event to a customer's counts: impressions and push sends of marketing items are
// contacts; a conversion adds its item's value.
void CountEvent(EventType type, bool service, double item_value, double* counts /* kNumMetrics */);

// One customer's counts in the report window and, for CUPED, in the pre-period.
struct CustomerOutcome {
  int arm = kNoArm;  // the layer's arm; kNoArm: in the global holdout (reported apart)
  double in_window[kNumMetrics] = {};
  double pre_period[kNumMetrics] = {};
};

// The periods a report counts: the window [from, to) and, when `pre`, CUPED's pre-period
// [pre_from, from).
struct ReportWindow {
  TimeMs pre_from = 0, from = 0, to = 0;
  bool pre = false;
  // The counts of `c` that time `ts` belongs to, or null.
  double* Counts(TimeMs ts, CustomerOutcome* c) const {
    if (ts >= from && ts < to) return c->in_window;
    if (pre && ts >= pre_from && ts < from) return c->pre_period;
    return nullptr;
  }
};

// One outcome per customer 0..n-1 (`id(c)` its id), in its arm of layer `layer` as `assigner`
// assigns requests (kNoArm for the global holdout), all counts zero.
std::vector<CustomerOutcome> AssignedOutcomes(const Assigner& assigner, int layer, size_t n,
                                              const std::function<const std::string&(size_t)>& id);

// The index of the layer named `name`; InvalidArgument "<key>: no layer '<name>' in
// [experiments] (layers: a, b)" otherwise.
Result<int> FindLayer(const ExperimentsConfig& config, const std::string& name, const std::string& key);

struct MetricReport {
  MeanInterval per_customer;
  double total = 0;
  Lift lift;  // over the control arm (not for the control itself)
  bool has_lift = false;
};

struct ArmReport {
  std::string name;
  double share = 0;
  bool control = false;   // the arm the others are compared with
  int64_t assigned = 0;   // customers of the arm
  int64_t contacted = 0;  // of them, with at least one contact (impression or push) in the window
  int64_t ghosted = 0;    // of them, with at least one ghost (a would-be send) in the window
  MetricReport metrics[kNumMetrics];
};

struct ExperimentReport {
  std::string layer;
  TimeMs from = kNoTime, to = kNoTime;
  bool cuped = false;   // lifts adjusted with the pre-period
  int64_t holdout = 0;  // customers in the global holdout (in no arm)
  std::vector<ArmReport> arms;
  SampleRatio sample_ratio;
};

// The control arm of a layer: the first arm that withholds contact (`control`), else arm 0.
int ControlArm(const LayerConfig& layer);

// Builds the report; `cuped` uses each metric's pre-period value as the covariate. The arms are
// compared with `baseline` (an arm index; -1: ControlArm).
ExperimentReport BuildReport(const LayerConfig& layer, const std::vector<CustomerOutcome>& customers, bool cuped,
                             int baseline = -1);

// The index of the arm named `name` in `layer`, for a --baseline option `key`; InvalidArgument
// naming the layer's arms otherwise.
Result<int> FindArm(const LayerConfig& layer, const std::string& name, const std::string& key);

// A text table (one block per metric), and the report as JSON (SPEC §7's `arms`).
std::string FormatReport(const ExperimentReport& r);
std::string ReportJson(const ExperimentReport& r);

// A PNG of contacts, clicks, conversions and value per customer: one bar per arm with its 95%
// interval, the lift and p-value under it. IoError naming the file.
Status WriteReportPlot(const ExperimentReport& r, const std::string& path);

}  // namespace qm::experiment
