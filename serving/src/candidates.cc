#include "candidates.h"

namespace qm::serving {

std::string ReasonText(const Reason& r, const Dataset& ds) {
  switch (r.source) {
    case Source::kAnn:
      return "recall:ann";
    case Source::kSimilarTo:
      return "recall:similar_to:" + ds.items[r.arg].id;
    case Source::kPopular:
      return "recall:popular";
    case Source::kCampaign:  // arg 0: a campaign run's own content (PushRequest::Campaign)
      return r.arg == 0 ? "recall:campaign" : "campaign:" + std::string(ds.campaigns.Name(r.arg));
    case Source::kFresh:
      return "recall:fresh";
    case Source::kFallbackPopular:
      return "fallback:popular";
    case Source::kFallbackAnyEligible:
      return "fallback:any_eligible";
  }
  return "recall";
}

CandidateIndex::CandidateIndex(size_t expected) {
  size_t cap = 64;
  while (cap < 2 * expected) cap <<= 1;
  slots_.assign(cap, {kEmpty, 0});
}

void CandidateIndex::Insert(uint32_t item, uint32_t pos) {
  if (2 * (size_ + 1) > slots_.size()) Grow();
  size_t h = Hash(item);
  while (slots_[h].first != kEmpty) h = (h + 1) & (slots_.size() - 1);
  slots_[h] = {item, pos};
  ++size_;
}

void CandidateIndex::Grow() {
  std::vector<std::pair<uint32_t, uint32_t>> old(slots_.size() * 2, {kEmpty, 0});
  old.swap(slots_);
  size_ = 0;
  for (const auto& [item, pos] : old) {
    if (item != kEmpty) Insert(item, pos);
  }
}

CandidateSet::CandidateSet(size_t expected, const std::vector<uint8_t>* retired, std::unordered_set<uint32_t> excluded,
                           std::map<std::string, int64_t>* dropped)
    : num_items_(retired->size()),
      retired_(retired),
      excluded_(std::move(excluded)),
      dropped_(dropped),
      where_(expected) {
  cands_.reserve(expected);
  reasons_.reserve(2 * expected);
}

bool CandidateSet::Add(uint32_t item, Source source, uint32_t arg, bool fallback) {
  if (item >= num_items_ || (*retired_)[item]) return false;
  if (!excluded_.empty() && excluded_.count(item)) {
    if (excluded_seen_.insert(item).second && dropped_) ++(*dropped_)["excluded"];
    return false;
  }
  const int64_t w = where_.Find(item);
  if (w >= 0) {
    int32_t* link = &cands_[w].reasons;
    if (*link == kReasonsClosed) return false;
    for (; *link != kNoReason; link = &reasons_[*link].next) {
      if (reasons_[*link].source == source && reasons_[*link].arg == arg) return false;
    }
    *link = static_cast<int32_t>(reasons_.size());  // set before push_back may move the pool
    reasons_.push_back({source, arg, kNoReason});
    return false;
  }
  where_.Insert(item, static_cast<uint32_t>(cands_.size()));
  Candidate c;
  c.item = item;
  c.reasons = static_cast<int32_t>(reasons_.size());
  reasons_.push_back({source, arg, kNoReason});
  c.fallback = fallback;
  cands_.push_back(c);
  return true;
}

void CandidateSet::AppendReasons(const Candidate& c, const Dataset& ds, std::vector<std::string>* out) const {
  for (int32_t x = c.reasons; x >= 0; x = reasons_[x].next) out->push_back(ReasonText(reasons_[x], ds));
}

}  // namespace qm::serving
