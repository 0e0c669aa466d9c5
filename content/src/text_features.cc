#include "qianmian/content/text_features.h"

#include <xxhash.h>
#include <string>

namespace qm::content {

std::vector<std::string_view> Utf8CodePoints(std::string_view text) {
  std::vector<std::string_view> cps;
  cps.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + len > text.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) {
        len = 1;
        break;
      }
    }
    cps.push_back(text.substr(i, len));
    i += len;
  }
  return cps;
}

namespace {
bool IsSpaceOrPunct(std::string_view cp) {
  if (cp.size() != 1) {
    // Common CJK punctuation: ，。、！？：；“”（）《》
    static const char* kPunct[] = {"，", "。", "、", "！", "？", "：", "；", "“", "”", "（", "）", "《", "》", "…"};
    for (const char* p : kPunct)
      if (cp == p) return true;
    return false;
  }
  char c = cp[0];
  return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           static_cast<unsigned char>(c) >= 0x80);
}
}  // namespace

void HashedNgrams(std::string_view text, const TextFeatureOptions& options, std::vector<uint32_t>* out) {
  std::vector<std::string_view> cps = Utf8CodePoints(text);
  std::string gram;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (IsSpaceOrPunct(cps[i])) continue;
    gram.clear();
    for (int n = 1; n <= options.max_n && i + n <= cps.size(); ++n) {
      std::string_view cp = cps[i + n - 1];
      if (IsSpaceOrPunct(cp)) break;  // n-grams do not cross spaces or punctuation
      if (options.lowercase_ascii && cp.size() == 1 && cp[0] >= 'A' && cp[0] <= 'Z') {
        gram.push_back(static_cast<char>(cp[0] - 'A' + 'a'));
      } else {
        gram.append(cp);
      }
      if (n < options.min_n) continue;
      uint64_t h = XXH3_64bits_withSeed(gram.data(), gram.size(), static_cast<uint64_t>(n));
      out->push_back(static_cast<uint32_t>(h % options.buckets));
    }
  }
}

}  // namespace qm::content
