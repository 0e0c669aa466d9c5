// Module campaign: event-triggered campaigns (issue 18, "event triggers"; 事件营销).
//
// Business events (a salary credited, a deposit matured, a large outflow, a login, ...) arrive on
// the wire (`events.ingest`) or from a Redis stream (redis_stream.h). For each event, every
// triggered campaign (Definition::trigger) that is scheduled or running with its approved version
// and whose event type and condition match fires for the event's customer when the customer is in
// its audience: the engine chooses the customer's best item of the campaign's content under every
// contact rule (consent, caps, quiet hours, suitability), as a push run whose id is
// "<campaign>/ev:<event id>", and the decision goes to the outbox (a delivery system reads it) with
// that run id as its idempotency key. A holdout customer gets a ghost (recorded, not sent).
//
// Exactly once: the run id makes a decision idempotent. Processing an event again (a client's
// retry, a stream entry redelivered after a crash) replays what the first processing reserved and
// sends nothing new; its outbox entry is written again with the same idempotency key, which the
// delivery system drops as a duplicate.
//
// Delay: a trigger with delay_s > 0 decides at the event's time + delay_s. Such events wait in the
// store's governed records (collection "trigger_pending"), so a restart loses none; any replica's
// Triggers::RunDue takes them when due. An event older than its trigger's expiry_s is not decided
// ("expired").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/serving/engine.h"

namespace qm::campaign {

// ---- The event catalogue ----------------------------------------------------------------------

enum class AttrKind : uint8_t { kNumber, kText };

struct EventTypeInfo {
  std::string name;
  std::string description;
  std::vector<std::pair<std::string, AttrKind>> attributes;
};

// salary_credited, deposit_matured, large_inflow, large_outflow, card_activated, login,
// balance_low, wealth_product_matured (SPEC §8 lists their attributes).
const std::vector<EventTypeInfo>& EventTypes();
const EventTypeInfo* FindEventType(std::string_view name);
std::string EventTypeNames();  // "salary_credited, deposit_matured, ..."

// One business event about one customer.
struct BusinessEvent {
  std::string id;  // the sender's unique id: [A-Za-z0-9_.:-], 1..64 (the idempotency key's part)
  std::string customer_id;
  std::string type;
  TimeMs ts = kNoTime;  // when it happened
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> texts;
};

// Parses an event from a JSON object {"event_id", "customer_id", "type", "ts_ms", "attrs": {..}}
// and checks it against the catalogue: a known type, only its attributes, each of its kind.
// InvalidArgument naming the field ("events[3].attrs.amount: must be a number").
[[nodiscard]] Result<BusinessEvent> ParseEvent(std::string_view json_text, const std::string& where = "event");
// Checks a built event (from a stream entry) the same way.
[[nodiscard]] Status CheckEvent(const BusinessEvent& e, const std::string& where = "event");
std::string EventJson(const BusinessEvent& e);

// ---- Conditions on an event's attributes ------------------------------------------------------

// cond   := "" | clause ("and" clause)*
// clause := ATTR OP VALUE | ATTR ["not"] "in" "(" VALUE ("," VALUE)* ")"
// OP     := = | != | < | <= | > | >=   (numbers compare as numbers; text attributes with = and !=)
// ATTR is an attribute of the trigger's event type: any other name is refused at compile time
// (so a campaign naming one is refused when it is created, not when an event arrives). An
// attribute the event lacks satisfies no comparison but != and not in.
class EventCondition {
 public:
  [[nodiscard]] static Result<EventCondition> Compile(std::string_view text, const std::string& event_type);
  bool Matches(const BusinessEvent& e) const;
  struct Clause;

 private:
  std::vector<std::shared_ptr<const Clause>> clauses_;
};

// ---- Decisions and the outbox -----------------------------------------------------------------

struct TriggerDecision {
  std::string event_id, customer_id, campaign_id;
  // "sent" (in the outbox), "holdout" (a ghost: recorded, not sent), "pending" (delayed: decided
  // at due_ms), "skipped" (skipped_by says why: a contact rule, "no_candidates",
  // "campaign.budget", "audience", "expired", "unknown_customer", ...).
  std::string outcome;
  std::string skipped_by;
  std::string key;  // the idempotency key (the run id)
  std::string item_id, channel;
  std::string reason;  // channel choice: "channel:<name>=best" or "=fallback" (a better one was blocked)
  TimeMs send_at = kNoTime, due_ms = kNoTime, decided_ms = kNoTime, event_ts = kNoTime;
  double p_click = 0, p_convert = 0;
  bool replayed = false;  // the event had already been decided: nothing new counted
};
std::string DecisionJson(const TriggerDecision& d);

// Where sent decisions go. Append returns once they are durable (fsync'd, or acknowledged by Redis).
class Outbox {
 public:
  virtual ~Outbox() = default;
  [[nodiscard]] virtual Status Append(const std::vector<TriggerDecision>& sent) = 0;
  virtual std::string describe() const = 0;
};
// `spec`: a folder (JSON lines, one file per UTC minute: <folder>/YYYYMMDD-HHMM.jsonl) or
// "redis:<stream key>" (XADD to that stream of the store's Redis, fields `key` and `decision`).
[[nodiscard]] Result<std::unique_ptr<Outbox>> OpenOutbox(const std::string& spec, const policy::StoreConfig& store);

// ---- Processing -------------------------------------------------------------------------------

struct TriggerOptions {
  std::string time_zone = "Asia/Shanghai";
  TimeMs refresh = kMsPerSecond;  // the active campaigns are re-read at most this often
};

// Thread-safe. One per process; any number of processes may share the store.
class Triggers {
 public:
  Triggers(serving::Engine* engine, Campaigns* campaigns, Outbox* outbox, TriggerOptions o = {});
  ~Triggers();
  // Decides every event (CheckEvent first: one bad event refuses the whole batch, nothing done)
  // for every matching campaign, at `now` (kNoTime = the engine's clock). One decision per
  // (event, matching campaign); an event no campaign matches gets none.
  [[nodiscard]] Result<std::vector<TriggerDecision>> Process(const std::vector<BusinessEvent>& events,
                                                             TimeMs now = kNoTime);
  // Decides the delayed events that are due at `now` (each exactly once across processes).
  [[nodiscard]] Result<std::vector<TriggerDecision>> RunDue(TimeMs now = kNoTime);
  // Re-reads the campaigns on the next event (call after a change to them).
  void Invalidate();

  struct Active;

 private:
  Result<std::shared_ptr<const std::vector<Active>>> ActiveCampaigns(TimeMs now);
  Result<TriggerDecision> Decide(const Active& a, const BusinessEvent& e, TimeMs now);
  Status ClaimBudget(const Active& a, const BusinessEvent& e, TimeMs now, int delta);
  // One push of the campaign to `customer` on `channel` (run id `key` unless dry), `reason`
  // added to the send's reasons when not empty.
  Status PushOn(const Active& a, const std::string& customer, TimeMs now, const std::string& key,
                const std::string& channel, const std::string& reason, bool dry_run, serving::PushChoice* out);
  Status PushChoosingChannel(const Active& a, const BusinessEvent& e, TimeMs now, TriggerDecision* d,
                             serving::PushChoice* out);
  Status PruneChannelPlans(TimeMs now);

  serving::Engine* engine_;
  Campaigns* campaigns_;
  Outbox* outbox_;
  TriggerOptions o_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<Active>> active_;  // guarded by mu_
  TimeMs active_at_ = kNoTime;                         // guarded by mu_
  TimeMs pruned_at_ = kNoTime;                         // guarded by mu_: the last PruneChannelPlans
};

}  // namespace qm::campaign
