// Private: the event-store backends and helpers they share.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/policy/event_store.h"

namespace qm::policy {

Result<std::unique_ptr<EventStore>> OpenRocksStore(const StoreConfig& config);
Result<std::unique_ptr<EventStore>> OpenRedisStore(const StoreConfig& config);

// The Redis Cluster slot of `key`: CRC16 of its hash tag (the text between the first '{' and the
// next '}', when not empty) or of the whole key, modulo 16384.
int RedisKeySlot(std::string_view key);

// InvalidArgument unless `collection` and `id` (when not null) name a governed record: non-empty,
// without '\0', '{' or '}' (so a Redis key's hash tag is the record's own).
Status CheckRecordName(const std::string& collection, const std::string* id);

// Whether `id` can be a customer's key in a store: non-empty, without NUL.
inline bool ValidCustomer(const std::string& id) { return !id.empty() && id.find('\0') == std::string::npos; }

// A seeding's order (EventStore::Seeder): per part, each Add one valid customer's events,
// customers in ascending id order, each once; across parts (Finish), ascending too.
class SeedOrder {
 public:
  explicit SeedOrder(int parts) : first_(static_cast<size_t>(std::max(parts, 0))), last_(first_.size()) {}
  int parts() const { return static_cast<int>(first_.size()); }
  // Checks one Add; the parts may be checked concurrently, each by one thread.
  Status Check(int part, const std::vector<StoredEvent>& events);
  // Checks that every part's ids are above the previous non-empty part's.
  Status CheckParts() const;

 private:
  std::vector<std::string> first_, last_;  // per part; "" = nothing added yet (ids are non-empty)
};

// Runs a reserving plan on a customer's state, as both backends do: RunPlan, then, when the
// state changed, every send it took (a plan without expiry that was not a replay) goes to `log`
// as an event and the state is compacted. *changed is RunPlan's.
PlanOutcome RunReserving(const ContactPlan& plan, CustomerState* state, bool* changed,
                         const std::function<void(const StoredEvent&)>& log);

}  // namespace qm::policy
