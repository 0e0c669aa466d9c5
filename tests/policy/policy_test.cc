// The contact policy's configuration and its pure rule evaluator (no store).
#include "qianmian/policy/policy.h"

#include <gtest/gtest.h>

#include <limits>
#include <tuple>

#include "policy_test_util.h"

namespace qm::policy {
namespace {

using namespace qm::policy::testing;  // NOLINT

Status ReadPolicy(std::string_view toml, PolicyConfig* out) {
  auto f = ConfigFile::Parse(toml);
  if (!f.ok()) return f.status();
  ReadPolicyConfig(f->Root().Table("policy"), out);
  return f->Finish();
}

// A state holding `events` (all of one customer).
CustomerState StateOf(const std::vector<StoredEvent>& events, const StateOptions& o = {}) {
  CustomerState s;
  for (const StoredEvent& e : events) ApplyEvent(e, o, &s);
  return s;
}

// ---- configuration --------------------------------------------------------------------------

TEST(PolicyConfig, EmptySectionKeepsTheDefaults) {
  PolicyConfig c;
  ASSERT_TRUE(ReadPolicy("", &c).ok());
  EXPECT_EQ(c.suitability_max_age, 365 * kMsPerDay);
  EXPECT_EQ(c.reservation_ttl, 30 * kMsPerMinute);
  ASSERT_EQ(c.quiet_hours.size(), 1u);
  EXPECT_EQ(c.quiet_hours[0].channel, "wechat_push");
  EXPECT_EQ(c.quiet_hours[0].start_minute, 21 * 60);
  EXPECT_EQ(c.quiet_hours[0].end_minute, 8 * 60);
  EXPECT_FALSE(c.caps.empty());
}

TEST(PolicyConfig, ReadsCapsCooldownsAndQuietHours) {
  PolicyConfig c;
  Status st = ReadPolicy(R"(
[policy]
suitability_max_age = "180d"
dismiss_suppression = "7d"
reservation_ttl = "10m"
[[policy.caps]]
scope = "customer_channel"
channel = "wechat_push"
limit = 3
window = "7d"
[[policy.caps]]
name = "daily_item"
scope = "customer_item"
event = "impression"
limit = 2
calendar = "day"
[[policy.cooldowns]]
channel = "sms"
gap = "12h"
[[policy.quiet_hours]]
channel = "sms"
start = "22:30"
end = "07:15"
action = "drop"
)",
                         &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.suitability_max_age, 180 * kMsPerDay);
  EXPECT_EQ(c.reservation_ttl, 10 * kMsPerMinute);
  ASSERT_EQ(c.caps.size(), 2u);
  EXPECT_EQ(c.caps[0].name, "cap.customer_channel");
  EXPECT_EQ(c.caps[0].window, 7 * kMsPerDay);
  EXPECT_EQ(c.caps[1].name, "daily_item");
  EXPECT_EQ(c.caps[1].scope, CapScope::kCustomerItem);
  EXPECT_EQ(c.caps[1].calendar, WindowKind::kCalendarDay);
  ASSERT_EQ(c.cooldowns.size(), 1u);
  EXPECT_EQ(c.cooldowns[0].gap, 12 * kMsPerHour);
  ASSERT_EQ(c.quiet_hours.size(), 1u);
  EXPECT_EQ(c.quiet_hours[0].start_minute, 22 * 60 + 30);
  EXPECT_EQ(c.quiet_hours[0].end_minute, 7 * 60 + 15);
  EXPECT_EQ(c.quiet_hours[0].action, QuietAction::kDrop);
}

TEST(PolicyConfig, RejectsABadRuleNamingItsFullKey) {
  PolicyConfig c;
  Status st = ReadPolicy(R"(
[[policy.caps]]
scope = "customer_planet"
limit = 1
window = "1d"
[[policy.caps]]
limit = 1
window = "1d"
event = "klick"
[[policy.caps]]
limit = 2
window = "0ms"
[[policy.caps]]
limit = 2
[[policy.quiet_hours]]
channel = "wechat_push"
start = "25:00"
)",
                         &c);
  ASSERT_FALSE(st.ok());
  const std::string& m = st.message();
  EXPECT_NE(m.find("'policy.caps[0].scope': unknown scope"), std::string::npos) << m;
  EXPECT_NE(m.find("'policy.caps[1].event'"), std::string::npos) << m;
  EXPECT_NE(m.find("'policy.caps[2].window': must be positive"), std::string::npos) << m;
  EXPECT_NE(m.find("'policy.caps[3].window': required"), std::string::npos) << m;
  EXPECT_NE(m.find("'policy.quiet_hours[0].start'"), std::string::npos) << m;
}

