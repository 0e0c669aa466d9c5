// What serving keeps of each customer's past: the events of events.csv indexed by customer (time
// order) and the feedback recorded since the engine opened, and the lists derived from them
// (positives per item, popular items per channel and segment). Private to serving.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/types.h"
#include "qianmian/features/feature_space.h"

namespace qm::serving {

// A customer's event as serving keeps it.
struct Ev {
  TimeMs ts;
  uint32_t item;
  EventType type;
  ChannelId channel;
};

// A request's view of one known customer's past.
struct Activity {
  std::vector<uint32_t> history;                // distinct positives, newest first (tower input)
  std::vector<uint32_t> clicked;                // content clicked or opened within the clicked horizon, sorted
  std::vector<features::ContactEvent> contact;  // events within the contact window, oldest first
};

// Build and AddCustomer need the engine's exclusive lock; AddFeedback and the readers its shared
// one: feedback goes into a customer's list under that customer's stripe lock, so recording an
// impression never waits for the pages being served.
class ActivityLog {
 public:
  // Indexes `events` (any order) of `num_customers` customers.
  void Build(const EventLog& events, size_t num_customers);
  // A customer added online (no events.csv history).
  void AddCustomer() {
    begin_.push_back(begin_.back());
    overlay_.emplace_back();
  }
  // A feedback event of a known customer. Once the customer has more than kPruneAbove feedback
  // events, those older than `keep` before the newest are dropped (memory stays bounded by the
  // traffic of `keep`; requests read the last max(contact window, clicked horizon)).
  void AddFeedback(uint32_t customer, const Ev& ev, TimeMs keep);
  static constexpr size_t kPruneAbove = 256;

  // The customer's events in [since, now), oldest first, from events.csv and feedback.
  void Recent(uint32_t customer, TimeMs since, TimeMs now, std::vector<Ev>* out) const;

  // What a request needs of a known customer at `now`: contact events within `window`,
  // `history_length` distinct positives (newest first, from the events since now - max(window,
  // clicked_horizon), topped up with older ones), and content clicked or opened within
  // `clicked_horizon`.
  void Gather(const Dataset& ds, uint32_t customer, TimeMs now, TimeMs window, TimeMs clicked_horizon,
              int history_length, Activity* out) const;

  // The events.csv part (customers in index order, each in time order).
  size_t num_customers() const { return begin_.size() - 1; }
  const Ev* begin(uint32_t customer) const { return ev_.data() + begin_[customer]; }
  const Ev* end(uint32_t customer) const { return ev_.data() + begin_[customer + 1]; }
  // The latest events.csv time (kNoTime when there are none).
  TimeMs last_ts() const;

 private:
  static constexpr size_t kStripes = 64;
  std::mutex& Stripe(uint32_t customer) const { return stripes_[customer % kStripes]; }

  std::vector<uint64_t> begin_{0};  // per customer (+1) into ev_
  std::vector<Ev> ev_;
  std::vector<std::vector<Ev>> overlay_;  // per customer: feedback since Open, time order (Stripe)
  std::unique_ptr<std::mutex[]> stripes_ = std::make_unique<std::mutex[]>(kStripes);
};

// Counters that feedback bumps under the engine's shared lock while requests read them.
inline void CountUp(uint32_t* counter) { __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
inline uint32_t ReadCount(const uint32_t* counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

// Item lists derived from positives: what the popular recall source and the fallbacks read.
struct PopularLists {
  std::vector<uint32_t> positives;                // per item: positives seen (data + feedback; CountUp)
  std::vector<std::vector<uint32_t>> by_channel;  // [channel] -> items, best first
  std::vector<std::vector<uint32_t>> by_segment;  // [channel * kNumTiers + tier]
  std::vector<uint32_t> any_order;                // every item, most positives first
  // The any-eligible fallback scans the first kAnyEligibleScan items of any_order; the positions
  // among them of service items (what it can find for a customer no marketing may reach).
  static constexpr size_t kAnyEligibleScan = 5000;
  std::vector<uint32_t> service_at;

  // Counts positives of `log` (popular lists over the last `window_days` days of its data),
  // keeping max(200, 4 * popular_quota) items per list.
  void Build(const ActivityLog& log, const Dataset& ds, int window_days, int popular_quota);
  // Re-finds service_at (after Build, and after items were added or changed).
  void IndexService(const Dataset& ds);
  const std::vector<uint32_t>& Segment(ChannelId channel, Tier tier) const {
    return by_segment[static_cast<size_t>(channel) * kNumTiers + static_cast<int>(tier)];
  }
  // An item with fewer than `max_positives` positives counts as new (exploration).
  bool IsNew(uint32_t item, int max_positives) const {
    return ReadCount(&positives[item]) < static_cast<uint32_t>(max_positives);
  }
  // The position in any_order where its new items begin: a binary search (any_order is sorted by
  // positives when built; feedback's counts since may leave a few items out of order, which
  // RecallFresh checks one by one). Scanning back from the end cost a page 0.5 ms at 1M items.
  size_t NewFrom(int max_positives) const;
};

}  // namespace qm::serving
