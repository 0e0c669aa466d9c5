#include "qianmian/serving/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <thread>

#include "engine_impl.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/progress.h"
#include "qianmian/recall/two_tower.h"
#include "rank_stage.h"
#include "records.h"

namespace qm::serving {

namespace fs = std::filesystem;

namespace {

const char* const kStoreMarker = "QM_SEEDED";

// How far before the data's end a new store is seeded with events of type t (-1: none): as far
// back as the contact state keeps them (conversions do not change the state).
TimeMs SeedHorizon(const policy::StateOptions& so, EventType t) {
  switch (t) {
    case EventType::kImpression:
    case EventType::kPushSent:
      return so.keep_contacts;
    case EventType::kClick:
    case EventType::kPushOpen:
      return so.keep_clicks;
    case EventType::kDismiss:
      return so.keep_dismissals;
    case EventType::kOptOut:
      return so.KeepFor(t);  // for good
    case EventType::kConvert:
      return -1;
  }
  return -1;
}

}  // namespace

std::string BatchRequestId(TimeMs now, const std::string& customer_id) {
  return "recommend:" + std::to_string(now) + ":" + customer_id;
}

ProfileSources Engine::Impl::Sources() const {
  return ProfileSources{&ds, &activity, static_cast<TimeMs>(opt.serving.history_window_days) * kMsPerDay,
                        policy->config().clicked_horizon};
}

void Engine::Impl::SeedEventsOf(uint32_t c, TimeMs last, std::vector<policy::StoredEvent>* events) const {
  const policy::StateOptions& so = policy->state_options();
  events->clear();
  for (const Ev* x = activity.begin(c); x != activity.end(c); ++x) {
    const TimeMs k = SeedHorizon(so, x->type);
    if (last == kNoTime || k < 0 || x->ts < last - k) continue;
    policy::StoredEvent& s = events->emplace_back();
    s.ts = x->ts;
    s.customer_id = ds.customers[c].id;
    const Item& it = ds.items[x->item];
    s.item_id = it.id;
    s.type = x->type;
    s.channel = ds.channels.Name(x->channel);
    s.campaign = ds.campaigns.Name(it.campaign);
    s.category = ds.categories.Name(it.category);
    s.service = it.service;
  }
}

Status Engine::Impl::SeedStore() {
  if (!opt.serving.seed_store || opt.shared_store || opt.store.backend != "embedded") return Status::Ok();
  const fs::path marker = fs::path(opt.store.path) / kStoreMarker;
  if (fs::exists(marker)) return Status::Ok();
  // Only what the contact state still needs: events within their horizon of the data's end.
  const TimeMs last = activity.last_ts();
  // Customers in id order, as the store's bulk load takes them, in one part per core (each a
  // contiguous range of that order, on its own thread).
  std::vector<uint32_t> order(activity.num_customers());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return ds.customers[a].id < ds.customers[b].id; });
  const int parts =
      static_cast<int>(std::clamp<size_t>(order.size() / 10000, 1, std::max(1u, std::thread::hardware_concurrency())));
  QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore::Seeder> seeder, store->Seed(policy->state_options(), parts));
  std::atomic<uint64_t> seeded{0};
  Progress progress("seeding the event store", order.size(), " customers");
  auto seed_part = [&](int part) -> Status {
    const size_t lo = order.size() * static_cast<size_t>(part) / static_cast<size_t>(parts);
    const size_t hi = order.size() * static_cast<size_t>(part + 1) / static_cast<size_t>(parts);
    std::vector<policy::StoredEvent> events;
    for (size_t r = lo; r < hi; ++r) {
      progress.Add(1);
      SeedEventsOf(order[r], last, &events);
      seeded += events.size();
      QM_RETURN_IF_ERROR(seeder->Add(part, events));
    }
    return Status::Ok();
  };
  std::vector<Status> status(static_cast<size_t>(parts));
  {
    std::vector<std::thread> threads;
    for (int part = 1; part < parts; ++part) threads.emplace_back([&, part] { status[part] = seed_part(part); });
    status[0] = seed_part(0);
    for (auto& t : threads) t.join();
  }
  for (const Status& st : status) QM_RETURN_IF_ERROR(Status(st).Annotate("seeding the event store"));
  QM_RETURN_IF_ERROR(seeder->Finish().Annotate("seeding the event store"));
  progress.Finish();
  std::ofstream(marker) << "seeded from events.csv: " << seeded.load() << " events\n";
  return Status::Ok();
}

