// One suite, run against both event-store backends (embedded RocksDB and Redis): caps are
// exact, reservations expire or get confirmed, writes are idempotent, history/export/compaction
// work, and concurrent check-and-count never exceeds a cap.
#include "qianmian/policy/event_store.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "policy_test_util.h"

namespace qm::policy {
namespace {

using namespace qm::policy::testing;  // NOLINT

class EventStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      if (!RedisServer::Installed()) GTEST_SKIP() << RedisServer::kBinary << " is not installed";
      ASSERT_NE(RedisServer::Port(), 0) << "could not start a private redis-server";
    }
    config_ = StoreFor(GetParam(), dir_.path());
    auto s = EventStore::Open(config_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (int i = 0; i < 12; ++i) {
      bank_.Add("item" + std::to_string(i), ItemKind::kContent, i < 6 ? "news" : "tips",
                i % 3 == 0 ? "spring" : "");
    }
  }

  Policy PolicyWith(std::vector<CapRule> caps, std::vector<CooldownRule> cooldowns = {}) {
    PolicyConfig c = NoRules();
    c.caps = std::move(caps);
    c.cooldowns = std::move(cooldowns);
    return MakePolicy(c);
  }

  // Items taken by a reservation.
  static std::vector<int> Taken(const Contacts& c) {
    std::vector<int> v;
    for (size_t i = 0; i < c.decisions.size(); ++i) if (c.decisions[i].taken) v.push_back(static_cast<int>(i));
    return v;
  }

  TempDir dir_;
  StoreConfig config_;
  std::unique_ptr<EventStore> store_;
  Bank bank_;
  const TimeMs t0_ = At("2024-03-04T10:00");
};

const CapRule kPushWeekly{"push_weekly", CapScope::kCustomerChannel, "wechat_push", "contact", 3,
                          7 * kMsPerDay, WindowKind::kRolling};
const CapRule kHomeItemDaily{"home_item", CapScope::kCustomerItem, "app_home", "impression", 1,
                             kMsPerDay, WindowKind::kRolling};

TEST_P(EventStoreTest, AllowsTheThirdPushAndBlocksTheFourthInSevenDays) {
  Policy p = PolicyWith({kPushWeekly});
  Customer c = MakeCustomer("alice");
  for (int run = 0; run < 3; ++run) {
    auto r = p.Reserve(store_.get(), c, bank_.Cands({static_cast<uint32_t>(run)}), kWechatPush,
                       t0_ + run * kMsPerDay, "run" + std::to_string(run), 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->decisions[0].taken) << "push " << run + 1;
  }
  auto fourth = p.Reserve(store_.get(), c, bank_.Cands({5}), kWechatPush, t0_ + 3 * kMsPerDay, "run3", 1);
  ASSERT_TRUE(fourth.ok());
  EXPECT_FALSE(fourth->decisions[0].taken);
  EXPECT_EQ(fourth->decisions[0].blocked_by, std::vector<std::string>{blocked::kCapCustomerChannel});
  auto later = p.Reserve(store_.get(), c, bank_.Cands({5}), kWechatPush, t0_ + 7 * kMsPerDay, "run4", 1);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->decisions[0].taken) << "the first push has left the window";
}

TEST_P(EventStoreTest, TakesAllowedItemsInOrderUpToTheCap) {
  Policy p = PolicyWith({{"home", CapScope::kCustomerChannel, "app_home", "impression", 4, kMsPerDay, WindowKind::kRolling}});
  auto r = p.Reserve(store_.get(), MakeCustomer("bob"), bank_.All(), kAppHome, t0_, "req1", 10);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Taken(*r), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(Has(r->decisions[4], blocked::kCapCustomerChannel));
  auto again = p.Reserve(store_.get(), MakeCustomer("bob"), bank_.All(), kAppHome, t0_ + 1, "req2", 10);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(Taken(*again).empty());
}

TEST_P(EventStoreTest, ReservationIsReleasedWhenNoImpressionConfirmsIt) {
  Policy p = PolicyWith({kHomeItemDaily});
  Customer c = MakeCustomer("carol");
  ASSERT_TRUE(p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_, "req1", 1)->decisions[0].taken);
  auto during = p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_ + 30 * kMsPerMinute - 1, "req2", 1);
  EXPECT_EQ(during->decisions[0].blocked_by, std::vector<std::string>{blocked::kCapCustomerItem});
  auto after = p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_ + 30 * kMsPerMinute, "req3", 1);
  EXPECT_TRUE(after->decisions[0].taken) << "released after the 30 min default";
}

