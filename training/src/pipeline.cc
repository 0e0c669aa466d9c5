#include "qianmian/training/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "qianmian/artifacts/bundle.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/blas_threads.h"
#include "qianmian/core/file.h"
#include "qianmian/core/prefetch.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"
#include "qianmian/metrics/held_out.h"
#include "qianmian/metrics/metrics.h"
#include "qianmian/policy/policy.h"
#include "qianmian/rank/two_stage_score.h"
#include "qianmian/training/baselines.h"
#include "qianmian/training/exposure_sample.h"
#include "qianmian/training/portraits.h"
#include "qianmian/training/split.h"
#include "qianmian/training/store_events.h"
#include "rank_rows_writer.h"
#include "served_eval.h"

namespace qm::training {

namespace fs = std::filesystem;
using features::CustomerBatch;
using features::FeatureSpace;
using features::ItemBatch;
using metrics::Auc;
using metrics::CatalogueCoverage;
using metrics::EvalTargets;
using metrics::GroupAuc;
using metrics::IndexSpan;
using metrics::kNoIndex;
using metrics::LogLoss;
using metrics::RankingMetrics;

std::string EvalReport::Format() const {
  std::string out;
  char line[160];
  if (!note.empty()) out += "note: " + note + "\n";
  std::snprintf(line, sizeof line, "evaluated customers: %lld\n", static_cast<long long>(customers));
  out += line;
  // Table of <system> x <metric@K>.
  // "served" is the headline: the pages the engine serves. The rows below it are diagnostics
  // (two_stage: the ranker's order of the filtered candidates, retrieval alone) and references.
  std::vector<std::string> systems = {"served",    "oracle", "history_oracle", "attribute_oracle", "two_stage",
                                      "retrieval", "ease",   "item_knn",       "popularity"};
  std::vector<std::string> cols = {"recall@10", "recall@20", "recall@50",  "ndcg@10",
                                   "ndcg@20",   "ndcg@50",   "coverage@20"};
  std::snprintf(line, sizeof line, "%-16s", "system");
  out += line;
  for (const auto& c : cols) {
    std::snprintf(line, sizeof line, " %11s", c.c_str());
    out += line;
  }
  out += "\n";
  for (const auto& s : systems) {
    bool any = false;
    for (const auto& c : cols) any |= metrics.count(s + "." + c) > 0;
    if (!any) continue;
    std::snprintf(line, sizeof line, "%-16s", s.c_str());
    out += line;
    for (const auto& c : cols) {
      auto it = metrics.find(s + "." + c);
      if (it == metrics.end())
        std::snprintf(line, sizeof line, " %11s", "-");
      else
        std::snprintf(line, sizeof line, " %11.4f", it->second);
      out += line;
    }
    out += "\n";
  }
  if (metrics.count("value.served.clicks")) {
    std::snprintf(line, sizeof line, "online value per page of 10 items (planted response model, %.0f customers):\n",
                  metrics.at("value.customers"));
    out += line;
    std::snprintf(line, sizeof line, "  %-20s %14s %16s\n", "page", "clicks", "converted value");
    out += line;
    for (const char* p : {"served", "oracle", "value_oracle", "attribute_oracle", "logging", "segment_targeting",
                          "popularity", "random"}) {
      const std::string k = std::string("value.") + p;
      if (!metrics.count(k + ".clicks")) continue;
      std::snprintf(line, sizeof line, "  %-20s %14.4f %16.4f\n", p, metrics.at(k + ".clicks"),
                    metrics.at(k + ".converted_value"));
      out += line;
    }
  }
  for (const char* k :
       {"value.served.share_of_attribute_oracle", "value.served.share_of_oracle", "value.served.vs_segment_targeting",
        "value.served.share_of_value_oracle", "ranker.auc", "ranker.gauc", "ranker.logloss", "ranker.convert_auc",
        "ranker.rows", "two_stage.candidate_recall", "two_stage.share_of_oracle@20",
        "two_stage.share_of_history_oracle@20", "two_stage.share_of_attribute_oracle@20",
        "two_stage.vs_popularity@20"}) {
    auto it = metrics.find(k);
    if (it == metrics.end()) continue;
    std::snprintf(line, sizeof line, "%-40s %.4f\n", k, it->second);
    out += line;
  }
  return out;
}

namespace {

// libtorch intra-op threads. Default 1: on this project's 2-core machines the models' small
// operations run faster single-threaded, and the second core prepares the next batch
// (measured: docs/BENCHMARKS.md).
int Threads(const TrainConfig& c) { return c.threads > 0 ? c.threads : 1; }

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The held-out split of a dataset and each customer's evaluation time (the start of their
// held-out period).
struct HeldOut {
  Split split;
  TimeMs holdout_start = kNoTime;     // time split only
  std::vector<TimeMs> customer_time;  // per customer: first held-out time (or holdout_start)
};

// A generated bank's truth/oracle.json names the held-out period its oracle used; the time
// split follows it (unless holdout_days is set) so both measure the same period.
TimeMs TruthHoldoutStart(const std::string& data_dir) {
  std::ifstream in(fs::path(data_dir) / "truth" / "oracle.json");
  if (!in) return kNoTime;
  try {
    auto j = nlohmann::json::parse(in);
    return j.at("holdout_start_ms").get<TimeMs>();
  } catch (const std::exception&) {
    return kNoTime;
  }
}

Result<HeldOut> MakeSplit(const Dataset& ds, const TrainConfig& c, const TimeZone& tz, TimeMs truth_holdout_start) {
  HeldOut h;
  const EventLog& ev = ds.events;
  if (ev.size() == 0) return Status::InvalidArgument("events.csv holds no events: nothing to train on");
  if (c.split == "time") {
    int days = c.holdout_days;
    if (days == 0) {
      TimeMs lo = *std::min_element(ev.ts.begin(), ev.ts.end());
      TimeMs hi = *std::max_element(ev.ts.begin(), ev.ts.end());
      const int span_days = static_cast<int>((hi - lo + kMsPerDay - 1) / kMsPerDay);
      days = static_cast<int>(metrics::HoldoutDays(span_days));
    }
    QM_ASSIGN_OR_RETURN(h.holdout_start, HoldoutStartForLastDays(ev, days, tz));
    if (truth_holdout_start != kNoTime && c.holdout_days == 0) h.holdout_start = truth_holdout_start;
    h.split = TimeSplit(ev, h.holdout_start);
    h.customer_time.assign(ds.customers.size(), h.holdout_start);
  } else {
    if (c.split == "customers") {
      QM_ASSIGN_OR_RETURN(h.split, CustomerHoldoutSplit(ev, c.holdout_fraction, c.seed));
    } else {
      QM_ASSIGN_OR_RETURN(h.split, PerCustomerTimeSplit(ev, c.holdout_fraction));
    }
    h.customer_time.assign(ds.customers.size(), std::numeric_limits<TimeMs>::max());
    for (size_t e = 0; e < ev.size(); ++e) {
      if (h.split.held_out[e]) h.customer_time[ev.customer[e]] = std::min(h.customer_time[ev.customer[e]], ev.ts[e]);
    }
  }
  if (h.split.num_train == 0)
    return Status::InvalidArgument("every event falls in the held-out period: nothing to train on");
  return h;
}

// Events grouped by customer, each group in time order (stable).
struct ByCustomer {
  std::vector<uint64_t> begin;  // customers + 1
  std::vector<uint32_t> event;  // event indexes
  ByCustomer(const EventLog& ev, size_t customers) : begin(customers + 1, 0), event(ev.size()) {
    for (size_t e = 0; e < ev.size(); ++e) ++begin[ev.customer[e] + 1];
    for (size_t c = 0; c < customers; ++c) begin[c + 1] += begin[c];
    std::vector<uint64_t> pos(begin.begin(), begin.end() - 1);
    for (size_t e = 0; e < ev.size(); ++e) event[pos[ev.customer[e]]++] = static_cast<uint32_t>(e);
    for (size_t c = 0; c < customers; ++c) {
      std::stable_sort(event.begin() + begin[c], event.begin() + begin[c + 1],
                       [&](uint32_t a, uint32_t b) { return ev.ts[a] < ev.ts[b]; });
    }
  }
};

bool IsExposure(EventType t) { return t == EventType::kImpression || t == EventType::kPushSent; }

// One ranker training / evaluation row.
struct RankRow {
  uint32_t customer;
  uint32_t item;
  TimeMs ts;
  ChannelId channel;
  uint8_t click;
  uint8_t convert;
  float weight;
  float contact[features::kContactFeatures];
};

// Builds ranker rows from exposures (impressions, push sends) whose held-out flag equals
// `held_out`; labels from what followed. Logs without exposures (e.g. MovieLens, clicks only)
// get each positive as a clicked row plus `implicit_negatives` random unclicked items.
std::vector<RankRow> BuildRankRows(const Dataset& ds, const ByCustomer& by, const Split& split, bool held_out,
                                   const TrainConfig& c, double keep, size_t max_rows, uint64_t seed) {
  const EventLog& ev = ds.events;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unif(0, 1);
  bool any_exposure = false;
  for (auto t : ev.type)
    if (IsExposure(t)) {
      any_exposure = true;
      break;
    }
  std::vector<RankRow> rows;
  std::vector<features::ContactEvent> recent;
  const size_t customers = by.begin.size() - 1;
  for (size_t cu = 0; cu < customers && rows.size() < max_rows; ++cu) {
    const uint64_t b = by.begin[cu], e = by.begin[cu + 1];
    recent.clear();
    size_t window_start = 0;
    for (uint64_t p = b; p < e; ++p) {
      const uint32_t i = by.event[p];
      const EventType type = ev.type[i];
      const bool in_part = (split.held_out[i] != 0) == held_out;
      // Drop contact history older than 30 days (amortised).
      while (window_start < recent.size() && recent[window_start].ts < ev.ts[i] - 30 * kMsPerDay) ++window_start;
      if (window_start > 256) {
        recent.erase(recent.begin(), recent.begin() + window_start);
        window_start = 0;
      }
      auto emit = [&](uint32_t item, uint8_t click, uint8_t convert, float weight) {
        RankRow r{};
        r.customer = static_cast<uint32_t>(cu);
        r.item = item;
        r.ts = ev.ts[i];
        r.channel = ev.channel[i];
        r.click = click;
        r.convert = convert;
        r.weight = weight;
        features::ContactFeatures(recent.data() + window_start, recent.size() - window_start, item,
                                  ds.items[item].category, ev.channel[i], ev.ts[i], r.contact);
        rows.push_back(r);
      };
      if (in_part && any_exposure && IsExposure(type)) {
        uint8_t click = 0, convert = 0;
        const EventType want = type == EventType::kPushSent ? EventType::kPushOpen : EventType::kClick;
        for (uint64_t q = p + 1; q < e; ++q) {
          const uint32_t j = by.event[q];
          if (ev.ts[j] - ev.ts[i] > std::max(c.click_window, c.convert_window)) break;
          if (ev.item[j] != ev.item[i]) continue;
          if (ev.type[j] == want && ev.ts[j] - ev.ts[i] <= c.click_window) click = 1;
          if (ev.type[j] == EventType::kConvert && ev.ts[j] - ev.ts[i] <= c.convert_window) convert = 1;
        }
        if (click || convert)
          emit(ev.item[i], click, convert, 1.0f);
        else if (unif(rng) < keep)
          emit(ev.item[i], 0, 0, static_cast<float>(1.0 / keep));
      } else if (in_part && !any_exposure && IsPositive(type)) {
        emit(ev.item[i], 1, type == EventType::kConvert, 1.0f);
        for (int k = 0; k < 4; ++k) emit(static_cast<uint32_t>(rng() % ds.items.size()), 0, 0, 1.0f);
      }
      recent.push_back({ev.ts[i], ev.item[i], ds.items[ev.item[i]].category, ev.channel[i], type});
    }
  }
  return rows;
}

// Everything one version holds, in memory.
struct Bundle {
  std::unique_ptr<FeatureSpace> space;
  std::unique_ptr<recall::TwoTowerModel> towers;
  std::vector<float> item_emb;  // items x dim
  std::unique_ptr<recall::VectorIndex> products, contents;
  recall::NeighbourTable neighbours;  // item-to-item lists for serving
  std::unique_ptr<rank::RankInputBuilder> builder;
  std::unique_ptr<rank::Ranker> ranker;
  ItemBatch all_items;
  // Where the past (logging) policy exposed items: a second two-tower trained on exposures.
  std::unique_ptr<recall::TwoTowerModel> exposure;
  std::vector<float> exposure_item_emb;  // items x exposure dim
  bool ranker_on_exposures = false;      // the ranker learned from logged exposures (P(click | shown))
  artifacts::BundleSettings settings;    // resolved by ResolveSettings, or read from the version
};

// The version's settings, resolved once from the configuration and the trained models: what
// evaluation scores with and what the bundle records for serving.
artifacts::BundleSettings ResolveSettings(const TrainConfig& c, const Bundle& b) {
  artifacts::BundleSettings s;
  s.embedding_dim = b.towers->dim();
  s.temperature = c.two_tower.temperature;
  s.exposure_model = b.exposure != nullptr;
  s.exposure_temperature = b.exposure ? c.exposure_tower.temperature : 0.0f;
  s.exposure_weight = c.exposure_weight;
  s.exposure_per_valid_day = c.exposure_per_valid_day;
  s.retrieval_weight = artifacts::ResolveRetrievalWeight(c.retrieval_weight, s.exposure_model);
  s.retrieval_weight_without_exposure =
      artifacts::ResolveServedRetrievalWeight(c.retrieval_weight, b.ranker_on_exposures);
  s.neighbours = c.neighbours;
  return s;
}

Status EncodeAllItems(const Dataset& ds, Bundle* b) {
  std::vector<uint32_t> all(ds.items.size());
  std::iota(all.begin(), all.end(), 0u);
  b->all_items.Clear();
  b->space->EncodeItems(ds, all.data(), static_cast<int64_t>(all.size()), &b->all_items);
  for (auto [model, emb] :
       {std::pair{b->towers.get(), &b->item_emb}, std::pair{b->exposure.get(), &b->exposure_item_emb}}) {
    if (model == nullptr) continue;
    const int d = model->dim();
    emb->assign(ds.items.size() * d, 0.0f);
    ItemBatch batch;
    for (size_t lo = 0; lo < all.size(); lo += 4096) {
      size_t n = std::min<size_t>(4096, all.size() - lo);
      features::GatherItems(b->all_items, all.data() + lo, static_cast<int64_t>(n), &batch);
      QM_RETURN_IF_ERROR(model->EncodeItems(batch, emb->data() + lo * d));
    }
  }
  return Status::Ok();
}

// Customer embeddings for rows (customer, time) in one batch.
Status EncodeCustomersAt(const Dataset& ds, const Bundle& b, const features::HistoryIndex& hist,
                         const uint32_t* customers, const TimeMs* times, size_t n, CustomerBatch* cb,
                         std::vector<float>* u) {
  cb->Clear();
  std::vector<uint32_t> recent;
  for (size_t k = 0; k < n; ++k) {
    hist.Before(customers[k], times[k], b.space->history_length(), &recent);
    b.space->EncodeCustomer(ds, customers[k], times[k], recent, cb);
  }
  u->resize(n * b.towers->dim());
  return b.towers->EncodeCustomers(*cb, u->data());
}

// Fills a RankBatch from rows [lo, hi).
Status MakeRankBatch(const Dataset& ds, const Bundle& b, const features::HistoryIndex& hist, const TimeZone& tz,
                     const std::vector<RankRow>& rows, const std::vector<size_t>& order, size_t lo, size_t hi,
                     rank::RankBatch* out) {
  const size_t n = hi - lo;
  std::vector<uint32_t> cust(n), items(n);
  std::vector<TimeMs> times(n);
  for (size_t k = 0; k < n; ++k) {
    const RankRow& r = rows[order[lo + k]];
    cust[k] = r.customer;
    items[k] = r.item;
    times[k] = r.ts;
  }
  CustomerBatch cb;
  std::vector<float> u;
  QM_RETURN_IF_ERROR(EncodeCustomersAt(ds, b, hist, cust.data(), times.data(), n, &cb, &u));
  ItemBatch ib;
  features::GatherItems(b.all_items, items.data(), static_cast<int64_t>(n), &ib);
  const int d = b.towers->dim();
  for (size_t k = 0; k < n; ++k) {
    const RankRow& r = rows[order[lo + k]];
    rank::RankContext ctx{r.channel, tz.LocalHour(r.ts), tz.LocalWeekday(r.ts)};
    b.builder->Append(cb, static_cast<int64_t>(k), ib, static_cast<int64_t>(k), u.data() + k * d,
                      b.item_emb.data() + static_cast<size_t>(r.item) * d, ctx, r.contact, &out->inputs);
    out->click.push_back(r.click);
    out->convert.push_back(r.convert);
    out->weight.push_back(r.weight);
  }
  return Status::Ok();
}

// Builds the products and content indexes. An approximate index (above exact_index_max items)
// has its search effort tuned to Recall@100 >= 0.96 against exact search on the embeddings of
// a seeded sample of customers at the end of the training data (the queries serving sends),
// then verified (>= 0.95) on a second, disjoint sample; both figures go into the manifest.
Status BuildIndexes(const Dataset& ds, const TrainConfig& c, const features::HistoryIndex& hist, Bundle* b,
                    std::map<std::string, double>* stats) {
  constexpr int kRecallK = 100;
  constexpr double kRecallTarget = 0.95;
  // Tuned with a margin over the target, so that the check on other customers (whose mean
  // recall differs from the tuning sample's by a few 0.001) does not fail by chance.
  constexpr double kTuningTarget = 0.96;
  const int d = b->towers->dim();
  std::vector<float> tune_q, check_q;  // customer queries, computed for the first approximate index
  const auto customer_queries = [&]() -> Status {
    if (!tune_q.empty()) return Status::Ok();
    std::vector<uint32_t> sample(ds.customers.size());
    for (size_t i = 0; i < sample.size(); ++i) sample[i] = static_cast<uint32_t>(i);
    std::mt19937_64 rng(c.seed ^ 0x1dd3);
    std::shuffle(sample.begin(), sample.end(), rng);
    sample.resize(std::min<size_t>(sample.size(), 2000));
    const TimeMs end = *std::max_element(ds.events.ts.begin(), ds.events.ts.end()) + 1;
    std::vector<TimeMs> times(sample.size(), end);
    CustomerBatch cb;
    std::vector<float> u;
    QM_RETURN_IF_ERROR(EncodeCustomersAt(ds, *b, hist, sample.data(), times.data(), sample.size(), &cb, &u));
    const size_t half = (sample.size() + 1) / 2;
    tune_q.assign(u.begin(), u.begin() + half * d);
    check_q.assign(u.begin() + half * d, u.end());
    if (check_q.empty()) check_q = tune_q;
    return Status::Ok();
  };
  for (ItemKind kind : {ItemKind::kProduct, ItemKind::kContent}) {
    std::vector<float> vecs;
    std::vector<int64_t> ids;
    for (size_t i = 0; i < ds.items.size(); ++i) {
      if (ds.items[i].kind != kind) continue;
      ids.push_back(static_cast<int64_t>(i));
      vecs.insert(vecs.end(), b->item_emb.begin() + i * d, b->item_emb.begin() + (i + 1) * d);
    }
    recall::VectorIndexOptions o;
    o.dim = d;
    o.exact_max = c.exact_index_max;
    o.kind = ids.empty() ? recall::IndexKind::kExact : c.index_kind;
    const int64_t n = static_cast<int64_t>(ids.size());
    QM_ASSIGN_OR_RETURN(auto index, recall::VectorIndex::Build(o, vecs.data(), ids.data(), n));
    const std::string name = kind == ItemKind::kProduct ? "products" : "content";
    const std::string key = "index." + name + ".";
    (*stats)[key + "items"] = static_cast<double>(ids.size());
    (*stats)[key + "hnsw"] = index->kind() == recall::IndexKind::kHnsw ? 1 : 0;
    (*stats)[key + "ivf"] = index->kind() == recall::IndexKind::kIvf ? 1 : 0;
    if (index->kind() != recall::IndexKind::kExact) {
      QM_RETURN_IF_ERROR(customer_queries());
      const int64_t nt = static_cast<int64_t>(tune_q.size()) / d, nc = static_cast<int64_t>(check_q.size()) / d;
      QM_ASSIGN_OR_RETURN(double tuned, recall::TuneSearchEffort(index.get(), vecs.data(), ids.data(), n, tune_q.data(),
                                                                 nt, kRecallK, kTuningTarget));
      QM_ASSIGN_OR_RETURN(double r, recall::MeasureRecallAgainstExact(*index, vecs.data(), ids.data(), n,
                                                                      check_q.data(), nc, kRecallK));
      // Item vectors as queries too (item-to-item recall uses them).
      const int64_t ni = std::min<int64_t>(200, n);
      QM_ASSIGN_OR_RETURN(
          double ri, recall::MeasureRecallAgainstExact(*index, vecs.data(), ids.data(), n, vecs.data(), ni, kRecallK));
      (*stats)[key + "search_effort"] = index->search_effort();
      (*stats)[key + "recall@100.tuning"] = tuned;
      (*stats)[key + "recall@100"] = r;
      (*stats)[key + "recall@100.item_queries"] = ri;
      if (r < kRecallTarget) {
        return Status::FailedPrecondition("the " + name + " " + recall::IndexKindName(index->kind()) +
                                          " index reaches Recall@100 " + std::to_string(r) +
                                          " against exact search on customer queries, below 0.95");
      }
    }
    (kind == ItemKind::kProduct ? b->products : b->contents) = std::move(index);
  }
  return Status::Ok();
}

// The item-to-item table serving reads instead of searching per request: each item's nearest
// products and nearest content items (itself excluded).
Status BuildNeighbours(const Dataset& ds, const TrainConfig& c, Bundle* b, std::map<std::string, double>* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = static_cast<int64_t>(ds.items.size());
  auto& t = b->neighbours;
  t.rows = n;
  t.k = c.neighbours;
  t.labels.assign(static_cast<size_t>(n) * 2 * t.k, -1);
  std::vector<int64_t> self(n);
  std::iota(self.begin(), self.end(), int64_t{0});
  std::vector<int32_t> lists(static_cast<size_t>(n) * t.k);
  Progress progress("item-to-item lists", 2 * static_cast<uint64_t>(n), " items");
  for (int kind = 0; kind < 2; ++kind) {
    const recall::VectorIndex& index = kind == 0 ? *b->products : *b->contents;
    if (index.size() == 0) continue;
    QM_RETURN_IF_ERROR(recall::NeighbourLists(index, b->item_emb.data(), self.data(), n, t.k, lists.data()));
    for (int64_t r = 0; r < n; ++r) std::copy_n(lists.data() + r * t.k, t.k, t.labels.data() + (r * 2 + kind) * t.k);
    progress.Add(static_cast<uint64_t>(n));
  }
  progress.Finish();
  (*stats)["neighbours.seconds"] = Since(t0);
  return Status::Ok();
}

// Reads <data>/truth/oracle.json if present: metrics "oracle.recall@K" and (generators since
// 2026-11-22) "history_oracle.recall@K" and "attribute_oracle.recall@K".
void AddOracle(const std::string& data_dir, EvalReport* report) {
  fs::path p = fs::path(data_dir) / "truth" / "oracle.json";
  std::ifstream in(p);
  if (!in) return;
  try {
    auto j = nlohmann::json::parse(in);
    for (const std::string sys : {"oracle", "history_oracle", "attribute_oracle", "popularity"}) {
      if (!j.contains(sys)) continue;
      const auto& o = j.at(sys);
      for (auto it = o.begin(); it != o.end(); ++it) {
        if (!it.value().is_number()) continue;
        std::string key = it.key();  // e.g. "recall@20" or "recall_at_20"
        for (auto pos = key.find("_at_"); pos != std::string::npos; pos = key.find("_at_")) key.replace(pos, 4, "@");
        report->metrics[sys + "_truth." + key] = it.value().get<double>();
        if (sys != "popularity") report->metrics[sys + "." + key] = it.value().get<double>();
      }
    }
  } catch (const std::exception&) {
    // A malformed truth file only loses the oracle column.
  }
}

// The filter stage of the two-stage pipeline, as far as it is stateless (SPEC §6 consent,
// suitability and eligibility): an item the customer could be shown on app_home or by
// wechat_push at the start or in the middle of the held-out week.
bool Eligible(const policy::Policy& policy, const Dataset& ds, uint32_t customer, uint32_t item, TimeMs t) {
  const policy::Candidate cand = policy::MakeCandidate(ds, item);
  std::vector<std::string> blocked;
  for (TimeMs when : {t + 12 * kMsPerHour, t + 3 * kMsPerDay + 12 * kMsPerHour}) {
    for (ChannelId ch : {kAppHome, kWechatPush}) {
      blocked.clear();
      policy.StaticCheck(ds.customers[customer], cand, ch, when, &blocked);
      bool only_quiet = !blocked.empty() && std::all_of(blocked.begin(), blocked.end(), [](const std::string& b) {
        return b == policy::blocked::kQuietHours;
      });
      if (blocked.empty() || only_quiet) return true;
    }
  }
  return false;
}

// Evaluates a bundle: retrieval alone, two-stage, ranker classification metrics, baselines.
// The evaluated customers: those with a held-out target, a seeded sample of max_eval_customers
// when there are more.
Result<EvalTargets> SampleEvalTargets(const Dataset& ds, const HeldOut& h, const TrainConfig& c) {
  EvalTargets all = BuildEvalTargets(ds.events, h.split);
  if (all.size() == 0) return Status::InvalidArgument("no held-out positives to evaluate on");
  // Seeded sample of evaluated customers.
  std::vector<size_t> pick(all.size());
  std::iota(pick.begin(), pick.end(), size_t{0});
  if (pick.size() > static_cast<size_t>(c.max_eval_customers)) {
    std::mt19937_64 rng(c.seed ^ 0x5eed);
    std::shuffle(pick.begin(), pick.end(), rng);
    pick.resize(c.max_eval_customers);
    std::sort(pick.begin(), pick.end());
  }
  EvalTargets t;
  for (size_t k : pick) {
    t.customers.push_back(all.customers[k]);
    auto tg = all.targets[k];
    auto sn = all.seen[k];
    t.targets.Append(tg);
    t.seen.Append(sn);
  }
  return t;
}

// The diagnostics below the served figure: retrieval alone, the two-stage ranking of the
// filtered candidates, the ranker's classification quality, baselines and oracles.
Result<EvalReport> EvaluateBundle(const Dataset& ds, const Bundle& b, const HeldOut& h, const EvalTargets& t,
                                  const ByCustomer& by, const features::HistoryIndex& hist, const TimeZone& tz,
                                  const TrainConfig& c, bool baselines, const std::string& data_dir) {
  EvalReport report;
  QM_ASSIGN_OR_RETURN(policy::Policy policy, policy::Policy::Create(policy::PolicyConfig{}, ds.channels, tz));
  report.customers = static_cast<int64_t>(t.size());
  const std::vector<int> ks = {10, 20, 50};
  const int kmax = 50;
  RankingMetrics retrieval(ks), two_stage(ks);
  const double inv_tau = 1.0 / b.settings.temperature;
  std::vector<uint32_t> two_stage_top;  // for coverage
  const int d = b.towers->dim();
  const int cand = std::max(c.candidates, kmax);
  // The ranker's ceiling: how many targets are among the filtered candidates at all.
  RankingMetrics candidates({cand});
  // End of the held-out period: the last event.
  const TimeMs eval_end = ds.events.size() ? *std::max_element(ds.events.ts.begin(), ds.events.ts.end()) + 1 : 0;
  Progress progress("evaluating", t.size(), " customers");
  std::vector<int64_t> labels(cand);
  std::vector<float> scores(cand);
  std::vector<features::ContactEvent> recent;
  for (size_t lo = 0; lo < t.size(); lo += 256) {
    const size_t n = std::min<size_t>(256, t.size() - lo);
    std::vector<TimeMs> times(n);
    for (size_t k = 0; k < n; ++k) times[k] = h.customer_time[t.customers[lo + k]];
    CustomerBatch cb;
    std::vector<float> u, ue;
    QM_RETURN_IF_ERROR(EncodeCustomersAt(ds, b, hist, t.customers.data() + lo, times.data(), n, &cb, &u));
    const int de = b.exposure ? b.exposure->dim() : 0;
    if (b.exposure) {
      ue.resize(n * de);
      QM_RETURN_IF_ERROR(b.exposure->EncodeCustomers(cb, ue.data()));
    }
    for (size_t k = 0; k < n; ++k) {
      const uint32_t cu = t.customers[lo + k];
      auto seen = t.seen[lo + k];
      // Items the customer dismissed within the suppression period: the policy hides them
      // (SPEC §6 eligibility), so the two-stage pipeline never shows them.
      std::vector<uint32_t> dismissed;
      for (uint64_t p = by.begin[cu]; p < by.begin[cu + 1]; ++p) {
        uint32_t e = by.event[p];
        if (ds.events.ts[e] >= times[k]) break;
        if (ds.events.type[e] == EventType::kDismiss &&
            ds.events.ts[e] >= times[k] - policy.config().dismiss_suppression) {
          dismissed.push_back(ds.events.item[e]);
        }
      }
      std::sort(dismissed.begin(), dismissed.end());
      // Recall: best `cand` of each index, merged by score, seen items removed.
      std::vector<std::pair<float, uint32_t>> merged;
      for (const auto* index : {b.products.get(), b.contents.get()}) {
        if (index->size() == 0) continue;
        QM_RETURN_IF_ERROR(index->Search(u.data() + k * d, 1, cand, labels.data(), scores.data()));
        for (int j = 0; j < cand; ++j) {
          if (labels[j] < 0) break;
          uint32_t it = static_cast<uint32_t>(labels[j]);
          if (std::binary_search(seen.begin(), seen.end(), it)) continue;
          if (std::binary_search(dismissed.begin(), dismissed.end(), it)) continue;
          if (!Eligible(policy, ds, cu, it, times[k])) continue;
          merged.emplace_back(scores[j], it);
        }
      }
      std::sort(merged.begin(), merged.end(),
                [](auto& a, auto& x) { return a.first > x.first || (a.first == x.first && a.second < x.second); });
      if (merged.size() > static_cast<size_t>(cand)) merged.resize(cand);
      std::vector<uint32_t> ranked;
      for (auto& m : merged) ranked.push_back(m.second);
      std::vector<uint32_t> top(ranked.begin(), ranked.begin() + std::min<size_t>(kmax, ranked.size()));
      retrieval.Add(IndexSpan{top.data(), top.size()}, t.targets[lo + k]);
      candidates.Add(IndexSpan{ranked.data(), ranked.size()}, t.targets[lo + k]);
      // Rank the candidates.
      rank::RankInputs in;
      ItemBatch ib;
      features::GatherItems(b.all_items, ranked.data(), static_cast<int64_t>(ranked.size()), &ib);
      recent.clear();
      for (uint64_t p = by.begin[cu]; p < by.begin[cu + 1]; ++p) {
        uint32_t e = by.event[p];
        if (ds.events.ts[e] >= times[k]) break;
        if (ds.events.ts[e] < times[k] - 30 * kMsPerDay) continue;
        recent.push_back({ds.events.ts[e], ds.events.item[e], ds.items[ds.events.item[e]].category,
                          ds.events.channel[e], ds.events.type[e]});
      }
      rank::RankContext ctx{kAppHome, 12, tz.LocalWeekday(times[k])};
      float contact[features::kContactFeatures];
      const features::ContactSummary summary(recent, kAppHome, times[k]);
      for (size_t j = 0; j < ranked.size(); ++j) {
        summary.Features(ranked[j], ds.items[ranked[j]].category, contact);
        b.builder->Append(cb, static_cast<int64_t>(k), ib, static_cast<int64_t>(j), u.data() + k * d,
                          b.item_emb.data() + static_cast<size_t>(ranked[j]) * d, ctx, contact, &in);
      }
      std::vector<float> pc(ranked.size()), pv(ranked.size());
      QM_RETURN_IF_ERROR(b.ranker->Score(in, pc.data(), pv.data()));
      std::vector<size_t> ord(ranked.size());
      std::iota(ord.begin(), ord.end(), size_t{0});
      // The two-stage score (rank/two_stage_score.h): log p_click from the ranker (P(click |
      // shown)) plus the exposure logit (where the bank's past policy showed items: together they
      // estimate the chance of a positive in the held-out period), or, without an exposure model,
      // the retrieval logit u.v / tau, which with the log-popularity correction estimates
      // log P(item | customer).
      std::vector<double> final_score(ranked.size());
      rank::ScoreWeights weights;
      // The version's retrieval weight for this score (with its exposure term), resolved once
      // (artifacts::ResolveRetrievalWeight: "auto" is 0.3 with an exposure model).
      weights.retrieval_weight = b.settings.retrieval_weight;
      weights.inv_temperature = inv_tau;
      weights.exposure_weight = b.settings.exposure_weight;
      for (size_t j = 0; j < ranked.size(); ++j) {
        rank::ScoreTerms terms;
        terms.p_click = pc[j];
        terms.uv = merged[j].first;
        if (b.exposure) {
          const float* ve = b.exposure_item_emb.data() + static_cast<size_t>(ranked[j]) * de;
          terms.exposure_logit = features::Dot(ue.data() + k * de, ve, de) / b.settings.exposure_temperature;
          // A model of exposures per valid day counts them over the days of the held-out
          // period the item is valid (its schedule in items.csv is known in advance).
          if (b.settings.exposure_per_valid_day)
            terms.log_valid_share = std::log(ValidShare(ds.items[ranked[j]], times[k], eval_end));
        }
        final_score[j] = rank::TwoStageScore(weights, terms);
      }
      std::stable_sort(ord.begin(), ord.end(), [&](size_t a, size_t x) {
        return rank::ScoresBefore(final_score[a], ranked[a], final_score[x], ranked[x]);
      });
      std::vector<uint32_t> ts_top;
      for (size_t j = 0; j < ord.size() && ts_top.size() < static_cast<size_t>(kmax); ++j)
        ts_top.push_back(ranked[ord[j]]);
      two_stage.Add(IndexSpan{ts_top.data(), ts_top.size()}, t.targets[lo + k]);
      ts_top.resize(kmax, kNoIndex);
      two_stage_top.insert(two_stage_top.end(), ts_top.begin(), ts_top.end());
    }
    progress.Add(n);
  }
  progress.Finish();
  auto put = [&](const std::string& sys, const RankingMetrics& m) {
    for (int k : ks) {
      report.metrics[sys + ".recall@" + std::to_string(k)] = m.Recall(k);
      report.metrics[sys + ".ndcg@" + std::to_string(k)] = m.Ndcg(k);
    }
  };
  put("retrieval", retrieval);
  put("two_stage", two_stage);
  report.metrics["two_stage.candidate_recall"] = candidates.Recall(cand);

  report.metrics["two_stage.coverage@20"] =
      CatalogueCoverage(two_stage_top.data(), t.size(), kmax, 20, static_cast<uint32_t>(ds.items.size()));
  if (baselines) {
    QM_ASSIGN_OR_RETURN(Interactions inter,
                        BuildInteractions(ds.events, &h.split, static_cast<uint32_t>(ds.customers.size()),
                                          static_cast<uint32_t>(ds.items.size())));
    std::vector<std::unique_ptr<Recommender>> recs;
    QM_ASSIGN_OR_RETURN(auto pop, FitPopularity(inter));
    recs.push_back(std::move(pop));
    ItemKnnOptions ko;
    QM_ASSIGN_OR_RETURN(auto knn, FitItemKnn(inter, ko));
    recs.push_back(std::move(knn));
    EaseOptions eo;
    auto ease = FitEase(inter, eo);
    if (ease.ok()) recs.push_back(std::move(ease).value());
    for (const auto& r : recs) {
      QM_ASSIGN_OR_RETURN(RankingEvaluation ev, EvaluateRecommender(*r, t, ks));
      put(r->name(), ev.ranking);
      for (size_t i = 0; i < ks.size(); ++i) {
        if (ks[i] == 20) report.metrics[std::string(r->name()) + ".coverage@20"] = ev.coverage[i];
      }
    }
  }
  // Ranker classification quality on held-out exposures.
  {
    std::vector<RankRow> rows = BuildRankRows(ds, by, h.split, /*held_out=*/true, c, 1.0, 300000, c.seed ^ 0xe7a1);
    if (!rows.empty()) {
      std::vector<size_t> order(rows.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::vector<float> pc, pv, yc, yv;
      std::vector<uint32_t> groups;
      for (size_t lo = 0; lo < rows.size(); lo += 2048) {
        rank::RankBatch batch;
        size_t hi = std::min(rows.size(), lo + 2048);
        QM_RETURN_IF_ERROR(MakeRankBatch(ds, b, hist, tz, rows, order, lo, hi, &batch));
        std::vector<float> a(batch.inputs.n), v(batch.inputs.n);
        QM_RETURN_IF_ERROR(b.ranker->Score(batch.inputs, a.data(), v.data()));
        pc.insert(pc.end(), a.begin(), a.end());
        pv.insert(pv.end(), v.begin(), v.end());
        yc.insert(yc.end(), batch.click.begin(), batch.click.end());
        yv.insert(yv.end(), batch.convert.begin(), batch.convert.end());
        for (size_t k = lo; k < hi; ++k) groups.push_back(rows[k].customer);
      }
      report.metrics["ranker.rows"] = static_cast<double>(rows.size());
      bool any_click = std::any_of(yc.begin(), yc.end(), [](float y) { return y > 0; });
      if (any_click) {
        QM_ASSIGN_OR_RETURN(report.metrics["ranker.auc"], Auc(pc.data(), yc.data(), pc.size()));
        QM_ASSIGN_OR_RETURN(report.metrics["ranker.gauc"], GroupAuc(pc.data(), yc.data(), groups.data(), pc.size()));
        QM_ASSIGN_OR_RETURN(report.metrics["ranker.logloss"], LogLoss(pc.data(), yc.data(), pc.size()));
      }
      if (std::any_of(yv.begin(), yv.end(), [](float y) { return y > 0; })) {
        QM_ASSIGN_OR_RETURN(report.metrics["ranker.convert_auc"], Auc(pv.data(), yv.data(), pv.size()));
      }
    }
  }
  AddOracle(data_dir, &report);
  auto o = report.metrics.find("oracle.recall@20");
  if (o != report.metrics.end() && o->second > 0) {
    report.metrics["two_stage.share_of_oracle@20"] = report.metrics["two_stage.recall@20"] / o->second;
  }
  for (const std::string sys : {"history_oracle", "attribute_oracle"}) {
    auto ao = report.metrics.find(sys + ".recall@20");
    if (ao != report.metrics.end() && ao->second > 0) {
      report.metrics["two_stage.share_of_" + sys + "@20"] = report.metrics["two_stage.recall@20"] / ao->second;
    }
  }
  auto p = report.metrics.find("popularity.recall@20");
  if (p != report.metrics.end() && p->second > 0) {
    report.metrics["two_stage.vs_popularity@20"] = report.metrics["two_stage.recall@20"] / p->second;
  }
  return report;
}

// Fits every model of a version on the events `split` keeps for training (held_out[e] == 0):
// the two towers, the exposure model, the indexes and item-to-item table, the ranker; training
// statistics go to *stats.
Status FitBundle(const Dataset& ds, const Split& split, const ByCustomer& by, const features::HistoryIndex& hist,
                 const TimeZone& tz, const TrainConfig& c, Bundle* b, std::map<std::string, double>* stats) {
  // Two-tower on training positives.
  std::vector<recall::PositiveExample> positives;
  for (size_t e = 0; e < ds.events.size(); ++e) {
    if (!split.held_out[e] && IsPositive(ds.events.type[e])) {
      positives.push_back({ds.events.customer[e], ds.events.item[e], ds.events.ts[e]});
    }
  }
  if (positives.empty()) {
    return Status::InvalidArgument("the training period holds no positive events (click, convert, push_open)");
  }
  (*stats)["data.train_positives"] = static_cast<double>(positives.size());
  QM_ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::Fit(ds, c.features));
  b->space = std::make_unique<FeatureSpace>(std::move(space));
  QM_ASSIGN_OR_RETURN(b->towers, recall::TwoTowerModel::Create(*b->space, c.two_tower));
  {
    ScopedBlasThreads blas(Threads(c));  // as libtorch: the other core prepares batches
    Progress progress("training two-tower", 0, " batches");
    recall::TrainStats ts;
    QM_RETURN_IF_ERROR(b->towers->Train(
        ds, hist, positives,
        [&](int64_t done, int64_t total) {
          progress.SetTotal(static_cast<uint64_t>(total));
          progress.Set(static_cast<uint64_t>(done));
        },
        &ts));
    progress.Finish();
    (*stats)["two_tower.examples_per_second"] = ts.examples_per_second;
    (*stats)["two_tower.seconds"] = ts.seconds;
    (*stats)["two_tower.final_loss"] = ts.epoch_loss.empty() ? 0 : ts.epoch_loss.back();
  }
  if (c.exposure_model) {
    std::vector<recall::PositiveExample> exposures;
    for (size_t e = 0; e < ds.events.size(); ++e) {
      if (!split.held_out[e] && IsExposure(ds.events.type[e])) {
        exposures.push_back({ds.events.customer[e], ds.events.item[e], ds.events.ts[e]});
      }
    }
    ExposureSample sample =
        SampleExposures(ds.items, std::move(exposures), c.exposure_examples, c.exposure_per_valid_day, c.seed ^ 0xe3b0);
    exposures = std::move(sample.examples);
    (*stats)["exposure_model.per_valid_day"] = sample.per_valid_day ? 1 : 0;
    if (!exposures.empty()) {
      QM_ASSIGN_OR_RETURN(b->exposure, recall::TwoTowerModel::Create(*b->space, c.exposure_tower));
      ScopedBlasThreads blas(Threads(c));
      Progress progress("training exposure model", 0, " batches");
      recall::TrainStats ts;
      QM_RETURN_IF_ERROR(b->exposure->Train(
          ds, hist, exposures,
          [&](int64_t done, int64_t total) {
            progress.SetTotal(static_cast<uint64_t>(total));
            progress.Set(static_cast<uint64_t>(done));
          },
          &ts));
      progress.Finish();
      (*stats)["exposure_model.examples_per_second"] = ts.examples_per_second;
      (*stats)["exposure_model.seconds"] = ts.seconds;
    }
  }
  QM_RETURN_IF_ERROR(EncodeAllItems(ds, b));
  QM_RETURN_IF_ERROR(BuildIndexes(ds, c, hist, b, stats));
  if (c.neighbours > 0) QM_RETURN_IF_ERROR(BuildNeighbours(ds, c, b, stats));

  // Ranker on training exposures.
  double keep = c.negative_keep;
  if (keep == 0) {
    // Auto: every unclicked exposure on small data, about 4M rows on large data.
    size_t exposures = 0;
    for (size_t e = 0; e < ds.events.size(); ++e) {
      exposures += !split.held_out[e] && IsExposure(ds.events.type[e]);
    }
    keep = exposures > 4'000'000 ? 4e6 / static_cast<double>(exposures) : 1.0;
  }
  (*stats)["ranker.negative_keep"] = keep;
  std::vector<RankRow> rows =
      BuildRankRows(ds, by, split, /*held_out=*/false, c, keep, std::numeric_limits<size_t>::max(), c.seed);
  if (rows.empty()) return Status::InvalidArgument("no exposures or positives to train the ranker on");
  b->ranker_on_exposures = false;
  for (size_t e = 0; e < ds.events.size() && !b->ranker_on_exposures; ++e) {
    b->ranker_on_exposures = !split.held_out[e] && IsExposure(ds.events.type[e]);
  }
  (*stats)["ranker.rows"] = static_cast<double>(rows.size());
  b->builder = std::make_unique<rank::RankInputBuilder>(*b->space, b->towers->dim());
  rank::RankerOptions ranker_options = c.ranker;
  ranker_options.tower_features = c.ranker_tower_features < 0 ? !b->ranker_on_exposures : c.ranker_tower_features == 1;
  (*stats)["ranker.tower_features"] = ranker_options.tower_features ? 1 : 0;
  QM_ASSIGN_OR_RETURN(b->ranker, rank::Ranker::CreateBuiltin(*b->space, *b->builder, ranker_options));
  {
    ScopedBlasThreads blas(Threads(c));
    std::mt19937_64 rng(c.seed ^ 0x7a11);
    std::vector<size_t> order(rows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    const size_t bs = 2048;
    size_t cursor = 0;
    Status batch_status;
    std::mutex status_mu;
    // Batches are built on a background thread (customer tower + features) while the ranker
    // trains on the previous one; recreated for each epoch.
    auto produce = [&](rank::RankBatch* out) -> bool {
      if (cursor >= rows.size()) return false;
      size_t hi = std::min(rows.size(), cursor + bs);
      Status st = MakeRankBatch(ds, *b, hist, tz, rows, order, cursor, hi, out);
      cursor = hi;
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(status_mu);
        batch_status = st;
        return false;
      }
      return true;
    };
    auto prefetch = std::make_unique<Prefetcher<rank::RankBatch>>(produce);
    const int passes = c.ranker.kind == rank::RankerKind::kGbdt ? 1 : c.ranker.epochs;  // trees: one pass
    Progress progress("training ranker", static_cast<uint64_t>(rows.size()) * passes, " rows");
    rank::RankTrainStats rs;
    Status st = b->ranker->Train([&](rank::RankBatch* out) { return prefetch->Next(out); },
                                 [&] {
                                   prefetch.reset();
                                   cursor = 0;
                                   std::shuffle(order.begin(), order.end(), rng);
                                   prefetch = std::make_unique<Prefetcher<rank::RankBatch>>(produce);
                                 },
                                 [&](int64_t n) { progress.Add(static_cast<uint64_t>(n)); }, &rs);
    prefetch.reset();
    progress.Finish();
    QM_RETURN_IF_ERROR(batch_status);
    QM_RETURN_IF_ERROR(st);
    (*stats)["ranker.rows_per_second"] = rs.rows_per_second;
    (*stats)["ranker.seconds"] = rs.seconds;
    (*stats)["ranker.final_loss"] = rs.epoch_loss.empty() ? 0 : rs.epoch_loss.back();
  }

  b->settings = ResolveSettings(c, *b);
  return Status::Ok();
}

// Writes `b` as a new version under `root` (CURRENT moves to it once it verifies), with the
// metrics, configuration and data fingerprint of its manifest. Returns the version.
Result<std::string> PublishBundle(const Dataset& ds, const Bundle& b, const TrainConfig& c, const std::string& root,
                                  const std::map<std::string, double>& metrics, const std::string& config_json,
                                  const std::string& fingerprint, const std::string* portraits_csv = nullptr) {
  using artifacts::BundleFile;
  QM_ASSIGN_OR_RETURN(artifacts::BundleWriter w, artifacts::BundleWriter::Create(root));
  artifacts::BundleSettings settings = b.settings;
  settings.portraits = portraits_csv != nullptr;
  w.SetSettings(settings);
  if (portraits_csv) {
    QM_RETURN_IF_ERROR(WriteFileAtomically(w.PathFor(BundleFile::kPortraits), {*portraits_csv}));
    QM_RETURN_IF_ERROR(w.Add(BundleFile::kPortraits));
  }
  QM_RETURN_IF_ERROR(b.space->Save(w.PathFor(BundleFile::kFeatures)));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kFeatures));
  QM_RETURN_IF_ERROR(b.towers->Save(w.PathFor(BundleFile::kTwoTower)));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kTwoTower));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kTwoTowerOptions));
  {
    std::vector<std::string> ids;
    ids.reserve(ds.items.size());
    for (const auto& it : ds.items) ids.push_back(it.id);
    QM_RETURN_IF_ERROR(w.WriteItemEmbeddings(ids, b.item_emb.data(), b.towers->dim()));
  }
  if (b.exposure) {
    QM_RETURN_IF_ERROR(b.exposure->Save(w.PathFor(BundleFile::kExposureTower)));
    QM_RETURN_IF_ERROR(w.Add(BundleFile::kExposureTower));
    QM_RETURN_IF_ERROR(w.Add(BundleFile::kExposureTowerOptions));
  }
  QM_RETURN_IF_ERROR(b.products->Save(w.PathFor(BundleFile::kProductsIndex)));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kProductsIndex));
  QM_RETURN_IF_ERROR(b.contents->Save(w.PathFor(BundleFile::kContentIndex)));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kContentIndex));
  if (c.neighbours > 0) {
    QM_RETURN_IF_ERROR(recall::SaveNeighbourTable(b.neighbours, w.PathFor(BundleFile::kNeighbours)));
    QM_RETURN_IF_ERROR(w.Add(BundleFile::kNeighbours));
  }
  QM_RETURN_IF_ERROR(b.ranker->Save(w.PathFor(BundleFile::kRanker)));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kRanker));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kRankerOptions));
  QM_RETURN_IF_ERROR(w.WriteRankInputs(b.builder->Describe()));
  w.SetMetrics(metrics);
  QM_RETURN_IF_ERROR(w.SetConfig(config_json));
  w.SetDataFingerprint(fingerprint);
  QM_RETURN_IF_ERROR(w.Commit().status());
  return w.version();
}

}  // namespace

