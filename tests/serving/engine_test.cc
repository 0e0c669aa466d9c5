// The engine's stages on a tiny generated bank: recall, filter, rank, re-rank, fallbacks,
// unknown customers, caps and feedback.
#include <algorithm>
#include <map>
#include <set>

#include "qianmian/core/dataset.h"
#include "testing/engine_fixture.h"

namespace qm::serving::testing {
namespace {

const Dataset& Bank() { return SharedBank(); }

bool HasReasonPrefix(const ResponseItem& it, const std::string& prefix) {
  return std::any_of(it.reasons.begin(), it.reasons.end(),
                     [&](const std::string& r) { return r.rfind(prefix, 0) == 0; });
}

TEST_F(EngineTest, ServesAFullPageOfDistinctItemsFromTheCurrentVersion) {
  Engine& e = Open();
  EXPECT_EQ(e.model_version(), SharedFixture().v2);
  Response r = Recommend(Bank().customers[3].id, 10);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.model_version, SharedFixture().v2);
  EXPECT_EQ(r.items.size(), 10u);
  std::set<std::string> ids;
  for (const auto& it : r.items) {
    ids.insert(it.item_id);
    EXPECT_TRUE(HasReasonPrefix(it, "recall:") || HasReasonPrefix(it, "campaign:") || HasReasonPrefix(it, "fallback:"));
    EXPECT_TRUE(HasReasonPrefix(it, "rank:p_click="));
  }
  EXPECT_EQ(ids.size(), r.items.size());
  EXPECT_GT(r.debug.counts["recall.ann_products"] + r.debug.counts["recall.ann_content"], 0);
  EXPECT_GT(r.debug.counts["rank.scored"], 0);
  EXPECT_GE(r.took_us, 0);
  EXPECT_FALSE(r.request_id.empty());
}

TEST_F(EngineTest, ScoresEveryCandidateAndOrdersThePageByTheTwoStageScoreWithinItsLayout) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.slots.clear();
  o.serving.max_per_category = 0;
  o.serving.explore_share = 0;
  Open(std::move(o));
  for (int c = 0; c < 20; ++c) {
    Response r = Recommend(Bank().customers[c * 7].id, 15);
    ASSERT_TRUE(r.status.ok());
    for (size_t k = 1; k < r.items.size(); ++k) EXPECT_GE(r.items[k - 1].score, r.items[k].score);
  }
}

TEST_F(EngineTest, AnUnknownCustomerGetsPopularItemsAsRiskC1) {
  Open();
  Response r = Recommend("NEVER-SEEN-42", 10);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.debug.known_customer);
  ASSERT_FALSE(r.items.empty());
  for (const auto& it : r.items) {
    EXPECT_TRUE(HasReasonPrefix(it, "recall:popular") || HasReasonPrefix(it, "fallback:")) << it.item_id;
    const Item& item = Bank().items[*Bank().FindItem(it.item_id)];
    EXPECT_LE(item.risk, 1) << it.item_id << " is above C1";
  }
  // The same on a push channel.
  Response p = Recommend("NEVER-SEEN-43", 5, "wechat_push");
  EXPECT_TRUE(p.status.ok());
}

TEST_F(EngineTest, ABadRequestFailsAloneWithInvalidArgument) {
  Open();
  std::vector<Request> reqs(3);
  for (auto& q : reqs) {
    q.customer_id = Bank().customers[0].id;
    q.now_ms = kNow;
    q.dry_run = true;
  }
  reqs[0].channel = "fax";
  reqs[1].count = 0;
  std::vector<Response> out;
  ASSERT_TRUE(engine_->Recommend(reqs, &out).ok());
  EXPECT_EQ(out[0].status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[1].status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(out[2].status.ok());
  EXPECT_FALSE(out[2].items.empty());
}

TEST_F(EngineTest, FallsBackToPopularThenAnythingEligibleWhenEverySourceIsEmpty) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.ann_products = o.serving.ann_content = o.serving.similar = 0;
  o.serving.popular = o.serving.campaign = o.serving.fresh = 0;
  Open(std::move(o));
  Response r = Recommend(Bank().customers[5].id, 10);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.items.size(), 10u);
  ASSERT_FALSE(r.debug.fallbacks.empty());
  EXPECT_EQ(r.debug.fallbacks[0], "popular");
  for (const auto& it : r.items) EXPECT_TRUE(HasReasonPrefix(it, "fallback:")) << it.item_id;
}

