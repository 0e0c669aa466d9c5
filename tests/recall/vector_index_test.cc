#include "qianmian/recall/vector_index.h"

#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace qm::recall {
namespace {

struct Data {
  int dim;
  std::vector<float> vecs;
  std::vector<int64_t> ids;
};

Data RandomData(int n, int dim, uint32_t seed, int64_t id_base = 1000) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  Data d{dim, std::vector<float>(static_cast<size_t>(n) * dim), {}};
  for (auto& v : d.vecs) v = g(rng);
  for (int i = 0; i < n; ++i) d.ids.push_back(id_base + i * 7);
  return d;
}

// An index of `kind` over all of `d` (nullptr, with a test failure, if the build fails).
std::unique_ptr<VectorIndex> BuildOf(const Data& d, IndexKind kind) {
  VectorIndexOptions o;
  o.dim = d.dim;
  o.kind = kind;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), static_cast<int64_t>(d.ids.size()));
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  return idx.ok() ? std::move(idx).value() : nullptr;
}

// Saves `idx` to a temp file and loads it back (nullptr, with a test failure, if that fails).
std::unique_ptr<VectorIndex> SaveAndLoad(const VectorIndex& idx, const std::string& file) {
  const auto path = (std::filesystem::temp_directory_path() / file).string();
  EXPECT_TRUE(idx.Save(path).ok());
  auto loaded = VectorIndex::Load(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

// Both indexes return the same k labels for `query`.
void ExpectSameSearch(const VectorIndex& a, const VectorIndex& b, const float* query, int k) {
  std::vector<int64_t> la(k), lb(k);
  std::vector<float> sa(k), sb(k);
  ASSERT_TRUE(a.Search(query, 1, k, la.data(), sa.data()).ok());
  ASSERT_TRUE(b.Search(query, 1, k, lb.data(), sb.data()).ok());
  EXPECT_EQ(la, lb);
}

TEST(VectorIndex, ExactSearchReturnsTheBestInnerProductsInOrder) {
  // Three 2-d vectors; the query (1, 0) prefers x-heavy ones.
  std::vector<float> v = {1, 0, 0, 1, 0.5f, 0.5f};
  std::vector<int64_t> ids = {10, 20, 30};
  VectorIndexOptions o;
  o.dim = 2;
  auto idx = VectorIndex::Build(o, v.data(), ids.data(), 3);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->kind(), IndexKind::kExact);
  float q[2] = {1, 0};
  int64_t labels[4];
  float scores[4];
  ASSERT_TRUE((*idx)->Search(q, 1, 4, labels, scores).ok());
  EXPECT_EQ(labels[0], 10);
  EXPECT_EQ(labels[1], 30);
  EXPECT_EQ(labels[2], 20);
  EXPECT_EQ(labels[3], -1);  // fewer than k
  EXPECT_FLOAT_EQ(scores[0], 1.0f);
}

TEST(VectorIndex, AutoPicksIvfAboveTheExactLimit) {
  Data d = RandomData(6000, 16, 1);
  VectorIndexOptions o;
  o.dim = 16;
  o.exact_max = 5000;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 6000);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->kind(), IndexKind::kIvf);
  EXPECT_EQ((*idx)->size(), 6000);
  o.exact_max = 6000;
  auto small = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 6000);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)->kind(), IndexKind::kExact);
}

