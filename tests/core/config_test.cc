#include "qianmian/core/config.h"
#include "qianmian/core/core_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

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

namespace qm {
namespace {

// Sets QIANMIAN_* variables for one test and removes them after it.
class ConfigEnvironment : public ::testing::Test {
 protected:
  void Set(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    names_.push_back(name);
  }
  void TearDown() override {
    for (const auto& n : names_) ::unsetenv(n.c_str());
  }
  std::string TempFile(const std::string& content) {
    std::string path = ::testing::TempDir() + "/qm_secret_" + std::to_string(::getpid()) + "_" +
                       std::to_string(files_++);  // tests run in parallel processes
    std::ofstream(path, std::ios::trunc) << content;
    return path;
  }
  Status Read(const std::string& toml, bool environment, DataConfig* out, std::string* json = nullptr) {
    auto f = ConfigFile::Parse(toml);
    if (!f.ok()) return f.status();
    if (environment) f->UseEnvironment();
    ReadDataConfig(f->Root().Table("data"), out);
    if (json) *json = f->ToJson();
    return f->Finish();
  }
  std::vector<std::string> names_;
  int files_ = 0;
};

TEST_F(ConfigEnvironment, VariablesOverrideTheFileKeyByKeyInTheKeysType) {
  Set("QIANMIAN_DATA_TIMEZONE", "UTC");
  Set("QIANMIAN_DATA_MAX_BAD_ROW_SHARE", "0.5");
  Set("QIANMIAN_DATA_CHANNELS", "sms, app_banner");
  DataConfig c;
  std::string json;
  Status st = Read("[data]\ntimezone = \"Asia/Shanghai\"\ndir = \"/x\"\n", true, &c, &json);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(c.timezone, "UTC");
  EXPECT_DOUBLE_EQ(c.max_bad_row_share, 0.5);
  EXPECT_EQ(c.channels, (std::vector<std::string>{"sms", "app_banner"}));
  EXPECT_EQ(c.dir, "/x");                                                     // not overridden: the file's
  EXPECT_NE(json.find("\"timezone\" : \"UTC\""), std::string::npos) << json;  // manifests see the effective value
}

TEST_F(ConfigEnvironment, ASectionAbsentFromTheFileIsCreatedByAVariable) {
  Set("QIANMIAN_DATA_DIR", "/from/env");
  DataConfig c;
  ASSERT_TRUE(Read("", true, &c).ok());
  EXPECT_EQ(c.dir, "/from/env");
}

TEST_F(ConfigEnvironment, VariablesAreIgnoredUnlessTheReaderAsksForThem) {
  Set("QIANMIAN_DATA_TIMEZONE", "UTC");
  DataConfig c;
  ASSERT_TRUE(Read("", false, &c).ok());
  EXPECT_EQ(c.timezone, "Asia/Shanghai");
}

TEST_F(ConfigEnvironment, ABadValueIsRejectedNamingTheVariable) {
  Set("QIANMIAN_DATA_MAX_BAD_ROW_SHARE", "lots");
  DataConfig c;
  Status st = Read("", true, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'data.max_bad_row_share' (from QIANMIAN_DATA_MAX_BAD_ROW_SHARE)"), std::string::npos)
      << st.message();
  Set("QIANMIAN_DATA_MAX_BAD_ROW_SHARE", "2");  // parses, but out of range: the reader's check
  st = Read("", true, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("(from QIANMIAN_DATA_MAX_BAD_ROW_SHARE): must be in [0, 1]"), std::string::npos)
      << st.message();
}

TEST_F(ConfigEnvironment, AMisspeltVariableOfAReadSectionIsUnknown) {
  Set("QIANMIAN_DATA_TIMEZONEE", "UTC");
  Set("QIANMIAN_SOMETHING_ELSE", "x");  // not a section that was read: not ours to judge
  DataConfig c;
  Status st = Read("", true, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown setting QIANMIAN_DATA_TIMEZONEE"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("QIANMIAN_SOMETHING_ELSE"), std::string::npos) << st.message();
}

TEST_F(ConfigEnvironment, AFileVariantReadsTheValueFromAFileAndHidesItFromJson) {
  Set("QIANMIAN_DATA_TIMEZONE_FILE", TempFile("Europe/Berlin\n"));
  DataConfig c;
  std::string json;
  ASSERT_TRUE(Read("", true, &c, &json).ok());
  EXPECT_EQ(c.timezone, "Europe/Berlin");  // one trailing newline dropped
  EXPECT_EQ(json.find("Europe/Berlin"), std::string::npos) << json;
  Set("QIANMIAN_DATA_TIMEZONE", "UTC");
  Status st = Read("", true, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("QIANMIAN_DATA_TIMEZONE and QIANMIAN_DATA_TIMEZONE_FILE are both set"), std::string::npos)
      << st.message();
  ::unsetenv("QIANMIAN_DATA_TIMEZONE");
  Set("QIANMIAN_DATA_TIMEZONE_FILE", "/nonexistent/secret");
  st = Read("", true, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("QIANMIAN_DATA_TIMEZONE_FILE: cannot read '/nonexistent/secret'"), std::string::npos)
      << st.message();
}

TEST_F(ConfigEnvironment, ASecretComesFromItsKeyItsFileKeyOrTheEnvironmentAndIsNeverShown) {
  auto read = [](const std::string& toml, std::string* out, std::string* json) {
    auto f = ConfigFile::Parse(toml);
    if (!f.ok()) return f.status();
    f->UseEnvironment();
    f->Root().Table("store").ReadSecret("redis_password", out);
    *json = f->ToJson();
    return f->Finish();
  };
  std::string pw, json;
  ASSERT_TRUE(read("[store]\nredis_password = \"hunter2\"\n", &pw, &json).ok());
  EXPECT_EQ(pw, "hunter2");
  EXPECT_EQ(json.find("hunter2"), std::string::npos) << json;
  EXPECT_NE(json.find("(secret)"), std::string::npos) << json;
  const std::string file = TempFile("s3cret\r\n");
  pw.clear();
  ASSERT_TRUE(read("[store]\nredis_password_file = \"" + file + "\"\n", &pw, &json).ok());
  EXPECT_EQ(pw, "s3cret");
  EXPECT_FALSE(read("[store]\nredis_password = \"a\"\nredis_password_file = \"" + file + "\"\n", &pw, &json).ok());
  Status st = read("[store]\nredis_password_file = \"/nonexistent\"\n", &pw, &json);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'store.redis_password_file': cannot read '/nonexistent'"), std::string::npos)
      << st.message();
  Set("QIANMIAN_STORE_REDIS_PASSWORD_FILE", TempFile("fromenv\n"));
  pw.clear();
  st = read("", &pw, &json);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(pw, "fromenv");
  EXPECT_EQ(json.find("fromenv"), std::string::npos) << json;
}

}  // namespace
}  // namespace qm
