// Module training: offline training and evaluation runs. May depend on: core, metrics, features,
// recall, rank, policy; artifacts, Eigen (private).
// Non-neural recommenders to compare the trained models against: popularity, item-kNN (cosine)
// and EASE (Steck 2019). All fit on the binary customer x item matrix of training positives and
// answer batches of customers with their top-K items, excluded items left out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/metrics/held_out.h"
#include "qianmian/metrics/metrics.h"
#include "qianmian/training/split.h"

namespace qm {
class Dataset;
}  // namespace qm

namespace qm::training {

// The training positives (click, convert, push_open) of an event log: a binary customer x item
// matrix stored by customer, and per-item counts of positive events.
struct Interactions {
  uint32_t num_customers = 0;
  uint32_t num_items = 0;
  metrics::IndexLists items;             // num_customers lists: items with a positive, sorted
  std::vector<uint64_t> item_positives;  // num_items: positive events per item (not distinct)
  uint64_t num_positives = 0;            // positive events counted
};

struct InteractionOptions {
  std::optional<ChannelId> channel;  // only positives on this channel; Default: every channel
};

// The positives of `events` outside the held-out part of `split` (null = every event).
// InvalidArgument when an event's customer >= num_customers or item >= num_items, or when the
// split was not made from `events`.
Result<Interactions> BuildInteractions(const EventLog& events, const Split* split, uint32_t num_customers,
                                       uint32_t num_items, const InteractionOptions& options = {});

// Per item: 1 when the item is of `kind`. For PopularityOptions::allowed_items and the like.
std::vector<uint8_t> ItemsOfKind(const Dataset& data, ItemKind kind);

// A fitted recommender. Thread-safety: Recommend is const and may run concurrently.
class Recommender {
 public:
  virtual ~Recommender() = default;

  // For `n` customers writes each one's k best items, best first, into items[n*k] and their
  // scores into scores[n*k] (scores may be null). Row i never holds an item of exclude[i]
  // (exclude may be null; else REQUIRES exclude->size() == n) nor an item outside the fit's
  // allowed_items. Equal scores are ordered by training popularity, then by item index. A row
  // with fewer than k candidates is padded with metrics::kNoIndex (score -infinity). A customer index
  // the fit never saw has no history (a cold start), which is not an error.
  // InvalidArgument when k < 1 or exclude has the wrong size.
  virtual Status Recommend(const uint32_t* customers, size_t n, int k, const metrics::IndexLists* exclude,
                           uint32_t* items, float* scores) const = 0;

  virtual const char* name() const = 0;  // "popularity", "item_knn", "ease"
  virtual uint32_t num_items() const = 0;
};

// Options every baseline shares.
struct CandidateOptions {
  std::vector<uint8_t> allowed_items;  // per item, 1 = may be recommended; Default: empty = all
  int threads = 0;                     // scoring threads; Default: 0 = all cores
};

// Most training positives first, the same list for everyone (minus exclusions). Restrict it to
// a channel with InteractionOptions::channel and to a kind with allowed_items = ItemsOfKind.
struct PopularityOptions : CandidateOptions {};
Result<std::unique_ptr<Recommender>> FitPopularity(const Interactions& data, const PopularityOptions& options = {});

// Item-kNN: cosine similarity between item columns of the binary matrix,
// sim(i, j) = |C(i) ∩ C(j)| / sqrt(|C(i)| |C(j)|) with C(i) the customers who liked i; each item
// keeps its `neighbours` most similar other items; score(c, i) = Σ over items j in c's history
// of sim(j, i) when i is among j's neighbours.
struct ItemKnnOptions : CandidateOptions {
  int neighbours = 100;  // kept per item; >= 1
};

// The kept neighbours of every item: neighbours[j] lists j's most similar items (best first,
// ties by index) and similarity[offset] the matching cosine (aligned with neighbours.ids).
struct ItemNeighbours {
  metrics::IndexLists neighbours;  // num_items lists
  std::vector<float> similarity;
};
// InvalidArgument when neighbours < 1. `threads` 0 = all cores.
Result<ItemNeighbours> ComputeItemNeighbours(const Interactions& data, int neighbours, int threads = 0);
Result<std::unique_ptr<Recommender>> FitItemKnn(const Interactions& data, const ItemKnnOptions& options = {});

// EASE: B = I - P diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; score(c) = x_c B.
// Only items with at least one training positive enter the dense matrices (others score 0).
// Memory: two dense m x m matrices for m such items (8 bytes an entry up to 6000 items, 4 above).
struct EaseOptions : CandidateOptions {
  double lambda = 300.0;      // L2 regularisation; >= 0
  int64_t max_items = 30000;  // refuse (ResourceExhausted) above this many items with positives
};
// The EASE weights over all num_items items, row-major num_items x num_items (row j = what
// item j in a history adds to every item's score). For tests and small catalogues.
// ResourceExhausted above max_items; FailedPrecondition when XᵀX + λI is singular (λ = 0).
Result<std::vector<float>> ComputeEaseWeights(const Interactions& data, const EaseOptions& options);
Result<std::unique_ptr<Recommender>> FitEase(const Interactions& data, const EaseOptions& options = {});

// Ranking metrics of `recommender` on `targets`: each evaluated customer's top max(ks) with
// their seen items excluded, against their targets; plus catalogue coverage per K.
struct RankingEvaluation {
  metrics::RankingMetrics ranking;
  std::vector<double> coverage;  // per K of ranking.ks(), share of the recommender's items
};
Result<RankingEvaluation> EvaluateRecommender(const Recommender& recommender, const metrics::EvalTargets& targets,
                                              std::vector<int> ks = {10, 20, 50});

}  // namespace qm::training
