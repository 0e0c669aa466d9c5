// Module serving: the online engine. May depend on: core, policy; artifacts, features, recall,
// rank, BLAS (private); never training or synth.
//
// Stage 5 of the request path, re-rank: from the ranked candidates (served order) to a page:
// exploration (a share of positions offered to new items, seeded per request), the slot layout
// (the kind of each position) and diversity (at most so many items of a category). A pure
// function of its inputs: testable with hand-made candidates, no model. Public so that evaluation
// lays out its reference pages (the oracles') by the same rules.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qm::serving {

// What re-rank needs to know of a ranked candidate.
struct PageCandidate {
  int kind = 0;           // ItemKind: 0 product, 1 content
  uint32_t category = 0;  // 0 = none (never limited by diversity)
  bool is_new = false;    // may be explored
};

struct PageOptions {
  std::vector<int> slot_kinds;  // the kind of each position in order (-1 = either); positions
                                // past the list take either kind; empty = no layout
  int max_per_category = 0;     // 0 = no diversity limit
  double explore_share = 0;     // chance that a position goes to a random new item
};

// The slot kinds of [serving] slots ("product" / "content") for a channel with a layout.
std::vector<int> SlotKinds(const std::vector<std::string>& slots);

struct Page {
  std::vector<size_t> positions;  // into the ranked list, in page order
  std::vector<uint8_t> used;      // per ranked candidate: on the page
  std::vector<uint8_t> explored;  // per ranked candidate: put there by exploration
};

// Lays out up to `count` positions from `ranked` (served order). Each position: with probability
// explore_share (when there are new items) a uniformly drawn new item that fits; otherwise the
// best candidate of the slot's kind within diversity, then of either kind within diversity, then
// anything left. Draws from *rng only while new items exist.
Page LayOutPage(const std::vector<PageCandidate>& ranked, size_t count, const PageOptions& options,
                std::mt19937_64* rng);

}  // namespace qm::serving
