// serving: the online engine. Turns (customer, channel, context, now) into the items to show.
// Loads a data folder and a verified artifact version, and runs the request path's stages, a
// file each in serving/src: profile -> recall sources (ANN over products and content from the
// customer tower, item-to-item, popular, campaign pins, fresh items) -> filter (the contact
// policy) -> rank (one batched ranker call, the two-stage score) -> re-rank (diversity, slot
// layout, exploration, reasons) -> reserve (caps counted through the event store). A push run
// takes the same stages in batches of customers.
// Used by the ZeroMQ server, `qianmian recommend` and push runs.
// May depend on: core, policy, experiment (public); features, recall, rank, artifacts
// (private). Never on training or the generator. No libtorch, Faiss or BLAS headers here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/experiment/report.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/serving/experiments.h"
#include "qianmian/serving/serving_config.h"

namespace qm::serving {

struct EngineOptions {
  DataConfig data;                           // data.dir: the bank's folder (LoadDataset)
  std::string artifacts_root = "artifacts";  // <root>/CURRENT names the version to serve
  policy::PolicyConfig policy;
  // Event store. The default embedded path ("data/store") means <data.dir>/store.
  policy::StoreConfig store;
  ServingConfig serving;
  // [experiments] (ReadExperiments): the global holdout and the layers' arms with their settings.
  // Empty: every request uses the settings above.
  Experiments experiments;
  // An already open store to use instead of opening `store` (e.g. shared with a push run).
  std::shared_ptr<policy::EventStore> shared_store;
  // A dataset to serve instead of loading data.dir (the engine takes a copy; data.timezone still
  // applies). Evaluation serves a bank as it was at a past moment this way.
  std::shared_ptr<const Dataset> dataset;
};

// The request id of a batch request for `customer_id` at `now` ("recommend:<now>:<id>"): the
// same id gives the same exploration, so batch recommendations and evaluation are reproducible.
std::string BatchRequestId(TimeMs now, const std::string& customer_id);

// A `recommend` request (SPEC §5).
struct Request {
  std::string customer_id;
  std::string channel = "app_home";
  int count = 10;                              // 1..100
  TimeMs now_ms = kNoTime;                     // kNoTime = the wall clock
  std::vector<std::string> exclude;            // item ids never to return
  std::map<std::string, std::string> context;  // free-form (e.g. "hour" overrides the local hour)
  bool debug = false;                          // fill Response::debug counts and drop reasons
  bool dry_run = false;                        // reserve nothing (caps are only checked)
  std::string request_id;                      // "" = generated; the reservation / exploration key
};

struct ResponseItem {
  std::string item_id;
  std::string kind;                  // "product" | "content"
  double score = 0;                  // the re-rank score
  std::vector<std::string> reasons;  // "recall:ann", "recall:similar_to:<item>", "campaign:<id>",
                                     // "recall:popular", "explore", "rank:p_click=0.12", ...,
                                     // "experiment:<layer>=<arm>" / "experiment:holdout"
};

// Why the list is what it is. Always filled with stage times, dropped and arms; counts only with
// Request::debug.
struct Debug {
  std::map<std::string, int64_t> counts;    // "recall.ann_products", "recall.merged", "filter.passed",
                                            // "rank.scored", "served", ...
  std::map<std::string, int64_t> dropped;   // blocked_by rule (or "excluded", "retired",
                                            // "experiment.holdout", "experiment.control") -> candidates
  std::vector<std::string> fallbacks;       // "popular", "any_eligible" when the list ran short
  std::map<std::string, int64_t> stage_us;  // recall, filter, rank, rerank, reserve; and inside them
                                            // tower (customer tower), ann (Faiss), model (ranker)
  bool known_customer = true;
  // The customer's experiment arms ("<layer>=<arm>" per layer, or "holdout"); empty without
  // [experiments]. Always filled, like stage_us.
  std::vector<std::string> arms;
};

struct Response {
  Status status;  // InvalidArgument for a bad request; the rest is then empty
  std::string request_id;
  std::string model_version;
  std::vector<ResponseItem> items;  // best first, at most count
  int64_t took_us = 0;
  Debug debug;
};

// SPEC §5 `score`: one item for one customer on one channel.
struct ItemScore {
  std::string item_id;
  float p_click = 0, p_convert = 0;
  bool eligible = false;                // no rule blocks it (caps checked, nothing taken)
  std::vector<std::string> blocked_by;  // rule names; "not_found" for an unknown/retired item;
                                        // "experiment.holdout" / "experiment.control" (marketing
                                        // withheld from the customer's arm on the channel)
};

// SPEC §5 `feedback` event.
struct FeedbackEvent {
  TimeMs ts_ms = 0;
  std::string customer_id, item_id;
  std::string type;  // impression | click | convert | dismiss | push_sent | push_open
  std::string channel;
  std::string request_id;
};
struct FeedbackResult {
  int64_t accepted = 0;
  struct Rejected {
    size_t index;
    std::string code;  // "bad_request" | "not_found"
    std::string message;
  };
  std::vector<Rejected> rejected;
};

// A push run's batch (issue 7): the best content for many customers on a push channel, chosen
// through the engine's path (customer tower, batched ANN over content plus popular content,
// the contact policy, one ranker call for the whole batch) and reserved under the run id.
// With [experiments], each customer's arm policy (e.g. another push cap) applies to its
// reservation and holdout / control customers get no marketing send; the arms' [serving]
// overrides do not apply to push runs (a batch shares its quotas and score weights).
struct PushRequest {
  std::vector<std::string> customer_ids;
  std::string channel = "wechat_push";
  int per_customer = 1;     // items sent to each customer, 1..10
  TimeMs now_ms = kNoTime;  // kNoTime = the wall clock
  bool dry_run = false;     // only check the rules (Policy::Check); nothing reserved
  std::string run_id;       // the reservation key (Policy::Reserve); REQUIRED unless dry_run
  // Service items (account alerts) are not marketing content: by default a push run leaves them
  // out. When included they are candidates like any content and SPEC §6 exempts them from
  // consent, caps and quiet hours.
  bool include_service = false;
  // A campaign's run (issue 18; campaign/campaign.h). Null = a plain push run.
  struct Campaign {
    std::string id;  // arms: "campaign:<id>=treatment" or "=holdout"
    // Item index -> 1 when the campaign may send it; null = any item. An index past the end is
    // not allowed (an item added since the mask was built).
    std::shared_ptr<const std::vector<uint8_t>> allowed;
    // When there are few allowed items (their indexes here), the [serving] push_ann of them nearest
    // the customer (two-tower u.v) are candidates too (reason "recall:campaign"), beside those the
    // ANN over all content and the popular lists find.
    std::vector<uint32_t> allowed_list;
    double w_click = -1, w_convert = -1;  // the objective; < 0 = [serving]'s
    // Customers whose UnitValue(id, "campaign:<id>") is below this are the campaign's control
    // group: nothing sent to them, what would have been sent recorded as a ghost (skipped_by
    // "campaign.holdout"); not in a dry run.
    double holdout = 0;
    // The campaign's own cap: at most cap_limit sends to a customer in any cap_window (0 = none).
    // A campaign's sends are recorded under its id (not the item's campaign column), so the
    // [policy] customer_campaign caps count them as this campaign's too.
    int cap_limit = 0;
    TimeMs cap_window = 0;
    // Added to every send's reasons when set (channel choice: "channel:sms=best").
    std::string reason;
  };
  std::shared_ptr<const Campaign> campaign;
};

struct PushChoice {
  // Chosen, best first; empty = skipped. Reasons: "recall:ann" | "recall:popular",
  // "rank:p_click=..", "scheduled:quiet_hours", "exempt:service" (a service item: SPEC §6
  // exempts it from consent, caps and quiet hours), "replayed:<run>" (an earlier send of the run
  // that is no longer a candidate).
  std::vector<ResponseItem> items;
  std::vector<TimeMs> send_at;  // per item: when it may be sent (the end of quiet hours)
  bool known = true;            // false: not a customer of the data (skipped)
  bool replayed = false;        // the run id had already reserved for this customer: the
                                // earlier sends, nothing new counted
  // Skipped: the rule that blocked most of the customer's candidates (a `blocked_by` name),
  // "unknown_customer", "no_candidates", or "experiment.holdout" / "experiment.control" (the
  // global holdout or a control arm on the channel: no marketing send; only service items when
  // the run includes them).
  std::string skipped_by;
  std::vector<std::string> arms;  // the customer's experiment arms, as Debug::arms
  int64_t candidates = 0;         // content considered
  // Push contacts (push_sent on the channel, other runs) in the 7 / 30 days before now.
  int pushes_7d = 0, pushes_30d = 0;
  // The ranker's predictions summed over the chosen items: P(click) and P(convert) when shown.
  double expected_clicks = 0, expected_conversions = 0;
  // The bank's expected value of the chosen items, in the bank's own objective ([serving]
  // w_click * P(click) + w_convert * P(convert) * the item's value), whatever the campaign's
  // objective: what competing campaigns are compared by (campaign/scheduler.h).
  double expected_value = 0;
};

// A customer's portrait in the served version (issue 18: training/portraits.h).
struct Portrait {
  std::string customer_id, version;
  bool known = false;                        // the version has portraits and a row for the customer
  std::map<std::string, double> numbers;     // churn_risk, days_inactive
  std::map<std::string, std::string> texts;  // lifecycle, value_trend
  std::vector<std::string> interests;        // top item categories, best first
};

// An item or customer as a map of items.csv / customers.csv columns to cell text.
using Record = std::map<std::string, std::string>;

// Thread-safety: every method may be called concurrently from any number of threads. Requests
// run concurrently with each other; catalogue and profile updates and Reload serialise among
// themselves and hold requests back only for the moment they apply their change.
class Engine {
 public:
  // Loads options.data.dir and the version <artifacts_root>/CURRENT (verified: a bundle that
  // fails verification is refused), opens the event store and builds the policy. Every version
  // an experiment arm names (model_version) is loaded and verified too, once per version: a
  // customer in that arm is served by it (recommend, push, score; the reply's and the decision
  // log's model_version say so).
  // Sets process-wide globals: libtorch's intra-op threads and (when the BLAS is OpenBLAS) its
  // threads to 1, so that each caller runs one thread; parallelism comes from concurrent callers.
  [[nodiscard]] static Result<std::unique_ptr<Engine>> Open(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Answers each request into (*responses)[i] (resized). A bad request (unknown channel, count
  // outside 1..100) gets its own InvalidArgument; a source or filter that empties the list falls
  // back (popular, then anything eligible) and says so in debug. Returns non-OK only when the
  // event store fails. On reserve channels (app_home) served items reserve one unit of every
  // applicable cap under the request id unless dry_run. Unless dry_run, every served item is
  // recorded in the decision log (policy::DecisionRecord, kind "served") before returning.
  [[nodiscard]] Status Recommend(const std::vector<Request>& requests, std::vector<Response>* responses);

  // Chooses and (unless dry_run) reserves push contacts for req.customer_ids, answering into
  // (*choices)[i] (resized). Batches of a few hundred customers amortise the tower, Faiss and
  // ranker calls; call it from several threads to use every core and overlap store writes.
  // InvalidArgument for an unknown channel, a bad per_customer or a missing run id; other
  // errors are the store's. Re-submitting a customer under the same run id replays its earlier
  // sends (nothing counted twice). Unless dry_run, every send is recorded in the decision log
  // (kind "push_send"; a replay records the same records again, stored once), and so is what the
  // run would have sent to each customer in a control arm of the channel (kind "ghost": the same
  // batch with the control lifted, the rules evaluated as a dry run: nothing reserved or counted;
  // the customer's choice still says skipped_by "experiment.control"). The first call on a
  // thread sets that thread's libtorch and OpenMP threads (and the process's OpenBLAS threads)
  // to 1.
  [[nodiscard]] Status Push(const PushRequest& req, std::vector<PushChoice>* choices);

  // Calls fn with the loaded data under the shared lock (read-only; keep no references).
  void WithDataset(const std::function<void(const Dataset&)>& fn) const;

  // p_click, p_convert and the policy verdict for each item (nothing reserved).
  [[nodiscard]] Result<std::vector<ItemScore>> Score(const std::string& customer_id, const std::string& channel,
                                                     const std::vector<std::string>& item_ids, TimeMs now_ms = kNoTime);

  // Records events durably in the store (Policy::Record) and in the customers' recent history,
  // so the next request sees them. Malformed events are rejected one by one.
  [[nodiscard]] Result<FeedbackResult> Feedback(const std::vector<FeedbackEvent>& events);

  // Adds or replaces items (items.csv columns; item_id and kind required); new or changed items
  // are embedded by the item tower and enter the indexes at once. Returns how many.
  [[nodiscard]] Result<int64_t> UpsertItems(const std::vector<Record>& items);
  // Removes items from recommendation (unknown ids are ignored). Returns how many were retired.
  [[nodiscard]] Result<int64_t> RetireItems(const std::vector<std::string>& item_ids);
  // Adds or replaces customers (customers.csv columns; customer_id required).
  [[nodiscard]] Result<int64_t> UpsertCustomers(const std::vector<Record>& customers);

  // Loads `version` ("" = what CURRENT names now), verifies it and swaps it in atomically;
  // requests in flight finish on the old one. A version that fails is refused and the old one
  // keeps serving. Returns the version now serving. The versions the experiment arms pin stay
  // loaded (an arm pinned to `version` moves to the new copy).
  [[nodiscard]] Result<std::string> Reload(const std::string& version);
  // As Reload, and replaces the experiment definition with `experiments` in the same swap (its
  // arms' versions loaded and verified first; those already loaded are reused). Either both
  // change or, when anything is refused (errors name the key, e.g.
  // "'experiments.layers[0].arms[1].model_version': ..."), neither. Assignment depends only on
  // (customer id, layer salt): customers keep their arms across a reload with the same salts.
  [[nodiscard]] Result<std::string> Reload(const std::string& version, const Experiments& experiments);
  // Replaces the experiment definition only (as above, the current version unchanged).
  [[nodiscard]] Status ReloadExperiments(const Experiments& experiments);
  // The names of the experiment layers served now (for the console's report page).
  std::vector<std::string> ExperimentLayers() const;

  // Events, decisions and cap usage of a customer (SPEC §5/§7 `history`), under the customer's
  // arm policy.
  // The customer's portrait in the served version. NotFound for an unknown customer.
  [[nodiscard]] Result<Portrait> CustomerPortrait(const std::string& customer_id) const;
  [[nodiscard]] Result<policy::CustomerHistory> History(const std::string& customer_id, TimeMs since, size_t limit,
                                                        TimeMs now_ms = kNoTime);

  // The effect report of the experiment layer `layer` over [from, to) (kNoTime: from the first
  // recorded event / to after the last), counted from the event store's events and the decision
  // log's ghosts, every customer of the data assigned as requests are; with `from`, the equally
  // long period before it is CUPED's pre-period. InvalidArgument for an unknown layer (naming
  // the layers) or from >= to. Reads the whole store: an operator's query, not a request's.
  [[nodiscard]] Result<experiment::ExperimentReport> Report(const std::string& layer, TimeMs from, TimeMs to);

  // The time of a request without one: the wall clock, or with [data] clock = "data_end" just
  // after the last event of the data the engine opened.
  TimeMs Now() const;
  // The bank's time zone ([data] timezone): calendar rules, quiet hours, local times in files.
  const TimeZone& time_zone() const;

  std::string model_version() const;  // the current version (customers in no pinned arm)
  const policy::Policy& policy() const;
  policy::EventStore* store() const;
  int64_t num_items() const;  // live (not retired) items
  int64_t num_customers() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qm::serving