Result<Dataset> LoadForTraining(const std::string& data_dir, const DataConfig& data, const policy::StoreConfig* store,
                                std::map<std::string, double>* stats) {
  LoadReport lr;
  auto ds = LoadDataset(data_dir, data, &lr);
  if (lr.items.bad_rows + lr.customers.bad_rows + lr.events.bad_rows > 0) std::fputs(lr.Format().c_str(), stderr);
  if (!ds.ok()) return ds.status();
  if (store != nullptr) {
    policy::StoreConfig sc = *store;
    bool present = true;
    if (sc.backend == "embedded") {
      sc.read_only = true;
      present = fs::exists(fs::path(sc.path) / "CURRENT");
    }
    if (present) {
      QM_ASSIGN_OR_RETURN(auto es, policy::EventStore::Open(sc));
      StoreMergeStats ms;
      QM_RETURN_IF_ERROR(MergeStoreEvents(*es, &*ds, &ms).Annotate("reading the event store"));
      std::fprintf(stderr,
                   "event store %s: %llu events read, %llu added, %llu already in events.csv, %llu skipped (unknown "
                   "customer/item/channel)\n",
                   sc.backend == "embedded" ? sc.path.c_str() : "redis", static_cast<unsigned long long>(ms.read),
                   static_cast<unsigned long long>(ms.added), static_cast<unsigned long long>(ms.duplicates),
                   static_cast<unsigned long long>(ms.unknown_customer + ms.unknown_item + ms.unknown_channel));
      if (stats) (*stats)["data.store_events_added"] = static_cast<double>(ms.added);
    }
  }
  if (ds->items.empty()) return Status::InvalidArgument("items.csv holds no items");
  if (ds->customers.empty()) return Status::InvalidArgument("customers.csv holds no customers");
  return ds;
}

