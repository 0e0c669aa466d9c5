// /metrics and /readyz of the HTTP port (server_impl.h, http.h): the Prometheus text exposition
// format 0.0.4 of what `stats` reports, plus what pages served and what blocked candidates.
#include <cstdio>
#include <string>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/version.h"
#include "server_impl.h"

namespace qm::server {

namespace {

// A label value: backslash, double quote and newline escaped.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Text {
 public:
  void Family(const char* name, const char* type, const char* help) {
    s_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    s_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
  }
  std::string Take() { return std::move(s_); }

 private:
  std::string s_;
};

// Request latency buckets, seconds.
constexpr double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

// The recall source of a served item: its "recall:<source>[:<item>]" reason, or "explore".
std::string SourceOf(const serving::ResponseItem& it) {
  for (const std::string& r : it.reasons) {
    if (r == "explore") return "explore";
  }
  for (const std::string& r : it.reasons) {
    if (r.rfind("recall:", 0) == 0)
      return r.substr(7, r.find(':', 7) == std::string::npos ? std::string::npos : r.find(':', 7) - 7);
  }
  return "other";
}

}  // namespace

void Server::Impl::CountServed(const serving::Response& resp) {
  std::lock_guard<std::mutex> lock(stats_mu);
  for (const serving::ResponseItem& it : resp.items) ++served_by_source[SourceOf(it)];
  for (const std::string& arm : resp.debug.arms) served_by_arm[arm] += static_cast<int64_t>(resp.items.size());
  for (const auto& [rule, n] : resp.debug.dropped) blocked_by_rule[rule] += n;
}

std::pair<bool, std::string> Server::Impl::Ready() {
  if (draining.load()) return {false, "draining"};
  if (engine->model_version().empty()) return {false, "no version loaded"};
  if (policy::EventStore* store = engine->store()) {
    if (Status st = store->Health(); !st.ok()) return {false, "event store: " + st.message()};
  }
  return {true, ""};
}

