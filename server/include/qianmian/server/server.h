// The ZeroMQ server (SPEC §5): a ROUTER front end, a bounded queue, a pool of worker threads
// over one serving::Engine, msgpack requests and replies, deadlines, load shedding, stats,
// reload (on request and by watching <artifacts>/CURRENT) and a draining stop.
// ZeroMQ and msgpack stay in src/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qianmian/core/config.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/serving/engine.h"

namespace qm::server {

// [server]
struct ServerConfig {
  std::string bind = "tcp://127.0.0.1:5555";  // ROUTER endpoint (tcp://, ipc://, inproc://)
  int workers = 0;                  // worker threads; 0 = one per core
  int queue_capacity = 256;         // requests waiting for a worker; past it: `overloaded`
  int64_t max_frame_bytes = 1 << 20;  // a larger request frame gets `bad_request`
  int max_array = 10000;            // longest array or map inside a request
  int max_depth = 16;               // deepest nesting inside a request
  TimeMs default_deadline = 0;      // deadline of a request without `deadline_ms`; 0 = none
  TimeMs max_deadline = 60 * kMsPerSecond;  // largest accepted `deadline_ms`
  TimeMs watch_interval = 2 * kMsPerSecond;  // poll of <artifacts>/CURRENT; 0 = no watch
  TimeMs drain_timeout = 10 * kMsPerSecond;  // Stop: longest wait for requests in flight
  // Event-store maintenance: every interval, cap state past the longest window and event
  // records past [store] retention are compacted away (EventStore::Compact, in the background;
  // requests go on). 0 = never. The first run is one interval after the start.
  TimeMs compact_interval = 6 * 60 * kMsPerMinute;
};

// Reads [server] into `c`; errors name the key (e.g. "'server.workers': must be in [0, 256]").
void ReadServerConfig(ConfigTable t, ServerConfig* c);

// A snapshot of the counters `stats` reports (for tests and the command line).
struct StatsSnapshot {
  int64_t requests = 0;   // replies sent, every op and outcome
  int64_t errors = 0;     // replies with ok = false
  int64_t overloaded = 0; // requests shed at the queue
  int64_t reloads = 0;    // successful version swaps (request or watch)
  int64_t compactions = 0;  // completed event-store compactions
};

// Thread-safety: every method may be called from any thread. The engine is shared, not owned,
// and must outlive the server.
class Server {
 public:
  // Binds config.bind and starts the front end, the workers, (watch_interval > 0) the
  // watch of <artifacts_root>/CURRENT and (compact_interval > 0) the store's compaction. InvalidArgument for a bad configuration, Unavailable
  // when the address cannot be bound.
  [[nodiscard]] static Result<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                             serving::Engine* engine,
                                                             std::string artifacts_root);
  // Stops (as Stop) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, with a tcp wildcard port resolved (e.g. "tcp://127.0.0.1:41234").
  std::string endpoint() const;

  // Drains: new requests get `unavailable`; requests already queued or running finish and
  // their replies are sent (waiting at most drain_timeout); then every thread stops.
  // Idempotent. Returns DeadlineExceeded when the drain timed out (replies may be lost).
  [[nodiscard]] Status Stop();

  StatsSnapshot stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qm::server
