// Online catalogue updates and atomic version swaps.
#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "testing/engine_fixture.h"

namespace qm::serving::testing {
namespace {

const std::string& SomeCustomer() {
  static std::string id = [] {
    std::ifstream in(SharedFixture().data + "/customers.csv");
    std::string line;
    std::getline(in, line);
    std::getline(in, line);
    return line.substr(0, line.find(','));
  }();
  return id;
}

TEST_F(EngineTest, AnItemAddedOnlineIsServedInTheNextRequestAndRetiringRemovesIt) {
  EngineOptions o = OptionsFor(scratch_);
  // Only the campaign source: the new item is the one candidate.
  o.serving.ann_products = o.serving.ann_content = o.serving.similar = o.serving.popular = o.serving.fresh = 0;
  o.serving.campaigns = {{"launch", {}, {}}};
  Engine& e = Open(std::move(o));
  const int64_t before = e.num_items();
  auto n = e.UpsertItems({{{"item_id", "NEW1"},
                           {"kind", "content"},
                           {"title", "新品上线：养老规划指南"},
                           {"text", "养老 规划 理财"},
                           {"category", "retirement"},
                           {"campaign_id", "launch"}}});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(e.num_items(), before + 1);
  Response r = Recommend(SomeCustomer(), 1);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].item_id, "NEW1");
  EXPECT_EQ(r.items[0].reasons[0], "campaign:launch");
  auto s = e.Score(SomeCustomer(), "app_home", {"NEW1"}, kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)[0].eligible);

  auto gone = e.RetireItems({"NEW1", "NO-SUCH"});
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 1);
  Response after = Recommend(SomeCustomer(), 10);
  for (const auto& it : after.items) EXPECT_NE(it.item_id, "NEW1");
  auto s2 = e.Score(SomeCustomer(), "app_home", {"NEW1"}, kNow);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ((*s2)[0].blocked_by, std::vector<std::string>{"not_found"});
}

TEST_F(EngineTest, AnItemAddedOnlineIsFoundByTheAnnIndex) {
  Engine& e = Open();
  std::vector<Record> items;
  for (int i = 0; i < 30; ++i) {
    items.push_back({{"item_id", "ANN" + std::to_string(i)},
                     {"kind", "content"},
                     {"title", "理财知识 第" + std::to_string(i) + "期"},
                     {"category", "education"}});
  }
  ASSERT_TRUE(e.UpsertItems(items).ok());
  int found = 0;
  std::ifstream in(SharedFixture().data + "/customers.csv");
  std::string line;
  std::getline(in, line);
  for (int c = 0; c < 40 && std::getline(in, line); ++c) {
    Response r = Recommend(line.substr(0, line.find(',')), 100);
    for (const auto& it : r.items) {
      if (it.item_id.rfind("ANN", 0) == 0) {
        for (const auto& reason : it.reasons) found += reason == "recall:ann";
      }
    }
  }
  EXPECT_GT(found, 0) << "no online item was recalled by the ANN source";
}

