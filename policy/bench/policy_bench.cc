// qm_policy_bench: contact-policy throughput and latency for both event-store backends.
//   BM_CheckAndCount/<backend>/threads:N   one push check-and-count (1 candidate, take 1)
//   BM_RequestPolicy/<backend>             one app_home request: ~300 candidates, take 10
//   BM_RequestCheckOnly/<backend>          the same, dry run (`score`/batch recommend)
//   BM_EvaluateOnly                        the pure evaluator, no store
// Request benchmarks report p50/p99 in microseconds as counters. Redis runs against a private
// redis-server on a free 127.0.0.1 port, started and stopped by this program (or, with
// QM_BENCH_REDIS_PORT=P, against a running server on 127.0.0.1:P; QM_BENCH_REDIS_CLUSTER=1: P is a
// node of a Redis Cluster).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "qianmian/core/time.h"
#include "qianmian/policy/policy.h"

namespace qm::policy {
namespace {

constexpr int kCustomers = 20000;
constexpr int kItems = 300;

struct RedisChild {
  pid_t pid = -1;
  int port = 0;
  bool Start() {
    if (const char* ext = std::getenv("QM_BENCH_REDIS_PORT")) {  // use a running server instead
      port = std::atoi(ext);
      return port > 0;
    }
    if (access("/usr/bin/redis-server", X_OK) != 0) return false;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    port = ntohs(a.sin_port);
    std::string p = std::to_string(port);
    pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in b = a;
      b.sin_port = htons(static_cast<uint16_t>(port));
      bool ok = connect(s, reinterpret_cast<sockaddr*>(&b), sizeof b) == 0;
      close(s);
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  ~RedisChild() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int st;
      waitpid(pid, &st, 0);
    }
  }
};

struct World {
  TimeZone tz = TimeZone::Load("Asia/Shanghai").value();
  ChannelRegistry channels;
  std::vector<Item> items;
  std::vector<std::string> categories, campaigns;
  std::vector<Candidate> candidates;
  std::vector<Customer> customers;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<EventStore> embedded, redis;
  RedisChild redis_server;
  std::string dir;
  std::atomic<TimeMs> clock{0};
  TimeMs t0 = 0;

