// Module training: offline training and evaluation runs. May depend on: core, metrics, features,
// recall, rank, policy; artifacts, Eigen (private).
// training's settings: the [training] section of the engine's TOML file (the split, the
// two-stage evaluation, the towers, the exposure model and the ranker), read by ReadTrainConfig
// next to them.
#pragma once

#include <cstdint>
#include <string>

#include "qianmian/core/config.h"
#include "qianmian/core/types.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/ranker.h"
#include "qianmian/recall/two_tower.h"
#include "qianmian/recall/vector_index.h"

namespace qm::training {

struct TrainConfig {
  std::string split = "time";             // "time": the last holdout_days are held out;
                                          // "per_customer": each customer's last holdout_fraction;
                                          // "customers": a holdout_fraction of customers, all events
  int holdout_days = 0;                   // 0 = a fifth of the data's days (at least 1)
  double holdout_fraction = 0.2;          // per_customer and customers splits
  double negative_keep = 0;               // share of unclicked exposures kept for the ranker;
                                          // 0 = auto (all up to 4M exposures, ~4M rows above)
  TimeMs click_window = kMsPerDay;        // a click this soon after an exposure labels it
  TimeMs convert_window = 7 * kMsPerDay;  // likewise for a conversion
  int candidates = 300;                   // two-stage: items recalled, then ranked
  double retrieval_weight = -1;           // two-stage score = log p_click + w * u.v / temperature
                                          //   + exposure_weight * exposure logit;
                                          //   -1 = auto: 0.3 with an exposure model, else 1
  bool exposure_model = true;             // also learn where the bank's past policy exposed items
                                          // (a second two-tower on logged exposures)
  int64_t exposure_examples = 500000;     // logged exposures sampled per training run
  bool exposure_per_valid_day = true;     // sample exposures by 1 / (share of the training period the
                                          // item was valid), so the exposure model learns a rate per
                                          // valid day (an item launched late is not "rarely shown");
                                          // evaluation multiplies it by the days valid in the horizon
  double exposure_weight = 1.0;
  bool refit = true;  // after evaluating on the split, fit again on every event
  // false: no split fit and no evaluation; the models are fit once, on every event, and
  // published without figures (for retraining loops such as `simulate`'s, which need only the
  // published fit).
  bool evaluate = true;
  // and publish that (false: publish the evaluated fit)
  int max_eval_customers = 20000;
  int value_customers = 2000;       // generated banks: customers whose pages' online value eval
                                    // reports (the bank's first ones; 0 = none)                           // evaluated
                                    // customers (a seeded sample above this)
  int64_t exact_index_max = 30000;  // exact Faiss search up to this many items, IVF above
  recall::IndexKind index_kind = recall::IndexKind::kAuto;  // "index": auto, exact, hnsw or ivf
  int neighbours = 16;                                      // item-to-item table: nearest products and content per item
                                                            //   (0 = none; serving then searches per seed)
  int threads = 0;                                          // libtorch threads; 0 = 1 (the other core prepares batches)
  uint64_t seed = 42;
  features::FeatureOptions features;
  recall::TwoTowerOptions two_tower;             // [training.two_tower]
  recall::TwoTowerOptions exposure_tower = [] {  // [training.exposure_tower]
    recall::TwoTowerOptions o;
    o.epochs = 2;
    return o;
  }();
  rank::RankerOptions ranker;  // [training.ranker]
  // [training.ranker] tower_features: -1 = auto (off when the ranker learns from logged
  // exposures, on otherwise, e.g. positives with sampled negatives), 0 = off, 1 = on.
  int ranker_tower_features = -1;
};
void ReadTrainConfig(ConfigTable t, TrainConfig* c);

}  // namespace qm::training
