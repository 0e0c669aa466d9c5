// A DEALER socket per Client. Each request travels as [tag, "", body]: the server echoes every
// frame before the empty delimiter, so replies are matched by tag, whatever the body holds.
#include "qianmian/client/client.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <zmq.hpp>

namespace qm::client {

namespace {

using Clock = std::chrono::steady_clock;
using Packer = msgpack::packer<msgpack::sbuffer>;

void PackStr(Packer& pk, const std::string& s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

std::string EncodeRecommend(const RecommendRequest& r) {
  msgpack::sbuffer buf;
  Packer pk(&buf);
  const uint32_t n = 4 + (r.now_ms != kNoTime) + (r.deadline_ms > 0) + r.debug;
  pk.pack_map(n);
  PackStr(pk, "op");
  PackStr(pk, "recommend");
  PackStr(pk, "customer_id");
  PackStr(pk, r.customer_id);
  PackStr(pk, "channel");
  PackStr(pk, r.channel);
  PackStr(pk, "count");
  pk.pack(r.count);
  if (r.now_ms != kNoTime) {
    PackStr(pk, "now_ms");
    pk.pack(r.now_ms);
  }
  if (r.deadline_ms > 0) {
    PackStr(pk, "deadline_ms");
    pk.pack(r.deadline_ms);
  }
  if (r.debug) {
    PackStr(pk, "debug");
    pk.pack_true();
  }
  return std::string(buf.data(), buf.size());
}

std::string AsString(const msgpack::object& o) {
  return o.type == msgpack::type::STR ? std::string(o.via.str.ptr, o.via.str.size) : std::string();
}

bool KeyIs(const msgpack::object& k, const char* name) {
  return k.type == msgpack::type::STR && k.via.str.size == std::strlen(name) &&
         std::memcmp(k.via.str.ptr, name, k.via.str.size) == 0;
}

Status DecodeRecommend(const std::string& bytes, RecommendReply* out) {
  *out = RecommendReply();
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::MAP) return Status::Internal("reply is not a msgpack map");
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const auto& k = root.via.map.ptr[i].key;
      const auto& v = root.via.map.ptr[i].val;
      if (KeyIs(k, "ok")) {
        out->ok = v.type == msgpack::type::BOOLEAN && v.via.boolean;
      } else if (KeyIs(k, "error") && v.type == msgpack::type::MAP) {
        for (uint32_t j = 0; j < v.via.map.size; ++j) {
          if (KeyIs(v.via.map.ptr[j].key, "code")) out->error_code = AsString(v.via.map.ptr[j].val);
          if (KeyIs(v.via.map.ptr[j].key, "message")) out->error_message = AsString(v.via.map.ptr[j].val);
        }
      } else if (KeyIs(k, "request_id")) {
        out->request_id = AsString(v);
      } else if (KeyIs(k, "model_version")) {
        out->model_version = AsString(v);
      } else if (KeyIs(k, "took_us") && v.type == msgpack::type::POSITIVE_INTEGER) {
        out->took_us = static_cast<int64_t>(v.via.u64);
      } else if (KeyIs(k, "items") && v.type == msgpack::type::ARRAY) {
        out->items.resize(v.via.array.size);
        for (uint32_t j = 0; j < v.via.array.size; ++j) {
          const auto& m = v.via.array.ptr[j];
          if (m.type != msgpack::type::MAP) continue;
          RecommendedItem& it = out->items[j];
          for (uint32_t f = 0; f < m.via.map.size; ++f) {
            const auto& fk = m.via.map.ptr[f].key;
            const auto& fv = m.via.map.ptr[f].val;
            if (KeyIs(fk, "item_id"))
              it.item_id = AsString(fv);
            else if (KeyIs(fk, "kind"))
              it.kind = AsString(fv);
            else if (KeyIs(fk, "score") && (fv.type == msgpack::type::FLOAT64 || fv.type == msgpack::type::FLOAT32))
              it.score = fv.via.f64;
            else if (KeyIs(fk, "reasons") && fv.type == msgpack::type::ARRAY) {
              for (uint32_t r = 0; r < fv.via.array.size; ++r) it.reasons.push_back(AsString(fv.via.array.ptr[r]));
            }
          }
        }
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot decode the reply: ") + e.what());
  }
  return Status::Ok();
}

// The error code of a msgpack reply ("" when ok or unreadable).
std::string ReplyErrorCode(const std::string& reply) {
  nlohmann::json r = nlohmann::json::from_msgpack(reply, /*strict=*/true, /*allow_exceptions=*/false);
  if (!r.is_object() || r.value("ok", true) || !r.contains("error") || !r["error"].is_object()) return "";
  return r["error"].value("code", "");
}

}  // namespace

bool RetryableReply(const std::string& op, const std::string& code) {
  if (code == "overloaded") return true;
  return code == "unavailable" && op != "recommend" && op != "reload";
}

struct Client::Impl {
  ClientOptions options;
  int64_t retried = 0;
  std::mt19937_64 rng{std::random_device{}()};

