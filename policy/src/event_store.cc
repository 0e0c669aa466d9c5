#include "qianmian/policy/event_store.h"

#include "store_backends.h"

namespace qm::policy {

namespace {

// The event a taken candidate becomes in the log (sends that count at once).
StoredEvent TakenEvent(const ContactPlan& plan, const PlanCandidate& c) {
  StoredEvent e;
  e.ts = c.ts;
  e.customer_id = plan.customer_id;
  e.item_id = c.item;
  e.type = plan.contact_type;
  e.channel = plan.channel;
  e.request_id = plan.request_id;
  e.campaign = c.campaign;
  e.category = c.category;
  e.service = c.service;
  return e;
}

}  // namespace

PlanOutcome RunReserving(const ContactPlan& plan, CustomerState* state, bool* changed,
                         const std::function<void(const StoredEvent&)>& log) {
  PlanOutcome out = RunPlan(plan, state, changed);
  if (!*changed) return out;
  if (plan.expires == 0 && !out.replayed) {
    for (size_t i = 0; i < plan.candidates.size(); ++i) {
      if (out.taken[i]) log(TakenEvent(plan, plan.candidates[i]));
    }
  }
  CompactState(plan.now, plan.options, state);
  return out;
}

Status CheckRecordName(const std::string& collection, const std::string* id) {
  auto bad = [](const std::string& s) {
    return s.empty() || s.find_first_of(std::string("{}\0", 3)) != std::string::npos;
  };
  if (bad(collection)) return Status::InvalidArgument("bad record collection name '" + collection + "'");
  if (id && bad(*id)) {
    return Status::InvalidArgument("bad record id '" + *id + "': it must be non-empty, without '{', '}' or NUL");
  }
  return Status::Ok();
}

Result<std::vector<PlanOutcome>> EventStore::ApplyMany(const std::vector<ContactPlan>& plans) {
  std::vector<PlanOutcome> out;
  out.reserve(plans.size());
  for (const ContactPlan& plan : plans) {
    QM_ASSIGN_OR_RETURN(PlanOutcome o, Apply(plan));
    out.push_back(std::move(o));
  }
  return out;
}

Status EventStore::Health() { return State("__qm_health_probe__").status(); }

Result<std::unique_ptr<EventStore>> EventStore::Open(const StoreConfig& config) {
  if (config.backend == "embedded") return OpenRocksStore(config);
  if (config.backend == "redis") return OpenRedisStore(config);
  return Status::InvalidArgument("unknown store backend '" + config.backend + "'");
}

}  // namespace qm::policy
