// Module torchutil: helpers the libtorch models share. May depend on: core; libtorch (private).
// Helpers the libtorch models share (recall's two-tower and exposure towers, rank's ranker).
// Free of libtorch headers, like every public header: callers pass what needs libtorch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qianmian/core/status.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim
namespace at {
class Tensor;
}  // namespace at

namespace qm::torchutil {

// Unsets sparse gradients without entries (e.g. a batch where every bag is padding):
// libtorch 1.13's sparse Adagrad step fails on them, and there is nothing to update.
void DropEmptySparseGrads(torch::optim::Optimizer* opt);

// Saves a model: `save_weights(path)` (e.g. torch::save; an exception is an IoError naming
// `what`), then `meta` (format name and hyper-parameters) as JSON to `path`.json, the file a
// loader reads to rebuild the module before loading the weights.
[[nodiscard]] Status SaveWithSidecar(const std::function<void(const std::string&)>& save_weights,
                                     const std::string& path, const nlohmann::json& meta, const std::string& what);

// A tensor's values as float32, row-major (detached): weights copied out for an inference path
// that runs without libtorch.
std::vector<float> FloatsOf(const at::Tensor& t);

}  // namespace qm::torchutil
