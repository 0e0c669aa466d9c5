#include "qianmian/recall/vector_index.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

namespace qm::recall {

const char* IndexKindName(IndexKind k) {
  switch (k) {
    case IndexKind::kAuto: return "auto";
    case IndexKind::kExact: return "exact";
    case IndexKind::kHnsw: return "hnsw";
  }
  return "?";
}

namespace {

using idx_t = faiss::Index::idx_t;
constexpr uint32_t kFileMagic = 0x514D5649;  // "QMVI"

// Faiss index + id bookkeeping. Exact: IndexIDMap2(IndexFlatIP), which supports removal.
// HNSW: IndexIDMap2(IndexHNSWFlat) cannot remove, so removed ids become tombstones that
// searches skip (over-fetching by the number of tombstones, bounded by a rebuild threshold).
class FaissVectorIndex final : public VectorIndex {
 public:
  FaissVectorIndex(IndexKind kind, const VectorIndexOptions& o, std::unique_ptr<faiss::IndexIDMap2> index)
      : kind_(kind), options_(o), index_(std::move(index)) {}

  Status Search(const float* queries, int64_t nq, int k, int64_t* labels, float* scores) const override {
    if (k <= 0) return Status::InvalidArgument("k must be positive");
    if (nq < 0) return Status::InvalidArgument("nq must be >= 0");
    std::shared_lock lock(mu_);
    const int64_t extra = static_cast<int64_t>(tombstones_.size());
    const int64_t fetch = std::min<int64_t>(k + extra, std::max<int64_t>(index_->ntotal, 1));
    std::vector<idx_t> l(nq * fetch);
    std::vector<float> s(nq * fetch);
    try {
      if (kind_ == IndexKind::kHnsw) {
        faiss::SearchParametersHNSW p;
        p.efSearch = std::max<int>(options_.hnsw_ef_search, static_cast<int>(fetch));
        // IndexIDMap2 takes no search parameters in Faiss 1.7.3: search the graph itself
        // and translate its sequential ids.
        index_->index->search(nq, queries, fetch, s.data(), l.data(), &p);
        for (auto& id : l) {
          if (id >= 0) id = index_->id_map[id];
        }
      } else {
        index_->search(nq, queries, fetch, s.data(), l.data());
      }
    } catch (const faiss::FaissException& e) {
      return Status::Internal(std::string("faiss search failed: ") + e.what());
    }
    for (int64_t q = 0; q < nq; ++q) {
      int out = 0;
      for (int64_t j = 0; j < fetch && out < k; ++j) {
        idx_t id = l[q * fetch + j];
        if (id < 0 || (extra && tombstones_.count(id))) continue;
        labels[q * k + out] = id;
        scores[q * k + out] = s[q * fetch + j];
        ++out;
      }
      for (; out < k; ++out) {
        labels[q * k + out] = -1;
        scores[q * k + out] = 0.0f;
      }
    }
    return Status::Ok();
  }

  Status Add(const float* vectors, const int64_t* ids, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0) return Status::InvalidArgument("ids must be >= 0");
    }
    std::unique_lock lock(mu_);
    try {
      // Replace: drop old copies first.
      std::vector<idx_t> present;
      for (int64_t i = 0; i < n; ++i) {
        if (index_->rev_map.count(ids[i])) present.push_back(ids[i]);
      }
      if (!present.empty()) RemoveLocked(present.data(), static_cast<int64_t>(present.size()));
      for (int64_t i = 0; i < n; ++i) {
        if (kind_ == IndexKind::kHnsw && index_->rev_map.count(ids[i])) {
          // A tombstoned id cannot be re-added to HNSW under the same label; rebuild.
          QM_RETURN_IF_ERROR(RebuildLocked());
        }
        tombstones_.erase(ids[i]);
      }
      index_->add_with_ids(n, vectors, ids);
    } catch (const faiss::FaissException& e) {
      return Status::Internal(std::string("faiss add failed: ") + e.what());
    }
    return Status::Ok();
  }

  Result<int64_t> Remove(const int64_t* ids, int64_t n) override {
    std::unique_lock lock(mu_);
    try {
      return RemoveLocked(ids, n);
    } catch (const faiss::FaissException& e) {
      return Status::Internal(std::string("faiss remove failed: ") + e.what());
    }
  }

