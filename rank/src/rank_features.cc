#include "qianmian/rank/rank_features.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace qm::rank {

void RankInputs::Clear() {
  n = 0;
  cat.clear();
  dense.clear();
  bag.clear();
}

RankInputBuilder::RankInputBuilder(const features::FeatureSpace& space, int embedding_dim)
    : space_(space), dim_(embedding_dim) {
  cat_width_ = space.customer_cat_fields() + features::FeatureSpace::kItemCatFields + kContextFields;
  dense_width_ = space.customer_dense() + 1 + dim_ + features::kContactFeatures;
}

void RankInputBuilder::Append(const features::CustomerBatch& cb, int64_t c, const features::ItemBatch& ib, int64_t i,
                              const float* u, const float* v, const RankContext& ctx, const float* contact,
                              RankInputs* out) const {
  Append(cb, c, ib, i, u, v, features::Dot(u, v, dim_), ctx, contact, out);
}

void RankInputBuilder::Append(const features::CustomerBatch& cb, int64_t c, const features::ItemBatch& ib, int64_t i,
                              const float* u, const float* v, float uv, const RankContext& ctx, const float* contact,
                              RankInputs* out) const {
  const int F = space_.customer_cat_fields(), D = space_.customer_dense();
  const int C = features::FeatureSpace::kItemCatFields;
  out->cat_width = cat_width_;
  out->dense_width = dense_width_;
  // Each part is sized once and written in place (a request appends a few hundred rows).
  const size_t c0 = out->cat.size();
  out->cat.resize(c0 + static_cast<size_t>(cat_width_));
  int64_t* cat = out->cat.data() + c0;
  std::copy_n(cb.cat.data() + c * F, F, cat);
  std::copy_n(ib.cat.data() + i * C, C, cat + F);
  cat[F + C] = std::clamp<int64_t>(ctx.channel, 0, kMaxChannels - 1);
  cat[F + C + 1] = std::clamp(ctx.hour, 0, 23);
  cat[F + C + 2] = std::clamp(ctx.weekday, 0, 6);
  const size_t d0 = out->dense.size();
  out->dense.resize(d0 + static_cast<size_t>(dense_width_));
  float* dense = out->dense.data() + d0;
  std::copy_n(cb.dense.data() + c * D, D, dense);
  dense[D] = uv;
  features::ScaledProduct(u, v, dim_, static_cast<float>(dim_), dense + D + 1);  // ~unit scale
  std::copy_n(contact, features::kContactFeatures, dense + D + 1 + dim_);
  // Bag: labels then tags (offset), truncated to kBagWidth; the rest stays 0 (padding).
  const size_t b0 = out->bag.size();
  out->bag.resize(b0 + static_cast<size_t>(kBagWidth));
  int64_t* bag = out->bag.data() + b0;
  int used = 0;
  auto add_range = [&](const std::vector<int64_t>& vals, const std::vector<int64_t>& offs, int64_t row, int64_t rows,
                       int64_t shift) {
    const int64_t b = offs[row], e = row + 1 < rows ? offs[row + 1] : static_cast<int64_t>(vals.size());
    for (int64_t k = b; k < e && used < kBagWidth; ++k) {
      if (vals[k] > 0) bag[used++] = vals[k] + shift;
    }
  };
  add_range(cb.labels, cb.label_offsets, c, cb.n, 0);
  add_range(ib.tags, ib.tag_offsets, i, ib.n, space_.label_vocab());
  ++out->n;
}

std::vector<int64_t> RankInputBuilder::CatVocab() const {
  std::vector<int64_t> v(static_cast<size_t>(space_.customer_cat_fields()), space_.customer_cat_vocab());
  v.push_back(space_.item_vocab());
  v.insert(v.end(), features::FeatureSpace::kItemCatFields - 1, space_.item_cat_vocab());
  v.insert(v.end(), {kMaxChannels, 24, 7});
  return v;
}

std::string RankInputBuilder::Describe() const {
  nlohmann::json j;
  j["contract"] = "forward(cat: Long[n, C], dense: Float[n, K], bag: Long[n, B]) -> Float[n, 2] (p_click, p_convert)";
  j["C"] = cat_width_;
  j["K"] = dense_width_;
  j["B"] = kBagWidth;
  j["cat"] = {{"customer_fields", space_.customer_cat_fields()},
              {"customer_vocab", space_.customer_cat_vocab()},
              {"item_fields", features::FeatureSpace::kItemCatFields},
              {"item_id_vocab", space_.item_vocab()},
              {"item_cat_vocab", space_.item_cat_vocab()},
              {"context", {{"channel", kMaxChannels}, {"hour", 24}, {"weekday", 7}}}};
  j["dense"] = {{"customer_dense", space_.customer_dense()},
                {"two_tower_dot", 1},
                {"two_tower_product", dim_},
                {"contact", features::kContactFeatures}};
  j["bag"] = {{"label_ids", space_.label_vocab()},
              {"tag_ids_offset", space_.label_vocab()},
              {"vocab", space_.label_vocab() + space_.tag_vocab()}};
  return j.dump(2);
}

}  // namespace qm::rank
