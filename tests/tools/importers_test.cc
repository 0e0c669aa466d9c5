#include "qianmian/tools/importers.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qianmian/core/csv.h"
#include "qianmian/core/dataset.h"

namespace qm::tools {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// A fresh temporary folder per test, removed afterwards.
class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("qm_import_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() +
                                         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "in");
    out_ = root_ / "out";
  }
  void TearDown() override { fs::remove_all(root_); }

  // Loads the output folder and expects every row of every file to be good.
  Result<Dataset> LoadOutput() {
    LoadReport report;
    auto ds = LoadDataset(out_.string(), DataConfig(), &report);
    EXPECT_EQ(report.customers.bad_rows + report.items.bad_rows + report.events.bad_rows, 0u) << report.Format();
    return ds;
  }

  const FeatureColumn* Feature(const Dataset& ds, const std::string& name) {
    for (const auto& f : ds.features) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }

  fs::path root_, out_;
};

// ---------------------------------------------------------------------------------------------
// MovieLens

// The 19 genre flags of u.item with the given genre indexes set.
std::string Flags(std::initializer_list<int> set) {
  std::string s;
  for (int g = 0; g < 19; ++g) {
    bool on = false;
    for (int x : set) on = on || x == g;
    s += on ? "|1" : "|0";
  }
  return s;
}

class MovieLensImport : public ImportTest {
 protected:
  void SetUp() override {
    ImportTest::SetUp();
    Write("u.genre",
          "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
          "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
          "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n");
    Write("u.user",
          "1|24|M|technician|85711\n"
          "2|53|F|other|94043\n"
          "3|23|M|writer|32067\n");
    Write("u.item", "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)" +
                        Flags({3, 4, 5}) + "\n" + "2|Caf\xE9 Society, The (1995)|12-May-1995||http://x" +
                        Flags({8, 14}) + "\n" + "3|GoldenEye (1995)|01-Jan-1995||http://x" + Flags({1, 2, 16}) + "\n" +
                        "4|unknown||||" + Flags({0}).substr(1) + "\n");
    Write("u.data",
          "1\t1\t5\t881250949\n"
          "2\t2\t3\t881250000\n"
          "3\t3\t1\t881251000\n"
          "1\t2\t4\t881250100\n"
          "2\t4\t2\t881250500\n"
          "3\t1\t5\t881250949\n");
  }
  void Write(const std::string& name, const std::string& text) { WriteFile(root_ / "in" / name, text); }

  Status Import(int min_rating = 1) {
    MovieLensOptions o;
    o.min_rating = min_rating;
    return ImportMovieLens((root_ / "in").string(), out_.string(), o, &stats_);
  }

  // Imports, expects failure, and checks that nothing was written.
  std::string ImportError() {
    Status st = Import();
    EXPECT_FALSE(st.ok());
    EXPECT_FALSE(fs::exists(out_ / "customers.csv"));
    EXPECT_FALSE(fs::exists(out_ / "events.csv"));
    return st.message();
  }

  ImportStats stats_;
};

TEST_F(MovieLensImport, WritesUsersAsMassCustomersWithTheirAttributes) {
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(ReadFile(out_ / "customers.csv"),
            "customer_id,tier,age,gender,occupation,zip\n"
            "u1,mass,24,M,technician,85711\n"
            "u2,mass,53,F,other,94043\n"
            "u3,mass,23,M,writer,32067\n");
  EXPECT_EQ(stats_.customers, 3u);
}

TEST_F(MovieLensImport, WritesMoviesAsContentWithFirstGenreAsCategoryAndAllGenresAsTags) {
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(ReadFile(out_ / "items.csv"),
            "item_id,kind,title,category,tags,text\n"
            "m1,content,Toy Story (1995),Animation,Animation;Children's;Comedy,01-Jan-1995\n"
            "m2,content,\"Caf\xC3\xA9 Society, The (1995)\",Drama,Drama;Romance,12-May-1995\n"
            "m3,content,GoldenEye (1995),Action,Action;Adventure;Thriller,01-Jan-1995\n"
            "m4,content,unknown,unknown,unknown,\n");
  EXPECT_EQ(stats_.items, 4u);
}

TEST_F(MovieLensImport, ConvertsLatin1TitlesToUtf8) {
  ASSERT_TRUE(Import().ok());
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->items[*ds->FindItem("m2")].title, "Caf\xC3\xA9 Society, The (1995)");
}

