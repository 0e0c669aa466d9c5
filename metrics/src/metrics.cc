#include "qianmian/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace qm::metrics {

namespace {

// Positions (0-based, < k) of the first occurrence of each target in `ranked`, ascending.
std::vector<int> HitPositions(IndexSpan ranked, IndexSpan targets, int k) {
  std::vector<int> hits;
  if (k <= 0 || targets.empty()) return hits;
  std::vector<uint32_t> sorted(targets.begin(), targets.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<uint8_t> used(sorted.size(), 0);
  const size_t limit = std::min(ranked.size, static_cast<size_t>(k));
  for (size_t p = 0; p < limit; ++p) {
    const uint32_t item = ranked[p];
    if (item == kNoIndex) continue;
    auto it = std::lower_bound(sorted.begin(), sorted.end(), item);
    if (it == sorted.end() || *it != item) continue;
    const size_t slot = static_cast<size_t>(it - sorted.begin());
    if (used[slot]) continue;
    used[slot] = 1;
    hits.push_back(static_cast<int>(p));
  }
  return hits;
}

size_t DistinctCount(IndexSpan targets) {
  std::vector<uint32_t> sorted(targets.begin(), targets.end());
  std::sort(sorted.begin(), sorted.end());
  return static_cast<size_t>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
}

double Discount(int position) { return 1.0 / std::log2(static_cast<double>(position) + 2.0); }

double IdealDcg(size_t num_targets, int k) {
  const size_t n = std::min(num_targets, static_cast<size_t>(std::max(k, 0)));
  double idcg = 0;
  for (size_t p = 0; p < n; ++p) idcg += Discount(static_cast<int>(p));
  return idcg;
}

Status CheckInputs(const float* scores, const float* labels, size_t n, const float* weights, const char* score_name) {
  if (n > 0 && (scores == nullptr || labels == nullptr)) {
    return Status::InvalidArgument("null scores or labels for " + std::to_string(n) + " samples");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i])) {
      return Status::InvalidArgument(std::string(score_name) + " " + std::to_string(i) + " is not finite");
    }
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return Status::InvalidArgument("label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                                     ", not 0 or 1");
    }
    if (weights != nullptr && (!std::isfinite(weights[i]) || weights[i] < 0.0f)) {
      return Status::InvalidArgument("weight " + std::to_string(i) + " is negative or not finite");
    }
  }
  return Status::Ok();
}

// AUC over the samples idx[0..m), which must be sorted by ascending score.
// Returns false when one class has zero weight.
bool AucOfSorted(const uint32_t* idx, size_t m, const float* scores, const float* labels, const float* weights,
                 double* auc, double* total_weight) {
  double neg_below = 0, area = 0, pos_total = 0, neg_total = 0;
  size_t i = 0;
  while (i < m) {
    size_t j = i;
    double group_pos = 0, group_neg = 0;
    const float s = scores[idx[i]];
    while (j < m && scores[idx[j]] == s) {
      const double w = weights ? weights[idx[j]] : 1.0;
      if (labels[idx[j]] == 1.0f)
        group_pos += w;
      else
        group_neg += w;
      ++j;
    }
    area += group_pos * (neg_below + 0.5 * group_neg);
    neg_below += group_neg;
    pos_total += group_pos;
    neg_total += group_neg;
    i = j;
  }
  *total_weight = pos_total + neg_total;
  if (pos_total <= 0 || neg_total <= 0) return false;
  *auc = area / (pos_total * neg_total);
  return true;
}

}  // namespace

int HitsAtK(IndexSpan ranked, IndexSpan targets, int k) {
  return static_cast<int>(HitPositions(ranked, targets, k).size());
}

double RecallAtK(IndexSpan ranked, IndexSpan targets, int k) {
  const size_t distinct = DistinctCount(targets);
  if (distinct == 0) return 0.0;
  return static_cast<double>(HitsAtK(ranked, targets, k)) / static_cast<double>(distinct);
}

double NdcgAtK(IndexSpan ranked, IndexSpan targets, int k) {
  const size_t distinct = DistinctCount(targets);
  if (distinct == 0 || k <= 0) return 0.0;
  double dcg = 0;
  for (int p : HitPositions(ranked, targets, k)) dcg += Discount(p);
  return dcg / IdealDcg(distinct, k);
}

// ---- RankingMetrics ----

RankingMetrics::RankingMetrics(std::vector<int> ks) : ks_(std::move(ks)) {
  for (int k : ks_) {
    QM_CHECK_MSG(k >= 1, "RankingMetrics: every K must be >= 1");
    max_k_ = std::max(max_k_, k);
  }
  recall_sum_.assign(ks_.size(), 0.0);
  ndcg_sum_.assign(ks_.size(), 0.0);
  hit_users_.assign(ks_.size(), 0.0);
}

void RankingMetrics::Add(IndexSpan ranked, IndexSpan targets) {
  const size_t distinct = DistinctCount(targets);
  if (distinct == 0) return;
  // One pass at the largest K serves every K: hits at positions < k.
  const std::vector<int> hits = HitPositions(ranked, targets, max_k_);
  ++users_;
  for (size_t s = 0; s < ks_.size(); ++s) {
    const int k = ks_[s];
    int n_hits = 0;
    double dcg = 0;
    for (int p : hits) {
      if (p >= k) break;
      ++n_hits;
      dcg += Discount(p);
    }
    recall_sum_[s] += static_cast<double>(n_hits) / static_cast<double>(distinct);
    ndcg_sum_[s] += dcg / IdealDcg(distinct, k);
    if (n_hits > 0) hit_users_[s] += 1.0;
  }
}