TEST(PolicyConfig, RejectsUnknownKeysInsideARule) {
  PolicyConfig c;
  Status st = ReadPolicy("[[policy.caps]]\nlimit = 1\nwindow = \"1d\"\nlimt = 3\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown key 'policy.caps[0].limt'"), std::string::npos) << st.message();
}

TEST(PolicyConfig, CreateRejectsAnUnknownChannelNamingTheRule) {
  PolicyConfig c = NoRules();
  c.caps.push_back({"x", CapScope::kCustomerChannel, "pager", "contact", 1, kMsPerDay, WindowKind::kRolling});
  auto p = Policy::Create(c, Channels(), Shanghai());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("policy.caps[0].channel"), std::string::npos) << p.status().message();
}

// Each item cap is one bit of a candidate's template mask: more than 30 are refused by name,
// 30 are accepted and each still counts.
TEST(PolicyConfig, CreateRejectsMoreItemCapsThanAPlanHolds) {
  PolicyConfig c = NoRules();
  for (int k = 0; k < 31; ++k) {
    c.caps.push_back(
        {"i" + std::to_string(k), CapScope::kCustomerItem, "", "contact", 100 - k, kMsPerDay, WindowKind::kRolling});
  }
  auto p = Policy::Create(c, Channels(), Shanghai());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("policy.caps[30]"), std::string::npos) << p.status().message();
  c.caps.pop_back();
  c.caps.back().limit = 0;  // the 30th blocks every contact
  auto ok = Policy::Create(c, Channels(), Shanghai());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  Bank bank;
  bank.Add("a", ItemKind::kContent);
  auto d = ok->Evaluate(MakeCustomer("c"), bank.All(), kAppHome, At("2024-03-04T10:00"), {});
  EXPECT_EQ(d[0].blocked_by, std::vector<std::string>{blocked::kCapCustomerItem});
}

// ---- consent, suitability, eligibility --------------------------------------------------------

class Rules : public ::testing::Test {
 protected:
  Rules() : policy_(MakePolicy(NoRules())) {
    content_ = bank_.Add("article", ItemKind::kContent, "news");
    fund_ = bank_.Add("fund_r3", ItemKind::kProduct, "funds");
    bank_[fund_].risk = 3;
    deposit_ = bank_.Add("deposit", ItemKind::kProduct, "deposits");
    alert_ = bank_.Add("alert", ItemKind::kContent);
    bank_[alert_].service = true;
    customer_ = MakeCustomer("c1");
    customer_.risk = 3;
    customer_.risk_assessed = now_ - 30 * kMsPerDay;
  }
  std::vector<Decision> Eval(ChannelId ch = kAppHome, const CustomerState& s = {}) {
    return policy_.Evaluate(customer_, bank_.All(), ch, now_, s);
  }

  Bank bank_;
  Policy policy_;
  uint32_t content_, fund_, deposit_, alert_;
  Customer customer_;
  TimeMs now_ = At("2024-03-04T10:00");
};

TEST_F(Rules, AllowEverythingForAnEligibleCustomer) {
  for (const Decision& d : Eval()) EXPECT_TRUE(d.blocked_by.empty());
}

TEST_F(Rules, ConsentOptOutRemovesMarketingItemsOnThatChannelOnly) {
  customer_.opt_out = 1u << kWechatPush;
  auto push = Eval(kWechatPush);
  EXPECT_TRUE(Has(push[content_], blocked::kConsent));
  EXPECT_TRUE(Has(push[deposit_], blocked::kConsent));
  EXPECT_TRUE(push[alert_].blocked_by.empty()) << "service items are not marketing";
  for (const Decision& d : Eval(kAppHome)) EXPECT_FALSE(Has(d, blocked::kConsent));
  // What the any-eligible fallback asks first: every marketing item is blocked on that channel.
  EXPECT_TRUE(policy_.BlocksAllMarketing(customer_, kWechatPush, now_));
  EXPECT_FALSE(policy_.BlocksAllMarketing(customer_, kAppHome, now_));
}

