// Private: the event-store backends and helpers they share.
#pragma once

#include <memory>

#include "qianmian/policy/event_store.h"

namespace qm::policy {

Result<std::unique_ptr<EventStore>> OpenRocksStore(const StoreConfig& config);
Result<std::unique_ptr<EventStore>> OpenRedisStore(const StoreConfig& config);

// The event a taken candidate becomes in the log (sends that count at once).
StoredEvent TakenEvent(const ContactPlan& plan, const PlanCandidate& c);

}  // namespace qm::policy
