// Per-request latency of Engine::Recommend on app_home, single-threaded and in-process, with
// per-stage timings and the engine's own share (everything except the Faiss searches and the
// model forwards: customer tower and ranker).
//
//   QM_BENCH_DATA=/tmp/bank100k QM_BENCH_ARTIFACTS=/tmp/art100k build/serving/qm_serving_bench
//
// The event store is a fresh embedded store in a scratch folder (QM_BENCH_STORE, default
// /tmp/qm_serving_bench_store), so reservations start from zero. Reserving requests also record
// their decisions (issue 17): the `record` stage, reported as record_us (mean) and
// record_p50_us / record_p99_us.
#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qianmian/core/allocator.h"
#include "qianmian/core/csv.h"
#include "qianmian/serving/engine.h"

namespace {

using qm::serving::Engine;
using qm::serving::Request;
using qm::serving::Response;

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Peak and current resident memory (MB) from /proc/self/status.
double ProcMb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::string(key).size()) / 1024.0;
  }
  return 0;
}

// CPU time of the calling thread, in microseconds: with libtorch pinned to one thread and Faiss
// searching in the caller, a request's CPU time is its latency on an otherwise idle core.
double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Setup {
  std::unique_ptr<Engine> engine;
  std::vector<std::string> customers;
  double open_seconds = 0;
  double rss_after_open_mb = 0;
};

Setup& Get() {
  static Setup s = [] {
    Setup x;
    qm::serving::EngineOptions o;
    o.data.dir = Env("QM_BENCH_DATA", "/tmp/bank100k");
    o.artifacts_root = Env("QM_BENCH_ARTIFACTS", "/tmp/art100k");
    const std::string store = Env("QM_BENCH_STORE", "/tmp/qm_serving_bench_store");
    std::filesystem::remove_all(store);
    o.store.path = store;
    const std::string config = Env("QM_BENCH_CONFIG", "");
    if (!config.empty()) {  // a TOML file with [serving] and [store] sections
      auto f = qm::ConfigFile::Load(config);
      if (!f.ok()) std::exit((std::fprintf(stderr, "%s\n", f.status().ToString().c_str()), 1));
      qm::serving::ReadServingConfig(f->Root().Table("serving"), &o.serving);
      qm::policy::ReadStoreConfig(f->Root().Table("store"), &o.store);  // e.g. sync_decisions
      o.store.path = store;
      if (!f->Finish().ok()) std::exit((std::fprintf(stderr, "%s\n", f->Finish().ToString().c_str()), 1));
    }
    o.serving.seed_store = false;
    const auto t0 = std::chrono::steady_clock::now();
    auto e = Engine::Open(std::move(o));
    if (!e.ok()) {
      std::fprintf(stderr, "cannot open the engine: %s\n", e.status().ToString().c_str());
      std::exit(1);
    }
    x.open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    x.engine = std::move(e).value();
    x.rss_after_open_mb = ProcMb("VmRSS:");
    auto reader = qm::CsvReader::Open(std::string(Env("QM_BENCH_DATA", "/tmp/bank100k")) + "/customers.csv");
    if (!reader.ok()) std::exit(1);
    qm::CsvRecord rec;
    (*reader)->Next(&rec);  // header
    while ((*reader)->Next(&rec)) x.customers.emplace_back(rec.fields[0]);
    std::mt19937_64 rng(7);
    std::shuffle(x.customers.begin(), x.customers.end(), rng);
    return x;
  }();
  return s;
}

