#include "qianmian/core/dataset.h"

#include <gtest/gtest.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "qianmian/core/time.h"

namespace qm {
namespace {

namespace fs = std::filesystem;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qm_ds_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Write(
        "items.csv",
        "item_id,kind,title,category,tags,risk_level,tiers,regions,channels,start,end,campaign_id,value,boost,service\n"
        "P1,product,稳健理财,wealth,low_risk;monthly,R2,affluent;private,Jinan,app_home,2024-01-01,2025-01-01,camp1,"
        "120.5,1.2,0\n"
        "P2,product,\"Fund, equity\",fund,,R4,,,,,,,,,\n"
        "A1,content,\"理财小课堂：\"\"复利\"\"\",education,tips,,,,wechat_push;app_home,,,,,,\n"
        "S1,content,账户提醒,alert,,,,,,,,,,,1\n");
    Write("customers.csv",
          "customer_id,tier,risk_level,risk_assessed,region,tags,holdings,opt_out,age,segment\n"
          "C1,affluent,C3,2024-02-01,Jinan,payroll;young_professional,P1;GONE,wechat_push,31,gold\n"
          "C2,,,,Qingdao,,,,,\n"
          "C3,private,C5,1709251200000,Jinan,retiree,,,67,silver\n");
    Write("events.csv",
          "ts,customer_id,item_id,type,channel,request_id\n"
          "2024-03-01T08:00:00+08:00,C1,P1,impression,app_home,r1\n"
          "1709251201000,C1,P1,click,app_home,r1\n"
          "1709251202000,C3,A1,push_sent,wechat_push,\n"
          "1709251203000,C3,A1,push_open,wechat_push,\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  fs::path dir_;
  DataConfig config_;
};

// The fields each of a request's candidates is read for (the stateless rules, the rank stage,
// the page layout) lie in the first cache line of an item, and items start on a line.
TEST(Item, TheFieldsEveryCandidateIsReadForLieInItsFirstCacheLine) {
  EXPECT_EQ(alignof(Item), 64u);
  Dataset ds;
  for (int i = 0; i < 3; ++i) {
    Item it;
    it.id = "i" + std::to_string(i);
    ds.AddItem(std::move(it));
  }
  for (const Item& it : ds.items) {
    const auto* base = reinterpret_cast<const char*>(&it);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % 64, 0u);
    auto end_of = [&](const auto& field) { return reinterpret_cast<const char*>(&field) + sizeof(field) - base; };
    for (ptrdiff_t end : {end_of(it.kind), end_of(it.risk), end_of(it.tiers), end_of(it.service), end_of(it.category),
                          end_of(it.channels), end_of(it.campaign), end_of(it.value), end_of(it.boost),
                          end_of(it.start), end_of(it.end), end_of(it.regions)}) {
      EXPECT_LE(end, 64);
    }
  }
}

TEST_F(DatasetTest, LoadsAWellFormedFolder) {
  LoadReport report;
  auto ds = LoadDataset(dir_.string(), config_, &report);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ(ds->items.size(), 4u);
  ASSERT_EQ(ds->customers.size(), 3u);
  ASSERT_EQ(ds->events.size(), 4u);
  EXPECT_EQ(report.customers.bad_rows + report.items.bad_rows + report.events.bad_rows, 0u);

  const Item& p1 = ds->items[*ds->FindItem("P1")];
  EXPECT_EQ(p1.kind, ItemKind::kProduct);
  EXPECT_EQ(p1.risk, 2);
  EXPECT_EQ(p1.tiers, (1 << 1) | (1 << 2));
  EXPECT_EQ(p1.channels, ChannelMask{1} << kAppHome);
  EXPECT_EQ(ds->regions.Name(p1.regions.at(0)), "Jinan");
  EXPECT_EQ(ds->campaigns.Name(p1.campaign), "camp1");
  EXPECT_FLOAT_EQ(p1.value, 120.5f);
  EXPECT_FLOAT_EQ(p1.boost, 1.2f);
  EXPECT_EQ(p1.start, *ParseTime("2024-01-01T00:00:00+08:00", TimeZone::Utc()));
  const Item& p2 = ds->items[*ds->FindItem("P2")];
  EXPECT_EQ(p2.title, "Fund, equity");
  EXPECT_FLOAT_EQ(p2.value, 1.0f);  // default
  EXPECT_EQ(p2.tiers, 0);           // all tiers
  EXPECT_EQ(ds->items[*ds->FindItem("A1")].title, "理财小课堂：\"复利\"");
  EXPECT_TRUE(ds->items[*ds->FindItem("S1")].service);

  const Customer& c1 = ds->customers[*ds->FindCustomer("C1")];
  EXPECT_EQ(c1.tier, Tier::kAffluent);
  EXPECT_EQ(c1.risk, 3);
  EXPECT_EQ(c1.tags.size(), 2u);
  EXPECT_EQ(c1.holdings, std::vector<uint32_t>{*ds->FindItem("P1")});  // GONE is not an item
  EXPECT_EQ(c1.opt_out, ChannelMask{1} << kWechatPush);
  const Customer& c2 = ds->customers[*ds->FindCustomer("C2")];
  EXPECT_EQ(c2.tier, Tier::kMass);
  EXPECT_EQ(c2.risk, kNoRisk);
  EXPECT_EQ(c2.risk_assessed, kNoTime);
  ASSERT_FALSE(report.customers.notes.empty());
  EXPECT_NE(report.customers.notes[0].find("1 holdings"), std::string::npos);

  ASSERT_EQ(ds->features.size(), 2u);
  EXPECT_EQ(ds->features[0].name, "age");
  EXPECT_EQ(ds->features[0].kind, FeatureColumn::Kind::kNumeric);
  EXPECT_FLOAT_EQ(ds->features[0].numeric[0], 31.0f);
  EXPECT_TRUE(std::isnan(ds->features[0].numeric[1]));
  EXPECT_EQ(ds->features[1].kind, FeatureColumn::Kind::kCategorical);
  EXPECT_EQ(ds->features[1].categories.Name(ds->features[1].codes[2]), "silver");

  EXPECT_EQ(ds->events.ts[0], 1709251200000);
  EXPECT_EQ(ds->events.type[1], EventType::kClick);
  EXPECT_EQ(ds->events.RequestId(0), "r1");
  EXPECT_EQ(ds->events.RequestId(1), "r1");
  EXPECT_EQ(ds->events.RequestId(2), "");
  EXPECT_EQ(ds->events.channel[3], kWechatPush);
}

TEST_F(DatasetTest, ReportsEachBadRowWithLineAndReason) {
  std::string events = "ts,customer_id,item_id,type,channel,request_id\n";
  for (int i = 0; i < 300; ++i) events += "1709251201000,C1,P1,click,app_home,\n";
  events += "yesterday,C1,P1,click,app_home,\n";        // line 302
  events += "1709251201000,NOPE,P1,click,app_home,\n";  // line 303
  events += "1709251201000,C1,P1,klick,app_home,\n";    // line 304
  events += "1709251201000,C1,P1,click,fax,\n";         // line 305
  events += "1709251201000,C1,P1\n";                    // line 306
  Write("events.csv", events);
  config_.max_bad_row_share = 0.05;
  LoadReport report;
  auto ds = LoadDataset(dir_.string(), config_, &report);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->events.size(), 300u);
  ASSERT_EQ(report.events.bad_rows, 5u);
  EXPECT_EQ(report.events.errors[0].line, 302u);
  EXPECT_EQ(report.events.errors[0].reason, "bad ts 'yesterday'");
  EXPECT_EQ(report.events.errors[1].reason, "unknown customer_id 'NOPE'");
  EXPECT_EQ(report.events.errors[2].reason, "unknown type 'klick'");
  EXPECT_EQ(report.events.errors[3].reason, "unknown channel 'fax'");
  EXPECT_EQ(report.events.errors[4].reason, "expected 6 fields, found 3");
  std::string text = report.Format();
  EXPECT_NE(text.find("events.csv:304: unknown type 'klick'"), std::string::npos) << text;
}

