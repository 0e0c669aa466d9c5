// The ops of SPEC §5: the table, and one function per op that reads the request's fields, runs
// the op on the engine and encodes the reply (reply_codec.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iterator>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/version.h"
#include "reply_codec.h"
#include "server_impl.h"

namespace qm::server {

// clang-format off
const Server::Impl::Op Server::Impl::kOps[] = {
    // name               read_only  front  shed   run
    {"recommend",         true,      false, true,  &Impl::Recommend},
    {"feedback",          false,     false, false, &Impl::Feedback},
    {"score",             true,      false, true,  &Impl::Score},
    {"items.upsert",      false,     false, false, &Impl::UpsertItems},
    {"items.retire",      false,     false, false, &Impl::RetireItems},
    {"customers.upsert",  false,     false, false, &Impl::UpsertCustomers},
    {"history",           true,      false, true,  &Impl::History},
    {"report",            true,      false, true,  &Impl::Report},
    {"reload",            false,     false, false, &Impl::Reload},
    {"stats",             true,      false, false, &Impl::Stats},
    {"health",            true,      true,  false, &Impl::Health},
    {"campaigns.create",     false,  false, false, &Impl::CampaignsCreate},
    {"campaigns.update",     false,  false, false, &Impl::CampaignsUpdate},
    {"campaigns.transition", false,  false, false, &Impl::CampaignsTransition},
    {"campaigns.get",        true,   false, false, &Impl::CampaignsGet},
    {"campaigns.list",       true,   false, false, &Impl::CampaignsList},
    {"campaigns.audit",      true,   false, false, &Impl::CampaignsAudit},
    {"campaigns.dryrun",     true,   false, false, &Impl::CampaignsDryrun},
    {"pressure",             true,   false, false, &Impl::Pressure},
    {"events.ingest",        false,  false, false, &Impl::EventsIngest},
    {"profile",              true,   false, true,  &Impl::Profile},
    {"segments.save",        false,  false, false, &Impl::SegmentsSave},
    {"segments.get",         true,   false, false, &Impl::SegmentsGet},
    {"segments.list",        true,   false, false, &Impl::SegmentsList},
};
// clang-format on
const size_t Server::Impl::kNumOps = std::size(kOps);

const Server::Impl::Op* Server::Impl::FindOp(std::string_view name) {
  for (const Op& op : kOps) {
    if (name == op.name) return &op;
  }
  return nullptr;
}

namespace {

constexpr int64_t kTimeMax = int64_t{1} << 52;

Status ReadRecommend(const Fields& f, serving::Request* r) {
  int64_t count = 0, now = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("customer_id", &r->customer_id, true, 256));
  if (r->customer_id.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
  QM_RETURN_IF_ERROR(f.Str("channel", &r->channel, true, 64));
  QM_RETURN_IF_ERROR(f.Int("count", &count, true, 1, 100));
  r->count = static_cast<int>(count);
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
  r->now_ms = now;
  QM_RETURN_IF_ERROR(f.StrList("exclude", &r->exclude, false, 256));
  QM_RETURN_IF_ERROR(f.StrMap("context", &r->context));
  return f.Bool("debug", &r->debug);
}

// The events of a feedback request: the well-formed ones in *events (with their request index
// in *index), the others rejected with bad_request in *result.
Status ReadFeedback(const Fields& f, std::vector<serving::FeedbackEvent>* events, std::vector<size_t>* index,
                    serving::FeedbackResult* result) {
  const msgpack::object* arr = nullptr;
  size_t n = 0;
  QM_RETURN_IF_ERROR(f.Array("events", &arr, &n));
  for (size_t i = 0; i < n; ++i) {
    const std::string name = "events[" + std::to_string(i) + "]";
    serving::FeedbackEvent e;
    Status st = [&]() -> Status {
      QM_ASSIGN_OR_RETURN(Fields ef, Fields::Of(arr[i], name));
      QM_RETURN_IF_ERROR(ef.Int("ts_ms", &e.ts_ms, true, 1, kTimeMax));
      QM_RETURN_IF_ERROR(ef.Str("customer_id", &e.customer_id, true, 256));
      QM_RETURN_IF_ERROR(ef.Str("item_id", &e.item_id, true, 256));
      QM_RETURN_IF_ERROR(ef.Str("type", &e.type, true, 32));
      QM_RETURN_IF_ERROR(ef.Str("channel", &e.channel, true, 64));
      return ef.Str("request_id", &e.request_id, false, 256);
    }();
    if (!st.ok()) {
      result->rejected.push_back({i, "bad_request", st.message()});
      continue;
    }
    events->push_back(std::move(e));
    index->push_back(i);
  }
  return Status::Ok();
}

// Reads records (item or customer maps) under `key`: every value as CSV cell text.
Status ReadRecords(const Fields& f, const char* key, std::vector<serving::Record>* out) {
  const msgpack::object* arr = nullptr;
  size_t n = 0;
  QM_RETURN_IF_ERROR(f.Array(key, &arr, &n));
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string name = std::string(key) + "[" + std::to_string(i) + "]";
    if (arr[i].type != msgpack::type::MAP) return Status::InvalidArgument("'" + name + "': must be a map");
    for (uint32_t k = 0; k < arr[i].via.map.size; ++k) {
      const auto& kv = arr[i].via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR) return Status::InvalidArgument("'" + name + "': map keys must be strings");
      std::string col(kv.key.via.str.ptr, kv.key.via.str.size);
      std::string text;
      QM_RETURN_IF_ERROR(CellText(kv.val, name + "." + col, &text));
      (*out)[i][col] = std::move(text);
    }
  }
  return Status::Ok();
}

