#include "filter.h"

#include <algorithm>

namespace qm::serving {

Status FilterCandidates(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                        const Customer& customer, const std::vector<uint32_t>& clicked, ChannelId channel, TimeMs now,
                        size_t from, CandidateSet* set, std::vector<Candidate>* allowed,
                        std::map<std::string, int64_t>* dropped) {
  std::vector<size_t> pass;
  std::vector<std::string> blocked;
  for (size_t k = from; k < set->size(); ++k) {
    const uint32_t item = (*set)[k].item;
    if (!std::binary_search(clicked.begin(), clicked.end(), item)) {
      pass.push_back(k);
      continue;
    }
    blocked.clear();  // counted with every other rule that blocks it, as Check would
    policy.StaticCheck(customer, policy::MakeCandidate(ds, item), channel, now, &blocked);
    blocked.push_back(policy::blocked::kClicked);
    for (const auto& b : blocked) ++(*dropped)[b];
  }
  if (pass.empty()) return Status::Ok();
  std::vector<policy::Candidate> pc;
  pc.reserve(pass.size());
  for (size_t k : pass) pc.push_back(policy::MakeCandidate(ds, (*set)[k].item));
  QM_ASSIGN_OR_RETURN(auto decisions, policy.Check(store, customer, pc, channel, now));
  for (size_t j = 0; j < pass.size(); ++j) {
    // Reasons a later fallback finds for a candidate already allowed are not kept.
    if (decisions[j].blocked_by.empty()) {
      allowed->push_back((*set)[pass[j]]);
      set->Close(pass[j]);
    }
    for (const auto& b : decisions[j].blocked_by) ++(*dropped)[b];
  }
  return Status::Ok();
}

void StaticBlocked(const policy::Policy& policy, const Dataset& ds, const Customer& customer,
                   const std::vector<uint32_t>& clicked, uint32_t item, ChannelId channel, TimeMs now,
                   std::vector<std::string>* blocked) {
  blocked->clear();
  policy.StaticCheck(customer, policy::MakeCandidate(ds, item), channel, now, blocked);
  if (blocked->empty() && std::binary_search(clicked.begin(), clicked.end(), item)) {
    blocked->push_back(policy::blocked::kClicked);
  }
}

}  // namespace qm::serving
