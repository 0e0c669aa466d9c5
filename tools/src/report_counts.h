// Counting an experiment's outcomes from the event store, shared by `report` and `simulate`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/experiment/report.h"
#include "qianmian/policy/event_store.h"

namespace qm::tools {

// Adds each ghost decision of `store` (a control customer's would-be send) whose time falls in
// `w` to the counts of its customer, the index `find` gives (nullopt: not counted).
[[nodiscard]] Status AddGhosts(policy::EventStore* store,
                               const std::function<std::optional<uint32_t>(const std::string&)>& find,
                               const experiment::ReportWindow& w, std::vector<experiment::CustomerOutcome>* outcomes);

}  // namespace qm::tools
