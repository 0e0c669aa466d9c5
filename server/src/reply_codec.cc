#include "reply_codec.h"

#include <cmath>

namespace qm::server {

void EncodeHealth(bool draining, const std::string& model_version, MapWriter* reply) {
  reply->Str("status", draining ? "draining" : "ok");
  reply->Str("model_version", model_version);
}

void EncodeRecommend(const serving::Response& response, bool debug, MapWriter* reply) {
  reply->Str("request_id", response.request_id);
  reply->Str("model_version", response.model_version);
  reply->MapArray("items", response.items, [](MapWriter& item, const serving::ResponseItem& it) {
    item.Str("item_id", it.item_id);
    item.Str("kind", it.kind);
    item.Double("score", it.score);
    item.StrList("reasons", it.reasons);
  });
  reply->Int("took_us", response.took_us);
  if (!debug) return;
  reply->Map("debug", [&](MapWriter& d) {
    d.IntMap("counts", response.debug.counts);
    d.IntMap("dropped", response.debug.dropped);
    d.StrList("fallbacks", response.debug.fallbacks);
    d.IntMap("stage_us", response.debug.stage_us);
    d.Bool("known_customer", response.debug.known_customer);
    if (!response.debug.arms.empty()) d.StrList("arms", response.debug.arms);  // only with [experiments]
  });
}

void EncodeFeedback(const serving::FeedbackResult& result, MapWriter* reply) {
  reply->Int("accepted", result.accepted);
  reply->MapArray("rejected", result.rejected, [](MapWriter& r, const serving::FeedbackResult::Rejected& rej) {
    r.Int("index", static_cast<int64_t>(rej.index));
    r.Str("code", rej.code);
    r.Str("message", rej.message);
  });
}

void EncodeScores(const std::vector<serving::ItemScore>& scores, MapWriter* reply) {
  reply->MapArray("scores", scores, [](MapWriter& s, const serving::ItemScore& score) {
    s.Str("item_id", score.item_id);
    s.Double("p_click", score.p_click);
    s.Double("p_convert", score.p_convert);
    s.Bool("eligible", score.eligible);
    s.StrList("blocked_by", score.blocked_by);
  });
}

void EncodeCount(int64_t count, MapWriter* reply) { reply->Int("count", count); }

void EncodeReport(const experiment::ExperimentReport& r, MapWriter* reply) {
  reply->Str("experiment", r.layer);
  if (r.from != kNoTime) reply->Int("from_ms", r.from);
  if (r.to != kNoTime) reply->Int("to_ms", r.to);
  reply->Bool("cuped", r.cuped);
  reply->Int("holdout_customers", r.holdout);
  reply->Map("sample_ratio", [&](MapWriter& m) {
    m.Double("chi_square", r.sample_ratio.chi_square);
    m.Double("p_value", r.sample_ratio.p_value);
    m.Bool("mismatch", r.sample_ratio.mismatch);
  });
  // An infinite bound (fewer than two customers) is sent as the mean itself: msgpack has no inf in JSON.
  auto finite = [](double v, double fallback) { return std::isfinite(v) ? v : fallback; };
  reply->MapArray("arms", r.arms, [&](MapWriter& a, const experiment::ArmReport& arm) {
    a.Str("arm", arm.name);
    a.Double("share", arm.share);
    a.Bool("control", arm.control);
    a.Int("assigned", arm.assigned);
    a.Int("contacted", arm.contacted);
    a.Int("ghosted", arm.ghosted);
    a.Map("metrics", [&](MapWriter& ms) {
      for (int k = 0; k < experiment::kNumMetrics; ++k) {
        const experiment::MetricReport& m = arm.metrics[k];
        ms.Map(experiment::MetricName(k), [&](MapWriter& x) {
          x.Double("total", m.total);
          x.Double("per_customer", m.per_customer.mean);
          x.Double("low", finite(m.per_customer.low, m.per_customer.mean));
          x.Double("high", finite(m.per_customer.high, m.per_customer.mean));
          // The control arm's lift is over itself: 0 with p = 1 (every arm has the same shape).
          const experiment::Lift none;
          const experiment::Lift& lift = m.has_lift ? m.lift : none;
          x.Map("lift", [&](MapWriter& l) {
            l.Double("difference", lift.difference);
            l.Double("low", finite(lift.low, lift.difference));
            l.Double("high", finite(lift.high, lift.difference));
            l.Double("relative", lift.relative);
            l.Double("p_value", lift.p_value);
            l.Bool("cuped", lift.cuped);
          });
        });
      }
    });
  });
}

void EncodePortrait(const serving::Portrait& portrait, MapWriter* reply) {
  reply->Map("portrait", [&](MapWriter& m) {
    for (const auto& [k, v] : portrait.numbers) m.Double(k, v);
    for (const auto& [k, v] : portrait.texts) m.Str(k, v);
    m.StrList("interests", portrait.interests);
  });
}

void EncodeHistory(const policy::CustomerHistory& history, MapWriter* reply) {
  reply->MapArray("events", history.events, [](MapWriter& e, const policy::StoredEvent& event) {
    e.Int("ts_ms", event.ts);
    e.Str("item_id", event.item_id);
    e.Str("type", EventTypeName(event.type));
    e.Str("channel", event.channel);
    e.Str("request_id", event.request_id);
  });
  reply->MapArray("decisions", history.decisions, [](MapWriter& d, const policy::DecisionRecord& dec) {
    d.Int("ts_ms", dec.ts);
    d.Str("kind", policy::DecisionKindName(dec.kind));
    d.Str("request_id", dec.request_id);
    d.Str("channel", dec.channel);
    d.Str("item_id", dec.item_id);
    d.Int("position", dec.position);
    d.Double("score", dec.score);
    d.Double("p_click", dec.p_click);
    d.Double("p_convert", dec.p_convert);
    d.Str("model_version", dec.model_version);
    d.StrList("arms", dec.arms);
    d.StrList("reasons", dec.reasons);
  });
  reply->MapArray("caps", history.caps, [](MapWriter& c, const policy::CapUsage& cap) {
    c.Str("rule", cap.rule);
    c.Str("scope", cap.scope);
    c.Int("used", cap.used);
    c.Int("limit", cap.limit);
    c.Int("window_ms", cap.window_ms);
  });
}

void EncodeReload(const std::string& model_version, MapWriter* reply) { reply->Str("model_version", model_version); }

namespace {

void EncodeOpStats(const OpStatsReply& op, MapWriter* stats) {
  stats->Int("count", op.count);
  stats->Map("errors", [&](MapWriter& errors) {
    for (size_t c = 0; c < kNumErrorCodes; ++c) {
      if (op.errors[c] != 0) errors.Int(kErrorCodes[c], op.errors[c]);
    }
  });
  stats->Int("p50_us", op.p50_us);
  stats->Int("p90_us", op.p90_us);
  stats->Int("p99_us", op.p99_us);
  stats->Int("p999_us", op.p999_us);
  stats->Int("max_us_bucket", op.max_us_bucket);
}

}  // namespace

void EncodeStats(const StatsReply& s, MapWriter* reply) {
  reply->Int("uptime_s", s.uptime_s);
  reply->Map("versions", [&](MapWriter& v) {
    v.Str("server", s.server_version);
    v.Str("model", s.model_version);
    v.Str("current", s.current_version);
  });
  reply->Map("store", [&](MapWriter& store) {
    store.Str("backend", s.store_backend);
    store.Str("status", s.store_status);
    store.Int("compactions", s.counters.compactions);
    store.Int("compaction_failures", s.counters.compaction_failures);
    store.Str("last_compaction_error", s.counters.last_compaction_error);
  });
  reply->Map("queue", [&](MapWriter& q) {
    q.Int("depth", s.queue_depth);
    q.Int("write_depth", s.write_depth);
    q.Int("capacity", s.queue_capacity);
    q.Int("busy_workers", s.busy_workers);
    q.Int("shed", s.counters.shed);
    q.Int("shed_delay", s.counters.shed_delay);
    q.Int("queue_deadline", s.counters.queue_deadline);
  });
  reply->StrList("experiments", s.experiments);
  reply->Map("reloads", [&](MapWriter& r) {
    r.Int("ok", s.counters.reloads);
    r.Int("failed", s.counters.reload_failures);
    r.Str("last_error", s.counters.last_reload_error);
    r.MapArray("recent", s.counters.recent_reloads, [](MapWriter& e, const ServerCounters::Reload& x) {
      e.Int("ts_ms", x.ts_ms);
      e.Str("asked", x.asked);
      e.Str("by", x.by);
      e.Str("served", x.served);
      e.Str("error", x.error);
    });
  });
  int64_t requests = 0, errors[kNumErrorCodes] = {};
  for (const OpStatsReply& op : s.ops) {
    requests += op.count;
    for (size_t c = 0; c < kNumErrorCodes; ++c) errors[c] += op.errors[c];
  }
  reply->Map("ops", [&](MapWriter& ops) {
    for (const OpStatsReply& op : s.ops) ops.Map(op.name, [&](MapWriter& o) { EncodeOpStats(op, &o); });
  });
  reply->Map("totals", [&](MapWriter& totals) {
    totals.Int("requests", requests);
    totals.Map("errors", [&](MapWriter& e) {
      for (size_t c = 0; c < kNumErrorCodes; ++c) e.Int(kErrorCodes[c], errors[c]);
    });
  });
}

}  // namespace qm::server
