// Online catalogue updates and atomic version swaps.
#include <atomic>
#include <fstream>
#include <iterator>
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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Issue 20: every file of a version's bundle, truncated, with one byte flipped, or replaced by
// the other version's file (an index from another version), and a manifest whose recorded hash
// does not match: each is refused at reload naming the file, and the old version keeps serving.
TEST_F(EngineTest, EveryFileOfTheBundleCorruptedTruncatedOrFromAnotherVersionIsRefusedAtReload) {
  EngineOptions o = OptionsFor(scratch_);
  o.artifacts_root = CopyArtifacts(scratch_);
  const std::string v1 = SharedFixture().v1, v2 = SharedFixture().v2;
  const fs::path dir = fs::path(o.artifacts_root) / v1, other = fs::path(o.artifacts_root) / v2;
  Engine& e = Open(std::move(o));
  ASSERT_EQ(e.model_version(), v2);
  const std::string manifest_text = ReadAll((dir / "MANIFEST.json").string());
  const nlohmann::json manifest = nlohmann::json::parse(manifest_text);
  ASSERT_GE(manifest["files"].size(), 5u);
  auto refused = [&](const std::string& file, const std::string& how) {
    auto r = e.Reload(v1);
    EXPECT_FALSE(r.ok()) << file << " " << how;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(file), std::string::npos) << how << ": " << r.status().message();
    }
    EXPECT_EQ(e.model_version(), v2) << file << " " << how;
  };
  int checked = 0;
  for (const auto& f : manifest["files"]) {
    const std::string name = f["path"].get<std::string>();
    const fs::path path = dir / name;
    const std::string original = ReadAll(path.string());
    ASSERT_FALSE(original.empty()) << name;
    WriteAll(path.string(), original.substr(0, original.size() / 2));  // truncated
    refused(name, "truncated");
    std::string flipped = original;
    flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
    WriteAll(path.string(), flipped);  // same size, another hash
    refused(name, "one byte flipped");
    if (fs::exists(other / name) && ReadAll((other / name).string()) != original) {
      fs::copy_file(other / name, path, fs::copy_options::overwrite_existing);  // from the other version
      refused(name, "from " + v2);
    }
    WriteAll(path.string(), original);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(manifest["files"].size()));
  // The manifest's own record of a file's hash, changed: refused too.
  nlohmann::json bad = manifest;
  std::string& sha = bad["files"][0]["sha256"].get_ref<std::string&>();
  sha[0] = sha[0] == '0' ? '1' : '0';
  WriteAll((dir / "MANIFEST.json").string(), bad.dump());
  refused(bad["files"][0]["path"].get<std::string>(), "manifest hash changed");
  WriteAll((dir / "MANIFEST.json").string(), ReadAll((other / "MANIFEST.json").string()));
  EXPECT_FALSE(e.Reload(v1).ok()) << "the other version's manifest";
  EXPECT_EQ(e.model_version(), v2);
  // Restored, the version loads: the refusals above were the corruption's.
  WriteAll((dir / "MANIFEST.json").string(), manifest_text);
  auto ok = e.Reload(v1);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, v1);
  EXPECT_EQ(Recommend(SomeCustomer(), 5).model_version, v1);
}

// Issue 20: clock jumps. A request whose time steps back cannot reopen a cap that a later
// contact used (a contact counts in every window that starts before it); a century later the
// contact is out of every window; quiet hours hold in any year; nothing crashes at the epoch.
TEST_F(EngineTest, RequestTimesThatJumpBackOrFarAheadKeepCapsAndQuietHoursRight) {
  Engine& e = Open();
  const std::vector<std::string> ids = PushableCustomers(30);
  auto push = [&](TimeMs now, const std::string& run) {
    PushRequest req;
    req.customer_ids = ids;
    req.now_ms = now;
    req.run_id = run;
    std::vector<PushChoice> out;
    EXPECT_TRUE(e.Push(req, &out).ok()) << run;
    return out;
  };
  const std::vector<PushChoice> first = push(kNow, "noon");
  int sent = 0;
  for (const auto& c : first) sent += !c.items.empty();
  ASSERT_GT(sent, 5);
  // Two hours back (10:00 the same day): everyone sent at noon is held by a cap or the cooldown.
  const std::vector<PushChoice> back = push(kNow - 2 * kMsPerHour, "back");
  for (size_t k = 0; k < first.size(); ++k) {
    if (first[k].items.empty()) continue;
    EXPECT_TRUE(back[k].items.empty()) << ids[k] << " sent again by a clock that stepped back";
    EXPECT_TRUE(back[k].skipped_by.rfind("cap.", 0) == 0 || back[k].skipped_by == "cooldown") << back[k].skipped_by;
  }
  // A century ahead, at 23:30 local: the noon sends are out of every window, and what goes out
  // waits for the end of quiet hours (08:00 the next morning).
  const TimeMs late = kNow + 36500 * kMsPerDay + 11 * kMsPerHour + 30 * kMsPerMinute;
  const std::vector<PushChoice> ahead = push(late, "ahead");
  int later = 0;
  for (const auto& c : ahead) {
    for (TimeMs at : c.send_at) EXPECT_EQ(at, kNow + 36501 * kMsPerDay - 4 * kMsPerHour);
    later += !c.items.empty();
  }
  EXPECT_GT(later, 5);
  // The epoch and the far past: answered, not crashed.
  for (TimeMs t : {TimeMs{1}, kNow - 3650 * kMsPerDay}) {
    Request r;
    r.customer_id = ids[0];
    r.channel = "app_home";
    r.count = 5;
    r.now_ms = t;
    r.dry_run = true;
    std::vector<Response> resp;
    ASSERT_TRUE(e.Recommend({r}, &resp).ok());
    EXPECT_TRUE(resp[0].status.ok()) << resp[0].status.ToString();
    (void)push(t, "past-" + std::to_string(t));
  }
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
