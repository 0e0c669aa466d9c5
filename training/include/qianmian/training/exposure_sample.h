// Module training: offline training and evaluation runs. May depend on: core, metrics, features,
// recall, rank, policy; artifacts, Eigen (private).
// The logged exposures the exposure model learns from. The model estimates where the bank's
// past (logging) policy showed items; evaluation uses it to tell which held-out positives the
// old policy would have made possible. An item valid for only part of the training period
// (a campaign, an article launched late) was shown on fewer days, not less often per day, so
// by default exposures are drawn per valid day of their item, and evaluation counts the days
// each item is valid in the held-out period (the schedule in items.csv is known in advance).
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/recall/two_tower.h"

namespace qm::training {

// Share of [from, to) in which `item` is valid (its start/end), counted as at least one day
// (an item valid for a moment still had its chance) and at most the whole period. 1 when the
// period is empty.
double ValidShare(const Item& item, TimeMs from, TimeMs to);

struct ExposureSample {
  std::vector<recall::PositiveExample> examples;
  bool per_valid_day = false;  // drawn with weights (false: every item was valid throughout,
                               // or per_valid_day was off: a uniform sample)
};

// Up to `max_examples` of `exposures` for the exposure model. per_valid_day: drawn with
// replacement, each with weight 1 / ValidShare(its item, the exposures' first and last time),
// so that every item contributes its exposures per valid day; otherwise (or when every item
// was valid throughout) a uniform sample without replacement. Deterministic for `seed`.
ExposureSample SampleExposures(const std::vector<Item>& items, std::vector<recall::PositiveExample> exposures,
                               int64_t max_examples, bool per_valid_day, uint64_t seed);

}  // namespace qm::training
