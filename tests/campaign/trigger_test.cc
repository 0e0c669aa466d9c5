// Event triggers (issue 18): the event catalogue and conditions refuse unknown names when a
// campaign is created; matching events are decided through the engine under every contact rule,
// exactly once (a retry replays), never past the budget whatever the threads; a delayed event
// waits in the store and is decided once due, by exactly one of two processes; the file outbox
// holds one durable line per send; a campaign with several channels sends each event on the
// customer's best allowed channel, once across retries.
#include "qianmian/campaign/trigger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
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

BusinessEvent Salary(const std::string& id, const std::string& customer, double amount, TimeMs ts = kNow) {
  BusinessEvent e;
  e.id = id;
  e.customer_id = customer;
  e.type = "salary_credited";
  e.ts = ts;
  e.numbers["amount"] = amount;
  return e;
}

TEST(EventConditionTest, ComparesNumbersAndTextAndRefusesUnknownAttributes) {
  auto c = EventCondition::Compile("amount >= 5000 and employer in ('ACME', \"Globex\")", "salary_credited");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  BusinessEvent e = Salary("e1", "C1", 6000);
  EXPECT_FALSE(c->Matches(e)) << "no employer: `in` is not satisfied";
  e.texts["employer"] = "ACME";
  EXPECT_TRUE(c->Matches(e));
  e.numbers["amount"] = 4999.5;
  EXPECT_FALSE(c->Matches(e));
  auto any = EventCondition::Compile("", "login");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->Matches(e)) << "an empty condition matches every event of the type";
  auto ne = EventCondition::Compile("employer != ACME and amount not in (1, 2)", "salary_credited");
  ASSERT_TRUE(ne.ok()) << ne.status().ToString();
  EXPECT_FALSE(ne->Matches(e));
  e.texts["employer"] = "Initech";
  EXPECT_TRUE(ne->Matches(e));

  auto unknown = EventCondition::Compile("amount >= 1 and bonus > 2", "salary_credited");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("position 17: 'bonus' is not an attribute of salary_credited"),
            std::string::npos)
      << unknown.status().message();
  EXPECT_FALSE(EventCondition::Compile("employer > ACME", "salary_credited").ok()) << "text: only = != in";
  EXPECT_FALSE(EventCondition::Compile("amount >= lots", "salary_credited").ok()) << "a number";
  EXPECT_FALSE(EventCondition::Compile("amount >= 1 or amount < 0", "salary_credited").ok()) << "'and' only";
  EXPECT_FALSE(EventCondition::Compile("amount >=", "salary_credited").ok());
  EXPECT_FALSE(EventCondition::Compile("amount >= 1", "payday").ok());
}

