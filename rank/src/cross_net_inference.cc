#include "cross_net_inference.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "qianmian/core/prefetch_range.h"
#include "qianmian/core/types.h"

namespace qm::rank {

namespace {

// Rows per block: the block's activations (x0, x, u: 3 x 128 x ~312 floats, ~480 KB at the
// default sizes) stay in L2 while the weights stream through (64 and 128 measured alike, 32
// slower: OpenBLAS packs the weights once per product).
constexpr int64_t kBlockRows = 128;

const int64_t kContextOffset[kContextFields] = {0, kMaxChannels, kMaxChannels + 24};

void AddRow(const float* src, int width, float* dst) {
  for (int k = 0; k < width; ++k) dst[k] += src[k];
}

// Each row i of the m rows of x (width `width`) <- max(row + bias + a[i] * a_weight, 0)
// (a_weight null: no such term).
void BiasRelu(const float* bias, const float* a_weight, const float* a, int64_t m, int width, float* x) {
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * width;
    if (a_weight) {
      for (int k = 0; k < width; ++k) r[k] = std::max(r[k] + bias[k] + a[i] * a_weight[k], 0.0f);
    } else {
      for (int k = 0; k < width; ++k) r[k] = std::max(r[k] + bias[k], 0.0f);
    }
  }
}

// out[m, n] (+)= a[m, k] (leading dimension lda) . b[n, k]^T (leading dimension ldb).
void GemmNT(int64_t m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), n, k, 1.0f, a, lda, b, ldb, beta, out, n);
}

}  // namespace

struct CrossNetInference::Scratch {
  std::vector<float> x0, x, u, v, h, d, out, a, shared, h_bias, v_bias, cu, it, cu_shared;
  void Size(const CrossNetWeights& w) {
    x0.resize(kBlockRows * w.D);
    x.resize(kBlockRows * w.D);
    u.resize(kBlockRows * w.D);
    v.resize(kBlockRows * std::max(w.rank, 1));
    h.resize(kBlockRows * w.h1);
    d.resize(kBlockRows * w.h2);
    out.resize(kBlockRows * 2);
    a.resize(kBlockRows);
    shared.resize(w.S);
    h_bias.resize(w.h1);
    v_bias.resize(std::max(w.rank, 1));
    cu.resize(std::max(w.factor, 1));
    cu_shared.resize(std::max(w.factor, 1));
    it.resize(std::max(w.factor, 1));
  }
};

void CrossNetInference::Logits(const RankInputs& in, bool one_customer, float* logits) const {
  thread_local Scratch s;
  s.Size(w_);
  if (in.n == 0) return;
  if (one_customer) {
    // The shared columns of row 0, and their part of the first deep layer and cross projection.
    const int64_t* cat = in.cat.data();
    for (int f = 0; f < w_.F; ++f)
      std::memcpy(&s.shared[f * w_.fd], &w_.cust_cat[cat[f] * w_.fd], sizeof(float) * w_.fd);
    for (int k = 0; k < kContextFields; ++k) {
      const int64_t id = cat[w_.F + w_.C + k] + kContextOffset[k];
      std::memcpy(&s.shared[(w_.F + k) * w_.fd], &w_.context[id * w_.fd], sizeof(float) * w_.fd);
    }
    std::copy(w_.b1.begin(), w_.b1.end(), s.h_bias.begin());
    cblas_sgemv(CblasRowMajor, CblasNoTrans, w_.h1, w_.S, 1.0f, w_.w1.data(), w_.D, s.shared.data(), 1, 1.0f,
                s.h_bias.data(), 1);
    if (!w_.cross_v.empty()) {
      std::copy(w_.v0_b.begin(), w_.v0_b.end(), s.v_bias.begin());
      cblas_sgemv(CblasRowMajor, CblasNoTrans, w_.rank, w_.S, 1.0f, w_.cross_v[0].data(), w_.D, s.shared.data(), 1,
                  1.0f, s.v_bias.data(), 1);
    }
  }
  // The factorisation's customer side, summed once when every row holds row 0's (the customer's
  // raw dense columns and labels are the same on each row of one customer's request).
  const bool shared_cu = one_customer && w_.factor > 0 && SameCustomerFactorInputs(in);
  if (shared_cu) CustomerFactors(in, 0, s.cu_shared.data());
  // The rows' entries in the per-item tables (the whole catalogue's, mostly cold) are fetched
  // before the first block, so their cache misses overlap instead of stalling the copies one by
  // one (they were ~2/5 of the ranker's time outside the matrix products in a page's profile).
  for (int64_t i = 0; i < in.n; ++i) {
    const int64_t id = in.cat[i * in.cat_width + w_.F];
    PrefetchRange(&w_.item_id[id * w_.fd], static_cast<size_t>(w_.fd) * sizeof(float));
    if (w_.factor > 0) PrefetchRange(&w_.fm_item[id * w_.factor], static_cast<size_t>(w_.factor) * sizeof(float));
  }
  for (int64_t r0 = 0; r0 < in.n; r0 += kBlockRows) {
    Block(in, r0, std::min(kBlockRows, in.n - r0), one_customer, shared_cu, s, logits + 2 * r0);
  }
}

