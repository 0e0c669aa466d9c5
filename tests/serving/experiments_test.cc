// [experiments] in the engine (issue 17): each arm's [serving] / [policy] overrides read by those
// sections' own readers, and the request path: arms named in reasons and debug, an arm's serving
// settings for its customers, no marketing for the holdout and control arms (service still goes),
// an arm's push cap in push runs.
#include "qianmian/serving/experiments.h"

#include <gtest/gtest.h>

#include <string>

#include "qianmian/experiment/assignment.h"
#include "testing/engine_fixture.h"

namespace qm::serving {
namespace {

using testing::EngineTest;
using testing::kNow;

// Reads [serving], [policy] and [experiments] as tools' LoadEngineConfig does; the error message
// ("" when the file was accepted).
std::string ReadAll(const std::string& toml, ServingConfig* sc, policy::PolicyConfig* pc, Experiments* ex) {
  auto f = ConfigFile::Parse(toml);
  if (!f.ok()) return f.status().ToString();
  ReadServingConfig(f->Root().Table("serving"), sc);
  policy::ReadPolicyConfig(f->Root().Table("policy"), pc);
  ReadExperiments(f->Root().Table("experiments"), *sc, *pc, ex);
  Status st = f->Finish();
  return st.ok() ? "" : st.ToString();
}

std::string Refusal(const std::string& toml) {
  ServingConfig sc;
  policy::PolicyConfig pc;
  Experiments ex;
  return ReadAll(toml, &sc, &pc, &ex);
}

const char* kLayer = "[[experiments.layers]]\nname = \"l\"\nsalt = \"s\"\n";

TEST(Experiments, AnArmsOverridesAreOverlaidOnTheBaseSettings) {
  ServingConfig sc;
  policy::PolicyConfig pc;
  Experiments ex;
  const std::string toml = std::string("[serving]\nw_convert = 0.5\nexplore_share = 0.1\n") + kLayer +
                           "[[experiments.layers.arms]]\nname = \"base\"\nshare = 0.5\n"
                           "[[experiments.layers.arms]]\nname = \"quiet\"\nshare = 0.5\n"
                           "[experiments.layers.arms.serving]\nexplore_share = 0\n"
                           "[[experiments.layers.arms.policy.caps]]\nscope = \"customer_channel\"\n"
                           "channel = \"wechat_push\"\nlimit = 2\nwindow = \"7d\"\n";
  ASSERT_EQ(ReadAll(toml, &sc, &pc, &ex), "");
  ASSERT_EQ(ex.arms.size(), 1u);
  ASSERT_EQ(ex.arms[0].size(), 2u);
  EXPECT_FALSE(ex.arms[0][0].serving.has_value());
  EXPECT_FALSE(ex.arms[0][0].policy.has_value());
  ASSERT_TRUE(ex.arms[0][1].serving.has_value());
  EXPECT_DOUBLE_EQ(ex.arms[0][1].serving->explore_share, 0.0);
  EXPECT_DOUBLE_EQ(ex.arms[0][1].serving->w_convert, 0.5);  // the base's, not the default
  ASSERT_TRUE(ex.arms[0][1].policy.has_value());
  ASSERT_EQ(ex.arms[0][1].policy->caps.size(), 1u);  // [[policy.caps]] replaces the caps, as in [policy]
  EXPECT_EQ(ex.arms[0][1].policy->caps[0].limit, 2);
  EXPECT_EQ(ex.arms[0][1].policy->cooldowns.size(), pc.cooldowns.size());
}

TEST(Experiments, UnknownOrBadOverridesAreRefusedByTheSectionsOwnReaders) {
  const std::string msg =
      Refusal(std::string(kLayer) + "[[experiments.layers.arms]]\nname = \"a\"\nshare = 1\n" +
              "[experiments.layers.arms.serving]\nw_clik = 1\nexplore_share = 2\nranker = \"x.pt\"\n"
              "[experiments.layers.arms.policy]\nreserve_channels = []\nsuitability_max_age = 0\n"
              "[[experiments.layers.arms.policy.caps]]\nscope = \"customer_planet\"\nlimit = 1\nwindow = \"7d\"\n");
  for (const char* want : {
           "unknown key 'experiments.layers[0].arms[0].serving.w_clik'",
           "'experiments.layers[0].arms[0].serving.explore_share': must be in [0, 1]",
           "'experiments.layers[0].arms[0].serving.ranker': fixed when the engine opens",
           "'experiments.layers[0].arms[0].policy.reserve_channels': fixed when the engine opens",
           "'experiments.layers[0].arms[0].policy.suitability_max_age': must be positive",
           "'experiments.layers[0].arms[0].policy.caps[0].scope': unknown scope 'customer_planet'",
       }) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << " in " << msg;
  }
}

class ExperimentsEngineTest : public EngineTest {
 protected:
  // An engine over the shared bank with `toml`'s [experiments].
  Engine& OpenWith(const std::string& toml) {
    EngineOptions o = testing::OptionsFor(scratch_);
    const std::string msg = ReadAll(toml, &o.serving, &o.policy, &o.experiments);
    EXPECT_EQ(msg, "");
    return Open(std::move(o));
  }
  std::vector<std::string> Customers(size_t n) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n && i < testing::SharedBank().customers.size(); ++i) {
      ids.push_back(testing::SharedBank().customers[i].id);
    }
    return ids;
  }
  bool IsService(const std::string& item_id) {
    const Dataset& ds = testing::SharedBank();
    return ds.items[*ds.FindItem(item_id)].service;
  }
};

