// Module campaign: business events from a Redis stream (issue 18: "or from a Redis stream
// (consumer group, acknowledged after processing, so a restart loses nothing and processes
// nothing twice)").
//
// An entry's fields: event_id, customer_id, type, ts_ms (optional: the entry id's time) and the
// event type's attributes (trigger.h's catalogue), e.g.
//   XADD qm:events * event_id e-1 customer_id C001 type salary_credited amount 15000
// Entries are read with XREADGROUP as one consumer of a group and acknowledged (XACK) only after
// their decisions are durable (Triggers::Process returned). A consumer that restarts first reads
// its own unacknowledged entries again; entries another consumer left unacknowledged for longer
// than `claim_idle` are taken over (XAUTOCLAIM). An entry processed again replays its decisions
// (trigger.h: the run id), so nothing is decided twice. An entry that is not a valid event is
// copied to "<key>:rejected" with the reason and acknowledged: never lost, never retried forever.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "qianmian/campaign/trigger.h"
#include "qianmian/policy/policy_config.h"

namespace qm::campaign {

struct StreamOptions {
  std::string key;  // the stream
  std::string group = "qianmian";
  std::string consumer;            // stable across restarts (e.g. the host name)
  int batch = 100;                 // entries a read
  long block_ms = 1000;            // a read waits this long for new entries
  long claim_idle_ms = 60 * 1000;  // entries left pending this long by another consumer are taken over
};

struct StreamStats {
  int64_t read = 0, decided = 0, rejected = 0, acked = 0, claimed = 0;
};

class RedisClient;

class EventStream {
 public:
  // Connects (standalone Redis: the store's host, port, password) and creates the group at the
  // stream's start when missing (MKSTREAM). Unavailable when Redis cannot be reached.
  [[nodiscard]] static Result<std::unique_ptr<EventStream>> Open(const policy::StoreConfig& store, StreamOptions o);
  ~EventStream();
  // One round: reads a batch (this consumer's pending entries first, then entries idle too long
  // at other consumers, then new ones, waiting up to block_ms), decides the valid ones with
  // `triggers` at `now` (kNoTime = the clock), rejects the bad ones, acknowledges them all. When
  // deciding fails (e.g. the store is down) nothing is acknowledged and the error returned: the
  // next round reads them again.
  [[nodiscard]] Status Poll(Triggers* triggers, TimeMs now = kNoTime);
  const StreamStats& stats() const { return stats_; }
  struct Entry;  // one read entry (event_stream.cc)

 private:
  EventStream(std::unique_ptr<RedisClient> c, StreamOptions o);
  Result<std::vector<Entry>> ReadBatch();

  std::unique_ptr<RedisClient> client_;
  StreamOptions o_;
  bool pending_ = true;  // read this consumer's own pending entries first
  int64_t rounds_ = 0;
  StreamStats stats_;
};

}  // namespace qm::campaign