TEST_F(Rules, AnOptOutEventWithdrawsConsentOnItsChannelForGood) {
  // An opt_out fed back long ago: the same rule as the attribute, on that channel only.
  const StateOptions o;
  auto s = StateOf({bank_.Event("c1", content_, EventType::kOptOut, "wechat_push", now_ - 400 * kMsPerDay)}, o);
  auto push = Eval(kWechatPush, s);
  EXPECT_TRUE(Has(push[content_], blocked::kConsent));
  EXPECT_TRUE(Has(push[deposit_], blocked::kConsent));
  EXPECT_TRUE(push[alert_].blocked_by.empty()) << "service items are not marketing";
  for (const Decision& d : Eval(kAppHome, s)) EXPECT_FALSE(Has(d, blocked::kConsent));
  // Compaction keeps it however old; every other record of that age is gone.
  s.records.push_back(
      StateOf({bank_.Event("c1", deposit_, EventType::kClick, "app_home", now_ - 399 * kMsPerDay)}, o).records[0]);
  EXPECT_TRUE(CompactState(now_ + 3650 * kMsPerDay, o, &s));
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].type, EventType::kOptOut);
  EXPECT_TRUE(Has(Eval(kWechatPush, s)[content_], blocked::kConsent));
}

TEST(PolicyConfig, ACapCannotCountOptOuts) {
  PolicyConfig c = NoRules();
  c.caps.push_back({"x", CapScope::kCustomerChannel, "wechat_push", "opt_out", 1, kMsPerDay, WindowKind::kRolling});
  auto p = Policy::Create(c, Channels(), Shanghai());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("policy.caps[0].event"), std::string::npos) << p.status().message();
}

TEST_F(Rules, SuitabilityBlocksAProductRiskierThanTheTolerance) {
  customer_.risk = 2;
  EXPECT_TRUE(Has(Eval()[fund_], blocked::kSuitability));
  customer_.risk = 3;
  EXPECT_FALSE(Has(Eval()[fund_], blocked::kSuitability)) << "R3 for C3 is allowed (k <= j)";
  customer_.risk = 5;
  EXPECT_FALSE(Has(Eval()[fund_], blocked::kSuitability));
}

TEST_F(Rules, SuitabilityExpiresTwelveMonthsAfterTheAssessment) {
  customer_.risk = 5;
  customer_.risk_assessed = now_ - 364 * kMsPerDay;
  EXPECT_FALSE(Has(Eval()[fund_], blocked::kSuitability));
  customer_.risk_assessed = now_ - 365 * kMsPerDay;
  EXPECT_TRUE(Has(Eval()[fund_], blocked::kSuitability));
  EXPECT_FALSE(Has(Eval()[deposit_], blocked::kSuitability)) << "not an investment product";
}

TEST_F(Rules, SuitabilityWithoutAssessmentAllowsNoInvestmentProductEvenAsService) {
  customer_.risk = kNoRisk;
  customer_.risk_assessed = kNoTime;
  bank_[fund_].risk = 1;
  bank_[fund_].service = true;
  auto d = Eval();
  EXPECT_TRUE(Has(d[fund_], blocked::kSuitability)) << "suitability is never exempt";
  EXPECT_TRUE(d[deposit_].blocked_by.empty());
}

TEST_F(Rules, EligibilityChecksTierRegionChannelAndValidity) {
  customer_.tier = Tier::kMass;
  customer_.region = 7;
  bank_[deposit_].tiers = 1u << static_cast<int>(Tier::kPrivate);
  bank_[content_].regions = {3, 4};
  bank_[alert_].channels = 1u << kWechatPush;
  bank_[fund_].start = now_ + 1;
  auto d = Eval();
  EXPECT_EQ(d[deposit_].blocked_by, std::vector<std::string>{blocked::kTier});
  EXPECT_EQ(d[content_].blocked_by, std::vector<std::string>{blocked::kRegion});
  EXPECT_EQ(d[alert_].blocked_by, std::vector<std::string>{blocked::kChannel})
      << "service items still need eligibility";
  EXPECT_EQ(d[fund_].blocked_by, std::vector<std::string>{blocked::kValidity});
  bank_[fund_].start = now_;
  bank_[fund_].end = now_;
  EXPECT_TRUE(Has(Eval()[fund_], blocked::kValidity)) << "the validity window is [start, end)";
  bank_[fund_].end = now_ + 1;
  EXPECT_FALSE(Has(Eval()[fund_], blocked::kValidity));
}