void RankingMetrics::AddBatch(const uint32_t* ranked, size_t n, int width, const IndexLists& targets, size_t first) {
  QM_CHECK(first + n <= targets.size());
  for (size_t i = 0; i < n; ++i) {
    Add(IndexSpan(ranked + i * static_cast<size_t>(width), static_cast<size_t>(width)), targets[first + i]);
  }
}

void RankingMetrics::Merge(const RankingMetrics& other) {
  QM_CHECK_MSG(other.ks_ == ks_, "RankingMetrics::Merge: different K lists");
  users_ += other.users_;
  for (size_t s = 0; s < ks_.size(); ++s) {
    recall_sum_[s] += other.recall_sum_[s];
    ndcg_sum_[s] += other.ndcg_sum_[s];
    hit_users_[s] += other.hit_users_[s];
  }
}

std::vector<RankingMetrics::AtK> RankingMetrics::Summary() const {
  std::vector<AtK> out(ks_.size());
  const double denom = users_ > 0 ? static_cast<double>(users_) : 1.0;
  for (size_t s = 0; s < ks_.size(); ++s) {
    out[s].k = ks_[s];
    out[s].recall = recall_sum_[s] / denom;
    out[s].ndcg = ndcg_sum_[s] / denom;
    out[s].hit_rate = hit_users_[s] / denom;
  }
  return out;
}

size_t RankingMetrics::Slot(int k) const {
  auto it = std::find(ks_.begin(), ks_.end(), k);
  QM_CHECK_MSG(it != ks_.end(), "RankingMetrics: K=" + std::to_string(k) + " was not requested");
  return static_cast<size_t>(it - ks_.begin());
}

double RankingMetrics::Recall(int k) const {
  const size_t s = Slot(k);
  return users_ > 0 ? recall_sum_[s] / static_cast<double>(users_) : 0.0;
}

double RankingMetrics::Ndcg(int k) const {
  const size_t s = Slot(k);
  return users_ > 0 ? ndcg_sum_[s] / static_cast<double>(users_) : 0.0;
}

double CatalogueCoverage(const uint32_t* ranked, size_t n, int width, int k, uint32_t num_items) {
  if (num_items == 0 || width <= 0 || k <= 0) return 0.0;
  std::vector<uint8_t> shown(num_items, 0);
  uint64_t distinct = 0;
  const size_t limit = static_cast<size_t>(std::min(k, width));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t* row = ranked + i * static_cast<size_t>(width);
    for (size_t p = 0; p < limit; ++p) {
      const uint32_t item = row[p];
      if (item >= num_items || shown[item]) continue;  // also skips kNoIndex
      shown[item] = 1;
      ++distinct;
    }
  }
  return static_cast<double>(distinct) / static_cast<double>(num_items);
}

// ---- Classification ----

Result<double> Auc(const float* scores, const float* labels, size_t n, const float* weights) {
  QM_RETURN_IF_ERROR(CheckInputs(scores, labels, n, weights, "score"));
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  double auc = 0.5, total = 0;
  if (!AucOfSorted(idx.data(), n, scores, labels, weights, &auc, &total)) return 0.5;
  return auc;
}

Result<double> GroupAuc(const float* scores, const float* labels, const uint32_t* groups, size_t n,
                        const float* weights, int64_t* groups_used) {
  if (groups_used != nullptr) *groups_used = 0;
  QM_RETURN_IF_ERROR(CheckInputs(scores, labels, n, weights, "score"));
  if (n > 0 && groups == nullptr) return Status::InvalidArgument("null group ids");
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
    if (groups[a] != groups[b]) return groups[a] < groups[b];
    return scores[a] < scores[b];
  });
  double weighted = 0, weight_sum = 0;
  int64_t used = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && groups[idx[j]] == groups[idx[i]]) ++j;
    double auc = 0, total = 0;
    if (AucOfSorted(idx.data() + i, j - i, scores, labels, weights, &auc, &total)) {
      weighted += auc * total;
      weight_sum += total;
      ++used;
    }
    i = j;
  }
  if (groups_used != nullptr) *groups_used = used;
  if (used == 0 || weight_sum <= 0) return 0.5;
  return weighted / weight_sum;
}

Result<double> LogLoss(const float* probabilities, const float* labels, size_t n, const float* weights) {
  QM_RETURN_IF_ERROR(CheckInputs(probabilities, labels, n, weights, "probability"));
  constexpr double kEps = 1e-7;
  double loss = 0, total = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p_raw = probabilities[i];
    if (p_raw < 0.0 || p_raw > 1.0) {
      return Status::InvalidArgument("probability " + std::to_string(i) + " is " + std::to_string(p_raw) +
                                     ", outside [0, 1]");
    }
    const double p = std::clamp(p_raw, kEps, 1.0 - kEps);
    const double w = weights ? weights[i] : 1.0;
    loss -= w * (labels[i] == 1.0f ? std::log(p) : std::log(1.0 - p));
    total += w;
  }
  if (total <= 0) return Status::InvalidArgument("log loss of zero total weight");
  return loss / total;
}

}  // namespace qm::metrics
