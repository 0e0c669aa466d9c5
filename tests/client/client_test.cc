// The client library against fake servers (a ROUTER socket in a test thread): request framing,
// JSON in and out, timeouts that reopen the connection so a late reply is never mistaken for
// the next answer, and pipelined calls.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "qianmian/client/client.h"

namespace qm::client {
namespace {

using json = nlohmann::json;

std::string Endpoint() {
  static std::atomic<int> n{0};
  return "ipc:///tmp/qmcli-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock";
}

// A ROUTER that answers each request with handler(request json) after handler's delay.
class FakeServer {
 public:
  using Handler = std::function<json(const json& request, int* delay_ms)>;
  explicit FakeServer(Handler h) : endpoint_(Endpoint()), handler_(std::move(h)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(endpoint_);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::unlink(endpoint_.substr(6).c_str());  // "ipc://<path>": the socket file stays otherwise
  }
  const std::string& endpoint() const { return endpoint_; }
  int requests() const { return requests_.load(); }

 private:
  void Loop() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(10)) == 0) continue;
      std::vector<zmq::message_t> parts;
      bool more = true;
      while (more) {
        zmq::message_t m;
        (void)socket_.recv(m);
        more = m.more();
        parts.push_back(std::move(m));
      }
      ++requests_;
      // [identity, tag, "", body]: echo everything before the body.
      json req = json::from_msgpack(parts.back().to_string());
      int delay = 0;
      json reply = handler_(req, &delay);
      if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      for (size_t i = 0; i + 1 < parts.size(); ++i) socket_.send(parts[i], zmq::send_flags::sndmore);
      auto bytes = json::to_msgpack(reply);
      socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
    }
  }
  zmq::context_t ctx_;
  zmq::socket_t socket_{ctx_, zmq::socket_type::router};
  std::string endpoint_;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
};

std::unique_ptr<Client> ConnectTo(const std::string& endpoint, TimeMs timeout = 5000) {
  ClientOptions o;
  o.endpoint = endpoint;
  o.timeout_ms = timeout;
  auto c = Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

TEST(Client, SendsJsonAsOneMsgpackMapAndReturnsTheReplyAsJson) {
  FakeServer server([](const json& req, int*) { return json{{"ok", true}, {"echo", req}}; });
  auto c = ConnectTo(server.endpoint());
  auto r = c->CallJson(R"({"op":"recommend","customer_id":"C1","count":3,"id":9})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json reply = json::parse(*r);
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["echo"]["op"], "recommend");
  EXPECT_EQ(reply["echo"]["count"], 3);
  EXPECT_EQ(reply["echo"]["id"], 9);
  // Call adds the op and reads the outcome out of the reply.
  auto r2 = c->Call("health", "");
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->ok);
  EXPECT_EQ(json::parse(r2->json)["echo"]["op"], "health");
}

TEST(Client, ReportsTheServersErrorCodeAndMessage) {
  FakeServer server([](const json&, int*) {
    return json{{"ok", false}, {"error", {{"code", "overloaded"}, {"message", "queue full"}}}};
  });
  auto c = ConnectTo(server.endpoint());
  auto r = c->Call("stats", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->error_code, "overloaded");
  EXPECT_EQ(r->error_message, "queue full");
  RecommendRequest req;
  req.customer_id = "C1";
  auto t = c->Recommend(req);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->ok);
  EXPECT_EQ(t->error_code, "overloaded");
}

