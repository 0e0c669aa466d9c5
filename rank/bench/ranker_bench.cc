// Forward pass of the ranker for one request's candidates (one customer, one context, n items)
// and for a batch mixing customers (push runs): Score (the inference path on OpenBLAS) beside
// libtorch's forward pass of the same network, and a large single-thread sgemm for the core's
// limit. "FLOPS" is the forward's matrix-product FLOPs per second (for sgemm, its own).
// Google Benchmark; not a unit test.
//   OMP_NUM_THREADS=1 QM_BENCH_ARTIFACTS=/tmp/art1m build/rank/qm_ranker_bench
// Reads <root>/CURRENT's features.json and ranker.pt; rows are random but valid ids.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "qianmian/core/allocator.h"
#include "qianmian/core/blas_threads.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/rank/ranker.h"

namespace {

struct Loaded {
  std::unique_ptr<qm::features::FeatureSpace> space;
  std::unique_ptr<qm::rank::RankInputBuilder> builder;
  std::unique_ptr<qm::rank::Ranker> ranker;
  qm::rank::ForwardFlops flops;  // per row: the inference path's and libtorch's
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
    out->flops = qm::rank::ForwardFlopsPerRow(*out->ranker);
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

using ScoreFn = qm::Status (*)(const qm::rank::RankInputs&, float*, float*);

qm::Status Inference(const qm::rank::RankInputs& in, float* pc, float* pv) { return Get().ranker->Score(in, pc, pv); }
qm::Status Libtorch(const qm::rank::RankInputs& in, float* pc, float* pv) {
  return qm::rank::ScoreWithLibtorch(*Get().ranker, in, pc, pv);
}

void Run(benchmark::State& state, ScoreFn score, int customers, int64_t flops_per_row) {
  auto in = MakeRows(static_cast<int>(state.range(0)), customers, customers);
  std::vector<float> pc(in.n), pv(in.n);
  for (auto _ : state) {
    auto st = score(in, pc.data(), pv.data());
    if (!st.ok()) state.SkipWithError(st.message().c_str());
    benchmark::DoNotOptimize(pc.data());
  }
  state.SetItemsProcessed(state.iterations() * in.n);
  state.counters["FLOPS"] =
      benchmark::Counter(static_cast<double>(state.iterations() * in.n * flops_per_row), benchmark::Counter::kIsRate);
}

void BM_ScoreOneRequest(benchmark::State& state) { Run(state, Inference, 1, Get().flops.one_request); }
void BM_ScoreOneRequestLibtorch(benchmark::State& state) { Run(state, Libtorch, 1, Get().flops.libtorch); }
void BM_ScoreManyCustomers(benchmark::State& state) {
  Run(state, Inference, static_cast<int>(state.range(0)) / 50, Get().flops.many_customers);
}
void BM_ScoreManyCustomersLibtorch(benchmark::State& state) {
  Run(state, Libtorch, static_cast<int>(state.range(0)) / 50, Get().flops.libtorch);
}
BENCHMARK(BM_ScoreOneRequest)->Arg(100)->Arg(300)->Arg(1000)->Arg(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScoreOneRequestLibtorch)->Arg(100)->Arg(300)->Arg(1000)->Arg(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScoreManyCustomers)->Arg(300)->Arg(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScoreManyCustomersLibtorch)->Arg(300)->Arg(3000)->Unit(benchmark::kMicrosecond);

// The core's sgemm limit: one thread, square matrices.
void BM_Sgemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOPS"] = benchmark::Counter(2.0 * n * n * n * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Sgemm)->Arg(1024)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("QM_BENCH_DEFAULT_MALLOC")) qm::ConfigureAllocatorForTensors();
  qm::SetBlasThreads(1);
  benchmark::Initialize(&argc, argv);
  Get();
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