bool HasReason(const ResponseItem& it, const std::string& reason) {
  return std::find(it.reasons.begin(), it.reasons.end(), reason) != it.reasons.end();
}

TEST_F(ExperimentsEngineTest, WithoutExperimentsNoArmIsNamed) {
  Open();
  const Response r = Recommend(Customers(1)[0]);
  ASSERT_FALSE(r.items.empty());
  EXPECT_TRUE(r.debug.arms.empty());
  for (const ResponseItem& it : r.items) {
    for (const std::string& reason : it.reasons) EXPECT_EQ(reason.find("experiment:"), std::string::npos);
  }
}

TEST_F(ExperimentsEngineTest, EachCustomerGetsItsArmsSettingsAndTheArmIsNamed) {
  OpenWith(std::string(kLayer) +
           "[[experiments.layers.arms]]\nname = \"base\"\nshare = 0.5\n"
           "[[experiments.layers.arms]]\nname = \"few\"\nshare = 0.5\n"
           "[experiments.layers.arms.serving]\nann_products = 3\n");
  experiment::ExperimentsConfig c;
  c.layers.resize(1);
  c.layers[0].salt = "s";
  c.layers[0].arms.resize(2);
  c.layers[0].arms[0].share = c.layers[0].arms[1].share = 0.5;
  const experiment::Assigner assigner(c);
  int seen[2] = {0, 0};
  for (const std::string& id : Customers(40)) {
    const Response r = Recommend(id);
    const int arm = assigner.Assign(id).arms[0];
    ++seen[arm];
    const std::string label = arm == 0 ? "l=base" : "l=few";
    EXPECT_EQ(r.debug.arms, std::vector<std::string>{label}) << id;
    ASSERT_FALSE(r.items.empty()) << id;
    for (const ResponseItem& it : r.items) EXPECT_TRUE(HasReason(it, "experiment:" + label)) << id;
    if (r.debug.known_customer) {
      const int64_t ann = r.debug.counts.at("recall.ann_products");
      if (arm == 1)
        EXPECT_LE(ann, 3) << id;
      else
        EXPECT_GT(ann, 3) << id;
    }
  }
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
}

TEST_F(ExperimentsEngineTest, TheGlobalHoldoutGetsNoMarketingItem) {
  OpenWith("[experiments]\nholdout_share = 1.0\n");
  int64_t withheld = 0;
  for (const std::string& id : Customers(20)) {
    const Response r = Recommend(id);
    EXPECT_EQ(r.debug.arms, std::vector<std::string>{"holdout"});
    for (const ResponseItem& it : r.items) {
      EXPECT_TRUE(IsService(it.item_id)) << it.item_id;
      EXPECT_TRUE(HasReason(it, "experiment:holdout"));
    }
    if (r.debug.dropped.count("experiment.holdout")) withheld += r.debug.dropped.at("experiment.holdout");
  }
  EXPECT_GT(withheld, 0);
}