TEST_F(Rules, EligibilityNeverOffersAProductAlreadyHeld) {
  customer_.holdings = {deposit_};
  auto d = Eval();
  EXPECT_TRUE(Has(d[deposit_], blocked::kHeld));
  EXPECT_FALSE(Has(d[fund_], blocked::kHeld));
}

TEST_F(Rules, EligibilityHidesContentAlreadyClickedOrOpened) {
  auto s = StateOf({bank_.Event("c1", content_, EventType::kPushOpen, "wechat_push", now_ - 5 * kMsPerDay)});
  EXPECT_TRUE(Has(Eval(kAppHome, s)[content_], blocked::kClicked));
  auto clicked_product = StateOf({bank_.Event("c1", deposit_, EventType::kClick, "app_home", now_ - kMsPerDay)});
  EXPECT_FALSE(Has(Eval(kAppHome, clicked_product)[deposit_], blocked::kClicked)) << "products may be shown again";
}

TEST_F(Rules, EligibilitySuppressesADismissedItemForTheConfiguredPeriod) {
  auto recent = StateOf({bank_.Event("c1", deposit_, EventType::kDismiss, "app_home", now_ - 29 * kMsPerDay)});
  EXPECT_TRUE(Has(Eval(kAppHome, recent)[deposit_], blocked::kDismissed));
  auto old = StateOf({bank_.Event("c1", deposit_, EventType::kDismiss, "app_home", now_ - 30 * kMsPerDay)});
  EXPECT_FALSE(Has(Eval(kAppHome, old)[deposit_], blocked::kDismissed));
}

// ---- frequency caps ---------------------------------------------------------------------------

class Caps : public ::testing::Test {
 protected:
  Caps() {
    for (int i = 0; i < 6; ++i) {
      items_.push_back(bank_.Add("item" + std::to_string(i), ItemKind::kProduct, i < 3 ? "deposits" : "loans",
                                 i % 2 ? "spring" : ""));
    }
  }
  void Use(CapRule r) { config_.caps.push_back(std::move(r)); }
  Decision One(uint32_t item, ChannelId ch, TimeMs now, const std::vector<StoredEvent>& past) {
    Policy p = MakePolicy(config_);
    return p.Evaluate(MakeCustomer("c1"), bank_.Cands({item}), ch, now, StateOf(past, p.state_options()))[0];
  }
  StoredEvent Push(uint32_t item, TimeMs t, const char* ch = "wechat_push") {
    return bank_.Event("c1", item, EventType::kPushSent, ch, t, "run" + std::to_string(t));
  }

  Bank bank_;
  std::vector<uint32_t> items_;
  PolicyConfig config_ = NoRules();
};

TEST_F(Caps, FrequencyCapBlocksFourthPushInSevenDays) {
  Use({"push_weekly", CapScope::kCustomerChannel, "wechat_push", "contact", 3, 7 * kMsPerDay, WindowKind::kRolling});
  const TimeMs t0 = At("2024-03-01T10:00");
  std::vector<StoredEvent> past = {Push(0, t0), Push(1, t0 + kMsPerDay)};
  EXPECT_TRUE(One(2, kWechatPush, t0 + 2 * kMsPerDay, past).blocked_by.empty()) << "the 3rd is allowed";
  past.push_back(Push(2, t0 + 2 * kMsPerDay));
  EXPECT_EQ(One(3, kWechatPush, t0 + 3 * kMsPerDay, past).blocked_by,
            std::vector<std::string>{blocked::kCapCustomerChannel})
      << "the 4th is blocked";
  EXPECT_TRUE(Has(One(3, kWechatPush, t0 + 7 * kMsPerDay - 1, past), blocked::kCapCustomerChannel));
  EXPECT_TRUE(One(3, kWechatPush, t0 + 7 * kMsPerDay, past).blocked_by.empty())
      << "the first push left the rolling window";
  EXPECT_TRUE(One(3, kAppHome, t0 + 3 * kMsPerDay, past).blocked_by.empty()) << "other channels unaffected";
}