TEST_F(MovieLensImport, KeepsAnItemFileThatIsAlreadyUtf8) {
  std::string item = ReadFile(root_ / "in" / "u.item");
  item.replace(item.find('\xE9'), 1, "\xC3\xA9");
  Write("u.item", item);
  ASSERT_TRUE(Import().ok());
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->items[*ds->FindItem("m2")].title, "Caf\xC3\xA9 Society, The (1995)");
}

TEST_F(MovieLensImport, WritesEveryRatingAsAClickInTimeOrderWithTheRatingKept) {
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(ReadFile(out_ / "events.csv"),
            "ts,customer_id,item_id,type,channel,rating\n"
            "881250000000,u2,m2,click,app_home,3\n"
            "881250100000,u1,m2,click,app_home,4\n"
            "881250500000,u2,m4,click,app_home,2\n"
            "881250949000,u1,m1,click,app_home,5\n"
            "881250949000,u3,m1,click,app_home,5\n"
            "881251000000,u3,m3,click,app_home,1\n");
  EXPECT_EQ(stats_.events, 6u);
  EXPECT_EQ(stats_.clicks, 6u);
  EXPECT_EQ(stats_.skipped, 0u);
}

TEST_F(MovieLensImport, LeavesOutRatingsBelowMinRating) {
  ASSERT_TRUE(Import(4).ok());
  EXPECT_EQ(ReadFile(out_ / "events.csv"),
            "ts,customer_id,item_id,type,channel,rating\n"
            "881250100000,u1,m2,click,app_home,4\n"
            "881250949000,u1,m1,click,app_home,5\n"
            "881250949000,u3,m1,click,app_home,5\n");
  EXPECT_EQ(stats_.clicks, 3u);
  EXPECT_EQ(stats_.skipped, 3u);
}

TEST_F(MovieLensImport, RejectsAMinRatingOutsideOneToFive) {
  EXPECT_EQ(Import(0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Import(6).code(), StatusCode::kInvalidArgument);
}

TEST_F(MovieLensImport, OutputLoadsWithZeroBadRowsAndTypedFeatures) {
  ASSERT_TRUE(Import().ok());
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->customers.size(), 3u);
  EXPECT_EQ(ds->items.size(), 4u);
  EXPECT_EQ(ds->events.size(), 6u);
  for (const auto& c : ds->customers) {
    EXPECT_EQ(c.tier, Tier::kMass);
    EXPECT_EQ(c.risk, kNoRisk);
  }
  ASSERT_EQ(ds->features.size(), 4u);
  EXPECT_EQ(Feature(*ds, "age")->kind, FeatureColumn::Kind::kNumeric);
  EXPECT_EQ(Feature(*ds, "age")->numeric[1], 53.0f);
  // Every zip here is digits, yet the schema keeps zip categorical.
  EXPECT_EQ(Feature(*ds, "zip")->kind, FeatureColumn::Kind::kCategorical);
  EXPECT_EQ(Feature(*ds, "gender")->kind, FeatureColumn::Kind::kCategorical);
  EXPECT_EQ(Feature(*ds, "occupation")->kind, FeatureColumn::Kind::kCategorical);
  for (size_t i = 0; i < ds->events.size(); ++i) {
    EXPECT_EQ(ds->events.type[i], EventType::kClick);
    EXPECT_EQ(ds->events.channel[i], kAppHome);
  }
}

TEST_F(MovieLensImport, UsesTheStandardGenresWhenUGenreIsMissing) {
  fs::remove(root_ / "in" / "u.genre");
  ASSERT_TRUE(Import().ok());
  EXPECT_NE(ReadFile(out_ / "items.csv").find("m1,content,Toy Story (1995),Animation,Animation;Children's;Comedy"),
            std::string::npos);
}

TEST_F(MovieLensImport, FailsNamingAMissingFile) {
  fs::remove(root_ / "in" / "u.data");
  Status st = Import();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("u.data"), std::string::npos) << st.message();
}

