// SPEC §8's campaigns.* ops: the request's `definition` map becomes the campaign definition's
// JSON, and each reply's campaign (or audit entries) the same fields as `campaign show --json`.
#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "qianmian/campaign/run.h"
#include "reply_codec.h"
#include "server_impl.h"

namespace qm::server {

namespace {

using json = nlohmann::json;

thread_local const Decoded* current_request = nullptr;  // set by Run for the op it calls

// A decoded msgpack value as JSON (through its msgpack bytes).
Result<json> ToJson(const msgpack::object& obj, const std::string& name) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, obj);
  json j = json::from_msgpack(buf.data(), buf.data() + buf.size(), true, false);
  if (j.is_discarded()) return Status::InvalidArgument("'" + name + "': not a JSON-like value");
  return j;
}

// Writes JSON `j` under `key` as msgpack (maps, lists, strings, numbers, bools, nil).
void PutJson(std::string_view key, const json& j, MapWriter* reply) {
  const std::vector<uint8_t> bytes = json::to_msgpack(j);
  msgpack::object_handle h = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  reply->Object(key, h.get());
}

Status ReadActor(const Fields& f, campaign::Actor* actor) {
  QM_RETURN_IF_ERROR(f.Str("operator", &actor->who, true, 128));
  if (actor->who.empty()) return Status::InvalidArgument("'operator': must not be empty");
  actor->from = current_request && !current_request->peer.empty() ? "zmq:" + current_request->peer : "zmq";
  if (current_request && current_request->via_http) {  // "console:<address>" or "http:<address>", set by the port
    std::string via;
    QM_RETURN_IF_ERROR(f.Str("_via", &via, false, 128));
    if (!via.empty()) actor->from = via;
  }
  return Status::Ok();
}

Result<campaign::Definition> ReadDefinition(const Fields& f) {
  const msgpack::object* obj = f.Find("definition");
  if (!obj) return Status::InvalidArgument("'definition': required");
  if (obj->type != msgpack::type::MAP) return Status::InvalidArgument("'definition': must be a map");
  QM_ASSIGN_OR_RETURN(json j, ToJson(*obj, "definition"));
  Result<campaign::Definition> d = campaign::ParseDefinition(j.dump());
  if (!d.ok()) return Status::InvalidArgument("definition: " + d.status().message());
  return d;
}

Status Unavailable(const campaign::Campaigns* c) {
  if (c) return Status::Ok();
  return Status::Unavailable("campaigns need the event store, and this server has none");
}

void PutCampaign(const campaign::Campaign& c, MapWriter* reply) {
  PutJson("campaign", json::parse(campaign::CampaignJson(c)), reply);
}

constexpr size_t kMaxEvents = 1000;  // events a request

}  // namespace