  Status Save(const std::string& path) const override {
    std::shared_lock lock(mu_);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return Status::IoError("cannot write '" + path + "'");
    bool ok = true;
    try {
      uint32_t header[4] = {kFileMagic, 1, static_cast<uint32_t>(kind_), 0};
      ok = std::fwrite(header, sizeof header, 1, f) == 1;
      VectorIndexOptions o = options_;
      ok = ok && std::fwrite(&o, sizeof o, 1, f) == 1;
      uint64_t nt = tombstones_.size();
      ok = ok && std::fwrite(&nt, sizeof nt, 1, f) == 1;
      for (idx_t t : tombstones_) ok = ok && std::fwrite(&t, sizeof t, 1, f) == 1;
      if (ok) faiss::write_index(index_.get(), f);
    } catch (const faiss::FaissException& e) {
      ok = false;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) return Status::IoError("writing index '" + path + "' failed");
    return Status::Ok();
  }

  int64_t size() const override {
    std::shared_lock lock(mu_);
    return index_->ntotal - static_cast<int64_t>(tombstones_.size());
  }
  int dim() const override { return options_.dim; }
  IndexKind kind() const override { return kind_; }

  static Result<std::unique_ptr<VectorIndex>> LoadFrom(const std::string& path);

 private:
  // REQUIRES: mu_ held exclusively.
  int64_t RemoveLocked(const int64_t* ids, int64_t n) {
    int64_t removed = 0;
    if (kind_ == IndexKind::kExact) {
      faiss::IDSelectorBatch sel(n, ids);
      removed = static_cast<int64_t>(index_->remove_ids(sel));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        if (index_->rev_map.count(ids[i]) && tombstones_.insert(ids[i]).second) ++removed;
      }
      if (static_cast<int64_t>(tombstones_.size()) > std::max<int64_t>(256, index_->ntotal / 10)) {
        (void)RebuildLocked();
      }
    }
    return removed;
  }

  // Rebuilds the HNSW graph without tombstoned vectors. REQUIRES: mu_ held exclusively.
  Status RebuildLocked() {
    const int d = options_.dim;
    std::vector<float> vecs;
    std::vector<idx_t> ids;
    vecs.reserve(index_->ntotal * d);
    std::vector<float> one(d);
    for (idx_t i = 0; i < index_->ntotal; ++i) {
      idx_t id = index_->id_map[i];
      if (tombstones_.count(id)) continue;
      index_->index->reconstruct(i, one.data());
      vecs.insert(vecs.end(), one.begin(), one.end());
      ids.push_back(id);
    }
    auto* hnsw = new faiss::IndexHNSWFlat(d, options_.hnsw_m, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = options_.hnsw_ef_construction;
    hnsw->hnsw.efSearch = options_.hnsw_ef_search;
    auto fresh = std::make_unique<faiss::IndexIDMap2>(hnsw);
    fresh->own_fields = true;
    fresh->add_with_ids(static_cast<idx_t>(ids.size()), vecs.data(), ids.data());
    index_ = std::move(fresh);
    tombstones_.clear();
    return Status::Ok();
  }

  IndexKind kind_;
  VectorIndexOptions options_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<faiss::IndexIDMap2> index_;  // guarded by mu_
  std::unordered_set<idx_t> tombstones_;       // guarded by mu_ (HNSW only)
};

