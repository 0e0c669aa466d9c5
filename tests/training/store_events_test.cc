#include "qianmian/training/store_events.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <filesystem>

namespace qm::training {
namespace {

namespace fs = std::filesystem;

policy::StoredEvent Ev(TimeMs ts, const std::string& c, const std::string& i, EventType t, const std::string& ch) {
  policy::StoredEvent e;
  e.ts = ts;
  e.customer_id = c;
  e.item_id = i;
  e.type = t;
  e.channel = ch;
  return e;
}

TEST(StoreEvents, AddsRecordedFeedbackToTheDatasetWithoutDuplicatingEventsCsv) {
  Dataset ds;
  for (const char* id : {"C1", "C2"}) {
    Customer c;
    c.id = id;
    ds.AddCustomer(c);
  }
  for (const char* id : {"A1", "A2"}) {
    Item it;
    it.id = id;
    ds.AddItem(it);
  }
  ds.events.Append(1000, 0, 0, EventType::kImpression, kAppHome, "r1");  // from events.csv

  const fs::path dir = fs::temp_directory_path() / ("qm_store_events_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  policy::StoreConfig sc;
  sc.path = dir.string();
  auto writer = policy::EventStore::Open(sc);  // a "server" holding the store open
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::vector<policy::StoredEvent> recorded = {
      Ev(1000, "C1", "A1", EventType::kImpression, "app_home"),   // seeded from events.csv
      Ev(2000, "C1", "A1", EventType::kClick, "app_home"),        // feedback
      Ev(3000, "C2", "A2", EventType::kPushOpen, "wechat_push"),  // feedback
      Ev(4000, "NOBODY", "A2", EventType::kClick, "app_home"),    // unknown customer
      Ev(5000, "C2", "GONE", EventType::kClick, "app_home"),      // unknown item
  };
  ASSERT_TRUE((*writer)->Append(recorded, policy::StateOptions{}).ok());

  policy::StoreConfig ro = sc;
  ro.read_only = true;
  auto reader = policy::EventStore::Open(ro);  // beside the writer: no lock
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  StoreMergeStats stats;
  ASSERT_TRUE(MergeStoreEvents(**reader, &ds, &stats).ok());
  EXPECT_EQ(stats.read, 5u);
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(stats.added, 2u);
  EXPECT_EQ(stats.unknown_customer, 1u);
  EXPECT_EQ(stats.unknown_item, 1u);
  ASSERT_EQ(ds.events.size(), 3u);
  std::vector<EventType> types(ds.events.type.begin(), ds.events.type.end());
  EXPECT_NE(std::find(types.begin(), types.end(), EventType::kClick), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), EventType::kPushOpen), types.end());
  // The reader cannot write.
  EXPECT_FALSE((*reader)->Append({Ev(6000, "C1", "A2", EventType::kClick, "app_home")}, policy::StateOptions{}).ok());
  reader->reset();
  writer->reset();
  fs::remove_all(dir);
}

TEST(StoreEvents, ReadOnlyOpenOfAMissingStoreIsNotFound) {
  policy::StoreConfig sc;
  sc.path = (fs::temp_directory_path() / "qm_no_such_store").string();
  sc.read_only = true;
  auto s = policy::EventStore::Open(sc);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace qm::training