TEST_P(EventStoreTest, ImpressionConfirmsTheReservationWithoutASecondUnit) {
  PolicyConfig pc = NoRules();
  pc.caps = {{"home_item", CapScope::kCustomerItem, "app_home", "impression", 2, kMsPerDay, WindowKind::kRolling}};
  Policy p = MakePolicy(pc);
  Customer c = MakeCustomer("dave");
  ASSERT_TRUE(p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_, "req1", 1)->decisions[0].taken);
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("dave", 0, EventType::kImpression, "app_home", t0_ + 1000, "req1")}).ok());
  auto st = store_->State("dave");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->records.size(), 1u) << "confirmed, not counted twice";
  EXPECT_EQ(st->records[0].expires, 0);
  // Still counted after the reservation TTL: one unit used, one left.
  auto r = p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_ + kMsPerHour, "req2", 1);
  EXPECT_TRUE(r->decisions[0].taken);
  auto full = p.Reserve(store_.get(), c, bank_.Cands({0}), kAppHome, t0_ + kMsPerHour + 10 * kMsPerMinute, "req3", 1);
  EXPECT_EQ(full->decisions[0].blocked_by, std::vector<std::string>{blocked::kCapCustomerItem});
}

TEST_P(EventStoreTest, ImpressionWithoutAReservationCountsAsAContact) {
  Policy p = PolicyWith({kHomeItemDaily});
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("erin", 2, EventType::kImpression, "app_home", t0_, "other")}).ok());
  auto r = p.Check(store_.get(), MakeCustomer("erin"), bank_.Cands({2, 3}), kAppHome, t0_ + 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has((*r)[0], blocked::kCapCustomerItem));
  EXPECT_TRUE((*r)[1].blocked_by.empty());
}

TEST_P(EventStoreTest, ResubmittingTheSameRequestCountsNothingTwice) {
  Policy p = PolicyWith({kPushWeekly});
  Customer c = MakeCustomer("frank");
  auto first = p.Reserve(store_.get(), c, bank_.Cands({0, 1}), kWechatPush, t0_, "run-42", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->replayed);
  auto again = p.Reserve(store_.get(), c, bank_.Cands({0, 1}), kWechatPush, t0_ + 5000, "run-42", 1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(Taken(*again), std::vector<int>{0});
  auto log = store_->Log("frank", 0, 100);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u) << "one push_sent";
  EXPECT_EQ((*log)[0].type, EventType::kPushSent);
  EXPECT_EQ((*log)[0].request_id, "run-42");
  // The client's push_sent for the same run is a duplicate, not a second unit.
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("frank", 0, EventType::kPushSent, "wechat_push", t0_ + 9000, "run-42")}).ok());
  EXPECT_EQ(store_->State("frank")->records.size(), 1u);
  EXPECT_EQ(store_->Log("frank", 0, 100)->size(), 1u);
}

// A push run reserves a batch of customers at once: the outcome equals reserving them one by
// one (caps exact, a customer twice in a batch sees its first take, a re-run replays), and
// every taken send is recorded.
TEST_P(EventStoreTest, ReserveManyDecidesEachCustomerAsReserveDoes) {
  Policy p = PolicyWith({kPushWeekly});
  Customer a = MakeCustomer("ann"), b = MakeCustomer("ben"), c = MakeCustomer("cat");
  // ben already has 3 pushes this week: a 4th is blocked.
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(p.Reserve(store_.get(), b, bank_.Cands({static_cast<uint32_t>(k)}), kWechatPush,
                          t0_ - (k + 1) * kMsPerHour, "earlier" + std::to_string(k), 1).ok());
  }
  std::vector<const Customer*> who = {&a, &b, &c, &a};
  std::vector<std::vector<Candidate>> items = {bank_.Cands({4, 5}), bank_.Cands({4}), bank_.Cands({6}),
                                               bank_.Cands({7})};
  auto r = p.ReserveMany(store_.get(), who, items, kWechatPush, t0_, "run-7", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(Taken((*r)[0]), std::vector<int>{0});
  EXPECT_TRUE((*r)[1].decisions[0].blocked_by == std::vector<std::string>{blocked::kCapCustomerChannel});
  EXPECT_EQ(Taken((*r)[2]), std::vector<int>{0});
  EXPECT_TRUE((*r)[3].replayed) << "ann's second plan under the same run id sees the first one's take";
  EXPECT_EQ(store_->Log("ann", 0, 100)->size(), 1u);
  EXPECT_EQ(store_->Log("cat", 0, 100)->size(), 1u);
  EXPECT_EQ(store_->Log("ben", 0, 100)->size(), 3u);
  // The re-run replays every earlier take and counts nothing.
  auto again = p.ReserveMany(store_.get(), {&a, &b, &c}, {bank_.Cands({4, 5}), bank_.Cands({4}), bank_.Cands({6})},
                             kWechatPush, t0_ + 1000, "run-7", 1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)[0].replayed);
  EXPECT_TRUE((*again)[2].replayed);
  EXPECT_EQ(store_->State("ann")->records.size(), 1u);
  EXPECT_EQ(store_->State("cat")->records.size(), 1u);
  EXPECT_EQ(store_->State("ben")->records.size(), 3u);
}

