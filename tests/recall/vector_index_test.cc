#include "qianmian/recall/vector_index.h"

#include <filesystem>
#include <gtest/gtest.h>
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

TEST(VectorIndex, AutoPicksHnswAboveTheExactLimitAndKeepsRecallAbove95Percent) {
  Data d = RandomData(20000, 32, 1);
  VectorIndexOptions o;
  o.dim = 32;
  o.exact_max = 5000;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 20000);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->kind(), IndexKind::kHnsw);
  Data q = RandomData(50, 32, 2);
  auto r = MeasureRecallAgainstExact(**idx, d.vecs.data(), d.ids.data(), 20000, q.vecs.data(), 50, 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(*r, 0.95);
}

TEST(VectorIndex, RemovedIdsNeverComeBackAndReAddedIdsDo) {
  for (IndexKind kind : {IndexKind::kExact, IndexKind::kHnsw}) {
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
  }
}

TEST(VectorIndex, SavesAndLoadsWithTombstones) {
  Data d = RandomData(300, 8, 4);
  VectorIndexOptions o;
  o.dim = 8;
  o.kind = IndexKind::kHnsw;
  auto idx = VectorIndex::Build(o, d.vecs.data(), d.ids.data(), 300);
  ASSERT_TRUE(idx.ok());
  ASSERT_TRUE((*idx)->Remove(&d.ids[5], 1).ok());
  auto path = (std::filesystem::temp_directory_path() / "qm_vi_test.idx").string();
  ASSERT_TRUE((*idx)->Save(path).ok());
  auto loaded = VectorIndex::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), 299);
  EXPECT_EQ((*loaded)->kind(), IndexKind::kHnsw);
  std::vector<int64_t> a(10), b(10);
  std::vector<float> sa(10), sb(10);
  ASSERT_TRUE((*idx)->Search(d.vecs.data() + 8, 1, 10, a.data(), sa.data()).ok());
  ASSERT_TRUE((*loaded)->Search(d.vecs.data() + 8, 1, 10, b.data(), sb.data()).ok());
  EXPECT_EQ(a, b);
  std::filesystem::remove(path);
}

TEST(VectorIndex, RejectsBadInputWithAStatus) {
  VectorIndexOptions o;
  std::vector<float> v(4);
  std::vector<int64_t> ids = {1, 1};
  EXPECT_FALSE(VectorIndex::Build(o, v.data(), ids.data(), 2).ok());  // dim 0
  o.dim = 2;
  auto dup = VectorIndex::Build(o, v.data(), ids.data(), 2);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate id 1"), std::string::npos);
  auto path = (std::filesystem::temp_directory_path() / "qm_vi_garbage.idx").string();
  { std::FILE* f = std::fopen(path.c_str(), "wb"); std::fputs("not an index", f); std::fclose(f); }
  auto bad = VectorIndex::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace qm::recall
