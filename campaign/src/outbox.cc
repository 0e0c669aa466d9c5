// The trigger outbox (trigger.h): JSON lines per UTC minute in a folder, or a Redis stream.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "qianmian/campaign/trigger.h"
#include "redis_client.h"

namespace qm::campaign {

namespace {

namespace fs = std::filesystem;

// <folder>/YYYYMMDD-HHMM.jsonl, a line per decision, appended and fsync'd before Append returns.
class FileOutbox : public Outbox {
 public:
  explicit FileOutbox(std::string dir) : dir_(std::move(dir)) {}
  ~FileOutbox() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const std::vector<TriggerDecision>& sent) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::string> by_file;
    for (const TriggerDecision& d : sent) {
      const std::string iso = FormatIsoUtc(d.decided_ms);  // 2026-12-05T18:40:12Z
      const std::string name = iso.substr(0, 4) + iso.substr(5, 2) + iso.substr(8, 2) + "-" + iso.substr(11, 2) +
                               iso.substr(14, 2) + ".jsonl";
      by_file[name] += DecisionJson(d) + "\n";
    }
    for (const auto& [name, lines] : by_file) QM_RETURN_IF_ERROR(Write(name, lines));
    return Status::Ok();
  }

  std::string describe() const override { return dir_; }

 private:
  Status Write(const std::string& name, const std::string& lines) {
    const std::string path = dir_ + "/" + name;
    if (name != file_) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      std::error_code ec;
      fs::create_directories(dir_, ec);
      fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd_ < 0) return Status::IoError("trigger outbox " + path + ": " + std::strerror(errno));
      file_ = name;
      const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // the new name is durable
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    size_t done = 0;
    while (done < lines.size()) {
      const ssize_t n = ::write(fd_, lines.data() + done, lines.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::IoError("trigger outbox " + path + ": " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd_) != 0) return Status::IoError("trigger outbox " + path + ": " + std::strerror(errno));
    return Status::Ok();
  }

  std::string dir_;
  std::mutex mu_;
  std::string file_;  // the open file's name (guarded by mu_)
  int fd_ = -1;
};

// XADD <key> * key <idempotency key> decision <json>, one entry per decision.
class RedisOutbox : public Outbox {
 public:
  RedisOutbox(std::string key, std::unique_ptr<RedisClient> client)
      : key_(std::move(key)), client_(std::move(client)) {}

  Status Append(const std::vector<TriggerDecision>& sent) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const TriggerDecision& d : sent) {
      QM_RETURN_IF_ERROR(client_->Command({"XADD", key_, "*", "key", d.key, "decision", DecisionJson(d)}).status());
    }
    return Status::Ok();
  }

  std::string describe() const override { return "redis:" + key_; }

 private:
  std::string key_;
  std::mutex mu_;
  std::unique_ptr<RedisClient> client_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<Outbox>> OpenOutbox(const std::string& spec, const policy::StoreConfig& store) {
  if (spec.empty()) return Status::InvalidArgument("trigger outbox: empty (a folder, or redis:<stream key>)");
  if (spec.rfind("redis:", 0) == 0) {
    const std::string key = spec.substr(6);
    if (key.empty()) return Status::InvalidArgument("trigger outbox '" + spec + "': redis:<stream key>");
    if (store.redis_cluster) {
      // The stream is one key: any node would do, but this client does not follow MOVED replies.
      return Status::InvalidArgument("trigger outbox '" + spec + "': a Redis stream outbox needs a standalone Redis");
    }
    QM_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, RedisClient::Connect(store));
    return std::unique_ptr<Outbox>(new RedisOutbox(key, std::move(client)));
  }
  std::error_code ec;
  fs::create_directories(spec, ec);
  if (ec) return Status::IoError("trigger outbox " + spec + ": " + ec.message());
  return std::unique_ptr<Outbox>(new FileOutbox(spec));
}

}  // namespace qm::campaign
