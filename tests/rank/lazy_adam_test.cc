#include "qianmian/torchutil/torchutil.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace qm::torchutil {
namespace {

// The loss of a lookup of `rows` in `table` (an embedding with sparse gradients), against
// fixed targets.
torch::Tensor Loss(const torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& target) {
  auto e = torch::embedding(table, rows, -1, false, /*sparse=*/true);
  return (e - target).pow(2).sum();
}

TEST(LazyAdam, EqualsAdamWhenEveryRowHasAGradientOnEveryStep) {
  torch::manual_seed(7);
  auto init = torch::randn({6, 4});
  auto target = torch::randn({6, 4});
  auto all = torch::arange(6, torch::kInt64);
  auto lazy = init.clone().requires_grad_(true);
  auto dense = init.clone().requires_grad_(true);
  LazyAdam lazy_opt({lazy}, 0.05);
  torch::optim::Adam dense_opt({dense}, torch::optim::AdamOptions(0.05));
  for (int step = 0; step < 20; ++step) {
    lazy_opt.ZeroGrad();
    Loss(lazy, all, target).backward();
    lazy_opt.Step();
    dense_opt.zero_grad();
    ((dense - target).pow(2).sum()).backward();
    dense_opt.step();
  }
  EXPECT_LT((lazy - dense).abs().max().item<float>(), 1e-5f);
  EXPECT_GT((lazy - init).abs().max().item<float>(), 0.5f);  // it did move, towards the targets
  EXPECT_LT((lazy - target).pow(2).sum().item<float>(), (init - target).pow(2).sum().item<float>());
}

TEST(LazyAdam, StepsOnlyTheRowsABatchTouchedAndKeepsTheOthersMoments) {
  torch::manual_seed(11);
  auto init = torch::randn({5, 3});
  auto target = torch::randn({5, 3});
  auto table = init.clone().requires_grad_(true);
  LazyAdam opt({table}, 0.1);
  auto first = torch::tensor({0, 1, 1}, torch::kInt64);  // row 1 twice: the gradient sums
  opt.ZeroGrad();
  Loss(table, first, target.index_select(0, first)).backward();
  opt.Step();
  auto after1 = table.detach().clone();
  for (int r : {2, 3, 4}) EXPECT_TRUE(torch::equal(after1[r], init[r])) << "row " << r;
  // Adam's first step moves each touched coordinate by lr (the sign of its gradient).
  EXPECT_NEAR((after1[0] - init[0]).abs().max().item<float>(), 0.1f, 1e-4f);
  // Step 2 touches only row 3: rows 0 and 1 stay where step 1 left them (dense Adam would move
  // them again by their momentum).
  auto second = torch::tensor({3}, torch::kInt64);
  opt.ZeroGrad();
  Loss(table, second, target.index_select(0, second)).backward();
  opt.Step();
  auto after2 = table.detach().clone();
  EXPECT_TRUE(torch::equal(after2[0], after1[0]));
  EXPECT_TRUE(torch::equal(after2[1], after1[1]));
  EXPECT_FALSE(torch::equal(after2[3], init[3]));
  // Row 3's first update, at step 2 with step 2's bias correction (c1 = 1 - 0.9^2 = 0.19,
  // c2 = 1 - 0.999^2 = 0.001999): m = 0.1 g, v = 0.001 g^2, so each coordinate moves by
  // lr * (m / c1) / sqrt(v / c2) = lr * (0.1 / 0.19) / sqrt(0.001 / 0.001999).
  const double expected = 0.1 * (0.1 / 0.19) / std::sqrt(0.001 / 0.001999);
  EXPECT_NEAR((after2[3] - init[3]).abs().max().item<float>(), expected, 1e-4);
}

TEST(LazyAdam, RefusesADenseGradientAndSkipsTablesWithout) {
  auto a = torch::zeros({3, 2}).requires_grad_(true);
  auto b = torch::zeros({3, 2}).requires_grad_(true);
  LazyAdam opt({a, b}, 0.1);
  opt.ZeroGrad();
  (b * 2).sum().backward();  // a has no gradient; b's is dense
  EXPECT_THROW(opt.Step(), std::invalid_argument);
  opt.ZeroGrad();
  EXPECT_FALSE(b.grad().defined());
  opt.Step();  // nothing to do
  EXPECT_TRUE(torch::equal(a, torch::zeros({3, 2})));
}

}  // namespace
}  // namespace qm::torchutil
