#include "qianmian/synth/simulator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "qianmian/core/dataset.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/generate.h"
#include "synth_test_util.h"

namespace qm::synth {
namespace {

namespace fs = std::filesystem;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double Logit(double p) { return std::log(p / (1.0 - p)); }

// Every day of `sim`, by hand; checks that each day's events start that day and are sorted.
std::vector<Event> RunAllDays(Simulator* sim) {
  std::vector<Event> all, day;
  while (!sim->done()) {
    const int64_t d = sim->day();
    Status st = sim->NextDay(&day);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(std::is_sorted(day.begin(), day.end()));
    for (const Event& e : day) {
      EXPECT_GE(e.ts, sim->DayStart(d));
      // A contact starts that day (an app session's slots are 1 ms apart).
      if (e.type == EventType::kImpression || e.type == EventType::kPushSent) {
        EXPECT_LT(e.ts, sim->DayStart(d + 1) + 8);
      }
    }
    all.insert(all.end(), day.begin(), day.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

// The small bank of the synth tests, generated to a folder once per process, with a Bank of the
// same options, the folder as loaded and its truth.json.
struct Shared {
  fs::path root;
  std::unique_ptr<Bank> bank;
  Dataset data;
  nlohmann::json truth;
};

const Shared& TheBank() {
  static const Shared* shared = [] {
    setenv("QM_PROGRESS", "0", 1);
    auto* s = new Shared;
    s->root = fs::temp_directory_path() / ("qm_simulator_test_" + std::to_string(::getpid()));
    const GenerateOptions options = test_util::SmallOptions(s->root.string(), 2);
    Status st = GenerateBank(options).status();
    QM_CHECK_MSG(st.ok(), st.ToString());
    auto bank = Bank::Create(options);
    QM_CHECK_MSG(bank.ok(), bank.status().ToString());
    s->bank = std::move(bank).value();
    auto ds = LoadDataset(s->root.string(), DataConfig{});
    QM_CHECK_MSG(ds.ok(), ds.status().ToString());
    s->data = std::move(ds).value();
    std::ifstream in(s->root / "truth" / "truth.json");
    s->truth = nlohmann::json::parse(in);
    std::atexit([] { fs::remove_all(TheBank().root); });
    return s;
  }();
  return *shared;
}

class SimulatorTest : public ::testing::Test {
 protected:
  SimulatorTest()
      : root_(TheBank().root), bank_(TheBank().bank.get()), data_(&TheBank().data), truth_(&TheBank().truth) {}

  std::unique_ptr<Simulator> NewSimulator(SimulatorOptions o = {}) const {
    auto sim = Simulator::Create(*bank_, o);
    EXPECT_TRUE(sim.ok()) << sim.status().ToString();
    return sim.ok() ? std::move(sim).value() : nullptr;
  }

  const fs::path& root_;
  const Bank* bank_;
  const Dataset* data_;
  const nlohmann::json* truth_;
};

TEST_F(SimulatorTest, DrivingEveryDayByHandGivesTheEventsGenerateBankWrote) {
  auto sim = NewSimulator({0, 0, 3});
  ASSERT_NE(sim, nullptr);
  EXPECT_EQ(sim->num_days(), 40);  // the period ends at a local midnight
  const std::vector<Event> events = RunAllDays(sim.get());
  const EventLog& log = data_->events;
  ASSERT_EQ(events.size(), log.size());
  for (size_t e = 0; e < events.size(); ++e) {
    const Event& x = events[e];
    ASSERT_EQ(x.ts, log.ts[e]) << "event " << e;
    ASSERT_EQ(bank_->customer_id(x.customer), data_->customers[log.customer[e]].id) << "event " << e;
    ASSERT_EQ(bank_->item_id(x.item), data_->items[log.item[e]].id) << "event " << e;
    ASSERT_EQ(x.type, log.type[e]) << "event " << e;
    ASSERT_EQ(x.channel, log.channel[e]) << "event " << e;
    ASSERT_EQ(RequestIdText(x), log.RequestId(e)) << "event " << e;
  }
  std::vector<Event> after;
  EXPECT_EQ(sim->NextDay(&after).code(), StatusCode::kFailedPrecondition);
}

TEST_F(SimulatorTest, SlicesOfCustomersTogetherGiveTheWholeBanksEvents) {
  auto whole = NewSimulator({0, 0, 1});
  auto first = NewSimulator({0, 500, 2});
  auto rest = NewSimulator({500, 0, 2});
  ASSERT_TRUE(whole && first && rest);
  std::vector<Event> a = RunAllDays(first.get()), b = RunAllDays(rest.get());
  for (const Event& e : a) ASSERT_LT(e.customer, 500u);
  for (const Event& e : b) ASSERT_GE(e.customer, 500u);
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  const std::vector<Event> all = RunAllDays(whole.get());
  ASSERT_EQ(a.size(), all.size());
  for (size_t e = 0; e < all.size(); ++e) {
    ASSERT_TRUE(!(a[e] < all[e]) && !(all[e] < a[e])) << "event " << e;
    ASSERT_EQ(a[e].item, all[e].item);
  }
}

TEST_F(SimulatorTest, SeveralDaysAtOnceLogWhatTheDaysLogOneByOne) {
  auto by_day = NewSimulator({0, 300, 1});
  auto at_once = NewSimulator({0, 300, 2});
  ASSERT_TRUE(by_day && at_once);
  std::vector<Event> expected, day, got;
  for (int d = 0; d < 5; ++d) {
    ASSERT_TRUE(by_day->NextDay(&day).ok());
    expected.insert(expected.end(), day.begin(), day.end());
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(at_once->NextDays(0, &got).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(at_once->NextDays(5, &got).ok());
  EXPECT_EQ(at_once->day(), 5);
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_GT(got.size(), 300u);
  for (size_t e = 0; e < got.size(); ++e) {
    ASSERT_TRUE(!(got[e] < expected[e]) && !(expected[e] < got[e]) && got[e].item == expected[e].item) << e;
  }
  ASSERT_TRUE(at_once->NextDays(1000, &got).ok());  // the rest
  EXPECT_TRUE(at_once->done());
}

// The closed loop: odd customers' sessions and marketing pushes are handed to the caller, even
// customers run the logging policy exactly as before.
TEST_F(SimulatorTest, TheClosedLoopHandsOverTheChosenCustomersContacts) {
  auto logging = NewSimulator({0, 400, 1});
  auto loop = NewSimulator({0, 400, 2});
  ASSERT_TRUE(logging && loop);
  auto odd = [](uint32_t c) { return c % 2 == 1; };
  std::vector<Event> expected, got, day;
  std::vector<PlannedContact> contacts, taken;
  for (int d = 0; d < 6; ++d) {
    ASSERT_TRUE(logging->NextDay(&day).ok());
    expected.insert(expected.end(), day.begin(), day.end());
    ASSERT_TRUE(loop->NextDaysClosedLoop(1, odd, &day, &taken).ok());
    got.insert(got.end(), day.begin(), day.end());
    for (const PlannedContact& k : taken) {
      ASSERT_TRUE(odd(k.customer));
      ASSERT_GE(k.ts, loop->DayStart(d));
      ASSERT_LT(k.ts, loop->DayStart(d + 1));
    }
    contacts.insert(contacts.end(), taken.begin(), taken.end());
  }
  std::set<std::pair<uint32_t, TimeMs>> sessions, pushes, logged_sessions, logged_pushes;
  std::vector<PlannedContact> service;
  for (const PlannedContact& k : contacts) {
    if (k.service) {
      service.push_back(k);
    } else {
      (k.channel == kAppHome ? sessions : pushes).insert({k.customer, k.ts});
    }
  }
  std::vector<Event> even_expected;
  for (const Event& e : expected) {
    if (!odd(e.customer)) {
      even_expected.push_back(e);
    } else if (e.type == EventType::kImpression) {
      logged_sessions.insert({e.customer, e.ts});  // a session's slot s is shown at its ts + s
    } else if (e.type == EventType::kPushSent && !data_->items[e.item].service) {
      logged_pushes.insert({e.customer, e.ts});
    }
  }
  std::vector<Event> even_got;
  for (const Event& e : got) {
    if (!odd(e.customer)) {
      even_got.push_back(e);
    } else {
      ADD_FAILURE() << "a handed-over customer logged " << EventTypeName(e.type);
    }
  }
  ASSERT_EQ(even_got.size(), even_expected.size());
  for (size_t e = 0; e < even_got.size(); ++e) {
    ASSERT_TRUE(!(even_got[e] < even_expected[e]) && !(even_expected[e] < even_got[e])) << e;
  }
  // The contacts handed over are the logging policy's: every session it logged is one of them
  // (a contact where the policy found nothing to show logs no event).
  EXPECT_GT(logged_sessions.size(), 50u);
  for (const auto& k : logged_sessions) {
    auto at = sessions.upper_bound(k);  // the session at or just before this impression
    ASSERT_TRUE(at != sessions.begin()) << k.first << " " << k.second;
    --at;
    ASSERT_TRUE(at->first == k.first && k.second - at->second < 8) << k.first << " " << k.second;
  }
  for (const auto& k : logged_pushes) ASSERT_TRUE(pushes.count(k)) << k.first << " " << k.second;
  // The caller shows its own page at a handed-over session; the true model answers.
  const PlannedContact& k =
      *std::find_if(contacts.begin(), contacts.end(), [](const PlannedContact& c) { return c.channel == kAppHome; });
  std::vector<Event> shown;
  Exposure x{k.customer, 0, kAppHome, k.ts};
  while (!loop->EligibleOnAppHome(x.customer, x.item, x.ts)) ++x.item;
  ASSERT_TRUE(loop->Show(&x, 1, &shown).ok());
  ASSERT_FALSE(shown.empty());
  EXPECT_EQ(shown[0].type, EventType::kImpression);
  EXPECT_EQ(shown[0].ts, k.ts);
  // Service pushes are handed over too and run as planned, in the caller's time order.
  ASSERT_FALSE(service.empty());
  std::vector<Event> sent;
  ASSERT_TRUE(loop->RunServicePush(service.back(), &sent).ok());
  for (const Event& e : sent) EXPECT_TRUE(data_->items[e.item].service);
  EXPECT_EQ(loop->RunServicePush(k, &sent).code(), StatusCode::kInvalidArgument);  // a session
  std::vector<Event> e2;
  EXPECT_EQ(loop->NextDaysClosedLoop(1, odd, &e2, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST_F(SimulatorTest, ABadSliceOrExposureIsAnInvalidArgument) {
  EXPECT_EQ(Simulator::Create(*bank_, {5, 5, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Simulator::Create(*bank_, {0, 3001, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Simulator::Create(*bank_, {0, 0, -1}).status().code(), StatusCode::kInvalidArgument);
  auto sim = NewSimulator({100, 200, 1});
  ASSERT_NE(sim, nullptr);
  const TimeMs t = bank_->start() + kMsPerDay;
  ResponseProbabilities p;
  std::vector<Event> events;
  for (const Exposure& bad : {Exposure{99, 0, kAppHome, t}, Exposure{200, 0, kAppHome, t},
                              Exposure{150, bank_->num_items(), kAppHome, t}, Exposure{150, 0, 2, t}}) {
    EXPECT_EQ(sim->Probabilities(&bad, 1, &p).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(sim->Show(&bad, 1, &events).code(), StatusCode::kInvalidArgument);
  }
  const Exposure too_late{150, 0, kAppHome, bank_->end()};
  EXPECT_EQ(sim->Show(&too_late, 1, &events).code(), StatusCode::kInvalidArgument);
  // Out of time order within a batch: nothing is shown.
  const Exposure batch[2] = {{150, 0, kAppHome, t + 10}, {150, 1, kAppHome, t}};
  EXPECT_EQ(sim->Show(batch, 2, &events).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(events.empty());
  ASSERT_TRUE(sim->Show(batch, 1, &events).ok());
  EXPECT_EQ(sim->Show(&batch[1], 1, &events).code(), StatusCode::kInvalidArgument);  // earlier than shown
}

TEST_F(SimulatorTest, TrueProbabilitiesLieInZeroOneAndFollowThePlantedModel) {
  const auto& m = (*truth_)["response_model"];
  const double alpha = m["alpha"], click = m["click_intercept"], offset = m["product_click_offset"];
  const double open = m["open_intercept"], convert = m["convert_intercept"], convert_alpha = m["convert_alpha"];
  const double dismiss = m["dismiss_intercept"], dismiss_alpha = m["dismiss_alpha"];
  const auto u = test_util::ReadFloats(root_ / "truth" / "customer_latent.f32");
  const auto v = test_util::ReadFloats(root_ / "truth" / "item_latent.f32");
  const auto bias = test_util::ReadFloats(root_ / "truth" / "item_bias.f32");
  const int dim = (*truth_)["dim"];
  auto sim = NewSimulator();
  ASSERT_NE(sim, nullptr);
  std::vector<Exposure> shown;
  for (uint32_t c = 0; c < bank_->num_customers(); c += 37)
    for (uint32_t i = c % 7; i < bank_->num_items(); i += 23) {
      shown.push_back({c, i, kAppHome, bank_->start() + 3 * kMsPerDay});
      shown.push_back({c, i, kWechatPush, bank_->start() + 3 * kMsPerDay});
    }
  std::vector<ResponseProbabilities> p(shown.size());
  ASSERT_TRUE(sim->Probabilities(shown.data(), shown.size(), p.data()).ok());
  int products = 0;
  for (size_t k = 0; k < shown.size(); ++k) {
    const uint32_t c = shown[k].customer, i = shown[k].item;
    double a = 0;
    for (int d = 0; d < dim; ++d) a += double(u[size_t(c) * dim + d]) * v[size_t(i) * dim + d];
    ASSERT_NEAR(bank_->Affinity(c, i), a, 1e-4);
    const Item& item = data_->items[i];
    const bool product = item.kind == ItemKind::kProduct;
    for (float x : {p[k].click, p[k].convert, p[k].dismiss, p[k].open}) {
      ASSERT_GE(x, 0.0f);
      ASSERT_LE(x, 1.0f);
    }
    if (shown[k].channel == kWechatPush) {
      // Nothing shown yet: no fatigue.
      EXPECT_NEAR(p[k].open, Sigmoid(open + bias[i] + alpha * a), 1e-5);
      EXPECT_EQ(p[k].click + p[k].convert + p[k].dismiss, 0.0f);
      continue;
    }
    products += product;
    EXPECT_NEAR(p[k].click, Sigmoid(click + (product ? offset : 0.0) + bias[i] + alpha * a), 1e-5);
    EXPECT_NEAR(p[k].convert, product ? Sigmoid(convert + convert_alpha * a) : 0.0, 1e-5);
    EXPECT_NEAR(p[k].dismiss, Sigmoid(dismiss + dismiss_alpha * a), 1e-5);
    EXPECT_EQ(p[k].open, 0.0f);
  }
  EXPECT_GT(products, 20);
}

TEST_F(SimulatorTest, ShowingAnItemTiresTheCustomerOfItAndOfItsCategory) {
  const auto& m = (*truth_)["response_model"];
  const double fatigue_item = m["fatigue_item"], fatigue_category = m["fatigue_category"];
  const double half_life = m["fatigue_half_life_days"];
  auto sim = NewSimulator({40, 41, 1});
  ASSERT_NE(sim, nullptr);
  // A content item and another of the same category (not a service item).
  constexpr uint32_t kNone = ~0u;
  uint32_t item = kNone, other = kNone;
  for (uint32_t i = 0; i < bank_->num_items() && other == kNone; ++i) {
    const Item& it = data_->items[i];
    if (it.kind != ItemKind::kContent || it.service) continue;
    if (item == kNone) {
      item = i;
    } else if (it.category == data_->items[item].category) {
      other = i;
    }
  }
  ASSERT_NE(other, kNone);
  const TimeMs t0 = bank_->start() + kMsPerDay, t1 = t0 + 12 * kMsPerHour;
  const Exposure before[2] = {{40, item, kAppHome, t1}, {40, other, kAppHome, t1}};
  ResponseProbabilities p0[2], p1[2];
  ASSERT_TRUE(sim->Probabilities(before, 2, p0).ok());
  std::vector<Event> events;
  const Exposure show{40, item, kAppHome, t0};
  ASSERT_TRUE(sim->Show(&show, 1, &events).ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].type, EventType::kImpression);
  EXPECT_EQ(events[0].ts, t0);
  EXPECT_EQ(RequestIdText(events[0]), "r41-1");  // the customer's first app_home request
  ASSERT_TRUE(sim->Probabilities(before, 2, p1).ok());
  // Half a day later the category's exposure has decayed by 2^(-0.5 / half_life).
  const double decayed = std::exp2(-0.5 / half_life);
  EXPECT_NEAR(Logit(p0[0].click) - Logit(p1[0].click), fatigue_item + fatigue_category * decayed, 1e-3);
  EXPECT_NEAR(Logit(p0[1].click) - Logit(p1[1].click), fatigue_category * decayed, 1e-3);
  // The dismissal grows with the item's earlier exposures (0.3 a time).
  EXPECT_NEAR(Logit(p1[0].dismiss) - Logit(p0[0].dismiss), 0.3, 1e-3);
}

TEST_F(SimulatorTest, ShownItemsAreAnsweredAtTheTrueRates) {
  auto sim = NewSimulator();
  ASSERT_NE(sim, nullptr);
  // Every customer is shown four items on app_home and one push, a day apart.
  double expected_clicks = 0, expected_opens = 0;
  size_t clicks = 0, opens = 0, impressions = 0, pushes = 0;
  std::vector<Event> events;
  for (uint32_t c = 0; c < bank_->num_customers(); ++c) {
    for (int k = 0; k < 5; ++k) {
      const Exposure x{c, (c * 13 + k * 101) % bank_->num_items(), k < 4 ? kAppHome : kWechatPush,
                       bank_->start() + (k + 1) * kMsPerDay};
      ResponseProbabilities p;
      ASSERT_TRUE(sim->Probabilities(&x, 1, &p).ok());
      (x.channel == kAppHome ? expected_clicks : expected_opens) += x.channel == kAppHome ? p.click : p.open;
      ASSERT_TRUE(sim->Show(&x, 1, &events).ok());
    }
  }
  std::set<std::string> requests;
  for (const Event& e : events) {
    clicks += e.type == EventType::kClick;
    opens += e.type == EventType::kPushOpen;
    impressions += e.type == EventType::kImpression;
    pushes += e.type == EventType::kPushSent;
    if (e.type == EventType::kImpression || e.type == EventType::kPushSent) requests.insert(RequestIdText(e));
  }
  EXPECT_EQ(impressions, 4u * bank_->num_customers());
  EXPECT_EQ(pushes, 1u * bank_->num_customers());
  EXPECT_EQ(requests.size(), 5u * bank_->num_customers());  // one request per Show call here
  // Counts of Bernoulli draws: within five standard deviations of their expectation.
  EXPECT_NEAR(double(clicks), expected_clicks, 5 * std::sqrt(expected_clicks) + 1);
  EXPECT_NEAR(double(opens), expected_opens, 5 * std::sqrt(expected_opens) + 1);
  EXPECT_GT(clicks, 20u);
  EXPECT_GT(opens, 20u);
}

TEST_F(SimulatorTest, ConsecutiveExposuresOfACustomerAndChannelFormOneRequest) {
  auto sim = NewSimulator({7, 9, 1});
  ASSERT_NE(sim, nullptr);
  const TimeMs t = bank_->start() + 2 * kMsPerDay;
  const Exposure batch[4] = {
      {7, 1, kAppHome, t}, {7, 2, kAppHome, t + 1}, {8, 3, kAppHome, t}, {7, 4, kAppHome, t + 2}};
  std::vector<Event> events;
  ASSERT_TRUE(sim->Show(batch, 4, &events).ok());
  std::vector<std::string> requests;
  for (const Event& e : events)
    if (e.type == EventType::kImpression) requests.push_back(RequestIdText(e));
  EXPECT_EQ(requests, (std::vector<std::string>{"r8-1", "r8-1", "r9-1", "r8-2"}));
}

TEST_F(SimulatorTest, BankToDatasetIsTheFolderAsLoaded) {
  auto ds = bank_->ToDataset();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->events.size(), 0u);
  ASSERT_EQ(ds->customers.size(), data_->customers.size());
  ASSERT_EQ(ds->items.size(), data_->items.size());
  for (size_t c = 0; c < ds->customers.size(); ++c) {
    const Customer &a = ds->customers[c], &b = data_->customers[c];
    ASSERT_EQ(a.id, bank_->customer_id(static_cast<uint32_t>(c)));
    ASSERT_EQ(std::tie(a.id, a.tier, a.risk, a.risk_assessed, a.region, a.tags, a.holdings, a.opt_out),
              std::tie(b.id, b.tier, b.risk, b.risk_assessed, b.region, b.tags, b.holdings, b.opt_out));
  }
  for (size_t i = 0; i < ds->items.size(); ++i) {
    const Item &a = ds->items[i], &b = data_->items[i];
    ASSERT_EQ(a.id, bank_->item_id(static_cast<uint32_t>(i)));
    ASSERT_EQ(std::tie(a.id, a.kind, a.title, a.category, a.tags, a.text, a.risk, a.tiers, a.regions, a.channels,
                       a.start, a.end, a.campaign, a.value, a.boost, a.service),
              std::tie(b.id, b.kind, b.title, b.category, b.tags, b.text, b.risk, b.tiers, b.regions, b.channels,
                       b.start, b.end, b.campaign, b.value, b.boost, b.service));
  }
  ASSERT_EQ(ds->features.size(), data_->features.size());
  for (size_t f = 0; f < ds->features.size(); ++f) EXPECT_EQ(ds->features[f].name, data_->features[f].name);
  EXPECT_EQ(bank_->holdout_start(), bank_->end() - 8 * kMsPerDay);  // 40 / 5 = 8 days
}

}  // namespace
}  // namespace qm::synth

namespace qm::synth {
namespace {

TEST_F(SimulatorTest, TheAttributeOracleBelievesTheAffinityOfTheAttributePartOfTheLatent) {
  const auto& m = (*truth_)["response_model"];
  const double alpha = m["alpha"], click = m["click_intercept"], offset = m["product_click_offset"];
  const auto u = test_util::ReadFloats(root_ / "truth" / "customer_latent_observable.f32");
  const auto v = test_util::ReadFloats(root_ / "truth" / "item_latent.f32");
  const auto bias = test_util::ReadFloats(root_ / "truth" / "item_bias.f32");
  const int dim = (*truth_)["dim"];
  auto sim = NewSimulator();
  ASSERT_NE(sim, nullptr);
  std::vector<Exposure> shown;
  for (uint32_t c = 0; c < bank_->num_customers(); c += 53)
    for (uint32_t i = c % 5; i < bank_->num_items(); i += 29) shown.push_back({c, i, kAppHome, bank_->start()});
  std::vector<ResponseProbabilities> believed(shown.size()), truth(shown.size());
  ASSERT_TRUE(sim->Probabilities(shown.data(), shown.size(), Knowledge::kAttributes, believed.data()).ok());
  ASSERT_TRUE(sim->Probabilities(shown.data(), shown.size(), truth.data()).ok());
  int differ = 0;
  for (size_t k = 0; k < shown.size(); ++k) {
    const uint32_t c = shown[k].customer, i = shown[k].item;
    double a = 0;
    for (int d = 0; d < dim; ++d) a += double(u[size_t(c) * dim + d]) * v[size_t(i) * dim + d];
    const bool product = data_->items[i].kind == ItemKind::kProduct;
    EXPECT_NEAR(believed[k].click, Sigmoid(click + (product ? offset : 0.0) + bias[i] + alpha * a), 1e-5);
    differ += std::abs(believed[k].click - truth[k].click) > 1e-4;
  }
  EXPECT_GT(differ, static_cast<int>(shown.size()) / 2);  // the idiosyncratic part matters
}

TEST_F(SimulatorTest, LoggingPagesAreEligibleDistinctOfTheSlotsKindAndSeeded) {
  auto sim = NewSimulator();
  ASSERT_NE(sim, nullptr);
  const TimeMs t = bank_->start() + 2 * kMsPerDay;
  const std::vector<int> kinds = {0, 1, 1, 0, 1, 1};
  int pages = 0;
  for (uint32_t c = 0; c < bank_->num_customers(); c += 11) {
    for (LoggingMode mode : {LoggingMode::kAsLogged, LoggingMode::kSegmentTargeting, LoggingMode::kPopularity}) {
      std::vector<uint32_t> page, again, other;
      ASSERT_TRUE(sim->LoggingPage(c, t, kinds, mode, 7, &page).ok());
      ASSERT_TRUE(sim->LoggingPage(c, t, kinds, mode, 7, &again).ok());
      EXPECT_EQ(page, again);
      ASSERT_LE(page.size(), kinds.size());
      std::vector<uint32_t> sorted = page;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
      for (uint32_t i : page) EXPECT_TRUE(sim->EligibleOnAppHome(c, i, t)) << c << " " << i;
      if (page.size() == kinds.size()) {
        for (size_t p = 0; p < page.size(); ++p) {
          EXPECT_EQ(data_->items[page[p]].kind == ItemKind::kProduct, kinds[p] == 0);
        }
      }
      pages += !page.empty();
    }
  }
  EXPECT_GT(pages, 30);
  std::vector<uint32_t> page;
  EXPECT_FALSE(sim->LoggingPage(bank_->num_customers(), t, kinds, LoggingMode::kAsLogged, 1, &page).ok());
}

// Contact pressure costs opt-outs (closed loop only): one push a day for a week makes far more
// customers opt out than a single push, an opt_out is an event on wechat_push, the logging policy
// pushes an opted-out customer no more marketing, and pushes shown after it are counted.
TEST_F(SimulatorTest, ContactPressureCostsOptOutsAndTheLoggingPolicyHonoursThem) {
  SimulatorOptions o;
  o.opt_outs = true;
  auto sim = NewSimulator(o);
  ASSERT_NE(sim, nullptr);
  std::vector<uint32_t> contents;
  for (uint32_t i = 0; i < data_->items.size(); ++i)
    if (data_->items[i].kind == ItemKind::kContent && !data_->items[i].service) contents.push_back(i);
  ASSERT_GT(contents.size(), 20u);
  std::vector<Event> events;
  size_t customers[2] = {0, 0};
  for (uint32_t c = 0; c < bank_->num_customers(); ++c) {
    if (sim->OptedOutOfPush(c)) continue;  // customers.csv's opt-outs
    const int pushes = c % 2 ? 7 : 1;
    ++customers[c % 2];
    for (int d = 0; d < pushes; ++d) {
      const Exposure x{c, contents[(c + 7 * d) % contents.size()], kWechatPush, bank_->start() + (d + 1) * kMsPerDay};
      ASSERT_TRUE(sim->Show(&x, 1, &events).ok());
    }
  }
  size_t opt_outs[2] = {0, 0}, after = 0;
  std::map<uint32_t, TimeMs> out_at;
  for (const Event& e : events) {
    if (e.type != EventType::kOptOut) continue;
    EXPECT_EQ(e.channel, kWechatPush);
    ++opt_outs[e.customer % 2];
    ASSERT_TRUE(out_at.emplace(e.customer, e.ts).second) << "one opt-out per customer";
    EXPECT_TRUE(sim->OptedOutOfPush(e.customer));
  }
  for (const Event& e : events) {
    auto o2 = out_at.find(e.customer);
    after += e.type == EventType::kPushSent && o2 != out_at.end() && e.ts > o2->second;
  }
  // Planted: sigmoid(-6.5 + 0.35 * pushes in 7 days - 0.3 a): about 0.2% for one push, about 7.6%
  // over a week of daily pushes (affinity spreads it a little).
  const double single = double(opt_outs[0]) / customers[0], daily = double(opt_outs[1]) / customers[1];
  EXPECT_LT(single, 0.01) << opt_outs[0];
  EXPECT_GT(daily, 0.04) << opt_outs[1];
  EXPECT_LT(daily, 0.15) << opt_outs[1];
  EXPECT_EQ(sim->ConsentViolations(), after);
  EXPECT_GT(after, 0u) << "the test pushed on after opt-outs";

  // The logging policy, with opt-outs drawn, never pushes marketing after a customer's opt-out.
  auto logged = NewSimulator(o);
  std::vector<Event> all = RunAllDays(logged.get());
  std::map<uint32_t, TimeMs> logged_out;
  for (const Event& e : all)
    if (e.type == EventType::kOptOut) logged_out.emplace(e.customer, e.ts);
  EXPECT_GT(logged_out.size(), 0u);
  for (const Event& e : all) {
    auto o2 = logged_out.find(e.customer);
    if (e.type == EventType::kPushSent && !data_->items[e.item].service && o2 != logged_out.end()) {
      EXPECT_LE(e.ts, o2->second) << e.customer;
    }
  }
  EXPECT_EQ(logged->ConsentViolations(), 0u);
  // Off (the default, and `generate`): no opt-out is ever drawn.
  auto off = NewSimulator();
  for (const Event& e : RunAllDays(off.get())) ASSERT_NE(e.type, EventType::kOptOut);
}

}  // namespace
}  // namespace qm::synth