namespace {

// The served evaluation of version `version` under `root` on the evaluated customers `t`, each
// served at the start of their held-out period.
Result<std::map<std::string, double>> ServedFigures(const Dataset& ds, const HeldOut& h, const EvalTargets& t,
                                                    const DataConfig& data, const std::string& data_dir,
                                                    int value_customers, const std::string& root,
                                                    const std::string& version, const ServedSettings* served,
                                                    const std::string& pages_csv) {
  ServedEvalOptions o;
  o.artifacts_root = root;
  o.version = version;
  o.data = data;
  const ServedSettings defaults;
  const ServedSettings& s = served ? *served : defaults;
  o.policy = s.policy;
  o.serving = s.serving;
  o.channel = s.channel;
  o.pages_csv = pages_csv;
  o.data_dir = data_dir;
  o.value_at = h.holdout_start;  // the time split's held-out start (kNoTime for the other splits)
  o.value_customers = value_customers;
  std::vector<TimeMs> times(t.size());
  for (size_t i = 0; i < t.size(); ++i) times[i] = h.customer_time[t.customers[i]];
  return EvaluateServed(ds, h.split.held_out, t, times, o);
}

}  // namespace

Result<TrainResult> Train(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                          const TrainConfig& c, const std::string& config_json, const policy::StoreConfig* store,
                          const ServedSettings* served) {
  const auto t_all = std::chrono::steady_clock::now();
  recall::SetTorchThreads(Threads(c));
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(data.timezone));
  TrainResult result;
  auto& stats = result.stats;
  QM_ASSIGN_OR_RETURN(Dataset ds, LoadForTraining(data_dir, data, store, &stats));
  QM_ASSIGN_OR_RETURN(std::string fingerprint, artifacts::DataFingerprint(data_dir));
  QM_ASSIGN_OR_RETURN(HeldOut h, MakeSplit(ds, c, tz, TruthHoldoutStart(data_dir)));
  stats["data.customers"] = static_cast<double>(ds.customers.size());
  stats["data.items"] = static_cast<double>(ds.items.size());
  stats["data.events"] = static_cast<double>(ds.events.size());
  stats["data.train_events"] = static_cast<double>(h.split.num_train);
  features::HistoryIndex hist(ds.events, ds.customers.size());
  ByCustomer by(ds.events, ds.customers.size());
  Bundle b;
  if (c.evaluate) {
    QM_RETURN_IF_ERROR(FitBundle(ds, h.split, by, hist, tz, c, &b, &stats));
    QM_ASSIGN_OR_RETURN(EvalTargets t, SampleEvalTargets(ds, h, c));
    QM_ASSIGN_OR_RETURN(result.eval, EvaluateBundle(ds, b, h, t, by, hist, tz, c, /*baselines=*/true, data_dir));
    // The headline: the split fit served as the engine serves it.
    ScratchDir scratch((fs::path(artifacts_root) / ".served-eval").string());  // the split fit, served from here
    QM_ASSIGN_OR_RETURN(std::string v, PublishBundle(ds, b, c, scratch.path(), {}, config_json, fingerprint));
    QM_ASSIGN_OR_RETURN(auto figures,
                        ServedFigures(ds, h, t, data, data_dir, c.value_customers, scratch.path(), v, served, ""));
    result.eval.metrics.insert(figures.begin(), figures.end());
  }
  Split fit_split = h.split;
  const bool fit_all = c.refit || !c.evaluate;
  if (fit_all) {
    std::fill(fit_split.held_out.begin(), fit_split.held_out.end(), 0);
    fit_split.num_train = ds.events.size();
    fit_split.num_held_out = 0;
  }
  if (!c.evaluate) {
    // One fit, on every event, published without figures.
    QM_RETURN_IF_ERROR(FitBundle(ds, fit_split, by, hist, tz, c, &b, &stats));
    result.eval.note = "not evaluated ([training] evaluate = false); the version published was fit on all " +
                       std::to_string(ds.events.size()) + " events";
  } else if (c.refit) {
    // The published model learns from every event: the figures above are the split fit's.
    Bundle all;
    std::map<std::string, double> refit_stats;
    QM_RETURN_IF_ERROR(FitBundle(ds, fit_split, by, hist, tz, c, &all, &refit_stats));
    for (const auto& [k, v] : refit_stats) stats["refit." + k] = v;
    b = std::move(all);
    result.eval.note = "figures of the fit on the split (" + std::to_string(h.split.num_train) +
                       " events); the version published was fit again on all " + std::to_string(ds.events.size()) +
                       " events";
  }
  stats["refit"] = fit_all ? 1 : 0;
  stats["evaluated"] = c.evaluate ? 1 : 0;
  stats["data.fit_events"] = static_cast<double>(fit_split.num_train);
  TimeMs fit_end = kNoTime;
  for (size_t e = 0; e < ds.events.size(); ++e) {
    if (!fit_split.held_out[e]) fit_end = std::max(fit_end, ds.events.ts[e]);
  }
  stats["data.fit_end_ms"] = static_cast<double>(fit_end);
  // Portraits and the churn model (issue 18), from every event; their held-out figures join the
  // evaluation's.
  Result<PortraitResult> portraits = FitPortraits(ds);
  if (portraits.ok()) {
    result.eval.metrics.insert(portraits->metrics.begin(), portraits->metrics.end());
  } else {
    std::fprintf(stderr, "portraits: none in this version (%s)\n", portraits.status().message().c_str());
  }
  stats["train.seconds"] = Since(t_all);
  std::map<std::string, double> metrics = result.eval.metrics;
  for (const auto& [k, v] : stats) metrics["stats." + k] = v;
  QM_ASSIGN_OR_RETURN(result.version, PublishBundle(ds, b, c, artifacts_root, metrics, config_json, fingerprint,
                                                    portraits.ok() ? &portraits->csv : nullptr));
  return result;
}

