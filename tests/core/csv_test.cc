#include "qianmian/core/csv.h"

#include <gtest/gtest.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace qm {
namespace {

std::vector<std::vector<std::string>> ReadAll(std::string_view text, std::vector<std::string>* errors = nullptr) {
  auto r = CsvReader::FromString(text);
  CsvRecord rec;
  std::vector<std::vector<std::string>> rows;
  while (r->Next(&rec)) {
    if (!rec.error.empty()) {
      if (errors) errors->push_back(std::to_string(rec.line) + ":" + rec.error);
      continue;
    }
    rows.emplace_back(rec.fields.begin(), rec.fields.end());
  }
  return rows;
}

TEST(CsvReader, SplitsPlainFieldsAndKeepsEmptyOnes) {
  auto rows = ReadAll("a,b,c\n1,,3\n,,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "", "3"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"", "", ""}));
}

TEST(CsvReader, UnquotesFieldsWithCommasQuotesAndNewlines) {
  auto rows = ReadAll("id,title\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,end\n");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[1][1], "a, b");
  EXPECT_EQ(rows[2][1], "say \"hi\"");
  EXPECT_EQ(rows[3][1], "two\nlines");
  EXPECT_EQ(rows[4][1], "end");
}

TEST(CsvReader, CountsPhysicalLinesAcrossQuotedNewlines) {
  auto r = CsvReader::FromString("h\n\"x\ny\nz\"\nlast\n");
  CsvRecord rec;
  ASSERT_TRUE(r->Next(&rec));
  EXPECT_EQ(rec.line, 1u);
  ASSERT_TRUE(r->Next(&rec));
  EXPECT_EQ(rec.line, 2u);
  ASSERT_TRUE(r->Next(&rec));
  EXPECT_EQ(rec.line, 5u);
  EXPECT_EQ(rec.fields[0], "last");
}

TEST(CsvReader, HandlesCrlfBomAndMissingFinalNewline) {
  auto rows = ReadAll("\xEF\xBB\xBFid,v\r\n1,2\r\n3,4");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "id");
  EXPECT_EQ(rows[2], (std::vector<std::string>{"3", "4"}));
}

TEST(CsvReader, ReportsStrayAndUnterminatedQuotesThenResynchronises) {
  std::vector<std::string> errors;
  auto rows = ReadAll("a,b\nx\"y,1\n\"ok\"z,2\ngood,3\n\"open,4\n", &errors);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("2:stray quote"), std::string::npos);
  EXPECT_NE(errors[1].find("3:unexpected character"), std::string::npos);
  EXPECT_NE(errors[2].find("5:unterminated"), std::string::npos);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], "good");
}

TEST(CsvReader, ReadsFilesLargerThanItsBuffer) {
  auto path = std::filesystem::temp_directory_path() / "qm_csv_big.csv";
  {
    std::ofstream out(path);
    out << "i,text\n";
    for (int i = 0; i < 300000; ++i) out << i << ",\"row " << i << ", quoted\"\n";
  }
  auto r = CsvReader::Open(path.string());
  ASSERT_TRUE(r.ok());
  CsvRecord rec;
  ASSERT_TRUE((*r)->Next(&rec));
  int n = 0;
  while ((*r)->Next(&rec)) {
    ASSERT_TRUE(rec.error.empty()) << rec.line;
    ASSERT_EQ(rec.fields[0], std::to_string(n));
    ASSERT_EQ(rec.fields[1], "row " + std::to_string(n) + ", quoted");
    ++n;
  }
  EXPECT_EQ(n, 300000);
  std::filesystem::remove(path);
}

TEST(CsvWriter, QuotesOnlyWhatNeedsQuotingAndRoundTrips) {
  auto path = std::filesystem::temp_directory_path() / "qm_csv_w.csv";
  {
    auto w = CsvWriter::Open(path.string());
    ASSERT_TRUE(w.ok());
    (*w)->Row({"plain", "a,b", "q\"q", "l1\nl2", "理财"});
    (*w)->Field(int64_t{-42});
    (*w)->Field(0.25);
    (*w)->EndRow();
    ASSERT_TRUE((*w)->Close().ok());
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "plain,\"a,b\",\"q\"\"q\",\"l1\nl2\",理财\n-42,0.25\n");
  auto rows = ReadAll(text);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"plain", "a,b", "q\"q", "l1\nl2", "理财"}));
  std::filesystem::remove(path);
}

TEST(SplitList, TrimsAndDropsEmptyParts) {
  auto parts = SplitList(" a; b ;;c ");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "a");
  EXPECT_EQ(parts[1], "b");
  EXPECT_EQ(parts[2], "c");
  EXPECT_TRUE(SplitList("").empty());
}

}  // namespace
TEST(ReadLines, TrimsCrlfAndSkipsBlankLinesAndNamesAnUnreadableFile) {
  auto path = std::filesystem::temp_directory_path() / "qm_read_lines.txt";
  std::ofstream(path) << "C1\r\n  C2 \n\n\t\r\nC3";
  auto lines = ReadLines(path.string(), "customers file");
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_EQ(*lines, (std::vector<std::string>{"C1", "C2", "C3"}));
  std::filesystem::remove(path);
  auto missing = ReadLines(path.string(), "customers file");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read customers file"), std::string::npos);
}

}  // namespace qm
