// Module content: text features of content items. May depend on: core; xxhash (private).
//
// Text features of content items: hashed character n-grams over UTF-8 code points, which
// work for Chinese titles and bodies without a word segmenter. An item with no interactions
// still gets features (cold start).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace qm::content {

struct TextFeatureOptions {
  int min_n = 1;                // shortest n-gram, in code points
  int max_n = 3;                // longest n-gram, in code points
  uint32_t buckets = 1u << 18;  // hash space; ids are in [0, buckets)
  bool lowercase_ascii = true;  // fold ASCII letters
};

// Appends the bucket ids of every n-gram of `text` to `out` (with repeats; callers that want
// a set sort and unique). Invalid UTF-8 bytes count as one code point each. Thread-safe.
void HashedNgrams(std::string_view text, const TextFeatureOptions& options, std::vector<uint32_t>* out);

// Splits UTF-8 into code points (as byte ranges). Exposed for tests and tokenisers.
std::vector<std::string_view> Utf8CodePoints(std::string_view text);

}  // namespace qm::content
