// `qianmian export`'s CSV (ExportCsv) over an embedded event store: the header, every record in
// [from, to) and nothing else, and clear errors for a reversed range and an unwritable file.
#include "qianmian/tools/export.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qianmian/policy/event_store.h"

namespace qm::tools {
namespace {

namespace fs = std::filesystem;

constexpr TimeMs kT0 = 1764806400000;  // 2025-12-04T00:00Z

std::vector<std::string> Lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qm_export_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    policy::StoreConfig c;
    c.path = (dir_ / "store").string();
    c.sync = false;
    auto s = policy::EventStore::Open(c);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    std::vector<policy::DecisionRecord> ds;
    std::vector<policy::StoredEvent> evs;
    for (int h = 0; h < 4; ++h) {  // one decision and one click an hour, kT0 .. kT0 + 3h
      policy::DecisionRecord& d = ds.emplace_back();
      d.ts = kT0 + h * kMsPerHour;
      d.request_id = "r" + std::to_string(h);
      d.customer_id = "alice";
      d.channel = "app_home";
      d.item_id = "P" + std::to_string(h);
      d.position = h;
      d.score = 0.5;
      d.p_click = 0.25f;
      d.p_convert = 0.125f;
      d.model_version = "v3";
      d.arms = {"home=b", "push=control"};
      d.reasons = {"recall:ann", "campaign:spring, 2025"};
      d.kind = h == 3 ? policy::DecisionKind::kGhost : policy::DecisionKind::kServed;
      policy::StoredEvent& e = evs.emplace_back();
      e.ts = kT0 + h * kMsPerHour;
      e.customer_id = "bob";
      e.item_id = "C" + std::to_string(h);
      e.type = EventType::kClick;
      e.channel = "app_home";
      e.request_id = "r" + std::to_string(h);
    }
    ASSERT_TRUE(store_->AppendDecisions(ds).ok());
    ASSERT_TRUE(store_->Append(evs, policy::StateOptions{}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::unique_ptr<policy::EventStore> store_;
};

TEST_F(ExportTest, DecisionsCsvHasAHeaderAndEveryDecisionInTheRange) {
  const fs::path out = dir_ / "decisions.csv";
  auto rows = ExportCsv(store_.get(), ExportKind::kDecisions, kT0 + kMsPerHour, kT0 + 3 * kMsPerHour + 1, out);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 3u) << "from is included, to excluded";
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "ts_ms,time,kind,request_id,customer_id,channel,item_id,position,score,p_click,p_convert,model_version,"
            "arms,reasons");
  EXPECT_EQ(lines[1],
            "1764810000000,2025-12-04T01:00:00.000Z,served,r1,alice,app_home,P1,1,0.5,0.25,0.125,v3,"
            "home=b;push=control,\"recall:ann;campaign:spring, 2025\"");
  EXPECT_EQ(lines[3].substr(0, 45), "1764817200000,2025-12-04T03:00:00.000Z,ghost,");
  EXPECT_FALSE(fs::exists(dir_ / "decisions.csv.tmp"));
}

TEST_F(ExportTest, EventsCsvHasAHeaderAndEveryEventInTheRange) {
  const fs::path out = dir_ / "events.csv";
  auto rows = ExportCsv(store_.get(), ExportKind::kEvents, kT0, kT0 + 2 * kMsPerHour, out);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 2u);
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ts_ms,time,customer_id,item_id,type,channel,request_id,campaign,category,service");
  EXPECT_EQ(lines[1], "1764806400000,2025-12-04T00:00:00.000Z,bob,C0,click,app_home,r0,,,0");
}

TEST_F(ExportTest, AnEmptyRangeWritesOnlyTheHeader) {
  const fs::path out = dir_ / "none.csv";
  auto rows = ExportCsv(store_.get(), ExportKind::kDecisions, kT0 - kMsPerDay, kT0 - kMsPerDay, out);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, 0u);
  EXPECT_EQ(Lines(out).size(), 1u);
}

TEST_F(ExportTest, RefusesAReversedRangeAndAnUnwritableFile) {
  const fs::path out = dir_ / "x.csv";
  auto reversed = ExportCsv(store_.get(), ExportKind::kEvents, kT0 + 1, kT0, out);
  ASSERT_FALSE(reversed.ok());
  EXPECT_EQ(reversed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reversed.status().message().find("after --to"), std::string::npos) << reversed.status().message();
  EXPECT_FALSE(fs::exists(out));
  const std::string nowhere = (dir_ / "no_such_dir" / "x.csv").string();
  auto unwritable = ExportCsv(store_.get(), ExportKind::kDecisions, kT0, kT0 + kMsPerDay, nowhere);
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.status().code(), StatusCode::kIoError);
  EXPECT_NE(unwritable.status().message().find(nowhere), std::string::npos) << unwritable.status().message();
}

}  // namespace
}  // namespace qm::tools
