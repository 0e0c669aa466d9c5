#include "qianmian/training/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

namespace qm::training {

Split TimeSplit(const EventLog& events, TimeMs holdout_start) {
  Split split;
  split.held_out.resize(events.size());
  for (size_t e = 0; e < events.size(); ++e) {
    const bool held = events.ts[e] >= holdout_start;
    split.held_out[e] = held ? 1 : 0;
    if (held) ++split.num_held_out;
  }
  split.num_train = events.size() - split.num_held_out;
  return split;
}

Result<TimeMs> HoldoutStartForLastDays(const EventLog& events, int holdout_days, const TimeZone& tz) {
  if (holdout_days < 1) {
    return Status::InvalidArgument("holdout_days must be >= 1, got " + std::to_string(holdout_days));
  }
  if (events.size() == 0) return Status::NotFound("no events to choose a holdout period from");
  const TimeMs max_ts = *std::max_element(events.ts.begin(), events.ts.end());
  // A local day lasts 23..25 hours, so 26 h after the start of max_ts's day is in the next day.
  const TimeMs end = tz.StartOfDay(tz.StartOfDay(max_ts) + 26 * kMsPerHour);
  return metrics::HoldoutStart(end, holdout_days, tz);
}

Result<Split> PerCustomerTimeSplit(const EventLog& events, double fraction) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    return Status::InvalidArgument("holdout fraction must be in [0, 1], got " + std::to_string(fraction));
  }
  const size_t n = events.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  // Stable: equal (customer, ts) keep log order, which breaks time ties.
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (events.customer[a] != events.customer[b]) return events.customer[a] < events.customer[b];
    return events.ts[a] < events.ts[b];
  });
  Split split;
  split.held_out.assign(n, 0);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    size_t positives = 0;
    while (j < n && events.customer[order[j]] == events.customer[order[i]]) {
      if (IsPositive(events.type[order[j]])) ++positives;
      ++j;
    }
    const size_t hold = static_cast<size_t>(std::floor(fraction * static_cast<double>(positives) + 0.5));
    if (hold > 0) {
      // The first held-out positive is positive number (positives - hold), 0-based.
      const size_t keep = positives - std::min(hold, positives);
      size_t seen_pos = 0;
      size_t cut = i;
      for (; cut < j; ++cut) {
        if (!IsPositive(events.type[order[cut]])) continue;
        if (seen_pos == keep) break;
        ++seen_pos;
      }
      for (size_t p = cut; p < j; ++p) {
        split.held_out[order[p]] = 1;
        ++split.num_held_out;
      }
    }
    i = j;
  }
  split.num_train = n - split.num_held_out;
  return split;
}

metrics::EvalTargets BuildEvalTargets(const EventLog& events, const Split& split) {
  return metrics::BuildEvalTargets(events, split.held_out);
}

Result<Split> CustomerHoldoutSplit(const EventLog& events, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1)) {
    return Status::InvalidArgument("customer holdout fraction must be in (0, 1)");
  }
  uint32_t max_customer = 0;
  for (uint32_t c : events.customer) max_customer = std::max(max_customer, c);
  std::vector<uint8_t> has(events.size() ? max_customer + 1 : 0, 0);
  for (uint32_t c : events.customer) has[c] = 1;
  std::vector<uint32_t> customers;
  for (uint32_t c = 0; c < has.size(); ++c) {
    if (has[c]) customers.push_back(c);
  }
  std::mt19937_64 rng(seed);
  std::shuffle(customers.begin(), customers.end(), rng);
  std::vector<uint8_t> out(has.size(), 0);
  const size_t n = static_cast<size_t>(std::llround(fraction * customers.size()));
  for (size_t i = 0; i < n && i < customers.size(); ++i) out[customers[i]] = 1;
  Split split;
  split.held_out.resize(events.size());
  for (size_t e = 0; e < events.size(); ++e) {
    split.held_out[e] = out[events.customer[e]];
    (split.held_out[e] ? split.num_held_out : split.num_train) += 1;
  }
  return split;
}

}  // namespace qm::training
