// Helpers shared by the policy tests: a small seeded bank, times in Asia/Shanghai, temporary
// folders and a private redis-server on a loopback port.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy.h"

namespace qm::policy::testing {

inline const TimeZone& Shanghai() {
  static const TimeZone tz = TimeZone::Load("Asia/Shanghai").value();
  return tz;
}

// Local time in Asia/Shanghai, e.g. At("2024-03-04T10:00").
inline TimeMs At(const char* local) { return ParseTime(local, Shanghai()).value(); }

inline ChannelRegistry Channels() {
  ChannelRegistry r;
  (void)r.Declare("sms");
  return r;
}
inline constexpr ChannelId kSms = 2;

// A folder removed when the object dies.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("qm_policy_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A redis-server child on a free 127.0.0.1 port, started on first use, stopped at exit.
class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  static bool Installed() { return access(kBinary, X_OK) == 0; }

  // The shared server's port, or 0 when it could not start.
  static int Port() {
    static RedisServer server;  // stopped by its destructor at exit
    return server.port_;
  }
  ~RedisServer() { Stop(); }

 private:
  RedisServer() {
    if (!Start()) port_ = 0;
  }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return 0;
    }
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
  }

  static bool CanConnect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
  }

  bool Start() {
    if (!Installed()) return false;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePort();
      if (port_ == 0) continue;
      std::string port = std::to_string(port_);
      pid_ = fork();
      if (pid_ == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
          dup2(devnull, 1);
          dup2(devnull, 2);
        }
        execl(kBinary, kBinary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--daemonize", "no", static_cast<char*>(nullptr));
        _exit(127);
      }
      for (int i = 0; i < 200; ++i) {
        if (CanConnect(port_)) return true;
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      Stop();
    }
    return false;
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
      pid_ = -1;
    }
  }

  int port_ = 0;
  pid_t pid_ = -1;
};

// Store configuration for a backend: a fresh folder (embedded) or a fresh key prefix (redis).
inline StoreConfig StoreFor(const std::string& backend, const std::string& dir) {
  static std::atomic<int> n{0};
  StoreConfig c;
  c.backend = backend;
  c.path = dir + "/store";
  c.sync = false;  // tests of semantics; durability has its own test
  c.redis_port = backend == "redis" ? RedisServer::Port() : 0;
  c.redis_prefix = "t" + std::to_string(getpid()) + "_" + std::to_string(n++);
  return c;
}

// A tiny catalog: items own their strings; candidates point into it.
struct Bank {
  std::vector<Item> items;
  std::vector<std::string> categories, campaigns;  // per item

  uint32_t Add(const std::string& id, ItemKind kind, std::string category = "", std::string campaign = "") {
    Item it;
    it.id = id;
    it.kind = kind;
    items.push_back(it);
    categories.push_back(std::move(category));
    campaigns.push_back(std::move(campaign));
    return static_cast<uint32_t>(items.size() - 1);
  }
  Item& operator[](uint32_t i) { return items[i]; }

  Candidate Cand(uint32_t i) const { return Candidate{&items[i], i, categories[i], campaigns[i]}; }
  std::vector<Candidate> Cands(std::initializer_list<uint32_t> ids) const {
    std::vector<Candidate> v;
    for (uint32_t i : ids) v.push_back(Cand(i));
    return v;
  }
  std::vector<Candidate> All() const {
    std::vector<Candidate> v;
    for (uint32_t i = 0; i < items.size(); ++i) v.push_back(Cand(i));
    return v;
  }
  StoredEvent Event(const std::string& customer, uint32_t item, EventType type, const std::string& channel, TimeMs ts,
                    std::string request = "") const {
    StoredEvent e;
    e.ts = ts;
    e.customer_id = customer;
    e.item_id = items[item].id;
    e.type = type;
    e.channel = channel;
    e.request_id = std::move(request);
    e.campaign = campaigns[item];
    e.category = categories[item];
    e.service = items[item].service;
    return e;
  }
};

inline Customer MakeCustomer(const std::string& id) {
  Customer c;
  c.id = id;
  return c;
}

inline Policy MakePolicy(PolicyConfig config) {
  return Policy::Create(std::move(config), Channels(), Shanghai()).value();
}

// A configuration with no rules at all; tests add the one they exercise.
inline PolicyConfig NoRules() {
  PolicyConfig c;
  c.caps.clear();
  c.cooldowns.clear();
  c.quiet_hours.clear();
  return c;
}

inline bool Has(const Decision& d, const std::string& rule) {
  for (const std::string& b : d.blocked_by)
    if (b == rule) return true;
  return false;
}

// Why a test of `backend` ("embedded" or "redis") is skipped: "" when it can run; for redis, when
// redis-server is not installed. (Installed but unable to start is a failure: RedisServer::Port()
// is then 0, and BackendStarted says so.)
inline std::string SkipReason(const std::string& backend) {
  return backend == "redis" && !RedisServer::Installed() ? std::string(RedisServer::kBinary) + " is not installed" : "";
}
inline bool BackendStarted(const std::string& backend) { return backend != "redis" || RedisServer::Port() != 0; }

}  // namespace qm::policy::testing
