// `qianmian train` and `qianmian eval`: the offline training run that learns the retrieval
// embeddings and the ranking model from a data folder, evaluates them on held-out events and
// publishes a verified artifact version; and the evaluation of a published version beside
// baselines (popularity, item-kNN, EASE) and, for generated banks, the oracle.
// May depend on: core, features, recall, rank, policy (public); artifacts, Eigen (private).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/training/training_config.h"

namespace qm::training {

// Offline quality of one version on its held-out events.
struct EvalReport {
  int64_t customers = 0;  // evaluated customers (with at least one target)
  // "<system>.<metric>@K" -> value, e.g. "two_stage.recall@20", "retrieval.ndcg@10",
  // "popularity.recall@20", "ranker.auc", "ranker.gauc", "ranker.logloss", "oracle.recall@20".
  std::map<std::string, double> metrics;
  std::string Format() const;  // a readable table
};

struct TrainResult {
  std::string version;  // the new artifact version (CURRENT names it)
  EvalReport eval;
  std::map<std::string, double> stats;  // throughput, wall times, index recall
};

// Trains on `data_dir` and writes a new version under `artifacts_root`; CURRENT moves only
// after the bundle is complete and verified. `config_json` is recorded in the manifest.
// `store` (may be null): the event store whose recorded events (feedback, sends) are added to
// events.csv's; an embedded store is opened read-only and skipped when it does not exist.
Result<TrainResult> Train(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                          const TrainConfig& config, const std::string& config_json,
                          const policy::StoreConfig* store = nullptr);

struct EvalOptions {
  bool baselines = true;  // popularity, item-kNN and (if the catalogue allows) EASE
  std::string version;    // "" = CURRENT
};

// Evaluates a published version on the held-out events of `data_dir` (same split as training).
// The two-stage score uses the version's settings (artifacts::BundleSettings: temperatures,
// exposure and retrieval weights); `config` gives the split and the evaluation's sample,
// candidate count and seed.
Result<EvalReport> Evaluate(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                            const TrainConfig& config, const EvalOptions& options,
                            const policy::StoreConfig* store = nullptr);

}  // namespace qm::training
