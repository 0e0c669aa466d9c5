// Experiment arms pinned to a model version (issue 17) and reloads of the experiment definition:
// the engine holds the current version and every version an arm names, each verified as the
// current one is; a customer in a pinned arm is served (recommend, push, decisions) by it; a
// reload swaps the definition and its versions atomically or refuses it, naming the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qianmian/experiment/assignment.h"
#include "qianmian/serving/engine.h"
#include "qianmian/serving/experiments.h"
#include "testing/engine_fixture.h"

namespace qm::serving {
namespace {

namespace fs = std::filesystem;
using testing::EngineTest;
using testing::kNow;
using testing::SharedFixture;

// [experiments] of `toml` resolved on the default [serving] / [policy]; "" in *error when read.
Experiments Read(const std::string& toml, std::string* error = nullptr) {
  Experiments ex;
  auto f = ConfigFile::Parse(toml);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  ReadExperiments(f->Root().Table("experiments"), ServingConfig(), policy::PolicyConfig(), &ex);
  const Status st = f->Finish();
  if (error) {
    *error = st.ok() ? "" : st.message();
  } else {
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return ex;
}

// One layer "l" (salt "s") with arms "cur" and "old"; "old" pins `old_version` ("" = none).
std::string TwoArms(const std::string& old_version, const std::string& salt = "s") {
  std::string t = "[[experiments.layers]]\nname = \"l\"\nsalt = \"" + salt +
                  "\"\n"
                  "[[experiments.layers.arms]]\nname = \"cur\"\nshare = 0.5\n"
                  "[[experiments.layers.arms]]\nname = \"old\"\nshare = 0.5\n";
  if (!old_version.empty()) t += "model_version = \"" + old_version + "\"\n";
  return t;
}

class ArmVersionsTest : public EngineTest {
 protected:
  Engine& OpenWith(const std::string& toml, const std::string& artifacts = "") {
    EngineOptions o = testing::OptionsFor(scratch_);
    if (!artifacts.empty()) o.artifacts_root = artifacts;
    o.experiments = Read(toml);
    return Open(std::move(o));
  }
  static std::vector<std::string> Customers(size_t n) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n && i < testing::SharedBank().customers.size(); ++i) {
      ids.push_back(testing::SharedBank().customers[i].id);
    }
    return ids;
  }
  // The arm of `id` in layer "l" with salt `salt` (0 = "cur", 1 = "old"), as the engine assigns.
  static int ArmOf(const std::string& id, const std::string& salt = "s") {
    return static_cast<int>(experiment::UnitValue(id, salt) >= 0.5);
  }
  std::string CopyArtifacts() {
    const std::string root = scratch_ + "/art";
    fs::copy(SharedFixture().artifacts, root, fs::copy_options::recursive);
    return root;
  }
  // The versions of each recommend reply for `ids` (non-dry-run pages, recorded in the log).
  std::vector<std::string> ServedVersions(const std::vector<std::string>& ids, const std::string& tag) {
    std::vector<std::string> out;
    for (const std::string& id : ids) out.push_back(Recommend(id, 4, "app_home", false, tag + id).model_version);
    return out;
  }
};

TEST_F(ArmVersionsTest, ACustomerInAnArmPinnedToAnOlderVersionIsServedAndLoggedWithIt) {
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  Engine& e = OpenWith(TwoArms(v1));
  EXPECT_EQ(e.model_version(), v2);
  const std::vector<std::string> ids = Customers(40);
  const std::vector<std::string> served = ServedVersions(ids, "page-");
  int seen[2] = {0, 0};
  for (size_t k = 0; k < ids.size(); ++k) {
    const int arm = ArmOf(ids[k]);
    ++seen[arm];
    const std::string want = arm == 1 ? v1 : v2;
    EXPECT_EQ(served[k], want) << ids[k];
    auto h = e.History(ids[k], 0, 100, kNow);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ASSERT_FALSE(h->decisions.empty()) << ids[k];
    for (const policy::DecisionRecord& d : h->decisions) {
      EXPECT_EQ(d.model_version, want) << ids[k];
      EXPECT_EQ(d.arms, std::vector<std::string>{arm == 1 ? "l=old" : "l=cur"});
    }
  }
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  // score ranks with the customer's version too (here: it answers for both arms).
  for (const std::string& id : {ids[0], ids[1]}) {
    auto s = e.Score(id, "app_home", {testing::SharedBank().items[0].id}, kNow);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
}

TEST_F(ArmVersionsTest, APushRunMixingVersionsRecordsEachSendWithItsCustomersVersion) {
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  Engine& e = OpenWith(TwoArms(v1));
  PushRequest req;
  req.customer_ids = Customers(80);
  req.now_ms = kNow;
  req.run_id = "run-versions";
  std::vector<PushChoice> choices;
  ASSERT_TRUE(e.Push(req, &choices).ok());
  ASSERT_EQ(choices.size(), req.customer_ids.size());
  int sent[2] = {0, 0};
  for (size_t k = 0; k < choices.size(); ++k) {
    const std::string& id = req.customer_ids[k];
    const int arm = ArmOf(id);
    EXPECT_EQ(choices[k].arms, std::vector<std::string>{arm == 1 ? "l=old" : "l=cur"}) << id;
    if (choices[k].items.empty()) continue;
    ++sent[arm];
    auto d = e.store()->Decisions(id, 0, 100);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ(d->size(), choices[k].items.size()) << id;
    for (const policy::DecisionRecord& r : *d) EXPECT_EQ(r.model_version, arm == 1 ? v1 : v2) << id;
  }
  EXPECT_GT(sent[0], 0);
  EXPECT_GT(sent[1], 0);
}

TEST_F(ArmVersionsTest, CatalogueChangesReachEveryLoadedVersion) {
  const std::string v1 = SharedFixture().v1;
  Engine& e = OpenWith(TwoArms(v1));
  std::string old_customer;
  for (const std::string& id : Customers(40)) {
    if (ArmOf(id) == 1) old_customer = id;
  }
  ASSERT_FALSE(old_customer.empty());
  // A retired item leaves the pinned version's pages too.
  const Response before = Recommend(old_customer, 4);
  ASSERT_EQ(before.model_version, v1);
  ASSERT_FALSE(before.items.empty());
  const std::string top = before.items[0].item_id;
  ASSERT_TRUE(e.RetireItems({top}).ok());
  const Response after = Recommend(old_customer, 4);
  EXPECT_EQ(after.model_version, v1);
  for (const ResponseItem& it : after.items) EXPECT_NE(it.item_id, top);
  // A new item is embedded by the pinned version's item tower and scored by its ranker.
  ASSERT_TRUE(e.UpsertItems({{{"item_id", "NEW-PINNED"},
                              {"kind", "content"},
                              {"title", "理财知识"},
                              {"text", "理财 规划"},
                              {"category", "education"}}})
                  .ok());
  auto s = e.Score(old_customer, "app_home", {"NEW-PINNED"}, kNow);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)[0].blocked_by.empty() || (*s)[0].blocked_by[0] != "not_found");
  EXPECT_GT((*s)[0].p_click, 0.0f);
}