// Issue 20: with retries, `overloaded` is sent again after a backoff until it succeeds (or the
// retries run out); `unavailable` only for idempotent ops (never a served page).
TEST(Client, RetriesOverloadedRepliesAndUnavailableOnlyForIdempotentOps) {
  std::atomic<int> refuse{3};
  std::atomic<bool> unavailable{false};
  FakeServer server([&](const json&, int*) {
    const char* code = unavailable ? "unavailable" : "overloaded";
    if (refuse.fetch_sub(1) > 0) return json{{"ok", false}, {"error", {{"code", code}, {"message", "busy"}}}};
    return json{{"ok", true}, {"request_id", "r1"}, {"model_version", "v1"}, {"items", json::array()}};
  });
  ClientOptions o;
  o.endpoint = server.endpoint();
  o.retries = 5;
  o.backoff_ms = 1;
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok());
  RecommendRequest req;
  req.customer_id = "C1";
  auto r = (*c)->Recommend(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok) << r->error_code;
  EXPECT_EQ(server.requests(), 4);
  EXPECT_EQ((*c)->retried(), 3);
  // Out of retries: the last reply is returned.
  refuse = 100;
  auto out = (*c)->Call("stats", "");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->error_code, "overloaded");
  EXPECT_EQ(server.requests(), 4 + 6);
  // `unavailable`: a page is not sent again (it may have reserved caps), feedback is.
  unavailable = true;
  refuse = 1;
  auto page = (*c)->Recommend(req);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->error_code, "unavailable");
  EXPECT_EQ(server.requests(), 11);
  refuse = 1;
  auto fb = (*c)->Call("feedback", R"({"events":[]})");
  ASSERT_TRUE(fb.ok());
  EXPECT_TRUE(fb->ok);
  EXPECT_EQ(server.requests(), 13);
  // A request whose op is not a string is sent as it is (the server answers bad_request).
  EXPECT_TRUE((*c)->CallJson(R"({"op":5})").ok());
  EXPECT_EQ(server.requests(), 14);
  // Without retries nothing is sent twice.
  auto plain = ConnectTo(server.endpoint());
  refuse = 1;
  unavailable = false;
  EXPECT_EQ(plain->Call("stats", "")->error_code, "overloaded");
  EXPECT_EQ(server.requests(), 15);
}

TEST(Client, RetryableRepliesAreOverloadedAndUnavailableOfIdempotentOps) {
  EXPECT_TRUE(RetryableReply("recommend", "overloaded"));
  EXPECT_FALSE(RetryableReply("recommend", "unavailable"));
  EXPECT_FALSE(RetryableReply("reload", "unavailable"));
  for (const char* op : {"feedback", "score", "history", "items.upsert", "customers.upsert", "stats"}) {
    EXPECT_TRUE(RetryableReply(op, "unavailable")) << op;
  }
  for (const char* code : {"bad_request", "not_found", "deadline_exceeded", "internal", "unknown_op", ""}) {
    EXPECT_FALSE(RetryableReply("score", code)) << code;
  }
}

