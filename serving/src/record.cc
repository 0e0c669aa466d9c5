#include "record.h"

#include "qianmian/core/status.h"

namespace qm::serving {

void AppendDecisions(const DecisionContext& ctx, const std::vector<ResponseItem>& items,
                     const std::vector<const Candidate*>& chosen, const std::vector<TimeMs>& ts,
                     std::vector<policy::DecisionRecord>* out) {
  QM_CHECK(chosen.size() == items.size() && ts.size() == items.size());
  for (size_t j = 0; j < items.size(); ++j) {
    policy::DecisionRecord& d = out->emplace_back();
    d.ts = ts[j];
    d.request_id = *ctx.request_id;
    d.customer_id = *ctx.customer_id;
    d.channel = *ctx.channel;
    d.item_id = items[j].item_id;
    d.position = static_cast<int>(j);
    d.score = items[j].score;
    if (chosen[j]) {
      d.p_click = chosen[j]->pc;
      d.p_convert = chosen[j]->pv;
    }
    d.model_version = *ctx.model_version;
    d.arms = *ctx.arms;
    d.reasons = items[j].reasons;
    d.kind = ctx.kind;
  }
}

}  // namespace qm::serving