TEST_F(ExperimentsEngineTest, AControlArmWithholdsMarketingOnlyOnItsChannels) {
  OpenWith(std::string(kLayer) +
           "[[experiments.layers.arms]]\nname = \"control\"\nshare = 1\ncontrol = [\"app_home\"]\n");
  const std::string id = Customers(1)[0];
  const Response home = Recommend(id);
  for (const ResponseItem& it : home.items) EXPECT_TRUE(IsService(it.item_id)) << it.item_id;
  EXPECT_GT(home.debug.dropped.at("experiment.control"), 0);
  const Response banner = Recommend(id, 5, "wechat_push");
  ASSERT_TRUE(banner.status.ok()) << banner.status.ToString();
  EXPECT_EQ(banner.debug.dropped.count("experiment.control"), 0u);
  bool marketing = false;
  for (const ResponseItem& it : banner.items) marketing = marketing || !IsService(it.item_id);
  EXPECT_TRUE(marketing);
}

TEST_F(ExperimentsEngineTest, ScoreSaysAMarketingItemIsWithheldFromAHoldoutCustomer) {
  Engine& e = OpenWith("[experiments]\nholdout_share = 1.0\n");
  const Dataset& ds = testing::SharedBank();
  std::vector<std::string> items;
  for (size_t i = 0; i < ds.items.size() && items.size() < 40; ++i) items.push_back(ds.items[i].id);
  auto scores = e.Score(Customers(1)[0], "app_home", items, kNow);
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  int withheld = 0;
  for (const ItemScore& s : *scores) {
    const bool held = std::find(s.blocked_by.begin(), s.blocked_by.end(), "experiment.holdout") != s.blocked_by.end();
    EXPECT_EQ(held, !IsService(s.item_id)) << s.item_id;
    EXPECT_FALSE(held && s.eligible);
    withheld += held ? 1 : 0;
  }
  EXPECT_GT(withheld, 0);
}

TEST_F(ExperimentsEngineTest, AnUnknownControlChannelOrModelVersionIsRefusedAtOpenByItsKey) {
  EngineOptions o = testing::OptionsFor(scratch_);
  ASSERT_EQ(ReadAll(std::string(kLayer) + "[[experiments.layers.arms]]\nname = \"c\"\nshare = 1\ncontrol = [\"fax\"]\n",
                    &o.serving, &o.policy, &o.experiments),
            "");
  auto e = Engine::Open(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'experiments.layers[0].arms[0].control': unknown channel 'fax'"),
            std::string::npos)
      << e.status().ToString();
  EngineOptions v = testing::OptionsFor(scratch_);
  ASSERT_EQ(
      ReadAll(std::string(kLayer) + "[[experiments.layers.arms]]\nname = \"c\"\nshare = 1\nmodel_version = \"nope\"\n",
              &v.serving, &v.policy, &v.experiments),
      "");
  auto ev = Engine::Open(v);
  ASSERT_FALSE(ev.ok());
  EXPECT_NE(ev.status().message().find("'experiments.layers[0].arms[0].model_version': no version 'nope'"),
            std::string::npos)
      << ev.status().ToString();
}

