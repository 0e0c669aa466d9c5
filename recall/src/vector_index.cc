#include "qianmian/recall/vector_index.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <cblas.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <Eigen/Core>

#include "qianmian/core/blas_threads.h"
#include "qianmian/core/top_k.h"

namespace qm::recall {

const char* IndexKindName(IndexKind k) {
  switch (k) {
    case IndexKind::kAuto:
      return "auto";
    case IndexKind::kExact:
      return "exact";
    case IndexKind::kHnsw:
      return "hnsw";
    case IndexKind::kIvf:
      return "ivf";
  }
  return "?";
}

Result<IndexKind> ParseIndexKind(const std::string& name) {
  for (IndexKind k : {IndexKind::kAuto, IndexKind::kExact, IndexKind::kHnsw, IndexKind::kIvf}) {
    if (name == IndexKindName(k)) return k;
  }
  return Status::InvalidArgument("unknown index kind '" + name + "' (auto, exact, hnsw or ivf)");
}

namespace {

using idx_t = faiss::Index::idx_t;
constexpr uint32_t kFileMagic = 0x514D5649;  // "QMVI"

// Fixed on-disk form of the options (file version 2); version 1 files hold the
// VectorIndexOptions of that time, whose layout OptionsV1 repeats.
struct OptionsV1 {
  int dim;
  IndexKind kind;
  int64_t exact_max;
  int hnsw_m, hnsw_ef_construction, hnsw_ef_search;
};
struct OptionsV2 {
  int64_t dim, exact_max, hnsw_m, hnsw_ef_construction, hnsw_ef_search, ivf_nlist, ivf_nprobe;
};

int AutoNlist(int64_t n) {
  const double want = 4.0 * std::sqrt(static_cast<double>(std::max<int64_t>(n, 1)));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(std::llround(want), n / 39)));
}

// Faiss index + id bookkeeping.
// - Exact: IndexIDMap2(IndexFlatIP), which supports removal.
// - HNSW: IndexIDMap2(IndexHNSWFlat) cannot remove, so removed ids become tombstones that
//   searches skip (over-fetching by the number of tombstones, bounded by a rebuild threshold).
// - IVF: IndexIVFFlat, which stores the ids itself and removes them from its lists.
class FaissVectorIndex final : public VectorIndex {
 public:
  FaissVectorIndex(IndexKind kind, const VectorIndexOptions& o, std::unique_ptr<faiss::IndexIDMap2> map)
      : kind_(kind), options_(o), map_(std::move(map)) {}
  FaissVectorIndex(const VectorIndexOptions& o, std::unique_ptr<faiss::IndexIVFFlat> ivf)
      : kind_(IndexKind::kIvf), options_(o), ivf_(std::move(ivf)) {
    options_.ivf_nlist = static_cast<int>(ivf_->nlist);
    options_.ivf_nprobe = std::clamp(options_.ivf_nprobe, 1, options_.ivf_nlist);
  }