TEST_F(Caps, CalendarDayResetsAtMidnightInShanghai) {
  Use({"daily", CapScope::kCustomerChannel, "wechat_push", "contact", 1, kMsPerDay, WindowKind::kCalendarDay});
  std::vector<StoredEvent> past = {Push(0, At("2024-03-04T23:59:59"))};
  EXPECT_TRUE(Has(One(1, kWechatPush, At("2024-03-04T23:59:59.999"), past), blocked::kCapCustomerChannel));
  EXPECT_TRUE(One(1, kWechatPush, At("2024-03-05T00:00"), past).blocked_by.empty());
  // 00:00 Shanghai is 16:00 UTC: a UTC calendar would still block here.
  EXPECT_EQ(FormatIsoUtc(At("2024-03-05T00:00")), "2024-03-04T16:00:00.000Z");
}

TEST_F(Caps, RollingDayStillBlocksAfterMidnight) {
  Use({"daily", CapScope::kCustomerChannel, "wechat_push", "contact", 1, kMsPerDay, WindowKind::kRolling});
  std::vector<StoredEvent> past = {Push(0, At("2024-03-04T23:00"))};
  EXPECT_TRUE(Has(One(1, kWechatPush, At("2024-03-05T00:30"), past), blocked::kCapCustomerChannel));
  EXPECT_TRUE(One(1, kWechatPush, At("2024-03-05T23:00"), past).blocked_by.empty());
}

TEST_F(Caps, CalendarWeekStartsOnMondayInShanghai) {
  Use({"weekly", CapScope::kCustomerChannel, "wechat_push", "contact", 1, 0, WindowKind::kCalendarWeek});
  std::vector<StoredEvent> past = {Push(0, At("2024-03-04T00:00"))};  // a Monday
  EXPECT_TRUE(Has(One(1, kWechatPush, At("2024-03-10T23:59:59"), past), blocked::kCapCustomerChannel));
  EXPECT_TRUE(One(1, kWechatPush, At("2024-03-11T00:00"), past).blocked_by.empty());
}

TEST_F(Caps, CountPerItemCampaignAndCategory) {
  Use({"item", CapScope::kCustomerItem, "", "contact", 1, 7 * kMsPerDay, WindowKind::kRolling});
  Use({"campaign", CapScope::kCustomerCampaign, "", "contact", 1, 7 * kMsPerDay, WindowKind::kRolling});
  Use({"category", CapScope::kCustomerCategory, "", "contact", 2, 7 * kMsPerDay, WindowKind::kRolling});
  const TimeMs t = At("2024-03-04T10:00");
  // item1: campaign "spring", category deposits.
  std::vector<StoredEvent> past = {Push(1, t - kMsPerDay)};
  EXPECT_TRUE(Has(One(1, kWechatPush, t, past), blocked::kCapCustomerItem));
  EXPECT_TRUE(Has(One(3, kWechatPush, t, past), blocked::kCapCustomerCampaign)) << "item3 shares the campaign";
  EXPECT_TRUE(One(0, kWechatPush, t, past).blocked_by.empty()) << "category has room for a 2nd";
  past.push_back(Push(0, t - 2 * kMsPerDay));
  EXPECT_EQ(One(2, kWechatPush, t, past).blocked_by, std::vector<std::string>{blocked::kCapCustomerCategory});
  EXPECT_TRUE(One(4, kWechatPush, t, past).blocked_by.empty()) << "another category, no campaign";
}

TEST_F(Caps, MarketingScopeCountsEveryChannel) {
  Use({"all", CapScope::kCustomerMarketing, "", "push_sent", 2, kMsPerDay, WindowKind::kCalendarDay});
  const TimeMs t = At("2024-03-04T12:00");
  std::vector<StoredEvent> past = {Push(0, t - kMsPerHour), Push(1, t - 2 * kMsPerHour, "sms")};
  EXPECT_TRUE(Has(One(2, kWechatPush, t, past), blocked::kCapCustomerMarketing));
  EXPECT_TRUE(Has(One(2, kSms, t, past), blocked::kCapCustomerMarketing));
  EXPECT_TRUE(One(2, kAppHome, t, past).blocked_by.empty()) << "home impressions are not push sends";
}

