#include "qianmian/torchutil/torchutil.h"

#include <fstream>

#include <torch/torch.h>

namespace qm::torchutil {

void DropEmptySparseGrads(torch::optim::Optimizer* opt) {
  for (auto& group : opt->param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse() && p.grad()._nnz() == 0) p.mutable_grad() = torch::Tensor();
    }
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