std::string Server::Impl::Metrics() {
  Text t;
  const auto [ready, why] = Ready();
  t.Family("qianmian_build_info", "gauge", "The server's build and the versions it serves (value 1).");
  std::string current;
  if (auto c = artifacts::ReadCurrent(artifacts_root); c.ok()) current = *c;
  t.Sample("qianmian_build_info",
           "version=\"" + Label(kQianmianVersion) + "\",model_version=\"" + Label(engine->model_version()) +
               "\",current_version=\"" + Label(current) + "\"",
           1);
  t.Family("qianmian_uptime_seconds", "gauge", "Seconds since the server started.");
  t.Sample("qianmian_uptime_seconds", "", static_cast<double>(MicrosSince(started)) / 1e6);
  t.Family("qianmian_ready", "gauge", "1 when /readyz answers 200 (a version loaded, the store up, not draining).");
  t.Sample("qianmian_ready", "", ready ? 1 : 0);
  t.Family("qianmian_draining", "gauge", "1 while the server drains before stopping.");
  t.Sample("qianmian_draining", "", draining.load() ? 1 : 0);
  policy::EventStore* store = engine->store();
  t.Family("qianmian_store_up", "gauge", "1 when the event store answers and takes writes.");
  t.Sample("qianmian_store_up", "backend=\"" + Label(store ? store->backend() : "none") + "\"",
           !store || store->Health().ok() ? 1 : 0);
  {
    std::lock_guard<std::mutex> lock(mu);
    t.Family("qianmian_queue_depth", "gauge", "Requests waiting for a worker, by lane.");
    t.Sample("qianmian_queue_depth", "lane=\"read\"", static_cast<double>(queue.size()));
    t.Sample("qianmian_queue_depth", "lane=\"write\"", static_cast<double>(writes.size()));
    t.Family("qianmian_queue_capacity", "gauge", "[server] queue_capacity, per lane.");
    t.Sample("qianmian_queue_capacity", "", config.queue_capacity);
    t.Family("qianmian_busy_workers", "gauge", "Workers running a request.");
    t.Sample("qianmian_busy_workers", "", busy);
  }
  std::lock_guard<std::mutex> lock(stats_mu);
  t.Family("qianmian_requests_total", "counter", "Replies sent, by op and outcome (code \"ok\" or the error's).");
  for (size_t slot = 0; slot < ops.size(); ++slot) {
    const OpStats& o = ops[slot];
    const std::string op = "op=\"" + Label(slot < kNumOps ? kOps[slot].name : "other") + "\"";
    int64_t failed = 0;
    for (size_t c = 0; c < kNumErrorCodes; ++c) {
      failed += o.errors[c];
      if (o.errors[c]) {
        t.Sample("qianmian_requests_total", op + ",code=\"" + kErrorCodes[c] + "\"", static_cast<double>(o.errors[c]));
      }
    }
    t.Sample("qianmian_requests_total", op + ",code=\"ok\"", static_cast<double>(o.count - failed));
  }
  t.Family("qianmian_request_duration_seconds", "histogram",
           "Time from a request's arrival to its reply, by op (buckets within 6.25%).");
  for (size_t slot = 0; slot < ops.size(); ++slot) {
    const OpStats& o = ops[slot];
    const std::string op = "op=\"" + Label(slot < kNumOps ? kOps[slot].name : "other") + "\"";
    for (double b : kBounds) {
      char le[32];
      std::snprintf(le, sizeof le, "%g", b);
      t.Sample("qianmian_request_duration_seconds_bucket", op + ",le=\"" + le + "\"",
               static_cast<double>(o.latency.CountAtMost(static_cast<int64_t>(b * 1e6))));
    }
    t.Sample("qianmian_request_duration_seconds_bucket", op + ",le=\"+Inf\"", static_cast<double>(o.latency.count()));
    t.Sample("qianmian_request_duration_seconds_sum", op, static_cast<double>(o.latency.sum()) / 1e6);
    t.Sample("qianmian_request_duration_seconds_count", op, static_cast<double>(o.latency.count()));
  }
  t.Family("qianmian_shed_total", "counter",
           "Requests answered without being run, by reason: queue_full (overloaded), queue_delay (CoDel), "
           "app_home_deadline (deadline_exceeded).");
  t.Sample("qianmian_shed_total", "reason=\"queue_full\"", static_cast<double>(counters.shed));
  t.Sample("qianmian_shed_total", "reason=\"queue_delay\"", static_cast<double>(counters.shed_delay));
  t.Sample("qianmian_shed_total", "reason=\"app_home_deadline\"", static_cast<double>(counters.queue_deadline));
  t.Family("qianmian_reloads_total", "counter", "Version swaps (reload op or CURRENT watch), by result.");
  t.Sample("qianmian_reloads_total", "result=\"ok\"", static_cast<double>(counters.reloads));
  t.Sample("qianmian_reloads_total", "result=\"refused\"", static_cast<double>(counters.reload_failures));
  t.Family("qianmian_compactions_total", "counter", "Event-store compactions, by result.");
  t.Sample("qianmian_compactions_total", "result=\"ok\"", static_cast<double>(counters.compactions));
  t.Sample("qianmian_compactions_total", "result=\"failed\"", static_cast<double>(counters.compaction_failures));
  if (config.curve) {
    t.Family("qianmian_curve_refused_total", "counter", "CURVE handshakes refused: keys not in curve_clients.");
    t.Sample("qianmian_curve_refused_total", "", static_cast<double>(curve_refused.load()));
  }
  t.Family("qianmian_served_items_total", "counter", "Items served on pages (recommend), by recall source.");
  for (const auto& [source, n] : served_by_source) {
    t.Sample("qianmian_served_items_total", "source=\"" + Label(source) + "\"", static_cast<double>(n));
  }
  t.Family("qianmian_served_items_by_arm_total", "counter",
           "Items served on pages, by experiment arm (\"<layer>=<arm>\" or \"holdout\").");
  for (const auto& [arm, n] : served_by_arm) {
    t.Sample("qianmian_served_items_by_arm_total", "arm=\"" + Label(arm) + "\"", static_cast<double>(n));
  }
  t.Family("qianmian_policy_blocked_total", "counter",
           "Candidates the contact policy and business rules kept off pages, by rule.");
  for (const auto& [rule, n] : blocked_by_rule) {
    t.Sample("qianmian_policy_blocked_total", "rule=\"" + Label(rule) + "\"", static_cast<double>(n));
  }
  return t.Take();
}

}  // namespace qm::server
