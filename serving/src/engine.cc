#include "qianmian/serving/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "model.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/recall/two_tower.h"
#include "records.h"
#include "rw_mutex.h"

namespace qm::serving {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int64_t Us(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

// A customer's event as serving keeps it (history for the towers, contact features).
struct Ev {
  TimeMs ts;
  uint32_t item;
  EventType type;
  ChannelId channel;
};

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashString(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return Mix(h);
}

const char* const kStoreMarker = "QM_SEEDED";

}  // namespace

// OpenBLAS (when it is the BLAS libtorch and Faiss use) spins its own worker threads with
// sched_yield; push runs parallelise across customers instead, so they pin BLAS to one thread.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

struct Engine::Impl {
  EngineOptions opt;
  TimeZone tz = TimeZone::Utc();
  std::unique_ptr<policy::Policy> policy;
  std::shared_ptr<policy::EventStore> store;
  uint64_t id_salt = 0;
  std::atomic<uint64_t> request_counter{0};

  std::mutex writer_mu;              // serialises writers (upserts, retire, reload)
  mutable WriterFirstMutex mu;       // guards everything below: shared for requests
  Dataset ds;
  std::vector<uint8_t> retired;      // per dataset item
  std::shared_ptr<Model> model;
  std::vector<uint64_t> ev_begin;    // per customer (+1) into ev: events.csv, time order
  std::vector<Ev> ev;
  std::unordered_map<uint32_t, std::vector<Ev>> overlay;  // feedback since Open, time order
  std::vector<uint32_t> positives;   // per item: positives seen (data + feedback)
  std::vector<std::vector<uint32_t>> popular_channel;  // [channel] -> items, best first
  std::vector<std::vector<uint32_t>> popular_segment;  // [channel * kNumTiers + tier]
  std::vector<uint32_t> any_order;   // every item, most positives first (last-resort fallback)
  std::unordered_map<uint32_t, std::vector<uint32_t>> campaign_items;  // campaign code -> items
  std::vector<ChannelMask> pin_channels;  // per serving.campaigns entry; 0 = every channel
  std::vector<uint8_t> pin_tiers;         // per entry: bit per tier; 0 = every tier
  std::vector<uint8_t> reserve_channel;   // per channel id