void CrossNetInference::FillX0(const RankInputs& in, int64_t r0, int64_t m, bool one_customer, Scratch& s) const {
  const int fd = w_.fd, D = w_.D, K = w_.K;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t* cat = in.cat.data() + (r0 + i) * in.cat_width;
    float* x = &s.x0[i * D];
    if (one_customer) {
      std::memcpy(x, s.shared.data(), sizeof(float) * w_.S);
    } else {
      for (int f = 0; f < w_.F; ++f) std::memcpy(x + f * fd, &w_.cust_cat[cat[f] * fd], sizeof(float) * fd);
      for (int k = 0; k < kContextFields; ++k) {
        const int64_t id = cat[w_.F + w_.C + k] + kContextOffset[k];
        std::memcpy(x + (w_.F + k) * fd, &w_.context[id * fd], sizeof(float) * fd);
      }
    }
    float* p = x + w_.S;
    std::memcpy(p, &w_.item_id[cat[w_.F] * fd], sizeof(float) * fd);
    p += fd;
    for (int k = 1; k < w_.C; ++k, p += fd) std::memcpy(p, &w_.item_cat[cat[w_.F + k] * fd], sizeof(float) * fd);
    // The bag's mean over its non-padding ids (the padding row is summed too, as libtorch does).
    const int64_t* bag = in.bag.data() + (r0 + i) * kBagWidth;
    std::fill(p, p + fd, 0.0f);
    int count = 0;
    for (int b = 0; b < kBagWidth; ++b) {
      AddRow(&w_.bag[bag[b] * fd], fd, p);
      count += bag[b] > 0;
    }
    const float inv = 1.0f / static_cast<float>(std::max(count, 1));
    for (int k = 0; k < fd; ++k) p[k] *= inv;
    p += fd;
    // The dense columns, masked, then layer-normalised.
    const float* dense = in.dense.data() + (r0 + i) * in.dense_width;
    float mean = 0;
    for (int k = 0; k < K; ++k) mean += p[k] = dense[w_.dense_order[k]] * w_.dense_mask[k];
    mean /= static_cast<float>(K);
    float var = 0;
    for (int k = 0; k < K; ++k) var += (p[k] - mean) * (p[k] - mean);
    const float rstd = 1.0f / std::sqrt(var / static_cast<float>(K) + w_.ln_eps);
    for (int k = 0; k < K; ++k) p[k] = (p[k] - mean) * rstd * w_.ln_gamma[k] + w_.ln_beta[k];
    s.a[i] = -mean * rstd;  // a masked column's value is a * gamma + beta
  }
}

void CrossNetInference::Block(const RankInputs& in, int64_t r0, int64_t m, bool one_customer, bool shared_cu,
                              Scratch& s, float* logits) const {
  const int D = w_.D, S = w_.S;
  FillX0(in, r0, m, one_customer, s);
  // Deep tower.
  // The first layer's products read x0's columns [first, D - M): the M masked dense columns
  // (last in x0) enter as a * (their weights . gamma), their beta part folded into the bias.
  const int first = one_customer ? S : 0, last = D - w_.M;
  GemmNT(m, w_.h1, last - first, &s.x0[first], D, &w_.w1[first], D, 0.0f, s.h.data());
  BiasRelu(one_customer ? s.h_bias.data() : w_.b1.data(), w_.w1_a.data(), s.a.data(), m, w_.h1, s.h.data());
  GemmNT(m, w_.h2, w_.h1, s.h.data(), w_.h1, w_.w2.data(), w_.h1, 0.0f, s.d.data());
  BiasRelu(w_.b2.data(), nullptr, nullptr, m, w_.h2, s.d.data());
  // Cross layers: x <- x0 * (U (V x) + b) + x, with x = x0 before the first.
  const float* x = s.x0.data();
  for (size_t l = 0; l < w_.cross_v.size(); ++l) {
    if (l == 0) {
      GemmNT(m, w_.rank, last - first, &s.x0[first], D, &w_.cross_v[0][first], D, 0.0f, s.v.data());
      const float* bias = one_customer ? s.v_bias.data() : w_.v0_b.data();
      for (int64_t i = 0; i < m; ++i) {
        float* v = &s.v[i * w_.rank];
        for (int k = 0; k < w_.rank; ++k) v[k] += bias[k] + s.a[i] * w_.v0_a[k];
      }
    } else {
      GemmNT(m, w_.rank, D, x, D, w_.cross_v[l].data(), D, 0.0f, s.v.data());
    }
    GemmNT(m, D, w_.rank, s.v.data(), w_.rank, w_.cross_u[l].data(), w_.rank, 0.0f, s.u.data());
    const float* b = w_.cross_ub[l].data();
    for (int64_t i = 0; i < m; ++i) {
      const float *x0 = &s.x0[i * D], *u = &s.u[i * D], *prev = x + i * D;
      float* next = &s.x[i * D];
      for (int j = 0; j < D; ++j) next[j] = prev[j] + x0[j] * (u[j] + b[j]);
    }
    x = s.x.data();
  }
  // Heads over [x, deep], and the factorisation.
  GemmNT(m, 2, D, x, D, w_.head.data(), D + w_.h2, 0.0f, s.out.data());
  GemmNT(m, 2, w_.h2, s.d.data(), w_.h2, &w_.head[D], D + w_.h2, 1.0f, s.out.data());
  for (int64_t i = 0; i < m; ++i) {
    const float f = w_.factor > 0 ? Factorisation(in, r0 + i, shared_cu ? s.cu_shared.data() : nullptr, s) : 0.0f;
    for (int k = 0; k < 2; ++k) {
      logits[2 * i + k] = s.out[2 * i + k] + w_.head_b[k] + (w_.factor > 0 ? w_.fm_w[k] * f + w_.fm_b[k] : 0.0f);
    }
  }
}

