#include "qianmian/artifacts/bundle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace qm::artifacts {
namespace {

namespace fs = std::filesystem;

constexpr char kDescription[] = "{\n  \"C\": 12,\n  \"K\": 40\n}";

void Put(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string Get(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Settings with a value of its own in every field, with an exposure model and a neighbour table.
BundleSettings SomeSettings() {
  BundleSettings s;
  s.embedding_dim = 4;
  s.temperature = 0.07f;
  s.exposure_model = true;
  s.exposure_temperature = 0.11f;
  s.exposure_weight = 0.8;
  s.exposure_per_valid_day = true;
  s.retrieval_weight = 0.25;
  s.retrieval_weight_without_exposure = 0.9;
  s.neighbours = 5;
  return s;
}

// Every field but the ranker contract, exactly (floats to 9 digits, doubles to 17), for
// comparing settings with a readable difference.
std::string Fields(const BundleSettings& s) {
  char text[400];
  std::snprintf(
      text, sizeof text,
      "embedding_dim=%d temperature=%.9g exposure_model=%d exposure_temperature=%.9g exposure_weight=%.17g "
      "exposure_per_valid_day=%d retrieval_weight=%.17g retrieval_weight_without_exposure=%.17g neighbours=%d",
      s.embedding_dim, s.temperature, s.exposure_model, s.exposure_temperature, s.exposure_weight,
      s.exposure_per_valid_day, s.retrieval_weight, s.retrieval_weight_without_exposure, s.neighbours);
  return text;
}

bool Lists(const Manifest& m, const std::string& path) {
  for (const ArtifactFile& f : m.files) {
    if (f.path == path) return true;
  }
  return false;
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    root_ = (fs::path(::testing::TempDir()) / ("qm_bundle_" + std::to_string(::getpid()) + "_" + name)).string();
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes every file `s` calls for (placeholder bytes; three trained items) except `skip`, and
  // `extra` as well, through BundleWriter; returns what Commit said and, in *version, the version.
  Status Publish(const BundleSettings& s, std::string* version, BundleFile skip = BundleFile::kSettings,
                 BundleFile extra = BundleFile::kSettings) {
    QM_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Create(root_));
    *version = w.version();
    w.SetSettings(s);
    for (int i = 0; i < kBundleFiles; ++i) {
      const auto f = static_cast<BundleFile>(i);
      if (f == skip || f == BundleFile::kSettings || f == BundleFile::kItemEmbeddings || f == BundleFile::kItemIds ||
          f == BundleFile::kRankInputs || (!HoldsFile(s, f) && f != extra)) {
        continue;
      }
      Put(w.PathFor(f), FileName(f));
      QM_RETURN_IF_ERROR(w.Add(f));
    }
    std::vector<float> rows(3 * static_cast<size_t>(s.embedding_dim));
    std::iota(rows.begin(), rows.end(), 0.5f);
    QM_RETURN_IF_ERROR(w.WriteItemEmbeddings({"P-1", "C-7", "C-9"}, rows.data(), s.embedding_dim));
    QM_RETURN_IF_ERROR(w.WriteRankInputs(kDescription));
    return w.Commit().status();
  }
  std::string Publish(const BundleSettings& s) {
    std::string version;
    Status st = Publish(s, &version);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return version;
  }

  // Commits a copy of version `from` through ArtifactWriter alone (no bundle checks), each
  // file's name and bytes passed through `edit` first (an emptied name drops the file).
  std::string Republish(const std::string& from, const std::function<void(std::string*, std::string*)>& edit) {
    auto m = ReadManifest(root_, from);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    auto w = ArtifactWriter::Create(root_);
    EXPECT_TRUE(w.ok());
    for (const ArtifactFile& f : m->files) {
      std::string name = f.path, bytes = Get(root_ + "/" + from + "/" + f.path);
      edit(&name, &bytes);
      if (name.empty()) continue;
      Put(w->PathFor(name), bytes);
      EXPECT_TRUE(w->AddFile(name).ok());
    }
    EXPECT_TRUE(w->SetConfig(m->config_json).ok());
    EXPECT_TRUE(w->Commit().ok());
    return w->version();
  }

  // A version as training wrote it before bundle.json: the files by their names, the towers'
  // option files as the two-tower model writes them.
  std::string PublishLegacy(const std::string& config_json, bool exposure, bool neighbours) {
    auto w = ArtifactWriter::Create(root_);
    EXPECT_TRUE(w.ok());
    const std::string tower = R"({"format":"qianmian.two_tower/1","embedding_dim":8,"field_dim":16,"hidden":256,)"
                              R"("id_dim":32,"text_dim":32,"temperature":)";
    std::map<std::string, std::string> files = {
        {"features.json", "{}"},
        {"two_tower.pt", "weights"},
        {"two_tower.pt.json", tower + "0.05000000074505806}"},
        {"item_embeddings.f32", std::string(2 * 8 * sizeof(float), '\0')},
        {"item_ids.txt", "P-1\nC-1\n"},
        {"products.index", "index"},
        {"content.index", "index"},
        {"ranker.pt", "weights"},
        {"ranker.pt.json", "{}"},
        {"rank_inputs.json", kDescription},
    };
    if (exposure) {
      files["exposure_tower.pt"] = "weights";
      files["exposure_tower.pt.json"] = tower + "0.10000000149011612}";
    }
    if (neighbours) files["neighbours.i32"] = "table";
    for (const auto& [name, bytes] : files) {
      Put(w->PathFor(name), bytes);
      EXPECT_TRUE(w->AddFile(name).ok());
    }
    EXPECT_TRUE(w->SetConfig(config_json).ok());
    EXPECT_TRUE(w->Commit().ok());
    return w->version();
  }

  std::string root_;
};

TEST_F(BundleTest, SettingsRoundTripThroughBundleJsonListedInTheManifest) {
  const BundleSettings s = SomeSettings();
  const std::string v = Publish(s);
  auto r = BundleReader::Open(root_, v);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->legacy());
  EXPECT_TRUE(Lists(r->manifest(), "bundle.json"));
  const BundleSettings& got = r->settings();
  EXPECT_EQ(Fields(got), Fields(s));
  EXPECT_EQ(got.temperature, 0.07f);
  // The ranker contract is the hash of rank_inputs.json, and the description it was written from matches it.
  auto hash = Sha256File(r->PathFor(BundleFile::kRankInputs));
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(got.rank_inputs_sha256, *hash);
  EXPECT_TRUE(r->CheckRankInputs(kDescription).ok());
  EXPECT_EQ(r->PathFor(BundleFile::kRanker), root_ + "/" + v + "/ranker.pt");
  EXPECT_TRUE(r->Has(BundleFile::kSettings));
  EXPECT_TRUE(r->Has(BundleFile::kExposureTower));
  EXPECT_TRUE(r->Has(BundleFile::kNeighbours));
  auto rows = r->ReadItemEmbeddings();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->ids, (std::vector<std::string>{"P-1", "C-7", "C-9"}));
  ASSERT_EQ(rows->vectors.size(), 12u);
  EXPECT_EQ(rows->vectors[0], 0.5f);
  EXPECT_EQ(rows->vectors[11], 11.5f);

