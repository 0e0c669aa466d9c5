#include "exact_topk.h"

#include <cblas.h>

#include <algorithm>
#include <functional>
#include <utility>

namespace qm::serving {

ExactTopK::ExactTopK(std::vector<float> rows, std::vector<int64_t> labels, int dim)
    : rows_(std::move(rows)), labels_(std::move(labels)), dim_(dim) {}

void ExactTopK::Search(const float* q, int64_t nq, int k, int64_t* labels) const {
  std::fill(labels, labels + nq * k, -1);
  const int64_t n = size();
  if (n == 0 || k <= 0) return;
  constexpr int64_t kBlock = 32;  // queries per product: 32 x n scores (12.8 MB at n = 100k)
  std::vector<float> scores(static_cast<size_t>(std::min(nq, kBlock)) * n);
  std::vector<std::pair<float, int64_t>> heap;  // min-heap of the k best so far
  auto worse = [](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  for (int64_t lo = 0; lo < nq; lo += kBlock) {
    const int64_t m = std::min(kBlock, nq - lo);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n), dim_, 1.0f,
                q + lo * dim_, dim_, rows_.data(), dim_, 0.0f, scores.data(), static_cast<int>(n));
    for (int64_t i = 0; i < m; ++i) {
      const float* s = scores.data() + i * n;
      heap.clear();
      for (int64_t r = 0; r < n; ++r) {
        if (static_cast<int>(heap.size()) < k) {
          heap.emplace_back(s[r], r);
          std::push_heap(heap.begin(), heap.end(), worse);
        } else if (s[r] > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), worse);
          heap.back() = {s[r], r};
          std::push_heap(heap.begin(), heap.end(), worse);
        }
      }
      std::sort_heap(heap.begin(), heap.end(), worse);  // best first
      int64_t* out = labels + (lo + i) * k;
      for (size_t j = 0; j < heap.size(); ++j) out[j] = labels_[heap[j].second];
    }
  }
}

}  // namespace qm::serving