Result<std::unique_ptr<VectorIndex>> FaissVectorIndex::LoadFrom(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError("cannot open index '" + path + "'");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  uint32_t header[4];
  VectorIndexOptions o;
  uint64_t nt = 0;
  if (std::fread(header, sizeof header, 1, f) != 1 || header[0] != kFileMagic || header[1] != 1 ||
      (header[2] != static_cast<uint32_t>(IndexKind::kExact) && header[2] != static_cast<uint32_t>(IndexKind::kHnsw)) ||
      std::fread(&o, sizeof o, 1, f) != 1 || std::fread(&nt, sizeof nt, 1, f) != 1 || nt > (1ull << 40)) {
    return Status::Corruption("'" + path + "' is not a qianmian vector index");
  }
  std::unordered_set<idx_t> tomb;
  for (uint64_t i = 0; i < nt; ++i) {
    idx_t t;
    if (std::fread(&t, sizeof t, 1, f) != 1) return Status::Corruption("'" + path + "' is truncated");
    tomb.insert(t);
  }
  try {
    std::unique_ptr<faiss::Index> raw(faiss::read_index(f));
    auto* map = dynamic_cast<faiss::IndexIDMap2*>(raw.get());
    if (!map || map->d != o.dim) return Status::Corruption("'" + path + "' holds an unexpected index");
    raw.release();
    auto idx = std::make_unique<FaissVectorIndex>(static_cast<IndexKind>(header[2]), o,
                                                  std::unique_ptr<faiss::IndexIDMap2>(map));
    idx->tombstones_ = std::move(tomb);
    return std::unique_ptr<VectorIndex>(std::move(idx));
  } catch (const faiss::FaissException& e) {
    return Status::Corruption("'" + path + "': " + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<VectorIndex>> VectorIndex::Build(const VectorIndexOptions& options,
                                                        const float* vectors, const int64_t* ids,
                                                        int64_t n) {
  if (options.dim <= 0) return Status::InvalidArgument("VectorIndexOptions::dim must be positive");
  if (n < 0) return Status::InvalidArgument("n must be >= 0");
  {
    std::unordered_set<int64_t> seen;
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0) return Status::InvalidArgument("ids must be >= 0");
      if (!seen.insert(ids[i]).second) return Status::InvalidArgument("duplicate id " + std::to_string(ids[i]));
    }
  }
  IndexKind kind = options.kind;
  if (kind == IndexKind::kAuto) kind = n <= options.exact_max ? IndexKind::kExact : IndexKind::kHnsw;
  try {
    faiss::Index* inner;
    if (kind == IndexKind::kExact) {
      inner = new faiss::IndexFlatIP(options.dim);
    } else {
      auto* h = new faiss::IndexHNSWFlat(options.dim, options.hnsw_m, faiss::METRIC_INNER_PRODUCT);
      h->hnsw.efConstruction = options.hnsw_ef_construction;
      h->hnsw.efSearch = options.hnsw_ef_search;
      inner = h;
    }
    auto map = std::make_unique<faiss::IndexIDMap2>(inner);
    map->own_fields = true;
    if (n > 0) map->add_with_ids(n, vectors, ids);
    return std::unique_ptr<VectorIndex>(std::make_unique<FaissVectorIndex>(kind, options, std::move(map)));
  } catch (const faiss::FaissException& e) {
    return Status::Internal(std::string("faiss build failed: ") + e.what());
  }
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Load(const std::string& path) {
  return FaissVectorIndex::LoadFrom(path);
}

Result<double> MeasureRecallAgainstExact(const VectorIndex& index, const float* vectors,
                                         const int64_t* ids, int64_t n, const float* queries,
                                         int64_t nq, int k) {
  if (nq <= 0 || k <= 0) return Status::InvalidArgument("nq and k must be positive");
  VectorIndexOptions o;
  o.dim = index.dim();
  o.kind = IndexKind::kExact;
  QM_ASSIGN_OR_RETURN(auto exact, VectorIndex::Build(o, vectors, ids, n));
  std::vector<int64_t> la(nq * k), le(nq * k);
  std::vector<float> sa(nq * k), se(nq * k);
  QM_RETURN_IF_ERROR(index.Search(queries, nq, k, la.data(), sa.data()));
  QM_RETURN_IF_ERROR(exact->Search(queries, nq, k, le.data(), se.data()));
  double total = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::unordered_set<int64_t> got(la.begin() + q * k, la.begin() + (q + 1) * k);
    int want = 0, hit = 0;
    for (int j = 0; j < k; ++j) {
      int64_t id = le[q * k + j];
      if (id < 0) continue;
      ++want;
      hit += got.count(id) ? 1 : 0;
    }
    total += want ? static_cast<double>(hit) / want : 1.0;
  }
  return total / nq;
}

}  // namespace qm::recall