  // Without an exposure model or a neighbour table, the version holds neither.
  BundleSettings plain = s;
  plain.exposure_model = false;
  plain.exposure_temperature = 0;
  plain.neighbours = 0;
  auto r2 = BundleReader::Open(root_, Publish(plain));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FALSE(r2->settings().exposure_model);
  EXPECT_EQ(r2->settings().neighbours, 0);
  EXPECT_FALSE(r2->Has(BundleFile::kExposureTower));
  EXPECT_FALSE(r2->Has(BundleFile::kNeighbours));
  EXPECT_FALSE(Lists(r2->manifest(), "exposure_tower.pt"));
  EXPECT_FALSE(Lists(r2->manifest(), "neighbours.i32"));
}

TEST_F(BundleTest, AMissingCorruptOrInvalidBundleJsonIsCorruptionNamingIt) {
  const std::string v = Publish(SomeSettings());
  // Changed after the commit: verification names it.
  const std::string path = root_ + "/" + v + "/bundle.json";
  const std::string good = Get(path);
  Put(path, good + " ");
  auto changed = BundleReader::Open(root_, v);
  EXPECT_EQ(changed.status().code(), StatusCode::kCorruption);
  EXPECT_NE(changed.status().message().find("bundle.json"), std::string::npos) << changed.status().ToString();
  fs::remove(path);
  auto missing = BundleReader::Open(root_, v);
  EXPECT_EQ(missing.status().code(), StatusCode::kCorruption);
  EXPECT_NE(missing.status().message().find("bundle.json"), std::string::npos) << missing.status().ToString();
  Put(path, good);
  ASSERT_TRUE(BundleReader::Open(root_, v).ok());

  // Listed and hashed, but not settings.
  for (const std::string& bad : {std::string("{not json"), std::string("{\"format\": \"qianmian.bundle/1\"}"),
                                 good.substr(0, good.find("\"embedding_dim\": 4")) + "\"embedding_dim\": 0" +
                                     good.substr(good.find("\"embedding_dim\": 4") + 18)}) {
    const std::string w = Republish(v, [&](std::string* name, std::string* bytes) {
      if (*name == "bundle.json") *bytes = bad;
    });
    auto r = BundleReader::Open(root_, w);
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << bad;
    EXPECT_NE(r.status().message().find("bundle.json"), std::string::npos) << r.status().ToString();
  }
}