// An upsert of the records under `key` through `upsert` (items or customers).
Status Upsert(const Fields& f, const char* key, serving::Engine* engine,
              Result<int64_t> (serving::Engine::*upsert)(const std::vector<serving::Record>&), MapWriter* reply) {
  std::vector<serving::Record> records;
  QM_RETURN_IF_ERROR(ReadRecords(f, key, &records));
  QM_ASSIGN_OR_RETURN(int64_t n, (engine->*upsert)(records));
  EncodeCount(n, reply);
  return Status::Ok();
}

bool ValidVersionName(const std::string& v) {
  if (v.empty() || v.size() > 128 || v == "." || v == "..") return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

Status Server::Impl::Health(const Fields&, MapWriter* reply) {
  EncodeHealth(draining.load(), engine->model_version(), reply);
  return Status::Ok();
}

Status Server::Impl::Recommend(const Fields& f, MapWriter* reply) {
  serving::Request r;
  QM_RETURN_IF_ERROR(ReadRecommend(f, &r));
  std::vector<serving::Response> out;
  QM_RETURN_IF_ERROR(engine->Recommend({r}, &out));
  if (out.size() != 1) return Status::Internal("engine returned no response");
  const serving::Response& resp = out[0];
  if (!resp.status.ok()) {
    if (resp.status.code() == StatusCode::kInvalidArgument &&
        resp.status.message().find("channel") != std::string::npos) {
      return Status::InvalidArgument("'channel': " + resp.status.message());
    }
    return resp.status;
  }
  EncodeRecommend(resp, r.debug, reply);
  if (http) CountServed(resp);  // for /metrics
  return Status::Ok();
}

Status Server::Impl::Feedback(const Fields& f, MapWriter* reply) {
  std::vector<serving::FeedbackEvent> events;
  std::vector<size_t> index;  // events[k] came from request events[index[k]]
  serving::FeedbackResult result;
  QM_RETURN_IF_ERROR(ReadFeedback(f, &events, &index, &result));
  if (!events.empty()) {
    QM_ASSIGN_OR_RETURN(serving::FeedbackResult r, engine->Feedback(events));
    result.accepted = r.accepted;
    for (auto& rej : r.rejected) {
      const size_t orig = rej.index < index.size() ? index[rej.index] : rej.index;
      result.rejected.push_back({orig, rej.code, "events[" + std::to_string(orig) + "]: " + rej.message});
    }
    std::sort(result.rejected.begin(), result.rejected.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
  }
  EncodeFeedback(result, reply);
  return Status::Ok();
}

Status Server::Impl::Score(const Fields& f, MapWriter* reply) {
  std::string customer, channel;
  std::vector<std::string> ids;
  int64_t now = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("customer_id", &customer, true, 256));
  if (customer.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
  QM_RETURN_IF_ERROR(f.Str("channel", &channel, true, 64));
  QM_RETURN_IF_ERROR(f.StrList("item_ids", &ids, true, 256));
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
  auto scores = engine->Score(customer, channel, ids, now);
  if (!scores.ok()) {
    if (scores.status().code() == StatusCode::kInvalidArgument) {
      return Status::InvalidArgument("'channel': " + scores.status().message());
    }
    return scores.status();
  }
  EncodeScores(*scores, reply);
  // The customer's churn risk in the served version, when it has one (issue 18).
  Result<serving::Portrait> portrait = engine->CustomerPortrait(customer);
  if (portrait.ok() && portrait->numbers.count("churn_risk"))
    reply->Double("churn_risk", portrait->numbers["churn_risk"]);
  return Status::Ok();
}

Status Server::Impl::UpsertItems(const Fields& f, MapWriter* reply) {
  return Upsert(f, "items", engine, &serving::Engine::UpsertItems, reply);
}

Status Server::Impl::UpsertCustomers(const Fields& f, MapWriter* reply) {
  return Upsert(f, "customers", engine, &serving::Engine::UpsertCustomers, reply);
}

Status Server::Impl::RetireItems(const Fields& f, MapWriter* reply) {
  std::vector<std::string> ids;
  QM_RETURN_IF_ERROR(f.StrList("item_ids", &ids, true, 256));
  QM_ASSIGN_OR_RETURN(int64_t n, engine->RetireItems(ids));
  EncodeCount(n, reply);
  return Status::Ok();
}

Status Server::Impl::Report(const Fields& f, MapWriter* reply) {
  std::string layer;
  int64_t from = kNoTime, to = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("experiment", &layer, true, 256));
  QM_RETURN_IF_ERROR(f.Int("from_ms", &from, false, 0, kTimeMax));
  QM_RETURN_IF_ERROR(f.Int("to_ms", &to, false, 1, kTimeMax));
  QM_ASSIGN_OR_RETURN(experiment::ExperimentReport r, engine->Report(layer, from, to));
  EncodeReport(r, reply);
  return Status::Ok();
}

Status Server::Impl::History(const Fields& f, MapWriter* reply) {
  std::string customer;
  int64_t since = 0, limit = 100, now = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("customer_id", &customer, true, 256));
  if (customer.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
  QM_RETURN_IF_ERROR(f.Int("since_ms", &since, false, 0, kTimeMax));
  QM_RETURN_IF_ERROR(f.Int("limit", &limit, false, 1, 10000));
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
  QM_ASSIGN_OR_RETURN(policy::CustomerHistory h, engine->History(customer, since, static_cast<size_t>(limit), now));
  EncodeHistory(h, reply);
  // The customer's portrait in the served version, when it has one (issue 18): a service agent
  // sees the churn risk and lifecycle beside the contacts.
  Result<serving::Portrait> portrait = engine->CustomerPortrait(customer);
  if (portrait.ok() && portrait->known) EncodePortrait(*portrait, reply);
  return Status::Ok();
}

Status Server::Impl::Reload(const Fields& f, MapWriter* reply) {
  std::string version;
  QM_RETURN_IF_ERROR(f.Str("version", &version, false, 128));
  if (!version.empty() && !ValidVersionName(version)) {
    return Status::InvalidArgument("'version': not a version name (letters, digits, '-', '_', '.')");
  }
  if (!version.empty() && !std::filesystem::exists(std::filesystem::path(artifacts_root) / version)) {
    return Status::NotFound("'version': no version '" + version + "' under the artifact root");
  }
  // With a source, the experiment definition is re-read and swapped in with the version (both
  // or, when either is refused, neither).
  Result<std::string> r = Status::Internal("not reloaded");
  if (experiments) {
    Result<serving::Experiments> ex = experiments();
    r = ex.ok() ? engine->Reload(version, *ex)
                : Result<std::string>(ex.status().Annotate("[experiments] refused; still serving the previous "
                                                           "definition and version " +
                                                           engine->model_version()));
  } else {
    r = engine->Reload(version);
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu);
    counters.RecordReload({NowMs(), version.empty() ? "CURRENT" : version, "request", r.ok() ? *r : "",
                           r.ok() ? "" : r.status().message()});
  }
  if (!r.ok()) {
    spdlog::error("server: reload refused: {}", r.status().message());
    return r.status();
  }
  spdlog::info("server: reload: now serving {}", *r);
  EncodeReload(*r, reply);
  return Status::Ok();
}

