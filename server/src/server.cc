// The ZeroMQ server. Threads:
//   front   owns the ROUTER socket and an inproc PULL of replies; decodes each frame (hard limits),
//           answers at once what needs no engine (bad frames, health, overloaded, draining) and
//           queues the rest in a bounded queue; forwards worker replies to their peers.
//   workers pop requests, check deadlines, run the op on the engine, push the encoded reply
//           (each its own inproc PUSH: ZeroMQ sockets are single-threaded).
//   watch   polls <artifacts>/CURRENT and reloads the engine when it names another version.
#include "qianmian/server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "codec.h"
#include "qianmian/recall/two_tower.h"
#include "qianmian/training/artifacts.h"

// OpenBLAS (under Faiss and libtorch) keeps its own thread pool; when it is linked in, the
// server pins it to one thread like libtorch. Weak: absent, the pointer is null.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace qm::server {

namespace {

using Clock = std::chrono::steady_clock;

// Ops with their own counters; index kOther collects requests whose op is unknown or unreadable.
constexpr std::array<const char*, 10> kOps = {"recommend", "feedback", "score", "items.upsert", "items.retire",
                                              "customers.upsert", "history", "reload", "stats", "health"};
constexpr size_t kOther = kOps.size();

size_t OpIndex(const std::string& op) {
  for (size_t i = 0; i < kOps.size(); ++i) {
    if (op == kOps[i]) return i;
  }
  return kOther;
}

// Latency histogram: exact below 16 us, then 16 sub-buckets per power of two (<= 6.25% error).
class Histogram {
 public:
  static constexpr int kBuckets = 16 + 16 * 40;
  void Add(int64_t us) { ++b_[Index(us)]; ++n_; }
  int64_t count() const { return n_; }
  // The upper bound of the bucket holding quantile q (0 when empty).
  int64_t Quantile(double q) const {
    if (n_ == 0) return 0;
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(n_))));
    int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += b_[i];
      if (seen >= rank) return Upper(i);
    }
    return Upper(kBuckets - 1);
  }

 private:
  static int Index(int64_t v) {
    if (v < 16) return static_cast<int>(std::max<int64_t>(v, 0));
    const int e = 63 - __builtin_clzll(static_cast<uint64_t>(v));  // >= 4
    const int sub = static_cast<int>((v >> (e - 4)) & 15);
    return std::min(kBuckets - 1, 16 + 16 * (e - 4) + sub);
  }
  static int64_t Upper(int i) {
    if (i < 16) return i;
    const int e = (i - 16) / 16 + 4, sub = (i - 16) % 16;
    return ((int64_t{16} + sub + 1) << (e - 4)) - 1;
  }
  std::array<int64_t, kBuckets> b_{};
  int64_t n_ = 0;
};

struct OpStats {
  int64_t count = 0;
  std::array<int64_t, kNumErrorCodes> errors{};
  Histogram latency;
};

// A request waiting for a worker.
struct Job {
  std::vector<zmq::message_t> envelope;  // peer identity [+ empty delimiter]
  zmq::message_t body;
  Decoded req;
  Clock::time_point arrival;
  Clock::time_point deadline = Clock::time_point::max();
};

int64_t MicrosSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count();
}

