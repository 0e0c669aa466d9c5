// The server's thread for a compaction's steps that hold locks (EventStore::Compact's `locked`).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "qianmian/core/status.h"
#include "qianmian/policy/event_store.h"
#include "thread_name.h"

namespace qm::server {

// Runs steps handed to it one at a time, on a thread of its own that keeps the process's
// scheduling class, for a caller that waits for each: the compaction thread, in the idle class,
// hands it the steps that hold a lock requests may wait for (EventStore::Compact's `locked`), so
// such a lock is never held by a thread that gets a core only when one is idle. Times the steps.
class StepThread {
 public:
  explicit StepThread(std::string name)
      : thread_([this, name = std::move(name)] {
          NameThisThread(name);
          Loop();
        }) {}
  ~StepThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StepThread(const StepThread&) = delete;
  StepThread& operator=(const StepThread&) = delete;

  // Runs `step` on the thread and returns its status.
  Status Run(const policy::EventStore::Step& step) {
    std::unique_lock<std::mutex> lock(mu_);
    step_ = &step;
    done_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
    return std::move(result_);
  }
  // "N steps holding locks for T ms in all, at most L ms", and starts counting afresh.
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s = fmt::format("{} steps holding locks for {} ms in all, at most {:.1f} ms", steps_, total_us_ / 1000,
                                static_cast<double>(longest_us_) / 1000);
    steps_ = total_us_ = longest_us_ = 0;
    return s;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || step_ != nullptr; });
      if (step_ == nullptr) return;
      const policy::EventStore::Step* step = std::exchange(step_, nullptr);
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      Status st = (*step)();
      const int64_t us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
      lock.lock();
      longest_us_ = std::max(longest_us_, us);
      total_us_ += us;
      ++steps_;
      result_ = std::move(st);
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const policy::EventStore::Step* step_ = nullptr;  // handed over, not yet taken
  Status result_;
  bool done_ = false, stop_ = false;
  int64_t steps_ = 0, total_us_ = 0, longest_us_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace qm::server
