// A campaign's occurrence through the engine (issue 18): only its content is sent, never more
// than its budget whatever the threads, its holdout gets ghosts and no sends, only the approved
// version of a scheduled or running campaign runs, and an occurrence run again sends nothing twice.
#include "qianmian/campaign/run.h"
#include "qianmian/campaign/report.h"
#include "qianmian/campaign/scheduler.h"
#include "qianmian/campaign/segments.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "testing/engine_fixture.h"

namespace qm::campaign {
namespace {

using serving::testing::EngineTest;
using serving::testing::kNow;

class CampaignRunTest : public EngineTest {
 protected:
  // A scheduled, approved campaign sending content of the category most content items have.
  Campaign Approved(const std::string& id) {
    Campaign c;
    c.definition.id = id;
    c.definition.audience = "all";
    engine_->WithDataset([&](const Dataset& ds) {
      std::map<uint32_t, int> n;
      for (const Item& it : ds.items) {
        if (it.kind == ItemKind::kContent && !it.service) ++n[it.category];
      }
      uint32_t best = 0;
      for (const auto& [cat, k] : n) {
        if (k > n[best]) best = cat;
      }
      c.definition.categories = {ds.categories.Name(best)};
    });
    c.definition.holdout = 0;
    c.state = State::kScheduled;
    c.approved_hash = c.hash();
    return c;
  }
  RunOptions Options(const std::string& occurrence, const std::string& out = "list.csv") {
    RunOptions o;
    o.occurrence = occurrence;
    o.now = kNow;
    o.out = scratch_ + "/" + out;
    o.threads = 4;
    o.progress = false;
    return o;
  }
  // The send list's (customer, item) rows.
  static std::vector<std::pair<std::string, std::string>> Rows(const std::string& path) {
    std::vector<std::pair<std::string, std::string>> out;
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      const size_t a = line.find(','), b = line.find(',', a + 1);
      out.emplace_back(line.substr(0, a), line.substr(a + 1, b - a - 1));
    }
    return out;
  }
};

TEST_F(CampaignRunTest, SendsOnlyItsContentAndNeverMoreThanItsBudget) {
  Open();
  Campaign c = Approved("tips");
  c.definition.budget_per_day = 37;
  c.approved_hash = c.hash();
  auto s = RunOccurrence(engine_.get(), c, Options("d1"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sends, 37) << "4 threads, batches of up to 256: the budget still holds exactly";
  EXPECT_EQ(s->run_id, "tips/d1");
  EXPECT_GT(s->skipped_by.at("campaign.budget"), 1000);
  const auto rows = Rows(scratch_ + "/list.csv");
  ASSERT_EQ(rows.size(), 37u);
  engine_->WithDataset([&](const Dataset& ds) {
    for (const auto& [customer, item] : rows) {
      const Item& it = ds.items[*ds.FindItem(item)];
      EXPECT_EQ(ds.categories.Name(it.category), c.definition.categories[0]) << item;
    }
  });
  EXPECT_GT(s->expected_clicks, 0);
  int64_t by_item = 0;
  for (const auto& [item, n] : s->items) by_item += n;
  EXPECT_EQ(by_item, 37);

  // The total budget: a second occurrence gets what the first left.
  c.definition.budget_total = 50;
  c.approved_hash = c.hash();
  c.occurrences["d1"] = 37;
  auto second = RunOccurrence(engine_.get(), c, Options("d2", "list2.csv"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->sends, 13);
  // The first occurrence again: its own sends do not count against it, and nothing is sent twice.
  auto again = RunOccurrence(engine_.get(), c, Options("d1", "again.csv"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->sends, 37);
  EXPECT_EQ(again->replayed, 37);
  EXPECT_EQ(Rows(scratch_ + "/again.csv"), rows);
}

// The campaign's own cap (one send a customer in 7 days) holds across its occurrences, atomically
// with the bank's caps; without it the bank's caps allow the same customers a second send.
TEST_F(CampaignRunTest, ItsOwnCapHoldsAcrossItsOccurrences) {
  Open();
  auto sent = [&](const std::string& path) {
    std::set<std::string> who;
    for (const auto& [customer, item] : Rows(path)) who.insert(customer);
    return who;
  };
  auto run = [&](const Campaign& c, const std::string& occurrence, TimeMs now) {
    RunOptions o = Options(occurrence, c.definition.id + "-" + occurrence + ".csv");
    o.now = now;
    auto s = RunOccurrence(engine_.get(), c, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::make_pair(s.ok() ? *s : push::PushSummary(), sent(o.out));
  };
  Campaign capped = Approved("capped");
  capped.definition.cap_per_customer = 1;
  capped.definition.cap_days = 7;
  capped.approved_hash = capped.hash();
  const auto [s1, first] = run(capped, "d1", kNow);
  const auto [s2, second] = run(capped, "d2", kNow + kMsPerDay);
  ASSERT_GT(first.size(), 100u);
  for (const std::string& who : second) EXPECT_EQ(first.count(who), 0u) << who << " was sent twice in 7 days";
  EXPECT_GE(s2.skipped_by.at("cap.customer_campaign"), static_cast<int64_t>(first.size()) / 2);
  // Without its own cap, the same campaign content reaches the same customers on the next day.
  Campaign open = Approved("open");
  const auto [u1, open_first] = run(open, "d3", kNow + 2 * kMsPerDay);
  const auto [u2, open_second] = run(open, "d4", kNow + 3 * kMsPerDay);
  size_t again = 0;
  for (const std::string& who : open_second) again += open_first.count(who);
  EXPECT_GT(again, open_first.size() / 2);

  // A week later the cap has room again.
  const auto [s3, third] = run(capped, "d8", kNow + 8 * kMsPerDay);
  EXPECT_GT(third.size(), first.size() / 2);

  // Longer than the store keeps contacts: refused before anything is reserved.
  Campaign month = Approved("month");
  month.definition.cap_per_customer = 1;
  month.definition.cap_days = 30;
  month.approved_hash = month.hash();
  auto refused = RunOccurrence(engine_.get(), month, Options("d1", "month.csv"));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("longer than the store keeps contacts"), std::string::npos);
}

// Channel choice: a campaign offering wechat_push and sms sends each customer once, on the channel
// with the higher expected value that the rules allow (a customer who opted out of wechat_push
// gets sms), and says why in each send's reasons.
TEST_F(CampaignRunTest, ChoosesEachCustomersBestAllowedChannel) {
  Open();  // sms is one of the data's declared channels by default
  Campaign c = Approved("multi");
  c.definition.channels = {"wechat_push", "sms"};
  c.approved_hash = c.hash();
  // What each channel alone would send each customer, and its expected value.
  auto alone = [&](const std::string& channel) {
    Campaign one = Approved("multi");
    one.definition.channel = channel;
    RunOptions o = Options("preview", "alone-" + channel + ".csv");
    o.dry_run = true;
    std::map<std::string, double> ev;
    o.on_choice = [&](const std::string& who, const serving::PushChoice& ch) {
      if (!ch.items.empty()) ev[who] = ch.expected_value;
    };
    EXPECT_TRUE(RunOccurrence(engine_.get(), one, o).ok());
    return ev;
  };
  const auto ev_wechat = alone("wechat_push"), ev_sms = alone("sms");
  auto s = RunOccurrence(engine_.get(), c, Options("d1", "multi.csv"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto rows_with_reasons = [&](const std::string& path) {
    std::map<std::string, std::string> out;  // customer -> reasons
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) out[line.substr(0, line.find(','))] = line.substr(line.rfind(',') + 1);
    return out;
  };
  const auto wechat = rows_with_reasons(scratch_ + "/multi.csv");
  const auto sms = rows_with_reasons(scratch_ + "/multi.sms.csv");
  ASSERT_GT(wechat.size(), 0u);
  ASSERT_GT(sms.size(), 0u);
  EXPECT_EQ(s->sends, static_cast<int64_t>(wechat.size() + sms.size()));
  EXPECT_EQ(s->channel_sends.at("sms"), static_cast<int64_t>(sms.size()));
  int wrong = 0, both = 0;
  for (const auto& [who, reasons] : wechat) {
    EXPECT_EQ(sms.count(who), 0u) << who << " was sent on both channels";
    EXPECT_NE(reasons.find("channel:wechat_push="), std::string::npos) << reasons;
    if (ev_sms.count(who) && ev_wechat.count(who)) {
      ++both;
      wrong += ev_sms.at(who) > ev_wechat.at(who) && reasons.find("=best") != std::string::npos;
    }
  }
  for (const auto& [who, reasons] : sms) {
    EXPECT_NE(reasons.find("channel:sms="), std::string::npos) << reasons;
    if (ev_sms.count(who) && ev_wechat.count(who)) {
      ++both;
      wrong += ev_wechat.at(who) > ev_sms.at(who) && reasons.find("=best") != std::string::npos;
    }
  }
  EXPECT_GT(both, 100);
  EXPECT_EQ(wrong, 0) << "a best channel whose expected value was lower, of " << both;
  // Customers wechat_push may not reach (opted out) are reached on sms.
  int opted_out = 0;
  engine_->WithDataset([&](const Dataset& ds) {
    const ChannelId wc = *ds.channels.Find("wechat_push");
    for (const Customer& cu : ds.customers) {
      if (!(cu.opt_out & (ChannelMask{1} << wc)) || !sms.count(cu.id)) continue;
      ++opted_out;
      EXPECT_EQ(wechat.count(cu.id), 0u);
    }
  });
  EXPECT_GT(opted_out, 0) << "opted-out customers reached on sms";
  // The decision log records the channel and why.
  auto h = engine_->History(sms.begin()->first, 0, 10);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  bool logged = false;
  for (const auto& d : h->decisions) {
    for (const std::string& r : d.reasons) logged = logged || r.rfind("channel:sms=", 0) == 0;
  }
  EXPECT_TRUE(logged);
}

TEST_F(CampaignRunTest, TheHoldoutGetsGhostsAndNoSends) {
  Open();
  Campaign c = Approved("held");
  c.definition.holdout = 0.3;
  c.approved_hash = c.hash();
  auto s = RunOccurrence(engine_.get(), c, Options("d1"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const int64_t held = s->skipped_by.count("campaign.holdout") ? s->skipped_by.at("campaign.holdout") : 0;
  EXPECT_NEAR(static_cast<double>(held) / static_cast<double>(s->audience), 0.3, 0.05);
  std::set<std::string> sent, ghosts;
  Status st = engine_->store()->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.request_id != "held/d1") return true;
    const bool holdout = std::find(d.arms.begin(), d.arms.end(), "campaign:held=holdout") != d.arms.end();
    if (d.kind == policy::DecisionKind::kGhost) {
      EXPECT_TRUE(holdout) << d.customer_id;
      ghosts.insert(d.customer_id);
    } else {
      EXPECT_FALSE(holdout) << d.customer_id;
      EXPECT_NE(std::find(d.arms.begin(), d.arms.end(), "campaign:held=treatment"), d.arms.end());
      sent.insert(d.customer_id);
    }
    return true;
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(ghosts.size(), 100u);
  EXPECT_EQ(static_cast<int64_t>(sent.size()), s->sent_customers);
  for (const std::string& g : ghosts) EXPECT_EQ(sent.count(g), 0u) << g << " was both sent and held out";
  for (const auto& [customer, item] : Rows(scratch_ + "/list.csv")) EXPECT_EQ(ghosts.count(customer), 0u);
}

TEST_F(CampaignRunTest, OnlyTheApprovedVersionOfAScheduledCampaignRuns) {
  Open();
  Campaign c = Approved("gate");
  c.definition.budget_per_day = 5;  // changed after approval
  auto changed = RunOccurrence(engine_.get(), c, Options("d1"));
  EXPECT_EQ(changed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(changed.status().message().find("only the approved version runs"), std::string::npos);
  c.approved_hash = c.hash();
  c.state = State::kApproved;
  EXPECT_EQ(RunOccurrence(engine_.get(), c, Options("d1")).status().code(), StatusCode::kFailedPrecondition);
  RunOptions dry = Options("d1");
  dry.dry_run = true;
  c.state = State::kDraft;
  auto preview = RunOccurrence(engine_.get(), c, dry);
  ASSERT_TRUE(preview.ok()) << "a dry run shows the approver what would happen, in any state";
  EXPECT_EQ(preview->sends, 5);
  EXPECT_EQ(RunOccurrence(engine_.get(), c, Options("bad/occurrence")).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CampaignRunTest, TheEffectReportComparesTheSentWithTheHoldoutOfTheSameSelection) {
  Open();
  Campaign c = Approved("eff");
  c.definition.holdout = 0.5;
  c.approved_hash = c.hash();
  auto s = RunOccurrence(engine_.get(), c, Options("d1"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Every customer sent to opens and clicks what they were sent; no one held out clicks.
  std::vector<serving::FeedbackEvent> events;
  for (const auto& [customer, item] : Rows(scratch_ + "/list.csv")) {
    for (const char* type : {"push_open", "click"}) {
      events.push_back({kNow + kMsPerHour, customer, item, type, "wechat_push", "eff/d1"});
    }
  }
  auto fed = engine_->Feedback(events);
  ASSERT_TRUE(fed.ok() && fed->rejected.empty());
  auto r = ReportCampaign(engine_->store(), c, kNoTime);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->treatment_customers, s->sent_customers);
  EXPECT_NEAR(static_cast<double>(r->holdout_customers) / (r->holdout_customers + r->treatment_customers), 0.5, 0.08);
  EXPECT_FALSE(r->ratio.mismatch);
  EXPECT_DOUBLE_EQ(r->treatment[1].mean, 1.0) << "each one clicked once";
  EXPECT_DOUBLE_EQ(r->holdout[1].mean, 0.0);
  EXPECT_DOUBLE_EQ(r->lift[1].difference, 1.0);
  EXPECT_LT(r->lift[1].p_value, 1e-6);
  EXPECT_DOUBLE_EQ(r->lift[2].difference, 0.0) << "no conversions either side";
  // Events before `to` only: none counted at kNow.
  auto before = ReportCampaign(engine_->store(), c, kNow);
  ASSERT_TRUE(before.ok());
  EXPECT_DOUBLE_EQ(before->treatment[1].mean, 0.0);
  EXPECT_NE(r->Format().find("clicks"), std::string::npos);
  EXPECT_NE(r->Json().find("\"holdout_customers\""), std::string::npos);
  Campaign none = Approved("none");
  EXPECT_EQ(ReportCampaign(engine_->store(), none, kNoTime).status().code(), StatusCode::kNotFound);
}

// The scheduler: a due occurrence runs once whoever else passes at the same time, a dead
// runner's lease is taken over, and an occurrence past the grace period is missed, not run.
class SchedulerTest : public CampaignRunTest {
 protected:
  void SetUp() override {
    CampaignRunTest::SetUp();
    Open();
    campaigns_ = std::make_unique<Campaigns>(engine_->store(), [](const Definition&, TimeMs) { return Status::Ok(); });
  }
  // A campaign scheduled once at `at` (local), through the lifecycle a day before kNow.
  void Schedule(const std::string& id, const std::string& at) {
    Definition d = Approved(id).definition;
    d.budget_per_day = 20;
    d.schedule.kind = "once";
    d.schedule.at = at;
    const Actor alice{"alice", "test", kNow - kMsPerDay}, bob{"bob", "test", kNow - kMsPerDay};
    ASSERT_TRUE(campaigns_->Create(d, alice).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kSubmitted, alice).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kApproved, bob).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kScheduled, alice).ok());
  }
  SchedulerOptions Options(const std::string& holder) {
    SchedulerOptions o;
    o.holder = holder;
    o.outbox = scratch_ + "/outbox-" + holder;
    o.grace = kMsPerHour;
    return o;
  }
  std::string LocalAt(TimeMs t) {
    std::string s = FormatIsoLocal(t, engine_->time_zone());  // 2026-...T..:..:..+08:00
    return s.substr(0, 16);
  }
  std::unique_ptr<Campaigns> campaigns_;
};

TEST_F(SchedulerTest, ADueOccurrenceRunsExactlyOnceAcrossConcurrentRunners) {
  const std::string at = LocalAt(kNow - 10 * kMsPerMinute);
  Schedule("due", at);
  Schedule("later", LocalAt(kNow + kMsPerHour));
  Campaigns other(engine_->store(), [](const Definition&, TimeMs) { return Status::Ok(); });
  Result<PassReport> a = Status::Internal(""), b = Status::Internal("");
  std::thread ta([&] { a = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), kNow); });
  std::thread tb([&] { b = RunDueOccurrences(engine_.get(), &other, Options("b"), kNow); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << " / " << b.status().ToString();
  EXPECT_EQ(a->ran.size() + b->ran.size(), 1u) << "exactly one runner ran it";
  EXPECT_TRUE(a->failed.empty() && b->failed.empty());
  const std::string winner = a->ran.empty() ? "b" : "a";
  EXPECT_EQ((a->ran.empty() ? b : a)->ran[0], "due/" + at);
  const auto rows = Rows(scratch_ + "/outbox-" + winner + "/due/" + at + ".csv");
  EXPECT_EQ(rows.size(), 20u) << "the budget";
  EXPECT_FALSE(std::filesystem::exists(scratch_ + "/outbox-" + (winner == "a" ? "b" : "a") + "/due/" + at + ".csv"));
  auto c = campaigns_->Get("due");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state, State::kCompleted);
  EXPECT_EQ(c->occurrences.at(at), 20);
  EXPECT_EQ(campaigns_->Get("later")->state, State::kScheduled) << "not due yet";
  // Later passes run nothing again.
  auto again = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), kNow + kMsPerMinute);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->ran.empty());
}

TEST_F(SchedulerTest, ADeadRunnersLeaseIsTakenOverAndALateOccurrenceIsMissed) {
  const std::string at = LocalAt(kNow - 10 * kMsPerMinute);
  Schedule("orphan", at);
  // A runner took the lease and died (its lease expired a minute ago).
  ASSERT_TRUE(engine_->store()
                  ->WriteRecord("campaign_runs", "orphan/" + at, 0,
                                R"({"state":"running","holder":"dead","expires":)" +
                                    std::to_string(kNow - kMsPerMinute) + R"(,"sends":0})",
                                "{}")
                  .ok());
  auto r = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->ran.size(), 1u) << "the expired lease was taken over";
  EXPECT_EQ(campaigns_->Get("orphan")->state, State::kCompleted);

  const std::string old = LocalAt(kNow - 3 * kMsPerHour);  // past the one-hour grace
  Schedule("stale", old);
  auto m = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), kNow);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ran.empty());
  ASSERT_EQ(m->missed, std::vector<std::string>{"stale/" + old});
  auto c = campaigns_->Get("stale");
  EXPECT_EQ(c->state, State::kCompleted) << "its only occurrence was missed";
  EXPECT_EQ(c->missed, std::vector<std::string>{old});
  EXPECT_EQ(campaigns_->Audit("stale")->back().action, "missed");
  EXPECT_FALSE(std::filesystem::exists(scratch_ + "/outbox-a/stale"));
}

