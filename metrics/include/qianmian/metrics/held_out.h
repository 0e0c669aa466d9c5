// qianmian::metrics: offline metrics and the one definition of the project's held-out metric,
// shared by training's evaluation and the synthetic bank's oracle. Depends on core only.
//
// held_out.h: the held-out metric's period and targets (Recall@K itself is in metrics.h):
//   a positive is a click, convert or push_open (qm::IsPositive);
//   the held-out period is the last HoldoutDays(days) days of the data (HoldoutStart); training
//   may hold out otherwise (per customer, whole customers), the targets follow its split;
//   seen(c)    = the items customer c had a positive on in the training part;
//   targets(c) = the distinct items c had a positive on in the held-out part, minus seen(c);
//   the customers with at least one target are evaluated; their seen items are excluded from
//   the ranking; Recall@K = |top-K ∩ targets| / |targets| (RecallAtK), averaged (unweighted)
//   over them.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/metrics/metrics.h"

namespace qm::metrics {

// Days held out of a period of `period_days` days: the last fifth, at least one.
int64_t HoldoutDays(int64_t period_days);

// The start of a held-out period of `holdout_days` local days ending at `end` in `tz`: `end`
// moved back that many local calendar days (the local midnight starting end's day is stepped back
// day by day, then end's time since that midnight is added again). In a zone without daylight
// saving (UTC, today's Asia/Shanghai) this is end - holdout_days x 24 h; for an `end` at a local
// midnight it is the local midnight `holdout_days` days earlier. REQUIRES: holdout_days >= 0.
TimeMs HoldoutStart(TimeMs end, int64_t holdout_days, const TimeZone& tz = TimeZone::Utc());

// One positive event of a customer on an item, before the held-out period or in it.
struct PositiveEvent {
  uint32_t customer = 0;
  uint32_t item = 0;
  bool held_out = false;
};

// The evaluated customers with their targets and seen items (see the file comment).
struct EvalTargets {
  std::vector<uint32_t> customers;  // customers with >= 1 target, ascending
  IndexLists targets;               // targets[i]: customers[i]'s targets, sorted, distinct
  IndexLists seen;                  // seen[i]: items with a positive before, sorted, distinct

  size_t size() const { return customers.size(); }
  // Total number of targets over all customers.
  size_t num_targets() const { return targets.ids.size(); }
};

// The targets of a set of positives (any order, duplicates allowed).
EvalTargets BuildEvalTargets(std::vector<PositiveEvent> positives);

// The targets of an event log whose events are held out where held_out[e] is non-zero (its
// positives; other events are ignored). REQUIRES: held_out.size() == events.size().
EvalTargets BuildEvalTargets(const EventLog& events, const std::vector<uint8_t>& held_out);

}  // namespace qm::metrics
