// Module policy: the contact policy and the event store. May depend on: core; RocksDB, hiredis
// (private).
// The event store: every event (feedback, sends), the decision log (decision_log.h) and each
// customer's contact state, with an atomic per-customer check-and-count. Two backends with identical semantics:
//   embedded (default): RocksDB in a folder (<data>/store/); Append is durable (WAL synced) before
//                       it returns; a crash loses no acknowledged event.
//   redis:              a Redis server shared by replicas; check-and-count runs RunPlan on the
//                       customer's state read from Redis and commits it with one compare-and-set
//                       Lua script (EVALSHA) that writes only if the state is unchanged, else runs
//                       again (at most 64 times, then Unavailable); keys expire after the longest
//                       horizon. Durability is the server's (appendonly / appendfsync).
// The embedded folder is locked by one process at a time (RocksDB LOCK); replicas or concurrent
// commands that must share counters use redis.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/contact_state.h"
#include "qianmian/policy/decision_log.h"
#include "qianmian/policy/policy_config.h"

namespace qm::policy {

// A record of an operator-side collection (issue 18: campaigns): a value that only
// compare-and-set writes change. Every write appends one entry to the record's own append-only
// audit log in the same atomic, durable step, so the log holds every version ever written.
struct GovernedRecord {
  std::string id;
  uint64_t revision = 0;  // 1 after the first write, one more after each write
  std::string value;
};

// Thread-safe: every method may be called concurrently from any thread, and (redis) from any
// number of store instances in any number of processes.
class EventStore {
 public:
  // Opens (creating if needed) the configured backend. Unavailable when Redis cannot be reached,
  // IoError when the folder cannot be opened.
  [[nodiscard]] static Result<std::unique_ptr<EventStore>> Open(const StoreConfig& config);
  virtual ~EventStore() = default;

  // Records `events` (any customers) and updates the contact states: an event confirming a
  // pending reservation (same customer, request id, item, type, channel) confirms it; an exact
  // duplicate is ignored. Returns only once the events are durable.
  [[nodiscard]] virtual Status Append(const std::vector<StoredEvent>& events, const StateOptions& options) = 0;

  // Runs RunPlan for the customer: the check and the count of what it takes are ONE atomic step
  // (embedded: under the customer's lock; redis: on a snapshot of the state, committed by a
  // compare-and-set script and run again when another writer changed the state first), and what
  // it took is persisted (durably) before returning. No backend ever exceeds a cap.
  // A plan with max_take == 0 only checks and writes nothing.
  [[nodiscard]] virtual Result<PlanOutcome> Apply(const ContactPlan& plan) = 0;

  // Applies many plans (any customers, several per customer allowed, in order) with the same
  // per-customer atomicity as Apply; outcomes in the plans' order. The default applies them one
  // by one; the embedded store makes the whole batch durable with one synced write (a push run's
  // batch of customers), so it returns only when every taken contact is durable.
  [[nodiscard]] virtual Result<std::vector<PlanOutcome>> ApplyMany(const std::vector<ContactPlan>& plans);

  // The customer's current contact state (empty when unknown).
  [[nodiscard]] virtual Result<CustomerState> State(const std::string& customer_id) = 0;

  // The customer's recorded events with ts >= since, newest first, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<StoredEvent>> Log(const std::string& customer_id, TimeMs since,
                                                             size_t limit) = 0;

  // Calls `fn` for every recorded event (any order within a customer: by time); stops early
  // when `fn` returns false. For training: serve -> feedback -> train.
  [[nodiscard]] virtual Status Export(const std::function<bool(const StoredEvent&)>& fn) = 0;

  // Records decisions (any customers) in the decision log, durable as Append's events (embedded:
  // one WAL write, synced when the store syncs, unless sync_decisions is off: then it survives a
  // process crash but not a power loss; redis: the server's). An identical record written
  // again is stored once. Touches no contact state: nothing here counts against a cap.
  [[nodiscard]] virtual Status AppendDecisions(const std::vector<DecisionRecord>& decisions) = 0;