Status Engine::Impl::Init() {
  QM_ASSIGN_OR_RETURN(tz, TimeZone::Load(opt.data.timezone));
  if (opt.dataset) {
    ds = *opt.dataset;
  } else {
    LoadReport report;
    auto loaded = LoadDataset(opt.data.dir, opt.data, &report);
    if (!loaded.ok()) return loaded.status();
    ds = std::move(loaded).value();
  }
  if (ds.items.empty()) return Status::InvalidArgument("items.csv holds no items");
  retired.assign(ds.items.size(), 0);
  activity.Build(ds.events, ds.customers.size());
  if (opt.data.clock == "data_end") {
    const TimeMs last = activity.last_ts();
    data_end = last == kNoTime ? NowMs() : last + 1;
  }
  ds.events = EventLog();  // serving keeps its own compact copy
  const ServingConfig& sc = opt.serving;
  popular.Build(activity, ds, sc.history_window_days, sc.popular);
  PageOptionsFor(sc, &home_page, &other_page);
  // Policy and store.
  QM_ASSIGN_OR_RETURN(policy::Policy p, policy::Policy::Create(opt.policy, ds.channels, tz));
  policy = std::make_unique<policy::Policy>(std::move(p));
  reserve_channel.assign(ds.channels.size(), 0);
  for (const auto& name : policy->config().reserve_channels) {
    if (auto id = ds.channels.Find(name)) reserve_channel[*id] = 1;
  }
  QM_RETURN_IF_ERROR(pins.Configure(sc.campaigns, ds.channels));
  pins.IndexItems(ds, retired);
  if (opt.shared_store) {
    store = opt.shared_store;
  } else {
    if (opt.store.backend == "embedded" && opt.store.path == policy::StoreConfig{}.path) {
      opt.store.path = (fs::path(opt.data.dir) / "store").string();
    }
    QM_ASSIGN_OR_RETURN(auto s, policy::EventStore::Open(opt.store));
    store = std::move(s);
  }
  QM_RETURN_IF_ERROR(SeedStore());
  // The version CURRENT names. Requests run one thread each (libtorch, OpenMP and OpenBLAS),
  // as in the server's workers; parallelism comes from concurrent callers.
  recall::OneThreadPerCaller();
  QM_ASSIGN_OR_RETURN(std::string version, artifacts::ReadCurrent(opt.artifacts_root));
  auto m = LoadModel(opt.artifacts_root, version, ds, retired, opt.serving);
  if (!m.ok()) return m.status().Annotate("version " + version + " refused");
  model = std::move(m).value();
  ds.portraits = model->portraits;  // audiences read the served version's portraits
  // The experiments, with the versions their arms pin (each loaded and verified as the current one).
  QM_RETURN_IF_ERROR(BuildExperiments(opt.experiments, model, &exps));
  opt.experiments = Experiments();  // exps.def holds it
  std::random_device rd;
  id_salt = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(NowMs());
  return Status::Ok();
}

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  QM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

TimeMs Engine::Now() const { return impl_->Now(); }
const TimeZone& Engine::time_zone() const { return impl_->tz; }

std::string Engine::model_version() const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  return impl_->model->version;
}
const policy::Policy& Engine::policy() const { return *impl_->policy; }
policy::EventStore* Engine::store() const { return impl_->store.get(); }
int64_t Engine::num_items() const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  return static_cast<int64_t>(std::count(impl_->retired.begin(), impl_->retired.end(), 0));
}
int64_t Engine::num_customers() const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  return static_cast<int64_t>(impl_->ds.customers.size());
}

