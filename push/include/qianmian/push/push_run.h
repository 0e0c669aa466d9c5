// Module push: WeChat push runs. May depend on: core, serving, policy; never training or synth.
// Push runs (issue 7, SPEC §3 `push`, §6): for an audience, the best content per customer on a
// push channel through the engine's batched path, every contact rule applied by the policy, the
// sends reserved in the event store under the run id before the send list is written, and a
// summary (audience, sent, skipped by rule, scores, contact pressure) as a table and a PNG.
//
// Safety: a send is reserved (durably, atomically per customer) before the list is written; the
// list is written to a temporary file and renamed into place. Re-running a run id counts nothing
// twice: customers it already reserved for replay their earlier sends (same item, same
// scheduled time), so the list of a run id is the same list every time, and a run killed half-way
// resumes by running it again: the customers reserved before the kill are replayed, the others
// are chosen and reserved now. The delivery system sends a list once per run id.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/push/audience.h"
#include "qianmian/push/shard.h"
#include "qianmian/serving/engine.h"

namespace qm::push {

struct PushRunOptions {
  std::string run_id;  // REQUIRED unless dry_run: the reservation key
  std::string channel = "wechat_push";
  std::string audience;  // an expression (audience.h), or "@FILE" of customer ids
  // Set: exactly these customers, in this order, instead of the audience's (campaign competition:
  // campaign/scheduler.h); `audience` and `shard` are then not read.
  std::shared_ptr<const std::vector<std::string>> customers;
  Shard shard;                              // only the audience's customers in this shard (shard.h)
  std::string out;                          // send list CSV customer_id,item_id,scheduled_at,reasons
  TimeMs now = kNoTime;                     // kNoTime = the wall clock
  bool dry_run = false;                     // check only: nothing reserved (the list is what would be sent)
  int per_customer = 1;                     // items per customer, 1..10
  bool include_service = false;             // also push service items (exempt from consent, caps, quiet hours)
  int threads = 0;                          // 0 = 4 per core (store writes overlap computation)
  int batch = 256;                          // customers per engine call
  std::string time_zone = "Asia/Shanghai";  // scheduled_at is written in this zone
  std::string summary;                      // "" = none; otherwise the summary table is written here
  std::string plot;                         // "" = none; otherwise the pressure histogram PNG
  bool progress = true;                     // progress bar with ETA on stderr
  // A campaign's run (campaign/campaign.h RunCampaign): its content, objective and holdout (see
  // serving::PushRequest::Campaign). Null = a plain push run.
  std::shared_ptr<const serving::PushRequest::Campaign> campaign;
  // At most this many sends in the run (a campaign's budget), whatever the threads; the customers
  // left when it is spent are skipped as "campaign.budget". < 0 = no limit.
  int64_t max_sends = -1;
  // Testing: stop as if killed after at least this many customers were processed (reserved),
  // before anything is written. < 0 = never.
  int64_t stop_after = -1;
  // Called with every customer's choice (sent, skipped or a holdout's), one call at a time, from
  // the workers; null = none.
  std::function<void(const std::string& customer_id, const serving::PushChoice& choice)> on_choice;
};

// Histogram buckets of pushes per customer: 0, 1, ..., kPressureBuckets-2, and "more".
inline constexpr int kPressureBuckets = 11;

struct PushSummary {
  std::string run_id, channel, model_version;
  bool dry_run = false;
  std::string shard = "1/1";                     // the shard of the audience this run covered
  int64_t audience = 0;                          // customers selected (in this shard)
  int64_t sent_customers = 0;                    // customers with at least one send
  int64_t sends = 0;                             // rows of the send list
  int64_t scheduled = 0;                         // sends moved to the end of quiet hours
  int64_t service = 0;                           // sends of service items (exempt from consent, caps, quiet hours)
  int64_t replayed = 0;                          // customers whose sends an earlier run with this id reserved
  int64_t skipped = 0;                           // customers with nothing sent
  std::map<std::string, int64_t> skipped_by;     // rule (blocked_by name, unknown_customer, ...) -> customers
  std::vector<double> score_quantiles;           // of sent items: min, p10, p25, p50, p75, p90, max
  std::vector<int64_t> score_histogram;          // 10 equal bins between min and max
  std::map<std::string, int64_t> items;          // item -> sends
  std::map<std::string, int64_t> channel_sends;  // a campaign choosing channels: channel -> sends
  // The ranker's predictions summed over the sends: P(click) and P(convert) when shown.
  double expected_clicks = 0, expected_conversions = 0;
  // Customers by pushes on the channel in the last 7 / 30 days, before and after this run.
  int64_t pressure[2][2][kPressureBuckets] = {};  // [before=0/after=1][7d=0/30d=1][bucket]
  double mean_pressure[2][2] = {};
  double seconds = 0;  // choosing and reserving (engine open excluded)
  double customers_per_second = 0;

  // The printed table.
  std::string Format() const;
  // As JSON (`push --json`, the campaigns.dryrun op): every field above, the pressure as
  // {before|after: {7d|30d: {customers_by_bucket, mean}}}.
  std::string Json() const;
};

// Runs a push (see the header comment). Everything that can be checked is checked before the
// first reservation: channel, audience (parse errors with positions, unknown fields), run id,
// and that `out` (and summary/plot) can be written. Unavailable when stop_after triggers.
[[nodiscard]] Result<PushSummary> RunPush(serving::Engine* engine, const PushRunOptions& options);

// Writes the contact-pressure histograms (before/after, 7 and 30 days) as a PNG.
[[nodiscard]] Status WritePressurePlot(const PushSummary& summary, const std::string& path);

}  // namespace qm::push