  Status Init();
  void BuildEventIndex();
  void BuildPopular();
  void IndexCampaigns();
  Status SeedStore();
  bool IsNew(uint32_t item) const {
    return positives[item] < static_cast<uint32_t>(opt.serving.explore_max_positives);
  }
  policy::Candidate Cand(uint32_t item) const {
    policy::Candidate c;
    c.item = &ds.items[item];
    c.index = item;
    c.category = ds.categories.Name(ds.items[item].category);
    c.campaign = ds.campaigns.Name(ds.items[item].campaign);
    return c;
  }
  // The customer's events before `now` (oldest first), from events.csv and feedback.
  void RecentEvents(uint32_t customer, TimeMs since, TimeMs now, std::vector<Ev>* out) const;
  // What a request needs of a known customer's past: events since now - max(window, clicked
  // horizon) into *recent (oldest first); distinct positives, newest first, into *history (up to
  // `history_length`, topped up with older positives); content clicked or opened within the
  // clicked horizon into *clicked (sorted, distinct).
  void CustomerActivity(uint32_t customer, TimeMs now, TimeMs window, int history_length, std::vector<Ev>* recent,
                        std::vector<uint32_t>* history, std::vector<uint32_t>* clicked) const;
  Status One(const Request& req, Response* resp);
};

namespace {

// Why a candidate was recalled, as codes in a per-request pool: a reason's text is made only
// for the items served.
enum class Source : uint8_t { kAnn, kSimilarTo, kPopular, kCampaign, kFresh, kFallbackPopular, kFallbackAnyEligible };
struct Reason {
  Source source;
  uint32_t arg;   // kSimilarTo: the seed item; kCampaign: the campaign's code; else 0
  int32_t next;   // the candidate's next reason in the pool, or kNoReason
};
constexpr int32_t kNoReason = -1;
constexpr int32_t kReasonsMoved = -2;  // the candidate moved on to ranking: later reasons are not kept

struct Scored {
  uint32_t item;
  int32_t reasons = kNoReason;  // first reason in the request's pool
  bool fallback = false;
  float pc = 0, pv = 0;
  double uv = 0, score = 0;
};

// Candidate positions by item: open addressing over a power-of-two table, so a request's few
// hundred candidates cost no allocation each.
class CandidateIndex {
 public:
  explicit CandidateIndex(size_t expected) {
    size_t cap = 64;
    while (cap < 2 * expected) cap <<= 1;
    slots_.assign(cap, {kEmpty, 0});
  }
  // The position of `item`, or -1.
  int64_t Find(uint32_t item) const {
    for (size_t h = Hash(item);; h = (h + 1) & (slots_.size() - 1)) {
      if (slots_[h].first == item) return slots_[h].second;
      if (slots_[h].first == kEmpty) return -1;
    }
  }
  // REQUIRES: `item` not present.
  void Insert(uint32_t item, uint32_t pos) {
    if (2 * (size_ + 1) > slots_.size()) Grow();
    size_t h = Hash(item);
    while (slots_[h].first != kEmpty) h = (h + 1) & (slots_.size() - 1);
    slots_[h] = {item, pos};
    ++size_;
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;  // never an item index (items are < 2^32 - 1)
  size_t Hash(uint32_t item) const { return (item * 0x9E3779B1u) & (slots_.size() - 1); }
  void Grow() {
    std::vector<std::pair<uint32_t, uint32_t>> old(slots_.size() * 2, {kEmpty, 0});
    old.swap(slots_);
    size_ = 0;
    for (const auto& [item, pos] : old) {
      if (item != kEmpty) Insert(item, pos);
    }
  }
  std::vector<std::pair<uint32_t, uint32_t>> slots_;
  size_t size_ = 0;
};

}  // namespace

void Engine::Impl::BuildEventIndex() {
  const EventLog& e = ds.events;
  const size_t nc = ds.customers.size();
  ev_begin.assign(nc + 1, 0);
  for (size_t i = 0; i < e.size(); ++i) ++ev_begin[e.customer[i] + 1];
  for (size_t c = 0; c < nc; ++c) ev_begin[c + 1] += ev_begin[c];
  ev.resize(e.size());
  std::vector<uint64_t> pos(ev_begin.begin(), ev_begin.end() - 1);
  for (size_t i = 0; i < e.size(); ++i) ev[pos[e.customer[i]]++] = Ev{e.ts[i], e.item[i], e.type[i], e.channel[i]};
  for (size_t c = 0; c < nc; ++c) {
    auto b = ev.begin() + ev_begin[c], en = ev.begin() + ev_begin[c + 1];
    if (!std::is_sorted(b, en, [](const Ev& x, const Ev& y) { return x.ts < y.ts; })) {
      std::stable_sort(b, en, [](const Ev& x, const Ev& y) { return x.ts < y.ts; });
    }
  }
}

void Engine::Impl::BuildPopular() {
  const size_t ni = ds.items.size();
  const int nch = ds.channels.size();
  positives.assign(ni, 0);
  TimeMs last = kNoTime;
  for (const Ev& x : ev) last = std::max(last, x.ts);
  const TimeMs since = last == kNoTime ? kNoTime : last - static_cast<TimeMs>(opt.serving.history_window_days) * kMsPerDay;
  std::vector<std::vector<uint32_t>> by_channel(nch, std::vector<uint32_t>(ni, 0));
  std::vector<std::vector<uint32_t>> by_segment(static_cast<size_t>(nch) * kNumTiers);
  for (size_t c = 0; c < ds.customers.size(); ++c) {
    const int tier = static_cast<int>(ds.customers[c].tier);
    for (uint64_t p = ev_begin[c]; p < ev_begin[c + 1]; ++p) {
      const Ev& x = ev[p];
      if (!IsPositive(x.type)) continue;
      ++positives[x.item];
      if (x.ts < since) continue;
      ++by_channel[x.channel][x.item];
      auto& seg = by_segment[static_cast<size_t>(x.channel) * kNumTiers + tier];
      if (seg.empty()) seg.assign(ni, 0);
      ++seg[x.item];
    }
  }
  const size_t keep = static_cast<size_t>(std::max(200, 4 * opt.serving.popular));
  auto top = [&](const std::vector<uint32_t>& counts) {
    std::vector<uint32_t> items;
    for (uint32_t i = 0; i < counts.size(); ++i) {
      if (counts[i] > 0) items.push_back(i);
    }
    auto better = [&](uint32_t a, uint32_t b) { return counts[a] > counts[b] || (counts[a] == counts[b] && a < b); };
    if (items.size() > keep) {
      std::partial_sort(items.begin(), items.begin() + keep, items.end(), better);
      items.resize(keep);
    } else {
      std::sort(items.begin(), items.end(), better);
    }
    return items;
  };
  popular_channel.assign(nch, {});
  popular_segment.assign(static_cast<size_t>(nch) * kNumTiers, {});
  for (int ch = 0; ch < nch; ++ch) popular_channel[ch] = top(by_channel[ch]);
  for (size_t s = 0; s < by_segment.size(); ++s) {
    if (!by_segment[s].empty()) popular_segment[s] = top(by_segment[s]);
  }
  any_order.resize(ni);
  for (uint32_t i = 0; i < ni; ++i) any_order[i] = i;
  std::stable_sort(any_order.begin(), any_order.end(), [&](uint32_t a, uint32_t b) { return positives[a] > positives[b]; });
}

void Engine::Impl::IndexCampaigns() {
  campaign_items.clear();
  for (uint32_t i = 0; i < ds.items.size(); ++i) {
    if (ds.items[i].campaign != 0 && !retired[i]) campaign_items[ds.items[i].campaign].push_back(i);
  }
}

void Engine::Impl::RecentEvents(uint32_t customer, TimeMs since, TimeMs now, std::vector<Ev>* out) const {
  out->clear();
  if (customer + 1 < ev_begin.size()) {
    auto b = ev.begin() + ev_begin[customer], e = ev.begin() + ev_begin[customer + 1];
    auto lo = std::lower_bound(b, e, since, [](const Ev& x, TimeMs t) { return x.ts < t; });
    for (auto it = lo; it != e && it->ts < now; ++it) out->push_back(*it);
  }
  auto o = overlay.find(customer);
  if (o != overlay.end()) {
    const size_t mid = out->size();
    for (const Ev& x : o->second) {
      if (x.ts >= since && x.ts < now) out->push_back(x);
    }
    if (mid > 0 && mid < out->size()) {
      std::inplace_merge(out->begin(), out->begin() + mid, out->end(), [](const Ev& x, const Ev& y) { return x.ts < y.ts; });
    }
  }
}

void Engine::Impl::CustomerActivity(uint32_t customer, TimeMs now, TimeMs window, int history_length,
                                    std::vector<Ev>* recent, std::vector<uint32_t>* history,
                                    std::vector<uint32_t>* clicked) const {
  const TimeMs clicked_horizon = policy->config().clicked_horizon;
  const TimeMs since = now - std::max(window, clicked_horizon);
  recent->clear();
  history->clear();
  clicked->clear();
  RecentEvents(customer, since, now, recent);
  auto add = [&](const Ev& e) {
    if (static_cast<int>(history->size()) < history_length &&
        std::find(history->begin(), history->end(), e.item) == history->end()) {
      history->push_back(e.item);
    }
  };
  for (auto it = recent->rbegin(); it != recent->rend(); ++it) {
    if (!IsPositive(it->type)) continue;
    add(*it);
    if ((it->type == EventType::kClick || it->type == EventType::kPushOpen) && it->ts > now - clicked_horizon &&
        ds.items[it->item].kind == ItemKind::kContent) {
      clicked->push_back(it->item);
    }
  }
  std::sort(clicked->begin(), clicked->end());
  clicked->erase(std::unique(clicked->begin(), clicked->end()), clicked->end());
  if (static_cast<int>(history->size()) < history_length) {  // positives older than the window
    std::vector<Ev> older;
    RecentEvents(customer, kNoTime + 1, since, &older);
    for (auto it = older.rbegin(); it != older.rend(); ++it) {
      if (IsPositive(it->type)) add(*it);
    }
  }
}

Status Engine::Impl::SeedStore() {
  if (!opt.serving.seed_store || opt.shared_store || opt.store.backend != "embedded") return Status::Ok();
  const fs::path marker = fs::path(opt.store.path) / kStoreMarker;
  if (fs::exists(marker)) return Status::Ok();
  // Only what the contact state still needs: events within the longest horizon of the data's end.
  const auto& so = policy->state_options();
  TimeMs last = kNoTime;
  for (const Ev& x : ev) last = std::max(last, x.ts);
  // Each type only as far back as the state keeps it (conversions do not change the state).
  auto keep = [&](EventType t) -> TimeMs {
    switch (t) {
      case EventType::kImpression:
      case EventType::kPushSent: return so.keep_contacts;
      case EventType::kClick:
      case EventType::kPushOpen: return so.keep_clicks;
      case EventType::kDismiss: return so.keep_dismissals;
      case EventType::kConvert: return -1;
    }
    return -1;
  };
  std::vector<policy::StoredEvent> batch;
  uint64_t seeded = 0;
  Progress progress("seeding the event store", ds.customers.size(), " customers");
  for (size_t c = 0; c < ds.customers.size(); ++c) {
    progress.Add(1);
    for (uint64_t p = ev_begin[c]; p < ev_begin[c + 1]; ++p) {
      const Ev& x = ev[p];
      const TimeMs k = keep(x.type);
      if (last == kNoTime || k < 0 || x.ts < last - k) continue;
      ++seeded;
      policy::StoredEvent s;
      s.ts = x.ts;
      s.customer_id = ds.customers[c].id;
      const Item& it = ds.items[x.item];
      s.item_id = it.id;
      s.type = x.type;
      s.channel = ds.channels.Name(x.channel);
      s.campaign = ds.campaigns.Name(it.campaign);
      s.category = ds.categories.Name(it.category);
      s.service = it.service;
      batch.push_back(std::move(s));
      if (batch.size() >= 20000) {
        QM_RETURN_IF_ERROR(policy->Record(store.get(), batch).Annotate("seeding the event store"));
        batch.clear();
      }
    }
  }
  if (!batch.empty()) QM_RETURN_IF_ERROR(policy->Record(store.get(), batch).Annotate("seeding the event store"));
  progress.Finish();
  std::ofstream(marker) << "seeded from events.csv: " << seeded << " events\n";
  return Status::Ok();
}

Status Engine::Impl::Init() {
  QM_ASSIGN_OR_RETURN(tz, TimeZone::Load(opt.data.timezone));
  {
    LoadReport report;
    auto loaded = LoadDataset(opt.data.dir, opt.data, &report);
    if (!loaded.ok()) return loaded.status();
    ds = std::move(loaded).value();
  }
  if (ds.items.empty()) return Status::InvalidArgument("items.csv holds no items");
  retired.assign(ds.items.size(), 0);
  BuildEventIndex();
  ds.events = EventLog();  // serving keeps its own compact copy
  BuildPopular();
  // Policy and store.
  QM_ASSIGN_OR_RETURN(policy::Policy p, policy::Policy::Create(opt.policy, ds.channels, tz));
  policy = std::make_unique<policy::Policy>(std::move(p));
  reserve_channel.assign(ds.channels.size(), 0);
  for (const auto& name : policy->config().reserve_channels) {
    if (auto id = ds.channels.Find(name)) reserve_channel[*id] = 1;
  }
  for (size_t k = 0; k < opt.serving.campaigns.size(); ++k) {
    const CampaignPin& pin = opt.serving.campaigns[k];
    ChannelMask m = 0;
    for (const auto& c : pin.channels) {
      auto id = ds.channels.Find(c);
      if (!id) return Status::InvalidArgument("'serving.campaigns[" + std::to_string(k) + "].channels': unknown channel '" + c + "'");
      m |= ChannelMask{1} << *id;
    }
    uint8_t tiers = 0;
    for (const auto& t : pin.tiers) tiers |= static_cast<uint8_t>(1u << static_cast<int>(*ParseTier(t)));
    pin_channels.push_back(m);
    pin_tiers.push_back(tiers);
  }
  IndexCampaigns();
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
  recall::SetTorchThreads(1);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  QM_ASSIGN_OR_RETURN(std::string version, artifacts::ReadCurrent(opt.artifacts_root));
  auto m = LoadModel(opt.artifacts_root, version, ds, retired, opt.serving);
  if (!m.ok()) return m.status().Annotate("version " + version + " refused");
  model = std::move(m).value();
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

Status Engine::Recommend(const std::vector<Request>& requests, std::vector<Response>* responses) {
  responses->assign(requests.size(), Response());
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  for (size_t i = 0; i < requests.size(); ++i) {
    QM_RETURN_IF_ERROR(impl_->One(requests[i], &(*responses)[i]));
  }
  return Status::Ok();
}

// One request, under the shared lock.
Status Engine::Impl::One(const Request& req, Response* resp) {
  const auto t0 = Clock::now();
  Debug& dbg = resp->debug;
  const ServingConfig& sc = opt.serving;
  auto ch_opt = ds.channels.Find(req.channel);
  if (!ch_opt) {
    resp->status = Status::InvalidArgument("unknown channel '" + req.channel + "'");
    return Status::Ok();
  }
  if (req.count < 1 || req.count > 100) {
    resp->status = Status::InvalidArgument("count must be in 1..100");
    return Status::Ok();
  }
  const ChannelId channel = *ch_opt;
  const TimeMs now = req.now_ms == kNoTime ? NowMs() : req.now_ms;
  const int count = req.count;
  resp->request_id = req.request_id;
  if (resp->request_id.empty()) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "r%016llx%06llx", static_cast<unsigned long long>(id_salt),
                  static_cast<unsigned long long>(request_counter.fetch_add(1) & 0xffffff));
    resp->request_id = buf;
  }
  std::shared_ptr<Model> m = model;
  resp->model_version = m->version;
  const Model& md = *m;
  const int d = md.dim;

