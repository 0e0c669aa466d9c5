// The server's HTTP port (http.h).
#include "http.h"

#include <httplib.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "qianmian/artifacts/manifest.h"
#include "thread_name.h"

namespace qm::server {

using json = nlohmann::json;

int HttpStatusOf(const std::string& code) {
  if (code == "bad_request") return 400;
  if (code == "unknown_op" || code == "not_found") return 404;
  if (code == "forbidden") return 403;
  if (code == "conflict") return 409;
  if (code == "overloaded" || code == "unavailable") return 503;
  if (code == "deadline_exceeded") return 504;
  return 500;
}

struct HttpFront::Impl {
  HttpHooks hooks;
  httplib::Server http;
  std::thread thread;
  std::string host;
  int port = 0;
  std::atomic<bool> stopped{false};
  // DEALER sockets to the ROUTER, one per request at a time (a socket is single-threaded).
  std::mutex pool_mu;
  std::vector<std::unique_ptr<zmq::socket_t>> pool;  // guarded by pool_mu
  std::atomic<uint64_t> next_id{0};
  // Requests refused before the wire, for /metrics.
  std::atomic<int64_t> not_json{0}, too_large{0}, op_mismatch{0}, no_path{0}, unauthenticated{0}, forbidden{0};
  std::shared_ptr<Console> console;

  std::unique_ptr<zmq::socket_t> Take() {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        auto s = std::move(pool.back());
        pool.pop_back();
        return s;
      }
    }
    auto s = std::make_unique<zmq::socket_t>(*hooks.ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, hooks.timeout_ms);
    s->set(zmq::sockopt::routing_id, hooks.identity_prefix + std::to_string(next_id.fetch_add(1)));
    s->connect(hooks.router);
    return s;
  }
  void Give(std::unique_ptr<zmq::socket_t> s) {
    std::lock_guard<std::mutex> lock(pool_mu);
    pool.push_back(std::move(s));
  }

  static void Reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
  }
  static json Error(const std::string& code, const std::string& message) {
    return json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
  }

  // The API client of a request's bearer token ("" without api_clients), or nullptr after
  // answering 401 or 403.
  const HttpClient* Authorize(const std::string& op, const httplib::Request& req, httplib::Response& res) {
    static const HttpClient kOpen;
    if (hooks.api_clients.empty()) return &kOpen;
    const std::string auth = req.get_header_value("Authorization");
    const HttpClient* who = nullptr;
    if (auth.rfind("Bearer ", 0) == 0) {
      const std::string hash = artifacts::Sha256Hex(auth.substr(7));
      for (const HttpClient& c : hooks.api_clients) {  // every entry compared, in constant time each
        if (sodium_memcmp(hash.data(), c.token_sha256.data(), 64) == 0) who = &c;
      }
    }
    if (!who) {
      ++unauthenticated;
      res.set_header("WWW-Authenticate", "Bearer realm=\"qianmian\"");
      Reply(res, 401,
            Error("unauthenticated",
                  "the JSON API needs 'Authorization: Bearer <token>' of a client listed in "
                  "[server] http_clients"));
      return nullptr;
    }
    const std::vector<std::string>& ops = who->ops;
    if (std::find(ops.begin(), ops.end(), "*") == ops.end() && std::find(ops.begin(), ops.end(), op) == ops.end()) {
      ++forbidden;
      Reply(res, 403,
            Error("forbidden", "client '" + who->name + "' may not call '" + op + "' ([server] http_clients)"));
      return nullptr;
    }
    return who;
  }

  // POST /v1/<op>: the body (a JSON object, the op's fields) as one request on the wire.
  void Call(const std::string& op, const httplib::Request& req, httplib::Response& res) {
    const HttpClient* client = Authorize(op, req, res);
    if (!client) return;
    json body = json::object();
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        ++not_json;
        return Reply(res, 400,
                     Error("bad_request",
                           body.is_discarded() ? "the body is not JSON (UTF-8)" : "the body must be a JSON object"));
      }
    }
    if (body.contains("op") && body["op"] != op) {
      ++op_mismatch;
      return Reply(res, 400, Error("bad_request", "'op': the path names '" + op + "'"));
    }
    body["op"] = op;
    // Where a change came from, for the audit logs: the API client's name and address.
    body["_via"] = "http:" + (client->name.empty() ? "" : client->name + "@") + req.remote_addr;
    if (!body.contains("id") && req.has_header("X-Request-Id")) body["id"] = req.get_header_value("X-Request-Id");
    int status = 200;
    json out = Forward(std::move(body), &status);
    if (status == 503) res.set_header("Retry-After", "1");
    Reply(res, status, out);
  }

  // One request through the wire: its reply, and *status the HTTP status of its code.
  json Forward(json body, int* status) {
    const std::vector<uint8_t> frame = json::to_msgpack(body);
    std::unique_ptr<zmq::socket_t> s = Take();
    zmq::message_t reply;
    bool got = false;
    try {
      s->send(zmq::const_buffer(), zmq::send_flags::sndmore);
      s->send(zmq::buffer(frame), zmq::send_flags::none);
      while (true) {  // [empty delimiter, reply]
        zmq::message_t part;
        if (!s->recv(part)) break;
        if (!part.more()) {
          reply = std::move(part);
          got = true;
          break;
        }
      }
    } catch (const zmq::error_t& e) {
      *status = 503;
      return Error("unavailable", std::string("the server is stopping: ") + e.what());
    }
    if (!got) {  // no reply in time: the socket may still receive it, so it is not reused
      *status = 504;
      return Error("deadline_exceeded", "no reply within " + std::to_string(hooks.timeout_ms) + " ms");
    }
    Give(std::move(s));
    json out = json::from_msgpack(static_cast<const uint8_t*>(reply.data()),
                                  static_cast<const uint8_t*>(reply.data()) + reply.size(), true, false);
    if (out.is_discarded()) {
      *status = 500;
      return Error("internal", "the reply could not be read");
    }
    *status = 200;
    if (out.value("ok", false) == false && out.contains("error")) {
      *status = HttpStatusOf(out["error"].value("code", "internal"));
    }
    return out;
  }
};

