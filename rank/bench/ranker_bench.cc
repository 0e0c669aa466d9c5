// Forward pass of the ranker for one request's candidates (one customer, one context, n items)
// and for a batch mixing customers (push runs). Google Benchmark; not a unit test.
//   QM_BENCH_ARTIFACTS=/tmp/art1m build/rank/qm_ranker_bench
// Reads <root>/CURRENT's features.json and ranker.pt; rows are random but valid ids.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "qianmian/core/allocator.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/rank/ranker.h"

namespace {

struct Loaded {
  std::unique_ptr<qm::features::FeatureSpace> space;
  std::unique_ptr<qm::rank::RankInputBuilder> builder;
  std::unique_ptr<qm::rank::Ranker> ranker;
};

Loaded& Get() {
  static Loaded* l = [] {
    auto* out = new Loaded;
    const char* r = std::getenv("QM_BENCH_ARTIFACTS");
    std::string root = r ? r : "/tmp/art1m";
    std::ifstream cur(root + "/CURRENT");
    std::string version;
    cur >> version;
    const std::string dir = root + "/" + version;
    auto space = qm::features::FeatureSpace::Load(dir + "/features.json");
    if (!space.ok()) {
      std::fprintf(stderr, "%s\n", space.status().message().c_str());
      std::exit(1);
    }
    out->space = std::make_unique<qm::features::FeatureSpace>(std::move(*space));
    std::ifstream meta(dir + "/two_tower.pt.json");
    std::string all((std::istreambuf_iterator<char>(meta)), {});
    auto p = all.find("\"embedding_dim\"");
    int dim = std::atoi(all.c_str() + all.find(':', p) + 1);
    out->builder = std::make_unique<qm::rank::RankInputBuilder>(*out->space, dim);
    auto ranker = qm::rank::Ranker::LoadBuiltin(dir + "/ranker.pt", *out->space, *out->builder);
    if (!ranker.ok()) {
      std::fprintf(stderr, "%s\n", ranker.status().message().c_str());
      std::exit(1);
    }
    out->ranker = std::move(*ranker);
    return out;
  }();
  return *l;
}

// n rows; `customers` distinct customers (rows cycle through them).
qm::rank::RankInputs MakeRows(int n, int customers, uint64_t seed) {
  Loaded& l = Get();
  const auto& s = *l.space;
  std::mt19937_64 rng(seed);
  qm::rank::RankInputs in;
  in.n = n;
  in.cat_width = l.builder->cat_width();
  in.dense_width = l.builder->dense_width();
  const int F = s.customer_cat_fields();
  const int C = qm::features::FeatureSpace::kItemCatFields;
  std::vector<std::vector<int64_t>> cust(customers, std::vector<int64_t>(F));
  for (auto& c : cust) {
    for (auto& v : c) v = static_cast<int64_t>(rng() % s.customer_cat_vocab());
  }
  std::normal_distribution<float> g(0, 1);
  for (int i = 0; i < n; ++i) {
    const auto& c = cust[i % customers];
    in.cat.insert(in.cat.end(), c.begin(), c.end());
    in.cat.push_back(static_cast<int64_t>(rng() % s.item_vocab()));
    for (int k = 1; k < C; ++k) in.cat.push_back(static_cast<int64_t>(rng() % s.item_cat_vocab()));
    in.cat.push_back(0);
    in.cat.push_back(12);
    in.cat.push_back(3);
    for (int k = 0; k < in.dense_width; ++k) in.dense.push_back(g(rng));
    for (int k = 0; k < qm::rank::kBagWidth; ++k) {
      in.bag.push_back(k < 6 ? 1 + static_cast<int64_t>(rng() % (s.label_vocab() + s.tag_vocab() - 1)) : 0);
    }
  }
  return in;
}

void BM_ScoreOneRequest(benchmark::State& state) {
  auto in = MakeRows(static_cast<int>(state.range(0)), 1, 1);
  std::vector<float> pc(in.n), pv(in.n);
  for (auto _ : state) {
    auto st = Get().ranker->Score(in, pc.data(), pv.data());
    if (!st.ok()) state.SkipWithError(st.message().c_str());
    benchmark::DoNotOptimize(pc.data());
  }
  state.SetItemsProcessed(state.iterations() * in.n);
}
BENCHMARK(BM_ScoreOneRequest)->Arg(100)->Arg(300)->Arg(1000)->Arg(2048)->Arg(3000)->Unit(benchmark::kMicrosecond);

void BM_ScoreManyCustomers(benchmark::State& state) {
  auto in = MakeRows(static_cast<int>(state.range(0)), static_cast<int>(state.range(0)) / 50, 2);
  std::vector<float> pc(in.n), pv(in.n);
  for (auto _ : state) {
    auto st = Get().ranker->Score(in, pc.data(), pv.data());
    if (!st.ok()) state.SkipWithError(st.message().c_str());
    benchmark::DoNotOptimize(pc.data());
  }
  state.SetItemsProcessed(state.iterations() * in.n);
}
BENCHMARK(BM_ScoreManyCustomers)->Arg(300)->Arg(1000)->Arg(3000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("QM_BENCH_DEFAULT_MALLOC")) qm::ConfigureAllocatorForTensors();
  benchmark::Initialize(&argc, argv);
  Get();
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
