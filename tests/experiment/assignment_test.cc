#include "qianmian/experiment/assignment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace qm::experiment {
namespace {

constexpr int kIds = 1000000;
// The chi-square distribution's 99.9% quantiles used below (computed from its CDF).
constexpr double kChi2Df4 = 18.467;
constexpr double kChi2Df9 = 27.877;
constexpr double kChi2Df99 = 148.230;

std::string Id(int i) { return "C" + std::to_string(10000000 + i); }

LayerConfig Layer(const std::string& name, const std::string& salt, const std::vector<double>& shares) {
  LayerConfig l;
  l.name = name;
  l.salt = salt;
  for (size_t i = 0; i < shares.size(); ++i) {
    ArmConfig a;
    a.name = "arm" + std::to_string(i);
    a.share = shares[i];
    l.arms.push_back(a);
  }
  return l;
}

// Pearson's statistic of observed counts against expected shares of n.
double ChiSquare(const std::vector<int64_t>& observed, const std::vector<double>& shares, int64_t n) {
  double x2 = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double e = shares[i] * static_cast<double>(n);
    x2 += (observed[i] - e) * (observed[i] - e) / e;
  }
  return x2;
}

std::vector<int64_t> CountArms(const Assigner& a, size_t layer, size_t arms) {
  std::vector<int64_t> counts(arms, 0);
  Assignment as;
  for (int i = 0; i < kIds; ++i) {
    a.Assign(Id(i), &as);
    ++counts[static_cast<size_t>(as.arms[layer])];
  }
  return counts;
}

TEST(Assignment, KnownVectorsNeverChange) {
  // A change of the hash moves every customer between arms: these values are the contract. They
  // were checked against an independent Python implementation of the same hash.
  EXPECT_EQ(SaltKey(""), 0xefd01f60ba992926ull);
  EXPECT_EQ(SaltKey("home_layout"), 0x24081e2367bed23dull);
  EXPECT_EQ(KeyedHash("", SaltKey("home_layout")), 0xddf068a58ace50e1ull);
  EXPECT_EQ(KeyedHash("C10000000", SaltKey("home_layout")), 0x026f2b26b609d362ull);
  EXPECT_EQ(KeyedHash("C10000001", SaltKey("home_layout")), 0xdf99170040919f59ull);
  EXPECT_EQ(KeyedHash("C10000000", SaltKey("push_cap")), 0x271bb0099e39cc07ull);
  EXPECT_EQ(KeyedHash("a customer id longer than sixteen bytes", SaltKey("push_cap")), 0x281793a7303b9591ull);
  ExperimentsConfig c;
  c.holdout_share = 0.2;
  c.layers.push_back(Layer("home", "home_layout", std::vector<double>(10, 0.1)));
  c.layers.push_back(Layer("push", "push_cap", {0.5, 0.25, 0.25}));
  const Assigner a(c);
  std::vector<std::string> got;  // "H" for the holdout, then each layer's arm
  for (int i = 0; i < 12; ++i) {
    Assignment as = a.Assign(Id(i));
    got.push_back(std::string(as.holdout ? "H" : "-") + std::to_string(as.arms[0]) + std::to_string(as.arms[1]));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"H-1-1", "-80", "-10", "-20", "-90", "-80", "-70", "H-1-1", "-70", "-00",
                                           "-92", "-42"}));
}

TEST(Assignment, IsAPureFunctionOfTheIdAndTheLayerSalt) {
  ExperimentsConfig one, two;
  one.layers.push_back(Layer("a", "salt-a", {0.3, 0.7}));
  two.layers.push_back(Layer("b", "salt-b", {0.5, 0.5}));
  two.layers.push_back(Layer("a renamed", "salt-a", {0.3, 0.7}));  // same salt, other position
  const Assigner x(one), y(two), x_again(one);
  for (int i = 0; i < 10000; ++i) {
    const std::string id = Id(i);
    EXPECT_EQ(x.Assign(id).arms[0], y.Assign(id).arms[1]);
    EXPECT_EQ(x.Assign(id).arms[0], x_again.Assign(id).arms[0]);
  }
}