  Status Search(const float* queries, int64_t nq, int k, int64_t* labels, float* scores) const override {
    if (k <= 0) return Status::InvalidArgument("k must be positive");
    if (nq < 0) return Status::InvalidArgument("nq must be >= 0");
    std::shared_lock lock(mu_);
    const int64_t extra = static_cast<int64_t>(tombstones_.size());
    const int64_t fetch = std::min<int64_t>(k + extra, std::max<int64_t>(ntotal(), 1));
    std::vector<idx_t> l(nq * fetch);
    std::vector<float> s(nq * fetch);
    try {
      if (ivf_ && nq > kFewQueries) {
        SearchIvfBatch(queries, nq, fetch, l.data(), s.data());
      } else if (ivf_) {
        for (int64_t q = 0; q < nq; ++q)
          SearchIvf(queries + q * options_.dim, fetch, l.data() + q * fetch, s.data() + q * fetch);
      } else if (kind_ == IndexKind::kExact && nq <= kFewQueries) {
        for (int64_t q = 0; q < nq; ++q)
          SearchFlat(queries + q * options_.dim, fetch, l.data() + q * fetch, s.data() + q * fetch);
      } else {
        // HNSW searches with the graph's own efSearch (at least `fetch`): Faiss 1.7.3 takes
        // efSearch from SearchParametersHNSW only for its interrupt checks.
        map_->search(nq, queries, fetch, s.data(), l.data());
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
      if (ivf_) {
        // Replace: drop old copies first.
        faiss::IDSelectorBatch sel(n, ids);
        ivf_->remove_ids(sel);
        ivf_->add_with_ids(n, vectors, ids);
        return Status::Ok();
      }
      std::vector<idx_t> present;
      for (int64_t i = 0; i < n; ++i) {
        if (map_->rev_map.count(ids[i])) present.push_back(ids[i]);
      }
      if (!present.empty()) RemoveLocked(present.data(), static_cast<int64_t>(present.size()));
      for (int64_t i = 0; i < n; ++i) {
        if (kind_ == IndexKind::kHnsw && map_->rev_map.count(ids[i])) {
          // A tombstoned id cannot be re-added to HNSW under the same label; rebuild.
          QM_RETURN_IF_ERROR(RebuildLocked());
        }
        tombstones_.erase(ids[i]);
      }
      map_->add_with_ids(n, vectors, ids);
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
      uint32_t header[4] = {kFileMagic, 2, static_cast<uint32_t>(kind_), 0};
      ok = std::fwrite(header, sizeof header, 1, f) == 1;
      OptionsV2 o{options_.dim,
                  options_.exact_max,
                  options_.hnsw_m,
                  options_.hnsw_ef_construction,
                  options_.hnsw_ef_search,
                  options_.ivf_nlist,
                  options_.ivf_nprobe};
      ok = ok && std::fwrite(&o, sizeof o, 1, f) == 1;
      uint64_t nt = tombstones_.size();
      ok = ok && std::fwrite(&nt, sizeof nt, 1, f) == 1;
      for (idx_t t : tombstones_) ok = ok && std::fwrite(&t, sizeof t, 1, f) == 1;
      if (ok) faiss::write_index(ivf_ ? static_cast<const faiss::Index*>(ivf_.get()) : map_.get(), f);
    } catch (const faiss::FaissException& e) {
      ok = false;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) return Status::IoError("writing index '" + path + "' failed");
    return Status::Ok();
  }

  int search_effort() const override {
    std::shared_lock lock(mu_);
    switch (kind_) {
      case IndexKind::kHnsw:
        return options_.hnsw_ef_search;
      case IndexKind::kIvf:
        return options_.ivf_nprobe;
      default:
        return 0;
    }
  }

  void SetSearchEffort(int effort) override {
    std::unique_lock lock(mu_);
    if (kind_ == IndexKind::kHnsw) {
      options_.hnsw_ef_search = std::clamp(effort, 1, 1 << 16);
      static_cast<faiss::IndexHNSW*>(map_->index)->hnsw.efSearch = options_.hnsw_ef_search;
    } else if (kind_ == IndexKind::kIvf) {
      options_.ivf_nprobe = std::clamp(effort, 1, options_.ivf_nlist);
    }
  }

  int64_t size() const override {
    std::shared_lock lock(mu_);
    return ntotal() - static_cast<int64_t>(tombstones_.size());
  }
  int dim() const override { return options_.dim; }
  IndexKind kind() const override { return kind_; }

  static Result<std::unique_ptr<VectorIndex>> LoadFrom(const std::string& path);

  // Each query's nearest IVF cell (the first cell its search probes), for grouping queries that
  // probe the same cells; empty for an index without cells.
  std::vector<int32_t> NearestCells(const float* queries, int64_t nq) const {
    std::shared_lock lock(mu_);
    if (!ivf_ || nq <= 0) return {};
    const int d = options_.dim;
    const int nlist = static_cast<int>(ivf_->nlist);
    const auto* cells = static_cast<const faiss::IndexFlat*>(ivf_->quantizer);
    constexpr int64_t kBlock = 1024;
    std::vector<float> s(static_cast<size_t>(std::min(nq, kBlock)) * nlist);
    std::vector<int32_t> out(static_cast<size_t>(nq));
    for (int64_t lo = 0; lo < nq; lo += kBlock) {
      const int m = static_cast<int>(std::min(kBlock, nq - lo));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nlist, d, 1.0f, queries + lo * d, d, cells->get_xb(), d,
                  0.0f, s.data(), nlist);
      for (int i = 0; i < m; ++i) {
        const float* row = s.data() + static_cast<size_t>(i) * nlist;
        out[static_cast<size_t>(lo + i)] = static_cast<int32_t>(std::max_element(row, row + nlist) - row);
      }
    }
    return out;
  }

