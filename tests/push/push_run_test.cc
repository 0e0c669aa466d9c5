#include "qianmian/push/push_run.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "qianmian/core/csv.h"
#include "qianmian/core/time.h"
#include "testing/engine_fixture.h"

namespace qm::push {
namespace {

using serving::testing::EngineTest;
using serving::testing::kNow;
using serving::testing::OptionsFor;

struct Row {
  std::string customer, item, scheduled, reasons;
};

class PushRunTest : public EngineTest {
 protected:
  PushRunOptions Options(const std::string& run_id, const std::string& name = "list.csv") {
    PushRunOptions o;
    o.run_id = run_id;
    o.audience = "all";
    o.out = scratch_ + "/" + name;
    o.now = kNow;
    o.threads = 3;
    o.batch = 64;
    o.progress = false;
    return o;
  }

  PushSummary Run(const PushRunOptions& o) {
    auto s = RunPush(engine_.get(), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : PushSummary();
  }

  static std::vector<Row> Read(const std::string& path) {
    std::vector<Row> rows;
    std::ifstream in(path);
    std::string line;
    EXPECT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, "customer_id,item_id,scheduled_at,reasons");
    while (std::getline(in, line)) {
      Row r;
      std::stringstream ss(line);
      std::getline(ss, r.customer, ',');
      std::getline(ss, r.item, ',');
      std::getline(ss, r.scheduled, ',');
      std::getline(ss, r.reasons);
      rows.push_back(r);
    }
    return rows;
  }

  // (customer, item, scheduled_at) of a list, sorted.
  static std::vector<std::string> Sends(const std::vector<Row>& rows) {
    std::vector<std::string> out;
    for (const Row& r : rows) out.push_back(r.customer + "," + r.item + "," + r.scheduled);
    std::sort(out.begin(), out.end());
    return out;
  }

