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
  out->cat.insert(out->cat.end(), cb.cat.begin() + c * F, cb.cat.begin() + (c + 1) * F);
  out->cat.insert(out->cat.end(), ib.cat.begin() + i * C, ib.cat.begin() + (i + 1) * C);
  out->cat.push_back(std::clamp<int64_t>(ctx.channel, 0, kMaxChannels - 1));
  out->cat.push_back(std::clamp(ctx.hour, 0, 23));
  out->cat.push_back(std::clamp(ctx.weekday, 0, 6));
  out->dense.insert(out->dense.end(), cb.dense.begin() + c * D, cb.dense.begin() + (c + 1) * D);
  out->dense.push_back(uv);
  const size_t at = out->dense.size();
  out->dense.resize(at + dim_);
  features::ScaledProduct(u, v, dim_, static_cast<float>(dim_), out->dense.data() + at);  // ~unit scale
  out->dense.insert(out->dense.end(), contact, contact + features::kContactFeatures);
  // Bag: labels then tags (offset), padded / truncated to kBagWidth.
  size_t start = out->bag.size();
  auto add_range = [&](const std::vector<int64_t>& vals, const std::vector<int64_t>& offs, int64_t row, int64_t rows,
                       int64_t shift) {
    int64_t b = offs[row], e = row + 1 < rows ? offs[row + 1] : static_cast<int64_t>(vals.size());
    for (int64_t k = b; k < e && out->bag.size() - start < static_cast<size_t>(kBagWidth); ++k) {
      if (vals[k] > 0) out->bag.push_back(vals[k] + shift);
    }
  };
  add_range(cb.labels, cb.label_offsets, c, cb.n, 0);
  add_range(ib.tags, ib.tag_offsets, i, ib.n, space_.label_vocab());
  while (out->bag.size() - start < static_cast<size_t>(kBagWidth)) out->bag.push_back(0);
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
