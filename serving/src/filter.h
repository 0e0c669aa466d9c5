// Stage 3 of the request path, filter: the contact policy (SPEC §6) over the recalled candidates.
// A home page checks every rule against the customer's contact state (nothing counted yet: the
// reserve stage counts); a push run applies the stateless rules here and the stateful ones when
// it reserves the batch. Content the customer clicked within the policy's horizon is blocked as
// `clicked` either way. Private to serving.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "candidates.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy.h"

namespace qm::serving {

// Moves the candidates set[from, size) that no rule blocks into *allowed (in order; their reasons
// are closed) and counts every rule that blocks a candidate in *dropped. `clicked` is sorted.
Status FilterCandidates(const policy::Policy& policy, policy::EventStore* store, const Dataset& ds,
                        const Customer& customer, const std::vector<uint32_t>& clicked, ChannelId channel, TimeMs now,
                        size_t from, CandidateSet* set, std::vector<Candidate>* allowed,
                        std::map<std::string, int64_t>* dropped);

// The stateless rules for one candidate, then `clicked` (sorted) when nothing else blocks it;
// *blocked is cleared first. Used by push runs before ranking.
void StaticBlocked(const policy::Policy& policy, const Dataset& ds, const Customer& customer,
                   const std::vector<uint32_t>& clicked, uint32_t item, ChannelId channel, TimeMs now,
                   std::vector<std::string>* blocked);

}  // namespace qm::serving