TEST_F(DatasetTest, FailsWhenMoreThanTheAllowedShareOfRowsIsBad) {
  Write("customers.csv", "customer_id,tier,risk_level\nC1,mass,C1\nC2,gold,C1\nC3,mass,C9\nC1,mass,C2\n");
  auto ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  const std::string& m = ds.status().message();
  EXPECT_NE(m.find("customers.csv: 3 of 4 rows are malformed"), std::string::npos) << m;
  EXPECT_NE(m.find("bad tier 'gold'"), std::string::npos) << m;
}

TEST_F(DatasetTest, FailsClearlyOnAMissingRequiredColumn) {
  Write("items.csv", "id,kind\nP1,product\n");
  auto ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message(), "items.csv: missing required column 'item_id'");
  Write("items.csv", "item_id,kind\nP1,product\n");
  Write("events.csv", "ts,customer,item_id\n");
  ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message(), "events.csv: missing required columns 'customer_id', 'type', 'channel'");
}

TEST_F(DatasetTest, RejectsItemRowsThatBreakTheContract) {
  Write("items.csv",
        "item_id,kind,risk_level,start,end,value,service\n"
        "P1,product,R7,,,,\n"
        "A1,content,R2,,,,\n"
        "P2,product,R1,2024-02-01,2024-01-01,,\n"
        "P3,product,R1,,,-5,\n"
        "P4,gadget,,,,,\n"
        "P5,product,,,,,maybe\n"
        "P6,product,R3,,,,\n");
  config_.max_bad_row_share = 1.0;
  LoadReport report;
  auto ds = LoadDataset(dir_.string(), config_, &report);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  std::vector<std::string> reasons;
  for (const auto& e : report.items.errors) reasons.push_back(e.reason);
  EXPECT_EQ(reasons,
            (std::vector<std::string>{"bad risk_level 'R7' (R1..R5)", "risk_level on a content item",
                                      "end is not after start", "bad value '-5' (a number >= 0)",
                                      "bad kind 'gadget' (product or content)", "bad service 'maybe' (0 or 1)"}));
  EXPECT_EQ(ds->items.size(), 1u);
}

