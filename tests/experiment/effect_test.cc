// The effect report's statistics, tested rather than assumed: known values (checked against
// scipy.stats), interval coverage on simulated A/A and A/B experiments (400 repetitions each),
// CUPED's narrower intervals, and the sample-ratio check.
#include "qianmian/experiment/effect.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qianmian/experiment/report.h"

namespace qm::experiment {
namespace {

TEST(Effect, WelchAndMeanIntervalsMatchScipy) {
  const std::vector<double> a = {1, 0, 0, 2, 3, 0, 1, 0, 0, 4}, b = {0, 0, 1, 0, 0, 0, 2, 0, 1, 0};
  Lift l = WelchLift(a, b);
  EXPECT_NEAR(l.difference, 0.7, 1e-12);
  EXPECT_NEAR(l.low, -0.3994348871506169, 1e-9);  // scipy: Welch-Satterthwaite df 12.975
  EXPECT_NEAR(l.high, 1.7994348871506172, 1e-9);
  EXPECT_NEAR(l.p_value, 0.19218181869077944, 1e-9);  // ttest_ind(equal_var=False)
  EXPECT_NEAR(l.relative, 0.7 / 0.4, 1e-12);
  MeanInterval m = MeanWithInterval(a);
  EXPECT_NEAR(m.low, 0.06334935678528697, 1e-9);
  EXPECT_NEAR(m.high, 2.136650643214713, 1e-9);
  SampleRatio s = SampleRatioCheck({52000, 48000}, {0.5, 0.5});
  EXPECT_NEAR(s.chi_square, 160.0, 1e-9);
  EXPECT_NEAR(std::log10(s.p_value), std::log10(1.1314837902433038e-36), 1e-6);
}

// A skewed per-customer metric like clicks: Poisson with the customer's own rate.
double Clicks(std::mt19937_64* rng, double rate) {
  std::poisson_distribution<int> n(rate);
  return n(*rng);
}

// Share of `reps` simulated experiments (n customers per arm) whose 95% interval of the lift
// covers the planted difference.
double Coverage(int reps, int n, double planted, uint64_t seed, bool cuped, double* mean_width) {
  std::mt19937_64 rng(seed);
  int covered = 0;
  double width = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> yt(n), yc(n), xt(n), xc(n);
    for (int i = 0; i < n; ++i) {
      // A customer's rate (mean 0.5, most near 0, a few high) carries over from the pre-period:
      // what CUPED exploits.
      std::gamma_distribution<double> propensity(0.5, 1.0);
      const double pt = propensity(rng), pc = propensity(rng);
      xt[i] = Clicks(&rng, pt);
      xc[i] = Clicks(&rng, pc);
      yt[i] = Clicks(&rng, pt) + (planted > 0 && std::bernoulli_distribution(planted)(rng) ? 1 : 0);
      yc[i] = Clicks(&rng, pc);
    }
    Lift l = cuped ? CupedLift(yt, xt, yc, xc) : WelchLift(yt, yc);
    covered += l.low <= planted && planted <= l.high;
    width += l.high - l.low;
  }
  if (mean_width) *mean_width = width / reps;
  return static_cast<double>(covered) / reps;
}

TEST(Effect, AaIntervalsCoverZeroNinetyFivePercentOfTheTime) {
  double w = 0;
  const double c = Coverage(400, 1000, 0.0, 11, false, &w);
  std::printf("A/A coverage %.4f, mean interval width %.4f\n", c, w);
  EXPECT_GE(c, 0.93);
  EXPECT_LE(c, 0.97);
}

TEST(Effect, AbIntervalsCoverThePlantedEffectAsOften) {
  double w = 0;
  const double c = Coverage(400, 1000, 0.05, 12, false, &w);
  std::printf("A/B (+0.05) coverage %.4f, mean interval width %.4f\n", c, w);
  EXPECT_GE(c, 0.93);
  EXPECT_LE(c, 0.97);
}

TEST(Effect, CupedKeepsCoverageWithNarrowerIntervals) {
  double plain = 0, adjusted = 0;
  Coverage(400, 1000, 0.05, 13, false, &plain);
  const double c = Coverage(400, 1000, 0.05, 13, true, &adjusted);
  std::printf("CUPED coverage %.4f, mean width %.4f against %.4f without\n", c, adjusted, plain);
  EXPECT_GE(c, 0.93);
  EXPECT_LE(c, 0.97);
  EXPECT_LT(adjusted, 0.97 * plain);
}

TEST(Effect, SampleRatioCheckFlagsA52To48SplitAndRarelyAFairOne) {
  EXPECT_TRUE(SampleRatioCheck({52000, 48000}, {0.5, 0.5}).mismatch);
  EXPECT_FALSE(SampleRatioCheck({50100, 49900}, {0.5, 0.5}).mismatch);
  EXPECT_TRUE(SampleRatioCheck({10500, 9000, 500}, {0.5, 0.45, 0.05}).mismatch);
  std::mt19937_64 rng(5);
  int flagged = 0;
  for (int r = 0; r < 400; ++r) {
    std::binomial_distribution<int64_t> a(100000, 0.5);
    const int64_t n = a(rng);
    flagged += SampleRatioCheck({n, 100000 - n}, {0.5, 0.5}).mismatch;
  }
  EXPECT_LE(flagged, 3);  // alpha 0.001: 0.4 expected in 400
}

TEST(Effect, ReportCountsArmsAgainstTheControlArm) {
  LayerConfig layer;
  layer.name = "push_cap";
  layer.arms.resize(2);
  layer.arms[0].name = "treated";
  layer.arms[0].share = 0.5;
  layer.arms[1].name = "control";
  layer.arms[1].share = 0.5;
  layer.arms[1].control_channels = {"wechat_push"};
  EXPECT_EQ(ControlArm(layer), 1);
  std::vector<CustomerOutcome> cs(9);
  for (int i = 0; i < 9; ++i) {
    cs[i].arm = i == 8 ? kNoArm : i % 2;
    cs[i].in_window[kContacts] = cs[i].arm == 0 ? 2 : 0;
    cs[i].in_window[kClicks] = cs[i].arm == 0 ? (i % 4 == 0 ? 1 : 0) : 0;
    cs[i].in_window[kGhosts] = cs[i].arm == 1 && i != 7 ? 1 : 0;  // control customers' would-be sends
  }
  ExperimentReport r = BuildReport(layer, cs, false);
  ASSERT_EQ(r.arms.size(), 2u);
  EXPECT_EQ(r.holdout, 1);
  EXPECT_EQ(r.arms[0].assigned, 4);
  EXPECT_EQ(r.arms[0].contacted, 4);
  EXPECT_EQ(r.arms[1].contacted, 0);
  EXPECT_EQ(r.arms[1].ghosted, 3);
  EXPECT_EQ(r.arms[0].ghosted, 0);
  EXPECT_TRUE(r.arms[1].control);
  EXPECT_FALSE(r.arms[1].metrics[kClicks].has_lift);
  EXPECT_TRUE(r.arms[0].metrics[kClicks].has_lift);
  EXPECT_DOUBLE_EQ(r.arms[0].metrics[kClicks].total, 2);
  EXPECT_DOUBLE_EQ(r.arms[0].metrics[kClicks].lift.difference, 0.5);
  EXPECT_DOUBLE_EQ(r.arms[0].metrics[kContacts].per_customer.mean, 2);
  auto j = nlohmann::json::parse(ReportJson(r));
  EXPECT_EQ(j["arms"][0]["arm"], "treated");
  EXPECT_EQ(j["arms"][1]["ghosted"], 3);
  EXPECT_EQ(j["arms"][0]["metrics"]["clicks"]["lift"]["difference"], 0.5);
  EXPECT_FALSE(j["sample_ratio"]["mismatch"]);
  const std::string text = FormatReport(r);
  EXPECT_NE(text.find("(control)"), std::string::npos) << text;
  EXPECT_NE(text.find("clicks per customer"), std::string::npos) << text;
}

}  // namespace
}  // namespace qm::experiment
