// Exact top-k by inner product of many queries against one matrix, by blocked SGEMM (BLAS).
// Push runs use it over the content catalogue: for a batch of customers one matrix product
// scores every item, which on CPUs without a SIMD build of Faiss is faster than HNSW at
// catalogue sizes up to a few hundred thousand items, and exact. Private to serving.
#pragma once

#include <cstdint>
#include <vector>

namespace qm::serving {

// Immutable after construction; Search is thread-safe.
class ExactTopK {
 public:
  // Copies `n` rows (row-major n x dim) and their labels.
  ExactTopK(std::vector<float> rows, std::vector<int64_t> labels, int dim);

  // For `nq` queries (row-major nq x dim) writes the k best labels of each into labels[nq*k],
  // best first; -1 where fewer than k rows exist.
  void Search(const float* queries, int64_t nq, int k, int64_t* labels) const;

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }

 private:
  std::vector<float> rows_;
  std::vector<int64_t> labels_;
  int dim_;
};

}  // namespace qm::serving
