// Engine::Report: an experiment layer's effect report from the event store (the `report` op).
#include <algorithm>
#include <limits>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine_impl.h"

namespace qm::serving {

std::vector<std::string> Engine::ExperimentLayers() const {
  std::shared_lock<WriterFirstMutex> lock(impl_->mu);
  std::vector<std::string> names;
  for (const experiment::LayerConfig& l : impl_->exps.def.config.layers) names.push_back(l.name);
  return names;
}

Result<experiment::ExperimentReport> Engine::Report(const std::string& layer, TimeMs from, TimeMs to) {
  if (from != kNoTime && to != kNoTime && from >= to)
    return Status::InvalidArgument("'from_ms' must be before 'to_ms'");
  experiment::ReportWindow w;
  w.pre = from != kNoTime;
  w.from = from == kNoTime ? std::numeric_limits<TimeMs>::min() : from;
  w.to = to == kNoTime ? std::numeric_limits<TimeMs>::max() : to;
  if (w.pre) w.pre_from = from - ((to == kNoTime ? impl_->Now() : to) - from);
  // What the scan needs of the data, copied under the lock: the store scan that follows is long,
  // and holding the (writer-first) lock through it would stall every request behind a reload.
  std::vector<experiment::CustomerOutcome> outcomes;
  std::unordered_map<std::string, uint32_t> customer;
  std::unordered_map<std::string, std::pair<bool, double>> item;  // service, value
  experiment::LayerConfig layer_config;                           // the definition served now (a reload may replace it)
  {
    std::shared_lock<WriterFirstMutex> lock(impl_->mu);
    const ExperimentRuntime& exps = impl_->exps;
    QM_ASSIGN_OR_RETURN(const int l, experiment::FindLayer(exps.def.config, layer, "'experiment'"));
    layer_config = exps.def.config.layers[l];
    const Dataset& ds = impl_->ds;
    outcomes = experiment::AssignedOutcomes(exps.assigner, l, ds.customers.size(),
                                            [&](size_t c) -> const std::string& { return ds.customers[c].id; });
    customer.reserve(ds.customers.size());
    for (size_t c = 0; c < ds.customers.size(); ++c) customer.emplace(ds.customers[c].id, static_cast<uint32_t>(c));
    for (const Item& it : ds.items) item.emplace(it.id, std::make_pair(it.service, static_cast<double>(it.value)));
  }
  bool pre_seen = false;
  TimeMs first = kNoTime, last = kNoTime;
  QM_RETURN_IF_ERROR(impl_->store->Export([&](const policy::StoredEvent& e) {
    auto c = customer.find(e.customer_id);
    auto i = item.find(e.item_id);
    if (c == customer.end() || i == item.end()) return true;
    first = first == kNoTime ? e.ts : std::min(first, e.ts);
    last = last == kNoTime ? e.ts : std::max(last, e.ts);
    experiment::CustomerOutcome& o = outcomes[c->second];
    if (double* counts = w.Counts(e.ts, &o)) {
      pre_seen |= counts == o.pre_period;
      experiment::CountEvent(e.type, i->second.first, i->second.second, counts);
    }
    return true;
  }));
  QM_RETURN_IF_ERROR(impl_->store->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.kind != policy::DecisionKind::kGhost) return true;
    auto c = customer.find(d.customer_id);
    if (c == customer.end()) return true;
    if (double* counts = w.Counts(d.ts, &outcomes[c->second])) counts[experiment::kGhosts] += 1;
    return true;
  }));
  experiment::ExperimentReport r = experiment::BuildReport(layer_config, outcomes, w.pre && pre_seen);
  r.from = from != kNoTime ? from : first;
  r.to = to != kNoTime ? to : (last == kNoTime ? kNoTime : last + 1);
  return r;
}

}  // namespace qm::serving
