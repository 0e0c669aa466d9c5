#include "qianmian/experiment/experiment_config.h"

#include <gtest/gtest.h>

#include <string>

namespace qm::experiment {
namespace {

Status Read(const std::string& toml, ExperimentsConfig* out) {
  auto f = ConfigFile::Parse(toml);
  if (!f.ok()) return f.status();
  ReadExperimentsConfig(f->Root().Table("experiments"), out);
  return f->Finish();
}

// The error message of a definition that must be refused ("" when it was accepted).
std::string Refusal(const std::string& toml) {
  ExperimentsConfig c;
  Status st = Read(toml, &c);
  return st.ok() ? "" : st.ToString();
}

const char* kTwoLayers = R"(
[experiments]
holdout_share = 0.05
holdout_salt = "global-2026"

[[experiments.layers]]
name = "home_ranking"
salt = "home-2026-12"
[[experiments.layers.arms]]
name = "control"
share = 0.5
control = ["app_home"]
[[experiments.layers.arms]]
name = "convert"
share = 0.5
model_version = "v2"
[experiments.layers.arms.serving]
w_convert = 1.0

[[experiments.layers]]
name = "push_cap"
salt = "push-2026-12"
[[experiments.layers.arms]]
name = "none"
share = 0.2
control = true
[[experiments.layers.arms]]
name = "two"
share = 0.4
[[experiments.layers.arms]]
name = "four"
share = 0.4
)";

TEST(ExperimentsConfig, AbsentSectionIsEmpty) {
  ExperimentsConfig c;
  ASSERT_TRUE(Read("", &c).ok());
  EXPECT_TRUE(c.empty());
}

TEST(ExperimentsConfig, ReadsLayersArmsControlsAndOverrideTables) {
  ExperimentsConfig c;
  auto f = ConfigFile::Parse(kTwoLayers);
  ASSERT_TRUE(f.ok());
  ReadExperimentsConfig(f->Root().Table("experiments"), &c);
  ASSERT_TRUE(c.layers[0].arms[1].serving.has_value());
  double w = 0;
  c.layers[0].arms[1].serving->Read("w_convert", &w);  // what serving's reader does with it
  ASSERT_TRUE(f->Finish().ok()) << f->Finish().ToString();
  EXPECT_DOUBLE_EQ(w, 1.0);
  EXPECT_DOUBLE_EQ(c.holdout_share, 0.05);
  EXPECT_EQ(c.holdout_salt, "global-2026");
  ASSERT_EQ(c.layers.size(), 2u);
  EXPECT_EQ(c.layers[0].arms[0].control_channels, std::vector<std::string>{"app_home"});
  EXPECT_TRUE(c.layers[0].arms[0].Controls("app_home"));
  EXPECT_FALSE(c.layers[0].arms[0].Controls("wechat_push"));
  EXPECT_EQ(c.layers[0].arms[1].model_version, "v2");
  EXPECT_EQ(c.layers[1].arms[2].key, "experiments.layers[1].arms[2]");
  EXPECT_FALSE(c.layers[0].arms[1].policy.has_value());
  EXPECT_TRUE(c.layers[1].arms[0].control_all);
  EXPECT_TRUE(c.layers[1].arms[0].Controls("wechat_push"));
  EXPECT_FALSE(c.layers[1].arms[1].Controls("wechat_push"));
}

TEST(ExperimentsConfig, SharesMaySumToOneWithinRounding) {
  std::string toml = "[[experiments.layers]]\nname = \"l\"\nsalt = \"s\"\n";
  for (int i = 0; i < 10; ++i)
    toml += "[[experiments.layers.arms]]\nname = \"a" + std::to_string(i) + "\"\nshare = 0.1\n";
  EXPECT_EQ(Refusal(toml), "");
}

std::string OneLayer(const std::string& arms, const std::string& layer_extra = "") {
  return "[[experiments.layers]]\nname = \"l\"\nsalt = \"s\"\n" + layer_extra + arms;
}

TEST(ExperimentsConfig, RefusesAShareOutsideTheUnitIntervalByItsFullName) {
  const std::string msg =
      Refusal(OneLayer("[[experiments.layers.arms]]\nname = \"a\"\nshare = 1.5\n"
                       "[[experiments.layers.arms]]\nname = \"b\"\nshare = -0.5\n"));
  EXPECT_NE(msg.find("'experiments.layers[0].arms[0].share': must be in [0, 1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'experiments.layers[0].arms[1].share': must be in [0, 1]"), std::string::npos) << msg;
}

TEST(ExperimentsConfig, RefusesSharesThatDoNotSumToOne) {
  const std::string msg = Refusal(
      "[[experiments.layers]]\nname = \"a\"\nsalt = \"sa\"\n[[experiments.layers.arms]]\nname = \"x\"\nshare = 1.0\n"
      "[[experiments.layers]]\nname = \"b\"\nsalt = \"sb\"\n"
      "[[experiments.layers.arms]]\nname = \"x\"\nshare = 0.5\n"
      "[[experiments.layers.arms]]\nname = \"y\"\nshare = 0.49\n");
  EXPECT_NE(msg.find("'experiments.layers[1].arms': the arms' shares sum to 0.99, not 1"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("experiments.layers[0]"), std::string::npos) << msg;
}

TEST(ExperimentsConfig, RefusesTwoLayersWithOneNameOrOneSalt) {
  const std::string layer = "[[experiments.layers.arms]]\nname = \"x\"\nshare = 1\n";
  const std::string msg = Refusal("[[experiments.layers]]\nname = \"a\"\nsalt = \"s1\"\n" + layer +
                                  "[[experiments.layers]]\nname = \"b\"\nsalt = \"s1\"\n" + layer +
                                  "[[experiments.layers]]\nname = \"a\"\nsalt = \"s2\"\n" + layer);
  EXPECT_NE(msg.find("'experiments.layers[1].salt': 's1' is also the salt of experiments.layers[0]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'experiments.layers[2].name': 'a' is also the name of experiments.layers[0]"), std::string::npos)
      << msg;
}

TEST(ExperimentsConfig, RefusesALayerSaltEqualToTheHoldoutSalt) {
  const std::string msg = Refusal("[experiments]\nholdout_share = 0.1\nholdout_salt = \"s\"\n" +
                                  OneLayer("[[experiments.layers.arms]]\nname = \"x\"\nshare = 1\n"));
  EXPECT_NE(msg.find("'experiments.layers[0].salt': 's' is also experiments.holdout_salt"), std::string::npos) << msg;
}

TEST(ExperimentsConfig, RefusesTwoArmsWithOneNameInALayer) {
  const std::string msg =
      Refusal(OneLayer("[[experiments.layers.arms]]\nname = \"x\"\nshare = 0.5\n"
                       "[[experiments.layers.arms]]\nname = \"x\"\nshare = 0.5\n"));
  EXPECT_NE(msg.find("'experiments.layers[0].arms[1].name': 'x' is also the name of experiments.layers[0].arms[0]"),
            std::string::npos)
      << msg;
}

TEST(ExperimentsConfig, RefusesMissingNamesSaltsSharesAndArms) {
  const std::string msg = Refusal(
      "[[experiments.layers]]\n[[experiments.layers.arms]]\nshare = 1\n"
      "[[experiments.layers]]\nname = \"b\"\nsalt = \"sb\"\n"
      "[[experiments.layers]]\nname = \"c\"\nsalt = \"sc\"\n[[experiments.layers.arms]]\nname = \"x\"\n");
  for (const char* want : {"'experiments.layers[0].name': required", "'experiments.layers[0].salt': required",
                           "'experiments.layers[0].arms[0].name': required", "'experiments.layers[1].arms': required",
                           "'experiments.layers[2].arms[0].share': required"}) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << " in " << msg;
  }
}

TEST(ExperimentsConfig, RefusesUnknownKeysAtEveryLevel) {
  const std::string msg =
      Refusal("[experiments]\nholdout = 0.1\n" +
              OneLayer("[[experiments.layers.arms]]\nname = \"x\"\nshare = 1\ncolour = \"red\"\n", "shares = [1]\n"));
  for (const char* want : {"unknown key 'experiments.holdout'", "unknown key 'experiments.layers[0].shares'",
                           "unknown key 'experiments.layers[0].arms[0].colour'"}) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << " in " << msg;
  }
}

