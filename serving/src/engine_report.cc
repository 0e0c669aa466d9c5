// Engine::Report: an experiment layer's effect report from the event store (the `report` op).
#include <algorithm>
#include <limits>
#include <shared_mutex>

#include "engine_impl.h"

namespace qm::serving {

namespace {

struct Window {
  TimeMs pre_from = kNoTime, from = kNoTime, to = kNoTime;
  bool pre = false;
  // The counts `ts` belongs to, or null.
  double* Counts(TimeMs ts, experiment::CustomerOutcome* c) const {
    if (ts >= from && ts < to) return c->in_window;
    if (pre && ts >= pre_from && ts < from) return c->pre_period;
    return nullptr;
  }
};

}  // namespace

Result<experiment::ExperimentReport> Engine::Report(const std::string& layer, TimeMs from, TimeMs to) {
  const auto& ex = impl_->opt.experiments.config;
  int l = -1;
  std::string names;
  for (size_t k = 0; k < ex.layers.size(); ++k) {
    if (ex.layers[k].name == layer) l = static_cast<int>(k);
    names += (names.empty() ? "" : ", ") + ex.layers[k].name;
  }
  if (l < 0) {
    return Status::InvalidArgument("'experiment': no layer '" + layer + "' in [experiments] (" +
                                   (names.empty() ? "none is configured" : "layers: " + names) + ")");
  }
  if (from != kNoTime && to != kNoTime && from >= to)
    return Status::InvalidArgument("'from_ms' must be before 'to_ms'");
  Window w;
  w.pre = from != kNoTime;
  w.from = from == kNoTime ? std::numeric_limits<TimeMs>::min() : from;
  w.to = to == kNoTime ? std::numeric_limits<TimeMs>::max() : to;
  if (w.pre) w.pre_from = from - ((to == kNoTime ? impl_->Now() : to) - from);
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  const Dataset& ds = impl_->ds;
  std::vector<experiment::CustomerOutcome> outcomes(ds.customers.size());
  experiment::Assignment a;
  for (size_t c = 0; c < ds.customers.size(); ++c) {
    impl_->assigner.Assign(ds.customers[c].id, &a);
    outcomes[c].arm = a.holdout ? experiment::kNoArm : a.arms[l];
  }
  bool pre_seen = false;
  TimeMs first = kNoTime, last = kNoTime;
  QM_RETURN_IF_ERROR(impl_->store->Export([&](const policy::StoredEvent& e) {
    auto c = ds.FindCustomer(e.customer_id);
    auto i = ds.FindItem(e.item_id);
    if (!c || !i) return true;
    first = first == kNoTime ? e.ts : std::min(first, e.ts);
    last = last == kNoTime ? e.ts : std::max(last, e.ts);
    double* counts = w.Counts(e.ts, &outcomes[*c]);
    if (counts) {
      pre_seen |= counts == outcomes[*c].pre_period;
      experiment::CountEvent(e.type, ds.items[*i].service, ds.items[*i].value, counts);
    }
    return true;
  }));
  QM_RETURN_IF_ERROR(impl_->store->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.kind != policy::DecisionKind::kGhost) return true;
    auto c = ds.FindCustomer(d.customer_id);
    if (!c) return true;
    if (double* counts = w.Counts(d.ts, &outcomes[*c])) counts[experiment::kGhosts] += 1;
    return true;
  }));
  experiment::ExperimentReport r = experiment::BuildReport(ex.layers[l], outcomes, w.pre && pre_seen);
  r.from = from != kNoTime ? from : first;
  r.to = to != kNoTime ? to : (last == kNoTime ? kNoTime : last + 1);
  return r;
}

}  // namespace qm::serving