TEST_F(EngineTest, AnOptedOutCustomerGetsOnlyServiceItemsAndNeverAnError) {
  Engine& e = Open();
  const Customer& c = Bank().customers[9];
  ASSERT_TRUE(e.UpsertCustomers({{{"customer_id", c.id}, {"tier", "mass"}, {"opt_out", "app_home;wechat_push"}}}).ok());
  Response r = Recommend(c.id, 10);
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.debug.dropped["consent"], 0);
  EXPECT_FALSE(r.debug.fallbacks.empty());
  for (const auto& it : r.items) EXPECT_TRUE(Bank().items[*Bank().FindItem(it.item_id)].service) << it.item_id;
}

TEST_F(EngineTest, ExcludedItemsAreNeverReturned) {
  Open();
  const std::string cust = Bank().customers[11].id;
  Response first = Recommend(cust, 10);
  ASSERT_GE(first.items.size(), 3u);
  Request q;
  q.customer_id = cust;
  q.now_ms = kNow;
  q.dry_run = true;
  q.debug = true;
  for (size_t k = 0; k < 3; ++k) q.exclude.push_back(first.items[k].item_id);
  std::vector<Response> out;
  ASSERT_TRUE(engine_->Recommend({q}, &out).ok());
  for (const auto& it : out[0].items) {
    EXPECT_EQ(std::count(q.exclude.begin(), q.exclude.end(), it.item_id), 0) << it.item_id;
  }
  EXPECT_EQ(out[0].debug.dropped["excluded"], 3);
}

TEST_F(EngineTest, TheHomePageFollowsTheSlotLayout) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.max_per_category = 0;
  o.serving.explore_share = 0;
  o.serving.slots = {"product", "content", "content", "product", "content", "content"};
  const auto slots = o.serving.slots;
  Open(std::move(o));
  for (int c = 0; c < 30; ++c) {
    Response r = Recommend(Bank().customers[c * 13].id, 6);
    ASSERT_TRUE(r.status.ok());
    for (size_t p = 0; p < r.items.size(); ++p) {
      if (r.items[p].kind == slots[p]) continue;
      // A slot of the other kind only when none of its kind is left on the page's candidates.
      for (size_t q = p + 1; q < r.items.size(); ++q) EXPECT_NE(r.items[q].kind, slots[p]) << "customer " << c;
    }
  }
}

TEST_F(EngineTest, APageHoldsAtMostTheConfiguredItemsOfACategoryWhenEnoughCategoriesAreEligible) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.max_per_category = 2;
  o.serving.explore_share = 0;
  Open(std::move(o));
  int full = 0, diverse = 0;
  for (int c = 0; c < 30; ++c) {
    Response r = Recommend(Bank().customers[c * 11].id, 8);
    ASSERT_TRUE(r.status.ok());
    std::map<uint32_t, int> per;
    for (const auto& it : r.items) ++per[Bank().items[*Bank().FindItem(it.item_id)].category];
    int most = 0;
    for (auto& [cat, n] : per) most = std::max(most, n);
    ++full;
    diverse += most <= 2;
  }
  EXPECT_GE(diverse, full * 9 / 10);
}

TEST_F(EngineTest, ExplorationIsSeededByTheRequestId) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.explore_share = 0.5;
  o.serving.explore_max_positives = 1000000;  // every item counts as new
  Open(std::move(o));
  const std::string cust = Bank().customers[21].id;
  Response a = Recommend(cust, 10, "app_home", true, "req-A");
  Response b = Recommend(cust, 10, "app_home", true, "req-A");
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t k = 0; k < a.items.size(); ++k) EXPECT_EQ(a.items[k].item_id, b.items[k].item_id);
  int explored = 0;
  for (int k = 0; k < 10; ++k) {
    Response r = Recommend(cust, 10, "app_home", true, "req-" + std::to_string(k));
    for (const auto& it : r.items) explored += HasReasonPrefix(it, "explore");
  }
  EXPECT_GT(explored, 0);
}

