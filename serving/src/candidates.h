// The candidates of one request or one push customer: each item once, with every recall source
// that found it kept as a reason code (text is made only for the items served), then the ranker's
// outputs and the two-stage score. Private to serving.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "qianmian/core/dataset.h"

namespace qm::serving {

// Why a candidate was recalled.
enum class Source : uint8_t { kAnn, kSimilarTo, kPopular, kCampaign, kFresh, kFallbackPopular, kFallbackAnyEligible };

struct Reason {
  Source source;
  uint32_t arg;  // kSimilarTo: the seed item; kCampaign: the campaign's code; else 0
  int32_t next;  // the candidate's next reason in the pool, or kNoReason
};
inline constexpr int32_t kNoReason = -1;
inline constexpr int32_t kReasonsClosed = -2;  // the candidate moved on to ranking: later reasons are not kept

// "recall:ann", "recall:similar_to:<item>", "campaign:<id>", ...
std::string ReasonText(const Reason& r, const Dataset& ds);

struct Candidate {
  uint32_t item;
  int32_t reasons = kNoReason;  // first reason in the set's pool
  bool fallback = false;
  float pc = 0, pv = 0;      // ranker: p_click, p_convert
  double uv = 0, score = 0;  // two-tower u.v; the two-stage score
};

// Candidate positions by item: open addressing over a power-of-two table, so a request's few
// hundred candidates cost no allocation each.
class CandidateIndex {
 public:
  explicit CandidateIndex(size_t expected);
  // The position of `item`, or -1.
  int64_t Find(uint32_t item) const {
    for (size_t h = Hash(item);; h = (h + 1) & (slots_.size() - 1)) {
      if (slots_[h].first == item) return slots_[h].second;
      if (slots_[h].first == kEmpty) return -1;
    }
  }
  // REQUIRES: `item` not present.
  void Insert(uint32_t item, uint32_t pos);

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;  // never an item index (items are < 2^32 - 1)
  size_t Hash(uint32_t item) const { return (item * 0x9E3779B1u) & (slots_.size() - 1); }
  void Grow();
  std::vector<std::pair<uint32_t, uint32_t>> slots_;
  size_t size_ = 0;
};

// The recall stage's output: candidates in the order the sources found them, de-duplicated.
// Not thread-safe (one request).
class CandidateSet {
 public:
  // `retired[i]` items are never added; `excluded` items (dataset indexes) neither, each counted
  // once in (*dropped)["excluded"] when `dropped` is given.
  CandidateSet(size_t expected, const std::vector<uint8_t>* retired, std::unordered_set<uint32_t> excluded = {},
               std::map<std::string, int64_t>* dropped = nullptr);

  // Adds `item` as a new candidate (true), or the reason to the candidate it already is (false).
  bool Add(uint32_t item, Source source, uint32_t arg = 0, bool fallback = false);
  bool Contains(uint32_t item) const { return where_.Find(item) >= 0; }
  // Starts loading what Add(item) reads first (its retired flag, a cache miss per item otherwise).
  void Prefetch(uint32_t item) const {
    if (item < num_items_) __builtin_prefetch(retired_->data() + item);
  }
  // Stops collecting reasons for candidate k (it moved on to ranking).
  void Close(size_t k) { cands_[k].reasons = kReasonsClosed; }

  size_t size() const { return cands_.size(); }
  const Candidate& operator[](size_t k) const { return cands_[k]; }
  const std::vector<Candidate>& candidates() const { return cands_; }
  const Reason& reason(int32_t r) const { return reasons_[r]; }
  // The reason texts of candidate `c` (a copy that left the set keeps its first reason index).
  void AppendReasons(const Candidate& c, const Dataset& ds, std::vector<std::string>* out) const;

 private:
  size_t num_items_;
  const std::vector<uint8_t>* retired_;
  std::unordered_set<uint32_t> excluded_, excluded_seen_;
  std::map<std::string, int64_t>* dropped_;
  std::vector<Candidate> cands_;
  CandidateIndex where_;
  std::vector<Reason> reasons_;
};

}  // namespace qm::serving
