// The assignment's cost per request (issue 17: under 1 µs for every layer): the holdout and each
// layer's arm for one customer id, as the engine does once per request.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "qianmian/experiment/assignment.h"

namespace {

qm::experiment::ExperimentsConfig Layers(int layers, int arms) {
  qm::experiment::ExperimentsConfig c;
  c.holdout_share = 0.05;
  for (int l = 0; l < layers; ++l) {
    qm::experiment::LayerConfig layer;
    layer.name = "layer" + std::to_string(l);
    layer.salt = "salt-" + std::to_string(l);
    for (int a = 0; a < arms; ++a) {
      qm::experiment::ArmConfig arm;
      arm.name = "arm" + std::to_string(a);
      arm.share = 1.0 / arms;
      layer.arms.push_back(arm);
    }
    c.layers.push_back(layer);
  }
  return c;
}

// Args: layers, arms per layer.
void BM_AssignRequest(benchmark::State& state) {
  const qm::experiment::Assigner assigner(Layers(static_cast<int>(state.range(0)), static_cast<int>(state.range(1))));
  std::vector<std::string> ids;
  for (int i = 0; i < 4096; ++i) ids.push_back("C" + std::to_string(1000000 + i * 7919));
  qm::experiment::Assignment a;
  size_t i = 0;
  for (auto _ : state) {
    assigner.Assign(ids[i++ & 4095], &a);
    benchmark::DoNotOptimize(a.arms.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AssignRequest)->Args({1, 2})->Args({3, 4})->Args({8, 10});

}  // namespace

BENCHMARK_MAIN();