TEST_P(EventStoreTest, AppendingTheSameEventsTwiceRecordsThemOnce) {
  Policy p = PolicyWith({});
  std::vector<StoredEvent> evs = {bank_.Event("gina", 1, EventType::kClick, "app_home", t0_),
                                  bank_.Event("gina", 2, EventType::kDismiss, "app_home", t0_ + 1),
                                  bank_.Event("hugo", 3, EventType::kConvert, "app_home", t0_ + 2, "q")};
  ASSERT_TRUE(p.Record(store_.get(), evs).ok());
  ASSERT_TRUE(p.Record(store_.get(), evs).ok());
  EXPECT_EQ(store_->Log("gina", 0, 100)->size(), 2u);
  EXPECT_EQ(store_->State("gina")->records.size(), 2u);
  EXPECT_EQ(store_->Log("hugo", 0, 100)->size(), 1u);
}

TEST_P(EventStoreTest, ClickedAndDismissedItemsAreBlockedFromTheStore) {
  Policy p = PolicyWith({});
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("ivan", 1, EventType::kClick, "app_home", t0_),
                                      bank_.Event("ivan", 2, EventType::kDismiss, "app_home", t0_)}).ok());
  auto r = p.Check(store_.get(), MakeCustomer("ivan"), bank_.Cands({0, 1, 2}), kAppHome, t0_ + kMsPerDay);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].blocked_by.empty());
  EXPECT_EQ((*r)[1].blocked_by, std::vector<std::string>{blocked::kClicked});
  EXPECT_EQ((*r)[2].blocked_by, std::vector<std::string>{blocked::kDismissed});
}

TEST_P(EventStoreTest, CooldownCountsOneRequestAsOneContact) {
  Policy p = PolicyWith({}, {{"app_home", kMsPerHour}});
  auto first = p.Reserve(store_.get(), MakeCustomer("jade"), bank_.Cands({0, 1, 2}), kAppHome, t0_, "req1", 3);
  EXPECT_EQ(Taken(*first), (std::vector<int>{0, 1, 2})) << "one request is one contact";
  auto second = p.Reserve(store_.get(), MakeCustomer("jade"), bank_.Cands({3}), kAppHome, t0_ + 10 * kMsPerMinute, "req2", 1);
  EXPECT_EQ(second->decisions[0].blocked_by, std::vector<std::string>{blocked::kCooldown});
}

TEST_P(EventStoreTest, CheckCountsNothing) {
  Policy p = PolicyWith({kPushWeekly});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(p.Check(store_.get(), MakeCustomer("kim"), bank_.All(), kWechatPush, t0_).ok());
  }
  EXPECT_TRUE(store_->State("kim")->records.empty());
  EXPECT_TRUE(store_->Log("kim", 0, 10)->empty());
}

