// Stage 7 of the request path, record: the decision log (issue 17, SPEC §7). What a served page
// showed, what a push run sent, and what it would have sent to a control-arm customer (a ghost),
// each item one policy::DecisionRecord with the reply's reasons, the ranker's probabilities, the
// model version and the customer's arms. Private to serving.
#pragma once

#include <string>
#include <vector>

#include "candidates.h"
#include "qianmian/core/types.h"
#include "qianmian/policy/decision_log.h"
#include "qianmian/serving/engine.h"

namespace qm::serving {

// Who and when a group of decisions is for (a page, or one customer's sends of a push run).
struct DecisionContext {
  policy::DecisionKind kind = policy::DecisionKind::kServed;
  const std::string* request_id = nullptr;  // the request id or the push run id
  const std::string* customer_id = nullptr;
  const std::string* channel = nullptr;
  const std::string* model_version = nullptr;
  const std::vector<std::string>* arms = nullptr;
};

// The records of `items` (served or sent order, their position in it) chosen from `chosen`
// (items[j] is chosen[j], for its score and probabilities); ts[j] the item's time (a page: the
// request's; a send: when it goes out). Appended to *out.
void AppendDecisions(const DecisionContext& ctx, const std::vector<ResponseItem>& items,
                     const std::vector<const Candidate*>& chosen, const std::vector<TimeMs>& ts,
                     std::vector<policy::DecisionRecord>* out);

}  // namespace qm::serving
