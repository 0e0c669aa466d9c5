// Module campaign (private): a campaign's content as the engine's PushRequest::Campaign.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/serving/engine.h"

namespace qm::campaign {

// The campaign's content as an item mask (null = any item) and, when it allows at most 2,000
// items, their list; its objective and holdout share.
std::shared_ptr<serving::PushRequest::Campaign> ContentOf(const Definition& d, const Dataset& ds);

// Appends the rows of send list `path` (its header dropped) to *rows: the parts of an occurrence
// run in rounds (competition, channel choice).
Status AppendRows(const std::string& path, std::vector<std::string>* rows);

}  // namespace qm::campaign
