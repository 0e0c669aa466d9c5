#include "exact_topk.h"

#include <cblas.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <utility>

namespace qm::serving {

ExactTopK::ExactTopK(std::vector<float> rows, std::vector<int64_t> labels, int dim)
    : rows_(std::move(rows)), labels_(std::move(labels)), dim_(dim) {}

void ExactTopK::Search(const float* q, int64_t nq, int k, int64_t* labels) const {
  std::fill(labels, labels + nq * k, -1);
  const int64_t n = size();
  if (n == 0 || k <= 0 || nq <= 0) return;
  // Item chunks keep the score block in cache and pack each chunk of rows once for all the
  // queries of a block (BLAS packs the larger operand per call: one pass over the rows per
  // block of queries, not per few queries).
  constexpr int64_t kQueries = 256, kRows = 4096;
  const int64_t qb = std::min(nq, kQueries);
  std::vector<float> scores(static_cast<size_t>(qb) * kRows);
  std::vector<std::vector<std::pair<float, int64_t>>> heaps(qb);  // per query: min-heap of the k best
  auto worse = [](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  for (int64_t lo = 0; lo < nq; lo += kQueries) {
    const int64_t m = std::min(kQueries, nq - lo);
    for (int64_t i = 0; i < m; ++i) {
      heaps[i].clear();
      heaps[i].reserve(k);
    }
    for (int64_t r0 = 0; r0 < n; r0 += kRows) {
      const int64_t rows = std::min(kRows, n - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(rows), dim_, 1.0f,
                  q + lo * dim_, dim_, rows_.data() + r0 * dim_, dim_, 0.0f, scores.data(), static_cast<int>(rows));
      for (int64_t i = 0; i < m; ++i) {
        const float* s = scores.data() + i * rows;
        auto& heap = heaps[i];
        float floor = static_cast<int>(heap.size()) < k ? -std::numeric_limits<float>::infinity() : heap.front().first;
        for (int64_t r = 0; r < rows; ++r) {
          if (!(s[r] > floor) && static_cast<int>(heap.size()) >= k) continue;
          if (static_cast<int>(heap.size()) < k) {
            heap.emplace_back(s[r], r0 + r);
            std::push_heap(heap.begin(), heap.end(), worse);
          } else {
            std::pop_heap(heap.begin(), heap.end(), worse);
            heap.back() = {s[r], r0 + r};
            std::push_heap(heap.begin(), heap.end(), worse);
          }
          if (static_cast<int>(heap.size()) >= k) floor = heap.front().first;
        }
      }
    }
    for (int64_t i = 0; i < m; ++i) {
      auto& heap = heaps[i];
      std::sort_heap(heap.begin(), heap.end(), worse);  // best first
      int64_t* out = labels + (lo + i) * k;
      for (size_t j = 0; j < heap.size(); ++j) out[j] = labels_[heap[j].second];
    }
  }
}

}  // namespace qm::serving
