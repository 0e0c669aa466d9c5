// One suite, run against both event-store backends (embedded RocksDB and Redis): caps are
// exact, reservations expire or get confirmed, writes are idempotent, history/export/compaction
// work, and concurrent check-and-count never exceeds a cap.
#include "qianmian/policy/event_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
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
    if (const std::string why = SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(BackendStarted(GetParam())) << "could not start a private redis-server";
    config_ = StoreFor(GetParam(), dir_.path());
    auto s = EventStore::Open(config_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (int i = 0; i < 12; ++i) {
      bank_.Add("item" + std::to_string(i), ItemKind::kContent, i < 6 ? "news" : "tips", i % 3 == 0 ? "spring" : "");
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
    for (size_t i = 0; i < c.decisions.size(); ++i)
      if (c.decisions[i].taken) v.push_back(static_cast<int>(i));
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
                             kMsPerDay,   WindowKind::kRolling};

TEST_P(EventStoreTest, AllowsTheThirdPushAndBlocksTheFourthInSevenDays) {
  Policy p = PolicyWith({kPushWeekly});
  Customer c = MakeCustomer("alice");
  for (int run = 0; run < 3; ++run) {
    auto r = p.Reserve(store_.get(), c, bank_.Cands({static_cast<uint32_t>(run)}), kWechatPush, t0_ + run * kMsPerDay,
                       "run" + std::to_string(run), 1);
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
  Policy p =
      PolicyWith({{"home", CapScope::kCustomerChannel, "app_home", "impression", 4, kMsPerDay, WindowKind::kRolling}});
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
  ASSERT_TRUE(
      p.Record(store_.get(), {bank_.Event("dave", 0, EventType::kImpression, "app_home", t0_ + 1000, "req1")}).ok());
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
  ASSERT_TRUE(
      p.Record(store_.get(), {bank_.Event("frank", 0, EventType::kPushSent, "wechat_push", t0_ + 9000, "run-42")})
          .ok());
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
                          t0_ - (k + 1) * kMsPerHour, "earlier" + std::to_string(k), 1)
                    .ok());
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

// Seeding (serve's first opening: the embedded store's bulk load into table files) records what
// Append records: the same contact states and logs, after reopening too, in one part or in two
// added concurrently; customers must come in id order, one at a time, the parts' ranges in
// order. A store that already holds events is seeded through Append.
// A contact state, one line per record.
std::string Describe(const CustomerState& state) {
  std::string out;
  for (const ContactRecord& r : state.records) {
    out += std::to_string(r.ts) + " " + std::to_string(static_cast<int>(r.type)) + " " + r.channel + " " + r.item +
           " " + r.campaign + " " + r.category + " " + r.request_id + " " + (r.counted ? "counted" : "-") + " " +
           std::to_string(r.expires) + "\n";
  }
  return out;
}

TEST_P(EventStoreTest, SeedingRecordsWhatAppendRecords) {
  std::mt19937 rng(7);
  const EventType types[] = {EventType::kImpression, EventType::kClick,   EventType::kDismiss,
                             EventType::kPushSent,   EventType::kConvert, EventType::kOptOut};
  const char* channels[] = {"app_home", "wechat_push"};
  std::map<std::string, std::vector<StoredEvent>> by_customer;  // id order
  for (int c = 0; c < 80; ++c) {
    const std::string id = "c" + std::to_string(c);  // "c10" sorts before "c2": not the creation order
    std::vector<StoredEvent>& evs = by_customer[id];
    TimeMs ts = t0_ - 40 * kMsPerDay + static_cast<TimeMs>(rng() % (5 * kMsPerDay));
    for (int i = 0, n = static_cast<int>(rng() % 30); i < n; ++i) {
      ts += static_cast<TimeMs>(rng() % (2 * kMsPerDay));
      evs.push_back(bank_.Event(id, rng() % 12, types[rng() % (i % 9 == 8 ? 6 : 5)], channels[rng() % 2], ts,
                                rng() % 4 == 0 ? "req" + std::to_string(i) : ""));
      if (rng() % 10 == 0) evs.push_back(evs.back());  // an exact duplicate
    }
  }
  Policy p = PolicyWith({kPushWeekly});
  const StoredEvent early = bank_.Event("c3", 1, EventType::kClick, "app_home", t0_ - 50 * kMsPerDay);
  std::vector<const std::vector<StoredEvent>*> ordered;
  for (const auto& [id, evs] : by_customer) ordered.push_back(&evs);
  for (int combination = 0; combination < 4; ++combination) {
    const bool holds_events = combination % 2 == 1;
    const int parts = combination < 2 ? 1 : 2;
    SCOPED_TRACE(std::string(holds_events ? "a store holding events" : "a new store") + ", parts " +
                 std::to_string(parts));
    TempDir seeded_dir, appended_dir;
    StoreConfig seeded_config = StoreFor(GetParam(), seeded_dir.path());
    auto seeded = EventStore::Open(seeded_config);
    auto appended = EventStore::Open(StoreFor(GetParam(), appended_dir.path()));
    ASSERT_TRUE(seeded.ok() && appended.ok());
    if (holds_events) {
      ASSERT_TRUE(p.Record(seeded->get(), {early}).ok());
      ASSERT_TRUE(p.Record(appended->get(), {early}).ok());
    }
    auto seeder = (*seeded)->Seed(p.state_options(), parts);
    ASSERT_TRUE(seeder.ok()) << seeder.status().ToString();
    // Part k: the k-th contiguous range of the id order, each part on its own thread.
    std::vector<Status> added(static_cast<size_t>(parts));
    auto add_part = [&](int part) {
      const size_t lo = ordered.size() * part / parts, hi = ordered.size() * (part + 1) / parts;
      for (size_t i = lo; i < hi && added[part].ok(); ++i) added[part] = (*seeder)->Add(part, *ordered[i]);
    };
    std::thread second(add_part, parts - 1);
    if (parts > 1) add_part(0);
    second.join();
    for (const Status& st : added) ASSERT_TRUE(st.ok()) << st.ToString();
    for (const auto& [id, evs] : by_customer) {
      if (!evs.empty()) {
        ASSERT_TRUE(p.Record(appended->get(), evs).ok());
      }
    }
    if (GetParam() == "embedded" && !holds_events) {
      for (const auto& [id, evs] : by_customer) {
        if (evs.empty()) continue;
        EXPECT_TRUE((*seeded)->Log(id, 0, 10)->empty()) << "a bulk load is visible only once finished";
        break;
      }
    }
    ASSERT_TRUE((*seeder)->Finish().ok());
    for (int reopen = 0; reopen < 2; ++reopen) {
      if (reopen == 1) {
        seeded->reset();
        seeded = EventStore::Open(seeded_config);
        ASSERT_TRUE(seeded.ok());
      }
      int64_t records = 0;
      for (const auto& [id, evs] : by_customer) {
        auto got = (*seeded)->State(id), want = (*appended)->State(id);
        ASSERT_TRUE(got.ok() && want.ok());
        EXPECT_EQ(Describe(*got), Describe(*want)) << id << (reopen ? " after reopening" : "");
        auto got_log = (*seeded)->Log(id, 0, 1000), want_log = (*appended)->Log(id, 0, 1000);
        ASSERT_TRUE(got_log.ok() && want_log.ok());
        EXPECT_EQ(*got_log, *want_log) << id;
        records += static_cast<int64_t>(got_log->size());
      }
      EXPECT_GT(records, 800);
    }
  }
  // Order: one customer per Add, ids ascending within a part, each once, parts in order.
  auto event = [&](const std::string& customer, uint32_t item) {
    return bank_.Event(customer, item, EventType::kClick, "app_home", t0_);
  };
  auto seeder = store_->Seed(PolicyWith({}).state_options(), 2);
  ASSERT_TRUE(seeder.ok());
  ASSERT_TRUE((*seeder)->Add(0, {event("b", 1)}).ok());
  EXPECT_EQ((*seeder)->Add(0, {event("a", 1)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*seeder)->Add(0, {event("b", 2)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*seeder)->Add(0, {event("c", 1), event("d", 1)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*seeder)->Add(2, {event("e", 1)}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*seeder)->Add(1, {event("x", 1)}).ok());
  ASSERT_TRUE((*seeder)->Finish().ok());
  EXPECT_EQ(store_->Log("b", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->Log("x", 0, 10)->size(), 1u);
  TempDir other_dir;
  auto other = EventStore::Open(StoreFor(GetParam(), other_dir.path()));
  ASSERT_TRUE(other.ok());
  auto crossed = (*other)->Seed(PolicyWith({}).state_options(), 2);
  ASSERT_TRUE(crossed.ok());
  ASSERT_TRUE((*crossed)->Add(0, {event("m", 1)}).ok());
  ASSERT_TRUE((*crossed)->Add(1, {event("c", 1)}).ok());
  EXPECT_EQ((*crossed)->Finish().code(), StatusCode::kInvalidArgument) << "part 1 starts below part 0's end";
}

TEST_P(EventStoreTest, ClickedAndDismissedItemsAreBlockedFromTheStore) {
  Policy p = PolicyWith({});
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("ivan", 1, EventType::kClick, "app_home", t0_),
                                      bank_.Event("ivan", 2, EventType::kDismiss, "app_home", t0_)})
                  .ok());
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
  auto second =
      p.Reserve(store_.get(), MakeCustomer("jade"), bank_.Cands({3}), kAppHome, t0_ + 10 * kMsPerMinute, "req2", 1);
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
  ASSERT_TRUE(
      p.Reserve(store_.get(), c, bank_.Cands({1}), kWechatPush, t0_ + kMsPerDay, "run2", 1)->decisions[0].taken);
  ASSERT_TRUE(p.Record(store_.get(),
                       {bank_.Event("lena", 1, EventType::kPushOpen, "wechat_push", t0_ + kMsPerDay + 60000, "run2")})
                  .ok());
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
  ASSERT_TRUE(store_
                  ->Export([&](const StoredEvent& e) {
                    seen.push_back(e);
                    return true;
                  })
                  .ok());
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
  ASSERT_TRUE(
      p.Record(store_.get(), {bank_.Event("mona", 1, EventType::kPushSent, "wechat_push", t0_ - 20 * kMsPerDay, "r1")})
          .ok());
  ASSERT_EQ(store_->Log("mona", 0, 10)->size(), 2u);
  ASSERT_TRUE(store_->Compact(t0_, p.state_options()).ok());
  auto log = store_->Log("mona", 0, 10);
  ASSERT_EQ(log->size(), 1u) << "90-day retention";
  EXPECT_EQ((*log)[0].item_id, "item1");
  EXPECT_TRUE(store_->State("mona")->records.empty()) << "older than the longest window (7d) + margin";
}

TEST_P(EventStoreTest, CompactionReachesEveryCustomerAndKeepsWhatIsStillNeeded) {
  // Enough customers that the embedded store's stripes hold several each (it compacts a stripe's
  // customers in chunks, each read without a lock and then written under one lock and one write).
  Policy p = PolicyWith({kPushWeekly});
  std::vector<StoredEvent> events, late;
  const int n = 1500;
  for (int i = 0; i < n; ++i) {
    const std::string c = "cust" + std::to_string(i);
    events.push_back(bank_.Event(c, 0, EventType::kPushSent, "wechat_push", t0_ - 20 * kMsPerDay, "old" + c));
    if (i % 3 == 0)
      events.push_back(bank_.Event(c, 1, EventType::kPushSent, "wechat_push", t0_ - kMsPerHour, "new" + c));
    late.push_back(bank_.Event(c, 2, EventType::kPushSent, "wechat_push", t0_ - kMsPerHour / 2, "late" + c));
  }
  ASSERT_TRUE(p.Record(store_.get(), events).ok());
  // Contacts recorded after the compaction read a chunk's states but before it wrote them back
  // (every customer's, before the embedded store's first step that takes a lock) are kept: it
  // writes back what is there when it writes, compacted, not what it read before. Redis has no
  // such steps.
  bool recorded = false;
  ASSERT_TRUE(store_
                  ->Compact(t0_, p.state_options(),
                            [&](const EventStore::Step& step) {
                              if (!recorded) recorded = p.Record(store_.get(), late).ok();
                              return step();
                            })
                  .ok());
  EXPECT_EQ(recorded, GetParam() == "embedded");
  if (!recorded) {
    ASSERT_TRUE(p.Record(store_.get(), late).ok());
  }
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    const std::string c = "cust" + std::to_string(i);
    auto st = store_->State(c);
    ASSERT_TRUE(st.ok());
    std::set<std::string> ids;
    for (const auto& r : st->records) ids.insert(r.request_id);
    std::set<std::string> want = {"late" + c};
    if (i % 3 == 0) want.insert("new" + c);
    ASSERT_EQ(ids, want) << c;
    kept += static_cast<int>(st->records.size());
  }
  EXPECT_EQ(kept, n + n / 3);

  // A month later every state is past its horizons. The embedded store hands each step that takes
  // a lock requests wait for to its caller's runner, here a thread of its own per step (the server
  // runs them on a thread of a higher priority than the compaction's): one to reopen the store if
  // it broke, one to record the new horizon, one per chunk of at most 16 of a stripe's customers.
  // The rewrite is complete, on the other thread as in this one.
  const TimeMs month = t0_ + 30 * kMsPerDay;
  size_t steps = 0, elsewhere = 0;
  ASSERT_TRUE(store_
                  ->Compact(month, p.state_options(),
                            [&](const EventStore::Step& step) {
                              Status st;
                              const std::thread::id caller = std::this_thread::get_id();
                              std::thread t([&] {
                                elsewhere += std::this_thread::get_id() != caller;
                                st = step();
                              });
                              t.join();
                              ++steps;
                              return st;
                            })
                  .ok());
  if (GetParam() == "embedded") {
    EXPECT_GE(steps, 2 + static_cast<size_t>((n + 15) / 16));
    EXPECT_LE(steps, 2 + static_cast<size_t>(n)) << "each customer is rewritten once";
    EXPECT_EQ(elsewhere, steps);
  } else {
    EXPECT_EQ(steps, 0u);
  }
  for (int i = 0; i < n; ++i) ASSERT_TRUE(store_->State("cust" + std::to_string(i))->records.empty()) << i;
}

TEST_P(EventStoreTest, ACompactionWritesStatesOnlyInTheStepsItHandsToItsRunner) {
  Policy p = PolicyWith({kPushWeekly});
  std::vector<StoredEvent> events;
  for (int i = 0; i < 40; ++i) {
    const std::string c = "cust" + std::to_string(i);
    events.push_back(bank_.Event(c, 0, EventType::kPushSent, "wechat_push", t0_ - 3 * kMsPerDay, "old" + c));
    events.push_back(bank_.Event(c, 1, EventType::kPushSent, "wechat_push", t0_ - kMsPerHour, "new" + c));
  }
  ASSERT_TRUE(p.Record(store_.get(), events).ok());
  const TimeMs later = t0_ + 6 * kMsPerDay;  // the older contact is past the weekly cap's horizon
  auto states = [&] {
    std::vector<size_t> sizes;
    for (int i = 0; i < 40; ++i) sizes.push_back(store_->State("cust" + std::to_string(i))->records.size());
    return sizes;
  };
  const std::vector<size_t> before = states();
  ASSERT_EQ(before, std::vector<size_t>(40, 2));
  // A runner that skips every step (answers ok without running it): the compaction goes through
  // and no state is rewritten, so each of its writes is such a step.
  int skipped = 0;
  ASSERT_TRUE(store_
                  ->Compact(later, p.state_options(),
                            [&](const EventStore::Step&) {
                              ++skipped;
                              return Status::Ok();
                            })
                  .ok());
  if (GetParam() == "embedded") {
    EXPECT_GE(skipped, 3) << "reopen, horizon, at least one chunk";
    EXPECT_EQ(states(), before) << "nothing written outside the steps";
  }
  // A runner that refuses: the compaction stops with its error at the first step refused.
  int refused = 0;
  Status st = store_->Compact(later, p.state_options(), [&](const EventStore::Step&) {
    ++refused;
    return Status::Unavailable("refused by the test");
  });
  if (GetParam() == "embedded") {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable);
    EXPECT_EQ(st.message(), "refused by the test");
    EXPECT_EQ(refused, 1);
    EXPECT_EQ(states(), before);
  } else {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(refused, 0) << "Redis holds no lock here a request waits for";
  }
  // Once its steps run, it does its work.
  ASSERT_TRUE(store_->Compact(later, p.state_options(), [](const EventStore::Step& step) { return step(); }).ok());
  EXPECT_EQ(states(), std::vector<size_t>(40, 1));
}

TEST_P(EventStoreTest, AnOptOutBlocksMarketingOnItsChannelThroughAnyCompaction) {
  Policy p = PolicyWith({kPushWeekly});
  ASSERT_TRUE(p.Record(store_.get(), {bank_.Event("nora", 0, EventType::kPushSent, "wechat_push", t0_, "run1"),
                                      bank_.Event("nora", 0, EventType::kOptOut, "wechat_push", t0_ + 60000, "run1")})
                  .ok());
  // Two years later, after compactions that drop everything else of that age.
  const TimeMs later = t0_ + 730 * kMsPerDay;
  ASSERT_TRUE(store_->Compact(later, p.state_options()).ok());
  auto r = p.Reserve(store_.get(), MakeCustomer("nora"), bank_.Cands({1, 2}), kWechatPush, later, "run2", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Taken(*r).empty());
  EXPECT_EQ(r->decisions[0].blocked_by, std::vector<std::string>{blocked::kConsent});
  auto home = p.Check(store_.get(), MakeCustomer("nora"), bank_.Cands({1}), kAppHome, later);
  ASSERT_TRUE(home.ok());
  EXPECT_TRUE((*home)[0].blocked_by.empty()) << "consent is withdrawn on wechat_push only";
  auto state = store_->State("nora");
  ASSERT_EQ(state->records.size(), 1u);
  EXPECT_EQ(state->records[0].type, EventType::kOptOut);
}

DecisionRecord MakeDecision(const std::string& customer, TimeMs ts, int position, DecisionKind kind) {
  DecisionRecord d;
  d.ts = ts;
  d.request_id = "req-" + std::to_string(ts);
  d.customer_id = customer;
  d.channel = kind == DecisionKind::kServed ? "app_home" : "wechat_push";
  d.item_id = "item" + std::to_string(position);
  d.position = position;
  d.score = 0.5 + position;
  d.p_click = 0.125f;
  d.p_convert = 0.0625f;
  d.model_version = "v7";
  d.arms = {"home=b", "push=control"};
  d.reasons = {"recall:ann", "rank:p_click=0.1250", "experiment:home=b"};
  d.kind = kind;
  return d;
}

TEST_P(EventStoreTest, DecisionsRoundTripNewestFirstWithEveryField) {
  std::vector<DecisionRecord> ds;
  for (int i = 0; i < 6; ++i)
    ds.push_back(MakeDecision("olga", t0_ + i / 3 * kMsPerHour, i % 3, DecisionKind::kServed));
  ds.push_back(MakeDecision("olga", t0_ + 2 * kMsPerHour, 0, DecisionKind::kGhost));
  ds.push_back(MakeDecision("pete", t0_, 0, DecisionKind::kPushSend));
  ASSERT_TRUE(store_->AppendDecisions(ds).ok());
  ASSERT_TRUE(store_->AppendDecisions({ds[0], ds[6]}).ok()) << "written again: stored once";
  auto got = store_->Decisions("olga", 0, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 7u);
  EXPECT_EQ((*got)[0], ds[6]) << "newest first, every field kept";
  EXPECT_EQ(DecisionKindName((*got)[0].kind), std::string("ghost"));
  auto recent = store_->Decisions("olga", t0_ + kMsPerHour, 100);
  ASSERT_TRUE(recent.ok());
  EXPECT_EQ(recent->size(), 4u);
  EXPECT_EQ(store_->Decisions("olga", 0, 2)->size(), 2u) << "limit";
  EXPECT_TRUE(store_->Decisions("nobody", 0, 10)->empty());
  EXPECT_TRUE(store_->Log("olga", 0, 10)->empty()) << "decisions are not events";
  EXPECT_TRUE(store_->State("olga")->records.empty()) << "decisions count against no cap";
  size_t exported = 0;
  ASSERT_TRUE(store_
                  ->ExportDecisions([&](const DecisionRecord&) {
                    ++exported;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(exported, 8u);
  EXPECT_FALSE(store_->AppendDecisions({MakeDecision("", t0_, 0, DecisionKind::kServed)}).ok());
}

TEST_P(EventStoreTest, PagesOfDecisionsReadBackOnceEachWhateverIsWrittenAgain) {
  // A ten-item page (stored as one value by the embedded store), a second request at the same
  // time, a page whose items differ in score, and parts of the first page written again.
  std::vector<DecisionRecord> page, other;
  for (int i = 0; i < 10; ++i) page.push_back(MakeDecision("rita", t0_, i, DecisionKind::kServed));
  page[3].reasons = {};
  page[4].score = -1.25;
  for (int i = 0; i < 2; ++i) {
    other.push_back(MakeDecision("rita", t0_, i, DecisionKind::kServed));
    other.back().request_id = "req-other";
  }
  ASSERT_TRUE(store_->AppendDecisions(page).ok());
  ASSERT_TRUE(store_->AppendDecisions(other).ok());
  ASSERT_TRUE(store_->AppendDecisions(page).ok()) << "the whole page again";
  ASSERT_TRUE(store_->AppendDecisions({page[2], page[3], page[7]}).ok()) << "a part of it again";
  ASSERT_TRUE(store_->AppendDecisions({page[9]}).ok());
  auto got = store_->Decisions("rita", 0, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 12u) << "each record once";
  std::vector<DecisionRecord> want;  // newest first: by request id in reverse, then position
  for (int i = 1; i >= 0; --i) want.push_back(other[i]);
  for (int i = 9; i >= 0; --i) want.push_back(page[i]);
  std::sort(want.begin(), want.end(), [](const DecisionRecord& a, const DecisionRecord& b) {
    return a.request_id != b.request_id ? a.request_id > b.request_id : a.position > b.position;
  });
  std::vector<DecisionRecord> sorted = *got;
  std::stable_sort(sorted.begin(), sorted.end(), [](const DecisionRecord& a, const DecisionRecord& b) {
    return a.request_id != b.request_id ? a.request_id > b.request_id : a.position > b.position;
  });
  EXPECT_EQ(sorted, want) << "every field of every record";
  for (size_t i = 1; i < got->size(); ++i) {
    if ((*got)[i].request_id == (*got)[i - 1].request_id) {
      EXPECT_LT((*got)[i].position, (*got)[i - 1].position) << "a request's records newest first by position";
    }
  }
  auto four = store_->Decisions("rita", 0, 4);
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->size(), 4u) << "the limit cuts inside a page";
  std::vector<DecisionRecord> exported;
  ASSERT_TRUE(store_
                  ->ExportDecisions([&](const DecisionRecord& d) {
                    exported.push_back(d);
                    return true;
                  })
                  .ok());
  ASSERT_EQ(exported.size(), 12u) << "the export too holds each record once";
  std::stable_sort(exported.begin(), exported.end(), [](const DecisionRecord& a, const DecisionRecord& b) {
    return a.request_id != b.request_id ? a.request_id > b.request_id : a.position > b.position;
  });
  EXPECT_EQ(exported, want);
  size_t stopped = 0;
  ASSERT_TRUE(store_->ExportDecisions([&](const DecisionRecord&) { return ++stopped < 3; }).ok());
  EXPECT_EQ(stopped, 3u) << "the export stops when asked, inside a page";
}

// The layout of a page before 2026-12-07 ('P': 8-byte counts and positions, 4-byte string
// lengths, every reason whole), written here by hand: stores written then must still read.
std::string PageV1(const std::vector<DecisionRecord>& page) {
  auto u64 = [](std::string* o, uint64_t v) {
    for (int i = 0; i < 8; ++i) o->push_back(static_cast<char>(v >> (8 * i)));
  };
  auto str = [](std::string* o, const std::string& v) {
    for (int i = 0; i < 4; ++i) o->push_back(static_cast<char>(v.size() >> (8 * i)));
    o->append(v);
  };
  auto strs = [&](std::string* o, const std::vector<std::string>& v) {
    u64(o, v.size());
    for (const auto& x : v) str(o, x);
  };
  const DecisionRecord& h = page[0];
  std::string out = {'P', static_cast<char>(h.kind)};
  u64(&out, static_cast<uint64_t>(h.ts));
  for (const std::string* x : {&h.request_id, &h.customer_id, &h.channel, &h.model_version}) str(&out, *x);
  strs(&out, h.arms);
  u64(&out, page.size());
  for (const DecisionRecord& d : page) {
    u64(&out, static_cast<uint64_t>(static_cast<int64_t>(d.position)));
    uint64_t bits = 0;
    std::memcpy(&bits, &d.score, 8);
    u64(&out, bits);
    uint32_t f[2];
    std::memcpy(&f[0], &d.p_click, 4);
    std::memcpy(&f[1], &d.p_convert, 4);
    u64(&out, uint64_t{f[0]} | uint64_t{f[1]} << 32);
    str(&out, d.item_id);
    strs(&out, d.reasons);
  }
  return out;
}

// A served page as the soak's server logs it: ten items, each with its recall sources and the
// ranker's two probabilities among its reasons.
std::vector<DecisionRecord> ServedPage() {
  std::vector<DecisionRecord> page;
  for (int i = 0; i < 10; ++i) {
    DecisionRecord d;
    d.ts = 1796659760983;
    d.request_id = "rb865b58f0f55589c0434a9";
    d.customer_id = "C0023713";
    d.channel = "app_home";
    d.item_id = (i % 3 ? "M0" : "P0") + std::to_string(55383 + 97 * i);
    d.position = i;
    d.score = -0.7 + 0.01 * i;
    d.p_click = 0.9f - 0.05f * i;
    d.p_convert = 0.001f * i;
    d.model_version = "v20261207-142635-0000";
    d.reasons = {"recall:ann"};
    if (i % 3 == 0) d.reasons.push_back("recall:popular");
    d.reasons.push_back("rank:p_click=0." + std::to_string(9000 - 500 * i));
    d.reasons.push_back("rank:p_convert=0.00" + std::to_string(10 + i));
    page.push_back(d);
  }
  page[4].position = -3;  // positions are ints: negative ones round-trip too
  page[7].reasons.clear();
  return page;
}

TEST(DecisionPages, PagesOfTheOldLayoutStillReadAndTheNewIsSmaller) {
  const std::vector<DecisionRecord> page = ServedPage();
  std::vector<DecisionRecord> back;
  ASSERT_TRUE(DecodeDecisions(PageV1(page), &back));
  EXPECT_EQ(back, page);
  back.clear();
  const std::string now = EncodeDecisionPage(page.data(), page.size());
  ASSERT_TRUE(DecodeDecisions(now, &back));
  EXPECT_EQ(back, page);
  EXPECT_LT(now.size() * 4, PageV1(page).size() * 3) << now.size() << " bytes against " << PageV1(page).size();
  for (size_t cut = 0; cut < now.size(); ++cut) {
    std::vector<DecisionRecord> none;
    EXPECT_FALSE(DecodeDecisions(std::string_view(now).substr(0, cut), &none)) << cut;
    EXPECT_TRUE(none.empty()) << "nothing appended from a truncated value";
  }
  for (size_t i = 0; i < now.size(); ++i) {  // a flipped byte fails or reads as some page, no more
    std::string bad = now;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    std::vector<DecisionRecord> any;
    if (!DecodeDecisions(bad, &any)) {
      EXPECT_TRUE(any.empty()) << i;
    }
  }
}

TEST(DecisionPages, RoundTripAndRefuseDamagedValues) {
  std::vector<DecisionRecord> page;
  for (int i = 0; i < 3; ++i) {
    DecisionRecord d;
    d.ts = 1700000000000 + 5;
    d.request_id = "r1";
    d.customer_id = "c1";
    d.channel = "app_home";
    d.item_id = "p" + std::to_string(i);
    d.position = i;
    d.score = 0.1 * i;
    d.p_click = 0.5f;
    d.p_convert = 0.25f * i;
    d.model_version = "v2";
    d.arms = {"home=a"};
    d.reasons = std::vector<std::string>(i, "recall:ann");
    page.push_back(d);
  }
  const std::string v = EncodeDecisionPage(page.data(), page.size());
  std::vector<DecisionRecord> back;
  ASSERT_TRUE(DecodeDecisions(v, &back));
  EXPECT_EQ(back, page);
  ASSERT_TRUE(DecodeDecisions(EncodeDecision(page[1]), &back)) << "a single record decodes too";
  EXPECT_EQ(back.back(), page[1]);
  EXPECT_LT(v.size(), EncodeDecision(page[0]).size() + EncodeDecision(page[1]).size() + EncodeDecision(page[2]).size())
      << "the shared fields once";
  for (size_t cut = 0; cut < v.size(); ++cut) {
    std::vector<DecisionRecord> none;
    EXPECT_FALSE(DecodeDecisions(std::string_view(v).substr(0, cut), &none)) << cut;
    EXPECT_TRUE(none.empty()) << "nothing appended from a truncated value";
  }
  std::vector<DecisionRecord> none;
  EXPECT_FALSE(DecodeDecisions(v + "x", &none)) << "trailing bytes";
  EXPECT_FALSE(SameDecisionPage(page[0],
                                [&] {
                                  DecisionRecord d = page[0];
                                  d.arms = {"home=b"};
                                  return d;
                                }()))
      << "another arm is another page";
}

TEST_P(EventStoreTest, DecisionsSurviveReopeningAndCompactionDropsThosePastRetention) {
  ASSERT_TRUE(store_
                  ->AppendDecisions({MakeDecision("quin", t0_ - 100 * kMsPerDay, 0, DecisionKind::kServed),
                                     MakeDecision("quin", t0_ - 20 * kMsPerDay, 1, DecisionKind::kPushSend)})
                  .ok());
  store_.reset();
  auto s = EventStore::Open(config_);
  ASSERT_TRUE(s.ok());
  store_ = std::move(s).value();
  ASSERT_EQ(store_->Decisions("quin", 0, 10)->size(), 2u);
  ASSERT_TRUE(store_->Compact(t0_, StateOptions{}).ok());
  auto left = store_->Decisions("quin", 0, 10);
  ASSERT_EQ(left->size(), 1u) << "90-day retention";
  EXPECT_EQ((*left)[0].item_id, "item1");
}

TEST_P(EventStoreTest, ConcurrentRequestsNeverTakeTheLastUnitTwice) {
  const int kCustomers = 6, kThreads = 8, kPerThread = 60;
  Policy p =
      PolicyWith({{"home", CapScope::kCustomerChannel, "app_home", "impression", 5, kMsPerDay, WindowKind::kRolling},
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
        if (!r.ok()) {
          ++errors;
          continue;
        }
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

// The reference for the property test below: every rule of SPEC §6 evaluated from scratch
// for each candidate over the recorded events and the request's own earlier takes, written
// from the rules, not from the store's plan.
struct RefRecord {
  TimeMs ts;
  EventType type;
  std::string channel, item, campaign, category;
  bool counted;
  bool own;  // taken by the request being evaluated
};

std::vector<std::set<std::string>> ReferenceDecide(const PolicyConfig& pc, const Bank& bank,
                                                   const std::vector<uint32_t>& cands, ChannelId channel,
                                                   const std::string& channel_name, TimeMs now, int max_take,
                                                   std::vector<RefRecord>* recs, std::vector<bool>* taken) {
  const bool reserve = channel_name == "app_home";
  const EventType contact = reserve ? EventType::kImpression : EventType::kPushSent;
  auto is_contact = [](EventType t) { return t == EventType::kImpression || t == EventType::kPushSent; };
  std::vector<std::set<std::string>> out(cands.size());
  taken->assign(cands.size(), false);
  int ntaken = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const uint32_t ci = cands[i];
    const Item& it = bank.items[ci];
    const std::string& campaign = bank.campaigns[ci];
    const std::string& category = bank.categories[ci];
    std::set<std::string>& blocked = out[i];
    if (!it.service) {
      for (const CapRule& cap : pc.caps) {
        if (!cap.channel.empty() && cap.channel != channel_name) continue;
        auto counts = [&](EventType t) {
          return cap.event == "contact" ? is_contact(t) : cap.event == EventTypeName(t);
        };
        if (!counts(contact)) continue;
        if (cap.scope == CapScope::kCustomerCampaign && campaign.empty()) continue;
        if (cap.scope == CapScope::kCustomerCategory && category.empty()) continue;
        TimeMs since = now - cap.window + 1;
        if (cap.calendar == WindowKind::kCalendarDay) since = Shanghai().StartOfDay(now);
        if (cap.calendar == WindowKind::kCalendarWeek) since = Shanghai().StartOfWeek(now);
        int used = 0;
        for (const RefRecord& r : *recs) {
          if (!counts(r.type) || r.ts < since || !r.counted) continue;
          if (!cap.channel.empty() && r.channel != cap.channel) continue;
          switch (cap.scope) {
            case CapScope::kCustomerChannel:
              used += r.channel == channel_name;
              break;
            case CapScope::kCustomerItem:
              used += r.item == it.id;
              break;
            case CapScope::kCustomerCampaign:
              used += r.campaign == campaign;
              break;
            case CapScope::kCustomerCategory:
              used += r.category == category;
              break;
            case CapScope::kCustomerMarketing:
              ++used;
              break;
          }
        }
        if (used >= cap.limit) blocked.insert(CapBlockedName(cap.scope));
      }
      for (const CooldownRule& cd : pc.cooldowns) {
        if (cd.channel != channel_name) continue;
        for (const RefRecord& r : *recs) {
          if (!r.own && is_contact(r.type) && r.counted && r.channel == channel_name && r.ts > now - cd.gap) {
            blocked.insert(blocked::kCooldown);
          }
        }
      }
    }
    for (const RefRecord& r : *recs) {
      if (r.item != it.id) continue;
      if (it.kind == ItemKind::kContent && (r.type == EventType::kClick || r.type == EventType::kPushOpen) &&
          r.ts > now - pc.clicked_horizon) {
        blocked.insert(blocked::kClicked);
      }
      if (r.type == EventType::kDismiss && r.ts > now - pc.dismiss_suppression) {
        blocked.insert(blocked::kDismissed);
      }
    }
    if (!blocked.empty() || ntaken >= max_take) continue;
    (*taken)[i] = true;
    ++ntaken;
    recs->push_back(
        {now, contact, channel_name, it.id, campaign, category, !it.service || pc.count_service_contacts, true});
  }
  for (RefRecord& r : *recs) r.own = false;
  return out;
}

// Random rules, histories and candidate lists (with repeated items, service items, content and
// products): every decision and every take equals the reference's, on both backends.
TEST_P(EventStoreTest, RandomRulesAndHistoriesDecideAsTheReference) {
  std::mt19937 rng(20261122);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  Bank bank;
  for (int i = 0; i < 14; ++i) {
    const uint32_t k =
        bank.Add("it" + std::to_string(i), i % 3 == 0 ? ItemKind::kProduct : ItemKind::kContent,
                 i % 4 == 0 ? "" : "cat" + std::to_string(i % 3), i % 3 == 1 ? "camp" + std::to_string(i % 2) : "");
    bank[k].service = i == 13 || i == 7;
  }
  const std::vector<std::string> events = {"contact", "impression", "push_sent", "click"};
  const std::vector<std::string> channel_names = {"app_home", "wechat_push"};
  const EventType types[] = {EventType::kImpression, EventType::kPushSent, EventType::kClick, EventType::kPushOpen,
                             EventType::kDismiss};
  int decisions = 0, takes = 0, blocks = 0;
  for (int trial = 0; trial < 60; ++trial) {
    PolicyConfig pc = NoRules();
    pc.count_service_contacts = pick(4) == 0;
    pc.clicked_horizon = (1 + pick(5)) * kMsPerDay;
    pc.dismiss_suppression = (1 + pick(5)) * kMsPerDay;
    const int ncaps = 1 + pick(5);
    for (int k = 0; k < ncaps; ++k) {
      CapRule cap;
      cap.scope = static_cast<CapScope>(pick(5));
      cap.name = CapBlockedName(cap.scope);
      cap.channel = pick(3) == 0 ? "" : channel_names[pick(2)];
      cap.event = events[pick(4)];
      cap.limit = pick(4);
      cap.window = (1 + pick(6)) * kMsPerDay;
      cap.calendar = static_cast<WindowKind>(pick(3));
      pc.caps.push_back(cap);
    }
    if (pick(2)) pc.cooldowns.push_back({channel_names[pick(2)], (1 + pick(48)) * kMsPerHour});
    Policy policy = MakePolicy(pc);
    const std::string cust = "rand" + std::to_string(trial);
    const TimeMs now = t0_ + trial * kMsPerMinute;
    std::vector<RefRecord> recs;
    std::vector<StoredEvent> history;
    const int nev = pick(25);
    for (int k = 0; k < nev; ++k) {
      const uint32_t item = static_cast<uint32_t>(pick(14));
      const EventType t = types[pick(5)];
      const std::string& ch = channel_names[pick(2)];
      const TimeMs ts = now - 1 - static_cast<TimeMs>(rng() % static_cast<uint32_t>(8 * kMsPerDay));
      history.push_back(bank.Event(cust, item, t, ch, ts, "h" + std::to_string(k)));
      recs.push_back({ts, t, ch, bank.items[item].id, bank.campaigns[item], bank.categories[item],
                      !bank.items[item].service || pc.count_service_contacts, false});
    }
    if (!history.empty()) {
      ASSERT_TRUE(policy.Record(store_.get(), history).ok());
    }
    // Two requests in a row: the second sees the first's takes (reservations or sends).
    for (int req = 0; req < 2; ++req) {
      const int ch = pick(2);
      std::vector<uint32_t> ids;
      const int n = 1 + pick(20);
      for (int k = 0; k < n; ++k) ids.push_back(static_cast<uint32_t>(pick(14)));
      std::vector<Candidate> cands;
      for (uint32_t id : ids) cands.push_back(bank.Cand(id));
      const int max_take = pick(6);
      const TimeMs at = now + req;
      std::vector<bool> want_taken;
      auto want = ReferenceDecide(pc, bank, ids, static_cast<ChannelId>(ch == 0 ? kAppHome : kWechatPush),
                                  channel_names[ch], at, max_take, &recs, &want_taken);
      const ChannelId cid = ch == 0 ? kAppHome : kWechatPush;
      Contacts got;
      if (max_take == 0) {  // a check
        auto r = policy.Check(store_.get(), MakeCustomer(cust), cands, cid, at);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        got.decisions = std::move(r).value();
      } else {
        auto r = policy.Reserve(store_.get(), MakeCustomer(cust), cands, cid, at,
                                "r" + std::to_string(trial) + "_" + std::to_string(req), max_take);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        got = std::move(r).value();
      }
      ASSERT_EQ(got.decisions.size(), ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        const Decision& d = got.decisions[i];
        std::set<std::string> names(d.blocked_by.begin(), d.blocked_by.end());
        EXPECT_EQ(names, want[i]) << "trial " << trial << " request " << req << " candidate " << i << " ("
                                  << bank.items[ids[i]].id << ")";
        EXPECT_EQ(names.size(), d.blocked_by.size()) << "each rule named once";
        EXPECT_EQ(d.taken, static_cast<bool>(want_taken[i]))
            << "trial " << trial << " request " << req << " candidate " << i;
        ++decisions;
        takes += d.taken;
        blocks += !d.blocked_by.empty();
      }
    }
  }
  // The random cases exercise both outcomes.
  EXPECT_GT(takes, 50);
  EXPECT_GT(blocks, 200);
  EXPECT_GT(decisions, 1000);
}

TEST_P(EventStoreTest, ReopeningTheStoreRecoversTheCounters) {
  Policy p = PolicyWith({kPushWeekly});
  for (int run = 0; run < 3; ++run) {
    ASSERT_TRUE(p.Reserve(store_.get(), MakeCustomer("nina"), bank_.Cands({0}), kWechatPush, t0_ + run * kMsPerHour,
                          "r" + std::to_string(run), 1)
                    ->decisions[0]
                    .taken);
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

// Redis only: what the compare-and-set commit must get right.
class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::Installed()) GTEST_SKIP() << RedisServer::kBinary << " is not installed";
    ASSERT_NE(RedisServer::Port(), 0) << "could not start a private redis-server";
    config_ = StoreFor("redis", dir_.path());
    for (int k = 0; k < 2; ++k) {
      auto s = EventStore::Open(config_);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      stores_[k] = std::move(s).value();
    }
    for (int i = 0; i < 4; ++i) bank_.Add("item" + std::to_string(i), ItemKind::kContent, "news");
  }
  // Runs redis-cli against the private server; returns its output.
  std::string Cli(const std::string& args) const {
    const std::string cmd = "redis-cli -p " + std::to_string(RedisServer::Port()) + " " + args;
    std::string out;
    if (FILE* f = popen(cmd.c_str(), "r")) {
      char buf[512];
      while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
      pclose(f);
    }
    return out;
  }
  std::string Key(const std::string& customer) const { return config_.redis_prefix + ":{" + customer + "}:s"; }

  TempDir dir_;
  StoreConfig config_;
  std::unique_ptr<EventStore> stores_[2];
  Bank bank_;
  const TimeMs t0_ = At("2024-03-04T10:00");
};

// Two store instances (two replicas) and eight threads write the same two customers at once:
// every write conflicts often, and none is lost.
TEST_F(RedisStoreTest, ConcurrentWritersToOneCustomerLoseNothing) {
  Policy p = MakePolicy(NoRules());
  const int kThreads = 8, kPerThread = 40;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string customer = "w" + std::to_string(i % 2);
        const std::string id = std::to_string(t) + "_" + std::to_string(i);
        Status s;
        if (i % 2 == 0) {  // feedback
          s = p.Record(stores_[t % 2].get(),
                       {bank_.Event(customer, 0, EventType::kClick, "app_home", t0_ + i, "f" + id)});
        } else {  // a reservation (no caps: always takes its one item)
          auto r =
              p.Reserve(stores_[t % 2].get(), MakeCustomer(customer), bank_.Cands({1}), kAppHome, t0_ + i, "r" + id, 1);
          s = r.ok() ? (r->decisions[0].taken ? Status::Ok() : Status::Internal("not taken")) : r.status();
        }
        if (!s.ok()) {
          ++errors;
          ADD_FAILURE() << s.ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  size_t total = 0;
  for (int c = 0; c < 2; ++c) {
    auto st = stores_[0]->State("w" + std::to_string(c));
    ASSERT_TRUE(st.ok());
    total += st->records.size();
  }
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kPerThread)) << "every click and every reservation is in the state";
  auto log = stores_[1]->Log("w0", 0, 10000);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->size(), static_cast<size_t>(kThreads * kPerThread / 2)) << "every click of w0 is in the log";
}

// A state in the JSON format of earlier versions is read, counted, and replaced on the next write.
// A state holding an opt-out does not expire (the consent must outlive any TTL); others do.
TEST_F(RedisStoreTest, AStateWithAnOptOutHasNoTtl) {
  Policy p = MakePolicy(NoRules());
  ASSERT_TRUE(
      p.Record(stores_[0].get(), {bank_.Event("olga", 0, EventType::kPushSent, "wechat_push", t0_, "r1")}).ok());
  EXPECT_GT(std::stoll(Cli("PTTL " + Key("olga"))), 0);
  ASSERT_TRUE(
      p.Record(stores_[0].get(), {bank_.Event("olga", 0, EventType::kOptOut, "wechat_push", t0_ + 1, "r1")}).ok());
  EXPECT_EQ(std::stoll(Cli("PTTL " + Key("olga"))), -1) << "no expiry";
}

// Issue 20: a server that cannot answer now (here BUSY with a runaway script; LOADING while a
// restarted server reads its AOF is the same kind) makes the store `unavailable`, never
// `internal`, and it answers again once the server does.
TEST_F(RedisStoreTest, AServerThatCannotAnswerNowIsUnavailableNotInternal) {
  Cli("CONFIG SET lua-time-limit 10");
  std::thread busy([&] { Cli("EVAL 'while true do end' 0"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto state = stores_[0]->State("pia");
  Policy p = MakePolicy(NoRules());
  Status rec = p.Record(stores_[0].get(), {bank_.Event("pia", 0, EventType::kClick, "app_home", t0_)});
  Cli("SCRIPT KILL");
  busy.join();
  Cli("CONFIG SET lua-time-limit 5000");
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), StatusCode::kUnavailable) << state.status().ToString();
  EXPECT_EQ(rec.code(), StatusCode::kUnavailable) << rec.ToString();
  EXPECT_TRUE(stores_[0]->State("pia").ok());
  EXPECT_TRUE(p.Record(stores_[0].get(), {bank_.Event("pia", 0, EventType::kClick, "app_home", t0_)}).ok());
}

TEST_F(RedisStoreTest, ReadsAStateInTheOlderJsonFormatAndRewritesIt) {
  const std::string old =
      "'[[" + std::to_string(t0_ - kMsPerHour) + ",0,\"app_home\",\"item0\",\"\",\"news\",\"r0\",1,0]]'";
  ASSERT_EQ(Cli("SET '" + Key("old") + "' " + old), "OK\n");
  auto st = stores_[0]->State("old");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(st->records.size(), 1u);
  EXPECT_EQ(st->records[0].item, "item0");
  EXPECT_EQ(st->records[0].type, EventType::kImpression);
  PolicyConfig c = NoRules();
  c.caps = {{"home", CapScope::kCustomerChannel, "app_home", "impression", 2, kMsPerDay, WindowKind::kRolling}};
  Policy p = MakePolicy(c);
  auto r = p.Reserve(stores_[0].get(), MakeCustomer("old"), bank_.Cands({1, 2}), kAppHome, t0_, "r1", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->decisions[0].taken);
  EXPECT_FALSE(r->decisions[1].taken) << "the old record counts: 1 + 1 reaches the cap of 2";
  EXPECT_EQ(Cli("GETRANGE '" + Key("old") + "' 0 1"), "QM\n") << "rewritten in the current format";
  st = stores_[1]->State("old");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->records.size(), 2u);
  ASSERT_EQ(Cli("SET '" + Key("bad") + "' 'not a state'"), "OK\n");
  auto bad = stores_[0]->State("bad");
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
}

// The server forgets its scripts (restart, SCRIPT FLUSH): the next write reloads the script
// and still counts exactly once.
TEST_F(RedisStoreTest, ReloadsTheCommitScriptAfterTheServerForgetsIt) {
  Policy p = MakePolicy(NoRules());
  ASSERT_TRUE(p.Reserve(stores_[0].get(), MakeCustomer("f"), bank_.Cands({0}), kAppHome, t0_, "a", 1).ok());
  ASSERT_EQ(Cli("SCRIPT FLUSH"), "OK\n");
  auto r = p.Reserve(stores_[0].get(), MakeCustomer("f"), bank_.Cands({1}), kAppHome, t0_ + 1, "b", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->decisions[0].taken);
  EXPECT_FALSE(r->replayed);
  auto st = stores_[1]->State("f");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->records.size(), 2u);
}

TEST(EventStoreOpen, RefusesAnUnreachableRedis) {
  StoreConfig c;
  c.backend = "redis";
  c.redis_port = 1;  // nothing listens on 127.0.0.1:1
  auto s = EventStore::Open(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

// An embedded store's configuration in a temporary folder, without the disk guard, and a bank of
// one content item.
struct OneItemEmbeddedStore {
  TempDir dir;
  StoreConfig config = StoreFor("embedded", dir.path());
  Bank bank;
  const TimeMs t0 = At("2024-03-04T10:00");
  OneItemEmbeddedStore() {
    config.min_free_mb = 0;
    bank.Add("item0", ItemKind::kContent, "news", "");
  }
};

// The embedded store's disk guard ([store] min_free_mb): below it every write is refused as
// unavailable, naming the full disk, before RocksDB is touched; reads go on; health says why.
TEST(EmbeddedStoreDiskGuard, BelowMinFreeSpaceWritesAreRefusedAndReadsGoOn) {
  OneItemEmbeddedStore fx;
  StoreConfig& c = fx.config;
  Bank& bank = fx.bank;
  const TimeMs t0 = fx.t0;
  {
    auto open = EventStore::Open(c);
    ASSERT_TRUE(open.ok()) << open.status().ToString();
    ASSERT_TRUE((*open)->Append({bank.Event("erin", 0, EventType::kClick, "app_home", t0, "r1")}, {}).ok());
  }
  c.min_free_mb = int64_t{1} << 40;  // no disk has an exabyte free
  auto open = EventStore::Open(c);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EventStore* store = open->get();
  Status refused = store->Append({bank.Event("erin", 0, EventType::kClick, "app_home", t0 + 1, "r2")}, {});
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("the event store's disk is full"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("min_free_mb"), std::string::npos) << refused.message();
  Policy p = MakePolicy(NoRules());
  auto reserve = p.Reserve(store, MakeCustomer("erin"), bank.Cands({0}), kWechatPush, t0 + 2, "run1", 1);
  EXPECT_EQ(reserve.status().code(), StatusCode::kUnavailable);
  auto check = p.Check(store, MakeCustomer("erin"), bank.Cands({0}), kWechatPush, t0 + 2);
  EXPECT_TRUE(check.ok()) << "a check writes nothing: " << check.status().ToString();
  auto log = store->Log("erin", 0, 10);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(log->size(), 1u) << "the acknowledged event is readable, the refused one absent";
  EXPECT_EQ((*log)[0].request_id, "r1");
  EXPECT_EQ(store->Health().code(), StatusCode::kUnavailable);
}

// The embedded store's table files keep their index and filter blocks in small partitions (a
// point read loads a few KB of them, not a whole file's: see OpenDb), and what is written through
// them reads back after reopening.
TEST(EmbeddedStoreTables, IndexAndFiltersArePartitionedAndReadBack) {
  OneItemEmbeddedStore fx;
  StoreConfig& c = fx.config;
  Bank& bank = fx.bank;
  const TimeMs t0 = fx.t0;
  constexpr int kCustomers = 20000;  // table files of a few MB: many index and filter partitions
  {
    auto open = EventStore::Open(c);
    ASSERT_TRUE(open.ok()) << open.status().ToString();
    std::vector<StoredEvent> events;
    for (int i = 0; i < kCustomers; ++i) {
      events.push_back(bank.Event("c" + std::to_string(i), 0, EventType::kClick, "app_home", t0 + i, "r"));
    }
    ASSERT_TRUE((*open)->Append(events, {}).ok());
  }  // closing flushes the memtable into a table file
  std::string options;
  for (const auto& f : std::filesystem::directory_iterator(c.path)) {
    if (f.path().filename().string().rfind("OPTIONS-", 0) == 0) {
      std::ifstream in(f.path());
      options.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  EXPECT_NE(options.find("index_type=kTwoLevelIndexSearch"), std::string::npos) << options;
  EXPECT_NE(options.find("partition_filters=true"), std::string::npos) << options;
  EXPECT_NE(options.find("pin_top_level_index_and_filter=true"), std::string::npos) << options;
  auto open = EventStore::Open(c);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  for (int i = 0; i < kCustomers; i += 997) {
    auto log = (*open)->Log("c" + std::to_string(i), 0, 10);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_EQ(log->size(), 1u) << "c" << i;
    EXPECT_EQ((*log)[0].ts, t0 + i);
  }
  auto absent = (*open)->Log("c" + std::to_string(kCustomers), 0, 10);
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->empty());
}

// Retention in the embedded store: a compaction moves the horizon, reads hide what is older at
// once (Log, Decisions, both exports), the horizon survives reopening (also read-only), and a
// compaction at an earlier time (a clock stepped back) brings nothing back.
TEST(EmbeddedStoreRetention, TheHorizonHidesOldRecordsSurvivesReopeningAndNeverMovesBack) {
  TempDir dir;
  StoreConfig c = StoreFor("embedded", dir.path());
  Bank bank;
  bank.Add("item0", ItemKind::kContent, "news", "");
  bank.Add("item1", ItemKind::kContent, "news", "");
  const TimeMs t0 = At("2024-03-04T10:00");
  auto count = [](EventStore* store) {
    size_t events = 0, decisions = 0;
    EXPECT_TRUE(store
                    ->Export([&](const StoredEvent&) {
                      ++events;
                      return true;
                    })
                    .ok());
    EXPECT_TRUE(store
                    ->ExportDecisions([&](const DecisionRecord&) {
                      ++decisions;
                      return true;
                    })
                    .ok());
    return std::make_pair(events, decisions);
  };
  {
    auto open = EventStore::Open(c);
    ASSERT_TRUE(open.ok()) << open.status().ToString();
    EventStore* store = open->get();
    ASSERT_TRUE(store
                    ->Append({bank.Event("ida", 0, EventType::kClick, "app_home", t0 - 100 * kMsPerDay, "r1"),
                              bank.Event("ida", 1, EventType::kClick, "app_home", t0 - 20 * kMsPerDay, "r2")},
                             {})
                    .ok());
    DecisionRecord d;
    d.customer_id = "ida";
    d.request_id = "r1";
    d.channel = "app_home";
    d.item_id = "item0";
    d.ts = t0 - 100 * kMsPerDay;
    ASSERT_TRUE(store->AppendDecisions({d}).ok());
    EXPECT_EQ(count(store), std::make_pair(size_t{2}, size_t{1}));
    ASSERT_TRUE(store->Compact(t0, StateOptions{}).ok());
    EXPECT_EQ(count(store), std::make_pair(size_t{1}, size_t{0})) << "90-day retention";
    EXPECT_EQ(store->Log("ida", 0, 10)->size(), 1u);
    EXPECT_TRUE(store->Decisions("ida", 0, 10)->empty());
  }
  auto open = EventStore::Open(c);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_EQ(count(open->get()), std::make_pair(size_t{1}, size_t{0})) << "the horizon is stored";
  ASSERT_TRUE((*open)->Compact(t0 - 365 * kMsPerDay, StateOptions{}).ok());
  EXPECT_EQ((*open)->Log("ida", 0, 10)->size(), 1u) << "a compaction a year earlier brings nothing back";
  open->reset();
  c.read_only = true;
  auto reader = EventStore::Open(c);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(count(reader->get()), std::make_pair(size_t{1}, size_t{0})) << "a read-only reader sees the horizon";
}

TEST(StoreConfig, RefusesAMemoryBudgetOutOfRange) {
  for (const char* text : {"[store]\nmemory_mb = 8\n", "[store]\nmemory_mb = -1\n"}) {
    auto f = ConfigFile::Parse(text);
    ASSERT_TRUE(f.ok());
    StoreConfig c;
    ReadStoreConfig(f->Root().Table("store"), &c);
    Status st = f->Finish();
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find("store.memory_mb"), std::string::npos) << st.message();
  }
}

TEST(StoreConfig, RefusesABackgroundWriteRateOutOfRange) {
  auto ok = ConfigFile::Parse("[store]\nbackground_mb_per_s = 0\n");
  ASSERT_TRUE(ok.ok());
  StoreConfig c;
  ReadStoreConfig(ok->Root().Table("store"), &c);
  ASSERT_TRUE(ok->Finish().ok());
  EXPECT_EQ(c.background_mb_per_s, 0) << "0: no limit";
  auto bad = ConfigFile::Parse("[store]\nbackground_mb_per_s = -5\n");
  ASSERT_TRUE(bad.ok());
  ReadStoreConfig(bad->Root().Table("store"), &c);
  Status st = bad->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("store.background_mb_per_s"), std::string::npos) << st.message();
}

TEST(StoreConfig, ReadsTheStoreSection) {
  auto f = ConfigFile::Parse(
      "[store]\nbackend = \"redis\"\nredis_port = 7000\nretention = \"30d\"\nsync_decisions = true\n");
  ASSERT_TRUE(f.ok());
  StoreConfig c;
  EXPECT_FALSE(c.sync_decisions) << "the decision log reaches the WAL (no fsync) by default";
  ReadStoreConfig(f->Root().Table("store"), &c);
  ASSERT_TRUE(f->Finish().ok());
  EXPECT_EQ(c.backend, "redis");
  EXPECT_EQ(c.redis_port, 7000);
  EXPECT_EQ(c.retention, 30 * kMsPerDay);
  EXPECT_TRUE(c.sync_decisions);
  EXPECT_EQ(c.min_free_mb, 256) << "the default disk guard";
}

TEST(StoreConfig, RefusesANegativeDiskGuard) {
  auto f = ConfigFile::Parse("[store]\nmin_free_mb = -1\n");
  ASSERT_TRUE(f.ok());
  StoreConfig c;
  ReadStoreConfig(f->Root().Table("store"), &c);
  Status st = f->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("store.min_free_mb"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace qm::policy
