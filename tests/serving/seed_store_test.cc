// The engine's first opening of a new embedded store seeds it from the data folder's recent
// events (the store's bulk load, in parts on every core); a marker keeps later openings from
// seeding again. (The bulk load's records equal Append's: tests/policy/event_store_test.cc.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "qianmian/core/dataset.h"
#include "qianmian/policy/event_store.h"
#include "testing/engine_fixture.h"

namespace qm::serving::testing {
namespace {

// Every event in the engine's store; *customers gets their customers.
uint64_t StoredEvents(const Engine& engine, std::set<std::string>* customers) {
  uint64_t n = 0;
  Status st = engine.store()->Export([&](const policy::StoredEvent& e) {
    ++n;
    customers->insert(e.customer_id);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return n;
}

TEST_F(EngineTest, ANewStoreIsSeededOnceFromTheDataFoldersRecentEvents) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.seed_store = true;
  Open(o);
  std::ifstream marker(o.store.path + "/QM_SEEDED");
  const std::string text((std::istreambuf_iterator<char>(marker)), std::istreambuf_iterator<char>());
  ASSERT_NE(text.find("seeded from events.csv: "), std::string::npos) << text;
  const uint64_t seeded = std::stoull(text.substr(text.find(": ") + 2));
  std::set<std::string> customers;
  const uint64_t stored = StoredEvents(*engine_, &customers);
  EXPECT_GT(seeded, 1000u);
  EXPECT_EQ(stored, seeded) << "every seeded event is in the store once";
  const Dataset& ds = SharedBank();
  EXPECT_GT(customers.size(), ds.customers.size() / 2);
  for (const std::string& c : customers) ASSERT_TRUE(ds.FindCustomer(c).has_value()) << c;

  // Feedback after the seeding stays, and a second opening does not seed again.
  FeedbackEvent f;
  f.customer_id = ds.customers[0].id;
  f.item_id = ds.items[0].id;
  f.type = "click";
  f.channel = "app_home";
  f.ts_ms = kNow;
  auto fed = engine_->Feedback({f});
  ASSERT_TRUE(fed.ok()) << fed.status().ToString();
  ASSERT_EQ(fed->accepted, 1);
  const auto marked = std::filesystem::last_write_time(o.store.path + "/QM_SEEDED");
  engine_.reset();
  Open(o);
  customers.clear();
  EXPECT_EQ(StoredEvents(*engine_, &customers), stored + 1);
  EXPECT_EQ(std::filesystem::last_write_time(o.store.path + "/QM_SEEDED"), marked) << "seeded again";
}

}  // namespace
}  // namespace qm::serving::testing