  // The customer's recorded decisions with ts >= since, newest first, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<DecisionRecord>> Decisions(const std::string& customer_id, TimeMs since,
                                                                      size_t limit) = 0;

  // Calls `fn` for every recorded decision (within a customer: by time); stops early when `fn`
  // returns false.
  [[nodiscard]] virtual Status ExportDecisions(const std::function<bool(const DecisionRecord&)>& fn) = 0;

  // A bulk load of a store's first history: serve seeds the embedded store from events.csv when
  // it opens a new one. Customers come in `parts` that may be added concurrently, one thread per
  // part: within a part each customer once, ids ascending (bytewise), and every id of a part below
  // every id of the next. A customer's events come together, by time; they are recorded as
  // Append records them.
  class Seeder {
   public:
    virtual ~Seeder() = default;
    // One customer's events into `part` (InvalidArgument for a part out of range, more than one
    // customer, or an id not above the part's last one).
    [[nodiscard]] virtual Status Add(int part, const std::vector<StoredEvent>& events) = 0;
    // Makes everything added durable and visible (the default: already as added); REQUIRES no Add
    // running. InvalidArgument when a part's ids are not all above the previous part's.
    [[nodiscard]] virtual Status Finish() = 0;
  };
  // The default appends what is added in batches (Append). The embedded store, when it holds no
  // events or contact states yet, writes what is added into sorted table files and ingests them
  // at Finish (RocksDB's bulk load: no write-ahead log, no compaction): nothing is visible before
  // Finish, and a seeding interrupted before it leaves the store as it was.
  [[nodiscard]] virtual Result<std::unique_ptr<Seeder>> Seed(const StateOptions& options, int parts = 1);

  // Drops events and decisions older than `now - retention` and state records past their
  // horizons. Most of the work (finding what to drop, reading and compacting states) takes no lock
  // that requests wait for; each step that does (recording the new horizon, writing back a group
  // of compacted states under their stripe's lock, reopening a store that broke) is handed to
  // `locked` (may be empty: the step runs in the calling thread), which runs it, at once or on
  // another thread, and returns its status. The server compacts in the idle scheduling class and
  // runs these steps on a thread of the normal class: a thread that only gets a core when one is
  // idle never holds a lock that a request waits for.
  using Step = std::function<Status()>;
  using StepRunner = std::function<Status(const Step& step)>;
  [[nodiscard]] virtual Status Compact(TimeMs now, const StateOptions& options, const StepRunner& locked) = 0;
  [[nodiscard]] Status Compact(TimeMs now, const StateOptions& options) { return Compact(now, options, {}); }

  // Governed records (GovernedRecord). Collections and ids are non-empty, without '\0', '{' or
  // '}'; values and audit entries any bytes. Unlike events, they are never dropped by retention.
  // The record `id` of `collection`; NotFound when it was never written.
  [[nodiscard]] virtual Result<GovernedRecord> ReadRecord(const std::string& collection, const std::string& id) = 0;
  // Every record of `collection`, by id.
  [[nodiscard]] virtual Result<std::vector<GovernedRecord>> ListRecords(const std::string& collection) = 0;
  // Writes `value` as revision `expected_revision + 1` and appends `audit` to the record's audit
  // log, as one atomic, durable step, only when the record's revision is `expected_revision` (0:
  // the record must not exist yet). Conflict when another write came first: nothing is written.
  [[nodiscard]] virtual Status WriteRecord(const std::string& collection, const std::string& id,
                                           uint64_t expected_revision, const std::string& value,
                                           const std::string& audit) = 0;
  // Deletes the record and its audit log when its revision is `expected_revision` (Conflict
  // otherwise, NotFound when it does not exist): for working records that a process prunes once
  // done (e.g. delayed trigger events), never for governed ones (campaigns keep their history).
  [[nodiscard]] virtual Status DeleteRecord(const std::string& collection, const std::string& id,
                                            uint64_t expected_revision) = 0;
  // The record's audit entries, oldest first (one per write); empty when never written.
  [[nodiscard]] virtual Result<std::vector<std::string>> RecordAudit(const std::string& collection,
                                                                     const std::string& id) = 0;

  // Whether the store answers and takes writes now: Ok, or why not (Unavailable: e.g. the
  // embedded store's disk is full; it tries to resume first). The default reads a probe state.
  [[nodiscard]] virtual Status Health();

  // "embedded" or "redis".
  virtual const char* backend() const = 0;
};

}  // namespace qm::policy