TEST_F(Caps, ServiceItemsAreExemptFromCapsButMayBeCounted) {
  Use({"daily", CapScope::kCustomerChannel, "wechat_push", "contact", 1, kMsPerDay, WindowKind::kRolling});
  bank_[items_[5]].service = true;
  const TimeMs t = At("2024-03-04T12:00");
  std::vector<StoredEvent> past = {Push(0, t - kMsPerHour)};
  EXPECT_TRUE(One(5, kWechatPush, t, past).blocked_by.empty()) << "a service alert still goes out";
  std::vector<StoredEvent> service_only = {Push(5, t - kMsPerHour)};
  EXPECT_TRUE(One(0, kWechatPush, t, service_only).blocked_by.empty()) << "not counted by default";
  config_.count_service_contacts = true;
  EXPECT_TRUE(Has(One(0, kWechatPush, t, service_only), blocked::kCapCustomerChannel)) << "counted when configured";
}

TEST_F(Caps, CooldownBlocksASecondContactWithinTheGap) {
  config_.cooldowns = {{"wechat_push", 4 * kMsPerHour}};
  const TimeMs t = At("2024-03-04T12:00");
  std::vector<StoredEvent> past = {Push(0, t - 4 * kMsPerHour + 1)};
  EXPECT_EQ(One(1, kWechatPush, t, past).blocked_by, std::vector<std::string>{blocked::kCooldown});
  past = {Push(0, t - 4 * kMsPerHour)};
  EXPECT_TRUE(One(1, kWechatPush, t, past).blocked_by.empty());
}

TEST_F(Caps, ZeroLimitBlocksEveryContact) {
  Use({"never", CapScope::kCustomerChannel, "sms", "contact", 0, kMsPerDay, WindowKind::kRolling});
  EXPECT_TRUE(Has(One(0, kSms, At("2024-03-04T12:00"), {}), blocked::kCapCustomerChannel));
}

// ---- quiet hours ------------------------------------------------------------------------------

TEST(QuietHours, PushInsideTheWindowIsScheduledForItsEnd) {
  Policy p = MakePolicy(PolicyConfig{});
  bool quiet = false;
  EXPECT_EQ(p.SendTime(kWechatPush, At("2024-03-04T20:59:59"), &quiet), At("2024-03-04T20:59:59"));
  EXPECT_FALSE(quiet);
  EXPECT_EQ(p.SendTime(kWechatPush, At("2024-03-04T21:00"), &quiet), At("2024-03-05T08:00"));
  EXPECT_TRUE(quiet);
  EXPECT_EQ(p.SendTime(kWechatPush, At("2024-03-05T07:59:59"), &quiet), At("2024-03-05T08:00"));
  EXPECT_TRUE(quiet);
  EXPECT_EQ(p.SendTime(kWechatPush, At("2024-03-05T08:00"), &quiet), At("2024-03-05T08:00"));
  EXPECT_FALSE(quiet);
  EXPECT_EQ(p.SendTime(kAppHome, At("2024-03-04T23:00"), &quiet), At("2024-03-04T23:00")) << "home has no quiet hours";
}

TEST(QuietHours, DropActionBlocksMarketingButNotServiceItems) {
  PolicyConfig c = NoRules();
  c.quiet_hours = {{"wechat_push", 21 * 60, 8 * 60, QuietAction::kDrop}};
  Policy p = MakePolicy(c);
  Bank bank;
  uint32_t promo = bank.Add("promo", ItemKind::kContent);
  uint32_t alert = bank.Add("alert", ItemKind::kContent);
  bank[alert].service = true;
  auto at = [&](const char* t) { return p.Evaluate(MakeCustomer("c"), bank.All(), kWechatPush, At(t), {}); };
  EXPECT_TRUE(at("2024-03-04T20:59:59")[promo].blocked_by.empty());
  EXPECT_EQ(at("2024-03-04T21:00")[promo].blocked_by, std::vector<std::string>{blocked::kQuietHours});
  EXPECT_TRUE(Has(at("2024-03-05T07:59:59")[promo], blocked::kQuietHours));
  EXPECT_TRUE(at("2024-03-05T08:00")[promo].blocked_by.empty());
  auto night = at("2024-03-04T23:00");
  EXPECT_TRUE(night[alert].blocked_by.empty());
  EXPECT_EQ(night[alert].send_at, At("2024-03-04T23:00")) << "service items go out at once";
  EXPECT_TRUE(p.BlocksAllMarketing(MakeCustomer("c"), kWechatPush, At("2024-03-04T23:00")));
  EXPECT_FALSE(p.BlocksAllMarketing(MakeCustomer("c"), kWechatPush, At("2024-03-04T20:59:59")));
  EXPECT_FALSE(p.BlocksAllMarketing(MakeCustomer("c"), kAppHome, At("2024-03-04T23:00"))) << "no quiet hours";
  // Quiet hours that defer instead of dropping block nothing.
  EXPECT_FALSE(MakePolicy(PolicyConfig{}).BlocksAllMarketing(MakeCustomer("c"), kWechatPush, At("2024-03-04T23:00")));
}

