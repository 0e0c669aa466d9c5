#include "qianmian/metrics/held_out.h"

#include <gtest/gtest.h>

#include <vector>

namespace qm::metrics {
namespace {

using Ids = std::vector<uint32_t>;

Ids ToIds(IndexSpan s) { return Ids(s.begin(), s.end()); }

TimeMs At(const char* iso, const TimeZone& tz) {
  auto t = ParseTime(iso, tz);
  QM_CHECK(t.has_value());
  return *t;
}

TEST(HoldoutDays, AreTheLastFifthOfThePeriodAndAtLeastOne) {
  EXPECT_EQ(HoldoutDays(1), 1);
  EXPECT_EQ(HoldoutDays(3), 1);
  EXPECT_EQ(HoldoutDays(10), 2);
  EXPECT_EQ(HoldoutDays(40), 8);
  EXPECT_EQ(HoldoutDays(60), 12);
}

// The generator's period (24-hour days back from its end, in UTC) and the assertions its own
// HoldoutStart(end, days) was tested with.
TEST(HoldoutStart, InUtcIsTheEndMinusWholeDays) {
  EXPECT_EQ(HoldoutStart(1000 * kMsPerDay, HoldoutDays(3)), 999 * kMsPerDay);   // at least one day
  EXPECT_EQ(HoldoutStart(1000 * kMsPerDay, HoldoutDays(60)), 988 * kMsPerDay);  // days / 5
  const TimeMs end = 1000 * kMsPerDay + 5 * kMsPerHour + 17;                    // not a midnight
  EXPECT_EQ(HoldoutStart(end, 2), end - 2 * kMsPerDay);
  EXPECT_EQ(HoldoutStart(end, 0), end);
}

TEST(HoldoutStart, InShanghaiAgreesWithWholeDaysAtAndBetweenMidnights) {
  auto tz = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  const TimeMs midnight = At("2026-11-01T00:00:00+08:00", *tz);
  EXPECT_EQ(HoldoutStart(midnight, 12, *tz), midnight - 12 * kMsPerDay);
  EXPECT_EQ(HoldoutStart(midnight, 12, *tz), HoldoutStart(midnight, 12));
  const TimeMs afternoon = At("2026-10-15T13:37:21+08:00", *tz);
  EXPECT_EQ(HoldoutStart(afternoon, 3, *tz), afternoon - 3 * kMsPerDay);
}

TEST(HoldoutStart, CountsLocalCalendarDaysAcrossADaylightSavingChange) {
  auto tz = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  // 2024-03-31 lasts 23 hours in Berlin: three local days before 2 April are 71 hours.
  const TimeMs end = At("2024-04-02T00:00:00+02:00", *tz);
  EXPECT_EQ(HoldoutStart(end, 3, *tz), At("2024-03-30T00:00:00+01:00", *tz));
  EXPECT_EQ(end - HoldoutStart(end, 3, *tz), 71 * kMsPerHour);
}

TEST(RecallAtK, CountsTheGeneratorsTargetsInTheTopK) {
  const Ids ranking = {5, 3, 9, 1};
  EXPECT_DOUBLE_EQ(RecallAtK(ranking, Ids{1, 3}, 2), 0.5);
  EXPECT_DOUBLE_EQ(RecallAtK(ranking, Ids{1, 3}, 4), 1.0);
  EXPECT_DOUBLE_EQ(RecallAtK(ranking, Ids{7}, 4), 0.0);
  EXPECT_DOUBLE_EQ(RecallAtK(ranking, Ids{}, 4), 0.0);
}

TEST(EvalTargets, FromPositivesInAnyOrderFollowTheDefinition) {
  // Customer 4: before on 1 and 2; held out on 1 (seen), 3 twice, 2 (seen). Customer 1: held
  // out on 7 only. Customer 2: positives before only. Customer 0: held out on 5, before on 5.
  const EvalTargets t = BuildEvalTargets({{4, 3, true},
                                          {1, 7, true},
                                          {4, 1, true},
                                          {2, 6, false},
                                          {4, 2, false},
                                          {0, 5, true},
                                          {4, 3, true},
                                          {4, 1, false},
                                          {0, 5, false},
                                          {4, 2, true}});
  ASSERT_EQ(t.customers, (Ids{1, 4}));
  EXPECT_EQ(ToIds(t.targets[0]), (Ids{7}));
  EXPECT_EQ(ToIds(t.seen[0]), (Ids{}));
  EXPECT_EQ(ToIds(t.targets[1]), (Ids{3}));
  EXPECT_EQ(ToIds(t.seen[1]), (Ids{1, 2}));
  EXPECT_EQ(t.num_targets(), 2u);
}

TEST(EvalTargets, FromAnEventLogCountOnlyPositives) {
  EventLog log;
  log.Append(1, 0, 1, EventType::kClick, kAppHome, "");
  log.Append(2, 0, 2, EventType::kImpression, kAppHome, "");  // not a positive: 2 is not seen
  log.Append(10, 0, 2, EventType::kConvert, kAppHome, "");
  log.Append(11, 0, 1, EventType::kPushOpen, kWechatPush, "");
  log.Append(12, 1, 3, EventType::kDismiss, kAppHome, "");  // not a positive: 1 is not evaluated
  const EvalTargets t = BuildEvalTargets(log, std::vector<uint8_t>{0, 0, 1, 1, 1});
  ASSERT_EQ(t.customers, (Ids{0}));
  EXPECT_EQ(ToIds(t.targets[0]), (Ids{2}));
  EXPECT_EQ(ToIds(t.seen[0]), (Ids{1}));
}

}  // namespace
}  // namespace qm::metrics
