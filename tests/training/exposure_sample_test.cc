#include "qianmian/training/exposure_sample.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace qm::training {
namespace {

Item Valid(TimeMs start, TimeMs end) {
  Item it;
  it.start = start;
  it.end = end;
  return it;
}

TEST(ValidShare, CountsTheValidPartOfThePeriod) {
  const TimeMs from = 0, to = 10 * kMsPerDay;
  EXPECT_DOUBLE_EQ(ValidShare(Valid(kNoTime, kNoTime), from, to), 1.0);
  EXPECT_DOUBLE_EQ(ValidShare(Valid(5 * kMsPerDay, kNoTime), from, to), 0.5);
  EXPECT_DOUBLE_EQ(ValidShare(Valid(kNoTime, 2 * kMsPerDay), from, to), 0.2);
  EXPECT_DOUBLE_EQ(ValidShare(Valid(-kMsPerDay, 20 * kMsPerDay), from, to), 1.0);
  // Valid for an hour, or not at all: counted as one day.
  EXPECT_DOUBLE_EQ(ValidShare(Valid(3 * kMsPerDay, 3 * kMsPerDay + kMsPerHour), from, to), 0.1);
  EXPECT_DOUBLE_EQ(ValidShare(Valid(20 * kMsPerDay, kNoTime), from, to), 0.1);
  EXPECT_DOUBLE_EQ(ValidShare(Valid(kNoTime, kNoTime), to, from), 1.0);  // empty period
}

// Item 0 is valid all 40 days and shown 100 times a day; item 1 is launched on day 30 and shown
// as often per day, so it has a quarter of item 0's exposures.
std::vector<recall::PositiveExample> TwoItems() {
  std::vector<recall::PositiveExample> x;
  for (int d = 0; d < 40; ++d)
    for (int k = 0; k < 100; ++k) {
      const TimeMs t = d * kMsPerDay + k * kMsPerMinute;
      x.push_back({static_cast<uint32_t>(k), 0, t});
      if (d >= 30) x.push_back({static_cast<uint32_t>(k), 1, t + 1});
    }
  return x;
}

TEST(SampleExposures, PerValidDayGivesAnItemLaunchedLateItsShareOfDailyExposures) {
  const std::vector<Item> items = {Valid(kNoTime, kNoTime), Valid(30 * kMsPerDay, kNoTime)};
  ExposureSample s = SampleExposures(items, TwoItems(), 4000, true, 7);
  EXPECT_TRUE(s.per_valid_day);
  ASSERT_EQ(s.examples.size(), 4000u);
  std::map<uint32_t, int> count;
  for (const auto& x : s.examples) ++count[x.item];
  // Per valid day both were shown 100 times: about half of the draws each (not 4:1).
  EXPECT_NEAR(count[1] / 4000.0, 0.5, 0.04) << count[0] << " " << count[1];
  // Deterministic for a seed.
  ExposureSample again = SampleExposures(items, TwoItems(), 4000, true, 7);
  ASSERT_EQ(again.examples.size(), s.examples.size());
  for (size_t k = 0; k < s.examples.size(); ++k) EXPECT_EQ(again.examples[k].ts, s.examples[k].ts);
}

TEST(SampleExposures, UniformWhenOffOrWhenEveryItemWasValidThroughout) {
  const std::vector<Item> launched = {Valid(kNoTime, kNoTime), Valid(30 * kMsPerDay, kNoTime)};
  ExposureSample off = SampleExposures(launched, TwoItems(), 2500, false, 7);
  EXPECT_FALSE(off.per_valid_day);
  ASSERT_EQ(off.examples.size(), 2500u);
  int late = 0;
  for (const auto& x : off.examples) late += x.item == 1;
  EXPECT_NEAR(late / 2500.0, 0.2, 0.03);  // the logged 4:1
  // Both valid throughout: nothing to reweight; all kept when under the cap.
  const std::vector<Item> open = {Valid(kNoTime, kNoTime), Valid(kNoTime, kNoTime)};
  ExposureSample all = SampleExposures(open, TwoItems(), 1'000'000, true, 7);
  EXPECT_FALSE(all.per_valid_day);
  EXPECT_EQ(all.examples.size(), 5000u);
  EXPECT_TRUE(SampleExposures(open, {}, 10, true, 7).examples.empty());
}

}  // namespace
}  // namespace qm::training