namespace {

// When `m` is a version fit again on every event up to a time after some evaluated customer's
// held-out start, evaluating it here would score it on events it learned from: the report is then
// the figures its manifest recorded from the split fit.
std::optional<EvalReport> RecordedIfInSample(const artifacts::Manifest& m, const HeldOut& h, const EvalTargets& t) {
  std::map<std::string, double> recorded;
  try {
    auto j = nlohmann::json::parse(m.metrics_json);
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_number()) recorded[it.key()] = it.value().get<double>();
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto refit = recorded.find("stats.refit");
  auto fit_end = recorded.find("stats.data.fit_end_ms");
  if (refit == recorded.end() || refit->second == 0 || fit_end == recorded.end()) return std::nullopt;
  bool in_sample = false;
  for (uint32_t cu : t.customers) in_sample |= static_cast<double>(h.customer_time[cu]) <= fit_end->second;
  if (!in_sample) return std::nullopt;
  EvalReport r;
  if (auto evaluated = recorded.find("stats.evaluated"); evaluated != recorded.end() && evaluated->second == 0) {
    r.note = "version " + m.version +
             " was fit on every event up to the end of this data without an evaluation ([training] evaluate = "
             "false): it learned from these held-out events and recorded no figures; train with evaluate = true "
             "for figures";
    return r;
  }
  for (const auto& [k, v] : recorded) {
    if (k.rfind("stats.", 0) != 0) r.metrics[k] = v;
  }
  r.customers = static_cast<int64_t>(recorded.count("served.customers") ? recorded["served.customers"] : 0);
  r.note = "version " + m.version +
           " was fit again on every event up to the end of this data, held-out period "
           "included: these are the figures recorded when it was trained (the fit on the split), not a new evaluation";
  return r;
}

// The parts of a published version that rank rows need: its feature space, towers (and
// exposure tower), every item of `ds` encoded, and the rank input builder, checked against the
// version's rank_inputs.json.
Status LoadTowersAndRankInputs(const artifacts::BundleReader& bundle, const Dataset& ds, Bundle* b) {
  using artifacts::BundleFile;
  b->settings = bundle.settings();
  QM_ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::Load(bundle.PathFor(BundleFile::kFeatures)));
  b->space = std::make_unique<FeatureSpace>(std::move(space));
  QM_ASSIGN_OR_RETURN(b->towers, recall::TwoTowerModel::Load(bundle.PathFor(BundleFile::kTwoTower), *b->space));
  if (bundle.Has(BundleFile::kExposureTower)) {
    QM_ASSIGN_OR_RETURN(b->exposure,
                        recall::TwoTowerModel::Load(bundle.PathFor(BundleFile::kExposureTower), *b->space));
  }
  QM_RETURN_IF_ERROR(EncodeAllItems(ds, b));
  b->builder = std::make_unique<rank::RankInputBuilder>(*b->space, b->towers->dim());
  return bundle.CheckRankInputs(b->builder->Describe());
}

}  // namespace

