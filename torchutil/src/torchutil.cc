#include "qianmian/torchutil/torchutil.h"

#include <fstream>

namespace qm::torchutil {

void DropEmptySparseGrads(torch::optim::Optimizer* opt) {
  for (auto& group : opt->param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse() && p.grad()._nnz() == 0) p.mutable_grad() = torch::Tensor();
    }
  }
}

Status WriteSidecar(const std::string& path, const nlohmann::json& meta) {
  std::ofstream out(path, std::ios::trunc);
  out << meta.dump(2);
  out.close();
  if (!out) return Status::IoError("writing '" + path + "' failed");
  return Status::Ok();
}

}  // namespace qm::torchutil