TEST(BusinessEventTest, ParsesAndChecksAgainstTheCatalogue) {
  auto e = ParseEvent(R"({"event_id":"e-1","customer_id":"C1","type":"deposit_matured","ts_ms":5,)"
                      R"("attrs":{"amount":1e5,"product":"fixed_3m"}})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->numbers.at("amount"), 1e5);
  EXPECT_EQ(e->texts.at("product"), "fixed_3m");
  auto back = ParseEvent(EventJson(*e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(EventJson(*back), EventJson(*e));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"event_id":"e 1","customer_id":"C1","type":"login","ts_ms":5})", "event.event_id"},
      {R"({"event_id":"e1","type":"login","ts_ms":5})", "event.customer_id"},
      {R"({"event_id":"e1","customer_id":"C1","type":"payday","ts_ms":5})", "unknown event type 'payday'"},
      {R"({"event_id":"e1","customer_id":"C1","type":"login"})", "event.ts_ms"},
      {R"({"event_id":"e1","customer_id":"C1","type":"login","ts_ms":5,"attrs":{"amount":3}})",
       "event.attrs.amount: not an attribute of login"},
      {R"({"event_id":"e1","customer_id":"C1","type":"salary_credited","ts_ms":5,"attrs":{"amount":"x"}})",
       "event.attrs.amount: must be a number"},
      {R"({"event_id":"e1","customer_id":"C1","type":"login","ts_ms":5,"extra":1})", "event.extra: unknown field"},
  };
  for (const auto& [text, want] : bad) {
    auto r = ParseEvent(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
  }
}

TEST(TriggerDefinitionTest, ParsedCheckedAndHashedOnlyWhenSet) {
  Definition plain;
  plain.id = "p";
  EXPECT_EQ(DefinitionJson(plain).find("trigger"), std::string::npos)
      << "an untriggered definition's JSON (and so its approved hash) is as before triggers existed";
  auto d = ParseDefinition(
      R"({"id":"t","trigger":{"event":"large_outflow","condition":"amount > 20000","delay_s":60,"expiry_s":600}})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->triggered());
  auto again = ParseDefinition(DefinitionJson(*d));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(DefinitionHash(*again), DefinitionHash(*d));
  EXPECT_FALSE(ParseDefinition(R"({"id":"t","trigger":{"event":"login","delay_s":60,"expiry_s":60}})").ok())
      << "a delay must be shorter than the expiry";
  EXPECT_FALSE(ParseDefinition(R"({"id":"t","trigger":{"condition":"amount > 1"}})").ok()) << "the event is required";
  auto sched =
      ParseDefinition(R"({"id":"t","trigger":{"event":"login"},"schedule":{"kind":"once","at":"2030-01-01T09:00"}})");
  ASSERT_FALSE(sched.ok());
  EXPECT_NE(sched.status().message().find("'schedule': a triggered campaign has no schedule"), std::string::npos);
}

class TriggerTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    Open();
    auto check = [this](const Definition& d, TimeMs now) {
      Status st;
      engine_->WithDataset([&](const Dataset& ds) { st = CheckDefinition(d, ds, now, engine_->time_zone()); });
      return st;
    };
    campaigns_ = std::make_unique<Campaigns>(engine_->store(), check);
    auto ob = OpenOutbox(scratch_ + "/outbox", {});
    ASSERT_TRUE(ob.ok()) << ob.status().ToString();
    outbox_ = std::move(*ob);
    triggers_ = std::make_unique<Triggers>(engine_.get(), campaigns_.get(), outbox_.get());
    engine_->WithDataset([&](const Dataset& ds) {
      for (const Customer& c : ds.customers) customers_.push_back(c.id);
    });
  }
  // Creates, approves and schedules a triggered campaign.
  void Live(Definition d) {
    const Actor alice{"alice", "test", kNow - kMsPerDay}, bob{"bob", "test", kNow - kMsPerDay};
    auto c = campaigns_->Create(d, alice);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(campaigns_->Transition(d.id, State::kSubmitted, alice).ok());
    ASSERT_TRUE(campaigns_->Transition(d.id, State::kApproved, bob).ok());
    auto s = campaigns_->Transition(d.id, State::kScheduled, bob);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  static Definition Salary5000(const std::string& id) {
    Definition d;
    d.id = id;
    d.holdout = 0;
    d.trigger.event = "salary_credited";
    d.trigger.condition = "amount >= 5000";
    d.trigger.expiry_s = 86400;
    return d;
  }
  // The outbox's lines, all files.
  std::vector<std::string> OutboxLines() {
    std::vector<std::string> out;
    for (const auto& f : std::filesystem::directory_iterator(scratch_ + "/outbox")) {
      std::ifstream in(f.path());
      for (std::string line; std::getline(in, line);) out.push_back(line);
    }
    return out;
  }
  std::unique_ptr<Campaigns> campaigns_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Triggers> triggers_;
  std::vector<std::string> customers_;
};

TEST_F(TriggerTest, ACampaignNamingAnUnknownAttributeIsRefusedAtCreation) {
  Definition d = Salary5000("bad");
  d.trigger.condition = "amount >= 5000 and bonus > 1";
  auto c = campaigns_->Create(d, Actor{"alice", "test", kNow});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'trigger.condition': position 20: 'bonus' is not an attribute"),
            std::string::npos)
      << c.status().message();
  d.trigger.condition = "";
  d.trigger.event = "pay_day";
  EXPECT_FALSE(campaigns_->Create(d, Actor{"alice", "test", kNow}).ok());
  EXPECT_FALSE(campaigns_->Get("bad").ok()) << "nothing stored";
}

TEST_F(TriggerTest, MatchingEventsAreDecidedOnceAndARetryReplays) {
  Live(Salary5000("pay"));
  Definition draft = Salary5000("draft");  // not approved: never fires
  ASSERT_TRUE(campaigns_->Create(draft, Actor{"alice", "test", kNow}).ok());
  std::vector<BusinessEvent> events;
  for (size_t i = 0; i < 60; ++i) {
    events.push_back(Salary("s" + std::to_string(i), customers_[i], i % 3 == 0 ? 1000 : 9000));
  }
  auto first = triggers_->Process(events, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 40u) << "the 40 events of 5000 or more, the approved campaign only";
  std::map<std::string, std::string> sent;
  for (const TriggerDecision& d : *first) {
    EXPECT_EQ(d.campaign_id, "pay");
    EXPECT_EQ(d.key, "pay/ev:" + d.event_id);
    EXPECT_FALSE(d.replayed);
    if (d.outcome == "sent") sent[d.customer_id] = d.item_id;
  }
  EXPECT_GT(sent.size(), 20u);
  EXPECT_EQ(OutboxLines().size(), sent.size()) << "one durable line per send";
  auto again = triggers_->Process(events, kNow + 1000);
  ASSERT_TRUE(again.ok());
  size_t replayed = 0;
  for (const TriggerDecision& d : *again) {
    if (d.outcome != "sent") continue;
    EXPECT_TRUE(d.replayed) << d.customer_id;
    EXPECT_EQ(sent[d.customer_id], d.item_id) << "a retry sends what the first decision sent";
    ++replayed;
  }
  EXPECT_EQ(replayed, sent.size());
  // Counted once: each customer's push contacts of this campaign.
  for (const auto& [customer, item] : sent) {
    auto log = engine_->store()->Log(customer, 0, 1000);
    ASSERT_TRUE(log.ok());
    int n = 0;
    for (const auto& e : *log) n += e.request_id.rfind("pay/ev:", 0) == 0;
    EXPECT_EQ(n, 1) << customer;
  }
}

