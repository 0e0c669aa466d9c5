#include "exact_topk.h"

#include <cblas.h>
#include <emmintrin.h>

#include <algorithm>
#include <utility>

#include "qianmian/core/top_k.h"

namespace qm::serving {

namespace {

// best->Push(s[r], first + r) for r < n. Once k are kept, only a score above the worst kept one
// can enter, and almost none does: four scores at a time are compared with that threshold (SSE2,
// which every x86-64 CPU has) and only a block with a score above it goes through the heap.
// Measured: the selection was about a third of a 1M push run's time (docs/BENCHMARKS.md, issue 21).
void PushAll(const float* s, int64_t n, int64_t first, TopK<int64_t>* best) {
  int64_t r = 0;
  for (; r < n && !best->full(); ++r) best->Push(s[r], first + r);
  if (r >= n || !best->full()) return;
  __m128 t = _mm_set1_ps(best->Threshold());
  for (; r + 4 <= n; r += 4) {
    if (_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(s + r), t)) == 0) continue;
    for (int64_t j = r; j < r + 4; ++j) best->Push(s[j], first + j);
    t = _mm_set1_ps(best->Threshold());
  }
  for (; r < n; ++r) best->Push(s[r], first + r);
}

}  // namespace

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
  std::vector<TopK<int64_t>> best(qb);  // per query: the k best rows
  for (int64_t lo = 0; lo < nq; lo += kQueries) {
    const int64_t m = std::min(kQueries, nq - lo);
    for (int64_t i = 0; i < m; ++i) best[i].Reset(k);
    for (int64_t r0 = 0; r0 < n; r0 += kRows) {
      const int64_t rows = std::min(kRows, n - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(rows), dim_, 1.0f,
                  q + lo * dim_, dim_, rows_.data() + r0 * dim_, dim_, 0.0f, scores.data(), static_cast<int>(rows));
      for (int64_t i = 0; i < m; ++i) PushAll(scores.data() + i * rows, rows, r0, &best[i]);
    }
    for (int64_t i = 0; i < m; ++i) {
      const auto& sorted = best[i].SortBestFirst();
      int64_t* out = labels + (lo + i) * k;
      for (size_t j = 0; j < sorted.size(); ++j) out[j] = labels_[sorted[j].second];
    }
  }
}

}  // namespace qm::serving