Status Server::Impl::CampaignsCreate(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  campaign::Actor actor;
  QM_RETURN_IF_ERROR(ReadActor(f, &actor));
  QM_ASSIGN_OR_RETURN(campaign::Definition d, ReadDefinition(f));
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns->Create(d, actor));
  triggers->Invalidate();
  PutCampaign(c, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsUpdate(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  campaign::Actor actor;
  QM_RETURN_IF_ERROR(ReadActor(f, &actor));
  int64_t revision = 0;
  QM_RETURN_IF_ERROR(f.Int("revision", &revision, false, 1, INT64_MAX));
  QM_ASSIGN_OR_RETURN(campaign::Definition d, ReadDefinition(f));
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns->Update(d, actor, static_cast<uint64_t>(revision)));
  triggers->Invalidate();
  PutCampaign(c, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsTransition(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  campaign::Actor actor;
  QM_RETURN_IF_ERROR(ReadActor(f, &actor));
  std::string id, to, reason;
  int64_t revision = 0;
  QM_RETURN_IF_ERROR(f.Str("campaign_id", &id, true, 64));
  QM_RETURN_IF_ERROR(f.Str("to", &to, true, 32));
  QM_RETURN_IF_ERROR(f.Str("reason", &reason, false, 1024));
  QM_RETURN_IF_ERROR(f.Int("revision", &revision, false, 1, INT64_MAX));
  const std::optional<campaign::State> state = campaign::ParseState(to);
  if (!state) {
    return Status::InvalidArgument("'to': unknown state '" + to +
                                   "' (draft, submitted, approved, scheduled, running, completed, paused, rejected, "
                                   "cancelled)");
  }
  QM_ASSIGN_OR_RETURN(campaign::Campaign c,
                      campaigns->Transition(id, *state, actor, reason, static_cast<uint64_t>(revision)));
  triggers->Invalidate();  // a triggered campaign starts or stops firing here at once
  PutCampaign(c, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsGet(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  std::string id;
  QM_RETURN_IF_ERROR(f.Str("campaign_id", &id, true, 64));
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns->Get(id));
  PutCampaign(c, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsList(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  std::string state;
  QM_RETURN_IF_ERROR(f.Str("state", &state, false, 32));
  if (!state.empty() && !campaign::ParseState(state)) {
    return Status::InvalidArgument("'state': unknown state '" + state + "'");
  }
  QM_ASSIGN_OR_RETURN(std::vector<campaign::Campaign> all, campaigns->List());
  json list = json::array();
  for (const campaign::Campaign& c : all) {
    if (state.empty() || state == campaign::StateName(c.state)) list.push_back(json::parse(campaign::CampaignJson(c)));
  }
  PutJson("campaigns", list, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsAudit(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  std::string id;
  QM_RETURN_IF_ERROR(f.Str("campaign_id", &id, true, 64));
  QM_ASSIGN_OR_RETURN(std::vector<campaign::AuditEntry> entries, campaigns->Audit(id));
  json list = json::array();
  for (const campaign::AuditEntry& e : entries) list.push_back(json::parse(campaign::AuditJson(e)));
  PutJson("entries", list, reply);
  return Status::Ok();
}

Status Server::Impl::CampaignsDryrun(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  std::string id, occurrence = "dryrun";
  int64_t now = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("campaign_id", &id, true, 64));
  QM_RETURN_IF_ERROR(f.Str("occurrence", &occurrence, false, 64));
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, INT64_MAX));
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns->Get(id));
  campaign::RunOptions ro;
  ro.occurrence = occurrence;
  ro.dry_run = true;
  ro.now = now;
  ro.threads = 1;  // a worker's share of the machine
  ro.progress = false;
  ro.time_zone = engine->time_zone().name();
  // The send list goes to a private temporary file, removed after.
  std::error_code ec;
  const std::filesystem::path out =
      std::filesystem::temp_directory_path(ec) /
      ("qianmian-dryrun-" + std::to_string(::getpid()) + "-" + std::to_string(dryruns.fetch_add(1)) + ".csv");
  ro.out = out.string();
  Result<push::PushSummary> s = campaign::RunOccurrence(engine, c, ro);
  std::filesystem::remove(out, ec);
  QM_RETURN_IF_ERROR(s.status());
  json summary = json::parse(s->Json());
  json top = json::array();  // the items sent most, at most 20
  std::vector<std::pair<std::string, int64_t>> items(s->items.begin(), s->items.end());
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < items.size() && i < 20; ++i)
    top.push_back({{"item_id", items[i].first}, {"sends", items[i].second}});
  summary["top_items"] = top;
  summary["expected_clicks"] = s->expected_clicks;
  summary["expected_conversions"] = s->expected_conversions;
  summary["text"] = s->Format();
  PutJson("summary", summary, reply);
  return Status::Ok();
}

Status Server::Impl::Pressure(const Fields& f, MapWriter* reply) {
  policy::EventStore* store = engine->store();
  if (!store) return Status::Unavailable("contact pressure needs the event store, and this server has none");
  std::string channel;
  int64_t now = kNoTime;
  QM_RETURN_IF_ERROR(f.Str("channel", &channel, true, 64));
  if (channel.empty()) return Status::InvalidArgument("'channel': must not be empty");
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, INT64_MAX));
  if (now == kNoTime) now = engine->Now();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  engine->WithDataset([&](const Dataset& ds) {
    ids.reserve(ds.customers.size());
    for (const Customer& c : ds.customers) ids.push_back(c.id);
  });
  constexpr int kBuckets = push::kPressureBuckets;  // 0, 1, ..., 9, 10 or more
  std::vector<int64_t> buckets[2] = {std::vector<int64_t>(kBuckets), std::vector<int64_t>(kBuckets)};
  double sum[2] = {0, 0};
  int64_t most = 0;
  for (const std::string& id : ids) {
    QM_ASSIGN_OR_RETURN(policy::CustomerState state, store->State(id));
    int n[2] = {0, 0};
    policy::CountPushes(state, channel, "", now, &n[0], &n[1]);
    for (int w = 0; w < 2; ++w) {
      ++buckets[w][std::min(n[w], kBuckets - 1)];
      sum[w] += static_cast<double>(n[w]);
    }
    most = std::max<int64_t>(most, n[1]);
  }
  json out = {{"channel", channel}, {"now_ms", now}, {"customers", ids.size()}, {"most_30d", most}};
  const char* names[2] = {"7d", "30d"};
  for (int w = 0; w < 2; ++w) {
    out[names[w]] = {{"customers_by_bucket", buckets[w]},
                     {"mean", ids.empty() ? 0.0 : sum[w] / static_cast<double>(ids.size())}};
  }
  out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PutJson("pressure", out, reply);
  return Status::Ok();
}