bool ValidVersionName(const std::string& v) {
  if (v.empty() || v.size() > 128 || v == "." || v == "..") return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

struct Server::Impl {
  ServerConfig config;
  serving::Engine* engine = nullptr;
  std::string artifacts_root;
  DecodeLimits limits;
  std::string endpoint;
  std::string replies_endpoint;  // inproc PULL of the front thread
  Clock::time_point started = Clock::now();

  zmq::context_t ctx{1};
  std::thread front, watch, maintain;
  std::vector<std::thread> workers;

  // Queue and drain state.
  std::mutex mu;
  std::condition_variable work_cv;   // a job arrived, or stopping
  std::condition_variable idle_cv;   // queue empty and no worker busy
  std::deque<Job> queue;             // guarded by mu
  int busy = 0;                      // guarded by mu: workers running a job
  bool stop_workers = false;         // guarded by mu
  std::atomic<bool> draining{false};
  std::atomic<bool> stop_front{false};
  std::atomic<bool> stopped{false};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool stop_watch = false;           // guarded by watch_mu

  // Stats, guarded by stats_mu.
  mutable std::mutex stats_mu;
  std::array<OpStats, kOps.size() + 1> ops;
  int64_t shed = 0, reloads = 0, reload_failures = 0;
  std::string last_reload_error;
  int64_t compactions = 0, compaction_failures = 0;
  std::string last_compaction_error;

  Status Init();
  void FrontLoop(zmq::socket_t* router, zmq::socket_t* replies);
  void WorkerLoop(int index);
  void WatchLoop();
  void MaintainLoop();
  // Handles one frame in the front thread: true when answered there (reply in *out).
  bool Receive(std::vector<zmq::message_t>* frames, msgpack::sbuffer* out);
  void Record(size_t op, const char* error_code, Clock::time_point arrival);
  // Runs a decoded request; fills `out` with the reply. Never throws.
  void Handle(const Job& job, msgpack::sbuffer* out, const char** error_code);
  Status Dispatch(const Decoded& req, Packer& pk, size_t* fields, Clock::time_point deadline);
  void PackStats(Packer& pk, size_t* fields);
};

Status Server::Impl::Init() {
  limits.max_frame_bytes = static_cast<size_t>(config.max_frame_bytes);
  limits.max_array = static_cast<size_t>(config.max_array);
  limits.max_depth = static_cast<size_t>(config.max_depth);
  limits.max_deadline = config.max_deadline;
  static std::atomic<int> instance{0};
  replies_endpoint = "inproc://qm-replies-" + std::to_string(instance.fetch_add(1));
  auto router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  auto replies = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pull);
  try {
    router->set(zmq::sockopt::linger, 2000);
    // Frames far past the limit are cut at the transport (the peer is disconnected); frames
    // up to twice the limit are read and answered with bad_request.
    router->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_frame_bytes) * 2 + 1024);
    router->set(zmq::sockopt::sndhwm, 100000);
    router->set(zmq::sockopt::rcvhwm, 100000);
    router->bind(config.bind);
    endpoint = router->get(zmq::sockopt::last_endpoint);
    replies->set(zmq::sockopt::linger, 0);
    replies->set(zmq::sockopt::rcvhwm, 0);
    replies->bind(replies_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot bind '" + config.bind + "': " + e.what());
  }
  int n = config.workers > 0 ? config.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  front = std::thread([this, r = router.release(), p = replies.release()] {
    std::unique_ptr<zmq::socket_t> router_owner(r), replies_owner(p);
    FrontLoop(r, p);
  });
  for (int i = 0; i < n; ++i) workers.emplace_back([this, i] { WorkerLoop(i); });
  if (config.watch_interval > 0) watch = std::thread([this] { WatchLoop(); });
  if (config.compact_interval > 0) maintain = std::thread([this] { MaintainLoop(); });
  spdlog::info("server: listening on {} with {} workers, queue {}, model {}", endpoint, n, config.queue_capacity,
               engine->model_version());
  return Status::Ok();
}

void Server::Impl::Record(size_t op, const char* error_code, Clock::time_point arrival) {
  const int64_t us = MicrosSince(arrival);
  std::lock_guard<std::mutex> lock(stats_mu);
  OpStats& s = ops[op];
  ++s.count;
  if (error_code) ++s.errors[ErrorCodeIndex(error_code)];
  s.latency.Add(us);
}

