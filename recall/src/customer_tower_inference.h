// The two-tower model's customer tower for serving, on plain float arrays and OpenBLAS, without
// libtorch: the same function as TwoTowerNetImpl::Customer (two_tower.cc), which stays the
// training path and the reference it is tested against
// (TwoTower.CustomerTowerInferencePathMatchesLibtorch). One customer per request: libtorch's
// per-operator dispatch was most of its ~60-70 us (docs/BENCHMARKS.md, issue 21).
#pragma once

#include <cstdint>
#include <vector>

#include "qianmian/features/feature_space.h"

namespace qm::recall {

struct CustomerTowerWeights {
  int F = 0;       // categorical fields
  int D = 0;       // dense columns
  int H = 0;       // history length
  int fd = 0;      // field embedding width
  int id_dim = 0;  // item id embedding width
  int hidden = 0, out = 0;
  std::vector<float> cust_cat, labels, item_id;  // tables [vocab, width]
  std::vector<float> w1, b1;                     // [hidden, F * fd + D + fd + id_dim], [hidden]
  std::vector<float> w2, b2;                     // [out, hidden], [out]
};

class CustomerTowerInference {
 public:
  explicit CustomerTowerInference(CustomerTowerWeights w) : w_(std::move(w)) {}
  // L2-normalised embeddings, n x out, of the customers of `batch` (ids in range).
  void Encode(const features::CustomerBatch& batch, float* out) const;

 private:
  CustomerTowerWeights w_;
};

}  // namespace qm::recall