// Tuning on one set of queries reaches the target, and the recall holds on other queries;
// lower efforts miss it (so the tuner did not simply pick the largest).
TEST(VectorIndex, TunedSearchEffortReachesTheRecallTargetOnNewQueries) {
  Data d = RandomData(20000, 32, 1);
  Data tune = RandomData(100, 32, 2), check = RandomData(100, 32, 5);
  for (IndexKind kind : {IndexKind::kIvf, IndexKind::kHnsw}) {
    VectorIndexOptions o;
    o.dim = 32;
    o.kind = kind;
    auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 20000);
    ASSERT_TRUE(idx.ok());
    auto tuned = TuneSearchEffort(idx->get(), d.vecs.data(), d.ids.data(), 20000, tune.vecs.data(), 100, 100, 0.95);
    ASSERT_TRUE(tuned.ok()) << tuned.status().message();
    EXPECT_GE(*tuned, 0.95) << IndexKindName(kind);
    const int effort = (*idx)->search_effort();
    auto r = MeasureRecallAgainstExact(**idx, d.vecs.data(), d.ids.data(), 20000, check.vecs.data(), 100, 100);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(*r, 0.93) << IndexKindName(kind) << " effort " << effort;
    (*idx)->SetSearchEffort(effort / 4);
    auto low = MeasureRecallAgainstExact(**idx, d.vecs.data(), d.ids.data(), 20000, tune.vecs.data(), 100, 100);
    ASSERT_TRUE(low.ok());
    EXPECT_LT(*low, 0.95) << IndexKindName(kind) << " effort " << effort;
  }
  // Exact search needs no tuning.
  VectorIndexOptions o;
  o.dim = 32;
  o.kind = IndexKind::kExact;
  auto exact = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 2000);
  ASSERT_TRUE(exact.ok());
  auto one = TuneSearchEffort(exact->get(), d.vecs.data(), d.ids.data(), 2000, tune.vecs.data(), 10, 10, 0.95);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, 1.0);
  EXPECT_EQ((*exact)->search_effort(), 0);
}

TEST(VectorIndex, RemovedIdsNeverComeBackAndReAddedIdsDo) {
  for (IndexKind kind : {IndexKind::kExact, IndexKind::kHnsw, IndexKind::kIvf}) {
    Data d = RandomData(500, 8, 3);
    VectorIndexOptions o;
    o.dim = 8;
    o.kind = kind;
    auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 500);
    ASSERT_TRUE(idx.ok());
    // Query with item 0's own vector: it is its own best match (norms vary, so search k=500).
    std::vector<int64_t> labels(500);
    std::vector<float> scores(500);
    auto removed = (*idx)->Remove(&d.ids[0], 1);
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, 1);
    EXPECT_EQ((*idx)->size(), 499);
    ASSERT_TRUE((*idx)->Search(d.vecs.data(), 1, 500, labels.data(), scores.data()).ok());
    EXPECT_EQ(std::count(labels.begin(), labels.end(), d.ids[0]), 0) << IndexKindName(kind);
    ASSERT_TRUE((*idx)->Add(d.vecs.data(), &d.ids[0], 1).ok());
    EXPECT_EQ((*idx)->size(), 500);
    ASSERT_TRUE((*idx)->Search(d.vecs.data(), 1, 500, labels.data(), scores.data()).ok());
    EXPECT_EQ(std::count(labels.begin(), labels.end(), d.ids[0]), 1) << IndexKindName(kind);
    // Adding a present id replaces its vector: item 1 now carries item 2's vector.
    ASSERT_TRUE((*idx)->Add(d.vecs.data() + 2 * 8, &d.ids[1], 1).ok());
    EXPECT_EQ((*idx)->size(), 500) << IndexKindName(kind);
    ASSERT_TRUE((*idx)->Search(d.vecs.data() + 2 * 8, 1, 500, labels.data(), scores.data()).ok());
    auto score_of = [&](int64_t id) {
      auto at = std::find(labels.begin(), labels.end(), id);
      return at == labels.end() ? -1e9f : scores[at - labels.begin()];
    };
    EXPECT_EQ(std::count(labels.begin(), labels.end(), d.ids[1]), 1) << IndexKindName(kind);
    EXPECT_FLOAT_EQ(score_of(d.ids[1]), score_of(d.ids[2])) << IndexKindName(kind);
  }
}

