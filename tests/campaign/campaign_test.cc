// Campaigns (issue 18): definitions refused with their field before anything is stored, the
// maker-checker lifecycle, only the approved version runs, the audit log, and exactly one
// winner among concurrent changes, on both event-store backends.
#include "qianmian/campaign/campaign.h"
#include "qianmian/campaign/segments.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "policy_test_util.h"
#include "qianmian/push/audience.h"

namespace qm::campaign {
namespace {

using policy::testing::BackendStarted;
using policy::testing::SkipReason;
using policy::testing::StoreFor;
using policy::testing::TempDir;

const TimeZone& Tz() {
  static const TimeZone tz = TimeZone::Load("Asia/Shanghai").value();
  return tz;
}
TimeMs At(const char* local) { return ParseTime(local, Tz()).value(); }

// Three customers, four items: two content items of category "news" (one tagged "spring"), a
// deposit product, and an article allowed on app_home only.
Dataset SmallBank() {
  Dataset ds;
  for (const char* id : {"C1", "C2", "C3"}) {
    Customer c;
    c.id = id;
    c.tier = std::string(id) == "C2" ? Tier::kAffluent : Tier::kMass;
    ds.AddCustomer(std::move(c));
  }
  auto add = [&](const char* id, ItemKind kind, const char* category, const char* tag, ChannelMask channels) {
    Item it;
    it.id = id;
    it.kind = kind;
    it.category = ds.categories.Intern(category);
    if (*tag) it.tags.push_back(ds.item_tags.Intern(tag));
    it.channels = channels;
    ds.AddItem(std::move(it));
  };
  add("news1", ItemKind::kContent, "news", "spring", 0);
  add("news2", ItemKind::kContent, "news", "", 0);
  add("dep1", ItemKind::kProduct, "deposit", "", 0);
  add("home1", ItemKind::kContent, "news", "", ChannelMask{1} << kAppHome);
  return ds;
}

const char* kSpring = R"J({
  "id": "spring", "name": "春季资讯", "channel": "wechat_push",
  "audience": "tier in (affluent, private)",
  "content": {"categories": ["news"]},
  "objective": {"w_click": 1, "w_convert": 0.5},
  "budget": {"total": 1000, "per_day": 200}, "holdout": 0.1,
  "schedule": {"kind": "daily", "time": "09:30", "from": "2026-12-10", "to": "2026-12-20", "window": ["09:00", "20:00"]},
  "priority": 5
})J";

Definition Parsed(const std::string& text) {
  auto d = ParseDefinition(text);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : Definition();
}

std::string ParseError(const std::string& text) {
  auto d = ParseDefinition(text);
  EXPECT_FALSE(d.ok()) << text;
  return d.ok() ? "" : d.status().message();
}

TEST(CampaignDefinition, ParseErrorsNameTheField) {
  EXPECT_NE(ParseError("{").find("valid JSON"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"name": "x"})J").find("'id': required"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "a b"})J").find("'id'"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "budjet": {}})J").find("'budjet': unknown field"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "budget": {"per_day": -1}})J").find("'budget.per_day': must be a whole number"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "budget": {"total": 1.5}})J").find("'budget.total'"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "holdout": 1.5})J").find("'holdout': must be a number in 0..1"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "objective": {"w_click": 0}})J").find("'objective'"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "content": {"items": ["a"], "tags": ["b"]}})J").find("'content'"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "schedule": {"kind": "once"}})J").find("'schedule.at'"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "schedule": {"kind": "weekly", "time": "09:00", "from": "2026-12-01",
            "to": "2026-12-31"}})J")
                .find("'schedule.days'"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "schedule": {"kind": "daily", "time": "25:00", "from": "2026-12-01",
            "to": "2026-12-31"}})J")
                .find("'schedule.time'"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "schedule": {"kind": "hourly"}})J").find("'schedule.kind'"), std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "caps": {"per_customer": -1}})J").find("'caps.per_customer'"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "caps": {"per_customer": 1, "days": 0}})J").find("'caps.days'"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "caps": {"weekly": 1}})J").find("'caps.weekly': unknown field"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "channels": ["sms", "sms"]})J").find("'channels[1]': 'sms' is listed twice"),
            std::string::npos);
  EXPECT_NE(ParseError(R"J({"id": "x", "channel": "wechat_push", "channels": ["sms", "wechat_push"]})J")
                .find("'channel': must be the first of 'channels'"),
            std::string::npos);
  // One channel listed is the plain `channel`; several are kept, the first being `channel`.
  EXPECT_EQ(Parsed(R"J({"id": "x", "channels": ["sms"]})J").channel, "sms");
  EXPECT_TRUE(Parsed(R"J({"id": "x", "channels": ["sms"]})J").channels.empty());
  EXPECT_EQ(Parsed(R"J({"id": "x", "channels": ["sms", "wechat_push"]})J").channel, "sms");
}

