// Content search at scale: exact, IVF and HNSW over a trained version's content embeddings,
// the approximate ones tuned (TuneSearchEffort) to Recall@100 >= 0.95 on 500 queries and
// measured on 500 others. Google Benchmark; not a unit test.
//   QM_BENCH_DATA=/tmp/bank1m QM_BENCH_ARTIFACTS=/tmp/art1m-v3 build/recall/qm_index_bench
// Queries stand in for customers: the mean of 5 random content embeddings plus Gaussian noise
// (sigma 0.05), renormalised. (Training's manifest reports the recall on real customer queries.)
// One query per search, k = 200 (the serving engine's content quota), one thread. Also HNSW with
// its built-in effort (efSearch 128, so k = 200 bounds the search), as versions before the
// tuning searched.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qianmian/core/csv.h"
#include "qianmian/recall/vector_index.h"

namespace {

using qm::recall::IndexKind;
using qm::recall::VectorIndex;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "index bench: %s\n", what.c_str());
  std::exit(1);
}

struct Content {
  int dim = 0;
  std::vector<float> vecs;
  std::vector<int64_t> ids;
  std::vector<float> tune, check;  // 500 queries each
};

const Content& Get() {
  static Content* c = [] {
    auto* out = new Content;
    const char* a = std::getenv("QM_BENCH_ARTIFACTS");
    const char* d = std::getenv("QM_BENCH_DATA");
    const std::string root = a ? a : "/tmp/art1m-v3", data = d ? d : "/tmp/bank1m";
    std::string version;
    std::ifstream(root + "/CURRENT") >> version;
    const std::string dir = root + "/" + version;
    // Which items are content: items.csv's kind column, by id.
    std::map<std::string, bool> is_content;
    auto reader = qm::CsvReader::Open(data + "/items.csv");
    if (!reader.ok()) Die(reader.status().ToString());
    qm::CsvRecord rec;
    int id_col = -1, kind_col = -1;
    while ((*reader)->Next(&rec)) {
      if (id_col < 0) {
        for (size_t i = 0; i < rec.fields.size(); ++i) {
          if (rec.fields[i] == "item_id") id_col = static_cast<int>(i);
          if (rec.fields[i] == "kind") kind_col = static_cast<int>(i);
        }
        if (id_col < 0 || kind_col < 0) Die("items.csv lacks item_id or kind");
        continue;
      }
      is_content[std::string(rec.fields[id_col])] = rec.fields[kind_col] == "content";
    }
    std::vector<std::string> ids;
    {
      std::ifstream in(dir + "/item_ids.txt");
      for (std::string line; std::getline(in, line);) ids.push_back(line);
    }
    std::ifstream emb(dir + "/item_embeddings.f32", std::ios::binary | std::ios::ate);
    if (!emb || ids.empty()) Die("cannot read " + dir + "/item_embeddings.f32 or item_ids.txt");
    const auto bytes = static_cast<size_t>(emb.tellg());
    out->dim = static_cast<int>(bytes / sizeof(float) / ids.size());
    std::vector<float> all(bytes / sizeof(float));
    emb.seekg(0);
    emb.read(reinterpret_cast<char*>(all.data()), static_cast<std::streamsize>(bytes));
    const int dim = out->dim;
    for (size_t r = 0; r < ids.size(); ++r) {
      if (!is_content[ids[r]]) continue;
      out->ids.push_back(static_cast<int64_t>(r));
      out->vecs.insert(out->vecs.end(), all.begin() + r * dim, all.begin() + (r + 1) * dim);
    }
    const size_t n = out->ids.size();
    if (n == 0) Die("no content items");
    std::mt19937 rng(1);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    for (auto* q : {&out->tune, &out->check}) {
      q->assign(500 * static_cast<size_t>(dim), 0.0f);
      for (int i = 0; i < 500; ++i) {
        float* v = q->data() + static_cast<size_t>(i) * dim;
        for (int j = 0; j < 5; ++j) {
          const float* x = out->vecs.data() + (rng() % n) * dim;
          for (int t = 0; t < dim; ++t) v[t] += x[t] / 5 + noise(rng);
        }
        double norm = 0;
        for (int t = 0; t < dim; ++t) norm += double(v[t]) * v[t];
        for (int t = 0; t < dim; ++t) v[t] = static_cast<float>(v[t] / std::sqrt(norm));
      }
    }
    std::fprintf(stderr, "%zu content vectors of width %d from %s\n", n, dim, dir.c_str());
    return out;
  }();
  return *c;
}

