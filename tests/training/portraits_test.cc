// Portraits and the churn model (issue 18): on a generated bank whose leaving customers are
// planted (truth/churn.csv, stated by no input column), the churn risk learned from behaviour
// ranks the customers who leave above those who stay, better than the days since their last
// activity; every customer gets a portrait; the AUC and precision helpers are exact.
#include "qianmian/training/portraits.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "qianmian/core/time.h"
#include "qianmian/synth/generate.h"

namespace qm::training {
namespace {

namespace fs = std::filesystem;

TEST(ChurnMetrics, AucAndPrecisionAtTheTop) {
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.2, 0.3, 0.4}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({0.4, 0.3, 0.2, 0.1}, {0, 0, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(Auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}), 0.5) << "ties count one half";
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.2}, {1, 1}), 0.5) << "one class only";
  EXPECT_DOUBLE_EQ(PrecisionAtTop({0.9, 0.8, 0.1, 0.2}, {1, 0, 1, 0}, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(PrecisionAtTop({0.9, 0.8, 0.1, 0.2}, {1, 0, 1, 0}, 0.25), 1.0);
}

class PortraitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() / ("qm_portraits_" + std::to_string(::getpid()))).string());
    synth::GenerateOptions g;
    g.out_dir = *dir_;
    g.customers = 4000;
    g.products = 40;
    g.contents = 300;
    g.days = 42;
    g.seed = 5;
    g.threads = 2;
    g.oracle_sample = 100;
    auto s = synth::GenerateBank(g);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    DataConfig data;
    data.dir = *dir_;
    auto ds = LoadDataset(*dir_, data);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ds_ = new Dataset(std::move(*ds));
    auto r = FitPortraits(*ds_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    result_ = new PortraitResult(std::move(*r));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete result_;
    delete ds_;
    delete dir_;
  }
  // portraits.csv as customer -> cells.
  static std::map<std::string, std::vector<std::string>> Rows() {
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(result_->csv);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> cells;
      std::stringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
      while (cells.size() < 8) cells.emplace_back();
      out[cells[0]] = cells;
    }
    return out;
  }
  static std::string* dir_;
  static Dataset* ds_;
  static PortraitResult* result_;
};
std::string* PortraitsTest::dir_ = nullptr;
Dataset* PortraitsTest::ds_ = nullptr;
PortraitResult* PortraitsTest::result_ = nullptr;

TEST_F(PortraitsTest, TheChurnModelBeatsDaysSinceTheLastActivityOnTheHeldOutPeriod) {
  const auto& m = result_->metrics;
  for (const auto& [k, v] : m) std::printf("%s = %.4f\n", k.c_str(), v);
  EXPECT_GT(m.at("churn.evaluated"), 1000);
  EXPECT_GT(m.at("churn.auc"), 0.7);
  EXPECT_GT(m.at("churn.auc"), m.at("churn.baseline_auc"));
  EXPECT_GE(m.at("churn.precision@5%"), m.at("churn.baseline_precision@5%"));
}

TEST_F(PortraitsTest, EveryCustomerHasAPortraitAndThePlantedLeaversScoreHigher) {
  const auto rows = Rows();
  ASSERT_EQ(rows.size(), ds_->customers.size());
  // The planted truth: customers who leave within the horizon after the data ends, among those
  // still active at its end (lifecycle not dormant), against those who never leave.
  std::ifstream in(*dir_ + "/truth/churn.csv");
  std::string line;
  std::getline(in, line);
  TimeMs end = 0;
  for (TimeMs t : ds_->events.ts) end = std::max(end, t);
  const TimeMs horizon = static_cast<TimeMs>(result_->metrics.at("churn.horizon_days")) * kMsPerDay;
  std::vector<double> score, baseline;
  std::vector<uint8_t> leaves;
  std::map<std::string, int> stages;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string id, flag, at;
    std::getline(ss, id, ',');
    std::getline(ss, flag, ',');
    std::getline(ss, at, ',');
    const auto& cells = rows.at(id);
    ++stages[cells[2]];
    if (cells[2] == "dormant") continue;
    const auto when = at.empty() ? std::nullopt : ParseTime(at, TimeZone::Utc());
    if (flag == "1" && !(when && *when > end && *when <= end + horizon)) continue;  // left already, or much later
    score.push_back(std::stod(cells[1]));
    baseline.push_back(cells[4].empty() ? 1e9 : std::stod(cells[4]));
    leaves.push_back(flag == "1");
  }
  const double auc = Auc(score, leaves);
  size_t n_leave = 0;
  for (uint8_t l : leaves) n_leave += l;
  std::printf(
      "truth: %zu customers (%zu leave within the horizon), AUC for the planted leavers: churn_risk %.3f, "
      "days inactive %.3f; precision in the top 5%%: %.3f, %.3f\n",
      score.size(), n_leave, auc, Auc(baseline, leaves), PrecisionAtTop(score, leaves, 0.05),
      PrecisionAtTop(baseline, leaves, 0.05));
  // The model separates leaving from a rare visitor's chance silence (FitChurn), so it ranks the
  // planted leavers better than recency alone (0.814 against 0.774 on this bank; it did not when
  // it learnt silence itself: 0.69 against 0.77).
  EXPECT_GT(auc, Auc(baseline, leaves));
  EXPECT_GT(auc, 0.75);
  for (const char* s : {"dormant", "mature", "declining"}) EXPECT_GT(stages[s], 0) << s;
  size_t with_interest = 0;
  for (const auto& [id, cells] : rows) with_interest += !cells[5].empty();
  EXPECT_GT(with_interest, rows.size() / 2) << "most customers have a top interest";
}

}  // namespace
}  // namespace qm::training
