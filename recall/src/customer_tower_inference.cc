#include "customer_tower_inference.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qm::recall {

void CustomerTowerInference::Encode(const features::CustomerBatch& b, float* out) const {
  const int in_width = w_.F * w_.fd + w_.D + w_.fd + w_.id_dim;
  thread_local std::vector<float> x, h;
  x.resize(b.n * in_width);
  h.resize(b.n * w_.hidden);
  for (int64_t i = 0; i < b.n; ++i) {
    float* p = &x[i * in_width];
    for (int f = 0; f < w_.F; ++f, p += w_.fd) {
      std::memcpy(p, &w_.cust_cat[b.cat[i * w_.F + f] * w_.fd], sizeof(float) * w_.fd);
    }
    std::memcpy(p, &b.dense[i * w_.D], sizeof(float) * w_.D);
    p += w_.D;
    // The labels' mean (EmbeddingBag, mean mode: zeros for none).
    const int64_t from = b.label_offsets[i];
    const int64_t to = i + 1 < b.n ? b.label_offsets[i + 1] : static_cast<int64_t>(b.labels.size());
    std::fill(p, p + w_.fd, 0.0f);
    for (int64_t k = from; k < to; ++k) {
      const float* e = &w_.labels[b.labels[k] * w_.fd];
      for (int j = 0; j < w_.fd; ++j) p[j] += e[j];
    }
    for (int j = 0; to > from && j < w_.fd; ++j) p[j] /= static_cast<float>(to - from);
    p += w_.fd;
    // The history's mean over its non-padding ids (the padding row, zero, summed as libtorch does).
    std::fill(p, p + w_.id_dim, 0.0f);
    int count = 0;
    for (int k = 0; k < w_.H; ++k) {
      const int64_t id = b.history[i * w_.H + k];
      const float* e = &w_.item_id[id * w_.id_dim];
      for (int j = 0; j < w_.id_dim; ++j) p[j] += e[j];
      count += id > 0;
    }
    const float inv = 1.0f / static_cast<float>(std::max(count, 1));
    for (int j = 0; j < w_.id_dim; ++j) p[j] *= inv;
  }
  const int n = static_cast<int>(b.n);
  for (int64_t i = 0; i < b.n; ++i) std::memcpy(&h[i * w_.hidden], w_.b1.data(), sizeof(float) * w_.hidden);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, w_.hidden, in_width, 1.0f, x.data(), in_width, w_.w1.data(),
              in_width, 1.0f, h.data(), w_.hidden);
  for (float& v : h) v = std::max(v, 0.0f);
  for (int64_t i = 0; i < b.n; ++i) std::memcpy(out + i * w_.out, w_.b2.data(), sizeof(float) * w_.out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, w_.out, w_.hidden, 1.0f, h.data(), w_.hidden, w_.w2.data(),
              w_.hidden, 1.0f, out, w_.out);
  for (int64_t i = 0; i < b.n; ++i) {  // x / max(|x|, 1e-12), as torch's normalize
    float* u = out + i * w_.out;
    float norm = 0;
    for (int j = 0; j < w_.out; ++j) norm += u[j] * u[j];
    const float inv = 1.0f / std::max(std::sqrt(norm), 1e-12f);
    for (int j = 0; j < w_.out; ++j) u[j] *= inv;
  }
}

}  // namespace qm::recall
