#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/version.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace qm::artifacts {
namespace {

namespace fs = std::filesystem;

// A fresh, empty folder per test, removed afterwards.
class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        (fs::path(::testing::TempDir()) / ("qm_artifacts_" + std::to_string(::getpid()) + "_" + info->name())).string();
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static void WriteFile(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Commits a bundle with two files; returns its version.
  std::string CommitBundle(const std::string& payload = "embeddings") {
    auto w = ArtifactWriter::Create(root_);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    WriteFile(w->PathFor("items.f32"), payload);
    WriteFile(w->PathFor("faiss/products.index"), "index bytes");
    EXPECT_TRUE(w->AddFile("items.f32").ok());
    EXPECT_TRUE(w->AddFile("faiss/products.index").ok());
    auto m = w->Commit();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return w->version();
  }

  std::string root_;
};

TEST_F(ArtifactsTest, CommitWritesAVerifiableBundleAndMovesCurrent) {
  EXPECT_EQ(ReadCurrent(root_).status().code(), StatusCode::kNotFound);
  const std::string v1 = CommitBundle();
  auto current = ReadCurrent(root_);
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  EXPECT_EQ(*current, v1);
  auto m = Verify(root_, v1);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[0].path, "faiss/products.index");  // sorted by path
  EXPECT_EQ(m->files[1].path, "items.f32");
  EXPECT_EQ(m->files[1].size, 10u);
  EXPECT_EQ(m->files[1].sha256, *Sha256File(root_ + "/" + v1 + "/items.f32"));

  const std::string v2 = CommitBundle("other embeddings");
  EXPECT_LT(v1, v2);
  EXPECT_EQ(*ReadCurrent(root_), v2);
  EXPECT_EQ(*ListVersions(root_), (std::vector<std::string>{v1, v2}));
  // No temporary files are left behind.
  for (const auto& entry : fs::recursive_directory_iterator(root_)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST_F(ArtifactsTest, ManifestRecordsConfigurationMetricsAndFingerprint) {
  auto w = ArtifactWriter::Create(root_);
  ASSERT_TRUE(w.ok());
  WriteFile(w->PathFor("model.bin"), "weights");
  ASSERT_TRUE(w->AddFile("model.bin").ok());
  ASSERT_TRUE(w->SetConfig(R"({"train": {"epochs": 3}})").ok());
  EXPECT_EQ(w->SetConfig("{not json").code(), StatusCode::kInvalidArgument);
  w->SetMetrics({{"recall@20", 0.25}});
  w->SetDataFingerprint("sha256:abc");
  ASSERT_TRUE(w->Commit().ok());
  auto m = ReadManifest(root_, w->version());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->version, w->version());
  EXPECT_EQ(m->config_json, R"({"train":{"epochs":3}})");
  EXPECT_EQ(m->metrics_json, R"({"recall@20":0.25})");
  EXPECT_EQ(m->data_fingerprint, "sha256:abc");
  EXPECT_GT(m->created_ms, 0);
  EXPECT_FALSE(m->created_at.empty());
}

TEST_F(ArtifactsTest, ManifestRecordsTheQianmianVersionCMakeDefines) {
  auto w = ArtifactWriter::Create(root_);
  ASSERT_TRUE(w.ok());
  WriteFile(w->PathFor("model.bin"), "weights");
  ASSERT_TRUE(w->AddFile("model.bin").ok());
  ASSERT_TRUE(w->Commit().ok());
  std::ifstream in(root_ + "/" + w->version() + "/MANIFEST.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(std::string("\"qianmian_version\": \"") + QIANMIAN_VERSION + "\""), std::string::npos) << text;
  auto m = ReadManifest(root_, w->version());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->qianmian_version, QIANMIAN_VERSION);
  EXPECT_STRNE(QIANMIAN_VERSION, "");
}

TEST_F(ArtifactsTest, ChangingOneByteOfAFileFailsVerificationNamingTheFile) {
  const std::string v = CommitBundle("embeddings");
  const std::string path = root_ + "/" + v + "/items.f32";
  WriteFile(path, "embeddingS");  // same size, one byte different
  auto m = Verify(root_, v);
  ASSERT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find("items.f32"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("SHA-256"), std::string::npos);

  WriteFile(path, "embeddings, longer");
  m = Verify(root_, v);
  ASSERT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find("bytes"), std::string::npos) << m.status().message();
}

TEST_F(ArtifactsTest, AMissingListedFileFailsVerificationNamingTheFile) {
  const std::string v = CommitBundle();
  fs::remove(root_ + "/" + v + "/faiss/products.index");
  auto m = Verify(root_, v);
  ASSERT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find("faiss/products.index"), std::string::npos);
  EXPECT_NE(m.status().message().find("missing"), std::string::npos);
}

