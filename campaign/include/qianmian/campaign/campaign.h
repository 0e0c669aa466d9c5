// Module campaign: governed marketing campaigns (issue 18, SPEC §8). May depend on: core, policy,
// push, artifacts; nlohmann-json (private).
//
// A campaign is a definition (channel, audience, content, objective, budget,
// holdout share, schedule, priority) and a lifecycle:
//
//   draft -> submitted -> approved -> scheduled -> running -> completed
//   submitted -> rejected;  scheduled | running -> paused -> (back to where it was)
//   any state but completed and cancelled -> cancelled;  submitted | approved | rejected -> draft
//
// Maker-checker: an author of the definition (its creator and everyone who edited it) may never
// approve or reject it. An edit returns the campaign to draft and drops its approval. Approval
// records the hash of the exact definition approved (SHA-256 of its canonical JSON); only a
// campaign whose definition still has that hash may be scheduled or run.
//
// Storage: one governed record per campaign in the event store (policy::EventStore's records,
// collection "campaigns": embedded by default, Redis when replicas share it). Every change is a
// compare-and-set on the record's revision, written with its audit entry in one atomic, durable
// step: of two concurrent changes (two approvers, an edit racing an approval) exactly one wins,
// the other gets Conflict and changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/policy/event_store.h"

