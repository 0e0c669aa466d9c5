// Module rank: the ranking model, its input contract and the two-stage score. May depend on: core,
// features; torchutil, libtorch (private).
// The ranker's input contract, shared by the built-in network and TorchScript models:
//
//   forward(cat: Long[n, C], dense: Float[n, K], bag: Long[n, B]) -> Float[n, 2]
//
// returning (p_click, p_convert) per row, probabilities in [0, 1]. The columns are:
//   cat   = customer categorical fields (FeatureSpace::customer_cat_fields(), ids in
//           [0, customer_cat_vocab())), then item fields (item id in [0, item_vocab()), then
//           kind/category/risk/service in [0, item_cat_vocab())), then context channel
//           [0, 32), local hour [0, 24), weekday [0, 7).
//   dense = customer dense features (customer_dense()), the two-tower score u.v, the
//           element-wise product u*v (embedding_dim), then kContactFeatures contact counts.
//   bag   = customer label ids (1..label_vocab()-1) and item tag ids offset by label_vocab(),
//           padded with 0 to B = kBagWidth.
// RankInputs::Describe writes this layout (with sizes) as JSON for model authors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qianmian/core/types.h"
#include "qianmian/features/feature_space.h"

namespace qm::rank {

inline constexpr int kContextFields = 3;  // channel, hour, weekday
inline constexpr int kBagWidth = 16;

struct RankInputs {
  int64_t n = 0;
  int cat_width = 0, dense_width = 0;
  std::vector<int64_t> cat;  // n x cat_width
  std::vector<float> dense;  // n x dense_width
  std::vector<int64_t> bag;  // n x kBagWidth
  void Clear();
};

// An item's part of a rank row packed into one cache line, for a caller that reads the rows of
// a few hundred scattered items (a served page): its categorical fields and its tags, where an
// ItemBatch holds them in three arrays reached through an offset. `tag_count` is -1 when the
// row does not fit (more than kPackedTags tags, or an id beyond int32): read the ItemBatch then.
struct alignas(64) PackedItemRow {
  static constexpr int kPackedTags = 10;
  int32_t cat[features::FeatureSpace::kItemCatFields];
  int32_t tag_count = -1;
  int32_t tags[kPackedTags];
  // Packs row `i` of `items`.
  static PackedItemRow Pack(const features::ItemBatch& items, int64_t i);
};
static_assert(sizeof(PackedItemRow) == 64, "one cache line");

struct RankContext {
  ChannelId channel = kAppHome;
  int hour = 12;    // local hour 0..23
  int weekday = 0;  // 0 = Monday
};

// Builds RankInputs rows. Thread-safe (const).
class RankInputBuilder {
 public:
  RankInputBuilder(const features::FeatureSpace& space, int embedding_dim);
  int cat_width() const { return cat_width_; }
  int dense_width() const { return dense_width_; }
  int embedding_dim() const { return dim_; }

  // Appends one row: customer row `c` of `customers`, item row `i` of `items`, their tower
  // embeddings u (dim) and v (dim), the context and kContactFeatures contact values.
  void Append(const features::CustomerBatch& customers, int64_t c, const features::ItemBatch& items, int64_t i,
              const float* u, const float* v, const RankContext& context, const float* contact, RankInputs* out) const;
  // Same, with u.v already computed by the caller (features::Dot(u, v, dim)).
  void Append(const features::CustomerBatch& customers, int64_t c, const features::ItemBatch& items, int64_t i,
              const float* u, const float* v, float uv, const RankContext& context, const float* contact,
              RankInputs* out) const;
  // Same, with the item's row packed (REQUIRES: item.tag_count >= 0); the same row as from the
  // ItemBatch it was packed from.
  void Append(const features::CustomerBatch& customers, int64_t c, const PackedItemRow& item, const float* u,
              const float* v, float uv, const RankContext& context, const float* contact, RankInputs* out) const;
  // JSON description of the layout (column names and vocabulary sizes) for model authors.
  std::string Describe() const;
  // The exclusive upper bound of each categorical column's ids (cat_width() values), and of the
  // bag's ids: the vocabularies a model's embedding tables must cover.
  std::vector<int64_t> CatVocab() const;
  int64_t BagVocab() const { return space_.label_vocab() + space_.tag_vocab(); }

 private:
  // The row's columns except the item's categorical fields and tags (and the bag's customer
  // labels, which come first: `*bag_used`); returns the row's cat and bag starts.
  void AppendCommon(const features::CustomerBatch& cb, int64_t c, const float* u, const float* v, float uv,
                    const RankContext& ctx, const float* contact, RankInputs* out, int64_t** cat, int64_t** bag,
                    int* bag_used) const;

  const features::FeatureSpace& space_;
  int dim_;
  int cat_width_, dense_width_;
};

}  // namespace qm::rank
