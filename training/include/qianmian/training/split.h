// Module training: offline training and evaluation runs. May depend on: core, metrics, features,
// recall, rank, policy; artifacts, Eigen (private).
// Held-out splits of an event log (by a global time cut, or per customer by time) and the
// evaluation targets built from a split: the held-out metric's targets as
// qianmian/metrics/held_out.h defines them (the synthetic bank's oracle uses the same
// definition). All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/metrics/held_out.h"

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
// `holdout_days` days before that end (metrics::HoldoutStart). (For a generated bank ending at a
// local midnight in Asia/Shanghai this is the bank's own holdout start.) InvalidArgument when
// holdout_days < 1; NotFound when the log is empty.
Result<TimeMs> HoldoutStartForLastDays(const EventLog& events, int holdout_days, const TimeZone& tz = TimeZone::Utc());

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

// The held-out metric's targets of `split` (REQUIRES: made from `events`): its held-out events
// are the held-out period (metrics::BuildEvalTargets).
metrics::EvalTargets BuildEvalTargets(const EventLog& events, const Split& split);

}  // namespace qm::training