TEST_F(BundleTest, AVersionWhoseManifestLacksAFileItsSettingsCallForIsRefusedNamingIt) {
  const std::string v = Publish(SomeSettings());
  for (const char* needed : {"exposure_tower.pt", "neighbours.i32", "ranker.pt", "rank_inputs.json"}) {
    const std::string w = Republish(v, [&](std::string* name, std::string*) {
      if (*name == needed) name->clear();
    });
    auto r = BundleReader::Open(root_, w);
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << needed;
    EXPECT_NE(r.status().message().find(needed), std::string::npos) << r.status().ToString();
  }
}

TEST_F(BundleTest, TheWriterRefusesFilesThatDoNotMatchItsSettingsAndLeavesCurrent) {
  const std::string v = Publish(SomeSettings());
  std::string w;
  // A file the settings call for was not written.
  Status st = Publish(SomeSettings(), &w, BundleFile::kRanker);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("ranker.pt"), std::string::npos) << st.ToString();
  // A file the settings rule out was written.
  BundleSettings plain = SomeSettings();
  plain.exposure_model = false;
  st = Publish(plain, &w, BundleFile::kSettings, BundleFile::kExposureTower);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("exposure_tower.pt"), std::string::npos) << st.ToString();
  // No settings; settings that cannot be read back; bundle.json added by hand.
  {
    auto bw = BundleWriter::Create(root_);
    ASSERT_TRUE(bw.ok());
    EXPECT_EQ(bw->Commit().status().code(), StatusCode::kFailedPrecondition);
    BundleSettings s = SomeSettings();
    s.temperature = 0;
    bw->SetSettings(s);
    st = bw->Commit().status();
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("temperature"), std::string::npos) << st.ToString();
    Put(bw->PathFor(BundleFile::kSettings), "{}");
    EXPECT_EQ(bw->Add(BundleFile::kSettings).code(), StatusCode::kInvalidArgument);
  }
  auto current = ReadCurrent(root_);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(*current, v);
}

TEST_F(BundleTest, ItemEmbeddingsOfAnotherWidthAreRefusedWrittenAndRead) {
  std::string v;
  {
    auto bw = BundleWriter::Create(root_);
    ASSERT_TRUE(bw.ok());
    BundleSettings s = SomeSettings();
    s.exposure_model = false;
    s.neighbours = 0;
    bw->SetSettings(s);
    for (BundleFile f :
         {BundleFile::kFeatures, BundleFile::kTwoTower, BundleFile::kTwoTowerOptions, BundleFile::kProductsIndex,
          BundleFile::kContentIndex, BundleFile::kRanker, BundleFile::kRankerOptions}) {
      Put(bw->PathFor(f), "x");
      ASSERT_TRUE(bw->Add(f).ok());
    }
    ASSERT_TRUE(bw->WriteRankInputs(kDescription).ok());
    const std::vector<float> rows(6, 1.0f);
    ASSERT_TRUE(bw->WriteItemEmbeddings({"A", "B"}, rows.data(), 3).ok());
    Status st = bw->Commit().status();
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("width 3"), std::string::npos) << st.ToString();
  }
  v = Publish(SomeSettings());
  const std::string w = Republish(v, [](std::string* name, std::string* bytes) {
    if (*name == "item_embeddings.f32") bytes->resize(bytes->size() - sizeof(float));
  });
  auto r = BundleReader::Open(root_, w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto rows = r->ReadItemEmbeddings();
  EXPECT_EQ(rows.status().code(), StatusCode::kCorruption);
  EXPECT_NE(rows.status().message().find("item_embeddings.f32"), std::string::npos) << rows.status().ToString();
}

TEST_F(BundleTest, RankInputsOtherThanTheVersionsAreRefused) {
  auto r = BundleReader::Open(root_, Publish(SomeSettings()));
  ASSERT_TRUE(r.ok());
  Status st = r->CheckRankInputs(std::string(kDescription) + " ");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("rank_inputs.json"), std::string::npos) << st.ToString();
}