TEST(QuietHours, ScheduledPushIsCheckedAgainstCapsAtItsSendTime) {
  PolicyConfig c = NoRules();
  c.caps = {{"daily", CapScope::kCustomerChannel, "wechat_push", "contact", 1, kMsPerDay, WindowKind::kCalendarDay}};
  c.quiet_hours = PolicyConfig{}.quiet_hours;
  Policy p = MakePolicy(c);
  Bank bank;
  bank.Add("a", ItemKind::kContent);
  // Pushed today at 10:00; at 22:00 the send moves to tomorrow 08:00: a new calendar day.
  auto s = StateOf({bank.Event("c", 0, EventType::kPushSent, "wechat_push", At("2024-03-04T10:00"), "r1")});
  auto d = p.Evaluate(MakeCustomer("c"), bank.All(), kWechatPush, At("2024-03-04T22:00"), s);
  EXPECT_TRUE(d[0].blocked_by.empty());
  EXPECT_EQ(d[0].send_at, At("2024-03-05T08:00"));
}

// ---- the shared algorithm ---------------------------------------------------------------------

TEST(ContactState, EncodingRoundTrips) {
  CustomerState s;
  s.records.push_back(
      {At("2024-03-04T10:00"), EventType::kPushSent, "wechat_push", "i1", "spring", "funds", "run1", true, 0});
  s.records.push_back({At("2024-03-04T11:00"), EventType::kImpression, "app_home", "i2", "", "", "req", false, 42});
  CustomerState back;
  ASSERT_TRUE(DecodeState(EncodeState(s), &back));
  ASSERT_EQ(back.records.size(), 2u);
  EXPECT_EQ(back.records[1].expires, 42);
  EXPECT_EQ(back.records[0].campaign, "spring");
  EXPECT_FALSE(DecodeState("garbage", &back));
  StoredEvent e{1, "c", "i", EventType::kDismiss, "sms", "r", "p", "g", true};
  StoredEvent e2;
  ASSERT_TRUE(DecodeEvent(EncodeEvent(e), &e2));
  EXPECT_EQ(e, e2);
}

// The layout of a state before 2026-12-07 (version 1: 8-byte integers, strings with a 4-byte
// length), written here by hand: stores written then must still read.
std::string StateV1(const CustomerState& s) {
  auto u64 = [](std::string* o, uint64_t v) {
    for (int i = 0; i < 8; ++i) o->push_back(static_cast<char>(v >> (8 * i)));
  };
  auto str = [](std::string* o, const std::string& v) {
    for (int i = 0; i < 4; ++i) o->push_back(static_cast<char>(v.size() >> (8 * i)));
    o->append(v);
  };
  std::string out(1, '\x01');
  u64(&out, s.records.size());
  for (const ContactRecord& r : s.records) {
    u64(&out, static_cast<uint64_t>(r.ts));
    out.push_back(static_cast<char>(r.type));
    out.push_back(static_cast<char>(r.counted));
    u64(&out, static_cast<uint64_t>(r.expires));
    for (const std::string* x : {&r.channel, &r.item, &r.campaign, &r.category, &r.request_id}) str(&out, *x);
  }
  return out;
}

void ExpectSameState(const CustomerState& a, const CustomerState& b) {
  ASSERT_EQ(a.records.size(), b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) {
    const ContactRecord &x = a.records[i], &y = b.records[i];
    EXPECT_EQ(x.ts, y.ts) << i;
    EXPECT_EQ(x.type, y.type) << i;
    EXPECT_EQ(x.counted, y.counted) << i;
    EXPECT_EQ(x.expires, y.expires) << i;
    EXPECT_EQ(std::tie(x.channel, x.item, x.campaign, x.category, x.request_id),
              std::tie(y.channel, y.item, y.campaign, y.category, y.request_id))
        << i;
  }
}