Result<std::vector<ItemScore>> Engine::Score(const std::string& customer_id, const std::string& channel_name,
                                             const std::vector<std::string>& item_ids, TimeMs now_ms) {
  Impl& im = *impl_;
  std::shared_lock<WriterFirstMutex> lock(im.mu);
  auto ch = im.ds.channels.Find(channel_name);
  if (!ch) return Status::InvalidArgument("unknown channel '" + channel_name + "'");
  const TimeMs now = now_ms == kNoTime ? im.Now() : now_ms;
  // The customer's arm settings: its version, its policy, and a marketing item withheld from a
  // holdout / control customer.
  const RequestSettings rs = im.SettingsFor(customer_id, *ch);
  const Model& md = *rs.model;
  ProfileBatch pb;
  AddProfile(im.Sources(), md, customer_id, now, &pb);
  QM_RETURN_IF_ERROR(EmbedProfiles(im.ds, md, now, &pb));
  std::vector<ItemScore> out(item_ids.size());
  std::vector<Candidate> items;
  std::vector<size_t> slot;
  for (size_t k = 0; k < item_ids.size(); ++k) {
    out[k].item_id = item_ids[k];
    auto it = im.ds.FindItem(item_ids[k]);
    if (!it || im.retired[*it]) {
      out[k].blocked_by.push_back("not_found");
      continue;
    }
    items.push_back(Candidate{*it});
    slot.push_back(k);
  }
  if (items.empty()) return out;
  std::vector<policy::Candidate> pc;
  for (const Candidate& c : items) pc.push_back(policy::MakeCandidate(im.ds, c.item));
  QM_ASSIGN_OR_RETURN(auto decisions, rs.policy->Check(im.store.get(), pb.profiles[0].customer(im.ds), pc, *ch, now));
  for (size_t k = 0; k < items.size(); ++k) {
    if (rs.withheld_by && !im.ds.items[items[k].item].service) decisions[k].blocked_by.push_back(rs.withheld_by);
  }
  std::vector<RankRow> rows;
  for (Candidate& c : items) rows.push_back({0, &c});
  const rank::RankContext ctx{*ch, im.tz.LocalHour(now), im.tz.LocalWeekday(now)};
  QM_RETURN_IF_ERROR(RankCandidates(md, im.ds, pb, now, {ctx}, ServingScoreWeights(im.opt.serving, md), rows));
  for (size_t k = 0; k < items.size(); ++k) {
    ItemScore& s = out[slot[k]];
    s.p_click = items[k].pc;
    s.p_convert = items[k].pv;
    s.blocked_by = decisions[k].blocked_by;
    s.eligible = s.blocked_by.empty();
  }
  return out;
}

Result<FeedbackResult> Engine::Feedback(const std::vector<FeedbackEvent>& events) {
  Impl& im = *impl_;
  FeedbackResult result;
  std::vector<policy::StoredEvent> stored;
  std::vector<std::pair<int64_t, Ev>> mem;  // (customer index, -1 for one not known: stored only; event)
  {
    std::shared_lock<WriterFirstMutex> lock(im.mu);
    for (size_t k = 0; k < events.size(); ++k) {
      const FeedbackEvent& e = events[k];
      auto reject = [&](const char* code, std::string msg) { result.rejected.push_back({k, code, std::move(msg)}); };
      auto type = ParseEventType(e.type);
      if (!type) {
        reject("bad_request", "unknown event type '" + e.type + "'");
        continue;
      }
      auto ch = im.ds.channels.Find(e.channel);
      if (!ch) {
        reject("bad_request", "unknown channel '" + e.channel + "'");
        continue;
      }
      if (e.customer_id.empty()) {
        reject("bad_request", "customer_id is required");
        continue;
      }
      if (e.ts_ms <= 0) {
        reject("bad_request", "ts_ms must be a positive epoch time in ms");
        continue;
      }
      auto item = im.ds.FindItem(e.item_id);
      if (!item) {
        reject("not_found", "unknown item '" + e.item_id + "'");
        continue;
      }
      const Item& it = im.ds.items[*item];
      policy::StoredEvent s;
      s.ts = e.ts_ms;
      s.customer_id = e.customer_id;
      s.item_id = e.item_id;
      s.type = *type;
      s.channel = e.channel;
      s.request_id = e.request_id;
      s.campaign = im.ds.campaigns.Name(it.campaign);
      s.category = im.ds.categories.Name(it.category);
      s.service = it.service;
      stored.push_back(std::move(s));
      auto cu = im.ds.FindCustomer(e.customer_id);
      mem.push_back({cu ? static_cast<int64_t>(*cu) : -1, Ev{e.ts_ms, *item, *type, *ch}});
    }
  }
  if (!stored.empty()) QM_RETURN_IF_ERROR(im.policy->Record(im.store.get(), stored));
  im.Remember(mem);
  result.accepted = static_cast<int64_t>(stored.size());
  return result;
}