  // Call, sent again while the reply is retryable for `op` (ClientOptions::retries).
  Result<std::string> CallRetrying(const void* data, size_t size, const std::string& op) {
    for (int attempt = 0;; ++attempt) {
      QM_ASSIGN_OR_RETURN(std::string reply, Call(data, size));
      if (attempt >= options.retries || !RetryableReply(op, ReplyErrorCode(reply))) return reply;
      const double cap = std::min<double>(static_cast<double>(options.max_backoff_ms),
                                          static_cast<double>(options.backoff_ms) * std::ldexp(1.0, attempt));
      const double wait_ms = std::uniform_real_distribution<double>(0.0, std::max(cap, 0.0))(rng);
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(wait_ms * 1000)));
      ++retried;
    }
  }
  // The ZeroMQ context (its I/O thread); shared by the connections of one ConnectMany. Declared
  // before the socket, so the socket closes first.
  std::shared_ptr<zmq::context_t> ctx = std::make_shared<zmq::context_t>(1);
  std::unique_ptr<zmq::socket_t> socket;
  uint64_t next_tag = 1;

  Status Open() {
    try {
      auto s = std::make_unique<zmq::socket_t>(*ctx, zmq::socket_type::dealer);
      s->set(zmq::sockopt::linger, 0);
      s->set(zmq::sockopt::sndhwm, 100000);
      s->set(zmq::sockopt::rcvhwm, 100000);
      s->set(zmq::sockopt::reconnect_ivl, 50);
      s->set(zmq::sockopt::reconnect_ivl_max, 1000);
      if (!options.curve_server_key.empty()) {
        for (const std::string* k : {&options.curve_server_key, &options.curve_public_key, &options.curve_secret_key}) {
          if (k->size() != 40) {
            return Status::InvalidArgument(
                "CURVE: the server's public key and this client's key pair must be Z85 keys");
          }
        }
        s->set(zmq::sockopt::curve_serverkey, options.curve_server_key);
        s->set(zmq::sockopt::curve_publickey, options.curve_public_key);
        s->set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
      }
      const std::vector<std::string> endpoints = Endpoints(options.endpoint);
      if (endpoints.size() > 1) {  // replicas: only to live connections, a dead one dropped
        s->set(zmq::sockopt::immediate, 1);
        s->set(zmq::sockopt::sndtimeo, static_cast<int>(options.timeout_ms));
        s->set(zmq::sockopt::heartbeat_ivl, 1000);
        s->set(zmq::sockopt::heartbeat_timeout, 3000);
      }
      for (const std::string& e : endpoints) {
        try {
          s->connect(e);
        } catch (const zmq::error_t& err) {
          return Status::InvalidArgument("cannot connect to '" + e + "': " + err.what());
        }
      }
      socket = std::move(s);
    } catch (const zmq::error_t& e) {
      return Status::InvalidArgument("cannot connect to '" + options.endpoint + "': " + e.what());
    }
    return Status::Ok();
  }

  // The comma-separated addresses of `endpoint` (InvalidArgument-worthy when one is empty: caught
  // by connect).
  static std::vector<std::string> Endpoints(const std::string& endpoint) {
    std::vector<std::string> out;
    size_t from = 0;
    for (;;) {
      const size_t comma = endpoint.find(',', from);
      out.push_back(endpoint.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
      if (comma == std::string::npos) return out;
      from = comma + 1;
    }
  }

  Result<uint64_t> Send(const void* data, size_t size) {
    const uint64_t tag = next_tag++;
    try {
      // With replicas (ZMQ_IMMEDIATE) a send waits up to timeout_ms for a live connection.
      if (!socket->send(zmq::const_buffer(&tag, sizeof tag), zmq::send_flags::sndmore)) {
        return Status::DeadlineExceeded("no replica of '" + options.endpoint + "' connected within " +
                                        std::to_string(options.timeout_ms) + " ms");
      }
      socket->send(zmq::const_buffer(), zmq::send_flags::sndmore);
      socket->send(zmq::const_buffer(data, size), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(std::string("send failed: ") + e.what());
    }
    return tag;
  }

  // Waits up to `timeout` for the next well-formed reply; false on timeout. Waits on the
  // socket's file descriptor with ppoll, to the microsecond (zmq_poll counts milliseconds):
  // ZMQ_EVENTS is checked before every wait, as the descriptor only signals changes.
  Result<bool> Next(std::chrono::microseconds timeout, uint64_t* tag, std::string* body) {
    const auto until = Clock::now() + timeout;
    try {
      const int fd = socket->get(zmq::sockopt::fd);
      for (;;) {
        if (!(socket->get(zmq::sockopt::events) & ZMQ_POLLIN)) {
          const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - Clock::now()).count();
          if (left <= 0) return false;
          pollfd p{fd, POLLIN, 0};
          const timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
          ::ppoll(&p, 1, &ts, nullptr);  // EINTR or a wake without a message: check again
          continue;
        }
        std::vector<zmq::message_t> parts;
        bool more = true;
        while (more) {
          zmq::message_t m;
          (void)socket->recv(m);
          more = m.more();
          parts.push_back(std::move(m));
        }
        if (parts.size() != 3 || parts[0].size() != sizeof(uint64_t) || parts[1].size() != 0) continue;
        std::memcpy(tag, parts[0].data(), sizeof(uint64_t));
        body->assign(static_cast<const char*>(parts[2].data()), parts[2].size());
        return true;
      }
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(std::string("receive failed: ") + e.what());
    }
  }

  // One request, one reply; on timeout the socket is reopened (late replies die with it).
  Result<std::string> Call(const void* data, size_t size) {
    QM_ASSIGN_OR_RETURN(uint64_t want, Send(data, size));
    const auto until = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
    std::string body;
    for (;;) {
      const TimeMs left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      uint64_t tag = 0;
      QM_ASSIGN_OR_RETURN(bool got, Next(std::chrono::milliseconds(std::max<TimeMs>(left, 0)), &tag, &body));
      if (!got) {
        QM_RETURN_IF_ERROR(Open());
        return Status::DeadlineExceeded("no reply from " + options.endpoint + " within " +
                                        std::to_string(options.timeout_ms) + " ms");
      }
      if (tag == want) return body;
    }
  }
};

