#include "qianmian/training/split.h"

#include <gtest/gtest.h>

#include <vector>

namespace qm::training {
namespace {

using metrics::EvalTargets;
using metrics::IndexSpan;
using Ids = std::vector<uint32_t>;

void Add(EventLog* log, TimeMs ts, uint32_t customer, uint32_t item, EventType type) {
  log->Append(ts, customer, item, type, kAppHome, "");
}

Ids ToIds(IndexSpan s) { return Ids(s.begin(), s.end()); }

TEST(TimeSplit, HoldsOutEventsAtOrAfterTheCut) {
  EventLog log;
  Add(&log, 100, 0, 0, EventType::kClick);
  Add(&log, 200, 0, 1, EventType::kClick);
  Add(&log, 199, 1, 1, EventType::kImpression);
  Add(&log, 300, 1, 2, EventType::kConvert);
  const Split split = TimeSplit(log, 200);
  EXPECT_EQ(split.held_out, (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(split.num_train, 2u);
  EXPECT_EQ(split.num_held_out, 2u);
}

TEST(HoldoutStart, IsTheStartOfTheLastLocalDaysBeforeTheDayAfterTheLatestEvent) {
  EventLog log;
  Add(&log, 10 * kMsPerDay + 12 * kMsPerHour, 0, 0, EventType::kClick);  // day 10, noon UTC
  Add(&log, 3 * kMsPerDay, 0, 0, EventType::kClick);
  auto start = HoldoutStartForLastDays(log, 2);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  EXPECT_EQ(*start, 9 * kMsPerDay);  // days 9 and 10 are held out
}

TEST(HoldoutStart, MatchesTheGeneratorsPeriodEndingAtAShanghaiMidnight) {
  auto tz = TimeZone::Load("Asia/Shanghai");
  if (!tz.ok()) GTEST_SKIP() << "no tz database: " << tz.status().ToString();
  const TimeMs end = 1793462400000;  // 2026-11-01T00:00:00+08:00 (the generator's default end)
  EventLog log;
  Add(&log, end - 60 * kMsPerDay, 0, 0, EventType::kClick);
  Add(&log, end - 5 * kMsPerMinute, 0, 1, EventType::kClick);
  auto start = HoldoutStartForLastDays(log, 12, *tz);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(*start, end - 12 * kMsPerDay);
}

TEST(HoldoutStart, RejectsAnEmptyLogAndFewerThanOneDay) {
  EventLog empty;
  EXPECT_EQ(HoldoutStartForLastDays(empty, 3).status().code(), StatusCode::kNotFound);
  EventLog log;
  Add(&log, 1, 0, 0, EventType::kClick);
  EXPECT_EQ(HoldoutStartForLastDays(log, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(PerCustomerTimeSplit, HoldsOutTheLastFifthOfEachCustomersPositivesByTime) {
  EventLog log;
  // Customer 0: ten clicks logged out of time order; the two latest (ts 9, 10) are held out.
  const TimeMs times[] = {5, 10, 1, 7, 9, 2, 3, 8, 4, 6};
  for (uint32_t i = 0; i < 10; ++i) Add(&log, times[i], 0, i, EventType::kClick);
  // Customer 1: two positives, round(0.4) = 0 held out.
  Add(&log, 1, 1, 0, EventType::kClick);
  Add(&log, 2, 1, 1, EventType::kClick);
  // Customer 2: three positives at the same time, round(0.6) = 1: the last one in log order.
  Add(&log, 5, 2, 0, EventType::kClick);
  Add(&log, 5, 2, 1, EventType::kConvert);
  Add(&log, 5, 2, 2, EventType::kPushOpen);
  auto split = PerCustomerTimeSplit(log, 0.2);
  ASSERT_TRUE(split.ok());
  std::vector<uint8_t> expected(log.size(), 0);
  expected[1] = 1;   // ts 10
  expected[4] = 1;   // ts 9
  expected[14] = 1;  // customer 2's last in log order
  EXPECT_EQ(split->held_out, expected);
  EXPECT_EQ(split->num_held_out, 3u);
  EXPECT_EQ(split->num_train, log.size() - 3);
}

TEST(PerCustomerTimeSplit, HoldsOutNonPositiveEventsAfterTheFirstHeldOutPositive) {
  EventLog log;
  Add(&log, 1, 0, 0, EventType::kImpression);  // before the cut: training
  Add(&log, 2, 0, 0, EventType::kClick);
  Add(&log, 3, 0, 1, EventType::kImpression);  // before the cut: training
  Add(&log, 4, 0, 1, EventType::kClick);       // the last of 2 positives, fraction 0.5
  Add(&log, 5, 0, 2, EventType::kImpression);  // after it: held out
  auto split = PerCustomerTimeSplit(log, 0.5);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->held_out, (std::vector<uint8_t>{0, 0, 0, 1, 1}));
}

TEST(PerCustomerTimeSplit, RejectsAFractionOutsideZeroToOne) {
  EventLog log;
  EXPECT_EQ(PerCustomerTimeSplit(log, 1.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PerCustomerTimeSplit(log, -0.1).status().code(), StatusCode::kInvalidArgument);
}

TEST(EvalTargets, FollowTheHeldOutMetricDefinition) {
  EventLog log;
  // Customer 0: training positives on 1 and 2; held out: 1 again (seen, not a target),
  // 3 twice (one target), an impression of 4 (not a positive).
  Add(&log, 1, 0, 1, EventType::kClick);
  Add(&log, 2, 0, 2, EventType::kConvert);
  Add(&log, 10, 0, 1, EventType::kClick);
  Add(&log, 11, 0, 3, EventType::kPushOpen);
  Add(&log, 12, 0, 3, EventType::kClick);
  Add(&log, 13, 0, 4, EventType::kImpression);
  // Customer 1: only an impression in training (not seen); held-out convert on the same item.
  Add(&log, 3, 1, 5, EventType::kImpression);
  Add(&log, 14, 1, 5, EventType::kConvert);
  // Customer 2: held-out dismiss and push_sent only: not evaluated.
  Add(&log, 15, 2, 6, EventType::kDismiss);
  Add(&log, 16, 2, 6, EventType::kPushSent);
  // Customer 3: held-out positive on an item seen in training only: not evaluated.
  Add(&log, 4, 3, 7, EventType::kClick);
  Add(&log, 17, 3, 7, EventType::kClick);
  const EvalTargets t = BuildEvalTargets(log, TimeSplit(log, 10));
  ASSERT_EQ(t.customers, (Ids{0, 1}));
  EXPECT_EQ(ToIds(t.targets[0]), (Ids{3}));
  EXPECT_EQ(ToIds(t.seen[0]), (Ids{1, 2}));
  EXPECT_EQ(ToIds(t.targets[1]), (Ids{5}));
  EXPECT_EQ(ToIds(t.seen[1]), (Ids{}));
  EXPECT_EQ(t.num_targets(), 2u);
}

TEST(EvalTargets, AreEmptyWhenNothingIsHeldOut) {
  EventLog log;
  Add(&log, 1, 0, 1, EventType::kClick);
  const EvalTargets t = BuildEvalTargets(log, TimeSplit(log, 100));
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace qm::training

namespace qm::training {
namespace {
TEST(CustomerHoldoutSplit, HoldsOutWholeCustomersInTheRequestedShare) {
  EventLog log;
  for (uint32_t c = 0; c < 100; ++c) {
    for (int k = 0; k < 3; ++k) log.Append(1000 * k, c, 0, EventType::kImpression, kAppHome, "");
  }
  auto split = CustomerHoldoutSplit(log, 0.25, 7);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->num_held_out, 75u);  // 25 customers x 3 events
  for (size_t e = 0; e < log.size(); e += 3) {
    EXPECT_EQ(split->held_out[e], split->held_out[e + 1]);
    EXPECT_EQ(split->held_out[e], split->held_out[e + 2]);
  }
  auto again = CustomerHoldoutSplit(log, 0.25, 7);
  EXPECT_EQ(again->held_out, split->held_out);
  EXPECT_FALSE(CustomerHoldoutSplit(log, 1.0, 7).ok());
}
}  // namespace
}  // namespace qm::training