TEST_F(DatasetTest, SchemaFileOverridesTheInferredFeatureKind) {
  Write("schema.toml", "[columns]\ncategorical = [\"age\"]\n");
  auto ds = LoadDataset(dir_.string(), config_);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->features[0].name, "age");
  EXPECT_EQ(ds->features[0].kind, FeatureColumn::Kind::kCategorical);
  Write("schema.toml", "[columns]\nnumeric = [\"segment\"]\n");
  ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("'segment' is numeric in the schema but holds 'gold'"), std::string::npos)
      << ds.status().message();
}

TEST_F(DatasetTest, ReportsAMissingFolderOrFile) {
  auto ds = LoadDataset((dir_ / "nope").string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  fs::remove(dir_ / "customers.csv");
  ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("customers.csv' is missing"), std::string::npos);
}

TEST_F(DatasetTest, DeclaredChannelsAreAcceptedAndOthersAreNot) {
  Write("events.csv", "ts,customer_id,item_id,type,channel\n1,C1,P1,impression,sms\n");
  auto ds = LoadDataset(dir_.string(), config_);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->channels.Name(ds->events.channel[0]), "sms");
  config_.channels.clear();
  config_.max_bad_row_share = 0;
  ds = LoadDataset(dir_.string(), config_);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("unknown channel 'sms'"), std::string::npos);
}

}  // namespace
}  // namespace qm
