// Module `server`: the ZeroMQ server (SPEC §5) that puts one serving::Engine on the network: a
// ROUTER front end, a bounded queue, a pool of worker threads, msgpack requests and replies,
// deadlines, load shedding, stats, reload (on request and by watching <artifacts>/CURRENT) and a
// draining stop. Used by `qianmian serve`.
// May depend on core and serving (public), and privately on recall, artifacts (the manifest and
// CURRENT), ZeroMQ, msgpack and spdlog; ZeroMQ and msgpack stay in src/. Never on training.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/server/server_config.h"
#include "qianmian/serving/engine.h"

namespace qm::server {

// A snapshot of the counters `stats` reports (for tests and the command line).
struct StatsSnapshot {
  int64_t requests = 0;     // replies sent, every op and outcome
  int64_t received = 0;     // requests taken off the socket (answered, queued or running)
  int64_t errors = 0;       // replies with ok = false
  int64_t overloaded = 0;   // requests shed at the queue
  int64_t reloads = 0;      // successful version swaps (request or watch)
  int64_t compactions = 0;  // completed event-store compactions
};

// Where `reload` re-reads the experiment definition from (`qianmian serve`: [experiments] of
// its --config file, each arm resolved on the [serving] / [policy] the engine opened with). An
// error names the key. Called from a worker thread, one reload at a time.
using ExperimentsSource = std::function<Result<serving::Experiments>()>;

// Sets spdlog's loggers from [server] log_format, log_level and access_log (stderr, text or JSON
// lines). InvalidArgument naming the key for an unknown format or level. Call before Start.
[[nodiscard]] Status ConfigureLogging(const ServerConfig& config);
// One access-log line (when access_log made the "access" logger): op, code (null = ok), request
// id, model version, microseconds.
void LogAccess(const std::string& op, const char* code, const std::string& request_id, const std::string& version,
               int64_t us, bool json_format);

// Thread-safety: every method may be called from any thread. The engine is shared, not owned,
// and must outlive the server.
class Server {
 public:
  // Binds config.bind and starts the front end, the workers, (watch_interval > 0) the
  // watch of <artifacts_root>/CURRENT and (compact_interval > 0) the store's compaction. InvalidArgument for a bad
  // configuration, Unavailable when the address cannot be bound. With `experiments`, every
  // `reload` request re-reads the definition and swaps it in with the version (Engine::Reload);
  // without, `reload` only swaps versions. The CURRENT watch never re-reads it.
  [[nodiscard]] static Result<std::unique_ptr<Server>> Start(const ServerConfig& config, serving::Engine* engine,
                                                             std::string artifacts_root,
                                                             ExperimentsSource experiments = nullptr);
  // Stops (as Stop) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, with a tcp wildcard port resolved (e.g. "tcp://127.0.0.1:41234").
  std::string endpoint() const;
  // The HTTP port's address ("http://127.0.0.1:8080", the port resolved); "" without one.
  std::string http_endpoint() const;

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
