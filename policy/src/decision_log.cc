#include "qianmian/policy/decision_log.h"

namespace qm::policy {

namespace {

constexpr const char* kKindNames[kNumDecisionKinds] = {"served", "push_send", "ghost"};

}  // namespace

const char* DecisionKindName(DecisionKind k) { return kKindNames[static_cast<int>(k)]; }

std::optional<DecisionKind> ParseDecisionKind(std::string_view name) {
  for (int k = 0; k < kNumDecisionKinds; ++k) {
    if (name == kKindNames[k]) return static_cast<DecisionKind>(k);
  }
  return std::nullopt;
}

bool DecisionRecord::operator==(const DecisionRecord& o) const {
  return ts == o.ts && request_id == o.request_id && customer_id == o.customer_id && channel == o.channel &&
         item_id == o.item_id && position == o.position && score == o.score && p_click == o.p_click &&
         p_convert == o.p_convert && model_version == o.model_version && arms == o.arms && reasons == o.reasons &&
         kind == o.kind;
}

// EncodeDecision / DecodeDecision live in contact_state.cc with the other binary encodings.

}  // namespace qm::policy
