// Module torchutil: helpers the libtorch models share. May depend on: core; libtorch (private).
// Helpers the libtorch models share (recall's two-tower and exposure towers, rank's ranker).
// Free of libtorch headers, like every public header: callers pass what needs libtorch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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

// Adam for embedding tables with sparse gradients that steps only the rows a batch touched
// ("lazy" Adam, as TensorFlow's LazyAdam and PyTorch's SparseAdam): a row's moments decay only
// on the steps that touch it, and a step costs the batch's rows, not the table's. Bias
// correction counts every step, as Adam's; when every row has a gradient on every step, the
// updates are Adam's. Dense Adam's step over a whole table grows with the catalogue: the
// ranker's fit took 1.3x longer with it at 100k items, 3.1x at 1M (docs/BENCHMARKS.md).
class LazyAdam {
 public:
  // `params`: tables of shape [rows, ...] whose gradients are sparse (or undefined: skipped).
  explicit LazyAdam(const std::vector<at::Tensor>& params, double lr, double beta1 = 0.9, double beta2 = 0.999,
                    double eps = 1e-8);
  ~LazyAdam();
  LazyAdam(const LazyAdam&) = delete;
  LazyAdam& operator=(const LazyAdam&) = delete;

  void ZeroGrad();  // unsets the gradients
  void Step();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// A tensor's values as float32, row-major (detached): weights copied out for an inference path
// that runs without libtorch.
std::vector<float> FloatsOf(const at::Tensor& t);

}  // namespace qm::torchutil
