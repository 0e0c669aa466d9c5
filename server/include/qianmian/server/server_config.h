// Module server: the ZeroMQ server over the engine. May depend on: core, serving; artifacts,
// recall, ZeroMQ, msgpack, spdlog (private); never training or synth.
// [server]: the ZeroMQ server's endpoint, worker pool, request limits, deadlines and background
// tasks. Defaults are written once, next to the field; ReadServerConfig reports bad values with
// the key's name.
#pragma once

#include <cstdint>
#include <string>

#include "qianmian/core/config.h"
#include "qianmian/core/types.h"
#include "qianmian/policy/policy_config.h"

namespace qm::server {

// [server]
struct ServerConfig {
  std::string bind = "tcp://127.0.0.1:5555";  // ROUTER endpoint (tcp://, ipc://, inproc://)
  int workers = 0;                            // worker threads; 0 = one per core
  // Threads of the write lane: feedback, upserts, retire and reload have their own FIFO queue
  // (queue_capacity long, never shed by CoDel), so a page never waits behind a write's fsync and
  // a write is never starved by the newest-first order of a standing page queue.
  int write_workers = 2;
  int queue_capacity = 256;  // requests waiting for a worker; past it: `overloaded`
  // How much lower the CPU priority (nice) of the threads that run the engine (workers, write
  // workers, the campaign scheduler and the trigger stream) is than the process's: the front and
  // ZeroMQ's I/O thread, which receive every request and forward every reply, then get a core as
  // soon as they have work instead of waiting behind a worker's page. 0 = the same priority. On
  // a machine the server has to itself, 10 keeps overloaded pages' p99 lower (README: Overload);
  // any other process at the server's priority then takes CPU from the workers first.
  int worker_nice = 0;
  int64_t max_frame_bytes = 1 << 20;  // a larger request frame gets `bad_request`
  int max_array = 10000;              // longest array or map inside a request
  int max_depth = 16;                 // deepest nesting inside a request
  TimeMs default_deadline = 0;        // deadline of a request without `deadline_ms`; 0 = none
  // Overload (issue 20): a `recommend` on app_home without `deadline_ms` still waiting in the
  // queue after this long is answered `deadline_exceeded` instead of being served after the app
  // gave up (once a worker runs it, it completes). 0 = none.
  TimeMs app_home_deadline = 50;
  // CoDel on the queue (codel.h): when the smallest wait of an interval stays above the target,
  // read-only requests (recommend, score, history, report, stats) that waited over twice the
  // target are answered `overloaded` at once and workers take the newest first. 0 = off.
  // Feedback, upserts and reload go to the write lane and are never shed this way (only by
  // queue_capacity).
  TimeMs codel_target = 5;
  TimeMs codel_interval = 100;
  TimeMs max_deadline = 60 * kMsPerSecond;   // largest accepted `deadline_ms`
  TimeMs watch_interval = 2 * kMsPerSecond;  // poll of <artifacts>/CURRENT; 0 = no watch
  TimeMs drain_timeout = 10 * kMsPerSecond;  // Stop: longest wait for requests in flight
  // Event-store maintenance: every interval, cap state past the longest window and event
  // records past [store] retention are compacted away (EventStore::Compact, in the background;
  // requests go on). 0 = never. The first run is one interval after the start.
  TimeMs compact_interval = 6 * 60 * kMsPerMinute;
  // Campaigns (issue 18): every campaign_tick the server runs the due occurrences of scheduled
  // campaigns, each exactly once across the replicas sharing the store (campaign/scheduler.h);
  // 0 = never (run them with `qianmian campaign run`). An occurrence later than campaign_grace is
  // recorded as missed; a runner's lease not marked done after campaign_lease is taken over.
  TimeMs campaign_tick = 10 * kMsPerSecond;
  TimeMs campaign_grace = 2 * 60 * kMsPerMinute;
  TimeMs campaign_lease = 10 * kMsPerMinute;
  std::string campaign_outbox;  // send lists: <outbox>/<campaign>/<occurrence>.csv ("" = <data>/campaign_runs)
  // Event triggers (issue 18, campaign/trigger.h): where triggered decisions go, a folder of
  // per-minute JSON-lines files or "redis:<stream key>" ("" = <data>/trigger_outbox); the Redis
  // stream of business events the server consumes ("" = none; events.ingest only) as consumer
  // `trigger_consumer` ("" = the host name) of group `trigger_group`. Delayed events are decided
  // every campaign_tick.
  std::string trigger_outbox;
  std::string trigger_stream;
  std::string trigger_group = "qianmian";
  std::string trigger_consumer;
  policy::StoreConfig trigger_redis;  // the Redis of the outbox and the stream: [store]'s (not a key)
  // The HTTP port (issue 19): "host:port" (port 0 = any free one) for GET /livez, /readyz,
  // /metrics and the JSON API POST /v1/<op>; "" = none.
  std::string http_bind;
  int http_threads = 8;
  // http_api = false turns the JSON API off (it has no authentication of its own: bind the port to
  // loopback or a private network, or leave only the console on it).
  bool http_api = true;
  // With http_clients (a TOML file of [[clients]] name, token_sha256, ops; core/curve_keys.h), the
  // JSON API answers only requests carrying `Authorization: Bearer <token>` of a listed client
  // (401 otherwise), each to its ops (403 otherwise).
  std::string http_clients;
  // The operator console on the HTTP port (issue 19, server/src/console.h): its files
  // (console_dir; "" = the console/ folder found beside the binary: <repo>/console for a build
  // tree, <prefix>/share/qianmian/console installed), sessions ending after console_idle without
  // use or console_session after login, the cookie marked Secure (behind an HTTPS proxy), and
  // logins refused for console_lockout after console_login_failures failures of a name or address.
  bool console = true;
  std::string console_dir;
  TimeMs console_idle = 30 * 60 * kMsPerSecond;
  TimeMs console_session = 12 * 3600 * kMsPerSecond;
  bool console_secure_cookie = false;
  int console_login_failures = 5;
  TimeMs console_lockout = 15 * 60 * kMsPerSecond;
  // ZeroMQ CURVE (issue 19): with curve = true the ROUTER encrypts and authenticates: only the
  // clients of curve_clients (a TOML file of [[clients]] name, public_key, ops; core/curve_keys.h)
  // complete the handshake, each may call only its ops (others: `forbidden`); curve_key is the
  // server's key pair file (`qianmian keygen`). The HTTP port's JSON API is not covered.
  bool curve = false;
  std::string curve_key, curve_clients;
  // Logs (issue 19), on stderr: "text" or "json" (one JSON object a line: ts, level, logger, msg);
  // the level (trace, debug, info, warn, error, critical, off); with access_log, one line per
  // reply: op, code, request id, model version and microseconds (never a customer's data).
  std::string log_format = "text";
  std::string log_level = "info";
  bool access_log = false;  // HTTP worker threads (each JSON API request waits for its reply in one)
};

// Reads [server] into `c`; errors name the key (e.g. "'server.workers': must be in [0, 256]").
void ReadServerConfig(ConfigTable t, ServerConfig* c);

}  // namespace qm::server