// A run by hand takes the scheduler's lease: refused while another process runs the occurrence,
// and once it is done, run again as a replay.
TEST_F(SchedulerTest, ARunByHandTakesTheLeaseAndAfterwardsReplays) {
  const std::string at = LocalAt(kNow + kMsPerHour);
  Schedule("byhand", at);
  ASSERT_TRUE(engine_->store()
                  ->WriteRecord("campaign_runs", "byhand/d1", 0,
                                R"({"state":"running","holder":"replica-b","expires":)" +
                                    std::to_string(kNow + kMsPerMinute) + R"(,"sends":0})",
                                "{}")
                  .ok());
  const std::string out = scratch_ + "/byhand.csv";
  auto busy = RunByHand(engine_.get(), campaigns_.get(), Options("ops"), "byhand", "d1", out, kNow);
  EXPECT_EQ(busy.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(busy.status().message().find("holds the lease"), std::string::npos) << busy.status().ToString();
  EXPECT_EQ(campaigns_->Get("byhand")->state, State::kScheduled) << "nothing changed";
  // The other process died: its lease expires and the run by hand takes it over.
  auto first = RunByHand(engine_.get(), campaigns_.get(), Options("ops"), "byhand", "d1", out, kNow + 2 * kMsPerMinute);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->sends, 20);
  EXPECT_NE(engine_->store()->ReadRecord("campaign_runs", "byhand/d1")->value.find(R"("state":"done")"),
            std::string::npos);
  auto again = RunByHand(engine_.get(), campaigns_.get(), Options("ops"), "byhand", "d1", out, kNow + kMsPerHour);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->replayed, 20) << "done: a replay, nothing sent twice";
  EXPECT_EQ(campaigns_->Get("byhand")->occurrences.at("d1"), 20);
}