// Feedback in memory. The shared lock, with the activity log's stripe locks and atomic
// counters, is enough for impressions, clicks and opens: an exclusive lock would wait for every
// page in flight and hold the next ones back, a few hundred times a second. A product's
// conversion changes the customer's holdings, which requests read anywhere: exclusive.
void Engine::Impl::Remember(const std::vector<std::pair<int64_t, Ev>>& mem) {
  auto holds = [&](const Ev& ev) {
    return ev.type == EventType::kConvert && ds.items[ev.item].kind == ItemKind::kProduct;
  };
  auto apply = [&] {
    const ProfileSources sources = Sources();
    const TimeMs keep = std::max(sources.contact_window, sources.clicked_horizon);
    for (const auto& [customer, ev] : mem) {
      if (IsPositive(ev.type)) CountUp(&popular.positives[ev.item]);
      if (customer < 0) continue;
      activity.AddFeedback(static_cast<uint32_t>(customer), ev, keep);
      if (holds(ev)) {
        auto& h = ds.customers[customer].holdings;
        auto pos = std::lower_bound(h.begin(), h.end(), ev.item);
        if (pos == h.end() || *pos != ev.item) h.insert(pos, ev.item);
      }
    }
  };
  {
    std::shared_lock<WriterFirstMutex> lock(mu);
    if (std::none_of(mem.begin(), mem.end(), [&](const auto& x) { return x.first >= 0 && holds(x.second); })) {
      apply();
      return;
    }
  }
  std::unique_lock<WriterFirstMutex> lock(mu);
  apply();
}

Result<int64_t> Engine::UpsertItems(const std::vector<Record>& records) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> writer(im.writer_mu);
  std::unique_lock<WriterFirstMutex> lock(im.mu);
  // Parse everything first: a bad record changes nothing.
  std::vector<Item> items(records.size());
  for (size_t k = 0; k < records.size(); ++k) {
    QM_RETURN_IF_ERROR(
        ParseItemRecord(records[k], im.tz, &im.ds, &items[k]).Annotate("items[" + std::to_string(k) + "]"));
  }
  std::vector<uint32_t> changed;
  for (Item& it : items) {
    uint32_t idx;
    if (auto f = im.ds.FindItem(it.id)) {
      idx = *f;
      im.ds.items[idx] = std::move(it);
    } else {
      idx = im.ds.AddItem(std::move(it));
      im.retired.push_back(0);
      im.popular.positives.push_back(0);
      im.popular.any_order.push_back(idx);
    }
    im.retired[idx] = 0;
    changed.push_back(idx);
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  im.popular.IndexService(im.ds);  // an item may have become a service item, or stopped being one
  for (Model* m : im.DistinctModels()) QM_RETURN_IF_ERROR(m->Refresh(im.ds, changed, im.retired));
  im.pins.IndexItems(im.ds, im.retired);
  return static_cast<int64_t>(items.size());
}