TEST(CampaignDefinition, CanonicalJsonReadsBackAndHashesIndependentlyOfKeyOrder) {
  const Definition d = Parsed(kSpring);
  const Definition again = Parsed(DefinitionJson(d));
  EXPECT_EQ(DefinitionJson(again), DefinitionJson(d));
  EXPECT_EQ(DefinitionHash(again), DefinitionHash(d));
  EXPECT_EQ(DefinitionHash(d).size(), 64u);
  const Definition reordered =
      Parsed(R"J({"priority": 5, "schedule": {"window": ["09:00", "20:00"], "to": "2026-12-20", "from": "2026-12-10",
      "time": "09:30", "kind": "daily"}, "holdout": 0.1, "budget": {"per_day": 200, "total": 1000},
      "objective": {"w_convert": 0.5, "w_click": 1}, "content": {"categories": ["news"]},
      "audience": "tier in (affluent, private)", "channel": "wechat_push", "name": "春季资讯", "id": "spring"})J");
  EXPECT_EQ(DefinitionHash(reordered), DefinitionHash(d));
  Definition changed = d;
  changed.budget_per_day = 201;
  EXPECT_NE(DefinitionHash(changed), DefinitionHash(d));
  EXPECT_EQ(d.schedule.window_from, "09:00");
  // The campaign's own cap is in the canonical JSON only when set: older hashes stay valid.
  EXPECT_EQ(DefinitionJson(d).find("caps"), std::string::npos);
  Definition capped = d;
  capped.cap_per_customer = 2;
  capped.cap_days = 5;
  EXPECT_NE(DefinitionHash(capped), DefinitionHash(d));
  const Definition capped_again = Parsed(DefinitionJson(capped));
  EXPECT_EQ(capped_again.cap_per_customer, 2);
  EXPECT_EQ(capped_again.cap_days, 5);
}

TEST(CampaignDefinition, OccurrencesFollowTheScheduleInTheBanksTimeZone) {
  Schedule weekly;
  weekly.kind = "weekly";
  weekly.time = "09:30";
  weekly.weekdays = {0, 3};  // Monday, Thursday
  weekly.from = "2026-12-01";
  weekly.to = "2026-12-14";
  const auto w = OccurrencesOf(weekly, Tz());
  std::vector<std::string> names;
  for (const Occurrence& o : w) names.push_back(o.name);
  EXPECT_EQ(names, (std::vector<std::string>{"2026-12-03", "2026-12-07", "2026-12-10", "2026-12-14"}));
  EXPECT_EQ(w[0].at, At("2026-12-03T09:30"));
  EXPECT_EQ(w[0].at, ParseTime("2026-12-03T01:30Z", Tz()).value()) << "09:30 in Shanghai is 01:30 UTC";
  Schedule dates;
  dates.kind = "dates";
  dates.time = "20:00";
  dates.dates = {"2026-12-24", "2026-12-01"};
  const auto d = OccurrencesOf(dates, Tz());
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].name, "2026-12-01") << "in time order";
  Schedule once;
  once.kind = "once";
  once.at = "2026-12-20T09:30";
  ASSERT_EQ(OccurrencesOf(once, Tz()).size(), 1u);
  EXPECT_EQ(OccurrencesOf(once, Tz())[0].name, "2026-12-20T09:30");
  EXPECT_TRUE(OccurrencesOf(Schedule(), Tz()).empty());
}