namespace {

Status CheckOptions(const ClientOptions& options) {
  if (options.timeout_ms <= 0) return Status::InvalidArgument("timeout_ms must be > 0");
  if (options.retries < 0 || options.backoff_ms < 0 || options.max_backoff_ms < 0) {
    return Status::InvalidArgument("retries, backoff_ms and max_backoff_ms must be >= 0");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  QM_RETURN_IF_ERROR(CheckOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  QM_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::vector<std::unique_ptr<Client>>> Client::ConnectMany(const ClientOptions& options, int n) {
  QM_RETURN_IF_ERROR(CheckOptions(options));
  if (n < 1) return Status::InvalidArgument("ConnectMany needs at least one connection");
  std::vector<std::unique_ptr<Client>> out;
  std::shared_ptr<zmq::context_t> ctx;
  for (int i = 0; i < n; ++i) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    if (ctx) impl->ctx = ctx;
    ctx = impl->ctx;
    QM_RETURN_IF_ERROR(impl->Open());
    out.push_back(std::unique_ptr<Client>(new Client(std::move(impl))));
  }
  return out;
}

Result<bool> Client::WaitAny(const std::vector<Client*>& clients, std::chrono::microseconds timeout) {
  const auto until = Clock::now() + timeout;
  std::vector<pollfd> fds(clients.size());
  try {
    for (;;) {
      // ZMQ_EVENTS first: a descriptor only signals changes, so a reply already queued on a
      // socket may not wake it.
      for (size_t i = 0; i < clients.size(); ++i) {
        zmq::socket_t& s = *clients[i]->impl_->socket;
        if (s.get(zmq::sockopt::events) & ZMQ_POLLIN) return true;
        fds[i] = pollfd{s.get(zmq::sockopt::fd), POLLIN, 0};
      }
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      const timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      ::ppoll(fds.data(), fds.size(), &ts, nullptr);  // EINTR or a wake without a message: check again
    }
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("wait failed: ") + e.what());
  }
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const std::string& Client::endpoint() const { return impl_->options.endpoint; }
int64_t Client::retried() const { return impl_->retried; }

Result<std::string> Client::CallRaw(const std::string& frame) { return impl_->Call(frame.data(), frame.size()); }

Result<std::string> Client::CallJson(const std::string& request_json) {
  nlohmann::json j = nlohmann::json::parse(request_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("the request must be a JSON object");
  std::vector<uint8_t> bytes;
  try {
    bytes = nlohmann::json::to_msgpack(j);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("cannot encode the request: ") + e.what());
  }
  const std::string op = j.contains("op") && j["op"].is_string() ? j["op"].get<std::string>() : "";
  QM_ASSIGN_OR_RETURN(std::string reply, impl_->CallRetrying(bytes.data(), bytes.size(), op));
  try {
    return nlohmann::json::from_msgpack(reply).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot decode the reply: ") + e.what());
  }
}

Result<JsonReply> Client::Call(const std::string& op, const std::string& fields_json) {
  nlohmann::json j = fields_json.empty() ? nlohmann::json::object()
                                         : nlohmann::json::parse(fields_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("the request fields must be a JSON object");
  if (j.contains("op") && j["op"] != op) return Status::InvalidArgument("the JSON names another op than '" + op + "'");
  j["op"] = op;
  QM_ASSIGN_OR_RETURN(std::string text, CallJson(j.dump()));
  JsonReply out;
  out.json = std::move(text);
  nlohmann::json r = nlohmann::json::parse(out.json, nullptr, false);
  out.ok = r.is_object() && r.value("ok", false) == true;
  if (!out.ok && r.is_object() && r.contains("error") && r["error"].is_object()) {
    out.error_code = r["error"].value("code", "");
    out.error_message = r["error"].value("message", "");
  }
  return out;
}

Result<RecommendReply> Client::Recommend(const RecommendRequest& request) {
  const std::string bytes = EncodeRecommend(request);
  QM_ASSIGN_OR_RETURN(std::string reply, impl_->CallRetrying(bytes.data(), bytes.size(), "recommend"));
  RecommendReply out;
  QM_RETURN_IF_ERROR(DecodeRecommend(reply, &out));
  return out;
}

Result<uint64_t> Client::PostRecommend(const RecommendRequest& request) {
  const std::string bytes = EncodeRecommend(request);
  return impl_->Send(bytes.data(), bytes.size());
}

Result<bool> Client::Receive(TimeMs timeout_ms, uint64_t* tag, RecommendReply* reply) {
  return Receive(std::chrono::milliseconds(std::max<TimeMs>(timeout_ms, 0)), tag, reply);
}

Result<bool> Client::Receive(std::chrono::microseconds timeout, uint64_t* tag, RecommendReply* reply) {
  std::string body;
  QM_ASSIGN_OR_RETURN(bool got, impl_->Next(timeout, tag, &body));
  if (!got) return false;
  QM_RETURN_IF_ERROR(DecodeRecommend(body, reply));
  return true;
}

Result<CurveKeyPair> GenerateCurveKeys() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Unavailable(std::string("CURVE keys: ") + zmq_strerror(zmq_errno()) +
                               " (libzmq built without CURVE?)");
  }
  return CurveKeyPair{pub, sec};
}

}  // namespace qm::client
