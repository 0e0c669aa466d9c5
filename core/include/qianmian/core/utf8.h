// Module core: UTF-8 checks for text that crosses the wire (requests' strings, replies' messages).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qm {

// The byte offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629:
// no overlong forms, no surrogates, nothing past U+10FFFF), or npos when all of `s` is valid.
size_t FirstInvalidUtf8(std::string_view s);
inline bool ValidUtf8(std::string_view s) { return FirstInvalidUtf8(s) == std::string_view::npos; }

// `s` with every ill-formed sequence replaced by U+FFFD (one per maximal ill-formed subpart, as
// the Unicode standard recommends). Returns `s` unchanged when it is valid.
std::string ToValidUtf8(std::string_view s);

}  // namespace qm
