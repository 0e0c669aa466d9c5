// Module campaign (private): a campaign's content as the engine's PushRequest::Campaign.
#pragma once

#include <memory>

#include "qianmian/campaign/campaign.h"
#include "qianmian/serving/engine.h"

namespace qm::campaign {

// The campaign's content as an item mask (null = any item) and, when it allows at most 2,000
// items, their list; its objective and holdout share.
std::shared_ptr<serving::PushRequest::Campaign> ContentOf(const Definition& d, const Dataset& ds);

}  // namespace qm::campaign
