// `qianmian train` and `qianmian eval`: the offline training run that learns the retrieval
// embeddings and the ranking model from a data folder, evaluates them on held-out events and
// publishes a verified artifact version; and the evaluation of a published version beside
// baselines (popularity, item-kNN, EASE) and, for generated banks, the oracle.
// May depend on: core, features, recall, rank, policy (public); artifacts, Eigen (private).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/rank/ranker.h"
#include "qianmian/recall/two_tower.h"
#include "qianmian/recall/vector_index.h"

namespace qm::training {

// [training] section of the configuration.
struct TrainConfig {
  std::string split = "time";        // "time": the last holdout_days are held out;
                                     // "per_customer": each customer's last holdout_fraction;
                                     // "customers": a holdout_fraction of customers, all events
  int holdout_days = 0;              // 0 = a fifth of the data's days (at least 1)
  double holdout_fraction = 0.2;     // per_customer and customers splits
  double negative_keep = 0;          // share of unclicked exposures kept for the ranker;
                                     // 0 = auto (all up to 4M exposures, ~4M rows above)
  TimeMs click_window = kMsPerDay;        // a click this soon after an exposure labels it
  TimeMs convert_window = 7 * kMsPerDay;  // likewise for a conversion
  int candidates = 300;              // two-stage: items recalled, then ranked
  double retrieval_weight = -1;      // two-stage score = log p_click + w * u.v / temperature
                                     //   + exposure_weight * exposure logit;
                                     //   -1 = auto: 0.3 with an exposure model, else 1
  bool exposure_model = true;        // also learn where the bank's past policy exposed items
                                     // (a second two-tower on logged exposures)
  int64_t exposure_examples = 500000;   // logged exposures sampled per training run
  bool exposure_per_valid_day = true;   // sample exposures by 1 / (share of the training period the
                                        // item was valid), so the exposure model learns a rate per
                                        // valid day (an item launched late is not "rarely shown");
                                        // evaluation multiplies it by the days valid in the horizon
  double exposure_weight = 1.0;
  int max_eval_customers = 20000;    // evaluated customers (a seeded sample above this)
  int64_t exact_index_max = 30000;   // exact Faiss search up to this many items, IVF above
  recall::IndexKind index_kind = recall::IndexKind::kAuto;  // "index": auto, exact, hnsw or ivf
  int neighbours = 16;               // item-to-item table: nearest products and content per item
                                     //   (0 = none; serving then searches per seed)
  int threads = 0;                   // libtorch threads; 0 = 1 (the other core prepares batches)
  uint64_t seed = 42;
  features::FeatureOptions features;
  recall::TwoTowerOptions two_tower;  // [training.two_tower]
  recall::TwoTowerOptions exposure_tower = [] {  // [training.exposure_tower]
    recall::TwoTowerOptions o;
    o.epochs = 2;
    return o;
  }();
  rank::RankerOptions ranker;         // [training.ranker]
};
void ReadTrainConfig(ConfigTable t, TrainConfig* c);

// Offline quality of one version on its held-out events.
struct EvalReport {
  int64_t customers = 0;   // evaluated customers (with at least one target)
  // "<system>.<metric>@K" -> value, e.g. "two_stage.recall@20", "retrieval.ndcg@10",
  // "popularity.recall@20", "ranker.auc", "ranker.gauc", "ranker.logloss", "oracle.recall@20".
  std::map<std::string, double> metrics;
  std::string Format() const;  // a readable table
};

struct TrainResult {
  std::string version;       // the new artifact version (CURRENT names it)
  EvalReport eval;
  std::map<std::string, double> stats;  // throughput, wall times, index recall
};

// Trains on `data_dir` and writes a new version under `artifacts_root`; CURRENT moves only
// after the bundle is complete and verified. `config_json` is recorded in the manifest.
// `store` (may be null): the event store whose recorded events (feedback, sends) are added to
// events.csv's; an embedded store is opened read-only and skipped when it does not exist.
Result<TrainResult> Train(const std::string& data_dir, const DataConfig& data,
                         const std::string& artifacts_root, const TrainConfig& config,
                         const std::string& config_json,
                         const policy::StoreConfig* store = nullptr);

struct EvalOptions {
  bool baselines = true;     // popularity, item-kNN and (if the catalogue allows) EASE
  std::string version;       // "" = CURRENT
};

// Evaluates a published version on the held-out events of `data_dir` (same split as training).
// The two-stage score uses the version's settings (artifacts::BundleSettings: temperatures,
// exposure and retrieval weights); `config` gives the split and the evaluation's sample,
// candidate count and seed.
Result<EvalReport> Evaluate(const std::string& data_dir, const DataConfig& data,
                            const std::string& artifacts_root, const TrainConfig& config,
                            const EvalOptions& options,
                            const policy::StoreConfig* store = nullptr);

}  // namespace qm::training
