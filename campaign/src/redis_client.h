// Module campaign (private): one hiredis connection, for the trigger outbox and the event stream.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/policy/policy_config.h"

struct redisContext;
struct redisReply;

namespace qm::campaign {

// A reply as plain values: a status/string/integer/nil, or an array of replies.
struct RedisValue {
  enum Kind { kNil, kString, kInteger, kArray, kStatus } kind = kNil;
  std::string str;
  long long integer = 0;
  std::vector<RedisValue> elements;
};

class RedisClient {
 public:
  // Connects to the store's Redis (host, port, password, timeout). Unavailable when it cannot.
  [[nodiscard]] static Result<std::unique_ptr<RedisClient>> Connect(const policy::StoreConfig& c);
  ~RedisClient();
  // Runs one command. A Redis error reply is an error (Unavailable for connection trouble, after
  // one reconnect; InvalidArgument for the server's error reply, with its text).
  [[nodiscard]] Result<RedisValue> Command(const std::vector<std::string>& argv);
  // As Command, with a socket timeout of `timeout_ms` for this call (XREADGROUP ... BLOCK).
  [[nodiscard]] Result<RedisValue> Blocking(const std::vector<std::string>& argv, long timeout_ms);

 private:
  explicit RedisClient(policy::StoreConfig c) : config_(std::move(c)) {}
  Status Reconnect();
  Result<RedisValue> Run(const std::vector<std::string>& argv);

  policy::StoreConfig config_;
  redisContext* ctx_ = nullptr;
};

}  // namespace qm::campaign
