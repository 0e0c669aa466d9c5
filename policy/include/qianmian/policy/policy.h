// Module policy: the contact policy and the event store. May depend on: core; RocksDB, hiredis
// (private).
// The contact policy (SPEC §6): consent, suitability, eligibility, frequency caps, cooldowns,
// quiet hours and the service exemption, compiled from PolicyConfig for one channel registry
// and time zone. Stateless rules are evaluated here; stateful ones (caps, cooldown, clicked,
// dismissed) become a ContactPlan that the EventStore runs atomically per customer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/policy/contact_state.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy_config.h"

namespace qm::policy {

// An item considered for a customer. Names rather than codes, so stored state stays valid
// when the catalog is reloaded.
struct Candidate {
  const Item* item = nullptr;   // not owned; REQUIRES non-null
  uint32_t index = UINT32_MAX;  // item index in the dataset (matches Customer::holdings)
  std::string_view category;    // category name, "" = none
  std::string_view campaign;    // campaign name, "" = none
};

// The candidate for item `item` of `ds` (its names point into ds, which must outlive it).
Candidate MakeCandidate(const Dataset& ds, uint32_t item);

struct Decision {
  std::vector<std::string> blocked_by;  // empty = allowed; names from policy_config.h
  bool taken = false;                   // reserved / counted under the request id
  TimeMs send_at = kNoTime;             // when the contact may happen (end of quiet hours)
};

struct Contacts {
  std::vector<Decision> decisions;  // one per candidate, same order
  bool replayed = false;            // the request id was seen before: its earlier result
};

// Cap usage for a customer, as `history` reports it.
struct CapUsage {
  std::string rule;   // the cap's name (or "cooldown")
  std::string scope;  // channel / item / campaign / category it counts ("" = all marketing)
  int used = 0;
  int limit = 0;
  TimeMs window_ms = 0;  // rolling window, or time since the calendar period began
};

struct CustomerHistory {
  std::vector<StoredEvent> events;        // newest first
  std::vector<DecisionRecord> decisions;  // the decision log, newest first (same since/limit)
  std::vector<CapUsage> caps;
};

// Immutable after Create; every method is const and thread-safe.
class Policy {
 public:
  // InvalidArgument naming the rule when a configured channel or event type is unknown.
  [[nodiscard]] static Result<Policy> Create(PolicyConfig config, ChannelRegistry channels, TimeZone tz);

  const PolicyConfig& config() const { return *config_; }
  // Horizons the store needs to compact state (longest cap window, clicked, dismissed).
  const StateOptions& state_options() const { return state_options_; }

  // The time a contact on `channel` at `now` may happen: `now`, or the end of the quiet window.
  // *quiet is set when `now` is inside the quiet window.
  TimeMs SendTime(ChannelId channel, TimeMs now, bool* quiet) const;

  // Stateless rules for one item (consent, suitability, eligibility of tier, region, channel,
  // validity and holdings, quiet hours with action drop), appended to *blocked_by.
  void StaticCheck(const Customer& customer, const Candidate& c, ChannelId channel, TimeMs now,
                   std::vector<std::string>* blocked_by) const;

  // Whether the stateless rules block every marketing (non-service) item for `customer` on
  // `channel` at `now`: consent withdrawn, or quiet hours with action drop. Then StaticCheck
  // blocks each such item, and only service items can pass.
  bool BlocksAllMarketing(const Customer& customer, ChannelId channel, TimeMs now) const;

  // The pure evaluator: every rule against a given contact state, nothing taken or written.
  std::vector<Decision> Evaluate(const Customer& customer, const std::vector<Candidate>& items, ChannelId channel,
                                 TimeMs now, const CustomerState& state) const;

  // The stateful plan for the candidates; `static_ok[i]` false leaves candidate i out.
  ContactPlan BuildPlan(const Customer& customer, const std::vector<Candidate>& items,
                        const std::vector<bool>& static_ok, ChannelId channel, TimeMs now,
                        const std::string& request_id, int max_take) const;