// A customer's state as the soak writes it: earlier pages' reservations (ten items, one request,
// 30 minutes to expiry), a click, an opt-out kept for good, times out of order and at the limits.
CustomerState BusyState() {
  CustomerState s;
  const TimeMs t0 = At("2026-12-07T10:00");
  s.records.push_back(
      {t0 - 40 * kMsPerDay, EventType::kClick, "app_home", "M048795", "CMP2026-561", "shopping", "", true, 0});
  s.records.push_back({t0, EventType::kOptOut, "wechat_push", "", "", "", "r0", true, 0});
  for (int page = 0; page < 3; ++page) {
    const std::string request = "ra3374e6cbb3ba0cd0467" + std::to_string(page);
    for (int i = 0; i < 10; ++i) {
      s.records.push_back({t0 + page * 60000, EventType::kImpression, "app_home", "M0" + std::to_string(10000 + i * 7),
                           i == 3 ? "CMP2026-400" : "", i % 2 ? "credit_card_offers" : "shopping_deals", request,
                           i != 5, t0 + page * 60000 + 1800000});
    }
  }
  s.records.push_back({t0 - 5, EventType::kDismiss, "sms", "P1", "", "", "", false, t0 - 10});  // out of order
  s.records.push_back({0, EventType::kPushSent, "", "", "", "", "", true, 0});
  s.records.push_back({std::numeric_limits<TimeMs>::min(), EventType::kImpression, "x", "", "", "", "", true,
                       std::numeric_limits<TimeMs>::max()});
  s.records.push_back({std::numeric_limits<TimeMs>::max(), EventType::kConvert, "x", "", "", "", "", true, -1});
  return s;
}

TEST(ContactState, CompactEncodingRoundTripsEveryFieldAndValue) {
  const CustomerState s = BusyState();
  CustomerState back;
  ASSERT_TRUE(DecodeState(EncodeState(s), &back));
  ExpectSameState(s, back);
  ASSERT_TRUE(DecodeState(EncodeState(CustomerState{}), &back));
  EXPECT_TRUE(back.records.empty());
  // Records at their smallest (7 bytes: same time, no expiry, the same strings), many of them.
  CustomerState clicks;
  for (int i = 0; i < 50; ++i) clicks.records.push_back({5, EventType::kClick, "c", "i", "", "", "", true, 0});
  ASSERT_TRUE(DecodeState(EncodeState(clicks), &back));
  ExpectSameState(clicks, back);
}

TEST(ContactState, StatesOfTheOldLayoutStillRead) {
  const CustomerState s = BusyState();
  CustomerState back;
  ASSERT_TRUE(DecodeState(StateV1(s), &back));
  ExpectSameState(s, back);
  // Written again, it takes the new layout, which reads the same.
  CustomerState again;
  ASSERT_TRUE(DecodeState(EncodeState(back), &again));
  ExpectSameState(s, again);
}

TEST(ContactState, CompactEncodingIsUnderAQuarterOfTheOldForPagesOfReservations) {
  const CustomerState s = BusyState();
  const size_t now = EncodeState(s).size(), before = StateV1(s).size();
  EXPECT_LT(now * 4, before) << now << " bytes against " << before;
}

TEST(ContactState, EveryTruncationOrCorruptionOfAStateIsRefusedOrReadsWithoutHarm) {
  const std::string good = EncodeState(BusyState());
  CustomerState back;
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeState(std::string_view(good).substr(0, n), &back)) << "truncated at " << n;
  }
  EXPECT_FALSE(DecodeState(good + "x", &back)) << "trailing bytes";
  // A flipped byte either fails or reads as some state; it never reads past the value.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    (void)DecodeState(bad, &back);
  }
  EXPECT_FALSE(DecodeState(std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11), &back));
}

TEST(ContactState, DuplicateEventsAreRecordedOnce) {
  Bank bank;
  bank.Add("a", ItemKind::kContent);
  CustomerState s;
  StoredEvent click = bank.Event("c", 0, EventType::kClick, "app_home", 1000);
  EXPECT_TRUE(ApplyEvent(click, {}, &s));
  EXPECT_FALSE(ApplyEvent(click, {}, &s));
  click.ts = 2000;
  EXPECT_TRUE(ApplyEvent(click, {}, &s)) << "a second click at another time is another event";
  EXPECT_EQ(s.records.size(), 2u);
}

}  // namespace
}  // namespace qm::policy
