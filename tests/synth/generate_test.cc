#include "qianmian/synth/generate.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "qianmian/core/dataset.h"
#include "qianmian/core/time.h"
#include "qianmian/metrics/held_out.h"
#include "synth_test_util.h"

namespace qm::synth {
namespace {

namespace fs = std::filesystem;
using test_util::ReadFloats;
using test_util::SmallOptions;

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every regular file under `dir`, relative path -> bytes.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = ReadAll(e.path());
  }
  return out;
}

class Generate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("QM_PROGRESS", "0", 1);
    root_ = new fs::path(fs::temp_directory_path() / ("qm_generate_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    auto s = GenerateBank(SmallOptions((*root_ / "a").string(), 2));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    summary_ = new GenerateSummary(*s);
    report_ = new LoadReport();
    auto ds = LoadDataset((*root_ / "a").string(), DataConfig{}, report_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    data_ = new Dataset(std::move(*ds));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete data_;
    delete report_;
    delete summary_;
    delete root_;
  }
  void SetUp() override { ASSERT_NE(data_, nullptr); }

  static fs::path* root_;
  static GenerateSummary* summary_;
  static LoadReport* report_;
  static Dataset* data_;
};
fs::path* Generate::root_ = nullptr;
GenerateSummary* Generate::summary_ = nullptr;
LoadReport* Generate::report_ = nullptr;
Dataset* Generate::data_ = nullptr;

TEST_F(Generate, OutputLoadsWithZeroBadRows) {
  EXPECT_EQ(report_->customers.bad_rows, 0u) << report_->Format();
  EXPECT_EQ(report_->items.bad_rows, 0u) << report_->Format();
  EXPECT_EQ(report_->events.bad_rows, 0u) << report_->Format();
  EXPECT_TRUE(report_->customers.notes.empty()) << report_->Format();
  EXPECT_EQ(data_->customers.size(), 3000u);
  EXPECT_EQ(data_->items.size(), 560u);
  EXPECT_EQ(data_->events.size(), summary_->events);
  EXPECT_GT(summary_->events, 3000u * 15);
  // Extra columns become features.
  std::set<std::string> features;
  for (const auto& f : data_->features) features.insert(f.name);
  for (const char* name : {"age", "gender", "income", "aum", "life_stage", "occupation"}) {
    EXPECT_TRUE(features.count(name)) << name;
  }
  for (const char* f : {"truth/truth.json", "truth/oracle.json", "truth/churn.csv", "truth/customer_latent.f32",
                        "truth/item_latent.f32", "truth/item_bias.f32", "truth/customer_latent_observable.f32"}) {
    EXPECT_TRUE(fs::exists(*root_ / "a" / f)) << f;
  }
}

TEST_F(Generate, SameSeedGivesByteIdenticalFilesWhateverTheThreadCount) {
  auto one = GenerateBank(SmallOptions((*root_ / "b").string(), 1));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  auto three = GenerateBank(SmallOptions((*root_ / "c").string(), 3));
  ASSERT_TRUE(three.ok()) << three.status().ToString();
  auto a = Snapshot(*root_ / "a"), b = Snapshot(*root_ / "b"), c = Snapshot(*root_ / "c");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    EXPECT_TRUE(b[name] == bytes) << name << " differs between 2 threads and 1";
    EXPECT_TRUE(c[name] == bytes) << name << " differs between 2 threads and 3";
  }
}

TEST_F(Generate, DifferentSeedGivesDifferentEvents) {
  GenerateOptions o = SmallOptions((*root_ / "d").string(), 2);
  o.seed = 8;
  ASSERT_TRUE(GenerateBank(o).ok());
  EXPECT_NE(ReadAll(*root_ / "a" / "events.csv"), ReadAll(*root_ / "d" / "events.csv"));
}

