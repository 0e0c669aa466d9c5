#include "qianmian/training/exposure_sample.h"

#include <algorithm>
#include <random>

namespace qm::training {

double ValidShare(const Item& item, TimeMs from, TimeMs to) {
  if (to <= from) return 1.0;
  const TimeMs lo = std::max(from, item.start == kNoTime ? from : item.start);
  const TimeMs hi = std::min(to, item.end == kNoTime ? to : item.end);
  return std::clamp(static_cast<double>(std::max(hi - lo, kMsPerDay)) / static_cast<double>(to - from), 0.0, 1.0);
}

ExposureSample SampleExposures(const std::vector<Item>& items, std::vector<recall::PositiveExample> exposures,
                               int64_t max_examples, bool per_valid_day, uint64_t seed) {
  ExposureSample out;
  const size_t n = std::min<size_t>(exposures.size(), static_cast<size_t>(std::max<int64_t>(max_examples, 0)));
  std::vector<double> weight;
  if (per_valid_day && !exposures.empty()) {
    TimeMs from = exposures.front().ts, to = from;
    for (const auto& x : exposures) {
      from = std::min(from, x.ts);
      to = std::max(to, x.ts + 1);
    }
    std::vector<double> per_item(items.size(), 1.0);
    bool any = false;
    for (size_t i = 0; i < items.size(); ++i) {
      per_item[i] = 1.0 / ValidShare(items[i], from, to);
      any |= per_item[i] != 1.0;
    }
    if (any) {
      weight.resize(exposures.size());
      for (size_t k = 0; k < exposures.size(); ++k) weight[k] = per_item[exposures[k].item];
    }
  }
  std::mt19937_64 rng(seed);
  if (!weight.empty()) {
    std::discrete_distribution<size_t> pick(weight.begin(), weight.end());
    out.examples.resize(n);
    for (auto& x : out.examples) x = exposures[pick(rng)];
    out.per_valid_day = true;
    return out;
  }
  if (exposures.size() > n) {
    std::shuffle(exposures.begin(), exposures.end(), rng);
    exposures.resize(n);
  }
  out.examples = std::move(exposures);
  return out;
}

}  // namespace qm::training
