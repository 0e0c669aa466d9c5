#include "exact_topk.h"

#include <cblas.h>

#include <algorithm>
#include <utility>

#include "qianmian/core/top_k.h"

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
  std::vector<TopK<int64_t>> best(qb);  // per query: the k best rows
  for (int64_t lo = 0; lo < nq; lo += kQueries) {
    const int64_t m = std::min(kQueries, nq - lo);
    for (int64_t i = 0; i < m; ++i) best[i].Reset(k);
    for (int64_t r0 = 0; r0 < n; r0 += kRows) {
      const int64_t rows = std::min(kRows, n - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(rows), dim_, 1.0f,
                  q + lo * dim_, dim_, rows_.data() + r0 * dim_, dim_, 0.0f, scores.data(), static_cast<int>(rows));
      for (int64_t i = 0; i < m; ++i)
        best[i].PushAll(scores.data() + i * rows, rows, [r0](int64_t j) { return r0 + j; });
    }
    for (int64_t i = 0; i < m; ++i) {
      const auto& sorted = best[i].SortBestFirst();
      int64_t* out = labels + (lo + i) * k;
      for (size_t j = 0; j < sorted.size(); ++j) out[j] = labels_[sorted[j].second];
    }
  }
}

}  // namespace qm::serving