TEST(Client, RejectsRequestsThatAreNotJsonObjectsWithoutSendingThem) {
  FakeServer server([](const json&, int*) { return json{{"ok", true}}; });
  auto c = ConnectTo(server.endpoint());
  EXPECT_EQ(c->CallJson("[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->CallJson("{not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Call("recommend", R"({"op":"stats"})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server.requests(), 0);
}

TEST(Client, DecodesATypedRecommendReply) {
  FakeServer server([](const json& req, int*) {
    return json{
        {"ok", true},
        {"request_id", "r-1"},
        {"model_version", "v1"},
        {"took_us", 123},
        {"items",
         {{{"item_id", req["customer_id"]}, {"kind", "product"}, {"score", 0.5}, {"reasons", {"recall:ann"}}}}}};
  });
  auto c = ConnectTo(server.endpoint());
  RecommendRequest req;
  req.customer_id = "C42";
  req.count = 1;
  req.deadline_ms = 50;
  auto r = c->Recommend(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->request_id, "r-1");
  EXPECT_EQ(r->model_version, "v1");
  EXPECT_EQ(r->took_us, 123);
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].item_id, "C42");
  EXPECT_DOUBLE_EQ(r->items[0].score, 0.5);
  EXPECT_EQ(r->items[0].reasons, std::vector<std::string>{"recall:ann"});
}

TEST(Client, TimesOutAndNeverTakesALateReplyForTheNextAnswer) {
  std::atomic<int> n{0};
  FakeServer server([&](const json& req, int* delay) {
    if (n++ == 0) *delay = 400;  // the first answer comes after the client gave up
    return json{{"ok", true}, {"seq", req["seq"]}};
  });
  auto c = ConnectTo(server.endpoint(), 150);
  auto first = c->CallJson(R"({"op":"health","seq":1})");
  EXPECT_EQ(first.status().code(), StatusCode::kDeadlineExceeded);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the late reply is sent now
  auto second = c->CallJson(R"({"op":"health","seq":2})");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(json::parse(*second)["seq"], 2);
}

TEST(Client, TimesOutWhenNoServerListens) {
  auto c = ConnectTo(Endpoint(), 100);
  RecommendRequest req;
  req.customer_id = "C1";
  auto r = c->Recommend(req);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  ClientOptions bad;
  bad.endpoint = "no-such-transport://x";
  EXPECT_EQ(Client::Connect(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(Client, PipelinesRequestsAndMatchesRepliesByTag) {
  FakeServer server([](const json& req, int*) {
    return json{{"ok", true}, {"request_id", req["customer_id"]}, {"items", json::array()}};
  });
  auto c = ConnectTo(server.endpoint());
  std::map<uint64_t, std::string> sent;
  for (int k = 0; k < 20; ++k) {
    RecommendRequest req;
    req.customer_id = "C" + std::to_string(k);
    auto tag = c->PostRecommend(req);
    ASSERT_TRUE(tag.ok());
    sent[*tag] = req.customer_id;
  }
  for (int k = 0; k < 20; ++k) {
    uint64_t tag = 0;
    RecommendReply reply;
    auto got = c->Receive(5000, &tag, &reply);
    ASSERT_TRUE(got.ok() && *got);
    ASSERT_EQ(sent.count(tag), 1u);
    EXPECT_EQ(reply.request_id, sent[tag]);
    sent.erase(tag);
  }
  uint64_t tag = 0;
  RecommendReply reply;
  auto none = c->Receive(20, &tag, &reply);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none) << "no reply is pending: Receive times out with false";
}

TEST(Client, ManyConnectionsOnOneIoThreadAreDrivenFromOneThread) {
  FakeServer server([](const json& req, int*) {
    return json{{"ok", true}, {"request_id", req["customer_id"]}, {"items", json::array()}};
  });
  ClientOptions o;
  o.endpoint = server.endpoint();
  EXPECT_EQ(Client::ConnectMany(o, 0).status().code(), StatusCode::kInvalidArgument);
  auto many = Client::ConnectMany(o, 3);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), 3u);
  std::vector<Client*> clients;
  for (auto& c : *many) clients.push_back(c.get());
  // Nothing sent: WaitAny times out with false.
  auto idle = Client::WaitAny(clients, std::chrono::microseconds(20000));
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(*idle);
  // Requests on every connection; each reply comes back on the connection that sent it.
  std::vector<std::map<uint64_t, std::string>> sent(3);
  for (int k = 0; k < 12; ++k) {
    RecommendRequest req;
    req.customer_id = "C" + std::to_string(k);
    auto tag = clients[k % 3]->PostRecommend(req);
    ASSERT_TRUE(tag.ok());
    sent[k % 3][*tag] = req.customer_id;
  }
  int got = 0;
  while (got < 12) {
    auto any = Client::WaitAny(clients, std::chrono::microseconds(5000000));
    ASSERT_TRUE(any.ok() && *any) << "a reply was due";
    for (size_t c = 0; c < 3; ++c) {
      uint64_t tag = 0;
      RecommendReply reply;
      for (;;) {
        auto r = clients[c]->Receive(std::chrono::microseconds(0), &tag, &reply);
        ASSERT_TRUE(r.ok());
        if (!*r) break;
        ASSERT_EQ(sent[c].count(tag), 1u) << "connection " << c;
        EXPECT_EQ(reply.request_id, sent[c][tag]);
        sent[c].erase(tag);
        ++got;
      }
    }
  }
  for (const auto& m : sent) EXPECT_TRUE(m.empty());
  EXPECT_EQ(server.requests(), 12);
}

}  // namespace
}  // namespace qm::client