TEST_F(EngineTest, CampaignPinsJoinTheCandidatesOfTheirSegment) {
  const Dataset& ds = Bank();
  std::string campaign;
  for (const auto& it : ds.items) {
    if (it.campaign != 0 && it.kind == ItemKind::kContent && !it.service) campaign = ds.campaigns.Name(it.campaign);
  }
  if (campaign.empty()) GTEST_SKIP() << "the generated bank has no content campaign";
  EngineOptions o = OptionsFor(scratch_);
  o.serving.ann_products = o.serving.ann_content = o.serving.similar = o.serving.popular = o.serving.fresh = 0;
  o.serving.campaigns = {{campaign, {}, {}}};
  Open(std::move(o));
  int pinned = 0;
  for (int c = 0; c < 10; ++c) {
    Response r = Recommend(ds.customers[c].id, 3);
    for (const auto& it : r.items) pinned += HasReasonPrefix(it, "campaign:" + campaign);
  }
  EXPECT_GT(pinned, 0);
}

TEST_F(EngineTest, ServedItemsReserveCapsOnAppHomeButADryRunReservesNothing) {
  EngineOptions o = OptionsFor(scratch_);
  // Each item at most once a day on the home page.
  o.policy.caps = {{"home_item_daily", policy::CapScope::kCustomerItem, "app_home", "impression", 1, kMsPerDay,
                    policy::WindowKind::kRolling}};
  Engine& e = Open(std::move(o));
  const std::string dry_cust = Bank().customers[30].id;
  Response d1 = Recommend(dry_cust, 6, "app_home", /*dry_run=*/true, "dry-1");
  Response d2 = Recommend(dry_cust, 6, "app_home", /*dry_run=*/true, "dry-1");
  ASSERT_EQ(d1.items.size(), d2.items.size());
  for (size_t k = 0; k < d1.items.size(); ++k) EXPECT_EQ(d1.items[k].item_id, d2.items[k].item_id);
  auto h = e.History(dry_cust, 0, 100, kNow);
  ASSERT_TRUE(h.ok());
  for (const auto& cap : h->caps) EXPECT_EQ(cap.used, 0) << cap.rule << " " << cap.scope;

  const std::string cust = Bank().customers[31].id;
  Response r1 = Recommend(cust, 6, "app_home", /*dry_run=*/false, "serve-1");
  ASSERT_EQ(r1.items.size(), 6u);
  Response r2 = Recommend(cust, 6, "app_home", /*dry_run=*/true);
  for (const auto& a : r1.items) {
    for (const auto& b : r2.items) EXPECT_NE(a.item_id, b.item_id) << "reserved item served again";
  }
  EXPECT_GE(r2.debug.dropped["cap.customer_item"], 6);
  auto h2 = e.History(cust, 0, 100, kNow);
  ASSERT_TRUE(h2.ok());
  int used = 0;
  for (const auto& cap : h2->caps) used += cap.used;
  EXPECT_EQ(used, 6);
  // Replaying the same request id reserves nothing twice.
  Response again = Recommend(cust, 6, "app_home", /*dry_run=*/false, "serve-1");
  auto h3 = e.History(cust, 0, 100, kNow);
  used = 0;
  for (const auto& cap : h3->caps) used += cap.used;
  EXPECT_EQ(used, 6);
}

TEST_F(EngineTest, AClickRecordedThroughTheEngineChangesTheNextAnswer) {
  Engine& e = Open();
  const std::string cust = Bank().customers[40].id;
  Response before = Recommend(cust, 10);
  std::string clicked;
  for (const auto& it : before.items) {
    if (it.kind == "content") {
      clicked = it.item_id;
      break;
    }
  }
  ASSERT_FALSE(clicked.empty());
  FeedbackEvent ev{kNow - kMsPerMinute, cust, clicked, "click", "app_home", ""};
  FeedbackEvent bad{kNow, cust, "NO-SUCH-ITEM", "click", "app_home", ""};
  auto fb = e.Feedback({ev, bad});
  ASSERT_TRUE(fb.ok()) << fb.status().ToString();
  EXPECT_EQ(fb->accepted, 1);
  ASSERT_EQ(fb->rejected.size(), 1u);
  EXPECT_EQ(fb->rejected[0].index, 1u);
  EXPECT_EQ(fb->rejected[0].code, "not_found");
  Response after = Recommend(cust, 10);
  bool changed = before.items.size() != after.items.size();
  for (size_t k = 0; !changed && k < after.items.size(); ++k) {
    changed = before.items[k].item_id != after.items[k].item_id || before.items[k].score != after.items[k].score;
  }
  EXPECT_TRUE(changed);
  for (const auto& it : after.items) EXPECT_NE(it.item_id, clicked) << "clicked content shown again";
  auto h = e.History(cust, 0, 10, kNow);
  ASSERT_TRUE(h.ok());
  ASSERT_FALSE(h->events.empty());
  EXPECT_EQ(h->events[0].item_id, clicked);
}

