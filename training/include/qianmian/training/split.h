// Held-out splits of an event log (by a global time cut, or per customer by time) and the
// evaluation targets built from a split. The target definition is the project's held-out
// metric; the synthetic-bank generator computes its oracle with the same definition:
//   a positive is a click, convert or push_open (qm::IsPositive);
//   seen(c)    = items c had a positive on in the training part;
//   targets(c) = distinct items c had a positive on in the held-out part, minus seen(c);
//   customers with at least one target are evaluated; their seen items are excluded from the
//   ranking. Recall@K = |top-K ∩ targets| / |targets| averaged over them (RankingMetrics).
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/training/metrics.h"

namespace qm::training {

// Which events of a log are held out: held_out[e] is 1 for a held-out event, 0 for training.
struct Split {
  std::vector<uint8_t> held_out;  // one per event of the log it was made from
  size_t num_train = 0;
  size_t num_held_out = 0;
};

// Events with ts < holdout_start are training, ts >= holdout_start are held out.
Split TimeSplit(const EventLog& events, TimeMs holdout_start);

// The start of the last `holdout_days` local calendar days of the log in `tz`: the data is taken
// to end at the local midnight after the latest event, and the held-out period is the
// `holdout_days` days before that end. (For a generated bank ending at a local midnight in
// Asia/Shanghai this equals tools::HoldoutStart(end, days).) InvalidArgument when
// holdout_days < 1; NotFound when the log is empty.
Result<TimeMs> HoldoutStartForLastDays(const EventLog& events, int holdout_days,
                                       const TimeZone& tz = TimeZone::Utc());

// Per-customer time split (the usual MovieLens protocol). Each customer's events are ordered by
// time, ties by position in the log; the last round(fraction x positives) of the customer's
// positive events are held out, together with every later event of that customer (so nothing
// in training comes after a held-out positive). Customers with too few positives to hold any
// out are entirely training. InvalidArgument unless 0 <= fraction <= 1.
Result<Split> PerCustomerTimeSplit(const EventLog& events, double fraction = 0.2);

// Customer split (e.g. UCI Bank Marketing: generalisation to unseen customers): a seeded random
// `fraction` of the customers that have events is held out with all their events.
// InvalidArgument unless 0 < fraction < 1.
Result<Split> CustomerHoldoutSplit(const EventLog& events, double fraction, uint64_t seed);

// The evaluated customers of a split with their targets and seen items (see the file comment).
struct EvalTargets {
  std::vector<uint32_t> customers;  // customers with >= 1 target, ascending
  IndexLists targets;               // targets[i]: customers[i]'s targets, sorted, distinct
  IndexLists seen;                  // seen[i]: items with a training positive, sorted, distinct

  size_t size() const { return customers.size(); }
  // Total number of targets over all customers.
  size_t num_targets() const { return targets.ids.size(); }
};

// Builds the targets of `split` (REQUIRES: made from `events`).
EvalTargets BuildEvalTargets(const EventLog& events, const Split& split);

}  // namespace qm::training
