// Durability of the embedded store: a child process appends with sync and acknowledges each
// event on a pipe after Append returns; it is killed with SIGKILL mid-stream; every event it
// acknowledged must be in the reopened store, in the log and in the contact state. A fourth
// thread appends decisions (the decision log) the same way: every acknowledged one is kept.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "policy_test_util.h"

namespace qm::policy {
namespace {

using namespace qm::policy::testing;  // NOLINT

constexpr const char* kChildDirEnv = "QM_POLICY_CRASH_CHILD_DIR";
constexpr const char* kChildFdEnv = "QM_POLICY_CRASH_ACK_FD";
const TimeMs kT0 = 1709517600000;  // 2024-03-04T10:00+08:00

StoredEvent CrashEvent(uint32_t id) {
  StoredEvent e;
  e.ts = kT0 + id;
  e.customer_id = "c" + std::to_string(id % 13);
  e.item_id = "item" + std::to_string(id % 7);
  e.type = EventType::kImpression;
  e.channel = "app_home";
  e.request_id = "ack" + std::to_string(id);
  return e;
}

// Acknowledgements of decisions carry this bit.
constexpr uint32_t kDecisionAck = 0x80000000u;

DecisionRecord CrashDecision(uint32_t id) {
  DecisionRecord d;
  d.ts = kT0 + (id & 0xffffff);
  d.customer_id = "c" + std::to_string(id % 13);
  d.item_id = "item" + std::to_string(id % 7);
  d.channel = "app_home";
  d.request_id = "dec" + std::to_string(id);
  d.model_version = "v1";
  return d;
}

// Runs only inside the child process the crash test starts (skipped otherwise).
TEST(CrashChild, AppendsAndAcknowledgesUntilKilled) {
  const char* dir = std::getenv(kChildDirEnv);
  const char* fd_s = std::getenv(kChildFdEnv);
  if (!dir || !fd_s) GTEST_SKIP() << "only runs as the child of Crash.KillNineLosesNoAcknowledgedEvent";
  const int fd = std::atoi(fd_s);
  StoreConfig c;
  c.path = dir;
  c.sync = true;
  auto store = EventStore::Open(c);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (uint32_t i = 0; i < 200000; ++i) {
      uint32_t id = kDecisionAck | i;
      if (!(*store)->AppendDecisions({CrashDecision(id)}).ok()) _exit(5);
      if (write(fd, &id, sizeof id) != sizeof id) _exit(4);
    }
  });
  for (uint32_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 200000; ++i) {
        uint32_t id = t << 24 | i;
        std::vector<StoredEvent> batch = {CrashEvent(id)};
        if (!(*store)->Append(batch, StateOptions{}).ok()) _exit(3);
        if (write(fd, &id, sizeof id) != sizeof id) _exit(4);
      }
    });
  }
  for (auto& th : threads) th.join();
  _exit(0);
}

TEST(Crash, KillNineLosesNoAcknowledgedEvent) {
  TempDir dir;
  const std::string path = dir.path() + "/store";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    setenv(kChildDirEnv, path.c_str(), 1);
    setenv(kChildFdEnv, std::to_string(fds[1]).c_str(), 1);
    execl("/proc/self/exe", "qm_policy_test", "--gtest_filter=CrashChild.*", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::set<uint32_t> acked;
  auto read_one = [&]() -> bool {
    uint32_t id;
    size_t got = 0;
    while (got < sizeof id) {
      ssize_t n = read(fds[0], reinterpret_cast<char*>(&id) + got, sizeof id - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    acked.insert(id);
    return true;
  };
  // Let it get well into the stream, then kill it at an arbitrary moment.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (acked.size() < 400 && std::chrono::steady_clock::now() < deadline && read_one()) {
  }
  ASSERT_GE(acked.size(), 50u) << "the child did not acknowledge events";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  while (read_one()) {
  }  // acknowledgements written before the kill
  close(fds[0]);

  StoreConfig c;
  c.path = path;
  auto store = EventStore::Open(c);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::set<std::string> in_log;
  ASSERT_TRUE((*store)
                  ->Export([&](const StoredEvent& e) {
                    in_log.insert(e.request_id);
                    return true;
                  })
                  .ok());
  std::set<std::string> decided;
  ASSERT_TRUE((*store)
                  ->ExportDecisions([&](const DecisionRecord& d) {
                    decided.insert(d.request_id);
                    return true;
                  })
                  .ok());
  size_t missing_log = 0, missing_state = 0, missing_decisions = 0, acked_decisions = 0;
  std::map<std::string, std::set<std::string>> state_ids;
  for (uint32_t id : acked) {
    if (id & kDecisionAck) {
      ++acked_decisions;
      if (!decided.count(CrashDecision(id).request_id)) ++missing_decisions;
      continue;
    }
    StoredEvent e = CrashEvent(id);
    if (!in_log.count(e.request_id)) ++missing_log;
    auto it = state_ids.find(e.customer_id);
    if (it == state_ids.end()) {
      auto st = (*store)->State(e.customer_id);
      ASSERT_TRUE(st.ok());
      std::set<std::string> ids;
      for (const ContactRecord& r : st->records) ids.insert(r.request_id);
      it = state_ids.emplace(e.customer_id, std::move(ids)).first;
    }
    if (!it->second.count(e.request_id)) ++missing_state;
  }
  EXPECT_EQ(missing_log, 0u) << "of " << acked.size() << " acknowledged events";
  EXPECT_EQ(missing_state, 0u) << "counters not recovered";
  EXPECT_GE(in_log.size(), acked.size() - acked_decisions);
  EXPECT_GT(acked_decisions, 0u) << "the decision thread acknowledged nothing";
  EXPECT_EQ(missing_decisions, 0u) << "of " << acked_decisions << " acknowledged decisions";
}

}  // namespace
}  // namespace qm::policy