TEST(CampaignDefinition, CheckedAgainstTheBankBeforeAnythingIsStored) {
  const Dataset ds = SmallBank();
  const TimeMs now = At("2026-12-05T10:00");
  auto check = [&](const std::string& text) { return CheckDefinition(Parsed(text), ds, now, Tz()); };
  EXPECT_TRUE(check(kSpring).ok()) << check(kSpring).ToString();
  auto error = [&](const std::string& text) {
    const Status s = check(text);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    return s.message();
  };
  EXPECT_NE(error(R"J({"id": "x", "channel": "sms"})J").find("'channel': unknown channel 'sms'"), std::string::npos);
  const std::string audience = error(R"J({"id": "x", "audience": "tier in (affluent"})J");
  EXPECT_EQ(audience.rfind("'audience': ", 0), 0u) << audience;
  EXPECT_NE(error(R"J({"id": "x", "audience": "agee >= 30"})J").find("unknown field 'agee'"), std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "content": {"items": ["news1", "nope"]}})J").find("'content.items[1]': unknown item"),
            std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "content": {"items": ["home1"]}})J").find("not allowed on channel 'wechat_push'"),
            std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "content": {"categories": ["loans"]}})J").find("'content.categories[0]'"),
            std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "content": {"tags": ["autumn"]}})J").find("'content.tags[0]'"), std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "schedule": {"kind": "once", "at": "2026-12-05T09:00"}})J").find("in the past"),
            std::string::npos);
  EXPECT_NE(error(R"J({"id": "x", "schedule": {"kind": "dates", "time": "09:00", "dates": ["2026-12-24",
            "2026-12-01"]}})J")
                .find("'schedule.dates[1]'"),
            std::string::npos);
  EXPECT_TRUE(check(R"J({"id": "x", "schedule": {"kind": "once", "at": "2026-12-05T11:00"}})J").ok());
  // Channel choice: known push channels only; an item must be allowed on one of them.
  EXPECT_NE(error(R"J({"id": "x", "channels": ["wechat_push", "sms"]})J").find("'channels[1]': unknown channel"),
            std::string::npos);
  Dataset with_sms = SmallBank();
  ASSERT_TRUE(with_sms.channels.Declare("sms").ok());
  EXPECT_TRUE(
      CheckDefinition(Parsed(R"J({"id": "x", "channels": ["wechat_push", "sms"]})J"), with_sms, now, Tz()).ok());
  EXPECT_NE(error(R"J({"id": "x", "channels": ["wechat_push", "app_home"]})J").find("push channels"),
            std::string::npos);
  EXPECT_TRUE(
      CheckDefinition(Parsed(R"J({"id": "x", "channels": ["wechat_push", "sms"], "trigger": {"event": "login"}})J"),
                      with_sms, now, Tz())
          .ok())
      << "a triggered campaign chooses a channel per event";
  // The campaign's own cap cannot look further back than the store keeps contacts.
  const Definition week = Parsed(R"J({"id": "x", "caps": {"per_customer": 1, "days": 7}})J");
  const Definition month = Parsed(R"J({"id": "x", "caps": {"per_customer": 1, "days": 30}})J");
  EXPECT_TRUE(CheckDefinition(week, ds, now, Tz(), 8 * kMsPerDay).ok());
  const Status too_long = CheckDefinition(month, ds, now, Tz(), 8 * kMsPerDay);
  EXPECT_NE(too_long.message().find("'caps.days': at most 7 days"), std::string::npos) << too_long.ToString();
}

TEST(Segments, ReferencesAreFoundOutsideQuotesAndExpandedInParentheses) {
  EXPECT_EQ(SegmentNames(R"J(segment:young and (Segment:rich or region = "segment:no") and not segment:young)J"),
            (std::vector<std::string>{"young", "rich"}));
  EXPECT_TRUE(SegmentNames("mysegment:x = 1 and tag:segment").empty());
  auto lookup = [](const std::string& name) -> std::optional<std::string> {
    if (name == "young") return "age < 30";
    if (name == "rich") return "tier in (affluent, private) or tag:vip";
    return std::nullopt;
  };
  EXPECT_EQ(ExpandSegments("segment:young and not segment:rich", lookup).value(),
            "(age < 30) and not (tier in (affluent, private) or tag:vip)");
  EXPECT_EQ(ExpandSegments("tier = mass", lookup).value(), "tier = mass");
  EXPECT_NE(ExpandSegments("segment:old", lookup).status().message().find("unknown segment 'old'"), std::string::npos);
  EXPECT_FALSE(ExpandSegments("segment: and all", lookup).ok());
}

class CampaignsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const std::string why = SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(BackendStarted(GetParam())) << "could not start a private redis-server";
    auto s = policy::EventStore::Open(StoreFor(GetParam(), dir_.path()));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    campaigns_ = std::make_unique<Campaigns>(
        store_.get(), [this](const Definition& d, TimeMs now) { return CheckDefinition(d, bank_, now, Tz()); });
  }
  Actor Who(const std::string& name) const { return {name, "test", now_}; }

  TempDir dir_;
  Dataset bank_ = SmallBank();
  std::unique_ptr<policy::EventStore> store_;
  std::unique_ptr<Campaigns> campaigns_;
  TimeMs now_ = At("2026-12-05T10:00");
};

TEST_P(CampaignsTest, GoesFromDraftToScheduledWithASecondPersonsApproval) {
  auto c = campaigns_->Create(Parsed(kSpring), Who("alice"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->state, State::kDraft);
  EXPECT_EQ(c->revision, 1u);
  EXPECT_EQ(campaigns_->Create(Parsed(kSpring), Who("carol")).status().code(), StatusCode::kAlreadyExists);

  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("alice")).ok());
  const auto self = campaigns_->Transition("spring", State::kApproved, Who("alice"));
  EXPECT_EQ(self.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(self.status().message().find("maker-checker"), std::string::npos);
  EXPECT_EQ(campaigns_->Transition("spring", State::kScheduled, Who("bob")).status().code(),
            StatusCode::kInvalidArgument)
      << "a submitted campaign is not approved yet";
  auto approved = campaigns_->Transition("spring", State::kApproved, Who("bob"));
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(approved->approved_by, "bob");
  EXPECT_EQ(approved->approved_hash, DefinitionHash(Parsed(kSpring)));
  EXPECT_TRUE(approved->RunsApprovedVersion());
  auto scheduled = campaigns_->Transition("spring", State::kScheduled, Who("alice"));
  ASSERT_TRUE(scheduled.ok()) << scheduled.status().ToString();

  // Pause and resume to where it was, not elsewhere.
  ASSERT_TRUE(campaigns_->Transition("spring", State::kPaused, Who("alice")).ok());
  const auto elsewhere = campaigns_->Transition("spring", State::kRunning, Who("alice"));
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(elsewhere.status().message().find("allowed: scheduled, cancelled"), std::string::npos)
      << elsewhere.status().message();
  auto resumed = campaigns_->Transition("spring", State::kScheduled, Who("alice"));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->revision, 6u);

  auto audit = campaigns_->Audit("spring");
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  ASSERT_EQ(audit->size(), 6u) << "refused requests leave no entry";
  EXPECT_EQ((*audit)[0].action, "create");
  EXPECT_EQ((*audit)[0].who, "alice");
  EXPECT_EQ((*audit)[0].from, "test");
  EXPECT_EQ((*audit)[2].to_state, "approved");
  EXPECT_EQ((*audit)[2].who, "bob");
  EXPECT_EQ((*audit)[2].hash, approved->approved_hash);
  for (size_t i = 0; i < audit->size(); ++i) EXPECT_EQ((*audit)[i].revision, i + 1);
  const std::string csv = AuditCsv(*audit);
  EXPECT_EQ(csv.rfind("revision,ts,who,from,action,from_state,to_state,hash,reason,changes\n", 0), 0u);
  EXPECT_NE(csv.find(",bob,test,transition,submitted,approved,"), std::string::npos) << csv;
}