// An opt_out fed back withdraws consent on its channel (SPEC §6 rule 1): later push runs skip the
// customer with the consent rule, app_home still serves, and `history` shows the opt-out.
TEST_F(EngineTest, AnOptOutFedBackStopsMarketingOnThatChannelOnly) {
  Engine& e = Open();
  const std::vector<std::string> ids = PushableCustomers(40);
  PushRequest req;
  req.customer_ids = ids;
  req.now_ms = kNow;
  req.run_id = "before";
  std::vector<PushChoice> before;
  ASSERT_TRUE(e.Push(req, &before).ok());
  size_t k = 0;
  while (k < before.size() && before[k].items.empty()) ++k;
  ASSERT_LT(k, before.size()) << "nobody was sent anything";
  const std::string who = ids[k], item = before[k].items[0].item_id;
  auto fb = e.Feedback({{kNow + kMsPerMinute, who, item, "opt_out", "wechat_push", "before"}});
  ASSERT_TRUE(fb.ok()) << fb.status().ToString();
  EXPECT_EQ(fb->accepted, 1);
  req.customer_ids = {who};
  req.now_ms = kNow + 8 * kMsPerDay;  // past every cap and cooldown
  req.run_id = "after";
  std::vector<PushChoice> after;
  ASSERT_TRUE(e.Push(req, &after).ok());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(after[0].items.empty());
  EXPECT_EQ(after[0].skipped_by, "consent");
  Response home = Recommend(who, 5);
  ASSERT_TRUE(home.status.ok());
  EXPECT_FALSE(home.items.empty()) << "app_home consent is untouched";
  auto h = e.History(who, 0, 10, kNow + 8 * kMsPerDay);
  ASSERT_TRUE(h.ok());
  bool shown = false;
  for (const auto& ev : h->events) shown |= ev.type == EventType::kOptOut && ev.channel == "wechat_push";
  EXPECT_TRUE(shown);
}

TEST_F(EngineTest, ItemToItemRecallFollowsTheLatestClick) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.ann_products = o.serving.ann_content = o.serving.popular = o.serving.campaign = o.serving.fresh = 0;
  Engine& e = Open(std::move(o));
  const Dataset& ds = Bank();
  const std::string cust = ds.customers[44].id;
  std::string clicked;
  for (const auto& it : ds.items) {
    if (it.kind == ItemKind::kContent && !it.service) {
      clicked = it.id;
      break;
    }
  }
  ASSERT_TRUE(e.Feedback({{kNow - kMsPerMinute, cust, clicked, "click", "app_home", ""}}).ok());
  Response r = Recommend(cust, 100);  // every candidate that passes the filter
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.debug.counts["recall.similar"], 0);
  int similar = 0;
  for (const auto& it : r.items) similar += HasReasonPrefix(it, "recall:similar_to:" + clicked);
  EXPECT_GT(similar, 0);  // from the version's item-to-item table (a trained item)
  // An item added online is not in the table: its neighbours are searched.
  ASSERT_TRUE(
      e.UpsertItems(
           {{{"item_id", "I2I-NEW"}, {"kind", "content"}, {"title", "基金定投入门"}, {"category", "education"}}})
          .ok());
  ASSERT_TRUE(e.Feedback({{kNow - 30 * kMsPerSecond, cust, "I2I-NEW", "click", "app_home", ""}}).ok());
  Response r2 = Recommend(cust, 100);
  ASSERT_TRUE(r2.status.ok());
  int similar_new = 0;
  for (const auto& it : r2.items) similar_new += HasReasonPrefix(it, "recall:similar_to:I2I-NEW");
  EXPECT_GT(similar_new, 0);
}