void BM_ContentSearch(benchmark::State& state) {
  omp_set_num_threads(1);
  const Content& c = Get();
  const auto kind = static_cast<IndexKind>(state.range(0));
  const int64_t n = static_cast<int64_t>(c.ids.size());
  qm::recall::VectorIndexOptions o;
  o.dim = c.dim;
  o.kind = kind;
  auto index = VectorIndex::Build(o, c.vecs.data(), c.ids.data(), n);
  if (!index.ok()) Die(index.status().ToString());
  const bool tune = state.range(1) != 0;
  double tuned = 1.0;
  if (kind != IndexKind::kExact && tune) {
    auto t = qm::recall::TuneSearchEffort(index->get(), c.vecs.data(), c.ids.data(), n, c.tune.data(), 500, 100, 0.95);
    if (!t.ok()) Die(t.status().ToString());
    tuned = *t;
  }
  auto r = qm::recall::MeasureRecallAgainstExact(**index, c.vecs.data(), c.ids.data(), n, c.check.data(), 500, 100);
  if (!r.ok()) Die(r.status().ToString());
  const int k = 200;
  std::vector<int64_t> labels(k);
  std::vector<float> scores(k);
  int64_t q = 0;
  for (auto _ : state) {
    const float* v = c.check.data() + (q++ % 500) * c.dim;
    if (!(*index)->Search(v, 1, k, labels.data(), scores.data()).ok()) Die("search failed");
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetLabel(std::string(qm::recall::IndexKindName(kind)) +
                 (tune || kind == IndexKind::kExact ? "" : " (untuned: the built-in effort)"));
  state.counters["effort"] = (*index)->search_effort();
  if (tune) state.counters["recall100_tuning"] = tuned;
  state.counters["recall100"] = *r;
}
// Args: index kind; tuned (1) or the options' built-in effort (0).
BENCHMARK(BM_ContentSearch)
    ->Args({static_cast<int>(IndexKind::kExact), 0})
    ->Args({static_cast<int>(IndexKind::kIvf), 1})
    ->Args({static_cast<int>(IndexKind::kIvf), 0})
    ->Args({static_cast<int>(IndexKind::kHnsw), 1})
    ->Args({static_cast<int>(IndexKind::kHnsw), 0})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);

// The item-to-item table as training builds it (BuildNeighbours): every item's embedding searched
// in the version's content index, k = 16. QM_BENCH_NEIGHBOUR_QUERIES limits the queries to the
// first N items (default: all). Writes the lists to QM_BENCH_NEIGHBOUR_OUT if set, to compare
// two builds. Time per run of the whole table.
void BM_NeighbourLists(benchmark::State& state) {
  const char* a = std::getenv("QM_BENCH_ARTIFACTS");
  const std::string root = a ? a : "/tmp/art1m-v3";
  std::string version;
  std::ifstream(root + "/CURRENT") >> version;
  const std::string dir = root + "/" + version;
  auto index = VectorIndex::Load(dir + "/content.index");
  if (!index.ok()) Die(index.status().ToString());
  const int dim = (*index)->dim();
  std::ifstream emb(dir + "/item_embeddings.f32", std::ios::binary | std::ios::ate);
  if (!emb) Die("cannot read " + dir + "/item_embeddings.f32");
  const auto bytes = static_cast<size_t>(emb.tellg());
  std::vector<float> all(bytes / sizeof(float));
  emb.seekg(0);
  emb.read(reinterpret_cast<char*>(all.data()), static_cast<std::streamsize>(bytes));
  int64_t n = static_cast<int64_t>(all.size() / dim);
  if (const char* q = std::getenv("QM_BENCH_NEIGHBOUR_QUERIES")) n = std::min<int64_t>(n, std::atoll(q));
  std::vector<int64_t> self(n);
  for (int64_t i = 0; i < n; ++i) self[i] = i;
  const int k = 16;
  std::vector<int32_t> out(static_cast<size_t>(n) * k);
  for (auto _ : state) {
    auto st = qm::recall::NeighbourLists(**index, all.data(), self.data(), n, k, out.data());
    if (!st.ok()) Die(st.ToString());
  }
  if (const char* path = std::getenv("QM_BENCH_NEIGHBOUR_OUT")) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(int32_t)));
  }
  state.counters["queries"] = static_cast<double>(n);
  state.counters["effort"] = (*index)->search_effort();
}
BENCHMARK(BM_NeighbourLists)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