Result<EvalReport> Evaluate(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                            const TrainConfig& c, const EvalOptions& options, const policy::StoreConfig* store,
                            const ServedSettings* served) {
  recall::SetTorchThreads(Threads(c));
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(data.timezone));
  std::string version = options.version;
  if (version.empty()) {
    QM_ASSIGN_OR_RETURN(version, artifacts::ReadCurrent(artifacts_root));
  }
  using artifacts::BundleFile;
  QM_ASSIGN_OR_RETURN(artifacts::BundleReader bundle, artifacts::BundleReader::Open(artifacts_root, version));
  QM_ASSIGN_OR_RETURN(Dataset ds, LoadForTraining(data_dir, data, store, nullptr));
  QM_ASSIGN_OR_RETURN(HeldOut h, MakeSplit(ds, c, tz, TruthHoldoutStart(data_dir)));
  QM_ASSIGN_OR_RETURN(EvalTargets t, SampleEvalTargets(ds, h, c));
  if (auto recorded = RecordedIfInSample(bundle.manifest(), h, t)) return *recorded;
  Bundle b;
  QM_RETURN_IF_ERROR(LoadTowersAndRankInputs(bundle, ds, &b));
  QM_ASSIGN_OR_RETURN(b.products, recall::VectorIndex::Load(bundle.PathFor(BundleFile::kProductsIndex)));
  QM_ASSIGN_OR_RETURN(b.contents, recall::VectorIndex::Load(bundle.PathFor(BundleFile::kContentIndex)));
  if (b.products->size() + b.contents->size() != static_cast<int64_t>(ds.items.size())) {
    return Status::FailedPrecondition("version " + version + " was trained on a different catalogue (" +
                                      std::to_string(b.products->size() + b.contents->size()) + " items, data has " +
                                      std::to_string(ds.items.size()) + ")");
  }
  QM_ASSIGN_OR_RETURN(b.ranker, rank::Ranker::LoadBuiltin(bundle.PathFor(BundleFile::kRanker), *b.space, *b.builder));
  features::HistoryIndex hist(ds.events, ds.customers.size());
  ByCustomer by(ds.events, ds.customers.size());
  QM_ASSIGN_OR_RETURN(EvalReport report, EvaluateBundle(ds, b, h, t, by, hist, tz, c, options.baselines, data_dir));
  QM_ASSIGN_OR_RETURN(auto figures, ServedFigures(ds, h, t, data, data_dir, c.value_customers, artifacts_root, version,
                                                  served, options.pages_csv));
  report.metrics.insert(figures.begin(), figures.end());
  return report;
}