TEST(ExperimentsConfig, OverrideSettingsNoModuleReadAreRefused) {
  // The arm's [serving] and [policy] tables are read by those modules' readers
  // (serving::ResolveExperiments); a setting nobody reads is an unknown key.
  const std::string msg = Refusal(
      OneLayer("[[experiments.layers.arms]]\nname = \"x\"\nshare = 1\n"
               "[experiments.layers.arms.serving]\nw_convert = 1\n[experiments.layers.arms.policy]\nfoo = 1\n"));
  EXPECT_NE(msg.find("unknown key 'experiments.layers[0].arms[0].serving.w_convert'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key 'experiments.layers[0].arms[0].policy.foo'"), std::string::npos) << msg;
}

TEST(ExperimentsConfig, RefusesABadControlAHoldoutShareOutsideTheUnitIntervalAndEmptyNames) {
  const std::string msg = Refusal(
      "[experiments]\nholdout_share = 1.2\n" +
      OneLayer("[[experiments.layers.arms]]\nname = \"x\"\nshare = 0.5\ncontrol = 3\n"
               "[[experiments.layers.arms]]\nname = \"y\"\nshare = 0.5\ncontrol = [\"\"]\nmodel_version = \"\"\n"));
  for (const char* want : {"'experiments.holdout_share': must be in [0, 1]",
                           "'experiments.layers[0].arms[0].control': must be true/false or an array of channel names",
                           "'experiments.layers[0].arms[1].control': a channel name cannot be empty",
                           "'experiments.layers[0].arms[1].model_version': cannot be empty"}) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << " in " << msg;
  }
}

}  // namespace
}  // namespace qm::experiment
