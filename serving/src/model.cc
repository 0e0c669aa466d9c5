#include "model.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "qianmian/artifacts/bundle.h"

namespace qm::serving {

namespace {

// Appends the rows of `src` to `dst` without their text bags.
void AppendWithoutText(const features::ItemBatch& src, features::ItemBatch* dst) {
  dst->cat.insert(dst->cat.end(), src.cat.begin(), src.cat.end());
  for (int64_t i = 0; i < src.n; ++i) {
    const int64_t b = src.tag_offsets[i], e = src.TagsEnd(i);
    dst->tag_offsets.push_back(static_cast<int64_t>(dst->tags.size()));
    dst->tags.insert(dst->tags.end(), src.tags.begin() + b, src.tags.begin() + e);
    dst->text_offsets.push_back(static_cast<int64_t>(dst->text.size()));
    dst->text.push_back(0);
  }
  dst->n += src.n;
}

// Packs the encoded rows of dataset items `items` into m->packed (grown to the dataset's size).
void PackItems(const Dataset& ds, const std::vector<uint32_t>& items, Model* m) {
  if (m->packed.size() < ds.items.size()) m->packed.resize(ds.items.size());
  for (uint32_t it : items) m->packed[it] = rank::PackedItemRow::Pack(m->enc, m->item_enc[it]);
}

}  // namespace

Status Model::Refresh(const Dataset& ds, const std::vector<uint32_t>& items, const std::vector<uint8_t>& retired) {
  {
    std::lock_guard<std::mutex> lock(nn_mu);
    nn.clear();  // neighbour lists may name replaced rows or miss new items
  }
  {
    std::lock_guard<std::mutex> lock(push_mu);
    push_content.reset();
  }
  if (item_row.size() < ds.items.size()) item_row.resize(ds.items.size(), -1);
  if (item_enc.size() < ds.items.size()) item_enc.resize(ds.items.size(), 0);
  // Old rows leave both indexes.
  std::vector<int64_t> old_rows;
  for (uint32_t it : items) {
    if (item_row[it] >= 0) {
      old_rows.push_back(item_row[it]);
      row_item[item_row[it]] = -1;
      item_row[it] = -1;
    }
  }
  if (!old_rows.empty()) {
    for (auto& ix : index)
      QM_RETURN_IF_ERROR(ix->Remove(old_rows.data(), static_cast<int64_t>(old_rows.size())).status());
  }
  std::vector<uint32_t> live;
  for (uint32_t it : items) {
    if (!(it < retired.size() && retired[it])) live.push_back(it);
  }
  if (live.empty()) return Status::Ok();
  // Encode (the ranker's rows go to enc) and embed by content.
  features::ItemBatch batch;
  space->EncodeItems(ds, live.data(), static_cast<int64_t>(live.size()), &batch);
  const int64_t first_enc = enc.n;
  AppendWithoutText(batch, &enc);
  for (size_t k = 0; k < live.size(); ++k)
    item_enc[live[k]] = static_cast<uint32_t>(first_enc + static_cast<int64_t>(k));
  PackItems(ds, live, this);
  std::vector<float> v(live.size() * dim);
  QM_RETURN_IF_ERROR(towers->EncodeItems(batch, v.data()));
  const int64_t first_row = static_cast<int64_t>(row_item.size());
  emb.insert(emb.end(), v.begin(), v.end());
  std::vector<float> vk[2];
  std::vector<int64_t> ik[2];
  for (size_t k = 0; k < live.size(); ++k) {
    const int64_t row = first_row + static_cast<int64_t>(k);
    row_item.push_back(static_cast<int32_t>(live[k]));
    item_row[live[k]] = static_cast<int32_t>(row);
    const int kind = static_cast<int>(ds.items[live[k]].kind);
    vk[kind].insert(vk[kind].end(), v.begin() + k * dim, v.begin() + (k + 1) * dim);
    ik[kind].push_back(row);
  }
  for (int kind = 0; kind < 2; ++kind) {
    if (ik[kind].empty()) continue;
    QM_RETURN_IF_ERROR(index[kind]->Add(vk[kind].data(), ik[kind].data(), static_cast<int64_t>(ik[kind].size())));
  }
  return Status::Ok();
}

Result<std::shared_ptr<Model>> LoadModel(const std::string& root, const std::string& version, const Dataset& ds,
                                         const std::vector<uint8_t>& retired, const ServingConfig& config) {
  using artifacts::BundleFile;
  QM_ASSIGN_OR_RETURN(artifacts::BundleReader bundle, artifacts::BundleReader::Open(root, version));
  const artifacts::BundleSettings& settings = bundle.settings();
  auto m = std::make_shared<Model>();
  m->version = version;
  m->dir = bundle.dir();
  QM_ASSIGN_OR_RETURN(features::FeatureSpace space,
                      features::FeatureSpace::Load(bundle.PathFor(BundleFile::kFeatures)));
  m->space = std::make_unique<features::FeatureSpace>(std::move(space));
  QM_ASSIGN_OR_RETURN(m->towers, recall::TwoTowerModel::Load(bundle.PathFor(BundleFile::kTwoTower), *m->space));
  m->dim = m->towers->dim();
  if (m->dim != settings.embedding_dim) {
    return Status::Corruption("version " + version + ": the towers' width differs from the bundle's embedding_dim");
  }
  m->inv_temperature = 1.0 / settings.temperature;
  // Serving's score has no exposure term: it takes the weight resolved for that score.
  m->retrieval_weight =
      config.retrieval_weight >= 0 ? config.retrieval_weight : settings.retrieval_weight_without_exposure;
  m->builder = std::make_unique<rank::RankInputBuilder>(*m->space, m->dim);
  QM_RETURN_IF_ERROR(bundle.CheckRankInputs(m->builder->Describe()));
  if (config.ranker.empty()) {
    QM_ASSIGN_OR_RETURN(m->ranker,
                        rank::Ranker::LoadBuiltin(bundle.PathFor(BundleFile::kRanker), *m->space, *m->builder));
  } else {
    auto r = rank::Ranker::LoadTorchScript(config.ranker, *m->builder);
    if (!r.ok()) return r.status().Annotate("'serving.ranker' " + config.ranker);
    m->ranker = std::move(r).value();
  }
  QM_ASSIGN_OR_RETURN(m->index[0], recall::VectorIndex::Load(bundle.PathFor(BundleFile::kProductsIndex)));
  QM_ASSIGN_OR_RETURN(m->index[1], recall::VectorIndex::Load(bundle.PathFor(BundleFile::kContentIndex)));
  for (auto& ix : m->index) {
    if (ix->dim() != m->dim) return Status::Corruption("version " + version + ": index width differs from the towers'");
  }
  // Trained rows.
  QM_ASSIGN_OR_RETURN(artifacts::ItemEmbeddings trained, bundle.ReadItemEmbeddings());
  const std::vector<std::string>& ids = trained.ids;
  m->trained_rows = static_cast<int64_t>(ids.size());
  m->emb = std::move(trained.vectors);
  if (bundle.Has(BundleFile::kNeighbours)) {  // versions trained without the table have none
    QM_ASSIGN_OR_RETURN(m->neighbours, recall::LoadNeighbourTable(bundle.PathFor(BundleFile::kNeighbours)));
    if (m->neighbours.rows != m->trained_rows || m->neighbours.k != settings.neighbours) {
      return Status::Corruption("version " + version + ": " + artifacts::FileName(BundleFile::kNeighbours) + " holds " +
                                std::to_string(m->neighbours.rows) + " x " + std::to_string(m->neighbours.k) +
                                " neighbours; the bundle has " + std::to_string(m->trained_rows) +
                                " trained items and width " + std::to_string(settings.neighbours));
    }
  }
  if (bundle.Has(BundleFile::kPortraits)) {
    QM_ASSIGN_OR_RETURN(m->portraits, LoadPortraitColumns(bundle.PathFor(BundleFile::kPortraits), ds));
  }
  m->row_item.assign(ids.size(), -1);
  m->item_row.assign(ds.items.size(), -1);
  std::vector<int64_t> dead;
  for (size_t r = 0; r < ids.size(); ++r) {
    auto it = ds.FindItem(ids[r]);
    if (!it || (*it < retired.size() && retired[*it])) {
      dead.push_back(static_cast<int64_t>(r));
      continue;
    }
    m->row_item[r] = static_cast<int32_t>(*it);
    m->item_row[*it] = static_cast<int32_t>(r);
  }
  if (!dead.empty()) {
    for (auto& ix : m->index) QM_RETURN_IF_ERROR(ix->Remove(dead.data(), static_cast<int64_t>(dead.size())).status());
  }
  // Encode every item once (rank inputs); embed the ones the version has not seen.
  std::vector<uint32_t> all(ds.items.size());
  std::iota(all.begin(), all.end(), 0u);
  for (size_t lo = 0; lo < all.size(); lo += 8192) {
    features::ItemBatch part;
    m->space->EncodeItems(ds, all.data() + lo, static_cast<int64_t>(std::min<size_t>(8192, all.size() - lo)), &part);
    AppendWithoutText(part, &m->enc);
  }
  m->item_enc = all;
  PackItems(ds, all, m.get());
  std::vector<uint32_t> missing;
  for (uint32_t i = 0; i < ds.items.size(); ++i) {
    if (m->item_row[i] < 0 && !(i < retired.size() && retired[i])) missing.push_back(i);
  }
  if (!missing.empty()) QM_RETURN_IF_ERROR(m->Refresh(ds, missing, retired));
  return m;
}

}  // namespace qm::serving