  // Profile.
  auto found = ds.FindCustomer(req.customer_id);
  const bool known = found.has_value();
  dbg.known_customer = known;
  Customer unknown;
  if (!known) {
    unknown.id = req.customer_id;
    unknown.risk = 1;  // SPEC §5: a customer never seen is treated as C1
    unknown.risk_assessed = now;
  }
  const Customer& cu = known ? ds.customers[*found] : unknown;
  std::vector<Ev> recent;
  const TimeMs window = static_cast<TimeMs>(sc.history_window_days) * kMsPerDay;
  std::vector<uint32_t> history;          // recent positives, newest first
  std::vector<uint32_t> clicked_content;  // sorted
  if (known) CustomerActivity(*found, now, window, md.space->history_length(), &recent, &history, &clicked_content);
  features::CustomerBatch cb;
  if (known) md.space->EncodeCustomer(ds, *found, now, history, &cb);
  else md.space->EncodeUnknownCustomer(&cb);
  std::vector<float> u(d);
  const auto t_tower = Clock::now();
  QM_RETURN_IF_ERROR(md.towers->EncodeCustomers(cb, u.data()));
  const auto t_tower_end = Clock::now();
  int64_t ann_us = 0;

  // Recall: sources in priority order, de-duplicated; every source that found an item is a reason.
  std::vector<Scored> cands;
  const size_t expected = static_cast<size_t>(sc.ann_products + sc.ann_content + sc.similar + sc.popular + sc.fresh) + 64;
  CandidateIndex where(expected);
  std::vector<Reason> reasons;
  cands.reserve(expected);
  reasons.reserve(2 * expected);
  std::unordered_set<uint32_t> excluded, excluded_seen;
  for (const auto& id : req.exclude) {
    if (auto it = ds.FindItem(id)) excluded.insert(*it);
  }
  // Adds `item` as a candidate, or the reason to the candidate it already is.
  auto add = [&](uint32_t item, Source source, uint32_t arg, bool fallback) -> bool {
    if (item >= ds.items.size() || retired[item]) return false;
    if (!excluded.empty() && excluded.count(item)) {
      if (excluded_seen.insert(item).second) ++dbg.dropped["excluded"];
      return false;
    }
    const int64_t w = where.Find(item);
    if (w >= 0) {
      int32_t* link = &cands[w].reasons;
      if (*link == kReasonsMoved) return false;
      for (; *link != kNoReason; link = &reasons[*link].next) {
        if (reasons[*link].source == source && reasons[*link].arg == arg) return false;
      }
      *link = static_cast<int32_t>(reasons.size());  // set before push_back may move the pool
      reasons.push_back({source, arg, kNoReason});
      return false;
    }
    where.Insert(item, static_cast<uint32_t>(cands.size()));
    Scored c;
    c.item = item;
    c.reasons = static_cast<int32_t>(reasons.size());
    reasons.push_back({source, arg, kNoReason});
    c.fallback = fallback;
    cands.push_back(c);
    return true;
  };
  auto reason_text = [&](const Reason& r) -> std::string {
    switch (r.source) {
      case Source::kAnn: return "recall:ann";
      case Source::kSimilarTo: return "recall:similar_to:" + ds.items[r.arg].id;
      case Source::kPopular: return "recall:popular";
      case Source::kCampaign: return "campaign:" + std::string(ds.campaigns.Name(r.arg));
      case Source::kFresh: return "recall:fresh";
      case Source::kFallbackPopular: return "fallback:popular";
      case Source::kFallbackAnyEligible: return "fallback:any_eligible";
    }
    return "recall";
  };
  auto search = [&](int kind, const float* q, int64_t nq, int k, std::vector<int64_t>* labels) -> Status {
    labels->assign(static_cast<size_t>(nq) * k, -1);
    if (k <= 0 || md.index[kind]->size() == 0) return Status::Ok();
    std::vector<float> scores(labels->size());
    const auto a = Clock::now();
    Status st = md.index[kind]->Search(q, nq, k, labels->data(), scores.data());
    ann_us += Us(a, Clock::now());
    return st;
  };
  std::vector<int64_t> labels;
  const int tier = static_cast<int>(cu.tier);
  if (known) {
    const char* names[2] = {"recall.ann_products", "recall.ann_content"};
    const int quota[2] = {sc.ann_products, sc.ann_content};
    for (int kind = 0; kind < 2; ++kind) {
      QM_RETURN_IF_ERROR(search(kind, u.data(), 1, quota[kind], &labels));
      int64_t n = 0;
      for (int64_t row : labels) {
        if (row < 0 || row >= static_cast<int64_t>(md.row_item.size()) || md.row_item[row] < 0) continue;
        n += add(static_cast<uint32_t>(md.row_item[row]), Source::kAnn, 0, false);
      }
      dbg.counts[names[kind]] = n;
    }
    // Item-to-item from the most recent clicks.
    std::vector<uint32_t> seeds;
    for (uint32_t it : history) {
      if (static_cast<int>(seeds.size()) >= sc.similar_seeds) break;
      if (it < md.item_row.size() && md.item_row[it] >= 0) seeds.push_back(it);
    }
    if (!seeds.empty() && sc.similar > 0) {
      // A trained seed's neighbours come from the version's table; others are searched once per
      // version and catalogue state, then cached.
      const int per = std::max(2, sc.similar / std::max(1, sc.similar_seeds) + 1);
      std::vector<std::vector<int64_t>> nn(seeds.size() * 2);
      std::vector<size_t> uncovered, missing;  // seeds the table does not cover; of those, not cached
      for (size_t s = 0; s < seeds.size(); ++s) {
        const int64_t row = md.item_row[seeds[s]];
        if (row >= md.neighbours.rows || per > md.neighbours.k) {
          uncovered.push_back(s);
          continue;
        }
        for (int kind = 0; kind < 2; ++kind) {  // a trained row: the version's table (immutable)
          const int32_t* list = md.neighbours.List(row, kind);
          nn[s * 2 + kind].assign(list, list + per);
        }
      }
      if (!uncovered.empty()) {
        std::lock_guard<std::mutex> nn_lock(md.nn_mu);
        for (size_t s : uncovered) {
          for (int kind = 0; kind < 2; ++kind) {
            auto f = md.nn.find(static_cast<int64_t>(md.item_row[seeds[s]]) * 2 + kind);
            if (f != md.nn.end()) nn[s * 2 + kind] = f->second;
            else if (kind == 0) missing.push_back(s);
          }
        }
      }
      if (!missing.empty()) {
        std::vector<float> q(missing.size() * d);
        for (size_t k = 0; k < missing.size(); ++k) std::copy_n(md.Embedding(seeds[missing[k]]), d, q.data() + k * d);
        for (int kind = 0; kind < 2; ++kind) {
          QM_RETURN_IF_ERROR(search(kind, q.data(), static_cast<int64_t>(missing.size()), per, &labels));
          for (size_t k = 0; k < missing.size(); ++k) {
            nn[missing[k] * 2 + kind].assign(labels.begin() + k * per, labels.begin() + (k + 1) * per);
          }
        }
        std::lock_guard<std::mutex> nn_lock(md.nn_mu);
        for (size_t s : missing) {
          for (int kind = 0; kind < 2; ++kind) md.nn[static_cast<int64_t>(md.item_row[seeds[s]]) * 2 + kind] = nn[s * 2 + kind];
        }
      }
      int64_t n = 0;
      for (int j = 0; j < per && n < sc.similar; ++j) {
        for (size_t s = 0; s < seeds.size() && n < sc.similar; ++s) {
          for (int kind = 0; kind < 2 && n < sc.similar; ++kind) {  // interleaved: the newest seed first
            const auto& list = nn[s * 2 + kind];
            if (j >= static_cast<int>(list.size())) continue;
            const int64_t row = list[j];
            if (row < 0 || row >= static_cast<int64_t>(md.row_item.size()) || md.row_item[row] < 0) continue;
            const uint32_t it = static_cast<uint32_t>(md.row_item[row]);
            if (it == seeds[s]) continue;
            n += add(it, Source::kSimilarTo, seeds[s], false);
          }
        }
      }
      dbg.counts["recall.similar"] = n;
    }
  }
  {
    int64_t n = 0;
    const auto& seg = popular_segment[static_cast<size_t>(channel) * kNumTiers + tier];
    if (known) {
      for (size_t k = 0; k < seg.size() && n < sc.popular; ++k) n += add(seg[k], Source::kPopular, 0, false);
    }
    const int quota = known ? sc.popular : sc.popular + sc.ann_products;  // cold start: popular carries the page
    const auto& pc = popular_channel[channel];
    for (size_t k = 0; k < pc.size() && n < quota; ++k) n += add(pc[k], Source::kPopular, 0, false);
    dbg.counts["recall.popular"] = n;
  }
  if (known && sc.campaign > 0) {
    int64_t n = 0;
    for (size_t k = 0; k < sc.campaigns.size() && n < sc.campaign; ++k) {
      if (pin_channels[k] && !(pin_channels[k] >> channel & 1u)) continue;
      if (pin_tiers[k] && !(pin_tiers[k] >> tier & 1u)) continue;
      auto code = ds.campaigns.Find(sc.campaigns[k].campaign);
      if (!code) continue;
      auto it = campaign_items.find(*code);
      if (it == campaign_items.end()) continue;
      for (uint32_t item : it->second) {
        if (n >= sc.campaign) break;
        n += add(item, Source::kCampaign, *code, false);
      }
    }
    dbg.counts["recall.campaign"] = n;
  }
  std::mt19937_64 rng(Mix(HashString(resp->request_id) ^ sc.seed));
  if (known && sc.fresh > 0 && sc.explore_share > 0) {
    // New items: a seeded sample of the items with few positives (the least-known end of any_order).
    int64_t n = 0;
    size_t lo = any_order.size();
    while (lo > 0 && IsNew(any_order[lo - 1])) --lo;
    const size_t span = any_order.size() - lo;
    for (int tries = 0; span > 0 && tries < 4 * sc.fresh && n < sc.fresh; ++tries) {
      n += add(any_order[lo + rng() % span], Source::kFresh, 0, false);
    }
    dbg.counts["recall.fresh"] = n;
  }
  dbg.counts["recall.merged"] = static_cast<int64_t>(cands.size());
  const auto t_recall = Clock::now();