TEST_F(EngineTest, ScoreReportsProbabilitiesAndTheRulesThatBlock) {
  Engine& e = Open();
  const Dataset& ds = Bank();
  // A customer holding a product: that product is blocked as held.
  size_t c = 0;
  while (c < ds.customers.size() && ds.customers[c].holdings.empty()) ++c;
  ASSERT_LT(c, ds.customers.size());
  const std::string held = ds.items[ds.customers[c].holdings[0]].id;
  auto s = e.Score(ds.customers[c].id, "app_home", {held, ds.items[0].id, "NOPE"}, kNow);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_FALSE((*s)[0].eligible);
  EXPECT_NE(std::find((*s)[0].blocked_by.begin(), (*s)[0].blocked_by.end(), "eligibility.held"),
            (*s)[0].blocked_by.end());
  EXPECT_GT((*s)[0].p_click, 0.0f);
  EXPECT_LT((*s)[0].p_click, 1.0f);
  EXPECT_EQ((*s)[2].blocked_by, std::vector<std::string>{"not_found"});
  EXPECT_FALSE(e.Score(ds.customers[c].id, "fax", {held}, kNow).ok());
}

TEST_F(EngineTest, AHistoricDataSetIsServedAsOfItsEndWhenARequestGivesNoTime) {
  EngineOptions o = OptionsFor(scratch_);
  o.data.clock = "data_end";
  Engine& e = Open(o);
  const TimeMs end = e.Now();
  EXPECT_LT(end, NowMs() - kMsPerDay);  // the generated bank ends before today
  const std::string customer = SharedBank().customers[7].id;
  Request r;
  r.customer_id = customer;
  r.dry_run = true;
  r.request_id = "clock-test";
  std::vector<Response> implicit, explicit_end;
  ASSERT_TRUE(e.Recommend({r}, &implicit).ok());
  r.now_ms = end;
  ASSERT_TRUE(e.Recommend({r}, &explicit_end).ok());
  ASSERT_FALSE(implicit[0].items.empty());
  ASSERT_EQ(implicit[0].items.size(), explicit_end[0].items.size());
  for (size_t k = 0; k < implicit[0].items.size(); ++k) {
    EXPECT_EQ(implicit[0].items[k].item_id, explicit_end[0].items[k].item_id);
  }
}

TEST(ServingConfig, ErrorsNameTheKey) {
  auto f = ConfigFile::Parse("[serving]\nexplore_share = 2\nslots = [\"banner\"]\nbogus = 1\n");
  ASSERT_TRUE(f.ok());
  ServingConfig c;
  ReadServingConfig(f->Root().Table("serving"), &c);
  Status st = f->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'serving.explore_share': must be in [0, 1]"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("serving.slots"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown key 'serving.bogus'"), std::string::npos) << st.message();
}

TEST(ServingConfig, ReadsCampaignPinsAndWeights) {
  auto f = ConfigFile::Parse(
      "[serving]\nw_convert = 0.5\nranker = \"m.pt\"\n[[serving.campaigns]]\ncampaign = \"spring\"\ntiers = "
      "[\"affluent\"]\n");
  ASSERT_TRUE(f.ok());
  ServingConfig c;
  ReadServingConfig(f->Root().Table("serving"), &c);
  ASSERT_TRUE(f->Finish().ok()) << f->Finish().ToString();
  EXPECT_EQ(c.w_convert, 0.5);
  EXPECT_EQ(c.ranker, "m.pt");
  ASSERT_EQ(c.campaigns.size(), 1u);
  EXPECT_EQ(c.campaigns[0].campaign, "spring");
  EXPECT_EQ(c.campaigns[0].tiers, std::vector<std::string>{"affluent"});
}

TEST_F(EngineTest, AMissingTorchScriptRankerIsRefusedNamingTheKey) {
  EngineOptions o = OptionsFor(scratch_);
  o.serving.ranker = scratch_ + "/no_such_model.pt";
  auto e = Engine::Open(std::move(o));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("serving.ranker"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace qm::serving::testing
