// The decision log in the engine (issue 17, SPEC §7): a served page records one decision per item
// with its position, score, probabilities, model version, arms and reasons; a dry run records
// nothing; a push run records its sends and, for customers in a control arm of the channel, the
// sends it would have made (ghosts): never sent, never counted against a cap or reserved.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "qianmian/serving/engine.h"
#include "qianmian/serving/experiments.h"
#include "testing/engine_fixture.h"

namespace qm::serving {
namespace {

using testing::EngineTest;
using testing::kNow;

class DecisionLogTest : public EngineTest {
 protected:
  Engine& OpenWith(const std::string& toml) {
    EngineOptions o = testing::OptionsFor(scratch_);
    auto f = ConfigFile::Parse(toml);
    EXPECT_TRUE(f.ok());
    ReadExperiments(f->Root().Table("experiments"), o.serving, o.policy, &o.experiments);
    EXPECT_TRUE(f->Finish().ok());
    return Open(std::move(o));
  }
  std::vector<std::string> Customers(size_t n) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n && i < testing::SharedBank().customers.size(); ++i) {
      ids.push_back(testing::SharedBank().customers[i].id);
    }
    return ids;
  }
  std::vector<policy::DecisionRecord> Decisions(const std::string& customer) {
    auto d = engine_->store()->Decisions(customer, 0, 1000);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : std::vector<policy::DecisionRecord>{};
  }
};

const char* kHomeLayer =
    "[[experiments.layers]]\nname = \"home\"\nsalt = \"h\"\n"
    "[[experiments.layers.arms]]\nname = \"a\"\nshare = 0.5\n"
    "[[experiments.layers.arms]]\nname = \"b\"\nshare = 0.5\n";

TEST_F(DecisionLogTest, AServedPageRecordsEachItemWithItsPositionVersionArmsAndReasons) {
  OpenWith(kHomeLayer);
  const std::string id = Customers(1)[0];
  const Response r = Recommend(id, 6, "app_home", /*dry_run=*/false, "page-1");
  ASSERT_FALSE(r.items.empty());
  std::vector<policy::DecisionRecord> log = Decisions(id);
  ASSERT_EQ(log.size(), r.items.size());
  std::sort(log.begin(), log.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  for (size_t j = 0; j < log.size(); ++j) {
    const policy::DecisionRecord& d = log[j];
    EXPECT_EQ(d.kind, policy::DecisionKind::kServed);
    EXPECT_EQ(d.position, static_cast<int>(j));
    EXPECT_EQ(d.item_id, r.items[j].item_id);
    EXPECT_EQ(d.request_id, "page-1");
    EXPECT_EQ(d.customer_id, id);
    EXPECT_EQ(d.channel, "app_home");
    EXPECT_EQ(d.ts, kNow);
    EXPECT_EQ(d.model_version, r.model_version);
    EXPECT_FALSE(d.model_version.empty());
    EXPECT_EQ(d.arms, r.debug.arms);
    ASSERT_EQ(d.arms.size(), 1u);
    EXPECT_EQ(d.reasons, r.items[j].reasons) << "the reply's reason codes";
    EXPECT_DOUBLE_EQ(d.score, r.items[j].score);
    EXPECT_GT(d.p_click, 0.f);
    char pc[64];
    std::snprintf(pc, sizeof pc, "rank:p_click=%.4f", d.p_click);
    EXPECT_NE(std::find(d.reasons.begin(), d.reasons.end(), pc), d.reasons.end()) << pc;
  }
  // `history` returns them beside the events.
  auto h = engine_->History(id, 0, 100, kNow + 1);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->decisions.size(), r.items.size());
  EXPECT_TRUE(engine_->History(id, kNow + 1, 100, kNow + 1)->decisions.empty()) << "since_ms filters them";
}

TEST_F(DecisionLogTest, ADryRunRecordsNothing) {
  Open();
  const std::string id = Customers(2)[1];
  const Response r = Recommend(id, 5, "app_home", /*dry_run=*/true);
  ASSERT_FALSE(r.items.empty());
  EXPECT_TRUE(Decisions(id).empty());
  EXPECT_EQ(r.debug.stage_us.count("record"), 0u);
  PushRequest req;
  req.customer_ids = Customers(10);
  req.now_ms = kNow;
  req.dry_run = true;
  std::vector<PushChoice> choices;
  ASSERT_TRUE(engine_->Push(req, &choices).ok());
  for (const std::string& c : req.customer_ids) EXPECT_TRUE(Decisions(c).empty()) << c;
}

