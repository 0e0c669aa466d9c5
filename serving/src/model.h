// One artifact version loaded for serving, fitted to the live catalogue. Private to serving.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "exact_topk.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/rank/ranker.h"
#include "qianmian/recall/two_tower.h"
#include "qianmian/recall/vector_index.h"
#include "qianmian/serving/serving_config.h"

namespace qm::serving {

// The immutable part (models, encoders) is safe for concurrent use. The catalogue part (item
// rows, embeddings, encoded items, index contents) changes with UpsertItems/RetireItems: the
// engine mutates it under its exclusive catalogue lock and reads it under the shared one.
struct Model {
  std::string version;
  std::string dir;
  std::unique_ptr<features::FeatureSpace> space;
  std::unique_ptr<recall::TwoTowerModel> towers;
  std::unique_ptr<rank::RankInputBuilder> builder;
  std::unique_ptr<rank::Ranker> ranker;
  std::unique_ptr<recall::VectorIndex> index[2];  // [ItemKind]: products, content
  int dim = 0;
  double inv_temperature = 20.0;  // 1 / two-tower temperature
  double retrieval_weight = 1.0;

  // Catalogue part. Embedding rows: 0..trained-1 are item_ids.txt, later rows are items embedded
  // online; index labels are rows.
  int64_t trained_rows = 0;
  std::vector<float> emb;          // rows x dim
  std::vector<int32_t> row_item;   // row -> dataset item index, -1 = none (retired, replaced)
  std::vector<int32_t> item_row;   // dataset item -> row, -1 = none
  features::ItemBatch enc;         // encoded items without text (what the ranker reads), one row per encoding
  std::vector<uint32_t> item_enc;  // dataset item -> row of `enc`
  // Each dataset item's row of `enc` packed into one cache line (what a page's rank stage reads
  // of a few hundred scattered items; `tag_count` -1: read `enc`). Kept with item_enc.
  std::vector<rank::PackedItemRow> packed;

  // Item-to-item neighbours of trained rows, computed by training (immutable; empty for versions
  // without neighbours.i32). Rows retired or replaced since are skipped by their row_item of -1;
  // items added since are not in these lists until the next version (the ANN source finds them).
  recall::NeighbourTable neighbours;
  // Item-to-item neighbours (index rows, best first) of a seed the table does not cover, keyed
  // by row * 2 + kind; filled by requests on first use (under nn_mu), cleared by Refresh.
  mutable std::mutex nn_mu;
  mutable std::unordered_map<int64_t, std::vector<int64_t>> nn;

  // Push runs: the live content rows for exact batched scoring (ExactTopK), built on first use
  // (under push_mu) when the content catalogue is small enough, cleared by Refresh.
  mutable std::mutex push_mu;
  mutable std::shared_ptr<const ExactTopK> push_content;

  // Customer portraits (portraits.csv; empty for versions without), indexed like the dataset's
  // customers when loaded (Dataset::portraits).
  std::vector<FeatureColumn> portraits;

  const float* Embedding(uint32_t item) const { return emb.data() + static_cast<size_t>(item_row[item]) * dim; }
  // The dataset item of embedding row `row` (an index label or a neighbour-list entry), or -1
  // when there is none (out of range, retired or replaced).
  int32_t ItemOfRow(int64_t row) const {
    return row < 0 || row >= static_cast<int64_t>(row_item.size()) ? -1 : row_item[row];
  }

  // Re-encodes and re-embeds dataset items `items` (new or changed) and puts them in the
  // indexes of their kind (removing their old rows). `retired[i]` items are removed instead.
  Status Refresh(const Dataset& ds, const std::vector<uint32_t>& items, const std::vector<uint8_t>& retired);
};

// Verifies <root>/<version> and loads it; items of `ds` missing from the version are embedded by
// its item tower, retired ones and those no longer in `ds` leave the indexes.
Result<std::shared_ptr<Model>> LoadModel(const std::string& root, const std::string& version, const Dataset& ds,
                                         const std::vector<uint8_t>& retired, const ServingConfig& config);

}  // namespace qm::serving
