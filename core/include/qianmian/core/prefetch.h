// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Prepares work items on a background thread while the caller consumes the previous ones:
// e.g. encoding the next training batch while libtorch runs the current one.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace qm {

// `produce(T*)` runs on one background thread, in order, until it returns false; Next()
// hands the items over in the same order. At most `depth` items wait. Deterministic: the
// sequence is exactly what a single thread calling produce() would give.
template <typename T>
class Prefetcher {
 public:
  Prefetcher(std::function<bool(T*)> produce, size_t depth = 2)
      : produce_(std::move(produce)), depth_(depth), thread_([this] { Run(); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Moves the next item into *out; false when the producer is done.
  bool Next(T* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) return false;
    *out = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    return true;
  }

 private:
  void Run() {
    for (;;) {
      T item;
      bool more = produce_(&item);
      std::unique_lock<std::mutex> lock(mu_);
      if (!more || stop_) {
        done_ = true;
        cv_.notify_all();
        return;
      }
      ready_.push_back(std::move(item));
      cv_.notify_all();
      cv_.wait(lock, [&] { return ready_.size() < depth_ || stop_; });
      if (stop_) {
        done_ = true;
        return;
      }
    }
  }

  std::function<bool(T*)> produce_;
  size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> ready_;  // guarded by mu_
  bool done_ = false;    // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::thread thread_;   // last: starts after the members above exist
};

}  // namespace qm
