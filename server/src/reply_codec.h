// Private: the encoding of each op's success reply (SPEC §5), the writing half of the codec.
// Each Encode* writes the op's own fields into a reply map that WriteReplyHead (codec.h) opened
// with `ok` and `id`; every map's size comes from MapWriter, none is counted here. Key order
// and value types are the wire format's: clients and tests depend on them.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"
#include "qianmian/experiment/report.h"
#include "qianmian/policy/policy.h"
#include "qianmian/serving/engine.h"

namespace qm::server {

// health: {status: "ok" | "draining", model_version}.
void EncodeHealth(bool draining, const std::string& model_version, MapWriter* reply);

// recommend: {request_id, model_version, items: [{item_id, kind, score, reasons}], took_us}
// and, when `debug`, debug: {counts, dropped, fallbacks, stage_us, known_customer} and, with
// [experiments], arms (the customer's arms, "<layer>=<arm>" or "holdout").
void EncodeRecommend(const serving::Response& response, bool debug, MapWriter* reply);

// feedback: {accepted, rejected: [{index, code, message}]}.
void EncodeFeedback(const serving::FeedbackResult& result, MapWriter* reply);

// score: {scores: [{item_id, p_click, p_convert, eligible, blocked_by}]}.
void EncodeScores(const std::vector<serving::ItemScore>& scores, MapWriter* reply);

// items.upsert, items.retire, customers.upsert: {count}.
void EncodeCount(int64_t count, MapWriter* reply);

// history: {events: [{ts_ms, item_id, type, channel, request_id}],
//           decisions: [{ts_ms, kind, request_id, channel, item_id, position, score, p_click,
//                        p_convert, model_version, arms, reasons}],
//           caps: [{rule, scope, used, limit, window_ms}]}.
// decisions: the decision log (SPEC §7), newest first, with the events' since_ms and limit.
void EncodeHistory(const policy::CustomerHistory& history, MapWriter* reply);
// `portrait`: {churn_risk, days_inactive, lifecycle, value_trend, interests} of a known portrait
// (issue 18; the profile op, and history beside a customer's events).
void EncodePortrait(const serving::Portrait& portrait, MapWriter* reply);
// `report` (SPEC §7): experiment, from_ms, to_ms, cuped, holdout_customers, sample_ratio, arms.
void EncodeReport(const experiment::ExperimentReport& report, MapWriter* reply);

// reload: {model_version}.
void EncodeReload(const std::string& model_version, MapWriter* reply);

// One op's counters as `stats` reports them.
struct OpStatsReply {
  std::string_view name;                // the op, or "other" (must outlive the encoding)
  int64_t count = 0;                    // replies sent
  int64_t errors[kNumErrorCodes] = {};  // failed replies, by index in kErrorCodes
  int64_t p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0;
  int64_t max_us_bucket = 0;  // upper bound of the slowest reply's latency bucket
};

// The server's event counters, as the server keeps them (under its stats mutex) and `stats`
// reports them.
struct ServerCounters {
  int64_t shed = 0;                          // requests refused at the queue (overloaded)
  int64_t shed_delay = 0;                    // read-only requests shed by CoDel: waited too long in a standing queue
  int64_t queue_deadline = 0;                // app_home recommends still queued past [server] app_home_deadline
  int64_t reloads = 0, reload_failures = 0;  // version swaps (request or watch) done, refused
  std::string last_reload_error;
  // The last kRecentReloads reloads, oldest first: when, what was asked, by whom (the `reload`
  // op or the CURRENT watch), and the version served after or why it was refused.
  struct Reload {
    int64_t ts_ms = 0;
    std::string asked, by, served, error;
  };
  static constexpr size_t kRecentReloads = 20;
  std::deque<Reload> recent_reloads;
  void RecordReload(Reload r) {
    if (r.error.empty()) {
      ++reloads;
    } else {
      ++reload_failures;
      last_reload_error = r.error;
    }
    recent_reloads.push_back(std::move(r));
    while (recent_reloads.size() > kRecentReloads) recent_reloads.pop_front();
  }
  int64_t compactions = 0, compaction_failures = 0;  // event-store compactions done, failed
  std::string last_compaction_error;
};

// What `stats` reports, gathered by the server under its locks.
struct StatsReply {
  int64_t uptime_s = 0;
  std::string server_version, model_version, current_version;  // current: <artifacts>/CURRENT
  std::string store_backend, store_status;
  int64_t queue_depth = 0, write_depth = 0, queue_capacity = 0, busy_workers = 0;
  ServerCounters counters;
  std::vector<OpStatsReply> ops;         // every op, in the server's order
  std::vector<std::string> experiments;  // the experiment layers served now
};

// stats: {uptime_s, versions, store, queue, reloads, ops: {<op>: {count, errors, p50_us, p90_us,
// p99_us, p999_us, max_us_bucket}}, totals: {requests, errors}, experiments: [layer names]}. An op's `errors` lists the
// codes it has had; the totals list every code.
void EncodeStats(const StatsReply& stats, MapWriter* reply);

}  // namespace qm::server