TEST_F(TriggerTest, TheBudgetHoldsUnderConcurrentEvents) {
  Definition d = Salary5000("capped");
  d.budget_total = 9;
  Live(d);
  std::atomic<int> sent{0}, budget{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < 120; i += 4) {
        auto r = triggers_->Process({Salary("b" + std::to_string(i), customers_[i], 8000)}, kNow);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        for (const TriggerDecision& x : *r) {
          sent += x.outcome == "sent";
          budget += x.skipped_by == "campaign.budget";
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(sent.load(), 9) << "four threads at once: the budget holds exactly";
  EXPECT_GT(budget.load(), 50);
}

TEST_F(TriggerTest, ADelayedEventWaitsAndIsDecidedOnceDue) {
  Definition d = Salary5000("later");
  d.trigger.delay_s = 600;
  Live(d);
  auto r = triggers_->Process({Salary("d1", customers_[0], 9000)}, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].outcome, "pending");
  EXPECT_EQ((*r)[0].due_ms, kNow + 600 * kMsPerSecond);
  auto early = triggers_->RunDue(kNow + 599 * kMsPerSecond);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty()) << "not due yet";
  // Two processes at once once due: the event is decided, and recorded done, once.
  Campaigns other_campaigns(engine_->store(), [](const Definition&, TimeMs) { return Status::Ok(); });
  Triggers other(engine_.get(), &other_campaigns, outbox_.get());
  Result<std::vector<TriggerDecision>> a = Status::Internal(""), b = Status::Internal("");
  std::thread ta([&] { a = triggers_->RunDue(kNow + 601 * kMsPerSecond); });
  std::thread tb([&] { b = other.RunDue(kNow + 601 * kMsPerSecond); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(a->size() + b->size(), 1u) << "recorded done by exactly one";
  const TriggerDecision& done = a->empty() ? (*b)[0] : (*a)[0];
  EXPECT_EQ(done.key, "later/ev:d1");
  EXPECT_NE(done.outcome, "pending");
  auto log = engine_->store()->Log(customers_[0], 0, 1000);
  ASSERT_TRUE(log.ok());
  int n = 0;
  for (const auto& e : *log) n += e.request_id == "later/ev:d1";
  EXPECT_LE(n, 1) << "sent at most once, whoever decided";
  auto after = triggers_->RunDue(kNow + 700 * kMsPerSecond);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "done: never decided again";
  // A late retry of the delivery of the event (the clock as when it first came) finds the done
  // record: it is not queued again.
  auto retry = triggers_->Process({Salary("d1", customers_[0], 9000)}, kNow + 100 * kMsPerSecond);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(engine_->store()->ListRecords("trigger_pending")->size(), 1u);
  EXPECT_TRUE(triggers_->RunDue(kNow + 1400 * kMsPerSecond)->empty());
  // Past the event's expiry (expiry_s) the done record is pruned: the pending records do not grow.
  ASSERT_TRUE(triggers_->RunDue(kNow + (d.trigger.expiry_s + 1) * kMsPerSecond).ok());
  EXPECT_TRUE(engine_->store()->ListRecords("trigger_pending")->empty());
}

TEST_F(TriggerTest, AnExpiredEventAndAPausedCampaignDecideNothing) {
  Live(Salary5000("pay"));
  auto r = triggers_->Process({Salary("old", customers_[0], 9000, kNow - 2 * kMsPerDay)}, kNow);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].skipped_by, "expired");
  ASSERT_TRUE(campaigns_->Transition("pay", State::kPaused, Actor{"bob", "test", kNow}).ok());
  triggers_->Invalidate();
  auto p = triggers_->Process({Salary("new", customers_[0], 9000)}, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->empty()) << "a paused campaign does not fire";
}