  // Checks every rule against the store's state (a dry run: nothing is counted).
  [[nodiscard]] Result<std::vector<Decision>> Check(EventStore* store, const Customer& customer,
                                                    const std::vector<Candidate>& items, ChannelId channel,
                                                    TimeMs now) const;

  // Checks and counts in one atomic step: takes up to `max_take` allowed items in order under
  // `request_id` (a serving request id: reservations confirmed by `impression`; a push run id:
  // the send counts). Re-submitting the same request id counts nothing twice.
  [[nodiscard]] Result<Contacts> Reserve(EventStore* store, const Customer& customer,
                                         const std::vector<Candidate>& items, ChannelId channel, TimeMs now,
                                         const std::string& request_id, int max_take) const;

  // Reserve for many customers at once (customers[k] with items[k]), one store write for the
  // batch (EventStore::ApplyMany); each customer's check and count stays one atomic step.
  // Results in the customers' order. Used by push runs.
  [[nodiscard]] Result<std::vector<Contacts>> ReserveMany(EventStore* store,
                                                          const std::vector<const Customer*>& customers,
                                                          const std::vector<std::vector<Candidate>>& items,
                                                          ChannelId channel, TimeMs now, const std::string& request_id,
                                                          int max_take) const;
  // Events and decisions since `since` (newest first, at most `limit` of each) and the usage of
  // every applicable cap.
  [[nodiscard]] Result<CustomerHistory> History(EventStore* store, const std::string& customer_id, TimeMs since,
                                                size_t limit, TimeMs now) const;

  // Records feedback events (durable on return), with the policy's state horizons.
  [[nodiscard]] Status Record(EventStore* store, const std::vector<StoredEvent>& events) const {
    return store->Append(events, state_options_);
  }

  const ChannelRegistry& channels() const { return channels_; }

  // This policy with one more cap: at most `limit` contacts to a customer in any `window`
  // (rolling) per campaign value (scope customer_campaign, every channel). A governed campaign's
  // own cap: its sends carry its id as their campaign, so the cap counts only them. REQUIRES
  // window + a day <= state_options().keep_contacts (the store keeps contacts that long).
  Policy WithCampaignCap(int limit, TimeMs window) const;

 private:
  struct CompiledCap;
  Policy() = default;
  std::shared_ptr<const PolicyConfig> config_;
  ChannelRegistry channels_;
  TimeZone tz_ = TimeZone::Utc();
  StateOptions state_options_;
  std::shared_ptr<const std::vector<CompiledCap>> caps_;
  std::vector<int> quiet_;        // per channel id: index into quiet_hours or -1
  std::vector<TimeMs> cooldown_;  // per channel id: gap or 0
  std::vector<bool> reserve_;     // per channel id: reservations need confirmation
  // Whether the channel's quiet hours drop marketing (rather than defer it).
  bool QuietDrops(ChannelId channel) const;
  // StaticCheck with the channel's send time for `now` (and whether `now` is in its quiet window)
  // worked out once for all candidates.
  void StaticCheckAt(const Customer& customer, const Candidate& c, ChannelId channel, TimeMs now, TimeMs send,
                     bool send_quiet, std::vector<std::string>* blocked_by) const;
  // Decisions with the stateless rules applied; plan_index[i] = candidate i's index in the plan
  // (-1 = blocked already, left out).
  struct Prepared {
    std::vector<Decision> decisions;
    std::vector<bool> ok;
    std::vector<int> plan_index;
  };
  Prepared Prepare(const Customer& customer, const std::vector<Candidate>& items, ChannelId channel, TimeMs now) const;
  // Adds the plan's outcome (taken, stateful rules) to the decisions.
  void Combine(const PlanOutcome& out, Prepared* p) const;
};

}  // namespace qm::policy