Result<int64_t> Engine::RetireItems(const std::vector<std::string>& item_ids) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> writer(im.writer_mu);
  std::unique_lock<WriterFirstMutex> lock(im.mu);
  std::vector<uint32_t> gone;
  for (const auto& id : item_ids) {
    auto f = im.ds.FindItem(id);
    if (!f || im.retired[*f]) continue;
    im.retired[*f] = 1;
    gone.push_back(*f);
  }
  for (Model* m : im.DistinctModels()) QM_RETURN_IF_ERROR(m->Refresh(im.ds, gone, im.retired));
  im.pins.IndexItems(im.ds, im.retired);
  return static_cast<int64_t>(gone.size());
}

Result<int64_t> Engine::UpsertCustomers(const std::vector<Record>& records) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> writer(im.writer_mu);
  std::unique_lock<WriterFirstMutex> lock(im.mu);
  std::vector<Customer> cs(records.size());
  std::vector<std::vector<std::pair<size_t, std::string>>> values(records.size());
  for (size_t k = 0; k < records.size(); ++k) {
    QM_RETURN_IF_ERROR(ParseCustomerRecord(records[k], im.tz, &im.ds, &cs[k], &values[k])
                           .Annotate("customers[" + std::to_string(k) + "]"));
  }
  for (size_t k = 0; k < cs.size(); ++k) {
    uint32_t idx;
    if (auto f = im.ds.FindCustomer(cs[k].id)) {
      idx = *f;
      im.ds.customers[idx] = std::move(cs[k]);
    } else {
      idx = im.ds.AddCustomer(std::move(cs[k]));
      im.activity.AddCustomer();  // no events.csv history
    }
    SetCustomerFeatures(&im.ds, idx, values[k]);
  }
  return static_cast<int64_t>(cs.size());
}

Result<std::string> Engine::Reload(const std::string& version) {
  return impl_->ReloadVersionAndExperiments(true, version, nullptr);
}

Result<std::string> Engine::Reload(const std::string& version, const Experiments& experiments) {
  return impl_->ReloadVersionAndExperiments(true, version, &experiments);
}

Status Engine::ReloadExperiments(const Experiments& experiments) {
  return impl_->ReloadVersionAndExperiments(false, "", &experiments).status();
}

void Engine::WithDataset(const std::function<void(const Dataset&)>& fn) const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  fn(impl_->ds);
}

Result<policy::CustomerHistory> Engine::History(const std::string& customer_id, TimeMs since, size_t limit,
                                                TimeMs now_ms) {
  // Cap usage under the customer's arm policy (the channel only decides controls: not used here);
  // the lock keeps the arm's policy alive through a reload of the definition.
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  const RequestSettings rs = impl_->SettingsFor(customer_id, kAppHome);
  return rs.policy->History(impl_->store.get(), customer_id, since, limit, now_ms == kNoTime ? impl_->Now() : now_ms);
}

}  // namespace qm::serving

namespace qm::serving {

Result<Portrait> Engine::CustomerPortrait(const std::string& customer_id) const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  const Dataset& ds = impl_->ds;
  const auto c = ds.FindCustomer(customer_id);
  if (!c) return Status::NotFound("unknown customer '" + customer_id + "'");
  Portrait p;
  p.customer_id = customer_id;
  p.version = impl_->model->version;
  for (const FeatureColumn& col : ds.portraits) {
    if (col.kind == FeatureColumn::Kind::kNumeric) {
      if (*c < col.numeric.size() && !std::isnan(col.numeric[*c])) {
        p.numbers[col.name] = col.numeric[*c];
        p.known = true;
      }
      continue;
    }
    const uint32_t code = *c < col.codes.size() ? col.codes[*c] : 0;
    if (code == 0) continue;
    p.known = true;
    if (col.name.rfind("interest_", 0) == 0) {
      p.interests.push_back(col.categories.Name(code));
    } else {
      p.texts[col.name] = col.categories.Name(code);
    }
  }
  return p;
}

}  // namespace qm::serving
