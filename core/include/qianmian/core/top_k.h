// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// The k best (score, label) pairs of a stream, for exact and approximate nearest-neighbour
// scans: a min-heap of at most k, so a scan of n scores costs O(n log k).
#pragma once

#include <emmintrin.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace qm {

template <typename Label>
class TopK {
 public:
  using Entry = std::pair<float, Label>;

  explicit TopK(int64_t k = 0) { Reset(k); }

  // Empties the heap and keeps the k best from now on.
  void Reset(int64_t k) {
    k_ = std::max<int64_t>(k, 0);
    heap_.clear();
    heap_.reserve(static_cast<size_t>(k_));
  }

  // Keeps (score, label) if it is among the k best so far; a score equal to the worst kept one
  // does not displace it.
  void Push(float score, Label label) {
    if (static_cast<int64_t>(heap_.size()) < k_) {
      heap_.emplace_back(score, label);
      std::push_heap(heap_.begin(), heap_.end(), Worse);
    } else if (k_ > 0 && score > heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end(), Worse);
      heap_.back() = {score, label};
      std::push_heap(heap_.begin(), heap_.end(), Worse);
    }
  }

  // Push(scores[j], label(j)) for j < n, in order. Once k pairs are kept only a score above the
  // worst kept one can enter, and in a long scan almost none does: four scores at a time are
  // compared with that threshold (SSE2, which every x86-64 CPU has) and only a block holding a
  // score above it goes through the heap. Measured: the selection was a third of a 1M push run
  // and 42% of a million contents' item-to-item table before (docs/BENCHMARKS.md, issue 21).
  template <typename LabelOf>
  void PushAll(const float* scores, int64_t n, LabelOf label) {
    int64_t j = 0;
    for (; j < n && !full(); ++j) Push(scores[j], label(j));
    if (j >= n || !full()) return;
    __m128 t = _mm_set1_ps(Threshold());
    for (; j + 4 <= n; j += 4) {
      if (_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(scores + j), t)) == 0) continue;
      for (int64_t i = j; i < j + 4; ++i) Push(scores[i], label(i));
      t = _mm_set1_ps(Threshold());
    }
    for (; j < n; ++j) Push(scores[j], label(j));
  }

  // Whether k pairs are kept; then only a score above Threshold() can enter.
  bool full() const { return k_ > 0 && static_cast<int64_t>(heap_.size()) >= k_; }
  // The worst kept score (REQUIRES full()).
  float Threshold() const { return heap_.front().first; }

  // The kept pairs, best first (equal scores: smaller label first). Push after it needs Reset.
  const std::vector<Entry>& SortBestFirst() {
    std::sort_heap(heap_.begin(), heap_.end(), Worse);
    return heap_;
  }

 private:
  // The heap's order: its front is the worst kept pair.
  static bool Worse(const Entry& a, const Entry& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }

  int64_t k_ = 0;
  std::vector<Entry> heap_;
};

}  // namespace qm