TEST_F(MovieLensImport, FailsNamingAMissingFolder) {
  Status st = ImportMovieLens((root_ / "nowhere").string(), out_.string(), {}, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("nowhere"), std::string::npos) << st.message();
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnAWrongNumberOfFields) {
  Write("u.user", "1|24|M|technician|85711\n2|53|F|other\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.user:2: expected 5 fields, found 4"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnANonNumericAge) {
  Write("u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|twenty|M|writer|32067\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.user:3: age 'twenty'"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnANonNumericRating) {
  Write("u.data", "1\t1\t5\t881250949\n2\t2\t3\t881250000\n3\t3\tfour\t881251000\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.data:3: rating 'four'"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnARatingOutsideOneToFive) {
  Write("u.data", "1\t1\t6\t881250949\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.data:1: rating '6'"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnANonNumericTimestamp) {
  Write("u.data", "1\t1\t5\t881250949\n2\t2\t3\t1997-12-04\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.data:2: timestamp '1997-12-04'"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnARatingByAnUnknownUser) {
  Write("u.data", "1\t1\t5\t881250949\n9\t2\t3\t881250000\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.data:2: rating by unknown user 9"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnARatingOfAnUnknownMovie) {
  Write("u.data", "1\t1\t5\t881250949\n2\t2\t3\t881250000\n3\t77\t3\t881250000\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.data:3: rating of unknown movie 77"), std::string::npos) << m;
}

TEST_F(MovieLensImport, FailsNamingFileAndLineOnABadGenreFlag) {
  Write("u.item", "1|Toy Story (1995)|01-Jan-1995||x" + Flags({3}).substr(0, 36) + "|2\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("u.item:1: genre flag Western is '2'"), std::string::npos) << m;
}

TEST_F(MovieLensImport, LeavesAnEarlierOutputUntouchedWhenTheInputIsBad) {
  ASSERT_TRUE(Import().ok());
  std::string before = ReadFile(out_ / "events.csv");
  Write("u.data", "1\t1\t5\t881250949\n1\t1\tx\t881250949\n");
  EXPECT_FALSE(Import().ok());
  EXPECT_EQ(ReadFile(out_ / "events.csv"), before);
  for (const auto& e : fs::directory_iterator(out_)) EXPECT_NE(e.path().extension(), ".tmp");
}

// ---------------------------------------------------------------------------------------------
// UCI Bank Marketing

constexpr const char* kBankHeader =
    "age;job;marital;education;default;housing;loan;duration;campaign;pdays;previous;"
    "emp.var.rate;cons.price.idx;cons.conf.idx;euribor3m;nr.employed;y\n";

class BankMarketingImport : public ImportTest {
 protected:
  void SetUp() override {
    ImportTest::SetUp();
    file_ = root_ / "in" / "bank-additional-full.csv";
    Write(std::string(kBankHeader) +
          "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;0\n"
          "57;\"services\";married;high.school;unknown;no;no;149;1;999;0;1.1;93.994;-36.4;4.857;5191;1\n"
          "41;\"admin., senior\";single;university.degree;no;yes;no;300;2;6;1;-1.8;92.893;-46.2;1.299;5099.1;1\n"
          "25;student;single;high.school;no;yes;no;50;3;999;0;-1.8;92.893;-46.2;1.299;5099.1;0\n"
          "\"38\";\"blue-collar\";\"married\";\"basic;9y\";no;no;yes;120;1;999;0;1.4;93.918;-42.7;4.962;5228.1;0\n");
  }
  void Write(const std::string& text) { WriteFile(file_, text); }
  Status Import() { return ImportBankMarketing(file_.string(), out_.string(), &stats_); }
  std::string ImportError() {
    Status st = Import();
    EXPECT_FALSE(st.ok());
    EXPECT_FALSE(fs::exists(out_ / "customers.csv"));
    return st.message();
  }

  fs::path file_;
  ImportStats stats_;
};

TEST_F(BankMarketingImport, WritesOneMassCustomerPerRowWithEveryAttributeButDurationAndY) {
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(
      ReadFile(out_ / "customers.csv"),
      "customer_id,tier,age,job,marital,education,default,housing,loan,campaign,pdays,previous,"
      "emp.var.rate,cons.price.idx,cons.conf.idx,euribor3m,nr.employed\n"
      "b000001,mass,56,housemaid,married,basic.4y,no,no,no,1,999,0,1.1,93.994,-36.4,4.857,5191\n"
      "b000002,mass,57,services,married,high.school,unknown,no,no,1,999,0,1.1,93.994,-36.4,4.857,5191\n"
      "b000003,mass,41,\"admin., senior\",single,university.degree,no,yes,no,2,6,1,-1.8,92.893,-46.2,1.299,5099.1\n"
      "b000004,mass,25,student,single,high.school,no,yes,no,3,999,0,-1.8,92.893,-46.2,1.299,5099.1\n"
      "b000005,mass,38,blue-collar,married,basic;9y,no,no,yes,1,999,0,1.4,93.918,-42.7,4.962,5228.1\n");
  EXPECT_EQ(stats_.customers, 5u);
}

TEST_F(BankMarketingImport, WritesTheTermDepositAsTheOnlyProduct) {
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(ReadFile(out_ / "items.csv"),
            "item_id,kind,title,category\n"
            "term_deposit,product,Term deposit,deposit\n");
  EXPECT_EQ(stats_.items, 1u);
}

TEST_F(BankMarketingImport, WritesAnImpressionPerRowAndAConvertWhenYIsOneEvenlySpacedInFileOrder) {
  ASSERT_TRUE(Import().ok());
  const TimeMs step = (kBankMarketingEndMs - kBankMarketingStartMs) / 5;
  auto ts = [&](int row, TimeMs plus = 0) { return std::to_string(kBankMarketingStartMs + row * step + plus); };
  EXPECT_EQ(ReadFile(out_ / "events.csv"),
            "ts,customer_id,item_id,type,channel\n" + ts(0) + ",b000001,term_deposit,impression,app_home\n" + ts(1) +
                ",b000002,term_deposit,impression,app_home\n" + ts(1, kMsPerMinute) +
                ",b000002,term_deposit,convert,app_home\n" + ts(2) + ",b000003,term_deposit,impression,app_home\n" +
                ts(2, kMsPerMinute) + ",b000003,term_deposit,convert,app_home\n" + ts(3) +
                ",b000004,term_deposit,impression,app_home\n" + ts(4) + ",b000005,term_deposit,impression,app_home\n");
  EXPECT_EQ(ts(0), "1209600000000");  // 2008-05-01T00:00:00Z
  EXPECT_EQ(stats_.impressions, 5u);
  EXPECT_EQ(stats_.converts, 2u);
  EXPECT_EQ(stats_.events, 7u);
}

TEST_F(BankMarketingImport, AcceptsYesAndNoAsInTheOriginalUciFile) {
  Write(std::string(kBankHeader) +
        "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;\"yes\"\n"
        "57;services;married;high.school;no;no;no;149;1;999;0;1.1;93.994;-36.4;4.857;5191;\"no\"\n");
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(stats_.converts, 1u);
}

TEST_F(BankMarketingImport, OutputLoadsWithZeroBadRowsAndNumericColumnsStayNumeric) {
  ASSERT_TRUE(Import().ok());
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->customers.size(), 5u);
  ASSERT_EQ(ds->items.size(), 1u);
  EXPECT_EQ(ds->items[0].kind, ItemKind::kProduct);
  EXPECT_EQ(ds->items[0].risk, kNoRisk);
  EXPECT_EQ(ds->categories.Name(ds->items[0].category), "deposit");
  EXPECT_EQ(ds->events.size(), 7u);
  EXPECT_EQ(Feature(*ds, "duration"), nullptr);
  EXPECT_EQ(Feature(*ds, "y"), nullptr);
  ASSERT_EQ(ds->features.size(), 15u);
  for (const char* n : {"age", "campaign", "pdays", "previous", "emp.var.rate", "cons.price.idx", "cons.conf.idx",
                        "euribor3m", "nr.employed"}) {
    ASSERT_NE(Feature(*ds, n), nullptr) << n;
    EXPECT_EQ(Feature(*ds, n)->kind, FeatureColumn::Kind::kNumeric) << n;
  }
  for (const char* n : {"job", "marital", "education", "default", "housing", "loan"}) {
    ASSERT_NE(Feature(*ds, n), nullptr) << n;
    EXPECT_EQ(Feature(*ds, n)->kind, FeatureColumn::Kind::kCategorical) << n;
  }
  EXPECT_FLOAT_EQ(Feature(*ds, "cons.conf.idx")->numeric[2], -46.2f);
  for (size_t i = 1; i < ds->events.size(); ++i) EXPECT_LT(ds->events.ts[i - 1], ds->events.ts[i]);
}

TEST_F(BankMarketingImport, WorksWithoutADurationColumn) {
  Write(
      "age;job;marital;education;default;housing;loan;campaign;pdays;previous;"
      "emp.var.rate;cons.price.idx;cons.conf.idx;euribor3m;nr.employed;y\n"
      "56;housemaid;married;basic.4y;no;no;no;1;999;0;1.1;93.994;-36.4;4.857;5191;1\n");
  ASSERT_TRUE(Import().ok());
  EXPECT_EQ(stats_.converts, 1u);
}

TEST_F(BankMarketingImport, FailsNamingAMissingFile) {
  fs::remove(file_);
  Status st = Import();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("bank-additional-full.csv"), std::string::npos) << st.message();
}

TEST_F(BankMarketingImport, FailsNamingAMissingRequiredColumn) {
  Write(
      "age;job;marital;education;default;housing;loan;duration;campaign;pdays;previous;"
      "emp.var.rate;cons.price.idx;cons.conf.idx;nr.employed;y\n"
      "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;5191;0\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("bank-additional-full.csv:1: missing required column 'euribor3m'"), std::string::npos) << m;
}

TEST_F(BankMarketingImport, FailsOnACommaSeparatedFileWithAClearMessage) {
  Write("age,job,y\n56,housemaid,0\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("missing required columns"), std::string::npos) << m;
}

TEST_F(BankMarketingImport, FailsNamingFileAndLineOnAWrongNumberOfFields) {
  Write(std::string(kBankHeader) +
        "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;0\n"
        "57;services;married;high.school;unknown;no;no;149;1;999;0;1.1;93.994;-36.4;4.857;0\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("bank-additional-full.csv:3: expected 17 fields, found 16"), std::string::npos) << m;
}

TEST_F(BankMarketingImport, FailsNamingFileAndLineOnANonNumericAge) {
  Write(std::string(kBankHeader) +
        "old;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;0\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("bank-additional-full.csv:2: age 'old' is not a number"), std::string::npos) << m;
}

TEST_F(BankMarketingImport, FailsNamingFileAndLineWhenYIsNotZeroOrOne) {
  Write(std::string(kBankHeader) +
        "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;0\n"
        "56;housemaid;married;basic.4y;no;no;no;261;1;999;0;1.1;93.994;-36.4;4.857;5191;2\n");
  std::string m = ImportError();
  EXPECT_NE(m.find("bank-additional-full.csv:3: y '2' is not 0 or 1"), std::string::npos) << m;
}

TEST_F(BankMarketingImport, FailsOnAHeaderWithoutRows) {
  Write(kBankHeader);
  EXPECT_EQ(Import().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// The real public data sets (skipped when ../shared/data is absent)

class ImportRealData : public ImportTest {
 protected:
  fs::path Data(const std::string& rel) {
    fs::path p = fs::path(QM_SHARED_DATA_DIR) / rel;
    return p;
  }
};

TEST_F(ImportRealData, MovieLens100kGives943Customers1682ItemsAnd100000Clicks) {
  fs::path dir = Data("ml-100k");
  if (!fs::exists(dir / "u.data")) GTEST_SKIP() << dir << " is not here";
  ImportStats stats;
  ASSERT_TRUE(ImportMovieLens(dir.string(), out_.string(), {}, &stats).ok());
  EXPECT_EQ(stats.customers, 943u);
  EXPECT_EQ(stats.items, 1682u);
  EXPECT_EQ(stats.clicks, 100000u);
  EXPECT_EQ(stats.events, 100000u);
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->customers.size(), 943u);
  EXPECT_EQ(ds->items.size(), 1682u);
  EXPECT_EQ(ds->events.size(), 100000u);
  // A Latin-1 title of the distributed u.item, now UTF-8.
  EXPECT_EQ(ds->items[*ds->FindItem("m543")].title, "Mis\xC3\xA9rables, Les (1995)");
}

TEST_F(ImportRealData, BankMarketingGivesACustomerAndAnImpressionPerRowAndAConvertPerYes) {
  fs::path file = Data("bank-marketing/bank-additional-full.csv");
  if (!fs::exists(file)) GTEST_SKIP() << file << " is not here";
  // Count rows and y = 1 independently of the importer.
  uint64_t rows = 0, yes = 0;
  {
    auto reader = CsvReader::Open(file.string(), ';');
    ASSERT_TRUE(reader.ok());
    CsvRecord rec;
    int y = -1;
    while ((*reader)->Next(&rec)) {
      if (y < 0) {
        for (size_t i = 0; i < rec.fields.size(); ++i) {
          if (rec.fields[i] == "y") y = static_cast<int>(i);
        }
        ASSERT_GE(y, 0);
        continue;
      }
      ++rows;
      yes += rec.fields[y] == "1";
    }
  }
  ASSERT_EQ(rows, 41188u);
  ImportStats stats;
  ASSERT_TRUE(ImportBankMarketing(file.string(), out_.string(), &stats).ok());
  EXPECT_EQ(stats.customers, 41188u);
  EXPECT_EQ(stats.items, 1u);
  EXPECT_EQ(stats.impressions, 41188u);
  EXPECT_EQ(stats.converts, yes);
  auto ds = LoadOutput();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->customers.size(), 41188u);
  EXPECT_EQ(ds->items.size(), 1u);
  EXPECT_EQ(ds->events.size(), 41188u + yes);
  EXPECT_EQ(ds->events.ts.front(), kBankMarketingStartMs);
  EXPECT_LT(ds->events.ts.back(), kBankMarketingEndMs);
}

}  // namespace
}  // namespace qm::tools
