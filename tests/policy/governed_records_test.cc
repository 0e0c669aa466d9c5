// Governed records (issue 18: campaigns) on both event-store backends: compare-and-set writes,
// one audit entry per write in the same step, and exactly one winner among concurrent writers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "policy_test_util.h"
#include "qianmian/policy/event_store.h"

namespace qm::policy {
namespace {

using namespace qm::policy::testing;  // NOLINT

class GovernedRecordsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const std::string why = SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(BackendStarted(GetParam())) << "could not start a private redis-server";
    config_ = StoreFor(GetParam(), dir_.path());
    store_ = Open();
  }
  std::unique_ptr<EventStore> Open() {
    auto s = EventStore::Open(config_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  TempDir dir_;
  StoreConfig config_;
  std::unique_ptr<EventStore> store_;
};

TEST_P(GovernedRecordsTest, WritesCompareTheRevisionAndKeepOneAuditEntryEach) {
  EXPECT_EQ(store_->ReadRecord("campaigns", "spring").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->WriteRecord("campaigns", "spring", 0, "v1", "created").ok());
  EXPECT_EQ(store_->WriteRecord("campaigns", "spring", 0, "other", "created again").code(), StatusCode::kConflict)
      << "a record that exists cannot be created again";
  ASSERT_TRUE(store_->WriteRecord("campaigns", "spring", 1, std::string("v2\0bin", 6), "edited").ok());
  const Status stale = store_->WriteRecord("campaigns", "spring", 1, "v3", "stale edit");
  EXPECT_EQ(stale.code(), StatusCode::kConflict);
  EXPECT_NE(stale.message().find("revision 2"), std::string::npos) << stale.message();

  auto r = store_->ReadRecord("campaigns", "spring");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "spring");
  EXPECT_EQ(r->revision, 2u);
  EXPECT_EQ(r->value, std::string("v2\0bin", 6));
  auto audit = store_->RecordAudit("campaigns", "spring");
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(*audit, (std::vector<std::string>{"created", "edited"})) << "refused writes leave no entry";
  auto none = store_->RecordAudit("campaigns", "autumn");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(store_->WriteRecord("campaigns", "autumn", 0, "a", "created").ok());
  ASSERT_TRUE(store_->WriteRecord("segments", "spring", 0, "s", "created").ok());
  auto all = store_->ListRecords("campaigns");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u) << "another collection's record is not listed";
  EXPECT_EQ((*all)[0].id, "autumn");
  EXPECT_EQ((*all)[1].id, "spring");
  EXPECT_EQ((*all)[1].revision, 2u);
  EXPECT_EQ(store_->ReadRecord("segments", "spring")->value, "s");
}

TEST_P(GovernedRecordsTest, ADeleteComparesTheRevisionAndRemovesTheAuditLogToo) {
  ASSERT_TRUE(store_->WriteRecord("work", "a", 0, "v1", "one").ok());
  ASSERT_TRUE(store_->WriteRecord("work", "a", 1, "v2", "two").ok());
  ASSERT_TRUE(store_->WriteRecord("work", "b", 0, "v", "one").ok());
  EXPECT_EQ(store_->DeleteRecord("work", "a", 1).code(), StatusCode::kConflict) << "a stale revision";
  EXPECT_EQ(store_->DeleteRecord("work", "zz", 0).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteRecord("work", "a", 2).ok());
  EXPECT_EQ(store_->ReadRecord("work", "a").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->RecordAudit("work", "a")->empty());
  auto left = store_->ListRecords("work");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, "b");
  // Written again from scratch: revision 1, a fresh audit log.
  ASSERT_TRUE(store_->WriteRecord("work", "a", 0, "v3", "again").ok());
  EXPECT_EQ(*store_->RecordAudit("work", "a"), std::vector<std::string>{"again"});
}

TEST_P(GovernedRecordsTest, RefusesNamesThatCouldEscapeTheirKey) {
  for (const std::string& id : {std::string(), std::string("a{b"), std::string("a}b"), std::string("a\0b", 3)}) {
    EXPECT_EQ(store_->WriteRecord("campaigns", id, 0, "v", "a").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->ReadRecord("campaigns", id).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(store_->ListRecords("").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(GovernedRecordsTest, ConcurrentWritersOfOneRevisionHaveExactlyOneWinner) {
  ASSERT_TRUE(store_->WriteRecord("campaigns", "race", 0, "v0", "created").ok());
  // Rounds of 4 writers racing for the same revision: each round exactly one wins.
  constexpr int kRounds = 40, kWriters = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> won{0}, lost{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        const Status s = store_->WriteRecord("campaigns", "race", round + 1, "w" + std::to_string(w),
                                             "round " + std::to_string(round) + " writer " + std::to_string(w));
        if (s.ok()) ++won;
        if (s.code() == StatusCode::kConflict) ++lost;
      });
    }
    for (auto& t : writers) t.join();
    ASSERT_EQ(won.load(), 1) << "round " << round;
    ASSERT_EQ(lost.load(), kWriters - 1) << "round " << round;
  }
  EXPECT_EQ(store_->ReadRecord("campaigns", "race")->revision, static_cast<uint64_t>(kRounds + 1));
  EXPECT_EQ(store_->RecordAudit("campaigns", "race")->size(), static_cast<size_t>(kRounds + 1));
}

TEST_P(GovernedRecordsTest, RecordsSurviveReopeningAndCompaction) {
  ASSERT_TRUE(store_->WriteRecord("campaigns", "keep", 0, "v", "created").ok());
  StateOptions options;
  ASSERT_TRUE(store_->Compact(At("2030-01-01T00:00"), options).ok());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto r = store_->ReadRecord("campaigns", "keep");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "v");
  EXPECT_EQ(store_->RecordAudit("campaigns", "keep")->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, GovernedRecordsTest, ::testing::Values("embedded", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qm::policy
