// Private: the event-store backends and helpers they share.
#pragma once

#include <functional>
#include <memory>

#include "qianmian/policy/event_store.h"

namespace qm::policy {

Result<std::unique_ptr<EventStore>> OpenRocksStore(const StoreConfig& config);
Result<std::unique_ptr<EventStore>> OpenRedisStore(const StoreConfig& config);

// Runs a reserving plan on a customer's state, as both backends do: RunPlan, then, when the
// state changed, every send it took (a plan without expiry that was not a replay) goes to `log`
// as an event and the state is compacted. *changed is RunPlan's.
PlanOutcome RunReserving(const ContactPlan& plan, CustomerState* state, bool* changed,
                         const std::function<void(const StoredEvent&)>& log);

}  // namespace qm::policy