TEST_P(EventStoreTest, HistoryShowsContactsAndTheUsageOfEachCap) {
  Policy p = PolicyWith({kPushWeekly, kHomeItemDaily}, {{"wechat_push", 4 * kMsPerHour}});
  Customer c = MakeCustomer("lena");
  ASSERT_TRUE(p.Reserve(store_.get(), c, bank_.Cands({0}), kWechatPush, t0_, "run1", 1)->decisions[0].taken);
  ASSERT_TRUE(p.Reserve(store_.get(), c, bank_.Cands({1}), kWechatPush, t0_ + kMsPerDay, "run2", 1)->decisions[0].taken);
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("lena", 1, EventType::kPushOpen, "wechat_push", t0_ + kMsPerDay + 60000, "run2")}).ok());
  auto h = p.History(store_.get(), "lena", 0, 10, t0_ + kMsPerDay + kMsPerHour);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->events.size(), 3u);
  EXPECT_EQ(h->events[0].type, EventType::kPushOpen) << "newest first";
  EXPECT_EQ(h->events[2].item_id, "item0");
  bool saw_weekly = false, saw_cooldown = false;
  for (const CapUsage& u : h->caps) {
    if (u.rule == "push_weekly") {
      saw_weekly = true;
      EXPECT_EQ(u.scope, "wechat_push");
      EXPECT_EQ(u.used, 2);
      EXPECT_EQ(u.limit, 3);
      EXPECT_EQ(u.window_ms, 7 * kMsPerDay);
    }
    if (u.rule == blocked::kCooldown && u.scope == "wechat_push") {
      saw_cooldown = true;
      EXPECT_EQ(u.used, 1);
    }
  }
  EXPECT_TRUE(saw_weekly);
  EXPECT_TRUE(saw_cooldown);
  auto recent = p.History(store_.get(), "lena", t0_ + 1, 10, t0_ + kMsPerDay + kMsPerHour);
  EXPECT_EQ(recent->events.size(), 2u) << "since excludes the first push";
  EXPECT_EQ(p.History(store_.get(), "lena", 0, 1, t0_)->events.size(), 1u) << "limit";
}

TEST_P(EventStoreTest, ExportReturnsEveryRecordedEvent) {
  Policy p = PolicyWith({});
  std::vector<StoredEvent> evs;
  for (int i = 0; i < 40; ++i) {
    evs.push_back(bank_.Event("cust" + std::to_string(i % 7), i % 12, EventType::kClick, "app_home", t0_ + i));
  }
  ASSERT_TRUE(p.Record(store_.get(), evs).ok());
  std::vector<StoredEvent> seen;
  ASSERT_TRUE(store_->Export([&](const StoredEvent& e) { seen.push_back(e); return true; }).ok());
  ASSERT_EQ(seen.size(), evs.size());
  auto key = [](const StoredEvent& e) { return e.customer_id + "/" + std::to_string(e.ts); };
  std::set<std::string> want, got;
  for (const auto& e : evs) want.insert(key(e));
  for (const auto& e : seen) got.insert(key(e));
  EXPECT_EQ(want, got);
  int n = 0;
  ASSERT_TRUE(store_->Export([&](const StoredEvent&) { return ++n < 5; }).ok());
  EXPECT_EQ(n, 5) << "stops when the callback says so";
}

TEST_P(EventStoreTest, CompactionDropsEventsPastRetentionAndStaleCapState) {
  Policy p = PolicyWith({kPushWeekly});
  const TimeMs old = t0_ - 100 * kMsPerDay;
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("mona", 0, EventType::kPushSent, "wechat_push", old, "r0")}).ok());
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("mona", 1, EventType::kPushSent, "wechat_push", t0_ - 20 * kMsPerDay, "r1")}).ok());
  ASSERT_EQ(store_->Log("mona", 0, 10)->size(), 2u);
  ASSERT_TRUE(store_->Compact(t0_, p.state_options()).ok());
  auto log = store_->Log("mona", 0, 10);
  ASSERT_EQ(log->size(), 1u) << "90-day retention";
  EXPECT_EQ((*log)[0].item_id, "item1");
  EXPECT_TRUE(store_->State("mona")->records.empty()) << "older than the longest window (7d) + margin";
}