void Run(benchmark::State& state, bool dry_run, bool unknown) {
  Setup& s = Get();
  std::vector<double> took, cpu_took, record_took;  // record: the decision log's write (not in dry runs)
  std::map<std::string, double> stage;
  const qm::TimeMs now = 1793462400000 + 12 * qm::kMsPerHour;  // noon after a generated bank's period
  size_t k = 0;
  double empty = 0;
  std::vector<Request> req(1);
  std::vector<Response> out;
  auto one = [&](bool record) {
    Request& r = req[0];
    r.customer_id = unknown ? "UNKNOWN-" + std::to_string(k) : s.customers[k % s.customers.size()];
    r.channel = "app_home";
    r.count = 10;
    r.now_ms = now + static_cast<qm::TimeMs>(k);
    r.dry_run = dry_run;
    r.request_id = "bench-" + std::to_string(dry_run) + "-" + std::to_string(k);
    ++k;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = ThreadCpuUs();
    qm::Status st = s.engine->Recommend(req, &out);
    const double cpu = ThreadCpuUs() - c0;
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok() || !out[0].status.ok()) {
      state.SkipWithError(("a request failed: " + (st.ok() ? out[0].status : st).ToString()).c_str());
      return;
    }
    if (!record) return;
    took.push_back(us);
    cpu_took.push_back(cpu);
    empty += out[0].items.empty();  // e.g. a customer opted out of app_home with no service item
    for (const auto& [name, v] : out[0].debug.stage_us) stage[name] += static_cast<double>(v);
    if (auto rec = out[0].debug.stage_us.find("record"); rec != out[0].debug.stage_us.end()) {
      record_took.push_back(static_cast<double>(rec->second));
    }
  };
  // Warm-up (QM_BENCH_WARMUP requests, default 50; the item-to-item neighbour cache fills as it goes).
  const int warmup = std::atoi(Env("QM_BENCH_WARMUP", "50").c_str());
  for (int w = 0; w < warmup; ++w) one(false);
  for (auto _ : state) one(true);
  if (took.empty()) return;
  std::vector<double> sorted = took;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))]; };
  double mean = 0;
  for (double t : took) mean += t;
  mean /= static_cast<double>(took.size());
  state.counters["p50_us"] = pct(0.50);
  state.counters["p90_us"] = pct(0.90);
  state.counters["p99_us"] = pct(0.99);
  state.counters["mean_us"] = mean;
  std::sort(cpu_took.begin(), cpu_took.end());
  state.counters["cpu_p50_us"] = cpu_took[cpu_took.size() / 2];
  state.counters["cpu_p99_us"] = cpu_took[std::min(cpu_took.size() - 1, cpu_took.size() * 99 / 100)];
  if (!record_took.empty()) {  // what recording the served page's decisions adds to a request
    std::sort(record_took.begin(), record_took.end());
    state.counters["record_p50_us"] = record_took[record_took.size() / 2];
    state.counters["record_p99_us"] = record_took[std::min(record_took.size() - 1, record_took.size() * 99 / 100)];
  }
  const double n = static_cast<double>(took.size());
  for (const auto& [name, total] : stage) state.counters[name + "_us"] = total / n;  // every stage the engine reports
  const double outside = (stage["tower"] + stage["ann"] + stage["model"]) / n;
  state.counters["engine_share"] = mean > 0 ? (mean - outside) / mean : 0;
  state.counters["empty_share"] = empty / n;
  state.counters["rss_mb"] = ProcMb("VmRSS:");
  state.counters["peak_rss_mb"] = ProcMb("VmHWM:");
  state.counters["open_s"] = s.open_seconds;
}

void BM_RecommendAppHomeDryRun(benchmark::State& state) { Run(state, /*dry_run=*/true, /*unknown=*/false); }
void BM_RecommendAppHomeReserve(benchmark::State& state) { Run(state, /*dry_run=*/false, /*unknown=*/false); }
void BM_RecommendAppHomeUnknownCustomer(benchmark::State& state) { Run(state, /*dry_run=*/true, /*unknown=*/true); }

BENCHMARK(BM_RecommendAppHomeDryRun)->Iterations(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecommendAppHomeReserve)->Iterations(3000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecommendAppHomeUnknownCustomer)->Iterations(1000)->Unit(benchmark::kMicrosecond);

}  // namespace

// The allocator tuned as in the program (core/allocator.h), so the figures are the server's.
int main(int argc, char** argv) {
  qm::ConfigureAllocatorForTensors();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
