// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// A progress bar on stderr for long-running commands: a redrawn line with rate and ETA on a
// terminal, a plain line every ~10% or 10 s otherwise. Add() is thread-safe and cheap.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace qm {

class Progress {
 public:
  // `total` 0 = unknown (shows count and rate only). Disabled when QM_PROGRESS=0.
  Progress(std::string label, uint64_t total, std::string unit = "");
  ~Progress();  // calls Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n = 1);
  void Set(uint64_t done);
  void SetTotal(uint64_t total) { total_.store(total); }
  // Prints the final line (once).
  void Finish();

 private:
  void MaybeRender(bool force);
  std::string label_, unit_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_{0};
  std::atomic<int64_t> next_render_ns_{0};
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;  // guards rendering state below
  bool tty_ = false;
  bool enabled_ = true;
  bool finished_ = false;
  int last_decile_ = -1;
  int64_t last_plain_ns_ = 0;
};

}  // namespace qm