bool Server::Impl::Receive(std::vector<zmq::message_t>* frames, msgpack::sbuffer* out) {
  // frames: identity, [envelope..., empty delimiter], body. REQ peers send the delimiter;
  // DEALER peers may or may not.
  const Clock::time_point arrival = Clock::now();
  size_t body_at = 1;
  for (size_t i = 1; i < frames->size(); ++i) {
    if ((*frames)[i].size() == 0) {
      body_at = i + 1;
      break;
    }
  }
  Job job;
  job.arrival = arrival;
  for (size_t i = 0; i < body_at && i < frames->size(); ++i) job.envelope.push_back(std::move((*frames)[i]));
  const size_t bodies = frames->size() > body_at ? frames->size() - body_at : 0;
  Status st;
  if (bodies != 1) {
    st = Status::InvalidArgument(bodies == 0 ? "empty request: a request is one frame holding a msgpack map"
                                             : "a request is one frame; got " + std::to_string(bodies));
  } else {
    job.body = std::move((*frames)[body_at]);
    st = DecodeRequest(job.body.data(), job.body.size(), limits, &job.req);
  }
  frames->clear();
  auto answer = [&](const char* code, const std::string& message, size_t op) {
    PackError(out, job.req.id, code, message);
    Record(op, code, arrival);
    for (auto& f : job.envelope) frames->push_back(std::move(f));
    return true;
  };
  if (!st.ok()) return answer("bad_request", st.message(), OpIndex(job.req.op));
  const size_t op = OpIndex(job.req.op);
  if (op == kOther) return answer("unknown_op", "unknown op '" + job.req.op + "'", kOther);
  if (job.req.op == "health") {
    Packer pk(out);
    pk.pack_map(job.req.id ? 4 : 3);
    PackStr(pk, "ok");
    pk.pack_true();
    if (job.req.id) {
      PackStr(pk, "id");
      pk.pack(*job.req.id);
    }
    PackStr(pk, "status");
    PackStr(pk, draining.load() ? "draining" : "ok");
    PackStr(pk, "model_version");
    PackStr(pk, engine->model_version());
    Record(op, nullptr, arrival);
    for (auto& f : job.envelope) frames->push_back(std::move(f));
    return true;
  }
  if (draining.load()) return answer("unavailable", "server is shutting down", op);
  const TimeMs d = job.req.deadline_ms > 0 ? job.req.deadline_ms : config.default_deadline;
  if (d > 0) job.deadline = arrival + std::chrono::milliseconds(d);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (queue.size() < static_cast<size_t>(config.queue_capacity)) {
      queue.push_back(std::move(job));
      work_cv.notify_one();
      return false;
    }
    ++shed;
  }
  return answer("overloaded", "queue full (" + std::to_string(config.queue_capacity) + " waiting); retry later", op);
}

void Server::Impl::FrontLoop(zmq::socket_t* router, zmq::socket_t* replies) {
  std::vector<zmq::message_t> frames;
  msgpack::sbuffer buf;
  auto forward_replies = [&] {
    for (int k = 0; k < 1024; ++k) {
      zmq::message_t part;
      if (!replies->recv(part, zmq::recv_flags::dontwait)) return false;
      bool more = part.more();
      router->send(part, more ? zmq::send_flags::sndmore : zmq::send_flags::dontwait);
      while (more) {
        zmq::message_t next;
        (void)replies->recv(next);
        more = next.more();
        router->send(next, more ? zmq::send_flags::sndmore : zmq::send_flags::dontwait);
      }
    }
    return true;
  };
  zmq::pollitem_t items[] = {{router->handle(), 0, ZMQ_POLLIN, 0}, {replies->handle(), 0, ZMQ_POLLIN, 0}};
  while (true) {
    try {
      if (stop_front.load()) {
        while (forward_replies()) {
        }
        return;
      }
      zmq::poll(items, 2, std::chrono::milliseconds(20));
      while (forward_replies()) {
      }
      for (int k = 0; k < 256; ++k) {
        frames.clear();
        zmq::message_t part;
        if (!router->recv(part, zmq::recv_flags::dontwait)) break;
        bool more = part.more();
        frames.push_back(std::move(part));
        while (more) {
          zmq::message_t next;
          (void)router->recv(next);
          more = next.more();
          if (frames.size() < 64) frames.push_back(std::move(next));  // more parts are dropped
        }
        buf.clear();
        if (Receive(&frames, &buf)) {
          for (auto& f : frames) router->send(f, zmq::send_flags::sndmore);
          router->send(zmq::buffer(buf.data(), buf.size()), zmq::send_flags::dontwait);
        }
      }
    } catch (const std::exception& e) {
      // A send to a vanished peer or an interrupted call: log and keep serving.
      spdlog::warn("server: front end: {}", e.what());
    }
  }
}

void Server::Impl::WorkerLoop(int index) {
  recall::SetTorchThreads(1);  // parallelism comes from the workers (also pins OpenMP here)
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, -1);
  push.set(zmq::sockopt::sndhwm, 0);
  push.connect(replies_endpoint);
  msgpack::sbuffer buf;
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu);
      work_cv.wait(lock, [&] { return stop_workers || !queue.empty(); });
      if (queue.empty()) return;
      job = std::move(queue.front());
      queue.pop_front();
      ++busy;
    }
    buf.clear();
    const char* code = nullptr;
    Handle(job, &buf, &code);
    Record(OpIndex(job.req.op), code, job.arrival);
    if (code && (std::strcmp(code, "internal") == 0 || std::strcmp(code, "unavailable") == 0)) {
      spdlog::warn("server: worker {}: op {} failed with {}", index, job.req.op, code);
    }
    try {
      for (auto& f : job.envelope) push.send(f, zmq::send_flags::sndmore);
      push.send(zmq::buffer(buf.data(), buf.size()), zmq::send_flags::none);
    } catch (const std::exception& e) {
      spdlog::warn("server: worker {}: reply lost: {}", index, e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      --busy;
      if (busy == 0 && queue.empty()) idle_cv.notify_all();
    }
  }
}

