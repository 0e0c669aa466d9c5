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
#include "qianmian/serving/serving_config.h"
#include "qianmian/training/training_config.h"

namespace qm::training {

// What the served evaluation serves with: the engine's [policy] and [serving] sections, on the
// channel whose pages are scored.
struct ServedSettings {
  policy::PolicyConfig policy;
  serving::ServingConfig serving;
  std::string channel = "app_home";
};

// Offline quality of one version on its held-out events.
struct EvalReport {
  std::string note;       // printed first (e.g. whose fit the figures are)
  int64_t customers = 0;  // evaluated customers (with at least one target)
  // "<system>.<metric>@K" -> value, e.g. "served.recall@20" (the headline: the pages the engine
  // serves), "two_stage.recall@20", "retrieval.ndcg@10",
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
// The figures come from the models fit on the split; with `config.refit` (the default) the
// version published is then fit again on every event, and its manifest says so ("stats.refit",
// "stats.data.fit_events", "stats.data.fit_end_ms"). `served` (may be null: defaults) is what the
// served evaluation serves with.
Result<TrainResult> Train(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                          const TrainConfig& config, const std::string& config_json,
                          const policy::StoreConfig* store = nullptr, const ServedSettings* served = nullptr);

// Loads `data_dir` and adds the events recorded in `store` (may be null; an embedded store is
// opened read-only and skipped when it does not exist), as train and eval see the data.
// `stats` (may be null) receives "data.store_events_added".
Result<Dataset> LoadForTraining(const std::string& data_dir, const DataConfig& data, const policy::StoreConfig* store,
                                std::map<std::string, double>* stats);

struct EvalOptions {
  bool baselines = true;  // popularity, item-kNN and (if the catalogue allows) EASE
  std::string version;    // "" = CURRENT
  std::string pages_csv;  // "" = none; else every served page (customer_id,now,k,rank,item_id)
};

// Evaluates a published version on the held-out events of `data_dir` (same split as training).
// The two-stage score uses the version's settings (artifacts::BundleSettings: temperatures,
// exposure and retrieval weights); `config` gives the split and the evaluation's sample,
// candidate count and seed.
// A version fit again on every event (`stats.refit`) has seen the held-out events of its own
// data: its figures would be in-sample, so Evaluate then reports the figures its manifest recorded
// from the split fit, and says so in `note`.
Result<EvalReport> Evaluate(const std::string& data_dir, const DataConfig& data, const std::string& artifacts_root,
                            const TrainConfig& config, const EvalOptions& options,
                            const policy::StoreConfig* store = nullptr, const ServedSettings* served = nullptr);

// `qianmian export rank-rows`: the ranker's rows for a version, as the built-in ranker sees
// them (RankInputBuilder's cat, dense and bag columns, labels and weights), for model authors.
struct RankRowsOptions {
  std::string version;  // "" = CURRENT
  // A path ending in ".csv": one CSV and <out>.layout.json; otherwise a folder of .npy files
  // and layout.json (the version's rank_inputs.json, row counts and column meanings).
  std::string out;
};

struct RankRowsResult {
  std::string version;
  int64_t rows = 0;           // rows of the training period of the split
  int64_t held_out_rows = 0;  // rows of the held-out period (written after them, held_out = 1)
};

// Writes every exposure of `data_dir` (events.csv and `store`, as train sees them) labelled by
// what followed, before and after the split of `config` (TrainConfig::negative_keep > 0 keeps
// that share of unclicked exposures, weighted 1/keep; otherwise all, weight 1), with the
// version's towers and features. FailedPrecondition when this build lays out the version's rank
// inputs differently; IoError when `out` cannot be written.
Result<RankRowsResult> ExportRankRows(const std::string& data_dir, const DataConfig& data,
                                      const std::string& artifacts_root, const TrainConfig& config,
                                      const RankRowsOptions& options, const policy::StoreConfig* store = nullptr);

}  // namespace qm::training
