#include "qianmian/serving/rerank.h"

#include <algorithm>
#include <unordered_map>

namespace qm::serving {

std::vector<int> SlotKinds(const std::vector<std::string>& slots) {
  std::vector<int> kinds;
  for (const auto& s : slots) kinds.push_back(s == "product" ? 0 : 1);
  return kinds;
}

Page LayOutPage(const std::vector<PageCandidate>& ranked, size_t count, const PageOptions& options,
                std::mt19937_64* rng) {
  const size_t n = ranked.size();
  Page page;
  page.used.assign(n, 0);
  page.explored.assign(n, 0);
  std::unordered_map<uint32_t, int> per_category;
  std::vector<size_t> fresh_pool;
  for (size_t k = 0; k < n; ++k) {
    if (ranked[k].is_new) fresh_pool.push_back(k);
  }
  std::uniform_real_distribution<double> unif(0, 1);
  auto fits = [&](size_t k, int want_kind, bool diverse) {
    if (page.used[k]) return false;
    const PageCandidate& c = ranked[k];
    if (want_kind >= 0 && c.kind != want_kind) return false;
    if (diverse && options.max_per_category > 0 && c.category != 0 &&
        per_category[c.category] >= options.max_per_category) {
      return false;
    }
    return true;
  };
  const size_t page_size = std::min(count, n);
  for (size_t p = 0; p < page_size; ++p) {
    const int want = p < options.slot_kinds.size() ? options.slot_kinds[p] : -1;
    size_t pick = n;
    if (!fresh_pool.empty() && unif(*rng) < options.explore_share) {
      std::vector<size_t> choices;
      for (size_t k : fresh_pool) {
        if (fits(k, want, true)) choices.push_back(k);
      }
      if (!choices.empty()) {
        pick = choices[(*rng)() % choices.size()];
        page.explored[pick] = 1;
      }
    }
    for (int pass = 0; pass < 3 && pick == n; ++pass) {
      // 0: the slot's kind within diversity; 1: any kind within diversity; 2: anything left.
      for (size_t k = 0; k < n; ++k) {
        if (fits(k, pass == 0 ? want : -1, pass < 2)) {
          pick = k;
          break;
        }
      }
    }
    if (pick == n) break;
    page.used[pick] = 1;
    ++per_category[ranked[pick].category];
    page.positions.push_back(pick);
  }
  return page;
}

}  // namespace qm::serving