// Scanning every cell, the IVF search returns exactly what exact search returns, in order.
TEST(VectorIndex, IvfOverEveryCellIsExact) {
  Data d = RandomData(3000, 16, 12);
  auto ivf = BuildOf(d, IndexKind::kIvf);
  auto exact = BuildOf(d, IndexKind::kExact);
  ASSERT_TRUE(ivf && exact);
  ivf->SetSearchEffort(1 << 20);  // clamped to the number of cells
  Data q = RandomData(20, 16, 13);
  const int k = 30;
  std::vector<int64_t> li(20 * k), le(20 * k);
  std::vector<float> si(20 * k), se(20 * k);
  ASSERT_TRUE(ivf->Search(q.vecs.data(), 20, k, li.data(), si.data()).ok());
  ASSERT_TRUE(exact->Search(q.vecs.data(), 20, k, le.data(), se.data()).ok());
  EXPECT_EQ(li, le);
  for (int j = 0; j < 20 * k; ++j) EXPECT_NEAR(si[j], se[j], 1e-4f) << j;
  // More than the index holds: the rest is -1.
  std::vector<int64_t> all(3100);
  std::vector<float> all_scores(3100);
  ASSERT_TRUE(ivf->Search(q.vecs.data(), 1, 3100, all.data(), all_scores.data()).ok());
  EXPECT_EQ(std::count(all.begin(), all.end(), -1), 100);
}

// Many queries at once (push runs) go through the batched IVF scan: the same cells and lists as
// one query at a time, so the same labels, over a block boundary (256 queries) and with cells
// emptied by removals.
TEST(VectorIndex, IvfSearchOfManyQueriesEqualsOneQueryAtATime) {
  Data d = RandomData(6000, 16, 21);
  auto ivf = BuildOf(d, IndexKind::kIvf);
  ASSERT_TRUE(ivf);
  ivf->SetSearchEffort(8);
  const int nq = 300, k = 30;
  Data q = RandomData(nq, 16, 22);
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {  // empty some cells and shorten others
      std::vector<int64_t> gone(d.ids.begin(), d.ids.begin() + 3000);
      auto removed = ivf->Remove(gone.data(), static_cast<int64_t>(gone.size()));
      ASSERT_TRUE(removed.ok());
      ASSERT_EQ(*removed, 3000);
    }
    std::vector<int64_t> batch(nq * k), one(nq * k);
    std::vector<float> sb(nq * k), so(nq * k);
    ASSERT_TRUE(ivf->Search(q.vecs.data(), nq, k, batch.data(), sb.data()).ok());
    for (int i = 0; i < nq; ++i) {
      ASSERT_TRUE(ivf->Search(q.vecs.data() + i * 16, 1, k, one.data() + i * k, so.data() + i * k).ok());
    }
    EXPECT_EQ(batch, one) << "round " << round;
    for (int j = 0; j < nq * k; ++j) ASSERT_NEAR(sb[j], so[j], 1e-4f) << "round " << round << " at " << j;
    EXPECT_EQ(std::count(batch.begin(), batch.end(), -1), 0);
  }
}

TEST(VectorIndex, SavesAndLoadsAnIvfIndexWithItsSearchEffort) {
  Data d = RandomData(4000, 8, 4);
  auto idx = BuildOf(d, IndexKind::kIvf);
  ASSERT_TRUE(idx);
  idx->SetSearchEffort(7);
  ASSERT_TRUE(idx->Remove(&d.ids[5], 1).ok());
  auto loaded = SaveAndLoad(*idx, "qm_vi_ivf_test.idx");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->kind(), IndexKind::kIvf);
  EXPECT_EQ(loaded->size(), 3999);
  EXPECT_EQ(loaded->search_effort(), 7);
  ExpectSameSearch(*idx, *loaded, d.vecs.data() + 8, 50);
}