bool CrossNetInference::SameCustomerFactorInputs(const RankInputs& in) const {
  const float* d0 = in.dense.data();
  const int64_t* b0 = in.bag.data();
  auto label = [&](int64_t id) { return id > 0 && id < w_.L; };
  for (int64_t i = 1; i < in.n; ++i) {
    if (!std::equal(d0, d0 + w_.Kc, d0 + i * in.dense_width)) return false;
    // The labels in bag order (the sum's order), padding and tags skipped.
    const int64_t* bi = b0 + i * kBagWidth;
    int a = 0, b = 0;
    while (true) {
      while (a < kBagWidth && !label(b0[a])) ++a;
      while (b < kBagWidth && !label(bi[b])) ++b;
      if (a == kBagWidth || b == kBagWidth) {
        if (a != b) return false;
        break;
      }
      if (b0[a++] != bi[b++]) return false;
    }
  }
  return true;
}

void CrossNetInference::CustomerFactors(const RankInputs& in, int64_t row, float* cu) const {
  const int r = w_.factor;
  const int64_t* cat = in.cat.data() + row * in.cat_width;
  const int64_t* bag = in.bag.data() + row * kBagWidth;
  const float* dense = in.dense.data() + row * in.dense_width;
  for (int k = 0; k < r; ++k) {  // fm_dense . dense[0, Kc): a few columns, no BLAS call per row
    const float* wk = &w_.fm_dense[k * w_.Kc];
    float sum = 0;
    for (int j = 0; j < w_.Kc; ++j) sum += wk[j] * dense[j];
    cu[k] = sum;
  }
  for (int f = 0; f < w_.F; ++f) AddRow(&w_.fm_cust[cat[f] * r], r, cu);
  int labels = 0;
  for (int b = 0; b < kBagWidth; ++b) labels += bag[b] > 0 && bag[b] < w_.L;
  const float to_label = 1.0f / static_cast<float>(std::max(labels, 1));
  for (int b = 0; b < kBagWidth; ++b) {
    if (bag[b] <= 0 || bag[b] >= w_.L) continue;
    const float* e = &w_.fm_bag[bag[b] * r];
    for (int k = 0; k < r; ++k) cu[k] += e[k] * to_label;
  }
}

// (the customer's field, label and raw dense factors summed) . (the item's own, field and tag
// factors summed); a mean over the bag's labels or tags is 0 when it has none.
float CrossNetInference::Factorisation(const RankInputs& in, int64_t row, const float* cu_shared, Scratch& s) const {
  const int r = w_.factor;
  const int64_t* cat = in.cat.data() + row * in.cat_width;
  const int64_t* bag = in.bag.data() + row * kBagWidth;
  const float* cu = cu_shared;
  if (!cu) {
    CustomerFactors(in, row, s.cu.data());
    cu = s.cu.data();
  }
  float* it = s.it.data();
  std::memcpy(it, &w_.fm_item[cat[w_.F] * r], sizeof(float) * r);
  for (int k = 1; k < w_.C; ++k) AddRow(&w_.fm_item_cat[cat[w_.F + k] * r], r, it);
  int tags = 0;
  for (int b = 0; b < kBagWidth; ++b) tags += bag[b] >= w_.L;
  const float to_tag = 1.0f / static_cast<float>(std::max(tags, 1));
  for (int b = 0; b < kBagWidth; ++b) {
    if (bag[b] <= 0 || bag[b] < w_.L) continue;  // padding and the customer's labels
    const float* e = &w_.fm_bag[bag[b] * r];
    for (int k = 0; k < r; ++k) it[k] += e[k] * to_tag;
  }
  float dot = 0;
  for (int k = 0; k < r; ++k) dot += cu[k] * it[k];
  return dot;
}

int64_t CrossNetInference::FlopsPerRow(bool one_customer, bool libtorch) const {
  const int64_t D = w_.D, first = one_customer && !libtorch ? w_.S : 0, read = D - (libtorch ? 0 : w_.M) - first;
  int64_t macs = read * w_.h1 + int64_t{w_.h1} * w_.h2 + (D + w_.h2) * 2;
  for (size_t l = 0; l < w_.cross_v.size(); ++l) macs += (l == 0 ? read : D) * w_.rank + D * w_.rank;
  return 2 * macs;
}

}  // namespace qm::rank