  World() {
    t0 = ParseTime("2024-03-04T10:00", tz).value();
    clock = t0;
    PolicyConfig pc;  // the defaults, plus a category cap and a home cooldown-free channel cap
    pc.caps.push_back(
        {"home_daily", CapScope::kCustomerChannel, "app_home", "impression", 200, kMsPerDay, WindowKind::kRolling});
    pc.caps.push_back(
        {"category_weekly", CapScope::kCustomerCategory, "", "contact", 50, 7 * kMsPerDay, WindowKind::kRolling});
    policy = std::make_unique<Policy>(Policy::Create(pc, channels, tz).value());
    std::mt19937 rng(7);
    items.resize(kItems);
    for (int i = 0; i < kItems; ++i) {
      Item& it = items[i];
      it.id = "item" + std::to_string(i);
      it.kind = i % 3 == 0 ? ItemKind::kProduct : ItemKind::kContent;
      it.risk = it.kind == ItemKind::kProduct ? static_cast<RiskLevel>(rng() % 4) : kNoRisk;
      categories.push_back("cat" + std::to_string(i % 12));
      campaigns.push_back(i % 5 == 0 ? "camp" + std::to_string(i % 7) : "");
    }
    for (int i = 0; i < kItems; ++i) {
      candidates.push_back({&items[i], static_cast<uint32_t>(i), categories[i], campaigns[i]});
    }
    customers.resize(kCustomers);
    for (int c = 0; c < kCustomers; ++c) {
      customers[c].id = "cust" + std::to_string(c);
      customers[c].risk = static_cast<RiskLevel>(1 + rng() % 5);
      customers[c].risk_assessed = t0 - 30 * kMsPerDay;
    }
    dir = (std::filesystem::temp_directory_path() / ("qm_policy_bench_" + std::to_string(getpid()))).string();
    std::filesystem::remove_all(dir);
    StoreConfig ec;
    ec.path = dir;
    ec.sync = true;
    embedded = EventStore::Open(ec).value();
    if (redis_server.Start()) {
      StoreConfig rc;
      rc.backend = "redis";
      rc.redis_port = redis_server.port;
      rc.redis_connections = 16;
      // QM_BENCH_REDIS_CLUSTER=1 with QM_BENCH_REDIS_PORT: that port is a node of a Redis Cluster.
      const char* cluster = std::getenv("QM_BENCH_REDIS_CLUSTER");
      rc.redis_cluster = cluster != nullptr && std::string(cluster) == "1";
      auto r = EventStore::Open(rc);
      if (r.ok()) redis = std::move(r).value();
    }
    // History: 30 events a customer over the last week, for the first 2000 customers.
    std::vector<StoredEvent> evs;
    for (int c = 0; c < 2000; ++c) {
      for (int k = 0; k < 30; ++k) {
        int i = static_cast<int>(rng() % kItems);
        StoredEvent e;
        e.ts = t0 - static_cast<TimeMs>(rng() % (7 * kMsPerDay));
        e.customer_id = customers[c].id;
        e.item_id = items[i].id;
        e.type = k % 10 == 0 ? EventType::kClick : (k % 7 == 0 ? EventType::kPushSent : EventType::kImpression);
        e.channel = e.type == EventType::kPushSent ? "wechat_push" : "app_home";
        e.request_id = "seed" + std::to_string(c) + "_" + std::to_string(k);
        e.category = categories[i];
        e.campaign = campaigns[i];
        evs.push_back(e);
      }
      if (evs.size() >= 3000) {
        (void)policy->Record(embedded.get(), evs);
        if (redis) (void)policy->Record(redis.get(), evs);
        evs.clear();
      }
    }
  }
  ~World() {
    embedded.reset();
    std::filesystem::remove_all(dir);
  }
  EventStore* Store(int backend) { return backend == 0 ? embedded.get() : redis.get(); }
};

World& W() {
  static World w;
  return w;
}

const char* Name(int backend) { return backend == 0 ? "embedded" : "redis"; }

void Percentiles(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  state.counters["max_us"] = us.back();
}

// One check-and-count for a random customer (app_home reservation: 1 candidate, take 1, durable).
// `taken` is the share of operations that counted (and so wrote).
void BM_CheckAndCount(benchmark::State& state) {
  World& w = W();
  EventStore* store = w.Store(static_cast<int>(state.range(0)));
  if (!store) {
    state.SkipWithError("redis-server unavailable");
    return;
  }
  std::mt19937 rng(static_cast<uint32_t>(state.thread_index() * 7919 + 1));
  uint64_t n = 0, taken = 0;
  for (auto _ : state) {
    const Customer& c = w.customers[rng() % kCustomers];
    std::vector<Candidate> one = {w.candidates[1 + rng() % (kItems - 1)]};
    TimeMs now = w.clock.fetch_add(1);
    auto r = w.policy->Reserve(store, c, one, kAppHome, now,
                               "op" + std::to_string(state.thread_index()) + "_" + std::to_string(n++), 1);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    taken += r->decisions[0].taken;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["taken"] =
      benchmark::Counter(static_cast<double>(taken) / std::max<uint64_t>(1, n), benchmark::Counter::kAvgThreads);
  state.SetLabel(Name(static_cast<int>(state.range(0))));
}

// One app_home request: every rule over ~300 candidates, reserve the best 10.
void RequestBench(benchmark::State& state, bool reserve) {
  World& w = W();
  EventStore* store = w.Store(static_cast<int>(state.range(0)));
  if (!store) {
    state.SkipWithError("redis-server unavailable");
    return;
  }
  std::mt19937 rng(11);
  std::vector<double> us;
  uint64_t n = 0;
  for (auto _ : state) {
    const Customer& c = w.customers[rng() % 2000];  // customers with history
    TimeMs now = w.clock.fetch_add(1);
    auto t = std::chrono::steady_clock::now();
    if (reserve) {
      auto r = w.policy->Reserve(store, c, w.candidates, kAppHome, now, "req" + std::to_string(n++), 10);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        break;
      }
    } else {
      auto r = w.policy->Check(store, c, w.candidates, kAppHome, now);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        break;
      }
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  Percentiles(state, us);
  state.SetLabel(Name(static_cast<int>(state.range(0))));
}
void BM_RequestPolicy(benchmark::State& state) { RequestBench(state, true); }
void BM_RequestCheckOnly(benchmark::State& state) { RequestBench(state, false); }

void BM_EvaluateOnly(benchmark::State& state) {
  World& w = W();
  std::mt19937 rng(3);
  std::vector<double> us;
  for (auto _ : state) {
    const Customer& c = w.customers[rng() % 2000];
    auto st = w.embedded->State(c.id).value();
    auto t = std::chrono::steady_clock::now();
    auto d = w.policy->Evaluate(c, w.candidates, kAppHome, w.clock.load(), st);
    benchmark::DoNotOptimize(d);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  Percentiles(state, us);
}

BENCHMARK(BM_CheckAndCount)->Arg(0)->Arg(1)->Threads(1)->Threads(4)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RequestPolicy)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RequestCheckOnly)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_EvaluateOnly)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

}  // namespace
}  // namespace qm::policy

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  qm::policy::W();  // build the bank, the stores and their history before timing anything
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
