#include "qianmian/core/id_index.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qianmian/core/dataset.h"

namespace qm {
namespace {

struct Rec {
  std::string id;
};

TEST(IdIndex, FindsEveryIdAtItsPositionThroughGrowthAndNothingElse) {
  std::vector<Rec> recs;
  IdIndex index;
  for (uint32_t i = 0; i < 100000; ++i) {
    std::string id = "C" + std::to_string(i * 7);  // short ids (inline) and, below, long ones
    if (i % 3 == 0) id += "-a-customer-id-longer-than-sixteen-bytes";
    ASSERT_TRUE(index.Insert(id, i, recs)) << id;
    recs.push_back({id});
  }
  EXPECT_EQ(index.size(), 100000u);
  for (uint32_t i = 0; i < recs.size(); ++i) {
    auto pos = index.Find(recs[i].id, recs);
    ASSERT_TRUE(pos.has_value()) << recs[i].id;
    EXPECT_EQ(*pos, i);
  }
  for (uint32_t i = 0; i < 100000; ++i) {  // C1, C2, ...: not multiples of 7, or not indexed
    if (i % 7 == 0) continue;
    EXPECT_FALSE(index.Find("C" + std::to_string(i), recs).has_value()) << i;
  }
  EXPECT_FALSE(index.Find("", recs).has_value());
  EXPECT_FALSE(IdIndex().Find("C0", recs).has_value());  // an empty index
}

TEST(IdIndex, RefusesAnIdIndexedAlreadyAndChangesNothing) {
  std::vector<Rec> recs;
  IdIndex index;
  ASSERT_TRUE(index.Insert("a", 0, recs));
  recs.push_back({"a"});
  ASSERT_TRUE(index.Insert("b", 1, recs));
  recs.push_back({"b"});
  EXPECT_FALSE(index.Insert("a", 2, recs));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find("a", recs), std::optional<uint32_t>(0));
  EXPECT_EQ(index.Find("b", recs), std::optional<uint32_t>(1));
}

TEST(IdIndex, ADatasetCopyFindsItsOwnRecords) {
  Dataset ds;
  for (int i = 0; i < 50; ++i) {
    Customer c;
    c.id = "K" + std::to_string(i);
    ds.AddCustomer(c);
  }
  Dataset copy = ds;
  ds.customers.clear();  // the original's records gone: the copy's index reads the copy's
  for (int i = 0; i < 50; ++i) EXPECT_EQ(copy.FindCustomer("K" + std::to_string(i)), std::optional<uint32_t>(i));
  EXPECT_FALSE(ds.FindCustomer("K3").has_value());  // positions past its records are not found
  EXPECT_DEATH(copy.AddCustomer(copy.customers[4]), "duplicate customer id K4");
}

}  // namespace
}  // namespace qm
