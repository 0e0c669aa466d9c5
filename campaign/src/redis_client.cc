// One hiredis connection (redis_client.h).
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>

namespace qm::campaign {

namespace {

timeval Tv(long ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

RedisValue Convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.kind = RedisValue::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.kind = RedisValue::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.kind = RedisValue::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.kind = RedisValue::kArray;
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      break;
  }
  return v;
}

}  // namespace

Result<std::unique_ptr<RedisClient>> RedisClient::Connect(const policy::StoreConfig& c) {
  std::unique_ptr<RedisClient> client(new RedisClient(c));
  QM_RETURN_IF_ERROR(client->Reconnect());
  return client;
}

RedisClient::~RedisClient() {
  if (ctx_) redisFree(ctx_);
}

Status RedisClient::Reconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = redisConnectWithTimeout(config_.redis_host.c_str(), config_.redis_port, Tv(config_.redis_timeout));
  const std::string where = "redis " + config_.redis_host + ":" + std::to_string(config_.redis_port);
  if (!ctx_ || ctx_->err) {
    const std::string why = ctx_ ? ctx_->errstr : "out of memory";
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return Status::Unavailable(where + ": " + why);
  }
  sockaddr_storage local{}, peer{};  // a socket connected to itself (nothing listening): refused
  socklen_t ll = sizeof local, pl = sizeof peer;
  if (getsockname(ctx_->fd, reinterpret_cast<sockaddr*>(&local), &ll) == 0 &&
      getpeername(ctx_->fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0 && ll == pl &&
      std::memcmp(&local, &peer, ll) == 0) {
    redisFree(ctx_);
    ctx_ = nullptr;
    return Status::Unavailable(where + ": not listening (the connection reached itself)");
  }
  redisSetTimeout(ctx_, Tv(config_.redis_timeout));
  if (!config_.redis_password.empty()) {
    const std::string& pw = config_.redis_password;
    const std::string& user = config_.redis_user;
    auto* r = static_cast<redisReply*>(
        user.empty() ? redisCommand(ctx_, "AUTH %b", pw.data(), pw.size())
                     : redisCommand(ctx_, "AUTH %b %b", user.data(), user.size(), pw.data(), pw.size()));
    const bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) return Status::Unavailable(where + ": AUTH refused");
  }
  return Status::Ok();
}

Result<RedisValue> RedisClient::Run(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!ctx_) {
      Status st = Reconnect();
      if (!st.ok()) {
        if (attempt == 1) return st;
        continue;
      }
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
    if (!r) {  // the connection broke (or timed out): reconnect once
      const std::string why = ctx_->errstr;
      redisFree(ctx_);
      ctx_ = nullptr;
      if (attempt == 1) return Status::Unavailable("redis: " + why);
      continue;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string why(r->str, r->len);
      freeReplyObject(r);
      return Status::InvalidArgument("redis " + argv[0] + ": " + why);
    }
    RedisValue v = Convert(r);
    freeReplyObject(r);
    return v;
  }
  return Status::Unavailable("redis: no connection");
}

Result<RedisValue> RedisClient::Command(const std::vector<std::string>& argv) { return Run(argv); }

Result<RedisValue> RedisClient::Blocking(const std::vector<std::string>& argv, long timeout_ms) {
  if (!ctx_) QM_RETURN_IF_ERROR(Reconnect());
  redisSetTimeout(ctx_, Tv(timeout_ms + config_.redis_timeout));
  Result<RedisValue> r = Run(argv);
  if (ctx_) redisSetTimeout(ctx_, Tv(config_.redis_timeout));
  return r;
}

}  // namespace qm::campaign
