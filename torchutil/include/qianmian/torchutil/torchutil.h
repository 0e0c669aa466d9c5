// Helpers the libtorch models share (recall's two-tower and exposure towers, rank's ranker).
// This header includes libtorch: include it only from .cc files that already do.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "qianmian/core/status.h"

namespace qm::torchutil {

// Unsets sparse gradients without entries (e.g. a batch where every bag is padding):
// libtorch 1.13's sparse Adagrad step fails on them, and there is nothing to update.
void DropEmptySparseGrads(torch::optim::Optimizer* opt);

// Writes `meta` (format name and hyper-parameters) as JSON to `path`.
[[nodiscard]] Status WriteSidecar(const std::string& path, const nlohmann::json& meta);

// Saves a module's weights to `path` and `meta` to `path`.json, the file a loader reads to
// rebuild the module before loading the weights. `what` names the model in errors.
template <class ModuleHolder>
[[nodiscard]] Status SaveWithSidecar(const ModuleHolder& net, const std::string& path, const nlohmann::json& meta,
                                     const std::string& what) {
  try {
    torch::save(net, path);
  } catch (const std::exception& e) {
    return Status::IoError("saving " + what + " to '" + path + "': " + e.what());
  }
  return WriteSidecar(path + ".json", meta);
}

}  // namespace qm::torchutil
