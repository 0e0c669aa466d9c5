// `--json FILE` of inspect, eval, push and report: one JSON document per run, for schedulers and
// notebooks. The shapes are the printed tables' figures, with the same names.
#pragma once

#include <string>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/push/push_run.h"
#include "qianmian/training/pipeline.h"

namespace qm::tools {

// The help text of every command's --json option.
inline constexpr const char* kJsonHelp = "also write the summary as JSON to FILE ('-': to stdout, instead of the text)";

// Writes `json` and a newline to `path`, or to stdout when `path` is "-". IoError when it cannot.
[[nodiscard]] Status WriteJson(const std::string& path, const std::string& json);

// inspect: {"ok", "error" (when !ok), "files": {customers|items|events: {path, rows, bad_rows,
// errors: [{line, reason}] (the first 1000), notes}}, and when ok: "customers": {count, tiers,
// risk}, "items": {count, products, content, categories, campaigns}, "features": [{name, kind}],
// "events": {count, by_type}}. `dataset` may be null (loading failed: `error`).
std::string InspectJson(const LoadReport& report, const Dataset* dataset, const Status& error);

// eval: {"version", "note", "customers", "metrics": {"served.recall@20": ...}}.
std::string EvalJson(const std::string& version, const training::EvalReport& report);

// push: {run_id, channel, model_version, dry_run, audience, sent_customers, sends, scheduled,
// service, replayed, skipped, skipped_by, score_quantiles, score_histogram, pressure:
// {before|after: {7d|30d: {customers_by_bucket, mean}}}, seconds, customers_per_second}.
std::string PushSummaryJson(const push::PushSummary& summary);

}  // namespace qm::tools