TEST_P(CampaignsTest, AnEditReturnsToDraftDropsTheApprovalAndIsAuditedAsAPatch) {
  ASSERT_TRUE(campaigns_->Create(Parsed(kSpring), Who("alice")).ok());
  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("alice")).ok());
  ASSERT_TRUE(campaigns_->Transition("spring", State::kApproved, Who("bob")).ok());
  ASSERT_TRUE(campaigns_->Transition("spring", State::kScheduled, Who("bob")).ok());
  Definition bigger = Parsed(kSpring);
  bigger.budget_per_day = 500;
  auto edited = campaigns_->Update(bigger, Who("bob"));
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();
  EXPECT_EQ(edited->state, State::kDraft);
  EXPECT_TRUE(edited->approved_hash.empty());
  EXPECT_FALSE(edited->RunsApprovedVersion());
  EXPECT_EQ(edited->authors, (std::vector<std::string>{"alice", "bob"}));
  auto audit = campaigns_->Audit("spring");
  ASSERT_TRUE(audit.ok());
  const AuditEntry& e = audit->back();
  EXPECT_EQ(e.action, "edit");
  EXPECT_EQ(e.from_state, "scheduled");
  EXPECT_EQ(e.to_state, "draft");
  EXPECT_NE(e.changes.find("\"path\":\"/budget/per_day\""), std::string::npos) << e.changes;
  EXPECT_NE(e.changes.find("\"value\":500"), std::string::npos) << e.changes;

  // Bob edited it, so now neither Bob nor Alice may approve it; Carol may.
  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("bob")).ok());
  EXPECT_EQ(campaigns_->Transition("spring", State::kApproved, Who("bob")).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(campaigns_->Transition("spring", State::kRejected, Who("alice")).status().code(),
            StatusCode::kPermissionDenied);
  auto rejected = campaigns_->Transition("spring", State::kRejected, Who("carol"), "budget too high");
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected->reason, "budget too high");
  EXPECT_EQ(campaigns_->Audit("spring")->back().reason, "budget too high");

  // A bad edit is refused with its field and changes nothing.
  Definition bad = Parsed(kSpring);
  bad.items = {"nope"};
  bad.categories.clear();
  const auto refused = campaigns_->Update(bad, Who("carol"));
  EXPECT_NE(refused.status().message().find("'content.items[0]'"), std::string::npos);
  EXPECT_EQ(campaigns_->Get("spring")->revision, rejected->revision);
}