void Server::Impl::WatchLoop() {
  std::string failed;  // a version that failed to load is not retried until CURRENT changes
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_cv.wait_for(lock, std::chrono::milliseconds(config.watch_interval), [&] { return stop_watch; })) {
    auto current = training::ReadCurrent(artifacts_root);
    if (!current.ok() || *current == engine->model_version() || *current == failed) continue;
    lock.unlock();
    auto r = engine->Reload(*current);
    lock.lock();
    std::lock_guard<std::mutex> s(stats_mu);
    if (r.ok()) {
      ++reloads;
      failed.clear();
      spdlog::info("server: CURRENT names {}: now serving {}", *current, *r);
    } else {
      ++reload_failures;
      failed = *current;
      last_reload_error = r.status().message();
      spdlog::error("server: CURRENT names {} but it was refused: {}", *current, r.status().message());
    }
  }
}

void Server::Impl::MaintainLoop() {
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_cv.wait_for(lock, std::chrono::milliseconds(config.compact_interval), [&] { return stop_watch; })) {
    lock.unlock();
    const auto t0 = Clock::now();
    Status st = engine->store()->Compact(NowMs(), engine->policy().state_options());
    const int64_t ms = MicrosSince(t0) / 1000;
    lock.lock();
    std::lock_guard<std::mutex> s(stats_mu);
    if (st.ok()) {
      ++compactions;
      spdlog::info("server: event store compacted in {} ms", ms);
    } else {
      ++compaction_failures;
      last_compaction_error = st.message();
      spdlog::error("server: event store compaction failed ({})", StatusCodeName(st.code()));
    }
  }
}

void Server::Impl::Handle(const Job& job, msgpack::sbuffer* out, const char** error_code) {
  const auto fail = [&](const char* code, const std::string& message) {
    out->clear();
    PackError(out, job.req.id, code, message);
    *error_code = code;
  };
  if (Clock::now() >= job.deadline) {
    return fail("deadline_exceeded", "deadline passed after " + std::to_string(MicrosSince(job.arrival) / 1000) +
                                         " ms in the queue");
  }
  try {
    msgpack::sbuffer body;
    Packer pk(&body);
    size_t fields = 0;
    Status st = Dispatch(job.req, pk, &fields, job.deadline);
    if (!st.ok()) return fail(ErrorCodeOf(st), st.message());
    const std::string& op = job.req.op;
    const bool read_only = op == "recommend" || op == "score" || op == "history" || op == "stats";
    if (read_only && Clock::now() > job.deadline) {
      return fail("deadline_exceeded", "not answered within the deadline (" +
                                           std::to_string(MicrosSince(job.arrival) / 1000) + " ms)");
    }
    Packer head(out);
    head.pack_map(static_cast<uint32_t>(fields + 1 + (job.req.id ? 1 : 0)));
    PackStr(head, "ok");
    head.pack_true();
    if (job.req.id) {
      PackStr(head, "id");
      head.pack(*job.req.id);
    }
    out->write(body.data(), body.size());
  } catch (const std::bad_alloc&) {
    fail("internal", "out of memory");
  } catch (const std::exception& e) {
    fail("internal", std::string("internal error: ") + e.what());
  } catch (...) {
    fail("internal", "internal error");
  }
}

namespace {

void PackStrList(Packer& pk, const std::vector<std::string>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) PackStr(pk, s);
}
void PackCounts(Packer& pk, const std::map<std::string, int64_t>& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    PackStr(pk, k);
    pk.pack(v);
  }
}