TEST_F(ExperimentsEngineTest, PushRunsSkipTheHoldoutAndApplyEachArmsPushCap) {
  // Half the customers in the holdout; the others split between an arm that may not be pushed at
  // all (its cap: 0 a week) and one with the base policy.
  Engine& e = OpenWith("[experiments]\nholdout_share = 0.5\n" + std::string(kLayer) +
                       "[[experiments.layers.arms]]\nname = \"none\"\nshare = 0.5\n"
                       "[[experiments.layers.arms.policy.caps]]\nname = \"push_weekly\"\nscope = \"customer_channel\"\n"
                       "channel = \"wechat_push\"\nlimit = 0\nwindow = \"7d\"\n"
                       "[[experiments.layers.arms]]\nname = \"base\"\nshare = 0.5\n");
  PushRequest req;
  req.customer_ids = Customers(60);
  req.now_ms = kNow;
  req.run_id = "run-exp";
  std::vector<PushChoice> choices;
  ASSERT_TRUE(e.Push(req, &choices).ok());
  int holdout = 0, capped = 0, sent = 0;  // capped: skipped by the arm's cap
  for (const PushChoice& c : choices) {
    ASSERT_FALSE(c.arms.empty());
    if (c.arms[0] == "holdout") {
      ++holdout;
      EXPECT_EQ(c.skipped_by, "experiment.holdout");
      EXPECT_TRUE(c.items.empty());
    } else if (c.arms[0] == "l=none") {
      EXPECT_TRUE(c.items.empty());  // by the cap, or by consent and the like before it
      capped += c.skipped_by == "cap.customer_channel" ? 1 : 0;
    } else {
      EXPECT_EQ(c.arms[0], "l=base");
      for (const ResponseItem& it : c.items) EXPECT_TRUE(HasReason(it, "experiment:l=base"));
      sent += c.items.empty() ? 0 : 1;
    }
  }
  EXPECT_GT(holdout, 0);
  EXPECT_GT(capped, 0);
  EXPECT_GT(sent, 0);
}

// The `report` op's engine side: every customer assigned, the push run's sends counted as the
// treated arm's contacts and its ghosts as the control arm's would-be contacts.
TEST_F(ExperimentsEngineTest, ReportCountsEachArmsContactsAndGhostsFromTheStore) {
  Engine& e = OpenWith("[experiments]\nholdout_share = 0.1\n" + std::string(kLayer) +
                       "[[experiments.layers.arms]]\nname = \"treated\"\nshare = 0.5\n"
                       "[[experiments.layers.arms]]\nname = \"control\"\nshare = 0.5\n"
                       "control = [\"wechat_push\"]\n");
  PushRequest req;
  req.customer_ids = Customers(200);
  req.now_ms = kNow;
  req.run_id = "run-report";
  std::vector<PushChoice> choices;
  ASSERT_TRUE(e.Push(req, &choices).ok());
  int64_t sent = 0;
  for (const PushChoice& c : choices) sent += static_cast<int64_t>(c.items.size());
  ASSERT_GT(sent, 0);
  auto r = e.Report("l", kNow - 1000, kNow + 1000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->arms.size(), 2u);
  EXPECT_EQ(r->arms[0].assigned + r->arms[1].assigned + r->holdout, e.num_customers());
  EXPECT_TRUE(r->arms[1].control);
  EXPECT_EQ(r->arms[0].metrics[experiment::kContacts].total, static_cast<double>(sent));
  EXPECT_EQ(r->arms[1].metrics[experiment::kContacts].total, 0.0);
  EXPECT_GT(r->arms[1].ghosted, 0);
  EXPECT_EQ(r->arms[0].ghosted, 0);
  EXPECT_FALSE(r->sample_ratio.mismatch);
  EXPECT_EQ(e.Report("nope", kNoTime, kNoTime).status().message(),
            "'experiment': no layer 'nope' in [experiments] (layers: l)");
  EXPECT_EQ(e.Report("l", kNow, kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ExperimentsEngineTest, AHoldoutCustomerMayStillGetServiceItemsInAPushRunThatIncludesThem) {
  Engine& e = OpenWith("[experiments]\nholdout_share = 1.0\n");
  PushRequest req;
  req.customer_ids = Customers(30);
  req.now_ms = kNow;
  req.dry_run = true;
  req.include_service = true;
  std::vector<PushChoice> choices;
  ASSERT_TRUE(e.Push(req, &choices).ok());
  size_t service_sends = 0;
  for (const PushChoice& c : choices) {
    for (const ResponseItem& it : c.items) EXPECT_TRUE(IsService(it.item_id)) << it.item_id;
    service_sends += c.items.size();
    EXPECT_EQ(c.arms, std::vector<std::string>{"holdout"});
  }
  EXPECT_GT(service_sends, 0u);
}

}  // namespace
}  // namespace qm::serving