TEST_F(Generate, TiersRiskLevelsAndOptOutsHaveTheDesignedProportions) {
  const double n = static_cast<double>(data_->customers.size());
  int tiers[kNumTiers] = {0}, risk[6] = {0}, expired = 0, wechat_out = 0;
  const TimeMs end = kDefaultGenerateEnd;
  for (const auto& c : data_->customers) {
    tiers[static_cast<int>(c.tier)]++;
    risk[c.risk]++;
    if (c.risk != kNoRisk && c.risk_assessed < end - 365 * kMsPerDay) ++expired;
    if (c.opt_out & (1u << kWechatPush)) ++wechat_out;
    EXPECT_EQ(c.risk == kNoRisk, c.risk_assessed == kNoTime) << c.id;
  }
  EXPECT_NEAR(tiers[0] / n, 0.85, 0.04);
  EXPECT_NEAR(tiers[1] / n, 0.13, 0.04);
  EXPECT_NEAR(tiers[2] / n, 0.02, 0.015);
  EXPECT_NEAR(risk[0] / n, 0.12, 0.04);  // never assessed
  EXPECT_NEAR(expired / n, 0.13, 0.04);  // assessed more than 12 months before the end
  for (int r = 1; r <= 5; ++r) EXPECT_GT(risk[r], 30) << "C" << r;
  EXPECT_NEAR(wechat_out / n, 0.05, 0.02);
}

TEST_F(Generate, RatesAreRealistic) {
  EXPECT_GT(summary_->ctr, 0.02);
  EXPECT_LT(summary_->ctr, 0.07);
  EXPECT_GT(summary_->push_open_rate, 0.05);
  EXPECT_LT(summary_->push_open_rate, 0.2);
  const double imp = static_cast<double>(summary_->events_by_type[static_cast<int>(EventType::kImpression)]);
  const double dis = static_cast<double>(summary_->events_by_type[static_cast<int>(EventType::kDismiss)]);
  EXPECT_NEAR(dis / imp, 0.01, 0.007);
  const double conv = static_cast<double>(summary_->events_by_type[static_cast<int>(EventType::kConvert)]);
  EXPECT_GT(conv, 0);
  EXPECT_LT(conv / summary_->product_clicks, 0.15);
}

TEST_F(Generate, EventsAreSortedByTimeInsideThePeriod) {
  const auto& ev = data_->events;
  const TimeMs end = kDefaultGenerateEnd, start = end - 40 * kMsPerDay;
  for (size_t e = 0; e < ev.size(); ++e) {
    ASSERT_GE(ev.ts[e], start);
    ASSERT_LT(ev.ts[e], end);
    if (e) {
      ASSERT_LE(ev.ts[e - 1], ev.ts[e]) << "event " << e;
    }
  }
}

TEST_F(Generate, NoLoggedExposureViolatesSuitabilityConsentOrEligibility) {
  auto tz = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(tz.ok());
  const auto& ev = data_->events;
  size_t exposures = 0, investment = 0;
  for (size_t e = 0; e < ev.size(); ++e) {
    const EventType t = ev.type[e];
    if (t != EventType::kImpression && t != EventType::kPushSent) continue;
    ++exposures;
    const Customer& c = data_->customers[ev.customer[e]];
    const Item& it = data_->items[ev.item[e]];
    const TimeMs ts = ev.ts[e];
    const ChannelId ch = ev.channel[e];
    ASSERT_EQ(ch, t == EventType::kImpression ? kAppHome : kWechatPush);
    ASSERT_FALSE(c.opt_out & (1u << ch)) << c.id << " opted out of channel " << int(ch);
    if (it.risk != kNoRisk) {
      ++investment;
      ASSERT_NE(c.risk, kNoRisk) << c.id << " has no assessment but saw " << it.id;
      ASSERT_GE(c.risk, it.risk) << c.id << " saw " << it.id;
      ASSERT_LT(ts - c.risk_assessed, 365 * kMsPerDay) << c.id << " has an expired assessment but saw " << it.id;
    }
    if (it.channels) {
      ASSERT_TRUE(it.channels & (1u << ch)) << it.id;
    }
    if (it.tiers) {
      ASSERT_TRUE(it.tiers & (1u << static_cast<int>(c.tier))) << it.id;
    }
    if (!it.regions.empty()) {
      ASSERT_TRUE(std::binary_search(it.regions.begin(), it.regions.end(), c.region)) << it.id;
    }
    if (it.start != kNoTime) {
      ASSERT_GE(ts, it.start) << it.id;
    }
    if (it.end != kNoTime) {
      ASSERT_LT(ts, it.end) << it.id;
    }
    if (it.kind == ItemKind::kProduct) {
      ASSERT_FALSE(std::binary_search(c.holdings.begin(), c.holdings.end(), ev.item[e])) << c.id << " holds " << it.id;
    }
    if (t == EventType::kPushSent) {
      int hour = tz->LocalHour(ts);
      ASSERT_GE(hour, 8);
      ASSERT_LT(hour, 21);
    }
  }
  EXPECT_GT(exposures, 10000u);
  EXPECT_GT(investment, 500u);
}