// Reads records (item or customer maps) under `key`: every value as CSV cell text.
Status ReadRecords(const Fields& f, const char* key, std::vector<serving::Record>* out) {
  const msgpack::object* arr = nullptr;
  size_t n = 0;
  QM_RETURN_IF_ERROR(f.Array(key, &arr, &n));
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string name = std::string(key) + "[" + std::to_string(i) + "]";
    if (arr[i].type != msgpack::type::MAP) return Status::InvalidArgument("'" + name + "': must be a map");
    for (uint32_t k = 0; k < arr[i].via.map.size; ++k) {
      const auto& kv = arr[i].via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR) return Status::InvalidArgument("'" + name + "': map keys must be strings");
      std::string col(kv.key.via.str.ptr, kv.key.via.str.size);
      std::string text;
      QM_RETURN_IF_ERROR(CellText(kv.val, name + "." + col, &text));
      (*out)[i][col] = std::move(text);
    }
  }
  return Status::Ok();
}

}  // namespace

Status Server::Impl::Dispatch(const Decoded& req, Packer& pk, size_t* fields, Clock::time_point deadline) {
  (void)deadline;
  QM_ASSIGN_OR_RETURN(Fields f, Fields::Of(req.root(), ""));
  const std::string& op = req.op;
  constexpr int64_t kTimeMax = int64_t{1} << 52;
  if (op == "recommend") {
    serving::Request r;
    int64_t count = 0, now = kNoTime;
    QM_RETURN_IF_ERROR(f.Str("customer_id", &r.customer_id, true, 256));
    if (r.customer_id.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
    QM_RETURN_IF_ERROR(f.Str("channel", &r.channel, true, 64));
    QM_RETURN_IF_ERROR(f.Int("count", &count, true, 1, 100));
    r.count = static_cast<int>(count);
    QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
    r.now_ms = now;
    QM_RETURN_IF_ERROR(f.StrList("exclude", &r.exclude, false, 256));
    QM_RETURN_IF_ERROR(f.StrMap("context", &r.context));
    QM_RETURN_IF_ERROR(f.Bool("debug", &r.debug));
    std::vector<serving::Response> out;
    QM_RETURN_IF_ERROR(engine->Recommend({r}, &out));
    if (out.size() != 1) return Status::Internal("engine returned no response");
    const serving::Response& resp = out[0];
    if (!resp.status.ok()) {
      if (resp.status.code() == StatusCode::kInvalidArgument && resp.status.message().find("channel") != std::string::npos) {
        return Status::InvalidArgument("'channel': " + resp.status.message());
      }
      return resp.status;
    }
    *fields = r.debug ? 5 : 4;
    PackStr(pk, "request_id");
    PackStr(pk, resp.request_id);
    PackStr(pk, "model_version");
    PackStr(pk, resp.model_version);
    PackStr(pk, "items");
    pk.pack_array(static_cast<uint32_t>(resp.items.size()));
    for (const auto& it : resp.items) {
      pk.pack_map(4);
      PackStr(pk, "item_id");
      PackStr(pk, it.item_id);
      PackStr(pk, "kind");
      PackStr(pk, it.kind);
      PackStr(pk, "score");
      pk.pack_double(it.score);
      PackStr(pk, "reasons");
      PackStrList(pk, it.reasons);
    }
    PackStr(pk, "took_us");
    pk.pack(resp.took_us);
    if (r.debug) {
      PackStr(pk, "debug");
      pk.pack_map(5);
      PackStr(pk, "counts");
      PackCounts(pk, resp.debug.counts);
      PackStr(pk, "dropped");
      PackCounts(pk, resp.debug.dropped);
      PackStr(pk, "fallbacks");
      PackStrList(pk, resp.debug.fallbacks);
      PackStr(pk, "stage_us");
      PackCounts(pk, resp.debug.stage_us);
      PackStr(pk, "known_customer");
      pk.pack(resp.debug.known_customer);
    }
    return Status::Ok();
  }
  if (op == "feedback") {
    const msgpack::object* arr = nullptr;
    size_t n = 0;
    QM_RETURN_IF_ERROR(f.Array("events", &arr, &n));
    std::vector<serving::FeedbackEvent> events;
    std::vector<size_t> index;  // events[k] came from request events[index[k]]
    serving::FeedbackResult result;
    for (size_t i = 0; i < n; ++i) {
      const std::string name = "events[" + std::to_string(i) + "]";
      serving::FeedbackEvent e;
      Status st = [&]() -> Status {
        QM_ASSIGN_OR_RETURN(Fields ef, Fields::Of(arr[i], name));
        QM_RETURN_IF_ERROR(ef.Int("ts_ms", &e.ts_ms, true, 1, kTimeMax));
        QM_RETURN_IF_ERROR(ef.Str("customer_id", &e.customer_id, true, 256));
        QM_RETURN_IF_ERROR(ef.Str("item_id", &e.item_id, true, 256));
        QM_RETURN_IF_ERROR(ef.Str("type", &e.type, true, 32));
        QM_RETURN_IF_ERROR(ef.Str("channel", &e.channel, true, 64));
        return ef.Str("request_id", &e.request_id, false, 256);
      }();
      if (!st.ok()) {
        result.rejected.push_back({i, "bad_request", st.message()});
        continue;
      }
      events.push_back(std::move(e));
      index.push_back(i);
    }
    if (!events.empty()) {
      QM_ASSIGN_OR_RETURN(serving::FeedbackResult r, engine->Feedback(events));
      result.accepted = r.accepted;
      for (auto& rej : r.rejected) {
        const size_t orig = rej.index < index.size() ? index[rej.index] : rej.index;
        result.rejected.push_back({orig, rej.code, "events[" + std::to_string(orig) + "]: " + rej.message});
      }
      std::sort(result.rejected.begin(), result.rejected.end(),
                [](const auto& a, const auto& b) { return a.index < b.index; });
    }
    *fields = 2;
    PackStr(pk, "accepted");
    pk.pack(result.accepted);
    PackStr(pk, "rejected");
    pk.pack_array(static_cast<uint32_t>(result.rejected.size()));
    for (const auto& rej : result.rejected) {
      pk.pack_map(3);
      PackStr(pk, "index");
      pk.pack(static_cast<uint64_t>(rej.index));
      PackStr(pk, "code");
      PackStr(pk, rej.code);
      PackStr(pk, "message");
      PackStr(pk, rej.message);
    }
    return Status::Ok();
  }
  if (op == "score") {
    std::string customer, channel;
    std::vector<std::string> ids;
    int64_t now = kNoTime;
    QM_RETURN_IF_ERROR(f.Str("customer_id", &customer, true, 256));
    if (customer.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
    QM_RETURN_IF_ERROR(f.Str("channel", &channel, true, 64));
    QM_RETURN_IF_ERROR(f.StrList("item_ids", &ids, true, 256));
    QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
    auto scores = engine->Score(customer, channel, ids, now);
    if (!scores.ok()) {
      if (scores.status().code() == StatusCode::kInvalidArgument) {
        return Status::InvalidArgument("'channel': " + scores.status().message());
      }
      return scores.status();
    }
    *fields = 1;
    PackStr(pk, "scores");
    pk.pack_array(static_cast<uint32_t>(scores->size()));
    for (const auto& s : *scores) {
      pk.pack_map(5);
      PackStr(pk, "item_id");
      PackStr(pk, s.item_id);
      PackStr(pk, "p_click");
      pk.pack_double(s.p_click);
      PackStr(pk, "p_convert");
      pk.pack_double(s.p_convert);
      PackStr(pk, "eligible");
      pk.pack(s.eligible);
      PackStr(pk, "blocked_by");
      PackStrList(pk, s.blocked_by);
    }
    return Status::Ok();
  }
  if (op == "items.upsert" || op == "customers.upsert") {
    const bool items = op == "items.upsert";
    std::vector<serving::Record> records;
    QM_RETURN_IF_ERROR(ReadRecords(f, items ? "items" : "customers", &records));
    auto n = items ? engine->UpsertItems(records) : engine->UpsertCustomers(records);
    if (!n.ok()) return n.status();
    *fields = 1;
    PackStr(pk, "count");
    pk.pack(*n);
    return Status::Ok();
  }
  if (op == "items.retire") {
    std::vector<std::string> ids;
    QM_RETURN_IF_ERROR(f.StrList("item_ids", &ids, true, 256));
    QM_ASSIGN_OR_RETURN(int64_t n, engine->RetireItems(ids));
    *fields = 1;
    PackStr(pk, "count");
    pk.pack(n);
    return Status::Ok();
  }
  if (op == "history") {
    std::string customer;
    int64_t since = 0, limit = 100, now = kNoTime;
    QM_RETURN_IF_ERROR(f.Str("customer_id", &customer, true, 256));
    if (customer.empty()) return Status::InvalidArgument("'customer_id': must not be empty");
    QM_RETURN_IF_ERROR(f.Int("since_ms", &since, false, 0, kTimeMax));
    QM_RETURN_IF_ERROR(f.Int("limit", &limit, false, 1, 10000));
    QM_RETURN_IF_ERROR(f.Int("now_ms", &now, false, 1, kTimeMax));
    QM_ASSIGN_OR_RETURN(policy::CustomerHistory h,
                        engine->History(customer, since, static_cast<size_t>(limit), now));
    *fields = 2;
    PackStr(pk, "events");
    pk.pack_array(static_cast<uint32_t>(h.events.size()));
    for (const auto& e : h.events) {
      pk.pack_map(5);
      PackStr(pk, "ts_ms");
      pk.pack(e.ts);
      PackStr(pk, "item_id");
      PackStr(pk, e.item_id);
      PackStr(pk, "type");
      PackStr(pk, EventTypeName(e.type));
      PackStr(pk, "channel");
      PackStr(pk, e.channel);
      PackStr(pk, "request_id");
      PackStr(pk, e.request_id);
    }
    PackStr(pk, "caps");
    pk.pack_array(static_cast<uint32_t>(h.caps.size()));
    for (const auto& c : h.caps) {
      pk.pack_map(5);
      PackStr(pk, "rule");
      PackStr(pk, c.rule);
      PackStr(pk, "scope");
      PackStr(pk, c.scope);
      PackStr(pk, "used");
      pk.pack(c.used);
      PackStr(pk, "limit");
      pk.pack(c.limit);
      PackStr(pk, "window_ms");
      pk.pack(c.window_ms);
    }
    return Status::Ok();
  }
  if (op == "reload") {
    std::string version;
    QM_RETURN_IF_ERROR(f.Str("version", &version, false, 128));
    if (!version.empty() && !ValidVersionName(version)) {
      return Status::InvalidArgument("'version': not a version name (letters, digits, '-', '_', '.')");
    }
    if (!version.empty() && !std::filesystem::exists(std::filesystem::path(artifacts_root) / version)) {
      return Status::NotFound("'version': no version '" + version + "' under the artifact root");
    }
    auto r = engine->Reload(version);
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      if (r.ok()) {
        ++reloads;
      } else {
        ++reload_failures;
        last_reload_error = r.status().message();
      }
    }
    if (!r.ok()) {
      spdlog::error("server: reload refused: {}", r.status().message());
      return r.status();
    }
    spdlog::info("server: reload: now serving {}", *r);
    *fields = 1;
    PackStr(pk, "model_version");
    PackStr(pk, *r);
    return Status::Ok();
  }
  if (op == "stats") {
    PackStats(pk, fields);
    return Status::Ok();
  }
  return Status(StatusCode::kInternal, "op '" + op + "' has no handler");
}

void Server::Impl::PackStats(Packer& pk, size_t* fields) {
  std::string store_status = "ok";
  if (auto* store = engine->store()) {
    auto st = store->State("__qm_stats_probe__");
    if (!st.ok()) store_status = st.status().ToString();
  }
  std::string current;
  if (auto c = training::ReadCurrent(artifacts_root); c.ok()) current = *c;
  size_t depth = 0;
  int running = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    depth = queue.size();
    running = busy;
  }
  std::lock_guard<std::mutex> lock(stats_mu);
  *fields = 7;
  PackStr(pk, "uptime_s");
  pk.pack(std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count());
  PackStr(pk, "versions");
  pk.pack_map(3);
  PackStr(pk, "server");
  PackStr(pk, "0.1.0");
  PackStr(pk, "model");
  PackStr(pk, engine->model_version());
  PackStr(pk, "current");
  PackStr(pk, current);
  PackStr(pk, "store");
  pk.pack_map(5);
  PackStr(pk, "backend");
  PackStr(pk, engine->store() ? engine->store()->backend() : "none");
  PackStr(pk, "status");
  PackStr(pk, store_status);
  PackStr(pk, "compactions");
  pk.pack(compactions);
  PackStr(pk, "compaction_failures");
  pk.pack(compaction_failures);
  PackStr(pk, "last_compaction_error");
  PackStr(pk, last_compaction_error);
  PackStr(pk, "queue");
  pk.pack_map(4);
  PackStr(pk, "depth");
  pk.pack(static_cast<uint64_t>(depth));
  PackStr(pk, "capacity");
  pk.pack(config.queue_capacity);
  PackStr(pk, "busy_workers");
  pk.pack(running);
  PackStr(pk, "shed");
  pk.pack(shed);
  PackStr(pk, "reloads");
  pk.pack_map(3);
  PackStr(pk, "ok");
  pk.pack(reloads);
  PackStr(pk, "failed");
  pk.pack(reload_failures);
  PackStr(pk, "last_error");
  PackStr(pk, last_reload_error);
  std::array<int64_t, kNumErrorCodes> total{};
  int64_t requests = 0;
  PackStr(pk, "ops");
  pk.pack_map(static_cast<uint32_t>(ops.size()));
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpStats& s = ops[i];
    requests += s.count;
    PackStr(pk, i < kOps.size() ? kOps[i] : "other");
    pk.pack_map(7);
    PackStr(pk, "count");
    pk.pack(s.count);
    PackStr(pk, "errors");
    uint32_t nonzero = 0;
    for (int64_t e : s.errors) nonzero += e > 0;
    pk.pack_map(nonzero);
    for (size_t c = 0; c < kNumErrorCodes; ++c) {
      total[c] += s.errors[c];
      if (s.errors[c] == 0) continue;
      PackStr(pk, kErrorCodes[c]);
      pk.pack(s.errors[c]);
    }
    PackStr(pk, "p50_us");
    pk.pack(s.latency.Quantile(0.5));
    PackStr(pk, "p90_us");
    pk.pack(s.latency.Quantile(0.9));
    PackStr(pk, "p99_us");
    pk.pack(s.latency.Quantile(0.99));
    PackStr(pk, "p999_us");
    pk.pack(s.latency.Quantile(0.999));
    PackStr(pk, "max_us_bucket");
    pk.pack(s.latency.Quantile(1.0));
  }
  PackStr(pk, "totals");
  pk.pack_map(2);
  PackStr(pk, "requests");
  pk.pack(requests);
  PackStr(pk, "errors");
  pk.pack_map(static_cast<uint32_t>(kNumErrorCodes));
  for (size_t c = 0; c < kNumErrorCodes; ++c) {
    PackStr(pk, kErrorCodes[c]);
    pk.pack(total[c]);
  }
}

