// Module recall: the two-tower retrieval model and vector search. May depend on: core, features;
// torchutil, libtorch, Faiss, Eigen (private).
// Nearest-neighbour search over item embeddings by inner product (the recall stage's ANN).
// Wraps Faiss behind a small interface: callers never see Faiss, tests can substitute a fake.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/status.h"

namespace qm::recall {

enum class IndexKind : uint8_t {
  kAuto,   // exact up to VectorIndexOptions::exact_max vectors, IVF above
  kExact,  // brute force; recall 1.0
  kHnsw,   // graph index; recall measured against exact with MeasureRecallAgainstExact
  kIvf,    // inverted lists over k-means cells (IVF-Flat); likewise measured
};
const char* IndexKindName(IndexKind k);
// "auto", "exact", "hnsw" or "ivf"; InvalidArgument naming the accepted values otherwise.
Result<IndexKind> ParseIndexKind(const std::string& name);

struct VectorIndexOptions {
  int dim = 0;  // REQUIRED: embedding width
  IndexKind kind = IndexKind::kAuto;
  int64_t exact_max = 30000;      // kAuto picks exact search up to this many vectors
  int hnsw_m = 32;                // HNSW graph degree
  int hnsw_ef_construction = 80;  // HNSW build effort
  int hnsw_ef_search = 128;       // HNSW search effort (recall vs. speed); at least k
  int ivf_nlist = 0;              // IVF cells; 0 = 4 sqrt(n), with at least 39 vectors a cell
  int ivf_nprobe = 32;            // IVF cells scanned per query (recall vs. speed)
};

// Thread-safety: Search may run concurrently from many threads; Add and Remove take an
// exclusive lock inside, so they may be called while searches run (they wait for them).
class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  // Builds an index over `n` vectors (row-major n x dim) labelled `ids` (n, each >= 0, unique).
  static Result<std::unique_ptr<VectorIndex>> Build(const VectorIndexOptions& options, const float* vectors,
                                                    const int64_t* ids, int64_t n);
  // Reads an index written by Save. Corruption if the file is not one.
  static Result<std::unique_ptr<VectorIndex>> Load(const std::string& path);

  // For `nq` queries (row-major nq x dim) writes the k best labels and inner products of
  // each into labels[nq*k] and scores[nq*k], best first; label -1 where fewer than k exist.
  // Removed ids never appear.
  virtual Status Search(const float* queries, int64_t nq, int k, int64_t* labels, float* scores) const = 0;
  // Adds n vectors; an id already present is replaced (its old vector no longer matches).
  virtual Status Add(const float* vectors, const int64_t* ids, int64_t n) = 0;
  // Removes ids (unknown ids are ignored). Returns how many were removed.
  virtual Result<int64_t> Remove(const int64_t* ids, int64_t n) = 0;
  virtual Status Save(const std::string& path) const = 0;

  // The search effort of an approximate index (HNSW efSearch, IVF nprobe; 0 for exact).
  // SetSearchEffort clamps to the index's range (IVF: 1..cells) and may run during searches.
  virtual int search_effort() const = 0;
  virtual void SetSearchEffort(int effort) = 0;

  virtual int64_t size() const = 0;  // live vectors
  virtual int dim() const = 0;
  virtual IndexKind kind() const = 0;  // never kAuto
};

// Mean share of the exact top-k that `index` also returns, over `nq` queries. Exact search
// runs over the same vectors (row-major n x dim with `ids`). Used to verify an approximate
// index (the target is >= 0.95 at k = 100) before it is published.
Result<double> MeasureRecallAgainstExact(const VectorIndex& index, const float* vectors, const int64_t* ids, int64_t n,
                                         const float* queries, int64_t nq, int k);

// Item-to-item lists: for each of `nq` queries (row-major nq x dim), the k best labels of
// `index` other than self[q] (a query's own label; -1 = none), best first, into out[q * k ..],
// -1 where fewer exist. Searches in chunks on every core (OpenBLAS on one thread under each),
// over an IVF index with the queries grouped by their nearest cell, so nq may be the whole catalogue.
Status NeighbourLists(const VectorIndex& index, const float* queries, const int64_t* self, int64_t nq, int k,
                      int32_t* out);

// A version's item-to-item table: for each embedding row, the k nearest rows among products
// (kind 0) and among content (kind 1), computed offline so that serving searches only for
// items embedded after training. File: "QMNT", version 1, rows, k, then rows x 2 x k int32.
struct NeighbourTable {
  int64_t rows = 0;
  int k = 0;
  std::vector<int32_t> labels;  // rows x 2 x k, -1 padded
  const int32_t* List(int64_t row, int kind) const { return labels.data() + (row * 2 + kind) * k; }
};
Status SaveNeighbourTable(const NeighbourTable& t, const std::string& path);
// Corruption if the file is not a table or its size does not match its header.
Result<NeighbourTable> LoadNeighbourTable(const std::string& path);

// Sets an approximate index's search effort to the smallest value (searched over doublings,
// then bisected) at which Recall@k against exact search over `queries` reaches `target`, or to
// the largest effort if none does. Returns the recall at the chosen effort; exact: 1.0.
Result<double> TuneSearchEffort(VectorIndex* index, const float* vectors, const int64_t* ids, int64_t n,
                                const float* queries, int64_t nq, int k, double target);

}  // namespace qm::recall
