// The built-in cross network's forward pass for scoring, on plain float arrays and OpenBLAS's
// sgemm, without libtorch: the same function as CrossNetImpl::Logits (ranker.cc), which stays the
// training path and the reference it is tested against (Ranker.InferencePathMatchesLibtorch...).
// At ~300 rows per request, libtorch's per-operator dispatch, index_select copies and
// temporaries cost as much as the matrix products themselves (perf, docs/BENCHMARKS.md issue 21);
// here the rows go through the network in blocks that stay in cache, with the elementwise work
// fused into a few loops.
#pragma once

#include <cstdint>
#include <vector>

#include "qianmian/rank/rank_features.h"

namespace qm::rank {

// The network's weights, row-major, with the first layer's input (x0) in the inference layout:
// the columns shared by one request's rows first (customer fields, then context), then the
// per-row ones (item id, item fields, bag mean, normalised dense), the M masked dense columns
// (the tower columns of a ranker without tower features) last. Filled by CrossNetImpl::Export.
//
// A masked column is 0 before the layer norm, so after it it is a * gamma_j + beta_j with one
// a = -mean * rstd per row: the first layer reads it as a * (W_M . gamma_M) plus a constant
// W_M . beta_M, one column instead of M (64 of the 1M bank's 156 per-row columns).
struct CrossNetWeights {
  int F = 0;     // customer categorical fields
  int C = 0;     // item categorical fields, the id included
  int fd = 0;    // field embedding width
  int K = 0;     // dense columns
  int Kc = 0;    // the customer's dense columns (the factorisation reads them raw)
  int L = 0;     // bag ids in [1, L) are customer labels, [L, ...) item tags
  int D = 0;     // x0 width: (F + C + kContextFields + 1) * fd + K
  int S = 0;     // its shared columns: (F + kContextFields) * fd
  int M = 0;     // its masked dense columns (last)
  int rank = 0;  // cross layers' rank
  int h1 = 0, h2 = 0;
  int factor = 0;                                                // factorisation width (0 = none)
  std::vector<float> cust_cat, item_id, item_cat, context, bag;  // tables [vocab, fd]
  std::vector<int> dense_order;                                  // [K]: x0's dense columns' input columns
  std::vector<float> dense_mask;                                 // [K], in x0's order
  std::vector<float> ln_gamma, ln_beta;                          // [K]
  float ln_eps = 1e-5f;
  std::vector<std::vector<float>> cross_v;                   // per layer [rank, D]
  std::vector<std::vector<float>> cross_u;                   // per layer [D, rank]
  std::vector<std::vector<float>> cross_ub;                  // per layer [D]
  std::vector<float> w1, b1;                                 // [h1, D], [h1] (b1 with W1_M . beta_M)
  std::vector<float> w1_a;                                   // [h1]: W1_M . gamma_M
  std::vector<float> v0_a, v0_b;                             // [rank]: the first cross projection's, alike
  std::vector<float> w2, b2;                                 // [h2, h1], [h2]
  std::vector<float> head, head_b;                           // [2, D + h2], [2]
  std::vector<float> fm_cust, fm_item, fm_item_cat, fm_bag;  // tables [vocab, factor]
  std::vector<float> fm_dense;                               // [factor, Kc]
  float fm_w[2] = {0, 0}, fm_b[2] = {0, 0};
};

class CrossNetInference {
 public:
  explicit CrossNetInference(CrossNetWeights w) : w_(std::move(w)) {}

  // Logits [n, 2] (click, convert) of the rows of `in` (shape checked by the caller; ids in
  // range). `one_customer`: every row has row 0's customer fields and context, so their part of
  // the first deep layer and of the first cross projection is computed once.
  void Logits(const RankInputs& in, bool one_customer, float* logits) const;

  // Multiply-adds x 2 per row of the forward pass's matrix products: this path's (one_customer
  // as above), or libtorch's (`libtorch`: the whole network for every row, no column shared or
  // collapsed).
  int64_t FlopsPerRow(bool one_customer, bool libtorch = false) const;

 private:
  struct Scratch;
  void Block(const RankInputs& in, int64_t r0, int64_t m, bool one_customer, bool shared_cu, Scratch& s,
             float* logits) const;
  void FillX0(const RankInputs& in, int64_t r0, int64_t m, bool one_customer, Scratch& s) const;
  // Whether every row's customer factor inputs (raw dense columns, labels in bag order) equal row 0's.
  bool SameCustomerFactorInputs(const RankInputs& in) const;
  // The customer's factor sum of `row` (fields, labels, raw dense columns) into `cu`.
  void CustomerFactors(const RankInputs& in, int64_t row, float* cu) const;
  // `cu_shared`: the rows' customer factor sum when every row is one customer's (computed once
  // per request), else null (computed per row).
  float Factorisation(const RankInputs& in, int64_t row, const float* cu_shared, Scratch& s) const;

  CrossNetWeights w_;
};

}  // namespace qm::rank
