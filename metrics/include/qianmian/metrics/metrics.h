// qianmian::metrics: offline metrics and the one definition of the project's held-out metric,
// shared by training's evaluation and the synthetic bank's oracle. Depends on core only.
//
// metrics.h: ranking quality of top-K lists against held-out targets (Recall@K, NDCG@K,
// catalogue coverage) and classification quality of scores against 0/1 labels (AUC, group AUC,
// log loss). held_out.h: the held-out period and targets. Plain data in, numbers out; every
// function is thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "qianmian/core/status.h"

namespace qm::metrics {

// Marks an empty slot in a top-K row (fewer than K items were eligible). Never a target.
inline constexpr uint32_t kNoIndex = std::numeric_limits<uint32_t>::max();

// A non-owning view of item (or customer) indexes; C++17 has no std::span.
// The viewed memory must outlive the view.
struct IndexSpan {
  const uint32_t* data = nullptr;
  size_t size = 0;

  IndexSpan() = default;
  IndexSpan(const uint32_t* d, size_t n) : data(d), size(n) {}
  IndexSpan(const std::vector<uint32_t>& v) : data(v.data()), size(v.size()) {}  // NOLINT
  const uint32_t* begin() const { return data; }
  const uint32_t* end() const { return data + size; }
  uint32_t operator[](size_t i) const { return data[i]; }
  bool empty() const { return size == 0; }
};

// Many short index lists stored back to back (CSR): list i is
// ids[offsets[i] .. offsets[i+1]). Used for per-customer targets, seen items and exclusions.
struct IndexLists {
  std::vector<uint64_t> offsets{0};  // size() + 1 entries, offsets[0] = 0
  std::vector<uint32_t> ids;

  size_t size() const { return offsets.size() - 1; }
  IndexSpan operator[](size_t i) const {
    return IndexSpan(ids.data() + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
  }
  // Appends one list (copied as given).
  void Append(IndexSpan list) {
    ids.insert(ids.end(), list.begin(), list.end());
    offsets.push_back(ids.size());
  }
  void Clear() {
    offsets.assign(1, 0);
    ids.clear();
  }
};

// ---- Ranking metrics of one user -------------------------------------------------------------
// `ranked`: item indexes, best first (kNoIndex entries are empty slots and never hit; an item
// listed twice counts once). `targets`: the relevant items, any order, duplicates ignored.
// Only the first k entries of `ranked` count (all of them when it is shorter).

// |top-k ∩ targets|.
int HitsAtK(IndexSpan ranked, IndexSpan targets, int k);
// |top-k ∩ targets| / |targets|; 0 when targets is empty.
double RecallAtK(IndexSpan ranked, IndexSpan targets, int k);
// Binary-relevance NDCG: DCG = Σ over hit positions p (0-based, p < k) of 1/log2(p+2), divided
// by the ideal DCG over min(k, |targets|) positions. 0 when targets is empty.
double NdcgAtK(IndexSpan ranked, IndexSpan targets, int k);

// Mean ranking metrics over users, for several K at once. Users whose target list is empty
// are not counted. Not thread-safe; use one per thread and Merge.
class RankingMetrics {
 public:
  // REQUIRES: every k >= 1. Default K = 10, 20, 50.
  explicit RankingMetrics(std::vector<int> ks = {10, 20, 50});

  // Adds one user.
  void Add(IndexSpan ranked, IndexSpan targets);
  // Adds n users: row i of `ranked` (row-major n x width) against targets[first + i].
  // REQUIRES: first + n <= targets.size().
  void AddBatch(const uint32_t* ranked, size_t n, int width, const IndexLists& targets, size_t first = 0);
  // Adds the users of `other`. REQUIRES: same ks.
  void Merge(const RankingMetrics& other);

  struct AtK {
    int k = 0;
    double recall = 0;    // mean Recall@k
    double ndcg = 0;      // mean NDCG@k
    double hit_rate = 0;  // share of users with at least one target in the top k
  };
  // One entry per K, in construction order; zeros when no user was added.
  std::vector<AtK> Summary() const;
  // Mean Recall@k / NDCG@k for one of the construction's K. REQUIRES: k is one of ks().
  double Recall(int k) const;
  double Ndcg(int k) const;
  int64_t users() const { return users_; }
  const std::vector<int>& ks() const { return ks_; }

 private:
  size_t Slot(int k) const;
  std::vector<int> ks_;
  int max_k_ = 0;
  int64_t users_ = 0;
  std::vector<double> recall_sum_, ndcg_sum_, hit_users_;
};

// Share of the catalogue's `num_items` items that appear in the first k entries of at least one
// of `n` rows of `ranked` (row-major n x width). kNoIndex and indexes >= num_items are ignored.
// 0 when num_items is 0.
double CatalogueCoverage(const uint32_t* ranked, size_t n, int width, int k, uint32_t num_items);

// ---- Classification metrics ------------------------------------------------------------------
// Inputs are n samples: `scores` (any real; probabilities for LogLoss), `labels` (each 0 or 1),
// optional `weights` (each >= 0; null = all 1) and, for GroupAuc, `groups` (e.g. customer
// index). InvalidArgument for a label other than 0/1, a NaN/infinite score or a negative or
// non-finite weight.

// Area under the ROC curve: the (weighted) probability that a random positive scores above a
// random negative, ties counting one half (the average-rank rule). 0.5 when either class has
// zero total weight (including n = 0), so the result is never NaN.
Result<double> Auc(const float* scores, const float* labels, size_t n, const float* weights = nullptr);

// Group AUC: the AUC within each group, averaged with the group's total sample weight (its
// sample count when weights is null) as weight. Groups with only one class are skipped.
// 0.5 when no group has both classes. `groups_used` (may be null) receives how many counted.
Result<double> GroupAuc(const float* scores, const float* labels, const uint32_t* groups, size_t n,
                        const float* weights = nullptr, int64_t* groups_used = nullptr);

// Mean (weighted) binary cross-entropy of probabilities, each clipped to [1e-7, 1 - 1e-7].
// InvalidArgument for a probability outside [0, 1] or when the total weight is 0.
Result<double> LogLoss(const float* probabilities, const float* labels, size_t n, const float* weights = nullptr);

}  // namespace qm::metrics
