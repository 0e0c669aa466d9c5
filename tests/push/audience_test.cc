#include "qianmian/push/audience.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace qm::push {
namespace {

// Four customers with labels, regions, an age column (numeric) and an occupation (categorical).
Dataset SmallBank() {
  Dataset ds;
  const char* regions[] = {"Jinan", "Qingdao", "Jinan", "济南"};
  const Tier tiers[] = {Tier::kMass, Tier::kAffluent, Tier::kPrivate, Tier::kAffluent};
  const RiskLevel risk[] = {kNoRisk, 3, 5, 1};
  const std::vector<std::vector<std::string>> tags = {{"payroll"}, {"payroll", "parent"}, {}, {"parent"}};
  FeatureColumn age{"age", FeatureColumn::Kind::kNumeric, {}, {}, {}};
  FeatureColumn occ{"occupation", FeatureColumn::Kind::kCategorical, {}, {}, {}};
  occ.categories.Intern("");
  const float ages[] = {25, 40, NAN, 31};
  const char* occs[] = {"student", "teacher", "", "teacher"};
  for (int k = 0; k < 4; ++k) {
    Customer c;
    c.id = "C" + std::to_string(k + 1);
    c.tier = tiers[k];
    c.risk = risk[k];
    c.region = ds.regions.Intern(regions[k]);
    for (const auto& t : tags[k]) c.tags.push_back(ds.labels.Intern(t));
    std::sort(c.tags.begin(), c.tags.end());
    if (k == 1) c.opt_out = ChannelMask{1} << kWechatPush;
    ds.AddCustomer(std::move(c));
    age.numeric.push_back(ages[k]);
    occ.codes.push_back(occ.categories.Intern(occs[k]));
  }
  ds.features.push_back(std::move(age));
  ds.features.push_back(std::move(occ));
  return ds;
}

std::vector<std::string> Ids(const std::string& expr) {
  Dataset ds = SmallBank();
  auto a = Audience::Compile(expr, ds);
  EXPECT_TRUE(a.ok()) << expr << ": " << a.status().ToString();
  std::vector<std::string> out;
  if (!a.ok()) return out;
  for (uint32_t c : a->Select(ds)) out.push_back(ds.customers[c].id);
  return out;
}

std::string Error(const std::string& expr) {
  Dataset ds = SmallBank();
  auto a = Audience::Compile(expr, ds);
  EXPECT_FALSE(a.ok()) << expr;
  return a.ok() ? "" : a.status().message();
}

using V = std::vector<std::string>;

TEST(Audience, EmptyAndAllSelectEveryone) {
  EXPECT_EQ(Ids(""), (V{"C1", "C2", "C3", "C4"}));
  EXPECT_EQ(Ids("  all "), (V{"C1", "C2", "C3", "C4"}));
}

TEST(Audience, IssueExampleCombinesTierRegionLabelAndAttribute) {
  EXPECT_EQ(Ids(R"(tier in (affluent, private) and region = "Jinan" and tag:payroll and age >= 30)"), V{});
  EXPECT_EQ(Ids(R"(tier in (affluent, private) and region = "Qingdao" and tag:payroll and age >= 30)"), V{"C2"});
  EXPECT_EQ(Ids("tier in (affluent, private) and region = Jinan"), V{"C3"});
}

TEST(Audience, PrecedenceIsNotThenAndThenOr) {
  EXPECT_EQ(Ids("tag:parent or tier = mass and age < 30"), (V{"C1", "C2", "C4"}));
  EXPECT_EQ(Ids("(tag:parent or tier = mass) and age > 30"), (V{"C2", "C4"}));
  EXPECT_EQ(Ids("not tag:payroll and not tier = private"), V{"C4"});
  EXPECT_EQ(Ids("NOT (tag:payroll OR tag:parent)"), V{"C3"});
}

TEST(Audience, OrderedFieldsCompare) {
  EXPECT_EQ(Ids("tier >= affluent"), (V{"C2", "C3", "C4"}));
  EXPECT_EQ(Ids("risk_level >= C3"), (V{"C2", "C3"}));
  EXPECT_EQ(Ids("risk_level != C3"), (V{"C1", "C3", "C4"}));  // unassessed C1 has no level
  EXPECT_EQ(Ids("age != 40"), (V{"C1", "C3", "C4"}));
  EXPECT_EQ(Ids("age <= 31"), (V{"C1", "C4"}));  // missing age satisfies no comparison
  EXPECT_EQ(Ids("customer_id in (C2, C4, C9)"), (V{"C2", "C4"}));
}

TEST(Audience, CategoricalRegionLabelAndOptOutMatchByValue) {
  EXPECT_EQ(Ids("occupation = teacher"), (V{"C2", "C4"}));
  EXPECT_EQ(Ids("occupation not in (teacher)"), (V{"C1", "C3"}));
  EXPECT_EQ(Ids("region = '济南'"), V{"C4"});
  EXPECT_EQ(Ids("region = Harbin"), V{});  // a value nobody has is not an error
  EXPECT_EQ(Ids("tags = parent and tag != payroll"), V{"C4"});
  EXPECT_EQ(Ids("opt_out = wechat_push"), V{"C2"});
}

TEST(Audience, UnknownFieldIsAnErrorAtItsPosition) {
  const std::string e = Error("tier = mass and agee >= 30");
  EXPECT_NE(e.find("position 17"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown field 'agee'"), std::string::npos) << e;
  EXPECT_NE(e.find("age"), std::string::npos) << e;
}

TEST(Audience, SyntaxErrorsPointAtTheirPosition) {
  EXPECT_NE(Error("tier in (mass, affluent").find("position 24"), std::string::npos);
  EXPECT_NE(Error("(tag:payroll").find("position 13: expected ')'"), std::string::npos);
  EXPECT_NE(Error("tier = mass tag:payroll").find("position 13"), std::string::npos);
  EXPECT_NE(Error("age >= ").find("position 8"), std::string::npos);
  EXPECT_NE(Error("region = \"Jinan").find("position 10: unterminated string"), std::string::npos);
  EXPECT_NE(Error("age ! 3").find("position 5"), std::string::npos);
  EXPECT_NE(Error("and tier = mass").find("position 1"), std::string::npos);
}

TEST(Audience, BadValuesAreErrorsAtTheirPosition) {
  EXPECT_NE(Error("tier = gold").find("position 8: unknown tier 'gold'"), std::string::npos);
  EXPECT_NE(Error("age > old").find("position 7"), std::string::npos);
  EXPECT_NE(Error("risk_level = C9").find("position 14"), std::string::npos);
  EXPECT_NE(Error("opt_out = fax").find("unknown channel 'fax'"), std::string::npos);
  EXPECT_NE(Error("region > Jinan").find("position 8"), std::string::npos);
}

TEST(Audience, IdFileSkipsBlanksAndComments) {
  const std::string path = ::testing::TempDir() + "/audience_ids.txt";
  std::ofstream(path) << "# campaign 12\nC1\n\n  C3 \r\n";
  auto ids = ReadIdFile(path);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (V{"C1", "C3"}));
  EXPECT_FALSE(ReadIdFile(path + ".missing").ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace qm::push