  // Filter: content the customer already clicked, then every policy rule in one Check (its
  // stateless rules, then the store's state: caps, cooldown, dismissed).
  std::vector<Scored> allowed;
  auto filter = [&](size_t from) -> Status {
    std::vector<size_t> pass;
    std::vector<std::string> blocked;
    for (size_t k = from; k < cands.size(); ++k) {
      if (!std::binary_search(clicked_content.begin(), clicked_content.end(), cands[k].item)) {
        pass.push_back(k);
        continue;
      }
      blocked.clear();  // counted with every other rule that blocks it, as Check would
      policy->StaticCheck(cu, Cand(cands[k].item), channel, now, &blocked);
      blocked.push_back(policy::blocked::kClicked);
      for (const auto& b : blocked) ++dbg.dropped[b];
    }
    if (pass.empty()) return Status::Ok();
    std::vector<policy::Candidate> pc;
    pc.reserve(pass.size());
    for (size_t k : pass) pc.push_back(Cand(cands[k].item));
    QM_ASSIGN_OR_RETURN(auto decisions, policy->Check(store.get(), cu, pc, channel, now));
    for (size_t j = 0; j < pass.size(); ++j) {
      // Reasons a later fallback finds for a candidate already allowed are not kept.
      if (decisions[j].blocked_by.empty()) {
        allowed.push_back(cands[pass[j]]);
        cands[pass[j]].reasons = kReasonsMoved;
      }
      for (const auto& b : decisions[j].blocked_by) ++dbg.dropped[b];
    }
    return Status::Ok();
  };
  QM_RETURN_IF_ERROR(filter(0));
  if (static_cast<int>(allowed.size()) < count) {
    dbg.fallbacks.push_back("popular");
    const size_t from = cands.size();
    int64_t n = 0;
    for (uint32_t it : popular_channel[channel]) {
      if (n >= 3 * count) break;
      n += add(it, Source::kFallbackPopular, 0, true);
    }
    QM_RETURN_IF_ERROR(filter(from));
  }
  if (static_cast<int>(allowed.size()) < count) {
    dbg.fallbacks.push_back("any_eligible");
    // The catalogue, most positives first; a bounded scan so a customer nothing suits stays cheap.
    const size_t from = cands.size();
    std::vector<std::string> blocked;
    int64_t n = 0;
    for (size_t k = 0; k < any_order.size() && k < 5000 && n < 3 * count; ++k) {
      const uint32_t it = any_order[k];
      if (where.Find(it) >= 0 || retired[it]) continue;
      blocked.clear();
      policy->StaticCheck(cu, Cand(it), channel, now, &blocked);
      if (!blocked.empty()) continue;
      n += add(it, Source::kFallbackAnyEligible, 0, true);
    }
    QM_RETURN_IF_ERROR(filter(from));
  }
  dbg.counts["filter.passed"] = static_cast<int64_t>(allowed.size());
  const auto t_filter = Clock::now();