namespace qm::campaign {

enum class State : uint8_t {
  kDraft,
  kSubmitted,
  kApproved,
  kScheduled,
  kRunning,
  kCompleted,
  kPaused,
  kRejected,
  kCancelled,
};
const char* StateName(State s);
std::optional<State> ParseState(std::string_view name);

// When a campaign's occurrences run, in the bank's time zone.
struct Schedule {
  std::string kind = "none";       // "none" (not set yet) | "once" | "daily" | "weekly" | "dates"
  std::string at;                  // once: local date and time, "2026-12-10T09:30"
  std::string time;                // daily, weekly, dates: local "HH:MM"
  std::vector<int> weekdays;       // weekly: 0 = Monday .. 6 = Sunday
  std::vector<std::string> dates;  // dates: local "YYYY-MM-DD"
  std::string from, to;            // daily, weekly: first and last local date ("YYYY-MM-DD")
  // The send window (local "HH:MM", both or neither): an occurrence outside it is not started.
  std::string window_from, window_to;
};

struct Occurrence {
  std::string name;  // the `at` text (once), or the local date "YYYY-MM-DD"
  TimeMs at = kNoTime;
};

// Every occurrence of a schedule, in time order (none for kind "none"; at most 5,000). The names
// do not depend on the time zone; the times do.
std::vector<Occurrence> OccurrencesOf(const Schedule& s, const TimeZone& tz);

// An event-triggered campaign's rule (trigger.h): when an event of type `event` whose attributes
// satisfy `condition` arrives for a customer of the audience, the engine chooses that customer's
// best item of the campaign's content under every contact rule, `delay_s` after the event, and
// not at all once `expiry_s` has passed since it.
struct Trigger {
  std::string event;      // a type of the event catalogue (trigger.h); "" = not triggered
  std::string condition;  // on the event's attributes, e.g. "amount >= 5000" ("" = any event)
  int64_t delay_s = 0;
  int64_t expiry_s = 3600;
};

struct Definition {
  std::string id;    // [A-Za-z0-9_.-], 1..64 characters: the record id and the run ids' prefix
  std::string name;  // free text
  std::string channel = "wechat_push";
  // Channel choice: the push channels the campaign may use (the first is `channel`); each
  // customer gets the one with the highest expected value that the caps, consent and quiet hours
  // allow (run.h). Empty = `channel` only.
  std::vector<std::string> channels;
  std::vector<std::string> AllChannels() const {
    return channels.empty() ? std::vector<std::string>{channel} : channels;
  }
  std::string audience = "all";  // a push audience expression (push/audience.h)
  // Content: explicit items, or items of these categories / with these tags; all empty = the
  // engine chooses among every item the channel allows.
  std::vector<std::string> items, categories, tags;
  double w_click = 1, w_convert = 0;  // the objective
  int64_t budget_total = 0;           // sends in all (0 = no budget)
  int64_t budget_per_day = 0;         // sends a local day (0 = no budget)
  double holdout = 0.1;               // share of the audience kept as the campaign's control arm
  // The campaign's own cap: at most cap_per_customer sends to one customer in any cap_days days
  // (0 = none; only the bank's caps apply). Counted atomically with the bank's caps.
  int64_t cap_per_customer = 0;
  int64_t cap_days = 7;
  Schedule schedule;  // none for a triggered campaign
  int priority = 0;   // higher first when campaigns compete
  Trigger trigger;    // set: the campaign runs on events (while scheduled or running), not a schedule
  bool triggered() const { return !trigger.event.empty(); }
};

// Parses a definition from a JSON object (a marketer's file, or the wire's `definition`). Every
// error names its field, e.g. "'budget.per_day': must be a whole number >= 0"; unknown fields
// are refused. Only the shape is checked here; CheckDefinition checks it against the bank.
[[nodiscard]] Result<Definition> ParseDefinition(std::string_view json_text);
// The canonical JSON of a definition: every field, keys in order. ParseDefinition reads it back.
std::string DefinitionJson(const Definition& d);
// SHA-256 (hex) of DefinitionJson: what an approval approves.
std::string DefinitionHash(const Definition& d);

// Checks a definition against the bank's data before anything is stored: the channel exists,
// the audience parses and names known fields, every item exists and is allowed on the channel,
// every category and tag is known, the schedule is well-formed and not in the past at `now`, a
// trigger names a known event type and its condition only that type's attributes.
// InvalidArgument naming the field and the reason.
// `contact_horizon` (policy::StateOptions::keep_contacts; 0 = not checked): how long the store
// keeps contacts, which bounds the window of the campaign's own cap.
[[nodiscard]] Status CheckDefinition(const Definition& d, const Dataset& data, TimeMs now, const TimeZone& tz,
                                     TimeMs contact_horizon = 0);

struct Campaign {
  Definition definition;
  State state = State::kDraft;
  State paused_from = State::kDraft;  // the state a paused campaign resumes to
  std::vector<std::string> authors;   // who wrote the definition: the creator, then each editor
  std::string approved_hash;          // DefinitionHash approved ("" = not approved)
  std::string approved_by;
  TimeMs approved_at = kNoTime;
  std::string reason;  // the last rejection's or cancellation's reason
  std::string created_by;
  TimeMs created_at = kNoTime, updated_at = kNoTime;
  uint64_t revision = 0;  // the record's: one more per change
  // Sends of each occurrence run so far (an occurrence run again replaces its count).
  std::map<std::string, int64_t> occurrences;
  std::vector<std::string> missed;  // occurrences that never ran in time (scheduler.h)
  // When it was first scheduled: occurrences before it are not run nor missed.
  TimeMs scheduled_at = kNoTime;
  // The approval's snapshot of the saved segments its audience names (segments.h): name ->
  // expression when it was approved. Runs select with these, whatever the segments say later.
  std::map<std::string, std::string> segments;