// A campaign naming a saved segment runs with the segment as approved: a later edit of the
// segment changes a dry run of a new draft, not the approved campaign's sends.
TEST_F(SchedulerTest, AnApprovedCampaignRunsTheSegmentAsApproved) {
  Segments segments(engine_->store(), nullptr);
  ASSERT_TRUE(segments.Save("rich", "tier = affluent", "", Actor{"alice", "test", kNow - kMsPerDay}).ok());
  Definition d = Approved("seg").definition;
  d.audience = "segment:rich";
  d.schedule.kind = "once";
  d.schedule.at = LocalAt(kNow + kMsPerHour);
  const Actor alice{"alice", "test", kNow - kMsPerDay}, bob{"bob", "test", kNow - kMsPerDay};
  ASSERT_TRUE(campaigns_->Create(d, alice).ok());
  ASSERT_TRUE(campaigns_->Transition("seg", State::kSubmitted, alice).ok());
  ASSERT_TRUE(campaigns_->Transition("seg", State::kApproved, bob).ok());
  ASSERT_TRUE(campaigns_->Transition("seg", State::kScheduled, alice).ok());
  ASSERT_TRUE(segments.Save("rich", "tier = mass", "", Actor{"carol", "test", kNow}).ok());
  auto tiers = [&](const std::string& path) {
    std::map<Tier, int> n;
    engine_->WithDataset([&](const Dataset& ds) {
      for (const auto& [customer, item] : Rows(path)) ++n[ds.customers[*ds.FindCustomer(customer)].tier];
    });
    return n;
  };
  auto sent = RunOccurrence(engine_.get(), *campaigns_->Get("seg"), CampaignRunTest::Options("d1", "seg.csv"));
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  const auto approved = tiers(scratch_ + "/seg.csv");
  ASSERT_GT(approved.count(Tier::kAffluent), 0u);
  EXPECT_EQ(approved.size(), 1u) << "only the affluent, as approved";
  // A draft naming the segment is previewed with the segment as it is now.
  d.id = "seg2";
  ASSERT_TRUE(campaigns_->Create(d, alice).ok());
  RunOptions dry = CampaignRunTest::Options("preview", "seg2.csv");
  dry.dry_run = true;
  ASSERT_TRUE(RunOccurrence(engine_.get(), *campaigns_->Get("seg2"), dry).ok());
  const auto now_mass = tiers(scratch_ + "/seg2.csv");
  ASSERT_GT(now_mass.count(Tier::kMass), 0u);
  EXPECT_EQ(now_mass.size(), 1u);
}