TEST_P(EventStoreTest, ConcurrentRequestsNeverTakeTheLastUnitTwice) {
  const int kCustomers = 6, kThreads = 8, kPerThread = 60;
  Policy p = PolicyWith({{"home", CapScope::kCustomerChannel, "app_home", "impression", 5, kMsPerDay, WindowKind::kRolling},
                         {"item", CapScope::kCustomerItem, "app_home", "impression", 1, kMsPerDay, WindowKind::kRolling}});
  // Redis: half the threads go through a second store instance (another "replica").
  std::unique_ptr<EventStore> second;
  if (GetParam() == "redis") {
    auto s = EventStore::Open(config_);
    ASSERT_TRUE(s.ok());
    second = std::move(s).value();
  }
  std::atomic<int> taken{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      EventStore* store = (second && t % 2) ? second.get() : store_.get();
      std::mt19937 rng(1234 + t);
      for (int i = 0; i < kPerThread; ++i) {
        Customer c = MakeCustomer("hot" + std::to_string(rng() % kCustomers));
        std::vector<uint32_t> order = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<Candidate> cands;
        for (int k = 0; k < 3; ++k) cands.push_back(bank_.Cand(order[k]));
        auto r = p.Reserve(store, c, cands, kAppHome, t0_ + i, "t" + std::to_string(t) + "_" + std::to_string(i), 2);
        if (!r.ok()) { ++errors; continue; }
        for (const Decision& d : r->decisions) taken += d.taken;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  int total = 0;
  for (int i = 0; i < kCustomers; ++i) {
    auto st = store_->State("hot" + std::to_string(i));
    ASSERT_TRUE(st.ok());
    std::map<std::string, int> per_item;
    for (const ContactRecord& r : st->records) ++per_item[r.item];
    EXPECT_EQ(st->records.size(), 5u) << "every customer hits the cap exactly";
    for (const auto& [item, n] : per_item) EXPECT_EQ(n, 1) << item;
    total += static_cast<int>(st->records.size());
  }
  EXPECT_EQ(taken.load(), total);
}

TEST_P(EventStoreTest, ReopeningTheStoreRecoversTheCounters) {
  Policy p = PolicyWith({kPushWeekly});
  for (int run = 0; run < 3; ++run) {
    ASSERT_TRUE(p.Reserve(store_.get(), MakeCustomer("nina"), bank_.Cands({0}), kWechatPush,
                          t0_ + run * kMsPerHour, "r" + std::to_string(run), 1)->decisions[0].taken);
  }
  store_.reset();
  auto s = EventStore::Open(config_);
  ASSERT_TRUE(s.ok());
  store_ = std::move(s).value();
  auto r = p.Reserve(store_.get(), MakeCustomer("nina"), bank_.Cands({1}), kWechatPush, t0_ + 4 * kMsPerHour, "r9", 1);
  EXPECT_EQ(r->decisions[0].blocked_by, std::vector<std::string>{blocked::kCapCustomerChannel});
}

TEST_P(EventStoreTest, NightPushIsCountedAtTheEndOfQuietHoursAndAlertsGoOutAtOnce) {
  PolicyConfig pc = NoRules();
  pc.quiet_hours = PolicyConfig{}.quiet_hours;  // 21:00-08:00, schedule
  pc.caps = {kPushWeekly};
  Policy p = MakePolicy(pc);
  bank_[7].service = true;
  const TimeMs night = At("2024-03-04T22:15");
  auto r = p.Reserve(store_.get(), MakeCustomer("olga"), bank_.Cands({0, 7}), kWechatPush, night, "run-n", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->decisions[0].taken);
  EXPECT_EQ(r->decisions[0].send_at, At("2024-03-05T08:00"));
  EXPECT_TRUE(r->decisions[1].taken);
  EXPECT_EQ(r->decisions[1].send_at, night);
  auto log = store_->Log("olga", 0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].ts, At("2024-03-05T08:00")) << "the marketing push is recorded when it is sent";
  EXPECT_FALSE((*log)[0].service);
  EXPECT_EQ((*log)[1].item_id, "item7");
  EXPECT_TRUE((*log)[1].service);
  auto h = p.History(store_.get(), "olga", 0, 10, At("2024-03-05T09:00"));
  ASSERT_TRUE(h.ok());
  ASSERT_FALSE(h->caps.empty());
  EXPECT_EQ(h->caps[0].used, 1) << "the service alert is not counted by default";
}

TEST_P(EventStoreTest, ReservationNeedsARequestId) {
  Policy p = PolicyWith({});
  auto r = p.Reserve(store_.get(), MakeCustomer("pia"), bank_.Cands({0}), kAppHome, t0_, "", 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, EventStoreTest, ::testing::Values("embedded", "redis"),
                         [](const auto& info) { return info.param; });

TEST(EventStoreOpen, RefusesAnUnreachableRedis) {
  StoreConfig c;
  c.backend = "redis";
  c.redis_port = 1;  // nothing listens on 127.0.0.1:1
  auto s = EventStore::Open(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

TEST(StoreConfig, ReadsTheStoreSection) {
  auto f = ConfigFile::Parse("[store]\nbackend = \"redis\"\nredis_port = 7000\nretention = \"30d\"\n");
  ASSERT_TRUE(f.ok());
  StoreConfig c;
  ReadStoreConfig(f->Root().Table("store"), &c);
  ASSERT_TRUE(f->Finish().ok());
  EXPECT_EQ(c.backend, "redis");
  EXPECT_EQ(c.redis_port, 7000);
  EXPECT_EQ(c.retention, 30 * kMsPerDay);
}

}  // namespace
}  // namespace qm::policy
