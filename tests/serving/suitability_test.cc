// Property: whatever the customer and the catalogue, no served product is above the customer's
// risk tolerance or served without a valid (unexpired) assessment.
#include <random>

#include "qianmian/core/time.h"
#include "testing/engine_fixture.h"

namespace qm::serving::testing {
namespace {

TEST_F(EngineTest, SuitabilityIsNeverViolatedForRandomCustomersAndProducts) {
  Engine& e = Open();
  std::mt19937_64 rng(20261122);
  const TimeZone tz = *TimeZone::Load("Asia/Shanghai");
  // Random investment products (R1..R5) join the catalogue, some on a campaign pinned for all.
  std::vector<Record> products;
  for (int i = 0; i < 40; ++i) {
    products.push_back({{"item_id", "RP" + std::to_string(i)},
                        {"kind", "product"},
                        {"title", "随机理财产品 " + std::to_string(i)},
                        {"category", i % 2 ? "fund" : "wealth_management"},
                        {"risk_level", "R" + std::to_string(1 + rng() % 5)},
                        {"value", "50"}});
  }
  ASSERT_TRUE(e.UpsertItems(products).ok());
  // Random customers: any tolerance or none, assessed from 2 years ago to yesterday (or never).
  struct Profile {
    int risk;         // 0 = none
    TimeMs assessed;  // kNoTime = never
  };
  std::vector<Record> customers;
  std::vector<Profile> profiles;
  for (int i = 0; i < 120; ++i) {
    Profile p{static_cast<int>(rng() % 6), kNoTime};
    Record r{{"customer_id", "RC" + std::to_string(i)}, {"tier", i % 3 == 0 ? "affluent" : "mass"}};
    if (p.risk > 0) r["risk_level"] = "C" + std::to_string(p.risk);
    if (rng() % 5 != 0) {
      p.assessed = kNow - static_cast<TimeMs>(1 + rng() % 730) * kMsPerDay;
      r["risk_assessed"] = FormatIsoLocal(p.assessed, tz);
    }
    customers.push_back(std::move(r));
    profiles.push_back(p);
  }
  ASSERT_TRUE(e.UpsertCustomers(customers).ok());
  std::vector<std::string> product_ids;
  for (const auto& p : products) product_ids.push_back(p.at("item_id"));
  auto item_risk = [&](const std::string& id) -> int {
    for (const auto& p : products) {
      if (p.at("item_id") == id) return p.at("risk_level")[1] - '0';
    }
    return -1;  // a catalogue product: checked through Score below
  };
  int served_products = 0;
  for (size_t i = 0; i < profiles.size(); ++i) {
    const std::string cid = customers[i].at("customer_id");
    const Profile& p = profiles[i];
    const bool valid = p.risk > 0 && p.assessed != kNoTime && kNow - p.assessed < 365 * kMsPerDay;
    for (const char* channel : {"app_home", "wechat_push"}) {
      Response r = Recommend(cid, 30, channel, /*dry_run=*/i % 2 == 0, "suit-" + std::to_string(i));
      ASSERT_TRUE(r.status.ok());
      std::vector<std::string> ids;
      for (const auto& it : r.items) {
        if (it.kind == "product") ids.push_back(it.item_id);
      }
      served_products += static_cast<int>(ids.size());
      // Every served product: the engine's own verdict agrees it is suitable...
      auto s = e.Score(cid, channel, ids, kNow);
      ASSERT_TRUE(s.ok());
      for (const auto& sc : *s) {
        EXPECT_EQ(std::count(sc.blocked_by.begin(), sc.blocked_by.end(), "suitability"), 0) << cid << " " << sc.item_id;
      }
      // ...and so does the definition, for the random products whose risk we drew.
      for (const auto& id : ids) {
        const int risk = item_risk(id);
        if (risk <= 0) continue;
        EXPECT_TRUE(valid) << cid << " has no valid assessment but got " << id;
        EXPECT_LE(risk, p.risk) << cid << " got " << id;
      }
    }
    // Score over every random product agrees with the definition.
    auto s = e.Score(cid, "app_home", product_ids, kNow);
    ASSERT_TRUE(s.ok());
    for (const auto& sc : *s) {
      const bool suitable = valid && item_risk(sc.item_id) <= p.risk;
      const bool blocked = std::count(sc.blocked_by.begin(), sc.blocked_by.end(), "suitability") > 0;
      EXPECT_EQ(blocked, !suitable) << cid << " " << sc.item_id;
    }
  }
  EXPECT_GT(served_products, 0);
}

}  // namespace
}  // namespace qm::serving::testing
