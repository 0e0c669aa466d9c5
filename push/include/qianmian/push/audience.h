// Module push: WeChat push runs. May depend on: core, serving, policy; never training or synth.
// Audience expressions for push runs (issue 7): which customers a run targets, written over the
// bank's label system and customer attributes, e.g.
//   tier in (affluent, private) and region = "Jinan" and tag:payroll and age >= 30
// Grammar (keywords are case-insensitive):
//   expr    := term ("or" term)*
//   term    := factor ("and" factor)*
//   factor  := "not" factor | "(" expr ")" | "all" | "tag:" NAME | FIELD OP VALUE
//            | FIELD ["not"] "in" "(" VALUE ("," VALUE)* ")"
//   OP      := = | != | < | <= | > | >=
//   VALUE   := number | "double-quoted" | 'single-quoted' | bare word (letters, digits, _ - . :)
// Fields: customer_id, tier (mass|affluent|private, ordered), risk_level (C1..C5, ordered; an
// unassessed customer has none), region, tag / tags (= a label), opt_out (= a channel), and
// every extra customers.csv column (numeric columns compare as numbers, categorical ones as
// text). A missing value satisfies no comparison (only `!=` and `not in`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"

namespace qm::push {

// A compiled audience: bound to one Dataset's columns and dictionaries. Immutable; Matches is
// thread-safe.
class Audience {
 public:
  // Parses and binds `text` ("" or "all" = every customer). InvalidArgument for a syntax error,
  // an unknown field or a bad value, with the 1-based character position, e.g.
  //   "audience: position 38: unknown field 'agee' (known: customer_id, tier, ...)".
  [[nodiscard]] static Result<Audience> Compile(std::string_view text, const Dataset& ds);

  // Whether customer `index` of the dataset it was compiled against belongs to the audience.
  // REQUIRES: the same Dataset (or one with the same columns and dictionaries).
  bool Matches(const Dataset& ds, uint32_t index) const;

  // Every matching customer index, ascending.
  std::vector<uint32_t> Select(const Dataset& ds) const;

  // The expression as written.
  const std::string& text() const { return text_; }

  struct Node;  // the compiled tree (audience.cc)

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;  // null = everyone
};

// Reads an audience file: one customer id a line (blank lines and '#' comments skipped).
// IoError naming the file when it cannot be read.
[[nodiscard]] Result<std::vector<std::string>> ReadIdFile(const std::string& path);

}  // namespace qm::push