 private:
  int64_t ntotal() const { return ivf_ ? ivf_->ntotal : map_->ntotal; }

  // Up to this many queries, exact search is one Eigen matrix-vector product per query; above,
  // Faiss's batched search (a BLAS matrix product, parallel) is faster.
  static constexpr int64_t kFewQueries = 16;

  // Writes top's pairs best first into labels/scores[0..k), -1 where fewer than k were kept.
  static void Take(TopK<idx_t>* top, int64_t k, idx_t* labels, float* scores) {
    const auto& sorted = top->SortBestFirst();
    for (int64_t j = 0; j < k; ++j) {
      const bool have = j < static_cast<int64_t>(sorted.size());
      labels[j] = have ? sorted[j].second : -1;
      scores[j] = have ? sorted[j].first : 0.0f;
    }
  }

  // One exact query over IndexIDMap2(IndexFlatIP) with an Eigen matrix-vector product.
  // REQUIRES: mu_ held.
  void SearchFlat(const float* query, int64_t k, idx_t* labels, float* scores) const {
    using Rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const auto* flat = static_cast<const faiss::IndexFlat*>(map_->index);
    const Eigen::VectorXf all =
        Eigen::Map<const Rows>(flat->get_xb(), static_cast<Eigen::Index>(flat->ntotal), options_.dim) *
        Eigen::Map<const Eigen::VectorXf>(query, options_.dim);
    TopK<idx_t> top(k);
    top.PushAll(all.data(), all.size(), [&](int64_t j) { return map_->id_map[static_cast<size_t>(j)]; });
    Take(&top, k, labels, scores);
  }

  // One IVF query: the same cells and lists as IndexIVFFlat::search, scored with Eigen's
  // vectorised matrix-vector products (Debian's Faiss build scores one scalar product at a
  // time). Best first; -1 where fewer than k exist. REQUIRES: mu_ held.
  void SearchIvf(const float* query, int64_t k, idx_t* labels, float* scores) const {
    using Rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const int d = options_.dim;
    const auto* cells = static_cast<const faiss::IndexFlat*>(ivf_->quantizer);
    const Eigen::Map<const Eigen::VectorXf> q(query, d);
    const Eigen::VectorXf cell_scores =
        Eigen::Map<const Rows>(cells->get_xb(), static_cast<Eigen::Index>(ivf_->nlist), d) * q;
    const int nprobe = std::min<int>(options_.ivf_nprobe, static_cast<int>(ivf_->nlist));
    std::vector<int> probe(ivf_->nlist);
    std::iota(probe.begin(), probe.end(), 0);
    std::partial_sort(probe.begin(), probe.begin() + nprobe, probe.end(),
                      [&](int a, int b) { return cell_scores[a] > cell_scores[b]; });
    TopK<idx_t> top(k);
    Eigen::VectorXf list_scores;
    for (int p = 0; p < nprobe; ++p) {
      const size_t list = static_cast<size_t>(probe[p]);
      const size_t n = ivf_->invlists->list_size(list);
      if (n == 0) continue;
      faiss::InvertedLists::ScopedCodes codes(ivf_->invlists, list);
      faiss::InvertedLists::ScopedIds ids(ivf_->invlists, list);
      list_scores.noalias() =
          Eigen::Map<const Rows>(reinterpret_cast<const float*>(codes.get()), static_cast<Eigen::Index>(n), d) * q;
      top.PushAll(list_scores.data(), static_cast<int64_t>(n), [&](int64_t j) { return ids.get()[j]; });
    }
    Take(&top, k, labels, scores);
  }