TEST(Assignment, UnitValuesStayInsideTheUnitInterval) {
  const uint64_t key = SaltKey("s");
  for (int i = 0; i < 100000; ++i) {
    const double u = UnitValue(Id(i), key);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Assignment, ArmOfValueFollowsCumulativeSharesAndSkipsEmptyArms) {
  const std::vector<double> cum = {0.25, 0.25, 0.75, 1.0 - 1e-12};
  EXPECT_EQ(ArmOfValue(cum, 0.0), 0);
  EXPECT_EQ(ArmOfValue(cum, 0.2499), 0);
  EXPECT_EQ(ArmOfValue(cum, 0.25), 2);  // arm 1 has share 0
  EXPECT_EQ(ArmOfValue(cum, 0.75), 3);
  EXPECT_EQ(ArmOfValue(cum, 1.0 - 1e-13), 3);  // above the rounded sum: the last arm
}

TEST(Assignment, TenEqualArmsAreUniformOverAMillionIds) {
  ExperimentsConfig c;
  c.layers.push_back(Layer("l", "ten-arms", std::vector<double>(10, 0.1)));
  const std::vector<int64_t> counts = CountArms(Assigner(c), 0, 10);
  const double x2 = ChiSquare(counts, std::vector<double>(10, 0.1), kIds);
  EXPECT_LT(x2, kChi2Df9) << "chi-square with 9 degrees of freedom";
}

TEST(Assignment, UnequalSharesAreHonouredOverAMillionIds) {
  const std::vector<double> shares = {0.5, 0.2, 0.15, 0.1, 0.05};
  ExperimentsConfig c;
  c.layers.push_back(Layer("l", "unequal", shares));
  const std::vector<int64_t> counts = CountArms(Assigner(c), 0, shares.size());
  EXPECT_LT(ChiSquare(counts, shares, kIds), kChi2Df4) << "chi-square with 4 degrees of freedom";
}

TEST(Assignment, TheUniformityTestCatchesAMappingBiasedByTwoPoints) {
  // The same ids mapped with one boundary moved by 2 points (arm 0 gets 12%, arm 1 8%): the test
  // above must fail for such a mapping, or it proves nothing.
  const uint64_t key = SaltKey("ten-arms");
  std::vector<double> cum;
  for (int i = 1; i <= 10; ++i) cum.push_back(i * 0.1);
  cum[0] = 0.12;
  std::vector<int64_t> counts(10, 0);
  for (int i = 0; i < kIds; ++i) ++counts[static_cast<size_t>(ArmOfValue(cum, UnitValue(Id(i), key)))];
  EXPECT_GT(ChiSquare(counts, std::vector<double>(10, 0.1), kIds), kChi2Df9);
}

TEST(Assignment, TwoLayersWithDifferentSaltsAreIndependent) {
  ExperimentsConfig c;
  c.layers.push_back(Layer("home", "home-salt", std::vector<double>(10, 0.1)));
  c.layers.push_back(Layer("push", "push-salt", std::vector<double>(10, 0.1)));
  const Assigner a(c);
  std::vector<int64_t> table(100, 0);  // the 10 x 10 contingency table
  Assignment as;
  for (int i = 0; i < kIds; ++i) {
    a.Assign(Id(i), &as);
    ++table[static_cast<size_t>(as.arms[0] * 10 + as.arms[1])];
  }
  // Against the product of the (known, uniform) marginals: 99 degrees of freedom.
  EXPECT_LT(ChiSquare(table, std::vector<double>(100, 0.01), kIds), kChi2Df99);
}

TEST(Assignment, TheGlobalHoldoutTakesItsShareAndNoArm) {
  ExperimentsConfig c;
  c.holdout_share = 0.05;
  c.layers.push_back(Layer("l", "layer-salt", {0.5, 0.5}));
  const Assigner a(c);
  int64_t holdout = 0;
  std::vector<int64_t> arms(2, 0);
  Assignment as;
  for (int i = 0; i < kIds; ++i) {
    a.Assign(Id(i), &as);
    if (as.holdout) {
      ++holdout;
      EXPECT_EQ(as.arms[0], kNoArm);
    } else {
      ++arms[static_cast<size_t>(as.arms[0])];
    }
  }
  // sd of the share is sqrt(0.05 * 0.95 / 1e6) = 0.00022: 0.0015 is about 7 sd.
  EXPECT_NEAR(static_cast<double>(holdout) / kIds, 0.05, 0.0015);
  // The customers outside the holdout are still split evenly (the holdout's salt is its own).
  EXPECT_LT(ChiSquare(arms, {0.5, 0.5}, kIds - holdout), 10.828);  // 99.9%, 1 degree of freedom
}

TEST(Assignment, NoHoldoutWhenTheShareIsZeroAndEveryoneWhenItIsOne) {
  ExperimentsConfig c;
  c.layers.push_back(Layer("l", "s", {1.0}));
  const Assigner none(c);
  c.holdout_share = 1.0;
  const Assigner all(c);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(none.Assign(Id(i)).holdout);
    EXPECT_EQ(none.Assign(Id(i)).arms[0], 0);
    EXPECT_TRUE(all.Assign(Id(i)).holdout);
  }
}

}  // namespace
}  // namespace qm::experiment
