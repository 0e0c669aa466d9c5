// The compaction's priority inversion (issue 20), measured in one process: the server compacts
// the embedded store in Linux's idle scheduling class. When the steps that hold a stripe's lock
// ran in that thread too, a request that needed the stripe could wait for a thread that gets a
// core only when one is idle. This bench fills a fresh store with CUSTOMERS customers whose
// oldest contact is past its horizon, then, for SECONDS, runs WORKERS request threads (each, every
// PERIOD_US: one event appended for a random customer, which takes its stripe's lock, then WORK_US
// of CPU, as a page's engine work) and HOGS threads busy HOG_PCT% of each 10 ms (the rest of a
// busy host: the load generator, a neighbour), all in the normal class, while a thread in the
// idle class compacts: first with the compaction's locked steps run by the compacting thread
// itself ("inline", the server before 2026-12-07), then, on a fresh fill, by the server's
// StepThread ("step thread"). Prints, per mode, the latency of the appends (a lock wait is in it)
// and the compaction's progress.
//   qm_compact_inversion STORE_DIR [CUSTOMERS=200000] [SECONDS=20] [WORKERS=2] [WORK_US=1000]
//                        [PERIOD_US=1500] [HOGS=1] [HOG_PCT=30]
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"
#include "step_thread.h"

namespace {

using Clock = std::chrono::steady_clock;
using qm::TimeMs;
using qm::policy::EventStore;
using qm::policy::StateOptions;
using qm::policy::StoredEvent;

constexpr TimeMs kT0 = 1'800'000'000'000;  // 2027-01-15

std::string Customer(int i) { return "c" + std::to_string(i); }

StoredEvent Impression(const std::string& customer, TimeMs ts, const std::string& request) {
  StoredEvent e;
  e.ts = ts;
  e.customer_id = customer;
  e.item_id = "item" + std::to_string(ts % 97);
  e.type = qm::EventType::kImpression;
  e.channel = "app_home";
  e.request_id = request;
  return e;
}

void Spin(std::chrono::microseconds d) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

// A fresh store in `dir`: each customer an impression 40 days and one 10 days before kT0 (the
// older past the 35-day horizon of contacts at kT0).
std::unique_ptr<EventStore> Fill(const std::string& dir, int customers, const StateOptions& options) {
  std::filesystem::remove_all(dir);
  qm::policy::StoreConfig sc;
  sc.path = dir;
  sc.sync = false;
  auto store = EventStore::Open(sc);
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), store.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<StoredEvent> batch;
  for (int i = 0; i < customers; ++i) {
    batch.push_back(Impression(Customer(i), kT0 - 40 * qm::kMsPerDay, "old" + std::to_string(i)));
    batch.push_back(Impression(Customer(i), kT0 - 10 * qm::kMsPerDay, "new" + std::to_string(i)));
    if (batch.size() >= 2000 || i + 1 == customers) {
      if (qm::Status st = (*store)->Append(batch, options); !st.ok()) {
        std::fprintf(stderr, "fill: %s\n", st.ToString().c_str());
        std::exit(1);
      }
      batch.clear();
    }
  }
  return std::move(*store);
}

struct Run {
  std::vector<int64_t> append_us;  // every request's append
  int64_t steps = 0;               // locked steps done while the load ran
  double compaction_s = 0;         // the whole compaction (it finishes after the load stops)
};

struct Load {
  int seconds = 20, workers = 2, work_us = 1000, period_us = 1500, hogs = 1, hog_pct = 30;
};

