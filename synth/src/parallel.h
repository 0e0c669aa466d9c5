// Private to the generator: a fixed-block parallel loop. Blocks are fixed by `block`, not by
// the number of threads, so per-block results never depend on how many threads ran.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace qm::synth::gen {

inline int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls fn(begin, end) for consecutive blocks of [0, n) of size `block`, on up to `threads`
// threads (0 = all cores). fn must be thread-safe across different blocks.
template <typename Fn>
void ParallelFor(size_t n, int threads, size_t block, Fn&& fn) {
  if (n == 0) return;
  size_t blocks = (n + block - 1) / block;
  int t = static_cast<int>(std::min<size_t>(blocks, static_cast<size_t>(ResolveThreads(threads))));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      size_t b = next.fetch_add(1);
      if (b >= blocks) return;
      fn(b * block, std::min(n, (b + 1) * block));
    }
  };
  if (t <= 1) {
    work();
    return;
  }
  std::vector<std::thread> pool;
  for (int i = 1; i < t; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
}

}  // namespace qm::synth::gen
