#include "qianmian/core/time.h"

#include <gtest/gtest.h>

namespace qm {
namespace {

TimeZone Shanghai() {
  auto tz = TimeZone::Load("Asia/Shanghai");
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return *tz;
}

TEST(ParseTime, ReadsEpochMillisecondsAsIs) {
  EXPECT_EQ(ParseTime("1700000000123", TimeZone::Utc()), 1700000000123);
  EXPECT_EQ(ParseTime("0", Shanghai()), 0);
}

TEST(ParseTime, ReadsIsoWithOffsetsAndFractions) {
  EXPECT_EQ(ParseTime("2024-03-01T00:00:00Z", Shanghai()), 1709251200000);
  EXPECT_EQ(ParseTime("2024-03-01T08:00:00+08:00", TimeZone::Utc()), 1709251200000);
  EXPECT_EQ(ParseTime("2024-03-01T00:00:00.250Z", Shanghai()), 1709251200250);
  EXPECT_EQ(ParseTime("2024-03-01 00:00Z", Shanghai()), 1709251200000);
}

TEST(ParseTime, ReadsTimesWithoutOffsetInTheBanksZone) {
  // Midnight in Shanghai is 16:00 UTC the day before.
  EXPECT_EQ(ParseTime("2024-03-01", Shanghai()), 1709251200000 - 8 * kMsPerHour);
  EXPECT_EQ(ParseTime("2024-03-01T08:00:00", Shanghai()), 1709251200000);
}

TEST(ParseTime, RejectsMalformedCells) {
  for (const char* bad : {"", "2024-13-01", "2024-02-30", "2024-03-01T25:00", "yesterday", "2024-03-01T08:00:00+0800",
                          "2024/03/01", "12ab"}) {
    EXPECT_FALSE(ParseTime(bad, Shanghai()).has_value()) << bad;
  }
}

TEST(TimeZone, FindsLocalMidnightAndWeekStartInShanghai) {
  TimeZone tz = Shanghai();
  TimeMs t = *ParseTime("2024-03-06T23:59:59+08:00", tz);  // a Wednesday
  EXPECT_EQ(tz.StartOfDay(t), *ParseTime("2024-03-06T00:00:00+08:00", tz));
  EXPECT_EQ(tz.StartOfDay(t + 1000), *ParseTime("2024-03-07T00:00:00+08:00", tz));
  EXPECT_EQ(tz.StartOfWeek(t), *ParseTime("2024-03-04T00:00:00+08:00", tz));
  EXPECT_EQ(tz.LocalWeekday(t), 2);
  EXPECT_EQ(tz.LocalHour(t), 23);
}

TEST(TimeZone, HandlesDaylightSavingGapsWhereTheyExist) {
  auto ny = TimeZone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  // 2024-03-10 02:30 does not exist in New York; it maps forward, never fails.
  auto t = ParseTime("2024-03-10T02:30:00", *ny);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(ny->StartOfDay(*t), *ParseTime("2024-03-10T00:00:00-05:00", *ny));
}

TEST(TimeZone, RejectsUnknownNames) {
  auto tz = TimeZone::Load("Mars/Olympus_Mons");
  ASSERT_FALSE(tz.ok());
  EXPECT_NE(tz.status().message().find("Mars/Olympus_Mons"), std::string::npos);
}

TEST(FormatIso, PrintsLocalTimeWithOffset) {
  EXPECT_EQ(FormatIsoLocal(1709251200000, Shanghai()), "2024-03-01T08:00:00.000+08:00");
}

}  // namespace
}  // namespace qm
