#include "qianmian/policy/decision_log.h"

#include <nlohmann/json.hpp>

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

// Short keys: a record is written for every served item.
std::string EncodeDecision(const DecisionRecord& d) {
  nlohmann::json j = {{"t", d.ts},
                      {"r", d.request_id},
                      {"c", d.customer_id},
                      {"ch", d.channel},
                      {"i", d.item_id},
                      {"p", d.position},
                      {"s", d.score},
                      {"pc", d.p_click},
                      {"pv", d.p_convert},
                      {"v", d.model_version},
                      {"a", d.arms},
                      {"why", d.reasons},
                      {"k", DecisionKindName(d.kind)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool DecodeDecision(std::string_view data, DecisionRecord* d) {
  nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    d->ts = j.at("t").get<TimeMs>();
    d->request_id = j.at("r").get<std::string>();
    d->customer_id = j.at("c").get<std::string>();
    d->channel = j.at("ch").get<std::string>();
    d->item_id = j.at("i").get<std::string>();
    d->position = j.at("p").get<int>();
    d->score = j.at("s").get<double>();
    d->p_click = j.at("pc").get<float>();
    d->p_convert = j.at("pv").get<float>();
    d->model_version = j.at("v").get<std::string>();
    d->arms = j.at("a").get<std::vector<std::string>>();
    d->reasons = j.at("why").get<std::vector<std::string>>();
    auto kind = ParseDecisionKind(j.at("k").get<std::string>());
    if (!kind) return false;
    d->kind = *kind;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  return true;
}

}  // namespace qm::policy
