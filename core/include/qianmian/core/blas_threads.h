// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// OpenBLAS's thread count, where the process links OpenBLAS (under Faiss and libtorch): weak
// symbols, so without OpenBLAS these do nothing.
#pragma once

extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace qm {

// OpenBLAS keeps its own thread pool, one thread per core by default, apart from libtorch's and
// OpenMP's: a server worker or a push-run thread pins it to one thread like libtorch.
inline void SetBlasThreads(int threads) {
  if (openblas_set_num_threads) openblas_set_num_threads(threads);
}

// Sets OpenBLAS's thread count for the scope and restores the previous count after. Training's
// model fits run on `threads` threads while another thread prepares their batches: with OpenBLAS
// on every core, its idle worker spun in sched_yield on the core the batch thread needed
// (a 100k-customer ranker fit: 118 s, 115 s of it system time, against 95 s with one thread).
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads) : was_(openblas_get_num_threads ? openblas_get_num_threads() : 0) {
    SetBlasThreads(threads);
  }
  ~ScopedBlasThreads() {
    if (was_ > 0) SetBlasThreads(was_);
  }
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int was_;
};

}  // namespace qm