// Indexes written before the file format's version 2 (artifacts already on disk) still load.
TEST(VectorIndex, LoadsVersionOneFiles) {
  Data d = RandomData(300, 8, 6);
  VectorIndexOptions o;
  o.dim = 8;
  o.kind = IndexKind::kHnsw;
  o.hnsw_ef_search = 77;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 300);
  ASSERT_TRUE(idx.ok());
  auto path = (std::filesystem::temp_directory_path() / "qm_vi_v1_test.idx").string();
  ASSERT_TRUE((*idx)->Save(path).ok());
  // Rewrite as version 1: header, the options struct of that version, then the rest as is.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  struct V1 {
    int dim;
    IndexKind kind;
    int64_t exact_max;
    int m, efc, efs;
  } v1{8, IndexKind::kHnsw, 30000, 32, 80, 77};
  uint32_t header[4] = {0x514D5649, 1, static_cast<uint32_t>(IndexKind::kHnsw), 0};
  std::string old(reinterpret_cast<const char*>(header), sizeof header);
  old.append(reinterpret_cast<const char*>(&v1), sizeof v1);
  old.append(bytes.substr(sizeof header + 7 * sizeof(int64_t)));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << old;
  }
  auto loaded = VectorIndex::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->kind(), IndexKind::kHnsw);
  EXPECT_EQ((*loaded)->search_effort(), 77);
  EXPECT_EQ((*loaded)->size(), 300);
  std::filesystem::remove(path);
}

TEST(VectorIndex, SavesAndLoadsWithTombstones) {
  Data d = RandomData(300, 8, 4);
  auto idx = BuildOf(d, IndexKind::kHnsw);
  ASSERT_TRUE(idx);
  ASSERT_TRUE(idx->Remove(&d.ids[5], 1).ok());
  auto loaded = SaveAndLoad(*idx, "qm_vi_test.idx");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->size(), 299);
  EXPECT_EQ(loaded->kind(), IndexKind::kHnsw);
  ExpectSameSearch(*idx, *loaded, d.vecs.data() + 8, 10);
}

// Each list holds the exact top-k other than the query's own label, best first.
TEST(NeighbourLists, AreTheNearestOtherLabelsInOrder) {
  Data d = RandomData(5000, 8, 8);  // more than one search chunk
  VectorIndexOptions o;
  o.dim = 8;
  o.kind = IndexKind::kExact;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 5000);
  ASSERT_TRUE(idx.ok());
  const int k = 5;
  std::vector<int32_t> out(5000 * k);
  ASSERT_TRUE(NeighbourLists(**idx, d.vecs.data(), d.ids.data(), 5000, k, out.data()).ok());
  for (int q : {0, 17, 4095, 4096, 4999}) {
    std::vector<int64_t> want(k + 1);
    std::vector<float> scores(k + 1);
    ASSERT_TRUE((*idx)->Search(d.vecs.data() + q * 8, 1, k + 1, want.data(), scores.data()).ok());
    want.erase(std::remove(want.begin(), want.end(), d.ids[q]), want.end());
    want.resize(k);
    EXPECT_EQ(std::vector<int64_t>(out.begin() + q * k, out.begin() + (q + 1) * k), want) << "query " << q;
  }
  // Fewer labels than k: padded with -1.
  std::vector<int32_t> small(k);
  ASSERT_TRUE(NeighbourLists(**idx, d.vecs.data(), d.ids.data(), 1, 1, small.data()).ok());
  auto tiny = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 3);
  ASSERT_TRUE(tiny.ok());
  ASSERT_TRUE(NeighbourLists(**tiny, d.vecs.data(), d.ids.data(), 1, k, small.data()).ok());
  EXPECT_EQ(std::count(small.begin(), small.end(), -1), k - 2);
}

