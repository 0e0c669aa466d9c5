// Private: the server's HTTP port (issue 19): GET /livez, /readyz and /metrics, and a JSON API
// mirroring every op of the ZeroMQ wire (POST /v1/<op>). The JSON API is a client of the server's
// own ROUTER over inproc: the same decoder, limits, queues, shedding, deadlines and stats as a
// ZeroMQ request. The operator console (console.h) is mounted on the same port. cpp-httplib
// stays in http.cc and console.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <zmq.hpp>

#include "console.h"
#include "qianmian/core/curve_keys.h"
#include "qianmian/core/status.h"

namespace qm::server {

struct HttpHooks {
  std::function<std::string()> metrics;                 // the Prometheus text of /metrics
  std::function<std::pair<bool, std::string>()> ready;  // (ready, why not) for /readyz
  std::function<bool()> live;                           // false once the server stops
  zmq::context_t* ctx = nullptr;                        // of the ROUTER
  std::string router;                                   // the ROUTER's inproc endpoint
  size_t max_body = 1 << 20;                            // [server] max_frame_bytes
  int threads = 8;                                      // HTTP worker threads
  int timeout_ms = 30000;                               // a JSON API request's wait for its reply
  // The inproc DEALERs' routing ids start with this (random per server: the wire recognises the
  // HTTP port's requests by it, server_impl.h FromHttpPort).
  std::string identity_prefix = "http-";
  bool api = true;  // serve the JSON API (/v1/<op>)
  // Its clients (empty: no authentication): a request must carry `Authorization: Bearer <token>`
  // whose SHA-256 is one's token_sha256, and name one of its ops ("*" = every op).
  std::vector<HttpClient> api_clients;
  bool console = true;  // serve the operator console (/console/)
  ConsoleConfig console_config;
  campaign::Operators* operators = nullptr;  // the accounts; null without an event store
  std::vector<std::string> ops;              // the server's ops
};

class HttpFront {
 public:
  // Binds `address` ("host:port"; port 0 = any free one) and serves in its own threads.
  // Unavailable when it cannot bind; InvalidArgument for a malformed address.
  [[nodiscard]] static Result<std::unique_ptr<HttpFront>> Start(const std::string& address, HttpHooks hooks);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;
  // "http://host:port" with the port resolved.
  std::string endpoint() const;
  // Stops listening; requests in progress finish. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit HttpFront(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The HTTP status of a reply's error code (bad_request 400, unknown_op and not_found 404,
// forbidden 403, conflict 409, overloaded and unavailable 503, deadline_exceeded 504, else 500).
int HttpStatusOf(const std::string& error_code);

}  // namespace qm::server
