#include "qianmian/metrics/held_out.h"

#include <algorithm>

namespace qm::metrics {

int64_t HoldoutDays(int64_t period_days) { return std::max<int64_t>(1, period_days / 5); }

TimeMs HoldoutStart(TimeMs end, int64_t holdout_days, const TimeZone& tz) {
  const TimeMs midnight = tz.StartOfDay(end);
  TimeMs day = midnight;
  for (int64_t d = 0; d < holdout_days; ++d) day = tz.StartOfDay(day - 1);
  return day + (end - midnight);
}

EvalTargets BuildEvalTargets(std::vector<PositiveEvent> positives) {
  // By customer, then item, a positive before the held-out period ahead of a held-out one.
  std::sort(positives.begin(), positives.end(), [](const PositiveEvent& a, const PositiveEvent& b) {
    if (a.customer != b.customer) return a.customer < b.customer;
    if (a.item != b.item) return a.item < b.item;
    return a.held_out < b.held_out;
  });
  EvalTargets out;
  std::vector<uint32_t> seen, targets;
  size_t k = 0;
  while (k < positives.size()) {
    const uint32_t customer = positives[k].customer;
    seen.clear();
    targets.clear();
    while (k < positives.size() && positives[k].customer == customer) {
      const uint32_t item = positives[k].item;
      const bool before = !positives[k].held_out;  // sorted: a positive before comes first
      while (k < positives.size() && positives[k].customer == customer && positives[k].item == item) ++k;
      (before ? seen : targets).push_back(item);
    }
    if (targets.empty()) continue;
    out.customers.push_back(customer);
    out.targets.Append(targets);
    out.seen.Append(seen);
  }
  return out;
}

EvalTargets BuildEvalTargets(const EventLog& events, const std::vector<uint8_t>& held_out) {
  QM_CHECK(held_out.size() == events.size());
  std::vector<PositiveEvent> positives;
  for (size_t e = 0; e < events.size(); ++e) {
    if (IsPositive(events.type[e])) positives.push_back({events.customer[e], events.item[e], held_out[e] != 0});
  }
  return BuildEvalTargets(std::move(positives));
}

}  // namespace qm::metrics
