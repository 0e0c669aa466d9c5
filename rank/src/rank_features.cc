#include "qianmian/rank/rank_features.h"

#include <algorithm>
#include <climits>
#include <iterator>
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

PackedItemRow PackedItemRow::Pack(const features::ItemBatch& ib, int64_t i) {
  constexpr int C = features::FeatureSpace::kItemCatFields;
  PackedItemRow r;
  std::fill(std::begin(r.cat), std::end(r.cat), 0);
  std::fill(std::begin(r.tags), std::end(r.tags), 0);
  auto fits = [](int64_t x) { return x >= 0 && x <= INT32_MAX; };
  for (int f = 0; f < C; ++f) {
    const int64_t x = ib.cat[static_cast<size_t>(i * C + f)];
    if (!fits(x)) return r;  // tag_count stays -1
    r.cat[f] = static_cast<int32_t>(x);
  }
  const int64_t b = ib.tag_offsets[i], e = ib.TagsEnd(i);
  int used = 0;
  for (int64_t k = b; k < e; ++k) {
    if (ib.tags[k] <= 0) continue;  // what Append skips
    if (used == kPackedTags || !fits(ib.tags[k])) return r;
    r.tags[used++] = static_cast<int32_t>(ib.tags[k]);
  }
  r.tag_count = used;
  return r;
}

void RankInputBuilder::AppendCommon(const features::CustomerBatch& cb, int64_t c, const float* u, const float* v,
                                    float uv, const RankContext& ctx, const float* contact, RankInputs* out,
                                    int64_t** cat_out, int64_t** bag_out, int* bag_used) const {
  const int F = space_.customer_cat_fields(), D = space_.customer_dense();
  const int C = features::FeatureSpace::kItemCatFields;
  out->cat_width = cat_width_;
  out->dense_width = dense_width_;
  // Each part is sized once and written in place (a request appends a few hundred rows).
  const size_t c0 = out->cat.size();
  out->cat.resize(c0 + static_cast<size_t>(cat_width_));
  int64_t* cat = out->cat.data() + c0;
  std::copy_n(cb.cat.data() + c * F, F, cat);
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
  const int64_t lb = cb.label_offsets[c];
  const int64_t le = c + 1 < cb.n ? cb.label_offsets[c + 1] : static_cast<int64_t>(cb.labels.size());
  for (int64_t k = lb; k < le && used < kBagWidth; ++k) {
    if (cb.labels[k] > 0) bag[used++] = cb.labels[k];
  }
  *cat_out = cat + F;
  *bag_out = bag;
  *bag_used = used;
  ++out->n;
}

void RankInputBuilder::Append(const features::CustomerBatch& cb, int64_t c, const features::ItemBatch& ib, int64_t i,
                              const float* u, const float* v, float uv, const RankContext& ctx, const float* contact,
                              RankInputs* out) const {
  int64_t *item_cat = nullptr, *bag = nullptr;
  int used = 0;
  AppendCommon(cb, c, u, v, uv, ctx, contact, out, &item_cat, &bag, &used);
  std::copy_n(ib.cat.data() + i * features::FeatureSpace::kItemCatFields, features::FeatureSpace::kItemCatFields,
              item_cat);
  const int64_t b = ib.tag_offsets[i], e = ib.TagsEnd(i);
  const int64_t shift = space_.label_vocab();
  for (int64_t k = b; k < e && used < kBagWidth; ++k) {
    if (ib.tags[k] > 0) bag[used++] = ib.tags[k] + shift;
  }
}

void RankInputBuilder::Append(const features::CustomerBatch& cb, int64_t c, const PackedItemRow& item, const float* u,
                              const float* v, float uv, const RankContext& ctx, const float* contact,
                              RankInputs* out) const {
  int64_t *item_cat = nullptr, *bag = nullptr;
  int used = 0;
  AppendCommon(cb, c, u, v, uv, ctx, contact, out, &item_cat, &bag, &used);
  std::copy_n(item.cat, features::FeatureSpace::kItemCatFields, item_cat);
  const int64_t shift = space_.label_vocab();
  for (int k = 0; k < item.tag_count && used < kBagWidth; ++k) bag[used++] = item.tags[k] + shift;
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
