#include "qianmian/core/prefetch.h"

#include <gtest/gtest.h>
#include <vector>

namespace qm {
namespace {

TEST(Prefetcher, HandsOverEveryItemInOrder) {
  int next = 0;
  Prefetcher<int> p([&](int* out) {
    if (next >= 1000) return false;
    *out = next++;
    return true;
  });
  std::vector<int> got;
  int v;
  while (p.Next(&v)) got.push_back(v);
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i], i);
  EXPECT_FALSE(p.Next(&v));
}

TEST(Prefetcher, StopsCleanlyWhenDestroyedEarly) {
  int produced = 0;
  {
    Prefetcher<int> p([&](int* out) {
      *out = produced++;
      return true;  // endless
    });
    int v;
    ASSERT_TRUE(p.Next(&v));
    EXPECT_EQ(v, 0);
  }
  EXPECT_LE(produced, 5);  // bounded by the queue depth
}

}  // namespace
}  // namespace qm