  // Rank: every allowed candidate in one batched call.
  int64_t model_us = 0;
  const size_t n = allowed.size();
  if (n > 0) {
    std::vector<uint32_t> rows(n);
    for (size_t k = 0; k < n; ++k) rows[k] = md.item_enc[allowed[k].item];
    features::ItemBatch ib;
    GatherForRank(md.enc, rows.data(), static_cast<int64_t>(n), &ib);
    rank::RankContext ctx{channel, tz.LocalHour(now), tz.LocalWeekday(now)};
    auto h = req.context.find("hour");
    if (h != req.context.end()) {
      int hour = std::atoi(h->second.c_str());
      if (hour >= 0 && hour < 24) ctx.hour = hour;
    }
    std::vector<features::ContactEvent> contact;
    for (const Ev& x : recent) {
      if (x.ts >= now - window) contact.push_back({x.ts, x.item, ds.items[x.item].category, x.channel, x.type});
    }
    rank::RankInputs in;
    in.cat.reserve(n * md.builder->cat_width());
    in.dense.reserve(n * md.builder->dense_width());
    in.bag.reserve(n * rank::kBagWidth);
    float cf[features::kContactFeatures];
    std::vector<float> zero(d, 0.0f);
    // u.v first, in a loop of its own: the candidates' embedding rows are scattered over the
    // table and cold, and a tight loop lets their cache misses overlap (measured: the rank
    // inputs took ~20 us less than with the product inside the loop below).
    for (size_t k = 0; k < n; ++k) {
      const uint32_t it = allowed[k].item;
      allowed[k].uv = md.item_row[it] >= 0 ? features::Dot(u.data(), md.Embedding(it), d) : 0.0f;
    }
    const features::ContactSummary summary(contact, channel, now);
    for (size_t k = 0; k < n; ++k) {
      const uint32_t it = allowed[k].item;
      const float* v = md.item_row[it] >= 0 ? md.Embedding(it) : zero.data();
      summary.Features(it, ds.items[it].category, cf);
      md.builder->Append(cb, 0, ib, static_cast<int64_t>(k), u.data(), v, static_cast<float>(allowed[k].uv), ctx,
                         cf, &in);
    }
    std::vector<float> pc(n), pv(n);
    const auto a = Clock::now();
    QM_RETURN_IF_ERROR(md.ranker->Score(in, pc.data(), pv.data()));
    model_us = Us(a, Clock::now());
    for (size_t k = 0; k < n; ++k) {
      allowed[k].pc = pc[k];
      allowed[k].pv = pv[k];
      const Item& item = ds.items[allowed[k].item];
      const double obj = sc.w_click * pc[k] + sc.w_convert * pv[k] * item.value * item.boost;
      allowed[k].score = std::log(obj + 1e-9) + md.retrieval_weight * allowed[k].uv * md.inv_temperature;
    }
  }
  dbg.counts["rank.scored"] = static_cast<int64_t>(n);
  const auto t_rank = Clock::now();

  // Re-rank: best first, then exploration, layout and diversity fill the page.
  std::stable_sort(allowed.begin(), allowed.end(), [](const Scored& a, const Scored& b) {
    return a.score > b.score || (a.score == b.score && a.item < b.item);
  });
  std::vector<uint8_t> used(n, 0);
  std::vector<size_t> page;
  std::vector<uint8_t> explored(n, 0);
  std::unordered_map<uint32_t, int> per_category;
  const bool layout = channel == kAppHome && !sc.slots.empty();
  std::vector<size_t> fresh_pool;
  for (size_t k = 0; k < n; ++k) {
    if (IsNew(allowed[k].item)) fresh_pool.push_back(k);
  }
  std::uniform_real_distribution<double> unif(0, 1);
  auto fits = [&](size_t k, int want_kind, bool diverse) {
    if (used[k]) return false;
    const Item& it = ds.items[allowed[k].item];
    if (want_kind >= 0 && static_cast<int>(it.kind) != want_kind) return false;
    if (diverse && sc.max_per_category > 0 && it.category != 0 && per_category[it.category] >= sc.max_per_category) return false;
    return true;
  };
  const size_t page_size = std::min<size_t>(count, n);
  for (size_t p = 0; p < page_size; ++p) {
    const int want = layout && p < sc.slots.size() ? (sc.slots[p] == "product" ? 0 : 1) : -1;
    size_t pick = n;
    if (!fresh_pool.empty() && unif(rng) < sc.explore_share) {
      std::vector<size_t> options;
      for (size_t k : fresh_pool) {
        if (fits(k, want, true)) options.push_back(k);
      }
      if (!options.empty()) {
        pick = options[rng() % options.size()];
        explored[pick] = 1;
      }
    }
    for (int pass = 0; pass < 3 && pick == n; ++pass) {
      // 0: the slot's kind within diversity; 1: any kind within diversity; 2: anything left.
      for (size_t k = 0; k < n; ++k) {
        if (fits(k, pass == 0 ? want : -1, pass < 2)) {
          pick = k;
          break;
        }
      }
    }
    if (pick == n) break;
    used[pick] = 1;
    ++per_category[ds.items[allowed[pick].item].category];
    page.push_back(pick);
  }
  const auto t_rerank = Clock::now();

  // Reserve (app_home and other reserve channels) or only report (dry run, push-like channels).
  std::vector<size_t> served = page;
  const bool reserve = reserve_channel[channel] && !req.dry_run;
  if (reserve && !page.empty()) {
    std::vector<size_t> order = page;
    for (size_t k = 0; k < n && order.size() < page.size() + static_cast<size_t>(count); ++k) {
      if (!used[k]) order.push_back(k);
    }
    std::vector<policy::Candidate> pc;
    for (size_t k : order) pc.push_back(Cand(allowed[k].item));
    QM_ASSIGN_OR_RETURN(policy::Contacts contacts,
                        policy->Reserve(store.get(), cu, pc, channel, now, resp->request_id, count));
    served.clear();
    for (size_t j = 0; j < order.size(); ++j) {
      if (contacts.decisions[j].taken) served.push_back(order[j]);
      else if (!contacts.decisions[j].blocked_by.empty()) ++dbg.dropped["reserve." + contacts.decisions[j].blocked_by[0]];
    }
    if (contacts.replayed) dbg.counts["reserve.replayed"] = 1;
  }
  const auto t_reserve = Clock::now();