// Over an IVF index the queries are searched grouped by their nearest cell, in chunks on every
// core: each item's list is still its own search's (the batched scan in the items' own order),
// over several chunks (4,096 queries) and with queries whose label is not in the index.
TEST(NeighbourLists, OverAnIvfIndexEqualTheQueriesOwnSearchesInTheirOrder) {
  Data d = RandomData(10000, 16, 31);
  auto ivf = BuildOf(d, IndexKind::kIvf);
  ASSERT_TRUE(ivf);
  ivf->SetSearchEffort(6);
  const int64_t nq = 10000;
  const int k = 8;
  std::vector<int64_t> self(d.ids);
  for (int64_t q = 0; q < nq; q += 10) self[q] = -1;  // not in the index: nothing to skip
  std::vector<int32_t> out(nq * k);
  ASSERT_TRUE(NeighbourLists(*ivf, d.vecs.data(), self.data(), nq, k, out.data()).ok());
  std::vector<int64_t> labels(nq * (k + 1));
  std::vector<float> scores(labels.size());
  ASSERT_TRUE(ivf->Search(d.vecs.data(), nq, k + 1, labels.data(), scores.data()).ok());
  // A list may differ from the query's own search only by the order of near-ties: the batched
  // scan's matrix products round by the shape of the block the query is in (seen on an AVX-512
  // host: 1 list of 10,000 with two items swapped). So where the labels differ, each position's
  // inner product, in double, must be the same within float rounding.
  auto dot = [&](int64_t q, int32_t id) {  // RandomData's labels: 1000 + 7 x row
    const float* a = d.vecs.data() + q * d.dim;
    const float* b = d.vecs.data() + (id - 1000) / 7 * d.dim;
    double s = 0;
    for (int i = 0; i < d.dim; ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
  };
  int64_t differ = 0, ties = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::vector<int32_t> want;
    for (int j = 0; j <= k && static_cast<int>(want.size()) < k; ++j) {
      const int64_t id = labels[q * (k + 1) + j];
      if (id >= 0 && id != self[q]) want.push_back(static_cast<int32_t>(id));
    }
    want.resize(k, -1);
    const std::vector<int32_t> got(out.begin() + q * k, out.begin() + (q + 1) * k);
    if (got == want) continue;
    bool tie = true;
    for (int j = 0; j < k && tie; ++j) {
      tie = got[j] >= 0 && want[j] >= 0 &&
            std::abs(dot(q, got[j]) - dot(q, want[j])) <= 1e-5 * (1 + std::abs(dot(q, want[j])));
    }
    ++(tie ? ties : differ);
  }
  EXPECT_EQ(differ, 0) << "of " << nq << " lists (and " << ties << " that differ by the order of near-ties)";
  EXPECT_LE(ties, 10) << "lists that differ by the order of near-ties";
  // Every list is full, and an item in the index is never its own neighbour.
  EXPECT_EQ(std::count(out.begin(), out.end(), -1), 0);
  for (int64_t q = 1; q < nq; q += 10) {
    EXPECT_EQ(std::count(out.begin() + q * k, out.begin() + (q + 1) * k, static_cast<int32_t>(d.ids[q])), 0);
  }
}

TEST(NeighbourTable, SavesLoadsAndRejectsAWrongSize) {
  NeighbourTable t;
  t.rows = 3;
  t.k = 2;
  t.labels = {1, 2, -1, -1, 0, 2, 5, -1, 0, 1, 4, 5};
  auto path = (std::filesystem::temp_directory_path() / "qm_nt_test.i32").string();
  ASSERT_TRUE(SaveNeighbourTable(t, path).ok());
  auto back = LoadNeighbourTable(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rows, 3);
  EXPECT_EQ(back->k, 2);
  EXPECT_EQ(back->labels, t.labels);
  EXPECT_EQ(back->List(1, 1)[0], 5);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  auto cut = LoadNeighbourTable(path);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), StatusCode::kCorruption);
  t.labels.pop_back();
  EXPECT_FALSE(SaveNeighbourTable(t, path).ok());
  std::filesystem::remove(path);
}

TEST(VectorIndex, RejectsBadInputWithAStatus) {
  VectorIndexOptions o;
  std::vector<float> v(4);
  std::vector<int64_t> ids = {1, 1};
  EXPECT_FALSE(VectorIndex::Build(o, v.data(), ids.data(), 2).ok());  // dim 0
  EXPECT_FALSE(ParseIndexKind("annoy").ok());
  EXPECT_EQ(*ParseIndexKind("ivf"), IndexKind::kIvf);
  o.dim = 2;
  auto dup = VectorIndex::Build(o, v.data(), ids.data(), 2);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate id 1"), std::string::npos);
  auto path = (std::filesystem::temp_directory_path() / "qm_vi_garbage.idx").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fputs("not an index", f);
    std::fclose(f);
  }
  auto bad = VectorIndex::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace qm::recall