TEST_F(Generate, ResponsesFollowTheirExposureWithTheSameRequestId) {
  const auto& ev = data_->events;
  // (customer, request id, item) -> time of the exposure / click.
  std::map<std::tuple<uint32_t, std::string, uint32_t>, TimeMs> shown, clicked, pushed;
  size_t checked = 0;
  for (size_t e = 0; e < ev.size(); ++e) {
    const std::string req(ev.RequestId(e));
    auto key = std::make_tuple(ev.customer[e], req, ev.item[e]);
    switch (ev.type[e]) {
      case EventType::kImpression:
        ASSERT_FALSE(req.empty());
        shown.emplace(key, ev.ts[e]);
        break;
      case EventType::kPushSent:
        ASSERT_FALSE(req.empty());
        pushed.emplace(key, ev.ts[e]);
        break;
      case EventType::kClick:
      case EventType::kDismiss: {
        auto it = shown.find(key);
        ASSERT_TRUE(it != shown.end()) << "click/dismiss without impression, request " << req;
        ASSERT_LE(it->second, ev.ts[e]);
        if (ev.type[e] == EventType::kClick) clicked.emplace(key, ev.ts[e]);
        ++checked;
        break;
      }
      case EventType::kConvert: {
        ASSERT_EQ(data_->items[ev.item[e]].kind, ItemKind::kProduct);
        auto it = clicked.find(key);
        ASSERT_TRUE(it != clicked.end()) << "convert without click, request " << req;
        ASSERT_LE(it->second, ev.ts[e]);
        ++checked;
        break;
      }
      case EventType::kPushOpen: {
        auto it = pushed.find(key);
        ASSERT_TRUE(it != pushed.end()) << "push_open without push_sent, request " << req;
        ASSERT_LE(it->second, ev.ts[e]);
        ++checked;
        break;
      }
    }
  }
  EXPECT_GT(checked, 1000u);
}

TEST_F(Generate, OracleBeatsPopularityByAClearMargin) {
  EXPECT_GT(summary_->eligible_customers, 300u);
  EXPECT_EQ(summary_->evaluated_customers, summary_->eligible_customers);
  EXPECT_GT(summary_->oracle.at20, 2.5 * summary_->popularity.at20)
      << "oracle " << summary_->oracle.at20 << " popularity " << summary_->popularity.at20;
  EXPECT_LE(summary_->oracle.at10, summary_->oracle.at20);
  EXPECT_LE(summary_->oracle.at20, summary_->oracle.at50);
  std::string oracle = ReadAll(*root_ / "a" / "truth" / "oracle.json");
  EXPECT_NE(oracle.find("\"holdout_start_ms\": " + std::to_string(summary_->holdout_start)), std::string::npos);
  EXPECT_NE(oracle.find("\"evaluated_customers\""), std::string::npos);
}

// customer_latent = customer_latent_observable + idiosyncratic noise whose share of the
// variance is the planted unobservable share (0.2); the noise does not depend on the attributes.
TEST_F(Generate, ObservableLatentIsTheAttributePartOfTheCustomerLatent) {
  const auto u = ReadFloats(*root_ / "a" / "truth" / "customer_latent.f32");
  const auto o = ReadFloats(*root_ / "a" / "truth" / "customer_latent_observable.f32");
  ASSERT_EQ(u.size(), 3000u * 24);
  ASSERT_EQ(o.size(), u.size());
  double noise = 0, total = 0, cross = 0;
  double mean[24] = {0};
  for (size_t k = 0; k < u.size(); ++k) mean[k % 24] += u[k] / 3000.0;
  for (size_t k = 0; k < u.size(); ++k) {
    const double e = u[k] - o[k], c = u[k] - mean[k % 24];
    noise += e * e;
    total += c * c;
    cross += e * (o[k]);
  }
  EXPECT_NEAR(noise / total, 0.2, 0.03);
  EXPECT_NEAR(cross / total, 0.0, 0.03);  // noise uncorrelated with the attribute part
}

