// Module rank: the ranking model, its input contract and the two-stage score. May depend on: core,
// features; torchutil, libtorch (private).
// The rank stage's model: predicts p_click and p_convert for (customer, item, context) rows
// given as RankInputs (see rank_features.h for the input contract). Two implementations behind
// one interface: the built-in models trained by `qianmian train` (a multi-task cross network, or
// gradient-boosted trees for tabular data such as one product and its customers' attributes),
// and any TorchScript module following the same contract (e.g. exported from Python).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"

namespace qm::rank {

// Gradient-boosted trees (XGBoost, `hist`): one booster for p_click and one for p_convert, on
// the categorical ids (as ordered codes) and the dense columns; the bag is not used.
// Defaults chosen on three Bank Marketing splits (docs/BENCHMARKS.md, issue 16).
struct GbdtOptions {
  int trees = 150;
  int depth = 6;
  float learning_rate = 0.05f;
  float min_child_weight = 20.0f;
  int threads = 0;  // training threads (0 = all cores); scoring is single-threaded per call
};

enum class RankerKind { kCrossNet, kGbdt };

struct RankerOptions {
  RankerKind kind = RankerKind::kCrossNet;
  GbdtOptions gbdt;      // kind kGbdt
  int field_dim = 12;    // width of each categorical embedding
  int cross_layers = 2;  // DCN-v2 cross layers (low rank)
  int cross_rank = 32;   // rank of each cross layer's weight
  int hidden1 = 128;     // deep tower widths
  int hidden2 = 64;
  // Width of the explicit customer x item factorisation, the form of a latent-factor click model:
  // (the customer's field, label and dense factors summed) . (the item's field and tag factors
  // and its own id factor summed), added to both logits; 0 = none.
  int factor_dim = 32;
  // L2 penalty (per row) on the items' own id factors: shrinks each item towards what its
  // attributes imply, which otherwise overfits on a few hundred impressions per item.
  float item_factor_l2 = 3.0f;
  // After training, refit each item's own factor to its MAP estimate given the rest of the model
  // (Newton steps on its rows under a Gaussian prior of this precision; 0 = no refit), in
  // item_refit_passes passes over the training rows.
  float item_refit_l2 = 10.0f;
  int item_refit_passes = 2;
  // Whether the network reads the two-tower inputs (u.v and u*v; the contract's columns stay).
  // Off for a ranker of logged exposures (the trainer's default, TrainConfig): the towers fit the
  // same training clicks, so the ranker learns to trust them more than they deserve on new pairs.
  bool tower_features = true;
  int epochs = 4;
  float learning_rate = 5e-3f;         // Adam, dense layers; lazy Adam, the factorisation's tables
  float sparse_learning_rate = 0.05f;  // Adagrad, embedding tables
  float convert_weight = 1.0f;         // weight of the conversion loss
  uint64_t seed = 42;
};

// One training batch: inputs, labels and per-row weights (e.g. 1/keep-rate for downsampled
// negatives, which keeps the predicted probabilities calibrated).
struct RankBatch {
  RankInputs inputs;
  std::vector<float> click;    // n, 0/1
  std::vector<float> convert;  // n, 0/1
  std::vector<float> weight;   // n, > 0
  void Clear() {
    inputs.Clear();
    click.clear();
    convert.clear();
    weight.clear();
  }
};

struct RankTrainStats {
  int64_t rows = 0;
  double seconds = 0;
  double rows_per_second = 0;
  std::vector<double> epoch_loss;
};

// Thread-safety: Score may run concurrently; Train is exclusive.
class Ranker {
 public:
  virtual ~Ranker() = default;

  // A new built-in model (options.kind) for inputs shaped by `builder` over `space` (both must
  // outlive it).
  static Result<std::unique_ptr<Ranker>> CreateBuiltin(const features::FeatureSpace& space,
                                                       const RankInputBuilder& builder, const RankerOptions& options);
  // Loads a version's model written by Save (its kind is in the `path`.json sidecar), or a
  // TorchScript module imported into the version (sidecar format kTorchScriptRankerFormat).
  static Result<std::unique_ptr<Ranker>> LoadBuiltin(const std::string& path, const features::FeatureSpace& space,
                                                     const RankInputBuilder& builder);
  // Loads a TorchScript module (torch.jit.save) following the input contract. It is probed
  // with a row of zeros and a row of each column's largest id (RankInputBuilder::CatVocab,
  // BagVocab); a module that rejects either or returns the wrong shape or values outside [0, 1]
  // is refused with InvalidArgument.
  static Result<std::unique_ptr<Ranker>> LoadTorchScript(const std::string& path, const RankInputBuilder& builder);

  // Writes p_click[n] and p_convert[n] for the rows of `inputs`.
  virtual Status Score(const RankInputs& inputs, float* p_click, float* p_convert) const = 0;
  // Trains for options.epochs passes; each pass calls `next(batch)` until it returns false,
  // then `rewind()` before the next pass. FailedPrecondition for TorchScript models.
  virtual Status Train(const std::function<bool(RankBatch*)>& next, const std::function<void()>& rewind,
                       const std::function<void(int64_t rows)>& on_batch, RankTrainStats* stats) = 0;
  virtual Status Save(const std::string& path) const = 0;
  virtual std::string kind() const = 0;  // "builtin", "gbdt" or "torchscript"
};

// The gradient-boosted trees (rank/src/gbdt_ranker.cc): a new model, and one loaded from Save's
// file (`meta` is its parsed sidecar).
Result<std::unique_ptr<Ranker>> CreateGbdtRanker(const RankInputBuilder& builder, const RankerOptions& options);
Result<std::unique_ptr<Ranker>> LoadGbdtRanker(const std::string& path, const RankInputBuilder& builder);

// The ranker.pt.json format of a TorchScript module imported into a version
// (`qianmian import ranker`).
inline constexpr const char* kTorchScriptRankerFormat = "qianmian.torchscript/1";

// The built-in cross network's libtorch forward pass (its training path), row by row: the
// reference that its Score (an inference path on OpenBLAS, rank/src/cross_net_inference.h) is
// tested and benchmarked against. InvalidArgument for other kinds of ranker.
Status ScoreWithLibtorch(const Ranker& ranker, const RankInputs& inputs, float* p_click, float* p_convert);

// The built-in cross network's matrix-product FLOPs per row (multiply-adds x 2): Score's for one
// request's rows and for rows of many customers, and ScoreWithLibtorch's; all 0 for other kinds.
// For benchmarks (qm_ranker_bench's FLOP/s against the core's sgemm).
struct ForwardFlops {
  int64_t one_request = 0, many_customers = 0, libtorch = 0;
};
ForwardFlops ForwardFlopsPerRow(const Ranker& ranker);

// Parses "cross_net" / "gbdt".
Result<RankerKind> ParseRankerKind(const std::string& name);
std::string RankerKindName(RankerKind kind);

}  // namespace qm::rank