  for (size_t k : served) {
    const Scored& c = allowed[k];
    const Item& it = ds.items[c.item];
    ResponseItem r;
    r.item_id = it.id;
    r.kind = ItemKindName(it.kind);
    r.score = c.score;
    for (int32_t x = c.reasons; x >= 0; x = reasons[x].next) r.reasons.push_back(reason_text(reasons[x]));
    if (explored[k]) r.reasons.push_back("explore");
    char buf[64];
    std::snprintf(buf, sizeof buf, "rank:p_click=%.4f", c.pc);
    r.reasons.push_back(buf);
    std::snprintf(buf, sizeof buf, "rank:p_convert=%.4f", c.pv);
    r.reasons.push_back(buf);
    resp->items.push_back(std::move(r));
  }
  dbg.counts["served"] = static_cast<int64_t>(resp->items.size());
  dbg.stage_us["tower"] = Us(t_tower, t_tower_end);
  dbg.stage_us["ann"] = ann_us;
  dbg.stage_us["model"] = model_us;
  dbg.stage_us["recall"] = Us(t0, t_recall);
  dbg.stage_us["filter"] = Us(t_recall, t_filter);
  dbg.stage_us["rank"] = Us(t_filter, t_rank);
  dbg.stage_us["rerank"] = Us(t_rank, t_rerank);
  dbg.stage_us["reserve"] = Us(t_rerank, t_reserve);
  if (!req.debug) {
    dbg.counts.clear();
    dbg.dropped.clear();
  }
  resp->took_us = Us(t0, Clock::now());
  return Status::Ok();
}

Result<std::vector<ItemScore>> Engine::Score(const std::string& customer_id, const std::string& channel_name,
                                             const std::vector<std::string>& item_ids, TimeMs now_ms) {
  Impl& im = *impl_;
  std::shared_lock<WriterFirstMutex> lock(im.mu);
  auto ch = im.ds.channels.Find(channel_name);
  if (!ch) return Status::InvalidArgument("unknown channel '" + channel_name + "'");
  const TimeMs now = now_ms == kNoTime ? NowMs() : now_ms;
  std::shared_ptr<Model> m = im.model;
  const Model& md = *m;
  const int d = md.dim;
  auto found = im.ds.FindCustomer(customer_id);
  Customer unknown;
  if (!found) {
    unknown.id = customer_id;
    unknown.risk = 1;
    unknown.risk_assessed = now;
  }
  const Customer& cu = found ? im.ds.customers[*found] : unknown;
  std::vector<Ev> recent;
  std::vector<uint32_t> history;
  const TimeMs window = static_cast<TimeMs>(im.opt.serving.history_window_days) * kMsPerDay;
  features::CustomerBatch cb;
  if (found) {
    im.RecentEvents(*found, kNoTime + 1, now, &recent);
    for (auto it = recent.rbegin(); it != recent.rend() && static_cast<int>(history.size()) < md.space->history_length(); ++it) {
      if (IsPositive(it->type) && std::find(history.begin(), history.end(), it->item) == history.end()) history.push_back(it->item);
    }
    md.space->EncodeCustomer(im.ds, *found, now, history, &cb);
  } else {
    md.space->EncodeUnknownCustomer(&cb);
  }
  std::vector<float> u(d);
  QM_RETURN_IF_ERROR(md.towers->EncodeCustomers(cb, u.data()));
  std::vector<ItemScore> out(item_ids.size());
  std::vector<uint32_t> items;
  std::vector<size_t> slot;
  for (size_t k = 0; k < item_ids.size(); ++k) {
    out[k].item_id = item_ids[k];
    auto it = im.ds.FindItem(item_ids[k]);
    if (!it || im.retired[*it]) {
      out[k].blocked_by.push_back("not_found");
      continue;
    }
    items.push_back(*it);
    slot.push_back(k);
  }
  if (items.empty()) return out;
  std::vector<policy::Candidate> pc;
  for (uint32_t it : items) pc.push_back(im.Cand(it));
  QM_ASSIGN_OR_RETURN(auto decisions, im.policy->Check(im.store.get(), cu, pc, *ch, now));
  std::vector<uint32_t> rows;
  for (uint32_t it : items) rows.push_back(md.item_enc[it]);
  features::ItemBatch ib;
  GatherForRank(md.enc, rows.data(), static_cast<int64_t>(rows.size()), &ib);
  std::vector<features::ContactEvent> contact;
  for (const Ev& x : recent) {
    if (x.ts >= now - window) contact.push_back({x.ts, x.item, im.ds.items[x.item].category, x.channel, x.type});
  }
  rank::RankContext ctx{*ch, im.tz.LocalHour(now), im.tz.LocalWeekday(now)};
  rank::RankInputs in;
  float cf[features::kContactFeatures];
  std::vector<float> zero(d, 0.0f);
  const features::ContactSummary summary(contact, *ch, now);
  for (size_t k = 0; k < items.size(); ++k) {
    const float* v = md.item_row[items[k]] >= 0 ? md.Embedding(items[k]) : zero.data();
    summary.Features(items[k], im.ds.items[items[k]].category, cf);
    md.builder->Append(cb, 0, ib, static_cast<int64_t>(k), u.data(), v, ctx, cf, &in);
  }
  std::vector<float> p_click(items.size()), p_convert(items.size());
  QM_RETURN_IF_ERROR(md.ranker->Score(in, p_click.data(), p_convert.data()));
  for (size_t k = 0; k < items.size(); ++k) {
    ItemScore& s = out[slot[k]];
    s.p_click = p_click[k];
    s.p_convert = p_convert[k];
    s.blocked_by = decisions[k].blocked_by;
    s.eligible = s.blocked_by.empty();
  }
  return out;
}

Result<FeedbackResult> Engine::Feedback(const std::vector<FeedbackEvent>& events) {
  Impl& im = *impl_;
  FeedbackResult result;
  std::vector<policy::StoredEvent> stored;
  struct Mem {
    int64_t customer;  // -1: not a known customer (stored only)
    Ev ev;
  };
  std::vector<Mem> mem;
  {
    std::shared_lock<WriterFirstMutex> lock(im.mu);
    for (size_t k = 0; k < events.size(); ++k) {
      const FeedbackEvent& e = events[k];
      auto reject = [&](const char* code, std::string msg) { result.rejected.push_back({k, code, std::move(msg)}); };
      auto type = ParseEventType(e.type);
      if (!type) { reject("bad_request", "unknown event type '" + e.type + "'"); continue; }
      auto ch = im.ds.channels.Find(e.channel);
      if (!ch) { reject("bad_request", "unknown channel '" + e.channel + "'"); continue; }
      if (e.customer_id.empty()) { reject("bad_request", "customer_id is required"); continue; }
      if (e.ts_ms <= 0) { reject("bad_request", "ts_ms must be a positive epoch time in ms"); continue; }
      auto item = im.ds.FindItem(e.item_id);
      if (!item) { reject("not_found", "unknown item '" + e.item_id + "'"); continue; }
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
  {
    std::unique_lock<WriterFirstMutex> lock(im.mu);
    for (const Mem& x : mem) {
      if (IsPositive(x.ev.type)) ++im.positives[x.ev.item];
      if (x.customer < 0) continue;
      auto& list = im.overlay[static_cast<uint32_t>(x.customer)];
      list.push_back(x.ev);
      if (list.size() > 1 && list[list.size() - 2].ts > x.ev.ts) {
        std::stable_sort(list.begin(), list.end(), [](const Ev& a, const Ev& b) { return a.ts < b.ts; });
      }
      if (x.ev.type == EventType::kConvert && im.ds.items[x.ev.item].kind == ItemKind::kProduct) {
        auto& h = im.ds.customers[x.customer].holdings;
        auto pos = std::lower_bound(h.begin(), h.end(), x.ev.item);
        if (pos == h.end() || *pos != x.ev.item) h.insert(pos, x.ev.item);
      }
    }
  }
  result.accepted = static_cast<int64_t>(stored.size());
  return result;
}

Result<int64_t> Engine::UpsertItems(const std::vector<Record>& records) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> writer(im.writer_mu);
  std::unique_lock<WriterFirstMutex> lock(im.mu);
  // Parse everything first: a bad record changes nothing.
  std::vector<Item> items(records.size());
  for (size_t k = 0; k < records.size(); ++k) {
    QM_RETURN_IF_ERROR(ParseItemRecord(records[k], im.tz, &im.ds, &items[k]).Annotate("items[" + std::to_string(k) + "]"));
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
      im.positives.push_back(0);
      im.any_order.push_back(idx);
    }
    im.retired[idx] = 0;
    changed.push_back(idx);
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  QM_RETURN_IF_ERROR(im.model->Refresh(im.ds, changed, im.retired));
  im.IndexCampaigns();
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
  QM_RETURN_IF_ERROR(im.model->Refresh(im.ds, gone, im.retired));
  im.IndexCampaigns();
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
      im.ev_begin.push_back(im.ev_begin.back());  // no events.csv history
    }
    SetCustomerFeatures(&im.ds, idx, values[k]);
  }
  return static_cast<int64_t>(cs.size());
}