Status Server::Impl::EventsIngest(const Fields& f, MapWriter* reply) {
  if (!triggers) return Status::Unavailable("event triggers need the event store, and this server has none");
  const msgpack::object* items = nullptr;
  size_t n = 0;
  QM_RETURN_IF_ERROR(f.Array("events", &items, &n));
  if (n == 0 || n > kMaxEvents) {
    return Status::InvalidArgument("'events': 1.." + std::to_string(kMaxEvents) + " events, not " + std::to_string(n));
  }
  int64_t now = kNoTime;
  QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 0, INT64_MAX));
  std::vector<campaign::BusinessEvent> events;
  events.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string where = "events[" + std::to_string(i) + "]";
    if (items[i].type != msgpack::type::MAP) return Status::InvalidArgument("'" + where + "': must be a map");
    QM_ASSIGN_OR_RETURN(json j, ToJson(items[i], where));
    QM_ASSIGN_OR_RETURN(campaign::BusinessEvent e, campaign::ParseEvent(j.dump(), where));
    events.push_back(std::move(e));
  }
  QM_ASSIGN_OR_RETURN(std::vector<campaign::TriggerDecision> decisions, triggers->Process(events, now));
  json list = json::array();
  for (const campaign::TriggerDecision& d : decisions) list.push_back(json::parse(campaign::DecisionJson(d)));
  PutJson("decisions", list, reply);
  return Status::Ok();
}

Status Server::Impl::Profile(const Fields& f, MapWriter* reply) {
  std::string customer;
  QM_RETURN_IF_ERROR(f.Str("customer_id", &customer, true, 256));
  if (customer.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
  QM_ASSIGN_OR_RETURN(serving::Portrait p, engine->CustomerPortrait(customer));
  reply->Str("customer_id", p.customer_id);
  reply->Str("version", p.version);
  if (!p.known) {
    PutJson("portrait", nullptr, reply);  // the version has no portraits, or none for this customer (added since)
    return Status::Ok();
  }
  EncodePortrait(p, reply);
  return Status::Ok();
}

void SetCurrentRequest(const Decoded* req) { current_request = req; }

Status Server::Impl::SegmentsSave(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  campaign::Actor actor;
  QM_RETURN_IF_ERROR(ReadActor(f, &actor));
  std::string name, audience, description;
  int64_t revision = 0;
  QM_RETURN_IF_ERROR(f.Str("name", &name, true, 64));
  QM_RETURN_IF_ERROR(f.Str("audience", &audience, true, 8192));
  QM_RETURN_IF_ERROR(f.Str("description", &description, false, 1024));
  QM_RETURN_IF_ERROR(f.Int("revision", &revision, false, 1, INT64_MAX));
  QM_ASSIGN_OR_RETURN(campaign::Segment s,
                      segments->Save(name, audience, description, actor, static_cast<uint64_t>(revision)));
  PutJson("segment", json::parse(campaign::SegmentJson(s)), reply);
  return Status::Ok();
}

Status Server::Impl::SegmentsGet(const Fields& f, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  std::string name;
  QM_RETURN_IF_ERROR(f.Str("name", &name, true, 64));
  QM_ASSIGN_OR_RETURN(campaign::Segment s, segments->Get(name));
  PutJson("segment", json::parse(campaign::SegmentJson(s)), reply);
  return Status::Ok();
}

Status Server::Impl::SegmentsList(const Fields&, MapWriter* reply) {
  QM_RETURN_IF_ERROR(Unavailable(campaigns.get()));
  QM_ASSIGN_OR_RETURN(std::vector<campaign::Segment> all, segments->List());
  json list = json::array();
  for (const campaign::Segment& s : all) list.push_back(json::parse(campaign::SegmentJson(s)));
  PutJson("segments", list, reply);
  return Status::Ok();
}

}  // namespace qm::server