TEST_F(ArmVersionsTest, ReloadingTheCurrentVersionKeepsTheArmsPinnedVersions) {
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  Engine& e = OpenWith(TwoArms(v1));
  const std::vector<std::string> ids = Customers(20);
  for (const std::string& version : {v2, v1, std::string()}) {
    auto r = e.Reload(version);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::string current = version.empty() ? v2 : version;
    EXPECT_EQ(*r, current);
    for (const std::string& id : ids) {
      EXPECT_EQ(Recommend(id, 4).model_version, ArmOf(id) == 1 ? v1 : current) << id << " after reload " << version;
    }
  }
}

TEST_F(ArmVersionsTest, AnArmVersionThatFailsVerificationIsRefusedAtOpenByItsKey) {
  const std::string root = CopyArtifacts();
  std::ofstream(root + "/" + SharedFixture().v1 + "/ranker.pt", std::ios::app) << "x";
  EngineOptions o = testing::OptionsFor(scratch_);
  o.artifacts_root = root;
  o.experiments = Read(TwoArms(SharedFixture().v1));
  auto e = Engine::Open(std::move(o));
  ASSERT_FALSE(e.ok());
  const std::string msg = e.status().message();
  EXPECT_NE(msg.find("'experiments.layers[0].arms[1].model_version': version '" + SharedFixture().v1 + "' refused"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("ranker.pt"), std::string::npos) << msg;
}

TEST_F(ArmVersionsTest, ReloadingTheDefinitionSwapsArmsAndVersionsAndKeepsAssignmentsWithTheSameSalt) {
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  Engine& e = OpenWith(TwoArms(""));
  const std::vector<std::string> ids = Customers(30);
  for (const std::string& id : ids) EXPECT_EQ(Recommend(id, 4).model_version, v2) << id;
  // Same salt, the "old" arm now pinned to v1: every customer keeps its arm, "old" gets v1.
  ASSERT_TRUE(e.ReloadExperiments(Read(TwoArms(v1))).ok());
  for (const std::string& id : ids) {
    const Response r = Recommend(id, 4);
    EXPECT_EQ(r.debug.arms, std::vector<std::string>{ArmOf(id) == 1 ? "l=old" : "l=cur"}) << id;
    EXPECT_EQ(r.model_version, ArmOf(id) == 1 ? v1 : v2) << id;
  }
  // A refused definition leaves the previous one, and its pinned version, serving.
  const Status refused = e.ReloadExperiments(Read(TwoArms("nope", "s3")));
  EXPECT_NE(refused.message().find("'experiments.layers[0].arms[1].model_version'"), std::string::npos)
      << refused.ToString();
  for (const std::string& id : ids) EXPECT_EQ(Recommend(id, 4).model_version, ArmOf(id) == 1 ? v1 : v2) << id;
  // Another salt: arms follow the new salt.
  ASSERT_TRUE(e.ReloadExperiments(Read(TwoArms(v1, "s2"))).ok());
  for (const std::string& id : ids) {
    EXPECT_EQ(Recommend(id, 4).debug.arms, std::vector<std::string>{ArmOf(id, "s2") == 1 ? "l=old" : "l=cur"}) << id;
  }
  // A version and a definition in one swap.
  auto both = e.Reload(v1, Read(TwoArms("")));
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  for (const std::string& id : ids) EXPECT_EQ(Recommend(id, 4).model_version, v1) << id;
}

TEST_F(ArmVersionsTest, ABadDefinitionIsRefusedByItsKeyAndThePreviousOneKeepsServing) {
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  const std::string root = CopyArtifacts();
  std::ofstream(root + "/" + v1 + "/ranker.pt", std::ios::app) << "x";  // v1 now fails verification
  Engine& e = OpenWith(TwoArms(""), root);
  // An unknown version, a version failing verification, a control channel the bank does not have.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {TwoArms("nope"), "'experiments.layers[0].arms[1].model_version': no version 'nope'"},
      {TwoArms(v1), "'experiments.layers[0].arms[1].model_version': version '" + v1 + "' refused"},
      {TwoArms("") + "control = [\"fax\"]\n", "'experiments.layers[0].arms[1].control': unknown channel 'fax'"},
  };
  const std::vector<std::string> ids = Customers(20);
  for (const auto& [toml, want] : bad) {
    Status st = e.ReloadExperiments(Read(toml));
    ASSERT_FALSE(st.ok()) << toml;
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
    auto r = e.Reload(v2, Read(toml));  // with a version: neither changes
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
    for (const std::string& id : ids) {
      const Response resp = Recommend(id, 4);
      EXPECT_EQ(resp.debug.arms, std::vector<std::string>{ArmOf(id) == 1 ? "l=old" : "l=cur"}) << id;
      EXPECT_EQ(resp.model_version, v2) << id;
    }
  }
  // Shares not summing to 1 and duplicate salts never reach the engine: the reader refuses them.
  std::string error;
  Read(TwoArms("") +
           "[[experiments.layers]]\nname = \"m\"\nsalt = \"s\"\n"
           "[[experiments.layers.arms]]\nname = \"a\"\nshare = 0.7\n",
       &error);
  EXPECT_NE(error.find("'experiments.layers[1].salt': 's' is also the salt of experiments.layers[0]"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("'experiments.layers[1].arms': the arms' shares sum to 0.7, not 1"), std::string::npos) << error;
}

}  // namespace
}  // namespace qm::serving