// The fixture's current version was trained with exact_index_max = 100: its 240 contents are
// in an IVF index whose search effort training tuned on customer queries and then verified.
TEST_F(EngineTest, TheCurrentVersionSearchesContentsWithAVerifiedIvfIndexAndHasANeighbourTable) {
  auto m = artifacts::ReadManifest(SharedFixture().artifacts, SharedFixture().v2);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto stats = nlohmann::json::parse(m->metrics_json);
  EXPECT_EQ(stats.at("stats.index.content.ivf").get<double>(), 1.0);
  EXPECT_EQ(stats.at("stats.index.products.ivf").get<double>(), 0.0);  // 40 products: exact
  EXPECT_GE(stats.at("stats.index.content.recall@100").get<double>(), 0.95);
  EXPECT_GE(stats.at("stats.index.content.search_effort").get<double>(), 1.0);
  auto v1 = artifacts::ReadManifest(SharedFixture().artifacts, SharedFixture().v1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(nlohmann::json::parse(v1->metrics_json).at("stats.index.content.ivf").get<double>(), 0.0);
  // Only the second version has an item-to-item table.
  auto lists = [](const artifacts::Manifest& x) {
    return std::count_if(x.files.begin(), x.files.end(), [](const auto& f) { return f.path == "neighbours.i32"; });
  };
  EXPECT_EQ(lists(*m), 1);
  EXPECT_EQ(lists(*v1), 0);
}

TEST_F(EngineTest, AnUpsertedCustomerIsServedAtOnce) {
  Engine& e = Open();
  ASSERT_TRUE(e.UpsertCustomers({{{"customer_id", "FRESH-1"},
                                  {"tier", "private"},
                                  {"risk_level", "C5"},
                                  {"risk_assessed", "2026-10-01"},
                                  {"region", "Jinan"},
                                  {"age", "41"}}})
                  .ok());
  Response r = Recommend("FRESH-1", 10);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.debug.known_customer);
  EXPECT_FALSE(r.items.empty());
  auto bad = e.UpsertCustomers({{{"customer_id", "FRESH-2"}, {"risk_level", "C9"}}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// Copies the shared artifact root so a test may tamper with it.
std::string CopyArtifacts(const std::string& scratch) {
  const std::string root = scratch + "/art";
  fs::copy(SharedFixture().artifacts, root, fs::copy_options::recursive);
  return root;
}

TEST_F(EngineTest, ReloadSwapsVersionsAtomicallyUnderConcurrentRequests) {
  EngineOptions o = OptionsFor(scratch_);
  Engine& e = Open(std::move(o));
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  std::vector<std::string> ids;
  {
    std::ifstream in(SharedFixture().data + "/customers.csv");
    std::string line;
    std::getline(in, line);
    while (ids.size() < 300 && std::getline(in, line)) ids.push_back(line.substr(0, line.find(',')));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, served{0}, wrong_version{0};
  std::vector<std::thread> hammer;
  for (int t = 0; t < 3; ++t) {
    hammer.emplace_back([&, t] {
      int k = 0;
      while (!stop.load()) {
        Request q;
        q.customer_id = k % 5 == 0 ? "UNKNOWN-" + std::to_string(k) : ids[k % ids.size()];
        q.now_ms = kNow;
        q.count = 5;
        q.dry_run = k % 2 == 0;
        q.request_id = "hammer-" + std::to_string(t) + "-" + std::to_string(k++);
        std::vector<Response> out;
        Status st = e.Recommend({q}, &out);
        if (!st.ok() || !out[0].status.ok())
          ++failures;
        else
          served += !out[0].items.empty();
        if (st.ok() && out[0].model_version != v1 && out[0].model_version != v2) ++wrong_version;
      }
    });
  }
  for (int i = 0; i < 4; ++i) {
    auto r = e.Reload(i % 2 == 0 ? v1 : v2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(e.model_version(), i % 2 == 0 ? v1 : v2);
  }
  stop = true;
  for (auto& t : hammer) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong_version.load(), 0);
  EXPECT_GT(served.load(), 0);
  // "" reloads what CURRENT names.
  auto cur = e.Reload("");
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(*cur, v2);
}

TEST_F(EngineTest, AVersionThatFailsVerificationIsRefusedAndTheOldOneKeepsServing) {
  EngineOptions o = OptionsFor(scratch_);
  o.artifacts_root = CopyArtifacts(scratch_);
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  std::ofstream(o.artifacts_root + "/" + v1 + "/ranker.pt", std::ios::app) << "x";
  Engine& e = Open(std::move(o));
  auto r = e.Reload(v1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ranker.pt"), std::string::npos) << r.status().message();
  EXPECT_EQ(e.model_version(), v2);
  Response resp = Recommend(SomeCustomer(), 5);
  EXPECT_EQ(resp.model_version, v2);
  EXPECT_EQ(resp.items.size(), 5u);
  EXPECT_FALSE(e.Reload("v-no-such-version").ok());
  EXPECT_EQ(e.model_version(), v2);
}

TEST_F(EngineTest, OpenRefusesABundleThatFailsVerification) {
  EngineOptions o = OptionsFor(scratch_);
  o.artifacts_root = CopyArtifacts(scratch_);
  std::ofstream(o.artifacts_root + "/" + SharedFixture().v2 + "/item_embeddings.f32", std::ios::app) << "xx";
  auto e = Engine::Open(std::move(o));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("item_embeddings.f32"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace qm::serving::testing
