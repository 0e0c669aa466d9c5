#include "exact_topk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace qm::serving {
namespace {

// ExactTopK against a full sort of every score, best first and smaller row first on ties: many
// queries, k from 1 to beyond the rows, rows in several blocks, and scores with many ties
// (embeddings on a coarse grid) so the threshold filter meets equal scores.
TEST(ExactTopK, EqualsAFullSortOfEveryScoreTiesIncluded) {
  std::mt19937 rng(7);
  for (bool coarse : {false, true}) {
    const int dim = 8, n = 9003, nq = 300;  // n: three blocks, the last not a multiple of 4
    std::vector<float> rows(n * dim), queries(nq * dim);
    std::normal_distribution<float> g(0, 1);
    auto draw = [&] { return coarse ? std::round(g(rng)) : g(rng); };
    for (float& x : rows) x = draw();
    for (float& x : queries) x = draw();
    std::vector<int64_t> labels(n);
    std::iota(labels.begin(), labels.end(), 1000);
    ExactTopK index(rows, labels, dim);
    for (int k : {1, 7, 100, n + 5}) {
      std::vector<int64_t> got(static_cast<size_t>(nq) * k);
      index.Search(queries.data(), nq, k, got.data());
      for (int q = 0; q < nq; q += 37) {
        std::vector<std::pair<float, int>> all(n);
        for (int r = 0; r < n; ++r) {
          float s = 0;
          for (int d = 0; d < dim; ++d) s += queries[q * dim + d] * rows[r * dim + d];
          all[r] = {s, r};
        }
        std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
          return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        for (int j = 0; j < k; ++j) {
          const int64_t want = j < n ? labels[all[j].second] : -1;
          // Scores equal up to rounding may swap places between BLAS and this loop.
          if (got[q * k + j] != want && j < n) {
            const int r = static_cast<int>(got[q * k + j] - 1000);
            float s = 0;
            for (int d = 0; d < dim; ++d) s += queries[q * dim + d] * rows[r * dim + d];
            ASSERT_NEAR(s, all[j].first, 1e-4) << "query " << q << ", k " << k << ", place " << j;
          } else {
            ASSERT_EQ(got[q * k + j], want) << "query " << q << ", k " << k << ", place " << j;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qm::serving