Result<std::string> Engine::Reload(const std::string& version) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> writer(im.writer_mu);
  std::string v = version;
  if (v.empty()) {
    QM_ASSIGN_OR_RETURN(v, artifacts::ReadCurrent(im.opt.artifacts_root));
  }
  // Writers are held off by writer_mu, so the catalogue is stable while the version loads;
  // requests keep running on the old model until the swap below.
  auto loaded = LoadModel(im.opt.artifacts_root, v, im.ds, im.retired, im.opt.serving);
  if (!loaded.ok()) return loaded.status().Annotate("version " + v + " refused; still serving " + model_version());
  std::shared_ptr<Model> old;
  {
    std::unique_lock<WriterFirstMutex> lock(im.mu);
    old = std::move(im.model);
    im.model = std::move(loaded).value();
  }
  return v;  // `old` is freed here, after the swap, outside the lock
}

void Engine::WithDataset(const std::function<void(const Dataset&)>& fn) const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  fn(impl_->ds);
}

Status Engine::Push(const PushRequest& req, std::vector<PushChoice>* choices) {
  Impl& im = *impl_;
  const size_t nreq = req.customer_ids.size();
  choices->assign(nreq, PushChoice());
  if (req.per_customer < 1 || req.per_customer > 10) return Status::InvalidArgument("per_customer must be in 1..10");
  if (!req.dry_run && req.run_id.empty()) return Status::InvalidArgument("a push run needs a run id");
  thread_local bool single_threaded = false;  // torch and Faiss (OpenMP) run one thread per caller
  if (!single_threaded) {
    recall::SetTorchThreads(1);
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    single_threaded = true;
  }
  std::shared_lock<WriterFirstMutex> lock(im.mu);
  const Dataset& ds = im.ds;
  auto ch_opt = ds.channels.Find(req.channel);
  if (!ch_opt) return Status::InvalidArgument("unknown channel '" + req.channel + "'");
  const ChannelId channel = *ch_opt;
  const TimeMs now = req.now_ms == kNoTime ? NowMs() : req.now_ms;
  const ServingConfig& sc = im.opt.serving;
  std::shared_ptr<Model> m = im.model;
  const Model& md = *m;
  const int d = md.dim;
  const TimeMs window = static_cast<TimeMs>(sc.history_window_days) * kMsPerDay;

  // Profiles: known customers, their recent events (contact features) and positives (tower).
  std::vector<size_t> slot;          // batch row -> request index
  std::vector<uint32_t> cust;        // batch row -> customer index
  for (size_t i = 0; i < nreq; ++i) {
    auto f = ds.FindCustomer(req.customer_ids[i]);
    if (!f) {
      (*choices)[i].known = false;
      (*choices)[i].skipped_by = "unknown_customer";
      continue;
    }
    slot.push_back(i);
    cust.push_back(*f);
  }
  const size_t n = cust.size();
  if (n == 0) return Status::Ok();
  features::CustomerBatch cb;
  std::vector<std::vector<features::ContactEvent>> contact(n);
  std::vector<std::vector<uint32_t>> clicked(n);  // content clicked/opened within the horizon, sorted
  {
    std::vector<Ev> recent;
    std::vector<uint32_t> history;
    for (size_t r = 0; r < n; ++r) {
      im.CustomerActivity(cust[r], now, window, md.space->history_length(), &recent, &history, &clicked[r]);
      for (const Ev& x : recent) {
        if (x.ts >= now - window) contact[r].push_back({x.ts, x.item, ds.items[x.item].category, x.channel, x.type});
      }
      md.space->EncodeCustomer(ds, cust[r], now, history, &cb);
    }
  }
  std::vector<float> u(n * d);
  QM_RETURN_IF_ERROR(md.towers->EncodeCustomers(cb, u.data()));

  // Recall: one batched Faiss search over content, then popular content of the segment/channel.
  const int k_ann = std::max(0, sc.push_ann);
  std::vector<int64_t> labels(n * static_cast<size_t>(k_ann), -1);
  if (k_ann > 0 && md.index[1]->size() > 0) {
    std::shared_ptr<const ExactTopK> exact;
    if (md.index[1]->size() <= sc.push_exact_max_items) {
      std::lock_guard<std::mutex> push_lock(md.push_mu);
      if (!md.push_content) {
        std::vector<float> rows;
        std::vector<int64_t> row_ids;
        for (size_t r = 0; r < md.row_item.size(); ++r) {
          const int32_t it = md.row_item[r];
          if (it < 0 || im.retired[it] || ds.items[it].kind != ItemKind::kContent) continue;
          rows.insert(rows.end(), md.emb.begin() + r * d, md.emb.begin() + (r + 1) * d);
          row_ids.push_back(static_cast<int64_t>(r));
        }
        md.push_content = std::make_shared<const ExactTopK>(std::move(rows), std::move(row_ids), d);
      }
      exact = md.push_content;
    }
    if (exact) {
      exact->Search(u.data(), static_cast<int64_t>(n), k_ann, labels.data());
    } else {
      std::vector<float> scores(labels.size());
      QM_RETURN_IF_ERROR(md.index[1]->Search(u.data(), static_cast<int64_t>(n), k_ann, labels.data(), scores.data()));
    }
  }
  struct Cand {
    uint32_t item;
    bool ann;
    double uv = 0, score = 0;
    float pc = 0, pv = 0;
  };
  std::vector<std::vector<Cand>> cands(n);
  std::vector<std::map<std::string, int64_t>> drops(n);  // first blocking rule -> candidates
  rank::RankInputs in;
  features::ItemBatch ib;
  std::vector<uint32_t> enc_rows;
  std::vector<std::pair<uint32_t, uint32_t>> row_of;  // ranker row -> (batch row, candidate)
  std::vector<std::string> blocked;
  std::vector<uint32_t> seen;
  for (size_t r = 0; r < n; ++r) {
    const Customer& cu = ds.customers[cust[r]];
    seen.clear();
    auto consider = [&](uint32_t it, bool ann) {
      if (it >= ds.items.size() || im.retired[it] || ds.items[it].kind != ItemKind::kContent) return;
      if (ds.items[it].service && !req.include_service) return;
      if (std::find(seen.begin(), seen.end(), it) != seen.end()) return;
      seen.push_back(it);
      ++(*choices)[slot[r]].candidates;
      blocked.clear();
      im.policy->StaticCheck(cu, im.Cand(it), channel, now, &blocked);
      if (blocked.empty() && std::binary_search(clicked[r].begin(), clicked[r].end(), it)) {
        blocked.push_back(policy::blocked::kClicked);
      }
      if (!blocked.empty()) {
        ++drops[r][blocked[0]];
        return;
      }
      cands[r].push_back(Cand{it, ann});
    };
    for (int j = 0; j < k_ann; ++j) {
      const int64_t row = labels[r * k_ann + j];
      if (row < 0 || row >= static_cast<int64_t>(md.row_item.size()) || md.row_item[row] < 0) continue;
      consider(static_cast<uint32_t>(md.row_item[row]), true);
    }
    int taken = 0;
    for (const auto* list : {&im.popular_segment[static_cast<size_t>(channel) * kNumTiers + static_cast<int>(cu.tier)],
                             &im.popular_channel[channel]}) {
      for (size_t k = 0; k < list->size() && taken < sc.push_popular; ++k) {
        if (ds.items[(*list)[k]].kind != ItemKind::kContent) continue;
        ++taken;
        consider((*list)[k], false);
      }
    }
    for (uint32_t k = 0; k < cands[r].size(); ++k) {
      enc_rows.push_back(md.item_enc[cands[r][k].item]);
      row_of.emplace_back(static_cast<uint32_t>(r), k);
    }
  }

  // Rank: every candidate of every customer in one ranker call.
  const size_t rows = row_of.size();
  if (rows > 0) {
    GatherForRank(md.enc, enc_rows.data(), static_cast<int64_t>(rows), &ib);
    const rank::RankContext ctx{channel, im.tz.LocalHour(now), im.tz.LocalWeekday(now)};
    float cf[features::kContactFeatures];
    std::vector<float> zero(d, 0.0f);
    std::vector<features::ContactSummary> summary;
    summary.reserve(contact.size());
    for (const auto& events : contact) summary.emplace_back(events, channel, now);
    for (size_t q = 0; q < rows; ++q) {
      auto [r, k] = row_of[q];
      Cand& c = cands[r][k];
      const float* v = md.item_row[c.item] >= 0 ? md.Embedding(c.item) : zero.data();
      const float* ur = u.data() + r * d;
      c.uv = features::Dot(ur, v, d);
      summary[r].Features(c.item, ds.items[c.item].category, cf);
      md.builder->Append(cb, static_cast<int64_t>(r), ib, static_cast<int64_t>(q), ur, v, static_cast<float>(c.uv), ctx,
                         cf, &in);
    }
    std::vector<float> pc(rows), pv(rows);
    QM_RETURN_IF_ERROR(md.ranker->Score(in, pc.data(), pv.data()));
    for (size_t q = 0; q < rows; ++q) {
      auto [r, k] = row_of[q];
      Cand& c = cands[r][k];
      const Item& item = ds.items[c.item];
      c.pc = pc[q];
      c.pv = pv[q];
      const double obj = sc.w_click * pc[q] + sc.w_convert * pv[q] * item.value * item.boost;
      c.score = std::log(obj + 1e-9) + md.retrieval_weight * c.uv * md.inv_temperature;
    }
  }

  // Rules with state (caps, cooldown, dismissed, clicked) and the reservation: the contact
  // pressure before the run and the candidate lists per customer, then one reservation call for
  // the whole batch (one durable store write), each customer's check-and-count still atomic.
  std::vector<std::vector<policy::Candidate>> pcands(n);
  std::vector<std::vector<policy::Decision>> decided(n);
  std::vector<const Customer*> who(n);
  for (size_t r = 0; r < n; ++r) {
    PushChoice& out = (*choices)[slot[r]];
    const Customer& cu = ds.customers[cust[r]];
    who[r] = &cu;
    auto& cs = cands[r];
    std::stable_sort(cs.begin(), cs.end(), [](const Cand& a, const Cand& b) {
      return a.score > b.score || (a.score == b.score && a.item < b.item);
    });
    QM_ASSIGN_OR_RETURN(policy::CustomerState state, im.store->State(cu.id));
    for (const policy::ContactRecord& rec : state.records) {
      if (rec.type != EventType::kPushSent || rec.channel != req.channel) continue;
      if (!req.run_id.empty() && rec.request_id == req.run_id) continue;
      if (rec.ts > now - 30 * kMsPerDay && rec.ts <= now) ++out.pushes_30d;
      if (rec.ts > now - 7 * kMsPerDay && rec.ts <= now) ++out.pushes_7d;
    }
    for (const Cand& c : cs) pcands[r].push_back(im.Cand(c.item));
    if (req.dry_run) {
      decided[r] = im.policy->Evaluate(cu, pcands[r], channel, now, state);
      int left = req.per_customer;
      for (auto& dcs : decided[r]) {
        dcs.taken = left > 0 && dcs.blocked_by.empty();
        left -= dcs.taken;
      }
    }
  }
  std::vector<policy::Contacts> reserved;
  if (!req.dry_run) {
    QM_ASSIGN_OR_RETURN(reserved, im.policy->ReserveMany(im.store.get(), who, pcands, channel, now, req.run_id,
                                                         req.per_customer));
  }
  for (size_t r = 0; r < n; ++r) {
    PushChoice& out = (*choices)[slot[r]];
    const Customer& cu = *who[r];
    auto& cs = cands[r];
    std::vector<policy::Decision>& decisions = decided[r];
    if (!req.dry_run) {
      policy::Contacts& contacts = reserved[r];
      out.replayed = contacts.replayed;
      decisions = std::move(contacts.decisions);
      if (contacts.replayed) {
        // The earlier sends of this run, as the store recorded them (items and send times).
        QM_ASSIGN_OR_RETURN(policy::CustomerState after, im.store->State(cu.id));
        for (const policy::ContactRecord& rec : after.records) {
          if (rec.request_id != req.run_id || rec.channel != req.channel || rec.type != EventType::kPushSent) continue;
          ResponseItem ri;
          ri.item_id = rec.item;
          ri.kind = "content";
          for (const Cand& c : cs) {  // reasons as the first run wrote them, when still a candidate
            if (ds.items[c.item].id != rec.item) continue;
            ri.score = c.score;
            ri.reasons.push_back(c.ann ? "recall:ann" : "recall:popular");
            char buf[64];
            std::snprintf(buf, sizeof buf, "rank:p_click=%.4f", c.pc);
            ri.reasons.push_back(buf);
            if (rec.ts > now) ri.reasons.push_back("scheduled:quiet_hours");
            if (ds.items[c.item].service) ri.reasons.push_back("exempt:service");
          }
          if (ri.reasons.empty()) ri.reasons.push_back("replayed:" + req.run_id);
          out.items.push_back(std::move(ri));
          out.send_at.push_back(rec.ts);
        }
        continue;
      }
    }
    for (size_t k = 0; k < cs.size(); ++k) {
      const policy::Decision& dc = decisions[k];
      if (!dc.blocked_by.empty()) ++drops[r][dc.blocked_by[0]];
      if (!dc.taken) continue;
      const Cand& c = cs[k];
      ResponseItem ri;
      ri.item_id = ds.items[c.item].id;
      ri.kind = "content";
      ri.score = c.score;
      ri.reasons.push_back(c.ann ? "recall:ann" : "recall:popular");
      char buf[64];
      std::snprintf(buf, sizeof buf, "rank:p_click=%.4f", c.pc);
      ri.reasons.push_back(buf);
      if (dc.send_at != kNoTime && dc.send_at > now) ri.reasons.push_back("scheduled:quiet_hours");
      if (ds.items[c.item].service) ri.reasons.push_back("exempt:service");
      out.items.push_back(std::move(ri));
      out.send_at.push_back(dc.send_at == kNoTime ? now : dc.send_at);
    }
    if (out.items.empty()) {
      out.skipped_by = "no_candidates";
      int64_t best = 0;
      for (const auto& [rule, count] : drops[r]) {
        if (count > best) {
          best = count;
          out.skipped_by = rule;
        }
      }
    }
  }
  return Status::Ok();
}

Result<policy::CustomerHistory> Engine::History(const std::string& customer_id, TimeMs since, size_t limit,
                                                TimeMs now_ms) {
  return impl_->policy->History(impl_->store.get(), customer_id, since, limit, now_ms == kNoTime ? NowMs() : now_ms);
}

}  // namespace qm::serving
