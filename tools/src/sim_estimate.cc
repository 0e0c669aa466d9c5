#include "sim_estimate.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "qianmian/synth/bank.h"
#include "qianmian/synth/simulator.h"

namespace qm::tools {

Result<WorldEstimate> EstimateInPlantedWorld(const std::string& data_dir, const std::vector<PlannedSend>& sends,
                                             int threads) {
  WorldEstimate out;
  Result<synth::BankOptions> bo = synth::ReadBankOptions(data_dir);
  if (bo.status().code() == StatusCode::kNotFound) return out;
  QM_RETURN_IF_ERROR(bo.status());
  const auto t0 = std::chrono::steady_clock::now();
  bo->threads = threads;
  QM_ASSIGN_OR_RETURN(auto bank, synth::Bank::Create(*bo));
  synth::SimulatorOptions so;
  so.threads = threads;
  QM_ASSIGN_OR_RETURN(auto sim, synth::Simulator::Create(*bank, so));
  std::vector<synth::Event> events;
  QM_RETURN_IF_ERROR(sim->NextDays(sim->num_days(), &events));  // every customer's state as logged
  events = {};
  std::unordered_map<std::string, uint32_t> customers, items;
  for (uint32_t c = 0; c < bank->num_customers(); ++c) customers.emplace(bank->customer_id(c), c);
  for (uint32_t i = 0; i < bank->num_items(); ++i) items.emplace(bank->item_id(i), i);
  std::vector<synth::Exposure> shown;
  for (const PlannedSend& s : sends) {
    auto c = customers.find(s.customer_id);
    auto i = items.find(s.item_id);
    if (c == customers.end() || i == items.end()) {
      ++out.unknown;
      continue;
    }
    shown.push_back({c->second, i->second, kWechatPush, std::max(s.at, bank->start())});
  }
  std::vector<synth::ResponseProbabilities> p(shown.size());
  QM_RETURN_IF_ERROR(sim->Probabilities(shown.data(), shown.size(), p.data()));
  for (const auto& r : p) out.opens += r.open;
  out.sends = static_cast<int64_t>(shown.size());
  out.available = true;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace qm::tools