  // push_sent events recorded under `run_id`, per customer.
  std::map<std::string, int> StoreSends(const std::string& run_id) {
    std::map<std::string, int> n;
    Status st = engine_->store()->Export([&](const policy::StoredEvent& e) {
      if (e.type == EventType::kPushSent && e.request_id == run_id) ++n[e.customer_id];
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return n;
  }

  bool IsService(const std::string& item) {
    bool service = false;
    engine_->WithDataset([&](const Dataset& ds) { service = ds.items[*ds.FindItem(item)].service; });
    return service;
  }

  // Customers sent a marketing (non-service) item in `rows`.
  std::set<std::string> Marketing(const std::vector<Row>& rows) {
    std::set<std::string> out;
    for (const Row& r : rows) {
      if (!IsService(r.item)) out.insert(r.customer);
    }
    return out;
  }

  int64_t TotalStorePushes() {
    int64_t n = 0;
    Status st = engine_->store()->Export([&](const policy::StoredEvent& e) {
      n += e.type == EventType::kPushSent;
      return true;
    });
    EXPECT_TRUE(st.ok());
    return n;
  }
};

TEST_F(PushRunTest, SendsOneContentItemPerCustomerAndReservesEachSend) {
  Open();
  const PushSummary s = Run(Options("run-1"));
  const auto rows = Read(scratch_ + "/list.csv");
  EXPECT_EQ(s.audience, 1500);
  EXPECT_GT(s.sends, 1000);
  EXPECT_EQ(s.sends, static_cast<int64_t>(rows.size()));
  EXPECT_EQ(s.sent_customers + s.skipped, s.audience);
  std::set<std::string> customers;
  for (const Row& r : rows) EXPECT_TRUE(customers.insert(r.customer).second) << r.customer << " got two sends";
  const auto stored = StoreSends("run-1");
  EXPECT_EQ(stored.size(), rows.size());
  for (const auto& [c, n] : stored) EXPECT_EQ(n, 1) << c;
  engine_->WithDataset([&](const Dataset& ds) {
    for (const Row& r : rows) {
      auto it = ds.FindItem(r.item);
      ASSERT_TRUE(it.has_value());
      const Item& item = ds.items[*it];
      const Customer& cu = ds.customers[*ds.FindCustomer(r.customer)];
      EXPECT_EQ(item.kind, ItemKind::kContent);
      EXPECT_TRUE(item.channels == 0 || (item.channels >> kWechatPush & 1u)) << r.item << " is not for wechat_push";
      EXPECT_TRUE(item.tiers == 0 || (item.tiers >> static_cast<int>(cu.tier) & 1u)) << r.item << " tier";
      EXPECT_TRUE(item.service || !(cu.opt_out >> kWechatPush & 1u)) << r.customer << " opted out";
    }
  });
  // Score distribution and pressure: after = before + this run's sends.
  ASSERT_EQ(s.score_quantiles.size(), 7u);
  EXPECT_LE(s.score_quantiles.front(), s.score_quantiles.back());
  EXPECT_NEAR(s.mean_pressure[1][1] - s.mean_pressure[0][1], static_cast<double>(s.sends) / s.audience, 1e-9);
  EXPECT_NE(s.Format().find("customers skipped"), std::string::npos);
}

TEST_F(PushRunTest, ConsentSkipsEveryOptedOutCustomerAndCountsThem) {
  Open();
  int64_t opted_out = 0;
  engine_->WithDataset([&](const Dataset& ds) {
    for (const Customer& c : ds.customers) opted_out += c.opt_out >> kWechatPush & 1u;
  });
  ASSERT_GT(opted_out, 0) << "the generated bank should have opt-outs";
  const PushSummary s = Run(Options("run-consent"));
  ASSERT_GT(s.sends, 0);
  EXPECT_EQ(s.service, 0) << "service items are left out unless asked for";
  EXPECT_EQ(s.skipped_by.count("consent") ? s.skipped_by.at("consent") : 0, opted_out);
}

TEST_F(PushRunTest, ServiceItemsWhenIncludedAreExemptFromConsentCooldownAndQuietHours) {
  Open();
  auto o = Options("service-a", "a.csv");
  o.include_service = true;
  o.now = kNow + 10 * kMsPerHour;  // 22:00 local: marketing waits for 08:00, service goes now
  const PushSummary s = Run(o);
  ASSERT_GT(s.service, 0) << "the generated bank should have service content";
  auto tz = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(tz.ok());
  int64_t opted_out_served = 0;
  engine_->WithDataset([&](const Dataset& ds) {
    for (const Row& r : Read(o.out)) {
      const bool service = ds.items[*ds.FindItem(r.item)].service;
      EXPECT_EQ(r.scheduled, FormatIsoLocal(service ? o.now : kNow + 20 * kMsPerHour, *tz)) << r.item;
      EXPECT_EQ(r.reasons.find("exempt:service") != std::string::npos, service);
      if (ds.customers[*ds.FindCustomer(r.customer)].opt_out >> kWechatPush & 1u) {
        EXPECT_TRUE(service) << r.customer << " opted out but got marketing item " << r.item;
        ++opted_out_served;
      }
    }
  });
  EXPECT_GT(opted_out_served, 0);
  // Inside the cooldown of the first run's marketing pushes only service items reach those customers.
  const auto marketing_a = Marketing(Read(o.out));
  o.run_id = "service-b";
  o.out = scratch_ + "/b.csv";
  o.now += kMsPerHour;
  const PushSummary b = Run(o);
  EXPECT_GT(b.service, 0);
  for (const auto& c : Marketing(Read(o.out)))
    EXPECT_EQ(marketing_a.count(c), 0u) << c << " pushed inside the cooldown";
}

TEST_F(PushRunTest, RerunWithTheSameRunIdReplaysTheListAndCountsNothingTwice) {
  Open();
  const PushSummary first = Run(Options("run-2", "a.csv"));
  auto again = Options("run-2", "b.csv");
  again.now = kNow + kMsPerHour;  // even later: the list of a run id stays what it was
  const PushSummary second = Run(again);
  EXPECT_EQ(second.replayed, first.sent_customers);
  EXPECT_EQ(Sends(Read(scratch_ + "/a.csv")), Sends(Read(scratch_ + "/b.csv")));
  for (const auto& [c, n] : StoreSends("run-2")) EXPECT_EQ(n, 1) << c;
  EXPECT_EQ(TotalStorePushes(), first.sends);
}

TEST_F(PushRunTest, ARunStoppedHalfWayResumesWithoutDuplicatesToTheSameList) {
  // The reference: one uninterrupted run in its own store.
  Open();
  Run(Options("run-3", "reference.csv"));
  const auto reference = Sends(Read(scratch_ + "/reference.csv"));
  engine_.reset();
  auto o2 = OptionsFor(scratch_ + "/other");
  Open(o2);
  auto stopped = Options("run-3", "resumed.csv");
  stopped.stop_after = 500;
  auto s = RunPush(engine_.get(), stopped);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(std::filesystem::exists(scratch_ + "/resumed.csv")) << "a stopped run writes no list";
  const auto partial = StoreSends("run-3");
  EXPECT_GT(partial.size(), 100u);
  EXPECT_LT(partial.size(), reference.size());
  const PushSummary resumed = Run(Options("run-3", "resumed.csv"));
  EXPECT_EQ(resumed.replayed, static_cast<int64_t>(partial.size()));
  EXPECT_EQ(Sends(Read(scratch_ + "/resumed.csv")), reference);
  const auto stored = StoreSends("run-3");
  EXPECT_EQ(stored.size(), reference.size());
  for (const auto& [c, n] : stored) EXPECT_EQ(n, 1) << c << " got two sends";
}

TEST_F(PushRunTest, DryRunReservesNothingAndListsWhatTheRealRunSends) {
  Open();
  auto dry = Options("", "dry.csv");
  dry.dry_run = true;
  const PushSummary d = Run(dry);
  EXPECT_GT(d.sends, 0);
  EXPECT_EQ(TotalStorePushes(), 0);
  Run(Options("run-4", "real.csv"));
  EXPECT_EQ(Sends(Read(scratch_ + "/dry.csv")), Sends(Read(scratch_ + "/real.csv")));
}

TEST_F(PushRunTest, CooldownAndCapsBlockLaterRunsAndAreCountedByRule) {
  auto eo = OptionsFor(scratch_);
  eo.policy.caps = {{"push_twice", policy::CapScope::kCustomerChannel, "wechat_push", "contact", 2, 7 * kMsPerDay,
                     policy::WindowKind::kRolling}};
  eo.policy.cooldowns = {{"wechat_push", 4 * kMsPerHour}};
  Open(eo);
  Run(Options("cap-a", "a.csv"));
  const auto marketing_a = Marketing(Read(scratch_ + "/a.csv"));
  ASSERT_GT(marketing_a.size(), 500u);
  auto ob = Options("cap-b", "b.csv");
  ob.now = kNow + kMsPerHour;  // inside the cooldown: only service items (exempt) may go
  const PushSummary b = Run(ob);
  for (const auto& c : Marketing(Read(ob.out)))
    EXPECT_EQ(marketing_a.count(c), 0u) << c << " pushed inside the cooldown";
  EXPECT_GT(b.skipped_by.count("cooldown") ? b.skipped_by.at("cooldown") : 0,
            static_cast<int64_t>(marketing_a.size()) / 2);
  ob.run_id = "cap-c";
  ob.out = scratch_ + "/c.csv";
  ob.now = kNow - 9 * kMsPerHour + kMsPerDay;  // next day 03:00: scheduled for 08:00, past the cooldown
  Run(ob);
  std::set<std::string> twice;
  for (const auto& c : Marketing(Read(ob.out))) {
    if (marketing_a.count(c)) twice.insert(c);
  }
  ASSERT_GT(twice.size(), 300u);
  ob.run_id = "cap-d";
  ob.out = scratch_ + "/d.csv";
  ob.now = kNow + 2 * kMsPerDay;
  const PushSummary d = Run(ob);  // two pushes in 7 days used up: the cap blocks a third
  for (const auto& c : Marketing(Read(ob.out))) EXPECT_EQ(twice.count(c), 0u) << c << " pushed a third time";
  EXPECT_GT(d.skipped_by.count("cap.customer_channel") ? d.skipped_by.at("cap.customer_channel") : 0,
            static_cast<int64_t>(twice.size()) / 2);
}

TEST_F(PushRunTest, QuietHoursScheduleSendsForTheEndOfTheWindow) {
  Open();
  auto o = Options("quiet-schedule");
  o.now = kNow + 10 * kMsPerHour;  // 22:00 local
  const PushSummary s = Run(o);
  EXPECT_GT(s.sends, 1000);
  EXPECT_EQ(s.scheduled + s.service, s.sends);
  auto tz = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(tz.ok());
  const std::string at = FormatIsoLocal(kNow + 20 * kMsPerHour, *tz);  // 08:00 the next morning
  for (const Row& r : Read(o.out)) {
    if (IsService(r.item)) continue;  // exempt: goes at once
    EXPECT_EQ(r.scheduled, at);
    EXPECT_NE(r.reasons.find("scheduled:quiet_hours"), std::string::npos);
  }
}

TEST_F(PushRunTest, QuietHoursDropSendsNothingInsideTheWindow) {
  auto eo = OptionsFor(scratch_);
  eo.policy.quiet_hours = {{"wechat_push", 21 * 60, 8 * 60, policy::QuietAction::kDrop}};
  Open(eo);
  auto o = Options("quiet-drop");
  o.now = kNow + 10 * kMsPerHour;
  const PushSummary s = Run(o);
  EXPECT_TRUE(Marketing(Read(o.out)).empty());
  EXPECT_EQ(s.sends, s.service);
  EXPECT_GT(s.skipped_by.count("quiet_hours") ? s.skipped_by.at("quiet_hours") : 0, 500);
  EXPECT_EQ(TotalStorePushes(), s.service);
}

TEST_F(PushRunTest, SeveralItemsPerCustomerAreDistinct) {
  Open();
  auto o = Options("multi");
  o.per_customer = 3;
  // The default caps allow one marketing push a calendar day: three items need a looser policy.
  engine_.reset();
  auto eo = OptionsFor(scratch_);
  eo.policy.caps.clear();
  Open(eo);
  const PushSummary s = Run(o);
  std::map<std::string, std::set<std::string>> items;
  for (const Row& r : Read(o.out)) EXPECT_TRUE(items[r.customer].insert(r.item).second);
  EXPECT_GT(s.sends, 2 * s.sent_customers);
  for (const auto& [c, set] : items) EXPECT_LE(set.size(), 3u);
}

TEST_F(PushRunTest, AudienceFileAndExpressionSelectTheirCustomers) {
  Open();
  std::ofstream(scratch_ + "/ids.txt") << "C0000001\nC0000002\nNOBODY\n";
  auto o = Options("file");
  o.audience = "@" + scratch_ + "/ids.txt";
  const PushSummary s = Run(o);
  EXPECT_EQ(s.audience, 3);
  EXPECT_EQ(s.skipped_by.count("unknown_customer") ? s.skipped_by.at("unknown_customer") : 0, 1);
  auto e = Options("expr", "expr.csv");
  e.audience = "tier = private";
  const PushSummary t = Run(e);
  int64_t privates = 0;
  engine_->WithDataset([&](const Dataset& ds) {
    for (const Customer& c : ds.customers) privates += c.tier == Tier::kPrivate;
  });
  EXPECT_EQ(t.audience, privates);
}

TEST_F(PushRunTest, BadInputFailsBeforeAnythingIsReserved) {
  Open();
  auto o = Options("bad");
  o.audience = "tier = mass and agee > 3";
  EXPECT_NE(RunPush(engine_.get(), o).status().message().find("position 17: unknown field 'agee'"), std::string::npos);
  o.audience = "all";
  o.channel = "fax";
  EXPECT_NE(RunPush(engine_.get(), o).status().message().find("unknown channel 'fax'"), std::string::npos);
  o.channel = "app_home";
  EXPECT_FALSE(RunPush(engine_.get(), o).ok());
  o.channel = "wechat_push";
  o.out = scratch_ + "/no/such/dir/list.csv";
  EXPECT_EQ(RunPush(engine_.get(), o).status().code(), StatusCode::kIoError);
  o.out = scratch_ + "/list.csv";
  o.run_id = "";
  EXPECT_FALSE(RunPush(engine_.get(), o).ok());
  EXPECT_EQ(TotalStorePushes(), 0);
}

TEST_F(PushRunTest, ExactContentScanChoosesWhatTheIndexChooses) {
  // The fixture's content index is exact (Faiss flat below 30k items), so the push path's own
  // matrix-product scan must pick the same items.
  auto dry = Options("", "scan.csv");
  dry.dry_run = true;
  Open();
  Run(dry);
  engine_.reset();
  auto eo = OptionsFor(scratch_);
  eo.serving.push_exact_max_items = 0;  // always the index
  Open(eo);
  dry.out = scratch_ + "/index.csv";
  Run(dry);
  const auto scan = Sends(Read(scratch_ + "/scan.csv")), index = Sends(Read(scratch_ + "/index.csv"));
  ASSERT_GT(scan.size(), 1000u);
  size_t same = 0;
  for (const auto& x : scan) same += std::binary_search(index.begin(), index.end(), x);
  EXPECT_GE(same, scan.size() * 99 / 100);  // float summation order may reorder near-ties
}

TEST_F(PushRunTest, PressurePlotIsAPng) {
  Open();
  auto o = Options("plot");
  o.plot = scratch_ + "/pressure.png";
  o.summary = scratch_ + "/summary.txt";
  Run(o);
  std::ifstream in(o.plot, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  std::ifstream t(o.summary);
  std::string first;
  std::getline(t, first);
  EXPECT_NE(first.find("push run plot"), std::string::npos);
}

}  // namespace
}  // namespace qm::push
