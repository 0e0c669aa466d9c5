// The planted world's estimate of a campaign's sends (issue 18: "the simulator's estimate" in the
// approver's dry run). On a generated bank (its folder has truth/truth.json) the world is rebuilt
// and driven through its period as it was logged, so every customer's state (recent pushes,
// clicks, opt-outs) is as at the end of the data; then the true model gives each planned send's
// P(push_open). Private to the tools module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::tools {

struct PlannedSend {
  std::string customer_id, item_id;
  TimeMs at = 0;
};

struct WorldEstimate {
  bool available = false;  // false: not a generated bank (no truth/)
  int64_t sends = 0;       // sends of customers and items the world knows
  int64_t unknown = 0;     // sends of customers or items added since (not in the world)
  double opens = 0;        // the true expected push opens of the known sends
  double seconds = 0;      // rebuilding and driving the world
};

// NotFound-free: a folder without truth/ gives available = false.
[[nodiscard]] Result<WorldEstimate> EstimateInPlantedWorld(const std::string& data_dir,
                                                           const std::vector<PlannedSend>& sends, int threads);

}  // namespace qm::tools