Run Measure(EventStore* store, bool step_thread, const Load& load, const StateOptions& options) {
  const int workers = load.workers;
  Run run;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> steps{0};
  std::thread compactor([&] {
    qm::server::StepThread locked("bench-lock");  // started before this thread leaves the normal class
    sched_param none{};
    if (sched_setscheduler(0, SCHED_IDLE, &none) != 0) std::perror("SCHED_IDLE");
    const auto t0 = Clock::now();
    qm::Status st = store->Compact(kT0, options, [&](const EventStore::Step& step) {
      qm::Status s = step_thread ? locked.Run(step) : step();
      if (!stop.load()) steps.fetch_add(1);
      return s;
    });
    run.compaction_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!st.ok()) std::fprintf(stderr, "compact: %s\n", st.ToString().c_str());
  });
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> lat(workers);
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w + 1);
      std::uniform_int_distribution<int> pick(0, 199'999);
      int64_t n = 0;
      auto next = Clock::now();
      while (!stop.load(std::memory_order_relaxed)) {
        const std::string c = Customer(pick(rng));
        const auto t = Clock::now();
        qm::Status st =
            store->Append({Impression(c, kT0 + n, "w" + std::to_string(w) + "-" + std::to_string(n))}, options);
        lat[w].push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
        if (!st.ok()) std::fprintf(stderr, "append: %s\n", st.ToString().c_str());
        ++n;
        Spin(std::chrono::microseconds(load.work_us));
        next += std::chrono::microseconds(load.period_us);
        std::this_thread::sleep_until(next);  // late: at once (an open loop's backlog)
      }
    });
  }
  for (int h = 0; h < load.hogs; ++h) {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        Spin(std::chrono::microseconds(100 * load.hog_pct));
        std::this_thread::sleep_for(std::chrono::microseconds(100 * (100 - load.hog_pct)));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(load.seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  compactor.join();
  for (auto& l : lat) run.append_us.insert(run.append_us.end(), l.begin(), l.end());
  std::sort(run.append_us.begin(), run.append_us.end());
  run.steps = steps.load();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: qm_compact_inversion STORE_DIR [CUSTOMERS=200000] [SECONDS=20] [WORKERS=2] [WORK_US=1000] "
                 "[PERIOD_US=1500] [HOGS=1] [HOG_PCT=30]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int customers = argc > 2 ? std::atoi(argv[2]) : 200'000;
  Load load;
  for (auto [i, field] : {std::pair{3, &Load::seconds},
                          {4, &Load::workers},
                          {5, &Load::work_us},
                          {6, &Load::period_us},
                          {7, &Load::hogs},
                          {8, &Load::hog_pct}}) {
    if (argc > i) load.*field = std::atoi(argv[i]);
  }
  if (customers < 200'000 || load.seconds <= 0 || load.workers <= 0 || load.work_us < 0 || load.period_us <= 0 ||
      load.hogs < 0 || load.hog_pct < 0 || load.hog_pct > 100) {
    std::fprintf(stderr,
                 "CUSTOMERS >= 200000 (the requests pick among the first 200000), SECONDS, WORKERS and "
                 "PERIOD_US > 0, WORK_US and HOGS >= 0, HOG_PCT 0-100\n");
    return 2;
  }
  const StateOptions options;
  std::printf(
      "%d customers, %d s of load: %d request threads (every %d us: an append and %d us of CPU), %d busy "
      "%d%% of the time, on %u cores\n",
      customers, load.seconds, load.workers, load.period_us, load.work_us, load.hogs, load.hog_pct,
      std::thread::hardware_concurrency());
  std::printf("%-12s %9s %9s %9s %9s %9s %9s %12s %14s\n", "mode", "requests", "p50 us", "p99 us", "p99.9 us", "max us",
              ">=20 ms", "locked steps", "compaction s");
  for (bool step_thread : {false, true}) {
    auto store = Fill(dir, customers, options);
    const Run r = Measure(store.get(), step_thread, load, options);
    const auto& a = r.append_us;
    auto q = [&](double p) { return a.empty() ? 0 : a[std::min(a.size() - 1, static_cast<size_t>(p * a.size()))]; };
    const auto slow = std::count_if(a.begin(), a.end(), [](int64_t us) { return us >= 20'000; });
    std::printf("%-12s %9zu %9ld %9ld %9ld %9ld %9ld %12ld %14.1f\n", step_thread ? "step thread" : "inline", a.size(),
                static_cast<long>(q(0.5)), static_cast<long>(q(0.99)), static_cast<long>(q(0.999)),
                static_cast<long>(a.empty() ? 0 : a.back()), static_cast<long>(slow), static_cast<long>(r.steps),
                r.compaction_s);
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
