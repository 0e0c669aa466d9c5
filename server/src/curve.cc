// ZeroMQ CURVE for the server (issue 19; server_impl.h): the key pair, the clients' keys and
// ops, and the ZAP handler (RFC 27) that admits only the listed keys.
#include <spdlog/spdlog.h>
#include <zmq.h>

#include <algorithm>

#include "qianmian/core/curve_keys.h"
#include "server_impl.h"
#include "thread_name.h"

namespace qm::server {

Status Server::Impl::InitCurve(zmq::socket_t* router) {
  QM_ASSIGN_OR_RETURN(CurveKeys keys, ReadCurveKeyFile(config.curve_key, true));
  QM_ASSIGN_OR_RETURN(std::vector<CurveClient> clients, ReadCurveClients(config.curve_clients));
  for (const CurveClient& c : clients) {
    for (const std::string& op : c.ops) {
      if (op != "*" && !FindOp(op)) {
        return Status::InvalidArgument(config.curve_clients + ": client '" + c.name + "': unknown op '" + op + "'");
      }
    }
    uint8_t raw[32];
    if (!zmq_z85_decode(raw, c.public_key.c_str())) {
      return Status::InvalidArgument(config.curve_clients + ": client '" + c.name + "': a bad public key");
    }
    client_of_key[std::string(reinterpret_cast<const char*>(raw), 32)] = c.name;
    client_ops[c.name] = c.ops;
  }
  // The ZAP handler is bound before the ROUTER so that no handshake finds it missing.
  auto handler = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
  handler->set(zmq::sockopt::linger, 0);
  handler->bind("inproc://zeromq.zap.01");
  router->set(zmq::sockopt::zap_domain, "qianmian");
  router->set(zmq::sockopt::curve_server, true);
  router->set(zmq::sockopt::curve_secretkey, keys.secret_key);
  zap = std::thread([this, h = handler.release()] {
    std::unique_ptr<zmq::socket_t> owner(h);
    NameThisThread("qm-zap");
    ZapLoop(h);
  });
  spdlog::info("server: CURVE on, {} clients may connect", clients.size());
  return Status::Ok();
}

void Server::Impl::ZapLoop(zmq::socket_t* handler) {
  while (!stop_zap.load()) {
    zmq::pollitem_t item{handler->handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      // version, request id, domain, address, identity, mechanism, credentials...
      std::vector<zmq::message_t> req;
      bool more = true;
      while (more) {
        zmq::message_t m;
        if (!handler->recv(m)) break;
        more = m.more();
        req.push_back(std::move(m));
      }
      std::string status = "400", text = "not a known client key", user;
      if (req.size() >= 7 && req[5].to_string_view() == "CURVE" && req[6].size() == 32) {
        auto it = client_of_key.find(req[6].to_string());
        if (it != client_of_key.end()) {
          status = "200";
          text = "OK";
          user = it->second;
        }
      } else if (req.size() >= 6) {
        text = "CURVE is required";
      }
      if (status != "200") {
        // A refused client reconnects every second or faster: one line a minute at most.
        const int64_t n = curve_refused.fetch_add(1);
        static std::atomic<int64_t> last_log{0};
        const int64_t now = NowMs();
        int64_t last = last_log.load();
        if (n == 0 || (now - last >= kMsPerMinute && last_log.compare_exchange_strong(last, now))) {
          if (n == 0) last_log = now;
          spdlog::warn("server: refused a connection from {} ({}; {} refused so far)",
                       req.size() > 3 ? std::string(req[3].to_string_view()) : std::string("?"), text, n + 1);
        }
      }
      const std::string version = req.empty() ? "1.0" : req[0].to_string();
      const std::string id = req.size() > 1 ? req[1].to_string() : "";
      handler->send(zmq::buffer(version), zmq::send_flags::sndmore);
      handler->send(zmq::buffer(id), zmq::send_flags::sndmore);
      handler->send(zmq::buffer(status), zmq::send_flags::sndmore);
      handler->send(zmq::buffer(text), zmq::send_flags::sndmore);
      handler->send(zmq::buffer(user), zmq::send_flags::sndmore);
      handler->send(zmq::const_buffer(), zmq::send_flags::none);  // no metadata
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      spdlog::error("server: ZAP handler: {}", e.what());
    }
  }
}

bool Server::Impl::MayCall(const Job& job, std::string* why) const {
  if (!config.curve) return true;
  // The HTTP port's JSON API and console (inproc, random routing id prefix): no CURVE identity
  // and no peer address. A network client naming itself like them still has its CURVE identity,
  // so it is held to its own ops.
  if (job.req.via_http) return true;
  auto it = client_ops.find(job.req.user);
  if (it == client_ops.end()) {
    *why = "no CURVE client identity";
    return false;
  }
  const std::vector<std::string>& ops = it->second;
  if (std::find(ops.begin(), ops.end(), "*") != ops.end() ||
      std::find(ops.begin(), ops.end(), job.req.op) != ops.end()) {
    return true;
  }
  *why = "client '" + it->first + "' may not call '" + job.req.op + "' ([server] curve_clients)";
  return false;
}

}  // namespace qm::server
