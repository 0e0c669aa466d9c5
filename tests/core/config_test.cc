#include "qianmian/core/config.h"
#include "qianmian/core/core_config.h"

#include <gtest/gtest.h>

namespace qm {
namespace {

Status ReadData(std::string_view toml, DataConfig* out) {
  auto f = ConfigFile::Parse(toml);
  if (!f.ok()) return f.status();
  ReadDataConfig(f->Root().Table("data"), out);
  return f->Finish();
}

TEST(Config, EmptyFileKeepsEveryDefault) {
  DataConfig c;
  ASSERT_TRUE(ReadData("", &c).ok());
  EXPECT_EQ(c.timezone, "Asia/Shanghai");
  EXPECT_DOUBLE_EQ(c.max_bad_row_share, 0.01);
}

TEST(Config, ReadsTypedValues) {
  DataConfig c;
  ASSERT_TRUE(ReadData("[data]\ndir = \"/x\"\nmax_bad_row_share = 0.2\nchannels = [\"sms\"]\n", &c).ok());
  EXPECT_EQ(c.dir, "/x");
  EXPECT_DOUBLE_EQ(c.max_bad_row_share, 0.2);
  EXPECT_EQ(c.channels, std::vector<std::string>{"sms"});
}

TEST(Config, RejectsUnknownKeysByFullName) {
  DataConfig c;
  Status st = ReadData("[data]\ndirr = \"/x\"\n[nonsense]\na = 1\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown key 'data.dirr'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown key 'nonsense'"), std::string::npos) << st.message();
}

TEST(Config, RejectsBadValuesNamingTheKey) {
  DataConfig c;
  Status st = ReadData("[data]\nmax_bad_row_share = \"lots\"\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'data.max_bad_row_share': expected a number"), std::string::npos) << st.message();
  st = ReadData("[data]\nmax_bad_row_share = 1.5\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'data.max_bad_row_share': must be in [0, 1]"), std::string::npos);
}

TEST(Config, TheClockIsTheWallOrTheDataEnd) {
  DataConfig c;
  EXPECT_EQ(c.clock, "wall");
  ASSERT_TRUE(ReadData("[data]\nclock = \"data_end\"\n", &c).ok());
  EXPECT_EQ(c.clock, "data_end");
  Status st = ReadData("[data]\nclock = \"sundial\"\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'data.clock': must be \"wall\" or \"data_end\""), std::string::npos) << st.message();
}

TEST(Config, ReportsSyntaxErrorsWithLine) {
  auto f = ConfigFile::Parse("[data\nx=1", "engine.toml");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("engine.toml:1:"), std::string::npos) << f.status().message();
}

TEST(Config, ParsesDurationsWithUnits) {
  auto f = ConfigFile::Parse("a = \"30m\"\nb = \"7d\"\nc = 1500\nd = \"soon\"\n");
  ASSERT_TRUE(f.ok());
  TimeMs a = 0, b = 0, c = 0, d = 0;
  auto root = f->Root();
  root.ReadDuration("a", &a);
  root.ReadDuration("b", &b);
  root.ReadDuration("c", &c);
  root.ReadDuration("d", &d);
  EXPECT_EQ(a, 30 * kMsPerMinute);
  EXPECT_EQ(b, 7 * kMsPerDay);
  EXPECT_EQ(c, 1500);
  Status st = f->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'d': bad duration 'soon'"), std::string::npos) << st.message();
}

TEST(Config, ReadsArraysOfTablesWithIndexedNames) {
  auto f = ConfigFile::Parse("[[caps]]\nlimit = 3\n[[caps]]\nlimit = \"x\"\n");
  ASSERT_TRUE(f.ok());
  auto caps = f->Root().TableArray("caps");
  ASSERT_EQ(caps.size(), 2u);
  int l0 = 0, l1 = 0;
  caps[0].Read("limit", &l0);
  caps[1].Read("limit", &l1);
  EXPECT_EQ(l0, 3);
  Status st = f->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'caps[1].limit'"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace qm

namespace qm {
namespace {
TEST(Config, ExportsItsContentAsJson) {
  auto f = ConfigFile::Parse("[data]\ndir = \"/x\"\n");
  ASSERT_TRUE(f.ok());
  EXPECT_NE(f->ToJson().find("\"dir\" : \"/x\""), std::string::npos) << f->ToJson();
  EXPECT_EQ(ConfigFile().ToJson(), "{}");
}
}  // namespace
}  // namespace qm