TEST_F(BundleTest, LegacyVersionsDeriveTheirSettingsFromTheirConfigurationAndTowerOptions) {
  // Defaults, with an exposure model and a neighbour table: auto retrieval weight 0.3 with the
  // exposure term, 1 without.
  auto r = BundleReader::Open(root_, PublishLegacy("{}", /*exposure=*/true, /*neighbours=*/true));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->legacy());
  EXPECT_FALSE(r->Has(BundleFile::kSettings));
  // Width and τ of the towers, the exposure model and its τ, exposure weight, per valid day,
  // retrieval weights with and without the exposure term, neighbours.
  const BundleSettings want{8, 0.05f, true, 0.1f, 1.0, true, 0.3, 1.0, 16, ""};
  BundleSettings s = r->settings();
  EXPECT_EQ(Fields(s), Fields(want));
  EXPECT_TRUE(r->CheckRankInputs(kDescription).ok());
  for (const ArtifactFile& f : r->manifest().files) {
    if (f.path == "rank_inputs.json") {
      EXPECT_EQ(s.rank_inputs_sha256, f.sha256);
    }
  }
  auto rows = r->ReadItemEmbeddings();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->ids.size(), 2u);

  // Configured values win; "auto" written out is auto.
  r = BundleReader::Open(root_, PublishLegacy(R"({"training":{"retrieval_weight":0.5,"exposure_weight":0.7,)"
                                              R"("exposure_per_valid_day":false,"neighbours":8}})",
                                              true, true));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  s = r->settings();
  EXPECT_EQ(s.retrieval_weight, 0.5);
  EXPECT_EQ(s.retrieval_weight_without_exposure, 0.5);
  EXPECT_EQ(s.exposure_weight, 0.7);
  EXPECT_FALSE(s.exposure_per_valid_day);
  EXPECT_EQ(s.neighbours, 8);

  r = BundleReader::Open(root_, PublishLegacy(R"({"training":{"retrieval_weight":-1}})", false, false));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  s = r->settings();
  EXPECT_FALSE(s.exposure_model);
  EXPECT_EQ(s.exposure_temperature, 0.0f);
  EXPECT_EQ(s.retrieval_weight, 1.0);
  EXPECT_EQ(s.retrieval_weight_without_exposure, 1.0);
  EXPECT_EQ(s.neighbours, 0);
  EXPECT_FALSE(r->Has(BundleFile::kExposureTower));
  EXPECT_FALSE(r->Has(BundleFile::kNeighbours));

  // Without the towers' options there is nothing to derive the settings from.
  const std::string bad = Republish(PublishLegacy("{}", false, false), [](std::string* name, std::string*) {
    if (*name == "two_tower.pt.json") name->clear();
  });
  r = BundleReader::Open(root_, bad);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("two_tower.pt.json"), std::string::npos) << r.status().ToString();
}

TEST(ResolveRetrievalWeight, KeepsAConfiguredWeightAndReadsAutoAsPointThreeWithAnExposureTermElseOne) {
  EXPECT_EQ(ResolveRetrievalWeight(0.5, true), 0.5);
  EXPECT_EQ(ResolveRetrievalWeight(0.0, false), 0.0);
  EXPECT_EQ(ResolveRetrievalWeight(-1, true), 0.3);
  EXPECT_EQ(ResolveRetrievalWeight(-1, false), 1.0);
}

// The names are a stored format: versions written by earlier builds are read by them.
TEST(BundleFile, EveryFileKeepsItsNameInTheVersionFolder) {
  const std::vector<std::string> names = {
      "bundle.json",    "features.json",     "two_tower.pt",           "two_tower.pt.json", "item_embeddings.f32",
      "item_ids.txt",   "exposure_tower.pt", "exposure_tower.pt.json", "products.index",    "content.index",
      "neighbours.i32", "ranker.pt",         "ranker.pt.json",         "rank_inputs.json",  "portraits.csv"};
  ASSERT_EQ(names.size(), static_cast<size_t>(kBundleFiles));
  for (int i = 0; i < kBundleFiles; ++i) EXPECT_EQ(FileName(static_cast<BundleFile>(i)), names[i]);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
}

}  // namespace
}  // namespace qm::artifacts

namespace qm::artifacts {
namespace {

TEST(ResolveServedRetrievalWeight, KeepsAConfiguredWeightAndIsZeroForARankerOfLoggedExposuresElseOne) {
  EXPECT_EQ(ResolveServedRetrievalWeight(0.5, true), 0.5);
  EXPECT_EQ(ResolveServedRetrievalWeight(0.0, false), 0.0);
  EXPECT_EQ(ResolveServedRetrievalWeight(-1, true), 0.0);
  EXPECT_EQ(ResolveServedRetrievalWeight(-1, false), 1.0);
}

}  // namespace
}  // namespace qm::artifacts