Result<std::unique_ptr<HttpFront>> HttpFront::Start(const std::string& address, HttpHooks hooks) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("'server.http_bind': '" + address + "' is not host:port (e.g. 127.0.0.1:8080)");
  }
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) return Status::InvalidArgument("'server.http_bind': bad port in '" + address + "'");
  auto impl = std::make_unique<Impl>();
  impl->hooks = std::move(hooks);
  impl->host = address.substr(0, colon);
  Impl* im = impl.get();
  httplib::Server& h = im->http;
  const int threads = std::max(1, im->hooks.threads);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  h.set_payload_max_length(im->hooks.max_body);
  h.set_read_timeout(10, 0);
  h.set_write_timeout(10, 0);
  h.Get("/livez", [im](const httplib::Request&, httplib::Response& res) {
    const bool live = im->hooks.live();
    res.status = live ? 200 : 503;
    res.set_content(live ? "ok\n" : "stopping\n", "text/plain");
  });
  h.Get("/readyz", [im](const httplib::Request&, httplib::Response& res) {
    const auto [ready, why] = im->hooks.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready: " + why + "\n", "text/plain");
  });
  h.Get("/metrics", [im](const httplib::Request&, httplib::Response& res) {
    std::string text = im->hooks.metrics();
    text +=
        "# HELP qianmian_http_refused_total HTTP requests refused before reaching the wire, by reason.\n"
        "# TYPE qianmian_http_refused_total counter\n";
    const std::pair<const char*, int64_t> refused[] = {{"not_json", im->not_json.load()},
                                                       {"too_large", im->too_large.load()},
                                                       {"op_mismatch", im->op_mismatch.load()},
                                                       {"no_path", im->no_path.load()},
                                                       {"unauthenticated", im->unauthenticated.load()},
                                                       {"forbidden", im->forbidden.load()}};
    for (const auto& [reason, n] : refused) {
      text += std::string("qianmian_http_refused_total{reason=\"") + reason + "\"} " + std::to_string(n) + "\n";
    }
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  });
  if (im->hooks.console) {
    ConsoleHooks ch;
    ch.operators = im->hooks.operators;
    ch.wire_ops = im->hooks.ops;
    ch.forward = [im](json request, int* status) { return im->Forward(std::move(request), status); };
    im->console = MountConsole(h, im->hooks.console_config, std::move(ch));
  }
  if (im->hooks.api) {
    h.Post(R"(/v1/([a-z][a-z._]{0,63}))",
           [im](const httplib::Request& req, httplib::Response& res) { im->Call(req.matches[1], req, res); });
  }
  h.set_error_handler([im](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      ++im->too_large;
      return Impl::Reply(res, 413, Impl::Error("bad_request", "the body exceeds [server] max_frame_bytes"));
    }
    if (res.status == 404) {
      ++im->no_path;
      return Impl::Reply(res, 404,
                         Impl::Error("not_found", "no such path: " + req.method + " " + req.path +
                                                      " (GET /livez, /readyz, /metrics, /console/; POST /v1/<op>)"));
    }
  });
  im->port = port == 0 ? h.bind_to_any_port(im->host) : (h.bind_to_port(im->host, port) ? port : -1);
  if (im->port <= 0) return Status::Unavailable("cannot bind the HTTP port '" + address + "'");
  im->thread = std::thread([im] {
    NameThisThread("qm-http");  // its request threads inherit the name
    im->http.listen_after_bind();
  });
  for (int i = 0; i < 1000 && !im->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("server: HTTP on {}:{} (/livez /readyz /metrics{}, POST /v1/<op>)", im->host, im->port,
               im->hooks.console ? " /console/" : "");
  return std::unique_ptr<HttpFront>(new HttpFront(std::move(impl)));
}

HttpFront::HttpFront(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpFront::~HttpFront() { Stop(); }

std::string HttpFront::endpoint() const { return "http://" + impl_->host + ":" + std::to_string(impl_->port); }

void HttpFront::Stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard<std::mutex> lock(impl_->pool_mu);
  impl_->pool.clear();
}

}  // namespace qm::server