Result<RankRowsResult> ExportRankRows(const std::string& data_dir, const DataConfig& data,
                                      const std::string& artifacts_root, const TrainConfig& c,
                                      const RankRowsOptions& options, const policy::StoreConfig* store) {
  recall::SetTorchThreads(Threads(c));
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(data.timezone));
  RankRowsResult result;
  result.version = options.version;
  if (result.version.empty()) {
    QM_ASSIGN_OR_RETURN(result.version, artifacts::ReadCurrent(artifacts_root));
  }
  QM_ASSIGN_OR_RETURN(artifacts::BundleReader bundle, artifacts::BundleReader::Open(artifacts_root, result.version));
  QM_ASSIGN_OR_RETURN(Dataset ds, LoadForTraining(data_dir, data, store, nullptr));
  QM_ASSIGN_OR_RETURN(HeldOut h, MakeSplit(ds, c, tz, TruthHoldoutStart(data_dir)));
  Bundle b;
  QM_RETURN_IF_ERROR(LoadTowersAndRankInputs(bundle, ds, &b));
  features::HistoryIndex hist(ds.events, ds.customers.size());
  ByCustomer by(ds.events, ds.customers.size());
  const double keep = c.negative_keep > 0 ? c.negative_keep : 1.0;
  QM_ASSIGN_OR_RETURN(auto writer, RankRowsWriter::Open(options.out, b.builder->cat_width(), b.builder->dense_width()));
  for (const bool held_out : {false, true}) {
    const std::vector<RankRow> rows = BuildRankRows(ds, by, h.split, held_out, c, keep, SIZE_MAX, c.seed);
    std::vector<size_t> order(rows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (size_t lo = 0; lo < rows.size(); lo += 2048) {
      rank::RankBatch batch;
      QM_RETURN_IF_ERROR(MakeRankBatch(ds, b, hist, tz, rows, order, lo, std::min(rows.size(), lo + 2048), &batch));
      QM_RETURN_IF_ERROR(writer->Append(batch, held_out ? 1 : 0));
    }
    (held_out ? result.held_out_rows : result.rows) = static_cast<int64_t>(rows.size());
  }
  nlohmann::json layout = nlohmann::json::parse(b.builder->Describe());
  layout["version"] = result.version;
  layout["rows"] = result.rows + result.held_out_rows;
  layout["held_out_rows"] = result.held_out_rows;
  layout["negative_keep"] = keep;
  layout["format"] = writer->csv() ? "csv" : "npy";
  layout["columns"] = {{"cat", "int64 [n, C]"},
                       {"dense", "float32 [n, K]"},
                       {"bag", "int64 [n, B]"},
                       {"labels", "float32 [n, 2]: clicked (or opened, for a push), converted"},
                       {"weight", "float32 [n]: 1, or 1/negative_keep for a kept unclicked exposure"},
                       {"held_out", "uint8 [n]: 1 for an exposure in the held-out period of the split"}};
  QM_RETURN_IF_ERROR(writer->Close(layout.dump(2)));
  return result;
}

}  // namespace qm::training