TEST_F(DecisionLogTest, PushSendsAreRecordedAndControlCustomersGetGhostsNeverCounted) {
  Engine& e = OpenWith(
      "[[experiments.layers]]\nname = \"push\"\nsalt = \"p\"\n"
      "[[experiments.layers.arms]]\nname = \"control\"\nshare = 0.5\ncontrol = [\"wechat_push\"]\n"
      "[[experiments.layers.arms]]\nname = \"treat\"\nshare = 0.5\n");
  PushRequest req;
  req.customer_ids = Customers(60);
  req.now_ms = kNow;
  req.run_id = "run-1";
  std::vector<PushChoice> first;
  ASSERT_TRUE(e.Push(req, &first).ok());
  // An hour later: the 4-hour push cooldown blocks every customer who was really sent something.
  req.now_ms = kNow + kMsPerHour;
  req.run_id = "run-2";
  std::vector<PushChoice> second;
  ASSERT_TRUE(e.Push(req, &second).ok());
  int sent = 0, ghosted_twice = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    const std::string& id = req.customer_ids[i];
    const std::vector<policy::DecisionRecord> log = Decisions(id);
    std::map<std::string, std::vector<const policy::DecisionRecord*>> by_run;
    for (const auto& d : log) by_run[d.request_id].push_back(&d);
    for (auto& [run, list] : by_run) {
      std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) { return a->position < b->position; });
    }
    if (first[i].arms == std::vector<std::string>{"push=control"}) {
      EXPECT_EQ(first[i].skipped_by, "experiment.control");
      EXPECT_TRUE(first[i].items.empty()) << "nothing sent to a control customer";
      for (const auto& d : log) {
        EXPECT_EQ(d.kind, policy::DecisionKind::kGhost);
        EXPECT_EQ(d.arms, first[i].arms);
        EXPECT_NE(std::find(d.reasons.begin(), d.reasons.end(), "experiment:push=control"), d.reasons.end());
      }
      for (const auto& rec : e.store()->State(id)->records) {
        EXPECT_NE(rec.type, EventType::kPushSent) << "a ghost is never counted";
      }
      EXPECT_TRUE(e.store()->Log(id, 0, 100)->empty()) << "a ghost is never sent";
      if (by_run["run-1"].size() == 1 && by_run["run-2"].size() == 1) ++ghosted_twice;
      continue;
    }
    ASSERT_EQ(first[i].arms, std::vector<std::string>{"push=treat"});
    ASSERT_EQ(by_run["run-1"].size(), first[i].items.size()) << id;
    for (size_t j = 0; j < first[i].items.size(); ++j) {
      const policy::DecisionRecord& d = *by_run["run-1"][j];
      EXPECT_EQ(d.kind, policy::DecisionKind::kPushSend);
      EXPECT_EQ(d.item_id, first[i].items[j].item_id);
      EXPECT_EQ(d.reasons, first[i].items[j].reasons);
      EXPECT_EQ(d.ts, first[i].send_at[j]);
      EXPECT_EQ(d.channel, "wechat_push");
      ++sent;
    }
    if (!first[i].items.empty()) {
      EXPECT_TRUE(second[i].items.empty()) << "cooldown";
    }
    EXPECT_TRUE(by_run["run-2"].empty());
  }
  EXPECT_GT(sent, 0);
  EXPECT_GT(ghosted_twice, 0) << "ghosts use up no cooldown: a control customer is ghosted again an hour later";
}

TEST_F(DecisionLogTest, ReRunningAPushRunRecordsItsDecisionsOnce) {
  Engine& e = Open();
  PushRequest req;
  req.customer_ids = Customers(20);
  req.now_ms = kNow;
  req.run_id = "run-again";
  std::vector<PushChoice> choices;
  ASSERT_TRUE(e.Push(req, &choices).ok());
  ASSERT_TRUE(e.Push(req, &choices).ok());
  size_t sends = 0, logged = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    sends += choices[i].items.size();
    logged += Decisions(req.customer_ids[i]).size();
  }
  EXPECT_GT(sends, 0u);
  EXPECT_EQ(logged, sends);
}

}  // namespace
}  // namespace qm::serving