Status Server::Impl::Stats(const Fields&, MapWriter* reply) {
  StatsReply s;
  s.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
  s.server_version = kQianmianVersion;
  s.model_version = engine->model_version();
  if (auto c = artifacts::ReadCurrent(artifacts_root); c.ok()) s.current_version = *c;
  s.store_status = "ok";
  if (auto* store = engine->store()) {
    if (Status st = store->Health(); !st.ok()) s.store_status = st.ToString();
  }
  s.store_backend = engine->store() ? engine->store()->backend() : "none";
  s.experiments = engine->ExperimentLayers();
  s.queue_capacity = config.queue_capacity;
  {
    std::lock_guard<std::mutex> lock(mu);
    s.queue_depth = static_cast<int64_t>(queue.size());
    s.write_depth = static_cast<int64_t>(writes.size());
    s.busy_workers = busy;
  }
  std::lock_guard<std::mutex> lock(stats_mu);
  s.counters = counters;
  for (size_t slot = 0; slot < ops.size(); ++slot) {
    const OpStats& o = ops[slot];
    OpStatsReply& r = s.ops.emplace_back();
    r.name = slot < kNumOps ? kOps[slot].name : "other";
    r.count = o.count;
    std::copy(o.errors.begin(), o.errors.end(), r.errors);
    r.p50_us = o.latency.Quantile(0.5);
    r.p90_us = o.latency.Quantile(0.9);
    r.p99_us = o.latency.Quantile(0.99);
    r.p999_us = o.latency.Quantile(0.999);
    r.max_us_bucket = o.latency.Quantile(1.0);
  }
  EncodeStats(s, reply);
  return Status::Ok();
}

}  // namespace qm::server
