#include "qianmian/torchutil/torchutil.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

#include <torch/torch.h>

namespace qm::torchutil {

void DropEmptySparseGrads(torch::optim::Optimizer* opt) {
  for (auto& group : opt->param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse() && p.grad()._nnz() == 0) p.mutable_grad() = torch::Tensor();
    }
  }
}

struct LazyAdam::State {
  std::vector<torch::Tensor> params, m, v;
  double lr, beta1, beta2, eps;
  int64_t steps = 0;
};

LazyAdam::LazyAdam(const std::vector<at::Tensor>& params, double lr, double beta1, double beta2, double eps)
    : s_(std::make_unique<State>()) {
  s_->params = params;
  s_->lr = lr;
  s_->beta1 = beta1;
  s_->beta2 = beta2;
  s_->eps = eps;
  for (const auto& p : params) {
    s_->m.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    s_->v.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
  }
}

LazyAdam::~LazyAdam() = default;

void LazyAdam::ZeroGrad() {
  for (auto& p : s_->params) p.mutable_grad() = torch::Tensor();
}

void LazyAdam::Step() {
  torch::NoGradGuard no_grad;
  State& s = *s_;
  ++s.steps;
  const double c1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.steps));
  const double c2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.steps));
  for (size_t i = 0; i < s.params.size(); ++i) {
    const auto& grad = s.params[i].grad();
    if (!grad.defined()) continue;
    if (!grad.is_sparse()) throw std::invalid_argument("LazyAdam: a table's gradient is not sparse");
    auto g = grad.coalesce();
    if (g._nnz() == 0) continue;
    auto rows = g.indices().select(0, 0);
    auto values = g.values();
    auto m = s.m[i].index_select(0, rows).mul_(s.beta1).add_(values, 1.0 - s.beta1);
    auto v = s.v[i].index_select(0, rows).mul_(s.beta2).addcmul_(values, values, 1.0 - s.beta2);
    s.m[i].index_copy_(0, rows, m);
    s.v[i].index_copy_(0, rows, v);
    auto denom = (v.sqrt() / std::sqrt(c2)).add_(s.eps);
    s.params[i].index_add_(0, rows, m.div_(denom).mul_(-s.lr / c1));
  }
}

Status SaveWithSidecar(const std::function<void(const std::string&)>& save_weights, const std::string& path,
                       const nlohmann::json& meta, const std::string& what) {
  try {
    save_weights(path);
  } catch (const std::exception& e) {
    return Status::IoError("saving " + what + " to '" + path + "': " + e.what());
  }
  std::ofstream out(path + ".json", std::ios::trunc);
  out << meta.dump(2);
  out.close();
  if (!out) return Status::IoError("writing '" + path + ".json' failed");
  return Status::Ok();
}

std::vector<float> FloatsOf(const at::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace qm::torchutil