TEST_F(ArtifactsTest, AnUnparsableManifestIsCorruptionAndAnUnknownVersionNotFound) {
  const std::string v = CommitBundle();
  WriteFile(root_ + "/" + v + "/MANIFEST.json", "{\"format\": 1, \"vers");
  EXPECT_EQ(Verify(root_, v).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Verify(root_, "v20000101-000000-0000").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Verify(root_, "../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ArtifactsTest, AWriterDestroyedWithoutCommitLeavesCurrentAndDeletesItsFiles) {
  const std::string v1 = CommitBundle();
  std::string abandoned_dir;
  {
    auto w = ArtifactWriter::Create(root_);
    ASSERT_TRUE(w.ok());
    abandoned_dir = w->dir();
    WriteFile(w->PathFor("items.f32"), "half written");
    ASSERT_TRUE(w->AddFile("items.f32").ok());
  }
  EXPECT_EQ(*ReadCurrent(root_), v1);
  EXPECT_TRUE(fs::is_empty(abandoned_dir));  // a tombstone: files gone, name kept
  EXPECT_EQ(*ListVersions(root_), (std::vector<std::string>{v1}));
}

TEST_F(ArtifactsTest, AFailedCommitLeavesCurrentUnchanged) {
  const std::string v1 = CommitBundle();
  auto w = ArtifactWriter::Create(root_);
  ASSERT_TRUE(w.ok());
  WriteFile(w->PathFor("items.f32"), "x");
  WriteFile(w->PathFor("forgotten.bin"), "y");  // never recorded
  ASSERT_TRUE(w->AddFile("items.f32").ok());
  auto m = w->Commit();
  ASSERT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("forgotten.bin"), std::string::npos);
  EXPECT_EQ(*ReadCurrent(root_), v1);
  // Recording the file makes the retry succeed.
  ASSERT_TRUE(w->AddFile("forgotten.bin").ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(*ReadCurrent(root_), w->version());
}

TEST_F(ArtifactsTest, AddFileRejectsUnsafePathsAndMissingFiles) {
  auto w = ArtifactWriter::Create(root_);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->AddFile("../escape").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->AddFile("/etc/passwd").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->AddFile("a//b").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->AddFile("MANIFEST.json").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->AddFile("absent.bin").code(), StatusCode::kNotFound);
  WriteFile(w->PathFor("a.bin"), "a");
  ASSERT_TRUE(w->AddFile("a.bin").ok());
  EXPECT_EQ(w->AddFile("a.bin").code(), StatusCode::kInvalidArgument);
}

TEST_F(ArtifactsTest, VersionsSortInCreationOrderAndAreNeverReused) {
  std::vector<std::string> names;
  std::vector<ArtifactWriter> writers;
  for (int i = 0; i < 5; ++i) {
    auto w = ArtifactWriter::Create(root_);
    ASSERT_TRUE(w.ok());
    names.push_back(w->version());
    writers.push_back(std::move(w).value());
  }
  for (size_t i = 1; i < names.size(); ++i) EXPECT_LT(names[i - 1], names[i]);
  // Versions created after abandoned ones (folders removed) do not take their names.
  writers.clear();
  for (int i = 0; i < 3; ++i) {
    auto w = ArtifactWriter::Create(root_);
    ASSERT_TRUE(w.ok());
    EXPECT_GT(w->version(), names.back());
    names.push_back(w->version());
  }
  EXPECT_TRUE(ListVersions(root_)->empty());  // tombstones are not versions
}

TEST_F(ArtifactsTest, SetCurrentRefusesABundleThatFailsVerification) {
  const std::string v1 = CommitBundle();
  const std::string v2 = CommitBundle("second");
  ASSERT_TRUE(SetCurrent(root_, v1).ok());  // rollback
  EXPECT_EQ(*ReadCurrent(root_), v1);
  WriteFile(root_ + "/" + v2 + "/items.f32", "tampered");
  EXPECT_EQ(SetCurrent(root_, v2).code(), StatusCode::kCorruption);
  EXPECT_EQ(*ReadCurrent(root_), v1);
}

TEST_F(ArtifactsTest, CurrentIsNeverSeenHalfWritten) {
  const std::string first = CommitBundle();
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto v = ReadCurrent(root_);
      ++reads;
      if (!v.ok() || v->size() != first.size() || (*v)[0] != 'v') ++bad;
    }
  });
  std::set<std::string> committed{first};
  for (int i = 0; i < 20; ++i) committed.insert(CommitBundle(std::to_string(i)));
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(committed.count(*ReadCurrent(root_)));
  EXPECT_EQ(ReadFile(root_ + "/CURRENT"), *ReadCurrent(root_) + "\n");
}

TEST_F(ArtifactsTest, ACorruptCurrentIsReportedAsCorruption) {
  fs::create_directories(root_);
  WriteFile(root_ + "/CURRENT", "\n");
  EXPECT_EQ(ReadCurrent(root_).status().code(), StatusCode::kCorruption);
  WriteFile(root_ + "/CURRENT", "../x\n");
  EXPECT_EQ(ReadCurrent(root_).status().code(), StatusCode::kCorruption);
}

TEST(Sha256File, MatchesTheStandardTestVector) {
  const std::string path = ::testing::TempDir() + "/qm_sha_" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  auto h = Sha256File(path);
  fs::remove(path);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256File(path).status().code(), StatusCode::kIoError);
}

TEST(DataFingerprint, ChangesWhenAnyInputFileChangesAppearsOrDisappears) {
  const std::string dir = ::testing::TempDir() + "/qm_fp_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out << content;
  };
  write("customers.csv", "customer_id\nc1\n");
  write("items.csv", "item_id,kind\ni1,product\n");
  auto base = DataFingerprint(dir);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->rfind("sha256:", 0), 0u);
  EXPECT_EQ(*DataFingerprint(dir), *base);  // deterministic
  write("unrelated.txt", "x");
  EXPECT_EQ(*DataFingerprint(dir), *base);  // only the three input files count
  write("events.csv", "");
  const std::string with_events = *DataFingerprint(dir);
  EXPECT_NE(with_events, *base);  // an empty file differs from a missing one
  write("items.csv", "item_id,kind\ni1,content\n");
  EXPECT_NE(*DataFingerprint(dir), with_events);
  // Moving bytes between files changes it too.
  write("items.csv", "item_id,kind\ni1,product\n");
  write("customers.csv", "customer_id\nc1");
  write("events.csv", "\n");
  EXPECT_NE(*DataFingerprint(dir), with_events);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qm::artifacts
