#include "qianmian/server/server_config.h"

namespace qm::server {

void ReadServerConfig(ConfigTable t, ServerConfig* c) {
  t.Read("bind", &c->bind);
  if (c->bind.empty()) t.Error("bind", "an address is required (e.g. tcp://127.0.0.1:5555)");
  t.Read("workers", &c->workers);
  if (c->workers < 0 || c->workers > 256) t.Error("workers", "must be in [0, 256] (0 = one per core)");
  t.Read("write_workers", &c->write_workers);
  if (c->write_workers < 1 || c->write_workers > 64) t.Error("write_workers", "must be in [1, 64]");
  t.Read("worker_nice", &c->worker_nice);
  if (c->worker_nice < 0 || c->worker_nice > 19)
    t.Error("worker_nice", "must be in [0, 19] (0 = the process's priority)");
  t.Read("queue_capacity", &c->queue_capacity);
  if (c->queue_capacity < 1 || c->queue_capacity > 1000000) t.Error("queue_capacity", "must be in [1, 1000000]");
  t.Read("max_frame_bytes", &c->max_frame_bytes);
  if (c->max_frame_bytes < 64 || c->max_frame_bytes > (int64_t{1} << 30)) {
    t.Error("max_frame_bytes", "must be in [64, 1073741824]");
  }
  t.Read("max_array", &c->max_array);
  if (c->max_array < 1 || c->max_array > 10000000) t.Error("max_array", "must be in [1, 10000000]");
  t.Read("max_depth", &c->max_depth);
  if (c->max_depth < 2 || c->max_depth > 64) t.Error("max_depth", "must be in [2, 64]");
  t.ReadDuration("default_deadline", &c->default_deadline);
  if (c->default_deadline < 0) t.Error("default_deadline", "must be >= 0 (0 = none)");
  t.ReadDuration("app_home_deadline", &c->app_home_deadline);
  if (c->app_home_deadline < 0) t.Error("app_home_deadline", "must be >= 0 (0 = none)");
  t.ReadDuration("codel_target", &c->codel_target);
  if (c->codel_target < 0) t.Error("codel_target", "must be >= 0 (0 = off)");
  t.ReadDuration("codel_interval", &c->codel_interval);
  if (c->codel_interval < 1) t.Error("codel_interval", "must be > 0");
  t.ReadDuration("max_deadline", &c->max_deadline);
  if (c->max_deadline < 1) t.Error("max_deadline", "must be > 0");
  t.ReadDuration("watch_interval", &c->watch_interval);
  if (c->watch_interval < 0) t.Error("watch_interval", "must be >= 0 (0 = no watch)");
  t.ReadDuration("drain_timeout", &c->drain_timeout);
  if (c->drain_timeout < 0) t.Error("drain_timeout", "must be >= 0");
  t.ReadDuration("compact_interval", &c->compact_interval);
  if (c->compact_interval < 0) t.Error("compact_interval", "must be >= 0 (0 = never)");
  t.ReadDuration("campaign_tick", &c->campaign_tick);
  if (c->campaign_tick < 0) t.Error("campaign_tick", "must be >= 0 (0 = the server runs no campaign)");
  t.ReadDuration("campaign_grace", &c->campaign_grace);
  if (c->campaign_grace < 0) t.Error("campaign_grace", "must be >= 0");
  t.ReadDuration("campaign_lease", &c->campaign_lease);
  if (c->campaign_lease < kMsPerSecond) t.Error("campaign_lease", "must be >= 1s");
  t.Read("campaign_outbox", &c->campaign_outbox);
  t.Read("trigger_outbox", &c->trigger_outbox);
  t.Read("trigger_stream", &c->trigger_stream);
  t.Read("trigger_group", &c->trigger_group);
  if (c->trigger_group.empty()) t.Error("trigger_group", "must not be empty");
  t.Read("trigger_consumer", &c->trigger_consumer);
  t.Read("http_bind", &c->http_bind);
  if (!c->http_bind.empty() && c->http_bind.find(':') == std::string::npos) {
    t.Error("http_bind", "must be host:port (e.g. 127.0.0.1:8080), or empty for none");
  }
  t.Read("curve", &c->curve);
  t.Read("curve_key", &c->curve_key);
  t.Read("curve_clients", &c->curve_clients);
  if (c->curve && (c->curve_key.empty() || c->curve_clients.empty())) {
    t.Error("curve", "needs curve_key (the server's key pair file) and curve_clients (who may connect)");
  }
  t.Read("log_format", &c->log_format);
  if (c->log_format != "text" && c->log_format != "json") t.Error("log_format", "must be text or json");
  t.Read("log_level", &c->log_level);
  t.Read("access_log", &c->access_log);
  t.Read("http_threads", &c->http_threads);
  if (c->http_threads < 1 || c->http_threads > 256) t.Error("http_threads", "must be in [1, 256]");
  t.Read("http_api", &c->http_api);
  t.Read("http_clients", &c->http_clients);
  t.Read("console", &c->console);
  t.Read("console_dir", &c->console_dir);
  t.ReadDuration("console_idle", &c->console_idle);
  if (c->console_idle < kMsPerSecond) t.Error("console_idle", "must be >= 1s");
  t.ReadDuration("console_session", &c->console_session);
  if (c->console_session < c->console_idle) t.Error("console_session", "must be >= console_idle");
  t.Read("console_secure_cookie", &c->console_secure_cookie);
  t.Read("console_login_failures", &c->console_login_failures);
  if (c->console_login_failures < 1 || c->console_login_failures > 1000) {
    t.Error("console_login_failures", "must be in [1, 1000]");
  }
  t.ReadDuration("console_lockout", &c->console_lockout);
  if (c->console_lockout < kMsPerSecond) t.Error("console_lockout", "must be >= 1s");
}

}  // namespace qm::server