  // Many IVF queries (push runs): the same cells and lists as SearchIvf, in matrix products
  // (BLAS) instead of one matrix-vector product per list and query. For a block of queries, one
  // product scores every cell; then each probed cell's list is scored against the block's queries
  // that probe it, in one product. Best first; -1 where fewer than k exist. REQUIRES: mu_ held.
  void SearchIvfBatch(const float* queries, int64_t nq, int64_t k, idx_t* labels, float* scores) const {
    const int d = options_.dim;
    const int nlist = static_cast<int>(ivf_->nlist);
    const int nprobe = std::min<int>(options_.ivf_nprobe, nlist);
    const auto* cells = static_cast<const faiss::IndexFlat*>(ivf_->quantizer);
    constexpr int64_t kBlock = 256;
    const int64_t block = std::min(nq, kBlock);
    std::vector<float> cell_scores(static_cast<size_t>(block) * nlist);
    std::vector<int> order(nlist), first(nlist + 1), member(static_cast<size_t>(block) * nprobe);
    std::vector<int> probed(static_cast<size_t>(block) * nprobe);
    std::vector<float> gathered, list_scores;
    std::vector<TopK<idx_t>> top(static_cast<size_t>(block));
    for (int64_t lo = 0; lo < nq; lo += kBlock) {
      const int m = static_cast<int>(std::min(kBlock, nq - lo));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nlist, d, 1.0f, queries + lo * d, d, cells->get_xb(), d,
                  0.0f, cell_scores.data(), nlist);
      std::fill(first.begin(), first.end(), 0);
      for (int i = 0; i < m; ++i) {
        const float* s = cell_scores.data() + static_cast<size_t>(i) * nlist;
        std::iota(order.begin(), order.end(), 0);
        std::nth_element(order.begin(), order.begin() + (nprobe - 1), order.end(),
                         [s](int a, int b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
        for (int p = 0; p < nprobe; ++p) {
          probed[static_cast<size_t>(i) * nprobe + p] = order[p];
          ++first[order[p] + 1];
        }
        top[i].Reset(k);
      }
      // The block's (query, cell) pairs grouped by cell (a counting sort).
      for (int c = 0; c < nlist; ++c) first[c + 1] += first[c];
      std::vector<int> next(first.begin(), first.end() - 1);
      for (int i = 0; i < m; ++i) {
        for (int p = 0; p < nprobe; ++p) member[next[probed[static_cast<size_t>(i) * nprobe + p]]++] = i;
      }
      for (int c = 0; c < nlist; ++c) {
        const int count = first[c + 1] - first[c];
        const size_t n = ivf_->invlists->list_size(static_cast<size_t>(c));
        if (count == 0 || n == 0) continue;
        faiss::InvertedLists::ScopedCodes codes(ivf_->invlists, static_cast<size_t>(c));
        faiss::InvertedLists::ScopedIds ids(ivf_->invlists, static_cast<size_t>(c));
        gathered.resize(static_cast<size_t>(count) * d);
        for (int j = 0; j < count; ++j) {
          std::copy_n(queries + (lo + member[first[c] + j]) * d, d, gathered.data() + static_cast<size_t>(j) * d);
        }
        list_scores.resize(static_cast<size_t>(count) * n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, static_cast<int>(n), d, 1.0f, gathered.data(), d,
                    reinterpret_cast<const float*>(codes.get()), d, 0.0f, list_scores.data(), static_cast<int>(n));
        for (int j = 0; j < count; ++j) {
          TopK<idx_t>& t = top[member[first[c] + j]];
          const float* s = list_scores.data() + static_cast<size_t>(j) * n;
          t.PushAll(s, static_cast<int64_t>(n), [&](int64_t j) { return ids.get()[j]; });
        }
      }
      for (int i = 0; i < m; ++i) Take(&top[i], k, labels + (lo + i) * k, scores + (lo + i) * k);
    }
  }

  // REQUIRES: mu_ held exclusively.
  int64_t RemoveLocked(const int64_t* ids, int64_t n) {
    int64_t removed = 0;
    if (kind_ != IndexKind::kHnsw) {
      faiss::IDSelectorBatch sel(n, ids);
      removed = static_cast<int64_t>(ivf_ ? ivf_->remove_ids(sel) : map_->remove_ids(sel));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        if (map_->rev_map.count(ids[i]) && tombstones_.insert(ids[i]).second) ++removed;
      }
      if (static_cast<int64_t>(tombstones_.size()) > std::max<int64_t>(256, map_->ntotal / 10)) {
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
    vecs.reserve(map_->ntotal * d);
    std::vector<float> one(d);
    for (idx_t i = 0; i < map_->ntotal; ++i) {
      idx_t id = map_->id_map[i];
      if (tombstones_.count(id)) continue;
      map_->index->reconstruct(i, one.data());
      vecs.insert(vecs.end(), one.begin(), one.end());
      ids.push_back(id);
    }
    auto* hnsw = new faiss::IndexHNSWFlat(d, options_.hnsw_m, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = options_.hnsw_ef_construction;
    hnsw->hnsw.efSearch = options_.hnsw_ef_search;
    auto fresh = std::make_unique<faiss::IndexIDMap2>(hnsw);
    fresh->own_fields = true;
    fresh->add_with_ids(static_cast<idx_t>(ids.size()), vecs.data(), ids.data());
    map_ = std::move(fresh);
    tombstones_.clear();
    return Status::Ok();
  }

  IndexKind kind_;
  VectorIndexOptions options_;  // search effort guarded by mu_
  mutable std::shared_mutex mu_;
  std::unique_ptr<faiss::IndexIDMap2> map_;   // exact and HNSW; guarded by mu_
  std::unique_ptr<faiss::IndexIVFFlat> ivf_;  // IVF; guarded by mu_
  std::unordered_set<idx_t> tombstones_;      // guarded by mu_ (HNSW only)
};

Result<std::unique_ptr<VectorIndex>> FaissVectorIndex::LoadFrom(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError("cannot open index '" + path + "'");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  const auto corrupt = [&] { return Status::Corruption("'" + path + "' is not a qianmian vector index"); };
  uint32_t header[4];
  VectorIndexOptions o;
  uint64_t nt = 0;
  if (std::fread(header, sizeof header, 1, f) != 1 || header[0] != kFileMagic || header[1] < 1 || header[1] > 2 ||
      header[2] < static_cast<uint32_t>(IndexKind::kExact) || header[2] > static_cast<uint32_t>(IndexKind::kIvf) ||
      (header[1] == 1 && header[2] == static_cast<uint32_t>(IndexKind::kIvf))) {
    return corrupt();
  }
  const auto kind = static_cast<IndexKind>(header[2]);
  if (header[1] == 1) {
    OptionsV1 v;
    if (std::fread(&v, sizeof v, 1, f) != 1) return corrupt();
    o.dim = v.dim;
    o.exact_max = v.exact_max;
    o.hnsw_m = v.hnsw_m;
    o.hnsw_ef_construction = v.hnsw_ef_construction;
    o.hnsw_ef_search = v.hnsw_ef_search;
  } else {
    OptionsV2 v;
    if (std::fread(&v, sizeof v, 1, f) != 1) return corrupt();
    o.dim = static_cast<int>(v.dim);
    o.exact_max = v.exact_max;
    o.hnsw_m = static_cast<int>(v.hnsw_m);
    o.hnsw_ef_construction = static_cast<int>(v.hnsw_ef_construction);
    o.hnsw_ef_search = static_cast<int>(v.hnsw_ef_search);
    o.ivf_nlist = static_cast<int>(v.ivf_nlist);
    o.ivf_nprobe = static_cast<int>(v.ivf_nprobe);
  }
  o.kind = kind;
  if (std::fread(&nt, sizeof nt, 1, f) != 1 || nt > (1ull << 40) || o.dim <= 0) return corrupt();
  std::unordered_set<idx_t> tomb;
  for (uint64_t i = 0; i < nt; ++i) {
    idx_t t;
    if (std::fread(&t, sizeof t, 1, f) != 1) return Status::Corruption("'" + path + "' is truncated");
    tomb.insert(t);
  }
  try {
    std::unique_ptr<faiss::Index> raw(faiss::read_index(f));
    const auto unexpected = [&] { return Status::Corruption("'" + path + "' holds an unexpected index"); };
    if (!raw || raw->d != o.dim) return unexpected();
    if (kind == IndexKind::kIvf) {
      auto* ivf = dynamic_cast<faiss::IndexIVFFlat*>(raw.get());
      if (!ivf || !tomb.empty() || ivf->metric_type != faiss::METRIC_INNER_PRODUCT ||
          !dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer) ||
          ivf->quantizer->ntotal != static_cast<idx_t>(ivf->nlist)) {
        return unexpected();
      }
      raw.release();
      return std::unique_ptr<VectorIndex>(
          std::make_unique<FaissVectorIndex>(o, std::unique_ptr<faiss::IndexIVFFlat>(ivf)));
    }
    auto* map = dynamic_cast<faiss::IndexIDMap2*>(raw.get());
    if (!map) return unexpected();
    if (kind == IndexKind::kHnsw) {
      auto* h = dynamic_cast<faiss::IndexHNSW*>(map->index);
      if (!h) return unexpected();
      h->hnsw.efSearch = o.hnsw_ef_search;
    }
    raw.release();
    auto idx = std::make_unique<FaissVectorIndex>(kind, o, std::unique_ptr<faiss::IndexIDMap2>(map));
    idx->tombstones_ = std::move(tomb);
    return std::unique_ptr<VectorIndex>(std::move(idx));
  } catch (const faiss::FaissException& e) {
    return Status::Corruption("'" + path + "': " + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<VectorIndex>> VectorIndex::Build(const VectorIndexOptions& options, const float* vectors,
                                                        const int64_t* ids, int64_t n) {
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
  if (kind == IndexKind::kAuto) kind = n <= options.exact_max ? IndexKind::kExact : IndexKind::kIvf;
  try {
    if (kind == IndexKind::kIvf) {
      if (n < 1) return Status::InvalidArgument("an IVF index needs vectors to learn its cells from");
      VectorIndexOptions o = options;
      o.kind = kind;
      const int nlist =
          options.ivf_nlist > 0 ? static_cast<int>(std::min<int64_t>(options.ivf_nlist, n)) : AutoNlist(n);
      auto* quantizer = new faiss::IndexFlatIP(options.dim);
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer, options.dim, nlist, faiss::METRIC_INNER_PRODUCT);
      ivf->own_fields = true;
      ivf->cp.seed = 1234;  // deterministic cells for the same vectors
      ivf->train(n, vectors);
      ivf->add_with_ids(n, vectors, ids);
      return std::unique_ptr<VectorIndex>(std::make_unique<FaissVectorIndex>(o, std::move(ivf)));
    }
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

namespace {

// The exact top-k labels of each query over (vectors, ids).
Result<std::vector<int64_t>> ExactTopK(int dim, const float* vectors, const int64_t* ids, int64_t n,
                                       const float* queries, int64_t nq, int k) {
  VectorIndexOptions o;
  o.dim = dim;
  o.kind = IndexKind::kExact;
  QM_ASSIGN_OR_RETURN(auto exact, VectorIndex::Build(o, vectors, ids, n));
  std::vector<int64_t> labels(nq * k);
  std::vector<float> scores(nq * k);
  QM_RETURN_IF_ERROR(exact->Search(queries, nq, k, labels.data(), scores.data()));
  return labels;
}

Result<double> RecallAgainst(const VectorIndex& index, const std::vector<int64_t>& exact, const float* queries,
                             int64_t nq, int k) {
  std::vector<int64_t> got_labels(nq * k);
  std::vector<float> scores(nq * k);
  QM_RETURN_IF_ERROR(index.Search(queries, nq, k, got_labels.data(), scores.data()));
  double total = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::unordered_set<int64_t> got(got_labels.begin() + q * k, got_labels.begin() + (q + 1) * k);
    int want = 0, hit = 0;
    for (int j = 0; j < k; ++j) {
      int64_t id = exact[q * k + j];
      if (id < 0) continue;
      ++want;
      hit += got.count(id) ? 1 : 0;
    }
    total += want ? static_cast<double>(hit) / want : 1.0;
  }
  return total / nq;
}

}  // namespace

Result<double> MeasureRecallAgainstExact(const VectorIndex& index, const float* vectors, const int64_t* ids, int64_t n,
                                         const float* queries, int64_t nq, int k) {
  if (nq <= 0 || k <= 0) return Status::InvalidArgument("nq and k must be positive");
  QM_ASSIGN_OR_RETURN(auto exact, ExactTopK(index.dim(), vectors, ids, n, queries, nq, k));
  return RecallAgainst(index, exact, queries, nq, k);
}

Status NeighbourLists(const VectorIndex& index, const float* queries, const int64_t* self, int64_t nq, int k,
                      int32_t* out) {
  if (k <= 0 || nq < 0) return Status::InvalidArgument("k must be positive and nq >= 0");
  const int d = index.dim();
  // The queries grouped by their nearest IVF cell: a batched IVF search scores each probed cell's
  // list against the block's queries that probe it, so a block of neighbouring queries reads a
  // few hundred lists in large matrix products where a block of scattered ones reads nearly every
  // list for a handful of queries each (a million contents: 20.7 s for 50,000 items' lists
  // ungrouped). A query's result does not depend on its block, up to the order of near-ties (the
  // matrix products round by the block's shape: 1 list of 10,000 with two items swapped, seen on an
  // AVX-512 host).
  std::vector<int64_t> order(static_cast<size_t>(nq));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (const auto* faiss_index = dynamic_cast<const FaissVectorIndex*>(&index)) {
    const std::vector<int32_t> cell = faiss_index->NearestCells(queries, nq);
    if (!cell.empty()) {
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cell[a] < cell[b]; });
    }
  }
  // Chunks of the grouped order on every core, OpenBLAS on one thread under each.
  constexpr int64_t kChunk = 4096;
  const int fetch = k + 1;  // the query's own label may take a place
  std::atomic<int64_t> next{0};
  std::mutex error_mu;
  Status error;
  auto work = [&] {
    std::vector<float> q;
    std::vector<int64_t> labels;
    std::vector<float> scores;
    for (int64_t lo = next.fetch_add(kChunk); lo < nq; lo = next.fetch_add(kChunk)) {
      const int64_t n = std::min(kChunk, nq - lo);
      q.resize(static_cast<size_t>(n) * d);
      for (int64_t i = 0; i < n; ++i) std::copy_n(queries + order[lo + i] * d, d, q.data() + i * d);
      labels.resize(static_cast<size_t>(n) * fetch);
      scores.resize(labels.size());
      Status st = index.Search(q.data(), n, fetch, labels.data(), scores.data());
      for (int64_t i = 0; st.ok() && i < n; ++i) {
        const int64_t row_index = order[lo + i];
        int32_t* row = out + row_index * k;
        int got = 0;
        for (int j = 0; j < fetch && got < k; ++j) {
          const int64_t id = labels[i * fetch + j];
          if (id < 0 || id == self[row_index]) continue;
          if (id > INT32_MAX) {
            st = Status::InvalidArgument("label " + std::to_string(id) + " does not fit a neighbour list");
            break;
          }
          row[got++] = static_cast<int32_t>(id);
        }
        std::fill(row + got, row + k, -1);
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.ok()) error = st;
        next = nq;
      }
    }
  };
  const int threads = static_cast<int>(
      std::clamp<int64_t>((nq + kChunk - 1) / kChunk, 1, std::max(1u, std::thread::hardware_concurrency())));
  {
    ScopedBlasThreads one(1);
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  return error;
}

namespace {
constexpr uint32_t kTableMagic = 0x544E4D51;  // "QMNT"
}  // namespace

Status SaveNeighbourTable(const NeighbourTable& t, const std::string& path) {
  if (t.k <= 0 || t.rows < 0 || t.labels.size() != static_cast<size_t>(t.rows) * 2 * t.k) {
    return Status::InvalidArgument("neighbour table shape does not match its labels");
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IoError("cannot write '" + path + "'");
  const uint32_t header[4] = {kTableMagic, 1, static_cast<uint32_t>(t.rows), static_cast<uint32_t>(t.k)};
  bool ok = std::fwrite(header, sizeof header, 1, f) == 1 &&
            (t.labels.empty() || std::fwrite(t.labels.data(), sizeof(int32_t), t.labels.size(), f) == t.labels.size());
  ok = (std::fclose(f) == 0) && ok;
  return ok ? Status::Ok() : Status::IoError("writing '" + path + "' failed");
}

Result<NeighbourTable> LoadNeighbourTable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError("cannot open '" + path + "'");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  uint32_t header[4];
  const auto corrupt = [&] { return Status::Corruption("'" + path + "' is not a qianmian neighbour table"); };
  if (std::fread(header, sizeof header, 1, f) != 1 || header[0] != kTableMagic || header[1] != 1 || header[3] == 0 ||
      header[3] > 4096) {
    return corrupt();
  }
  NeighbourTable t;
  t.rows = header[2];
  t.k = static_cast<int>(header[3]);
  t.labels.resize(static_cast<size_t>(t.rows) * 2 * t.k);
  if (!t.labels.empty() && std::fread(t.labels.data(), sizeof(int32_t), t.labels.size(), f) != t.labels.size()) {
    return corrupt();
  }
  if (std::fgetc(f) != EOF) return corrupt();
  return t;
}

Result<double> TuneSearchEffort(VectorIndex* index, const float* vectors, const int64_t* ids, int64_t n,
                                const float* queries, int64_t nq, int k, double target) {
  if (nq <= 0 || k <= 0) return Status::InvalidArgument("nq and k must be positive");
  if (index->kind() == IndexKind::kExact) return 1.0;
  QM_ASSIGN_OR_RETURN(auto exact, ExactTopK(index->dim(), vectors, ids, n, queries, nq, k));
  const auto recall_at = [&](int effort) -> Result<double> {
    index->SetSearchEffort(effort);
    return RecallAgainst(*index, exact, queries, nq, k);
  };
  // HNSW searches at least k candidates whatever its efSearch; IVF starts from one cell.
  int lo = 0;  // largest effort known to miss the target
  int hi = index->kind() == IndexKind::kHnsw ? k : 1;
  QM_ASSIGN_OR_RETURN(double r, recall_at(hi));
  if (r >= target) return r;  // the least effort already reaches it
  while (r < target) {
    lo = hi;
    index->SetSearchEffort(hi * 2);
    if (index->search_effort() == lo) return r;  // the largest effort misses the target
    hi = index->search_effort();
    QM_ASSIGN_OR_RETURN(r, recall_at(hi));
  }
  double r_hi = r;
  while (hi - lo > std::max(1, hi / 16)) {  // bisect to within about 6%
    const int mid = lo + (hi - lo) / 2;
    QM_ASSIGN_OR_RETURN(double rm, recall_at(mid));
    if (rm >= target) {
      hi = mid;
      r_hi = rm;
    } else {
      lo = mid;
    }
  }
  index->SetSearchEffort(hi);
  return r_hi;
}

}  // namespace qm::recall