// Campaigns due together compete for a customer's last unit of a cap (marketing_daily: one push a
// day): each customer gets the campaign whose send has the higher expected value for them, not
// whichever campaign is listed (and so runs) first; a priority overrides the expected value.
TEST_F(SchedulerTest, CompetingCampaignsGiveTheLastCapUnitToTheHigherExpectedValue) {
  const std::string at = LocalAt(kNow - 10 * kMsPerMinute);
  // Two campaigns over everyone with different content: the two largest content categories.
  std::vector<std::string> cats;
  engine_->WithDataset([&](const Dataset& ds) {
    std::map<uint32_t, int> n;
    for (const Item& it : ds.items) {
      if (it.kind == ItemKind::kContent && !it.service) ++n[it.category];
    }
    std::vector<std::pair<int, uint32_t>> by;
    for (const auto& [cat, k] : n) by.emplace_back(-k, cat);
    std::sort(by.begin(), by.end());
    for (size_t k = 0; k < 2 && k < by.size(); ++k) cats.push_back(ds.categories.Name(by[k].second));
  });
  ASSERT_EQ(cats.size(), 2u);
  auto schedule = [&](const std::string& id, const std::string& category, int priority, const std::string& when) {
    Definition d = Approved(id).definition;
    d.categories = {category};
    d.priority = priority;
    d.schedule.kind = "once";
    d.schedule.at = when;
    const Actor alice{"alice", "test", kNow - kMsPerDay}, bob{"bob", "test", kNow - kMsPerDay};
    ASSERT_TRUE(campaigns_->Create(d, alice).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kSubmitted, alice).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kApproved, bob).ok());
    ASSERT_TRUE(campaigns_->Transition(id, State::kScheduled, alice).ok());
  };
  // What each would send each customer alone, and its expected value.
  auto alone = [&](const std::string& id, TimeMs now) {
    std::map<std::string, double> ev;
    Campaign c = *campaigns_->Get(id);
    RunOptions ro = CampaignRunTest::Options("preview", "preview.csv");
    ro.now = now;
    ro.dry_run = true;
    ro.on_choice = [&](const std::string& who, const serving::PushChoice& ch) {
      if (!ch.items.empty()) ev[who] = ch.expected_value;
    };
    EXPECT_TRUE(RunOccurrence(engine_.get(), c, ro).ok());
    return ev;
  };
  auto senders = [&](const std::string& path) {
    std::map<std::string, int> n;
    for (const auto& [customer, item] : Rows(path)) ++n[customer];
    return n;
  };

  schedule("a_first", cats[0], 0, at);
  schedule("b_second", cats[1], 0, at);
  const auto ev_a = alone("a_first", kNow), ev_b = alone("b_second", kNow);
  auto r = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->ran.size(), 2u);
  EXPECT_TRUE(r->failed.empty()) << r->failed[0];
  const auto got_a = senders(scratch_ + "/outbox-a/a_first/" + at + ".csv");
  const auto got_b = senders(scratch_ + "/outbox-a/b_second/" + at + ".csv");
  int contested = 0, to_a = 0, to_b = 0, wrong = 0;
  for (const auto& [who, va] : ev_a) {
    auto vb = ev_b.find(who);
    if (vb == ev_b.end() || va == vb->second) continue;
    ++contested;
    const bool a = got_a.count(who) > 0, b = got_b.count(who) > 0;
    EXPECT_FALSE(a && b) << who << ": one push a day";
    to_a += a;
    to_b += b;
    if ((va > vb->second && !a) || (vb->second > va && !b)) ++wrong;
  }
  EXPECT_GT(contested, 100);
  EXPECT_EQ(wrong, 0) << "of " << contested << " contested customers";
  EXPECT_GT(to_a, 0);
  EXPECT_GT(to_b, 0) << "the second-listed campaign wins where it is worth more";
  EXPECT_EQ(to_a + to_b, contested);
  EXPECT_EQ(campaigns_->Get("a_first")->occurrences.at(at), static_cast<int64_t>(got_a.size()));
  EXPECT_EQ(campaigns_->Get("b_second")->occurrences.at(at), static_cast<int64_t>(got_b.size()));

  // The next day a priority overrides the expected value: the prioritised campaign wins them all.
  const TimeMs next = kNow + kMsPerDay;
  const std::string at2 = LocalAt(next - 10 * kMsPerMinute);
  schedule("c_low", cats[0], 0, at2);
  schedule("d_priority", cats[1], 5, at2);
  const auto ev_c = alone("c_low", next), ev_d = alone("d_priority", next);
  auto r2 = RunDueOccurrences(engine_.get(), campaigns_.get(), Options("a"), next);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->ran.size(), 2u);
  const auto got_c = senders(scratch_ + "/outbox-a/c_low/" + at2 + ".csv");
  const auto got_d = senders(scratch_ + "/outbox-a/d_priority/" + at2 + ".csv");
  int both = 0, d_won = 0;
  for (const auto& [who, vc] : ev_c) {
    if (!ev_d.count(who)) continue;
    ++both;
    d_won += got_d.count(who) > 0 && got_c.count(who) == 0;
  }
  EXPECT_GT(both, 100);
  EXPECT_EQ(d_won, both);
}

}  // namespace
}  // namespace qm::campaign
