// UTF-8 checks (core/utf8.h): well-formed text passes, each kind of ill-formed sequence is found
// at its offset, and the repair replaces exactly the ill-formed parts.
#include "qianmian/core/utf8.h"

#include <gtest/gtest.h>

namespace qm {
namespace {

TEST(Utf8Test, WellFormedTextPasses) {
  EXPECT_TRUE(ValidUtf8(""));
  EXPECT_TRUE(ValidUtf8("app_home, a plain ASCII line longer than eight bytes"));
  EXPECT_TRUE(ValidUtf8("理财知识周 \xF0\x9F\x98\x80 \xC2\xA9 \xEF\xBF\xBD \xF4\x8F\xBF\xBF"));  // up to U+10FFFF
}

TEST(Utf8Test, FindsEachIllFormedSequence) {
  const std::pair<std::string, size_t> bad[] = {
      {"app_h\xC3me", 5},          // a lead byte without its continuation
      {"abc\x80", 3},              // a lone continuation byte
      {"\xC0\x80", 0},             // overlong NUL
      {"xx\xE0\x80\x80", 2},       // overlong three-byte form
      {"\xED\xA0\x80", 0},         // a surrogate
      {"\xF4\x90\x80\x80", 0},     // past U+10FFFF
      {"\xFF", 0},                 // never valid
      {"0123456789\xE7\x90", 10},  // truncated at the end, after an ASCII run
      {"理财\xE7", 6},             // truncated after valid multi-byte text
  };
  for (const auto& [text, at] : bad) {
    EXPECT_FALSE(ValidUtf8(text));
    EXPECT_EQ(FirstInvalidUtf8(text), at) << text;
  }
}

TEST(Utf8Test, RepairReplacesOnlyTheIllFormedParts) {
  EXPECT_EQ(ToValidUtf8("理财"), "理财");
  EXPECT_EQ(ToValidUtf8("app_h\xC3me"), "app_h\xEF\xBF\xBDme");
  EXPECT_EQ(ToValidUtf8("a\xE7\x90z"), "a\xEF\xBF\xBDz") << "one replacement for a truncated sequence";
  EXPECT_EQ(ToValidUtf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")
      << "a surrogate: three maximal subparts";
  EXPECT_TRUE(ValidUtf8(ToValidUtf8("\xC0\x80\xF4\x90\x80\x80 ok \xE0")));
}

}  // namespace
}  // namespace qm