Result<std::unique_ptr<Server>> Server::Start(const ServerConfig& config, serving::Engine* engine,
                                              std::string artifacts_root) {
  if (!engine) return Status::InvalidArgument("no engine");
  if (config.queue_capacity < 1) return Status::InvalidArgument("'server.queue_capacity': must be >= 1");
  if (config.max_frame_bytes < 64) return Status::InvalidArgument("'server.max_frame_bytes': must be >= 64");
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->engine = engine;
  impl->artifacts_root = std::move(artifacts_root);
  QM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { (void)Stop(); }

std::string Server::endpoint() const { return impl_->endpoint; }

Status Server::Stop() {
  Impl& im = *impl_;
  if (im.stopped.exchange(true)) return Status::Ok();
  im.draining = true;
  bool drained;
  {
    std::unique_lock<std::mutex> lock(im.mu);
    drained = im.idle_cv.wait_for(lock, std::chrono::milliseconds(im.config.drain_timeout),
                                  [&] { return im.queue.empty() && im.busy == 0; });
    im.stop_workers = true;
  }
  im.work_cv.notify_all();
  for (auto& t : im.workers) t.join();  // a worker still in the engine finishes its request first
  im.stop_front = true;  // forwards every reply the workers pushed, then closes (linger 2 s)
  if (im.front.joinable()) im.front.join();
  {
    std::lock_guard<std::mutex> lock(im.watch_mu);
    im.stop_watch = true;
  }
  im.watch_cv.notify_all();
  if (im.watch.joinable()) im.watch.join();
  if (im.maintain.joinable()) im.maintain.join();  // a compaction in progress finishes first
  im.ctx.close();
  spdlog::info("server: stopped ({})", drained ? "drained" : "drain timed out");
  return drained ? Status::Ok() : Status::DeadlineExceeded("drain timed out; queued requests were answered late");
}

StatsSnapshot Server::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  StatsSnapshot s;
  for (const auto& o : impl_->ops) {
    s.requests += o.count;
    for (int64_t e : o.errors) s.errors += e;
  }
  s.overloaded = impl_->shed;
  s.reloads = impl_->reloads;
  s.compactions = impl_->compactions;
  return s;
}

}  // namespace qm::server