  std::string hash() const { return DefinitionHash(definition); }
  // Whether the definition is the approved one (approved and unchanged since).
  bool RunsApprovedVersion() const { return !approved_hash.empty() && approved_hash == hash(); }
};

// The campaign as the wire and `campaign show --json` give it (definition, state, approval,
// authors, hash, revision, times).
std::string CampaignJson(const Campaign& c);

// One entry of a campaign's append-only audit log.
struct AuditEntry {
  uint64_t revision = 0;  // the record's revision this change wrote
  TimeMs ts = kNoTime;
  std::string who;     // the operator
  std::string from;    // where the change came from ("cli", a client's address)
  std::string action;  // "create", "edit" or "transition"
  std::string from_state, to_state;
  std::string hash;     // the definition's hash after the change
  std::string changes;  // JSON: create: the definition; edit: an RFC 6902 patch old -> new
  std::string reason;
};
std::string AuditJson(const AuditEntry& e);

// Who asks for a change, from where, and when (now: the wall clock unless set).
struct Actor {
  std::string who;   // required: an operator name (issue 19's authentication will supply it)
  std::string from;  // "cli", "tcp://10.0.0.5:51234", ...
  TimeMs now = kNoTime;
};

// The campaigns of one event store. Thread-safe (the store is); any number of instances in any
// number of processes may share a Redis store.
class Campaigns {
 public:
  // `check` validates a definition against the bank (CheckDefinition with the loaded data).
  using Check = std::function<Status(const Definition&, TimeMs now)>;
  Campaigns(policy::EventStore* store, Check check) : store_(store), check_(std::move(check)) {}

  // A new campaign in draft. AlreadyExists (wire: conflict) when the id is taken.
  [[nodiscard]] Result<Campaign> Create(const Definition& d, const Actor& actor);
  // Replaces the definition (same id); the campaign returns to draft and loses its approval.
  // Refused (InvalidArgument) when running, completed or cancelled. `expected_revision` 0 = the
  // revision read now; otherwise Conflict when the campaign changed since that revision.
  [[nodiscard]] Result<Campaign> Update(const Definition& d, const Actor& actor, uint64_t expected_revision = 0);
  // Moves the campaign to `to` (see the header comment). InvalidArgument for a move the
  // lifecycle does not allow (naming the allowed ones); PermissionDenied when an author approves
  // or rejects; FailedPrecondition when scheduling or running a definition whose hash is not the
  // approved one, or scheduling without a schedule or with one in the past.
  [[nodiscard]] Result<Campaign> Transition(const std::string& id, State to, const Actor& actor,
                                            const std::string& reason = "", uint64_t expected_revision = 0);
  [[nodiscard]] Result<Campaign> Get(const std::string& id) const;
  [[nodiscard]] Result<std::vector<Campaign>> List() const;
  // Records that occurrence `occurrence` of a running campaign sent `sends`, with an audit entry
  // (action "occurrence"); the campaign completes when every occurrence of its schedule has run
  // or was missed. FailedPrecondition unless the campaign is running its approved version.
  [[nodiscard]] Result<Campaign> RecordOccurrence(const std::string& id, const std::string& occurrence, int64_t sends,
                                                  const Actor& actor, uint64_t expected_revision = 0);
  // Records that occurrence `occurrence` of a scheduled or running campaign was missed (never ran
  // within the grace period), with an audit entry (action "missed"); completes it as above.
  [[nodiscard]] Result<Campaign> RecordMissed(const std::string& id, const std::string& occurrence, const Actor& actor);
  policy::EventStore* store() const { return store_; }
  // The audit log, oldest first.
  [[nodiscard]] Result<std::vector<AuditEntry>> Audit(const std::string& id) const;

 private:
  Result<Campaign> Write(const Campaign& before, Campaign after, const Actor& actor, AuditEntry entry);
  // check_ on `d` with its audience's segments expanded (`snapshot`, or the current ones when
  // null); the expressions used go to *used when given.
  Status CheckExpanded(const Definition& d, TimeMs now, const std::map<std::string, std::string>* snapshot,
                       std::map<std::string, std::string>* used = nullptr) const;

  policy::EventStore* store_;
  Check check_;
};

// The states a campaign in `from` may move to.
std::vector<State> AllowedTransitions(State from);

// The audit log as CSV (revision,ts,who,from,action,from_state,to_state,hash,reason,changes).
std::string AuditCsv(const std::vector<AuditEntry>& entries);

}  // namespace qm::campaign