TEST_P(CampaignsTest, TerminalStatesAndRunningCampaignsRefuseChanges) {
  ASSERT_TRUE(campaigns_->Create(Parsed(kSpring), Who("alice")).ok());
  for (State s : {State::kSubmitted, State::kApproved, State::kScheduled, State::kRunning}) {
    ASSERT_TRUE(campaigns_->Transition("spring", s, Who(s == State::kApproved ? "bob" : "alice")).ok()) << StateName(s);
  }
  EXPECT_EQ(campaigns_->Update(Parsed(kSpring), Who("alice")).status().code(), StatusCode::kInvalidArgument)
      << "a running campaign is paused before it is edited";
  ASSERT_TRUE(campaigns_->Transition("spring", State::kCompleted, Who("alice")).ok());
  EXPECT_TRUE(AllowedTransitions(State::kCompleted).empty());
  const auto after = campaigns_->Transition("spring", State::kCancelled, Who("alice"));
  EXPECT_NE(after.status().message().find("allowed: none"), std::string::npos);
  EXPECT_EQ(campaigns_->Transition("nope", State::kSubmitted, Who("alice")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(campaigns_->Transition("spring", State::kDraft, Actor{"", "test", now_}).status().code(),
            StatusCode::kInvalidArgument)
      << "every change names its operator";
}

TEST_P(CampaignsTest, OccurrencesAreRecordedForARunningCampaignAndAOneOffOneCompletes) {
  ASSERT_TRUE(campaigns_->Create(Parsed(kSpring), Who("alice")).ok());
  for (State s : {State::kSubmitted, State::kApproved, State::kScheduled}) {
    ASSERT_TRUE(campaigns_->Transition("spring", s, Who(s == State::kApproved ? "bob" : "alice")).ok());
  }
  EXPECT_EQ(campaigns_->RecordOccurrence("spring", "2026-12-10", 5, Who("ops")).status().code(),
            StatusCode::kFailedPrecondition)
      << "a scheduled campaign starts running before an occurrence is recorded";
  ASSERT_TRUE(campaigns_->Transition("spring", State::kRunning, Who("ops")).ok());
  ASSERT_TRUE(campaigns_->RecordOccurrence("spring", "2026-12-10", 5, Who("ops")).ok());
  auto c = campaigns_->RecordOccurrence("spring", "2026-12-11", 7, Who("ops"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->state, State::kRunning) << "a daily campaign keeps running";
  EXPECT_EQ(c->occurrences, (std::map<std::string, int64_t>{{"2026-12-10", 5}, {"2026-12-11", 7}}));
  EXPECT_EQ(campaigns_->Get("spring")->occurrences.size(), 2u) << "read back from the store";
  const auto audit = campaigns_->Audit("spring");
  EXPECT_EQ(audit->back().action, "occurrence");
  EXPECT_NE(audit->back().changes.find("\"sends\":7"), std::string::npos);

  Definition once = Parsed(kSpring);
  once.id = "once";
  once.schedule = Schedule();
  once.schedule.kind = "once";
  once.schedule.at = "2026-12-20T09:30";
  ASSERT_TRUE(campaigns_->Create(once, Who("alice")).ok());
  for (State s : {State::kSubmitted, State::kApproved, State::kScheduled, State::kRunning}) {
    ASSERT_TRUE(campaigns_->Transition("once", s, Who(s == State::kApproved ? "bob" : "alice")).ok());
  }
  auto done = campaigns_->RecordOccurrence("once", "2026-12-20T09:30", 3, Who("ops"));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, State::kCompleted);
}

TEST_P(CampaignsTest, OnlyTheApprovedVersionIsScheduled) {
  ASSERT_TRUE(campaigns_->Create(Parsed(kSpring), Who("alice")).ok());
  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("alice")).ok());
  auto approved = campaigns_->Transition("spring", State::kApproved, Who("bob"));
  ASSERT_TRUE(approved.ok());
  // The stored definition changed behind the lifecycle's back (e.g. by hand in the store).
  auto record = store_->ReadRecord("campaigns", "spring");
  ASSERT_TRUE(record.ok());
  std::string value = record->value;
  const size_t at = value.find("\"per_day\":200");
  ASSERT_NE(at, std::string::npos) << value;
  value.replace(at, 13, "\"per_day\":900");
  ASSERT_TRUE(store_->WriteRecord("campaigns", "spring", record->revision, value, "{}").ok());
  const auto scheduled = campaigns_->Transition("spring", State::kScheduled, Who("alice"));
  EXPECT_EQ(scheduled.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(scheduled.status().message().find("only the approved version runs"), std::string::npos);
}

TEST_P(CampaignsTest, ConcurrentApproversAndAnEditRacingAnApprovalHaveExactlyOneWinner) {
  Campaigns other(store_.get(),
                  [this](const Definition& d, TimeMs now) { return CheckDefinition(d, bank_, now, Tz()); });
  for (int round = 0; round < 10; ++round) {
    Definition d = Parsed(kSpring);
    d.id = "race" + std::to_string(round);
    ASSERT_TRUE(campaigns_->Create(d, Who("alice")).ok());
    ASSERT_TRUE(campaigns_->Transition(d.id, State::kSubmitted, Who("alice")).ok());
    Status first, second;
    // Each change names the revision its author saw (2: submitted), as the wire's `revision`.
    if (round % 2 == 0) {  // two approvers at once
      std::thread a([&] { first = campaigns_->Transition(d.id, State::kApproved, Who("bob"), "", 2).status(); });
      std::thread b([&] { second = other.Transition(d.id, State::kApproved, Who("carol"), "", 2).status(); });
      a.join();
      b.join();
    } else {  // an edit racing an approval
      Definition edit = d;
      edit.budget_total = 5;
      std::thread a([&] { first = campaigns_->Update(edit, Who("alice"), 2).status(); });
      std::thread b([&] { second = other.Transition(d.id, State::kApproved, Who("carol"), "", 2).status(); });
      a.join();
      b.join();
    }
    const int won = first.ok() + second.ok();
    const int conflicts = (first.code() == StatusCode::kConflict) + (second.code() == StatusCode::kConflict);
    EXPECT_EQ(won, 1) << "round " << round << ": " << first.ToString() << " / " << second.ToString();
    EXPECT_EQ(conflicts, 1) << "the loser is told a concurrent change won";
    auto c = campaigns_->Get(d.id);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->revision, 3u) << "exactly one change was written in round " << round;
    EXPECT_EQ(campaigns_->Audit(d.id)->size(), 3u);
  }
}

