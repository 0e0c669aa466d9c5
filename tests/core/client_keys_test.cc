// Client lists of the server (core/curve_keys.h): the CURVE clients file and the JSON API's
// token clients file, each refused with the entry named for a bad name, key, duplicate or empty
// op list; a token written with mode 0600 and never overwritten.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "qianmian/core/curve_keys.h"

namespace qm {
namespace {

class ClientKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("qm-client-keys-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    const std::string path = (dir_ / ("c" + std::to_string(n_++) + ".toml")).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
  int n_ = 0;
};

const std::string kHash(64, 'a');

TEST_F(ClientKeysTest, HttpClientsNeedANameAHashAndOps) {
  Result<std::vector<HttpClient>> ok =
      ReadHttpClients(Write("[[clients]]\nname = \"app\"\ntoken_sha256 = \"" + kHash + "\"\nops = [\"recommend\"]\n"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].name, "app");
  EXPECT_EQ((*ok)[0].ops, std::vector<std::string>{"recommend"});
  const std::pair<std::string, std::string> bad[] = {
      {"[[clients]]\ntoken_sha256 = \"" + kHash + "\"\nops = [\"*\"]\n", "'name' is required"},
      {"[[clients]]\nname = \"a\"\ntoken_sha256 = \"" + std::string(64, 'A') + "\"\nops = [\"*\"]\n",
       "'token_sha256' must be"},
      {"[[clients]]\nname = \"a\"\ntoken_sha256 = \"abc\"\nops = [\"*\"]\n", "'token_sha256' must be"},
      {"[[clients]]\nname = \"a\"\ntoken_sha256 = \"" + kHash + "\"\n", "'ops' lists none"},
      {"[[clients]]\nname = \"a\"\ntoken_sha256 = \"" + kHash + "\"\nops = [\"*\"]\n[[clients]]\nname = \"b\"\n" +
           "token_sha256 = \"" + kHash + "\"\nops = [\"*\"]\n",
       "another client's"},
      {"[[clients]]\nname = \"a\"\ntoken_sha256 = \"" + kHash + "\"\nops = [\"*\"]\n[[clients]]\nname = \"a\"\n" +
           "token_sha256 = \"" + std::string(64, 'b') + "\"\nops = [\"*\"]\n",
       "listed twice"},
      {"", "no [[clients]]"},
  };
  for (const auto& [text, needle] : bad) {
    Result<std::vector<HttpClient>> r = ReadHttpClients(Write(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }
  // The CURVE list shares the rules, with its own key.
  Result<std::vector<CurveClient>> curve =
      ReadCurveClients(Write("[[clients]]\nname = \"a\"\npublic_key = \"short\"\nops = [\"*\"]\n"));
  ASSERT_FALSE(curve.ok());
  EXPECT_NE(curve.status().message().find("'public_key' must be a Z85 key"), std::string::npos);
}

TEST_F(ClientKeysTest, ATokenIsRandomSecretAndNeverOverwritten) {
  const std::string path = (dir_ / "app.token").string();
  Result<std::string> t = WriteHttpToken(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->size(), 64u);
  EXPECT_EQ(t->find_first_not_of("0123456789abcdef"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(WriteHttpToken(path).ok());
  Result<std::string> other = WriteHttpToken((dir_ / "other.token").string());
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *t);
}

}  // namespace
}  // namespace qm
