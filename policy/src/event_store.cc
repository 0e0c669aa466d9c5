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

// The default seeding: Append in batches of about 20,000 events, a batch per part.
class AppendSeeder final : public EventStore::Seeder {
 public:
  AppendSeeder(EventStore* store, const StateOptions& options, int parts)
      : store_(store), options_(options), order_(parts), batches_(static_cast<size_t>(parts)) {}

  Status Add(int part, const std::vector<StoredEvent>& events) override {
    QM_RETURN_IF_ERROR(order_.Check(part, events));
    std::vector<StoredEvent>& batch = batches_[static_cast<size_t>(part)];
    batch.insert(batch.end(), events.begin(), events.end());
    return batch.size() < kBatch ? Status::Ok() : Flush(&batch);
  }
  Status Finish() override {
    QM_RETURN_IF_ERROR(order_.CheckParts());
    for (auto& batch : batches_) QM_RETURN_IF_ERROR(Flush(&batch));
    return Status::Ok();
  }

 private:
  static constexpr size_t kBatch = 20000;
  Status Flush(std::vector<StoredEvent>* batch) {
    if (batch->empty()) return Status::Ok();
    Status st = store_->Append(*batch, options_);
    batch->clear();
    return st;
  }

  EventStore* store_;
  StateOptions options_;
  SeedOrder order_;
  std::vector<std::vector<StoredEvent>> batches_;
};

}  // namespace

Status SeedOrder::Check(int part, const std::vector<StoredEvent>& events) {
  if (part < 0 || part >= parts()) {
    return Status::InvalidArgument("seeding the event store: part " + std::to_string(part) + " of " +
                                   std::to_string(parts()));
  }
  if (events.empty()) return Status::Ok();
  const std::string& customer = events[0].customer_id;
  if (!ValidCustomer(customer)) {
    return Status::InvalidArgument("seeding the event store: an event without a valid customer id");
  }
  for (const StoredEvent& e : events) {
    if (e.customer_id != customer) {
      return Status::InvalidArgument("seeding the event store: one customer's events at a time, not '" + customer +
                                     "' and '" + e.customer_id + "'");
    }
  }
  std::string& last = last_[static_cast<size_t>(part)];
  if (!last.empty() && customer <= last) {
    return Status::InvalidArgument("seeding the event store: customers in ascending id order, each once: '" + customer +
                                   "' after '" + last + "'");
  }
  if (last.empty()) first_[static_cast<size_t>(part)] = customer;
  last = customer;
  return Status::Ok();
}

Status SeedOrder::CheckParts() const {
  const std::string* previous = nullptr;
  for (size_t p = 0; p < first_.size(); ++p) {
    if (first_[p].empty()) continue;
    if (previous && first_[p] <= *previous) {
      return Status::InvalidArgument("seeding the event store: part " + std::to_string(p) + " starts at '" + first_[p] +
                                     "', not above the previous part's last customer '" + *previous + "'");
    }
    previous = &last_[p];
  }
  return Status::Ok();
}

Result<std::unique_ptr<EventStore::Seeder>> EventStore::Seed(const StateOptions& options, int parts) {
  if (parts < 1) return Status::InvalidArgument("seeding the event store: at least one part");
  return std::unique_ptr<Seeder>(std::make_unique<AppendSeeder>(this, options, parts));
}

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