TEST_P(CampaignsTest, ListsEveryCampaignById) {
  for (const char* id : {"b", "a", "c"}) {
    Definition d = Parsed(kSpring);
    d.id = id;
    ASSERT_TRUE(campaigns_->Create(d, Who("alice")).ok());
  }
  auto all = campaigns_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].definition.id, "a");
  EXPECT_EQ((*all)[2].definition.id, "c");
  EXPECT_NE(CampaignJson((*all)[0]).find("\"state\":\"draft\""), std::string::npos);
}

// Saved segments: checked against the bank, audited, compare-and-set; a campaign naming one is
// checked with its expression, and approval snapshots it, so a later edit of the segment does not
// change what the approved campaign selects.
TEST_P(CampaignsTest, SavedSegmentsAreCheckedAuditedAndSnapshottedAtApproval) {
  Segments segments(store_.get(),
                    [this](const std::string& audience) { return push::Audience::Compile(audience, bank_).status(); });
  EXPECT_NE(segments.Save("bad", "agee > 3", "", Who("alice")).status().message().find("'audience'"),
            std::string::npos);
  EXPECT_NE(segments.Save("a b", "all", "", Who("alice")).status().message().find("'name'"), std::string::npos);
  EXPECT_NE(segments.Save("nested", "segment:vip", "", Who("alice")).status().message().find("another segment"),
            std::string::npos);
  EXPECT_EQ(segments.Save("x", "all", "", Who("")).status().code(), StatusCode::kInvalidArgument);
  auto vip = segments.Save("vip", "tier in (affluent, private)", "the wealthy", Who("alice"));
  ASSERT_TRUE(vip.ok()) << vip.status().ToString();
  EXPECT_EQ(vip->revision, 1u);
  EXPECT_EQ(segments.Save("vip", "tier = private", "", Who("bob"), 7).status().code(), StatusCode::kConflict);
  EXPECT_EQ(segments.Get("nope").status().code(), StatusCode::kNotFound);

  // A campaign naming an unknown segment is refused with the field.
  Definition d = Parsed(kSpring);
  d.audience = "segment:nope";
  EXPECT_NE(campaigns_->Create(d, Who("alice")).status().message().find("'audience': unknown segment 'nope'"),
            std::string::npos);
  d.audience = "segment:vip and not customer_id = C3";
  ASSERT_TRUE(campaigns_->Create(d, Who("alice")).ok());
  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("alice")).ok());
  auto approved = campaigns_->Transition("spring", State::kApproved, Who("bob"));
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(approved->segments, (std::map<std::string, std::string>{{"vip", "tier in (affluent, private)"}}));
  EXPECT_EQ(CampaignAudience(*approved).value(), "(tier in (affluent, private)) and not customer_id = C3");

  // The segment changes after the approval: the approved campaign keeps what was approved.
  ASSERT_TRUE(segments.Save("vip", "tier = mass", "changed", Who("carol"), 1).ok());
  auto again = campaigns_->Get("spring");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CampaignAudience(*again).value(), "(tier in (affluent, private)) and not customer_id = C3");
  EXPECT_NE(CampaignJson(*again).find(R"J("segments":{"vip":"tier in (affluent, private)"})J"), std::string::npos);
  ASSERT_TRUE(campaigns_->Transition("spring", State::kScheduled, Who("alice")).ok());
  // Back to draft drops the snapshot; the next approval takes the segment as it is then.
  ASSERT_TRUE(campaigns_->Transition("spring", State::kPaused, Who("alice")).ok());
  ASSERT_TRUE(campaigns_->Update(d, Who("alice")).ok());
  EXPECT_TRUE(campaigns_->Get("spring")->segments.empty());
  EXPECT_EQ(CampaignAudience(*campaigns_->Get("spring")).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(campaigns_->Transition("spring", State::kSubmitted, Who("alice")).ok());
  EXPECT_EQ(campaigns_->Transition("spring", State::kApproved, Who("bob"))->segments.at("vip"), "tier = mass");

  // Every save is audited; the list is by name.
  auto audit = segments.Audit("vip");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_NE((*audit)[1].find(R"("who":"carol")"), std::string::npos);
  ASSERT_TRUE(segments.Save("aaa", "all", "", Who("alice")).ok());
  EXPECT_EQ(segments.List()->front().name, "aaa");
}

INSTANTIATE_TEST_SUITE_P(Backends, CampaignsTest, ::testing::Values("embedded", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qm::campaign