TEST_F(TriggerTest, AnEventIsSentOnItsCustomersBestAllowedChannelOnce) {
  Definition d = Salary5000("multi");
  d.channels = {"wechat_push", "sms"};  // sms is one of the data's declared channels by default
  d.channel = "wechat_push";
  Live(d);
  // What each channel would send each customer now, and its expected value (dry, nothing kept).
  auto value_on = [&](const std::string& channel, const std::string& customer) {
    serving::PushRequest req;
    req.customer_ids = {customer};
    req.channel = channel;
    req.now_ms = kNow;
    req.dry_run = true;
    std::vector<serving::PushChoice> out;
    EXPECT_TRUE(engine_->Push(req, &out).ok());
    return out.empty() || out[0].items.empty() ? -1.0 : out[0].expected_value;
  };
  std::vector<BusinessEvent> events;
  std::map<std::string, std::pair<double, double>> values;  // customer -> (wechat_push, sms)
  for (size_t i = 0; i < 80; ++i) {
    events.push_back(Salary("m" + std::to_string(i), customers_[i], 9000));
    values[customers_[i]] = {value_on("wechat_push", customers_[i]), value_on("sms", customers_[i])};
  }
  // One event whose order is already stored (as a crashed process left it): sms first, though
  // not tried yet. The decision follows the stored plan.
  const std::string planned = customers_[80];
  events.push_back(Salary("m80", planned, 9000));
  ASSERT_TRUE(engine_->store()
                  ->WriteRecord("trigger_channel", "multi/ev:m80", 0,
                                R"({"order":["sms","wechat_push"],"tried":0,"expires_ms":)" +
                                    std::to_string(kNow + kMsPerDay) + "}",
                                "{}")
                  .ok());
  auto first = triggers_->Process(events, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::map<std::string, std::string> channel_of;
  int on_sms = 0, on_wechat = 0, compared = 0;
  for (const TriggerDecision& dec : *first) {
    if (dec.outcome != "sent") continue;
    channel_of[dec.customer_id] = dec.channel;
    (dec.channel == "sms" ? on_sms : on_wechat) += 1;
    EXPECT_EQ(dec.reason, "channel:" + dec.channel + "=best") << dec.customer_id;
    EXPECT_NE(DecisionJson(dec).find("\"reason\":\"channel:" + dec.channel), std::string::npos);
    if (dec.customer_id == planned) {
      EXPECT_EQ(dec.channel, "sms") << "the stored plan is followed";
      continue;
    }
    const auto [wechat, sms] = values.at(dec.customer_id);
    if (std::fabs(wechat - sms) < 1e-9) continue;
    ++compared;
    EXPECT_EQ(dec.channel, wechat > sms ? "wechat_push" : "sms")
        << dec.customer_id << ": wechat_push " << wechat << ", sms " << sms;
  }
  EXPECT_GT(compared, 20);
  EXPECT_GT(on_sms, 0);
  EXPECT_GT(on_wechat, 0);
  // Customers WeChat may not reach (opted out) are reached on sms.
  engine_->WithDataset([&](const Dataset& ds) {
    const ChannelId wc = *ds.channels.Find("wechat_push");
    for (const auto& [who, ch] : channel_of) {
      const Customer& cu = ds.customers[*ds.FindCustomer(who)];
      if (cu.opt_out & (ChannelMask{1} << wc)) EXPECT_EQ(ch, "sms") << who;
    }
  });
  // A retry replays on the channel that sent; nothing is sent on a second channel.
  auto again = triggers_->Process(events, kNow + 1000);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  for (const TriggerDecision& dec : *again) {
    if (!channel_of.count(dec.customer_id)) continue;
    EXPECT_EQ(dec.outcome, "sent") << dec.customer_id;
    EXPECT_TRUE(dec.replayed) << dec.customer_id;
    EXPECT_EQ(dec.channel, channel_of[dec.customer_id]) << dec.customer_id;
  }
  for (const auto& [customer, ch] : channel_of) {
    auto log = engine_->store()->Log(customer, 0, 1000);
    ASSERT_TRUE(log.ok());
    int n = 0;
    for (const auto& e : *log) n += e.request_id.rfind("multi/ev:", 0) == 0;
    EXPECT_EQ(n, 1) << customer << ": one send across both channels";
  }
  // The plans are dropped once their events are past expiry.
  auto plans = engine_->store()->ListRecords("trigger_channel");
  ASSERT_TRUE(plans.ok());
  EXPECT_EQ(plans->size(), events.size());
  ASSERT_TRUE(triggers_->RunDue(kNow + 2 * kMsPerDay).ok());
  plans = engine_->store()->ListRecords("trigger_channel");
  ASSERT_TRUE(plans.ok());
  EXPECT_TRUE(plans->empty());
}

}  // namespace
}  // namespace qm::campaign
