#include "report_counts.h"

#include "qianmian/policy/decision_log.h"

namespace qm::tools {

Status AddGhosts(policy::EventStore* store, const std::function<std::optional<uint32_t>(const std::string&)>& find,
                 const experiment::ReportWindow& w, std::vector<experiment::CustomerOutcome>* outcomes) {
  return store->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.kind != policy::DecisionKind::kGhost) return true;
    const std::optional<uint32_t> c = find(d.customer_id);
    if (!c) return true;
    if (double* counts = w.Counts(d.ts, &(*outcomes)[*c])) counts[experiment::kGhosts] += 1;
    return true;
  });
}

}  // namespace qm::tools