TEST_F(Generate, AttributeOracleLiesBetweenPopularityAndTheOracle) {
  // Knowing customers only by their attributes loses their idiosyncratic taste (a fifth of the
  // latent variance), but keeps the items, the response model and the logging policy.
  EXPECT_GT(summary_->attribute_oracle.at20, 1.5 * summary_->popularity.at20);
  EXPECT_LT(summary_->attribute_oracle.at20, summary_->oracle.at20);
  EXPECT_GT(summary_->attribute_oracle.at20, 0.6 * summary_->oracle.at20);
  std::string oracle = ReadAll(*root_ / "a" / "truth" / "oracle.json");
  EXPECT_NE(oracle.find("\"attribute_oracle\": {"), std::string::npos);
}

TEST_F(Generate, HistoryOracleLearnsFromEachCustomersOwnResponses) {
  // The MAP estimate from a customer's own clicks and opens recovers part of their
  // idiosyncratic taste: above the attribute oracle, below the oracle that knows it.
  EXPECT_GT(summary_->history_oracle.at20, summary_->attribute_oracle.at20);
  EXPECT_GT(summary_->history_oracle.at50, summary_->attribute_oracle.at50);
  EXPECT_LT(summary_->history_oracle.at20, summary_->oracle.at20);
  std::string oracle = ReadAll(*root_ / "a" / "truth" / "oracle.json");
  EXPECT_NE(oracle.find("\"history_oracle\": {"), std::string::npos);
}

TEST_F(Generate, HoldoutTargetsFromTheLoadedEventsMatchTheGenerator) {
  EXPECT_EQ(summary_->holdout_start, metrics::HoldoutStart(kDefaultGenerateEnd, metrics::HoldoutDays(40)));
  EXPECT_EQ(summary_->holdout_start, kDefaultGenerateEnd - 8 * kMsPerDay);
  std::vector<uint8_t> held_out(data_->events.size());
  for (size_t e = 0; e < held_out.size(); ++e) held_out[e] = data_->events.ts[e] >= summary_->holdout_start;
  const metrics::EvalTargets ht = metrics::BuildEvalTargets(data_->events, held_out);
  EXPECT_EQ(ht.customers.size(), summary_->eligible_customers);
  for (size_t k = 0; k < ht.customers.size(); ++k) {
    for (uint32_t t : ht.targets[k]) {
      EXPECT_FALSE(std::binary_search(ht.seen[k].begin(), ht.seen[k].end(), t));
    }
  }
}

TEST(GenerateOptions, BadOptionsAreRejectedWithClearErrors) {
  auto with = [](auto change) {
    GenerateOptions o;
    o.out_dir = (fs::temp_directory_path() / "qm_generate_bad").string();
    change(o);
    return ValidateGenerateOptions(o);
  };
  EXPECT_TRUE(with([](GenerateOptions&) {}).ok());
  Status s = with([](GenerateOptions& o) { o.customers = 0; });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--customers"), std::string::npos) << s.message();
  EXPECT_FALSE(with([](GenerateOptions& o) { o.products = -3; }).ok());
  EXPECT_FALSE(with([](GenerateOptions& o) { o.contents = 0; }).ok());
  EXPECT_FALSE(with([](GenerateOptions& o) { o.days = 0; }).ok());
  EXPECT_FALSE(with([](GenerateOptions& o) { o.threads = -1; }).ok());
  EXPECT_FALSE(with([](GenerateOptions& o) { o.out_dir.clear(); }).ok());

  GenerateOptions o;
  o.customers = 10;
  o.products = 5;
  o.contents = 5;
  o.days = 2;
  o.out_dir = "/proc/qm_cannot_write_here";
  auto r = GenerateBank(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  // --out naming an existing file.
  fs::path file = fs::temp_directory_path() / ("qm_generate_file_" + std::to_string(::getpid()));
  std::ofstream(file) << "x";
  o.out_dir = file.string();
  EXPECT_FALSE(GenerateBank(o).ok());
  fs::remove(file);
}

TEST(GenerateOptions, TinyBanksStillWork) {
  setenv("QM_PROGRESS", "0", 1);
  GenerateOptions o;
  o.customers = 1;
  o.products = 1;
  o.contents = 1;
  o.days = 1;
  o.out_dir = (fs::temp_directory_path() / ("qm_generate_tiny_" + std::to_string(::getpid()))).string();
  auto r = GenerateBank(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  LoadReport report;
  auto ds = LoadDataset(o.out_dir, DataConfig{}, &report);
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  fs::remove_all(o.out_dir);
}

}  // namespace
}  // namespace qm::synth
