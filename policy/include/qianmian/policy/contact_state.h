// Module policy: the contact policy and the event store. May depend on: core; RocksDB, hiredis
// (private).
// The state the contact policy keeps per customer, and the one algorithm that checks and counts
// contacts against it (RunPlan, ApplyEvent). Both event-store backends run exactly this C++
// algorithm, atomically per customer: the embedded store under the customer's lock, the Redis
// store on a snapshot of the state, committed by a compare-and-set script that writes only if the
// state is still the one read (otherwise it runs again on the new state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/types.h"

namespace qm::policy {

// An event as the store records it. Campaign, category and service come from the catalog at
// the time of the event, so counting never needs the catalog again.
struct StoredEvent {
  TimeMs ts = 0;
  std::string customer_id;
  std::string item_id;
  EventType type = EventType::kImpression;
  std::string channel;     // channel name ("app_home", "wechat_push", ...)
  std::string request_id;  // "" = none; the serving request id or the push run id
  std::string campaign;    // "" = none
  std::string category;    // "" = none
  bool service = false;    // service message (not marketing)
  bool operator==(const StoredEvent& o) const;
};

// One record of a customer's contact state.
struct ContactRecord {
  TimeMs ts = 0;
  EventType type = EventType::kImpression;
  std::string channel, item, campaign, category, request_id;
  bool counted = true;  // uses up caps (marketing; service only when configured)
  TimeMs expires = 0;   // pending reservation released at this time; 0 = confirmed
};

// A customer's records, oldest first. Compacted: records older than the horizons are dropped.
struct CustomerState {
  std::vector<ContactRecord> records;
};

// A record kept for good (opt_out): far enough that `now - kKeepForever` cannot overflow.
inline constexpr TimeMs kKeepForever = TimeMs{1} << 60;

// How long records stay in the state (the event log keeps events for its own retention).
struct StateOptions {
  TimeMs keep_contacts = 35 * kMsPerDay;    // longest cap window / cooldown
  TimeMs keep_clicks = 90 * kMsPerDay;      // click/push_open (eligibility.clicked)
  TimeMs keep_dismissals = 30 * kMsPerDay;  // dismiss (eligibility.dismissed)
  bool count_service = false;               // service events count toward caps
  // opt_out: kKeepForever (consent is withdrawn until the record is removed by hand).
  TimeMs KeepFor(EventType t) const;
};

enum class KeyScope : uint8_t { kChannel = 0, kItem = 1, kCampaign = 2, kCategory = 3, kMarketing = 4 };

// The stateful rules a plan checks; bit r of PlanOutcome::blocked is rule r.
enum class StateRule : uint8_t {
  kCapChannel,
  kCapItem,
  kCapCampaign,
  kCapCategory,
  kCapMarketing,
  kCooldown,
  kClicked,
  kDismissed,
  kConsent,  // an opt_out record on the channel (the `consent` rule, as the opt_out attribute)
};
inline constexpr int kNumStateRules = 9;
// The rule's `blocked_by` name (policy_config.h).
const char* StateRuleName(StateRule r);

// "used < limit" over records matching scope/value, types, channel and time.
struct Constraint {
  StateRule rule = StateRule::kCapChannel;  // reported when exhausted
  KeyScope scope = KeyScope::kChannel;
  std::string value;         // channel / campaign / category; "" for kMarketing and templates
  uint32_t types = 0;        // bit (1 << EventType) for each counted type
  std::string channel;       // only records on this channel; "" = any
  TimeMs since = 0;          // counts records with ts >= since
  int limit = 0;             // exhausted when used >= limit
  bool counted_only = true;  // only records with `counted`
  bool per_request = false;  // a request's own takes never count (cooldown: one request = one contact)
};

// Views into the caller's catalogue: a plan lives only for the call that runs it.
struct PlanCandidate {
  std::string_view item, campaign, category;
  bool counted = true;        // its contact record uses up caps
  bool service = false;       // a service item (recorded as such in the event log)
  TimeMs ts = 0;              // time of its contact record
  uint32_t shared_begin = 0;  // its shared constraints: ContactPlan::candidate_shared
  uint32_t shared_end = 0;    //   [shared_begin, shared_end)
  uint32_t templates = 0;     // bit t: ContactPlan::templates[t] on its own item
};

// One atomic check (and, when max_take > 0, count) for one customer on one channel.
struct ContactPlan {
  std::string customer_id;
  std::string request_id;  // idempotency key; REQUIRES non-empty when max_take > 0
  std::string channel;
  TimeMs now = 0;
  EventType contact_type = EventType::kImpression;  // type of the records taking creates
  TimeMs expires = 0;                               // reservation expiry; 0 = counts at once (a send)
  int max_take = 0;                                 // take at most this many eligible candidates, in order; 0 = check
  // Constraints on a channel, campaign, category or all marketing, shared by candidates.
  std::vector<Constraint> shared;
  // Item-scope constraints, each applied to a candidate's own item (at most 32; value unused).
  std::vector<Constraint> templates;
  std::vector<uint32_t> candidate_shared;  // indexes into `shared`, ranges per candidate
  std::vector<PlanCandidate> candidates;
  StateOptions options;
};

struct PlanOutcome {
  bool replayed = false;          // request_id seen before: its earlier result
  std::vector<uint8_t> taken;     // per candidate
  std::vector<uint32_t> blocked;  // per candidate: bit r set when a StateRule r constraint is exhausted
};

// Runs `plan` against `state`: drops expired reservations, replays a known request id, counts
// usage, then walks candidates in order taking each one that no constraint blocks (up to
// max_take), appending its record. Sets *changed when `state` was modified. Pure.
PlanOutcome RunPlan(const ContactPlan& plan, CustomerState* state, bool* changed);

// Applies one event: confirms the pending reservation with the same request id, item, type and
// channel, ignores an exact duplicate, otherwise appends a record. Returns false when the event
// was a duplicate (already recorded). Pure.
bool ApplyEvent(const StoredEvent& e, const StateOptions& o, CustomerState* state);

// Contact pressure: the customer's pushes (push_sent records) on `channel` in the 7 and 30 days
// up to `now`, leaving out those of request `skip_request` ("" = none; a push run's own).
void CountPushes(const CustomerState& state, std::string_view channel, std::string_view skip_request, TimeMs now,
                 int* pushes_7d, int* pushes_30d);

// Drops records older than the horizons relative to `now` (and expired reservations).
// Returns true when something was dropped.
bool CompactState(TimeMs now, const StateOptions& o, CustomerState* state);

// Number of records matching constraint `c` (the usage a History reports).
int CountUsage(const Constraint& c, const CustomerState& state);

// Binary encoding of a state / an event (embedded store; stable on disk).
std::string EncodeState(const CustomerState& s);
bool DecodeState(std::string_view data, CustomerState* s);
std::string EncodeEvent(const StoredEvent& e);
bool DecodeEvent(std::string_view data, StoredEvent* e);

}  // namespace qm::policy
