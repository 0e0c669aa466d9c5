// Module client: the client library for the bank's back end. May depend on: core; ZeroMQ, msgpack
// (private).
//
// The client library for the bank's back end (SPEC §5): one connection to a qianmian server,
// requests as JSON text (any op) or typed `recommend` calls, timeouts and reconnects.
// ZeroMQ, msgpack and JSON libraries stay in src/.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::client {

struct ClientOptions {
  // The server's address, or several replicas' addresses separated by commas (issue 21): the
  // one socket connects to each and spreads requests over those whose connection is up (ZeroMQ
  // round robin with ZMQ_IMMEDIATE); ZMTP heartbeats (every 1 s, 3 s to answer) drop a replica
  // that stops answering, and a reconnect brings it back. A request sent to a replica that dies
  // before it answers times out (never retried: whether it ran is unknown); every other request
  // is answered by a live replica. With no replica connected a send fails with DeadlineExceeded
  // after timeout_ms.
  std::string endpoint = "tcp://127.0.0.1:5555";
  TimeMs timeout_ms = 5000;  // a call without a reply by then fails with DeadlineExceeded
  // After a timeout the connection is dropped and reopened, so a late reply is never taken
  // for the answer to the next request.
  // Retries (issue 20) of the synchronous calls (Call, CallJson, Recommend; not CallRaw or the
  // pipelined Post/Receive): a reply RetryableReply accepts is sent again, up to `retries` more
  // times, after a jittered exponential backoff: uniform in [0, min(max_backoff_ms,
  // backoff_ms * 2^attempt)] ms ("full jitter"). The last reply is returned. 0 = never retry.
  int retries = 0;
  TimeMs backoff_ms = 5;
  TimeMs max_backoff_ms = 500;
  // ZeroMQ CURVE (issue 19): the server's public key and this client's key pair, Z85 text of 40
  // characters (`qianmian keygen` writes them to files). All empty: plaintext, which a server with
  // [server] curve = true never answers.
  std::string curve_server_key, curve_public_key, curve_secret_key;
};

// A new CURVE key pair (Z85), for `qianmian keygen`.
struct CurveKeyPair {
  std::string public_key, secret_key;
};
[[nodiscard]] Result<CurveKeyPair> GenerateCurveKeys();

// Whether a reply with error `code` to `op` may be sent again unchanged: `overloaded` always (the
// server ran nothing: refused at a full queue or shed before running); `unavailable` only for an
// idempotent op: not `recommend` (a served page reserves caps under a new request id each time)
// nor `reload`; `feedback` is idempotent (the store records an event once however often it is
// sent), upserts replace, the rest read. No other code (a timeout is not a reply: whether the
// request ran is unknown, so it is never retried).
bool RetryableReply(const std::string& op, const std::string& code);

// A typed `recommend` request (SPEC §5).
struct RecommendRequest {
  std::string customer_id;
  std::string channel = "app_home";
  int count = 10;           // 1..100
  TimeMs now_ms = kNoTime;  // kNoTime = the server's clock
  TimeMs deadline_ms = 0;   // 0 = none sent
  bool debug = false;
};

struct RecommendedItem {
  std::string item_id;
  std::string kind;
  double score = 0;
  std::vector<std::string> reasons;
};

// A reply: ok, or the server's error code ("bad_request", "overloaded", ...) and message.
struct RecommendReply {
  bool ok = false;
  std::string error_code, error_message;
  std::string request_id, model_version;
  std::vector<RecommendedItem> items;
  int64_t took_us = 0;
};

// A reply as JSON text, with its outcome read out.
struct JsonReply {
  bool ok = false;
  std::string error_code, error_message;  // set when !ok
  std::string json;                       // the whole reply
};

// One connection (a DEALER socket). Not thread-safe: use one Client per thread.
class Client {
 public:
  // Opens the connection (ZeroMQ connects lazily: an absent server shows as a timeout).
  // InvalidArgument for a malformed endpoint.
  [[nodiscard]] static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  // n connections to the same server that share one ZeroMQ I/O thread, for a caller that drives
  // them all from one thread (a load generator, a back end's event loop) with WaitAny. Each is
  // still used by one thread at a time. Errors as Connect; InvalidArgument for n < 1.
  [[nodiscard]] static Result<std::vector<std::unique_ptr<Client>>> ConnectMany(const ClientOptions& options, int n);
  // Waits up to `timeout` until a reply is ready on any of `clients` (then Receive with a zero
  // timeout takes it without waiting); false when none came in time.
  [[nodiscard]] static Result<bool> WaitAny(const std::vector<Client*>& clients, std::chrono::microseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a JSON object (with "op") and returns the reply as JSON text. InvalidArgument when
  // `request_json` is not a JSON object; DeadlineExceeded on timeout (the connection is then
  // reopened). A server error is a reply with "ok": false, not a failed Result.
  [[nodiscard]] Result<std::string> CallJson(const std::string& request_json);

  // Sends `op` with the fields of `fields_json` (a JSON object; "" = no fields). InvalidArgument
  // when fields_json is not an object or names another op. Other errors as CallJson.
  [[nodiscard]] Result<JsonReply> Call(const std::string& op, const std::string& fields_json);

  // Sends raw bytes as one frame and returns the reply frame's bytes (for tests and tools).
  [[nodiscard]] Result<std::string> CallRaw(const std::string& frame);

  // A typed recommend call. Errors as CallJson; a server error is reply.ok == false.
  [[nodiscard]] Result<RecommendReply> Recommend(const RecommendRequest& request);

  // Pipelined recommend calls (open-loop load): Post sends without waiting and returns the
  // request's tag; Receive waits up to timeout_ms for the next reply and returns false when
  // none came (an expected outcome, not an error). Replies may arrive in any order.
  [[nodiscard]] Result<uint64_t> PostRecommend(const RecommendRequest& request);
  [[nodiscard]] Result<bool> Receive(TimeMs timeout_ms, uint64_t* tag, RecommendReply* reply);
  [[nodiscard]] Result<bool> Receive(std::chrono::microseconds timeout, uint64_t* tag, RecommendReply* reply);

  const std::string& endpoint() const;
  // Requests sent again under ClientOptions::retries since the connection opened.
  int64_t retried() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qm::client
