// The ZeroMQ server. Threads:
//   front   owns the ROUTER socket and an inproc PULL of replies; decodes each frame (hard limits),
//           answers at once what needs no engine (bad frames, health, overloaded, draining) and
//           queues the rest in one of two bounded queues (read-only ops; writes: feedback,
//           upserts, reload); forwards worker replies to their peers.
//   workers pop requests, check deadlines, run the op on the engine, push the encoded reply
//           (each its own inproc PUSH: ZeroMQ sockets are single-threaded). [server] workers
//           serve the read-only queue (CoDel, adaptive LIFO); write_workers the writes (FIFO), so
//           a page never waits for a write's fsync.
//   watch   polls <artifacts>/CURRENT and reloads the engine when CURRENT changes to another version.
#include "qianmian/server/server.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/campaign/event_stream.h"
#include "qianmian/campaign/operators.h"
#include "qianmian/campaign/scheduler.h"
#include "qianmian/push/audience.h"
#include "qianmian/recall/two_tower.h"
#include "server_impl.h"
#include "step_thread.h"
#include "thread_name.h"

namespace qm::server {

namespace {

// Frames up to this size (or twice max_frame_bytes when that is more) are read whole and, past
// max_frame_bytes, answered with bad_request; larger ones the transport cuts (ZeroMQ's
// maxmsgsize: the connection is dropped without a reply).
constexpr int64_t kTransportCut = int64_t{64} << 20;
int64_t TransportCut(int64_t max_frame_bytes) { return std::max(kTransportCut, max_frame_bytes * 2 + 1024); }

// 16 hex digits from the system's random source.
std::string RandomToken() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// The console's files when [server] console_dir is not set: <repo>/console beside a build tree
// (<repo>/build/tools/qianmian), <prefix>/share/qianmian/console installed; "" when neither.
std::string FindConsoleDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const std::filesystem::path& p : {exe.parent_path().parent_path().parent_path() / "console",
                                         exe.parent_path().parent_path() / "share" / "qianmian" / "console"}) {
    if (std::filesystem::is_regular_file(p / "index.html", ec)) return p.string();
  }
  return "";
}

// Starts `body` on a new thread that first names itself `name`.
template <class F>
std::thread NamedThread(std::string name, F body) {
  return std::thread([name = std::move(name), body = std::move(body)] {
    NameThisThread(name);
    body();
  });
}

// Lowers the calling thread's CPU priority by `by` nice steps (at most to 19); `what` names the
// thread in the warning when the system refuses.
void LowerThisThread(int by, const char* what) {
  if (by <= 0) return;
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno != 0 || setpriority(PRIO_PROCESS, tid, std::min(19, now + by)) != 0) {
    spdlog::warn("server: could not lower the priority of {} ([server] worker_nice)", what);
  }
}

// Puts the calling thread in Linux's idle scheduling class, or at nice 19 where that is refused.
void IdleThisThread(const char* what) {
  sched_param none{};
  if (sched_setscheduler(0, SCHED_IDLE, &none) != 0) LowerThisThread(19, what);
}

}  // namespace

Status Server::Impl::Init() {
  if (policy::EventStore* store = engine->store()) {
    serving::Engine* e = engine;
    campaigns = std::make_unique<campaign::Campaigns>(store, [e](const campaign::Definition& d, TimeMs now) {
      Status st;
      e->WithDataset([&](const Dataset& ds) {
        st = campaign::CheckDefinition(d, ds, now, e->time_zone(), e->policy().state_options().keep_contacts);
      });
      return st;
    });
    operators = std::make_unique<campaign::Operators>(store);
    segments = std::make_unique<campaign::Segments>(store, [e](const std::string& audience) {
      Status st;
      e->WithDataset([&](const Dataset& ds) { st = push::Audience::Compile(audience, ds).status(); });
      return st;
    });
    const std::string outbox = config.trigger_outbox.empty() ? "trigger_outbox" : config.trigger_outbox;
    Result<std::unique_ptr<campaign::Outbox>> ob = campaign::OpenOutbox(outbox, config.trigger_redis);
    if (!ob.ok()) return Status(ob.status().code(), "[server] trigger_outbox: " + ob.status().message());
    trigger_outbox = std::move(*ob);
    campaign::TriggerOptions to;
    to.time_zone = engine->time_zone().name();
    triggers = std::make_unique<campaign::Triggers>(engine, campaigns.get(), trigger_outbox.get(), to);
  } else if (!config.trigger_stream.empty()) {
    return Status::InvalidArgument("[server] trigger_stream: event triggers need the event store");
  }
  limits.max_frame_bytes = static_cast<size_t>(config.max_frame_bytes);
  limits.max_array = static_cast<size_t>(config.max_array);
  limits.max_depth = static_cast<size_t>(config.max_depth);
  limits.max_deadline = config.max_deadline;
  codel = CoDel(std::chrono::milliseconds(config.codel_target), std::chrono::milliseconds(config.codel_interval));
  static std::atomic<int> instance{0};
  replies_endpoint = "inproc://qm-replies-" + std::to_string(instance.fetch_add(1));
  auto router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
  auto replies = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pull);
  try {
    router->set(zmq::sockopt::linger, 2000);
    // Frames past the limit are read and answered with bad_request up to kTransportCut (or twice
    // the limit when that is more); beyond it the transport drops the connection unanswered.
    router->set(zmq::sockopt::maxmsgsize, TransportCut(config.max_frame_bytes));
    router->set(zmq::sockopt::sndhwm, 100000);
    router->set(zmq::sockopt::rcvhwm, 100000);
    if (config.curve) QM_RETURN_IF_ERROR(InitCurve(router.get()));
    router->bind(config.bind);
    endpoint = router->get(zmq::sockopt::last_endpoint);
    if (!config.http_bind.empty()) {
      http_inproc = replies_endpoint + "-http";
      router->bind(http_inproc);
    }
    replies->set(zmq::sockopt::linger, 0);
    replies->set(zmq::sockopt::rcvhwm, 0);
    replies->bind(replies_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot bind '" + config.bind + "': " + e.what());
  }
  if (!config.http_bind.empty()) {
    HttpHooks hooks;
    hooks.metrics = [this] { return Metrics(); };
    hooks.ready = [this] { return Ready(); };
    hooks.live = [this] { return !stop_front.load(); };
    hooks.ctx = &ctx;
    hooks.router = http_inproc;
    hooks.max_body = static_cast<size_t>(config.max_frame_bytes);
    hooks.threads = config.http_threads;
    hooks.timeout_ms = static_cast<int>(std::min<TimeMs>(config.max_deadline + 5 * kMsPerSecond, 600000));
    http_prefix = "http-" + RandomToken() + "-";
    hooks.identity_prefix = http_prefix;
    hooks.api = config.http_api;
    if (!config.http_clients.empty()) {
      QM_ASSIGN_OR_RETURN(hooks.api_clients, ReadHttpClients(config.http_clients));
      for (const HttpClient& c : hooks.api_clients) {
        for (const std::string& op : c.ops) {
          if (op != "*" && !FindOp(op)) {
            return Status::InvalidArgument(config.http_clients + ": client '" + c.name + "': unknown op '" + op + "'");
          }
        }
      }
    } else if (config.http_api && config.http_bind.rfind("127.", 0) != 0 &&
               config.http_bind.rfind("localhost:", 0) != 0) {
      spdlog::warn(
          "server: the JSON API on {} has no authentication ([server] http_clients); anyone who reaches the "
          "port may call every op",
          config.http_bind);
    }
    hooks.console = config.console;
    hooks.operators = operators.get();
    for (size_t i = 0; i < kNumOps; ++i) hooks.ops.push_back(kOps[i].name);
    hooks.console_config.dir = config.console_dir.empty() ? FindConsoleDir() : config.console_dir;
    hooks.console_config.idle_ms = config.console_idle;
    hooks.console_config.max_ms = config.console_session;
    hooks.console_config.secure_cookie = config.console_secure_cookie;
    hooks.console_config.max_failures = config.console_login_failures;
    hooks.console_config.lockout_ms = config.console_lockout;
    Result<std::unique_ptr<HttpFront>> h = HttpFront::Start(config.http_bind, std::move(hooks));
    QM_RETURN_IF_ERROR(h.status());  // before any thread starts: nothing to stop
    http = std::move(*h);
  }
  int n = config.workers > 0 ? config.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  front = NamedThread("qm-front", [this, r = router.release(), p = replies.release()] {
    std::unique_ptr<zmq::socket_t> router_owner(r), replies_owner(p);
    FrontLoop(r, p);
  });
  // Each thread named for what it does (`top -H`, /proc/PID/task/*/comm: the soak's per-thread CPU).
  for (int i = 0; i < n; ++i)
    workers.push_back(NamedThread("qm-worker-" + std::to_string(i), [this, i] { WorkerLoop(i, false); }));
  for (int i = 0; i < config.write_workers; ++i) {
    workers.push_back(NamedThread("qm-writer-" + std::to_string(i), [this, n, i] { WorkerLoop(n + i, true); }));
  }
  if (config.watch_interval > 0) watch = NamedThread("qm-watch", [this] { WatchLoop(); });
  if (config.compact_interval > 0) maintain = NamedThread("qm-compact", [this] { MaintainLoop(); });
  if (config.campaign_tick > 0 && campaigns) scheduler = NamedThread("qm-campaigns", [this] { SchedulerLoop(); });
  if (!config.trigger_stream.empty()) stream = NamedThread("qm-triggers", [this] { StreamLoop(); });
  spdlog::info("server: listening on {} with {} workers and {} write workers, queues {}, model {}", endpoint, n,
               config.write_workers, config.queue_capacity, engine->model_version());
  return Status::Ok();
}

void Server::Impl::Record(size_t slot, const char* error_code, Clock::time_point arrival, const Decoded* req) {
  const int64_t us = MicrosSince(arrival);
  if (config.access_log) {
    std::string id;
    if (req && req->id) {
      const msgpack::object& o = *req->id;
      if (o.type == msgpack::type::STR) id.assign(o.via.str.ptr, o.via.str.size);
      if (o.type == msgpack::type::POSITIVE_INTEGER) id = std::to_string(o.via.u64);
      if (o.type == msgpack::type::NEGATIVE_INTEGER) id = std::to_string(o.via.i64);
    }
    LogAccess(slot < kNumOps ? kOps[slot].name : "other", error_code, id, engine->model_version(), us,
              config.log_format == "json");
  }
  std::lock_guard<std::mutex> lock(stats_mu);
  OpStats& s = ops[slot];
  ++s.count;
  if (error_code) ++s.errors[ErrorCodeIndex(error_code)];
  s.latency.Add(us);
}

// A `recommend` for app_home (the channel field read from the decoded map).
bool Server::Impl::IsAppHomeRecommend(const Job& job) {
  if (job.req.op != "recommend") return false;
  auto f = Fields::Of(job.req.root(), "");
  std::string channel;
  return f.ok() && f->Str("channel", &channel, false).ok() && channel == "app_home";
}

bool Server::Impl::Receive(std::vector<zmq::message_t>* frames, msgpack::sbuffer* out) {
  // frames: identity, [envelope..., empty delimiter], body. REQ peers send the delimiter;
  // DEALER peers may or may not.
  const Clock::time_point arrival = Clock::now();
  received.fetch_add(1, std::memory_order_relaxed);
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
    try {  // where a change came from, for the campaigns' audit log (no address over inproc)
      if (const char* peer = job.body.gets("Peer-Address")) job.req.peer = peer;
    } catch (const zmq::error_t&) {
    }
    if (config.curve) {
      try {
        if (const char* user = job.body.gets("User-Id")) job.req.user = user;
      } catch (const zmq::error_t&) {
      }
    }
    job.req.via_http = FromHttpPort(job);
  }
  frames->clear();
  auto answer = [&](const char* code, const std::string& message, size_t slot) {
    PackError(out, job.req.id, code, message);
    Record(slot, code, arrival, &job.req);
    for (auto& f : job.envelope) frames->push_back(std::move(f));
    return true;
  };
  job.op = FindOp(job.req.op);
  const size_t slot = OpSlot(job.op);
  if (!st.ok()) return answer("bad_request", st.message(), slot);
  if (!job.op) return answer("unknown_op", "unknown op '" + job.req.op + "'", slot);
  if (std::string why; !MayCall(job, &why)) return answer("forbidden", why, slot);
  if (job.op->front) {
    const char* code = nullptr;
    Handle(job, out, &code);
    Record(slot, code, arrival, &job.req);
    for (auto& f : job.envelope) frames->push_back(std::move(f));
    return true;
  }
  if (draining.load()) return answer("unavailable", "server is shutting down", slot);
  const TimeMs d = job.req.deadline_ms > 0 ? job.req.deadline_ms : config.default_deadline;
  if (d > 0) job.deadline = arrival + std::chrono::milliseconds(d);
  if (job.req.deadline_ms <= 0 && config.app_home_deadline > 0 && IsAppHomeRecommend(job)) {
    job.queue_deadline = arrival + std::chrono::milliseconds(config.app_home_deadline);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    std::deque<Job>& lane = job.op->read_only ? queue : writes;
    if (lane.size() < static_cast<size_t>(config.queue_capacity)) {
      lane.push_back(std::move(job));
      (&lane == &queue ? work_cv : write_cv).notify_one();
      return false;
    }
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu);  // counters are stats_mu's, like every reader's
    ++counters.shed;
  }
  return answer("overloaded", "queue full (" + std::to_string(config.queue_capacity) + " waiting); retry later", slot);
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

int Server::Impl::NextJob(bool writer, Job* job, std::vector<Job>* shed) {
  std::unique_lock<std::mutex> lock(mu);
  if (writer) {
    write_cv.wait(lock, [&] { return stop_workers || !writes.empty(); });
    if (writes.empty()) return kStop;
    *job = std::move(writes.front());
    writes.pop_front();
    ++busy;
    return kRun;
  }
  if (queue.empty()) codel.Idle(Clock::now());
  work_cv.wait(lock, [&] { return stop_workers || !queue.empty(); });
  const Take take = TakeNext(
      &queue, &codel, Clock::now(), [](const Job& j) { return j.op->shed; }, job, shed);
  if (take == Take::kNone) return kStop;
  ++busy;  // until the job and the shed jobs are answered
  return take == Take::kRun ? kRun : kShedOnly;
}

void Server::Impl::WorkerLoop(int index, bool writer) {
  recall::OneThreadPerCaller();  // parallelism comes from the workers (also pins OpenMP here)
  LowerThisThread(config.worker_nice, writer ? "a write worker" : "a worker");
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, -1);
  push.set(zmq::sockopt::sndhwm, 0);
  push.connect(replies_endpoint);
  msgpack::sbuffer buf;
  auto send = [&](Job& job) {
    try {
      for (auto& f : job.envelope) push.send(f, zmq::send_flags::sndmore);
      push.send(zmq::buffer(buf.data(), buf.size()), zmq::send_flags::none);
    } catch (const std::exception& e) {
      spdlog::warn("server: worker {}: reply lost: {}", index, e.what());
    }
  };
  std::vector<Job> shed;
  for (;;) {
    Job job;
    shed.clear();
    const int next = NextJob(writer, &job, &shed);
    if (next == kStop) return;
    for (Job& s : shed) {  // CoDel: answered at once, never served late
      buf.clear();
      PackError(&buf, s.req.id, "overloaded",
                "shed after " + std::to_string(MicrosSince(s.arrival) / 1000) +
                    " ms in a standing queue (the server is over capacity); retry later");
      Record(OpSlot(s.op), "overloaded", s.arrival, &s.req);
      send(s);
    }
    if (!shed.empty()) {
      std::lock_guard<std::mutex> lock(stats_mu);
      counters.shed_delay += static_cast<int64_t>(shed.size());
    }
    if (next == kRun) {
      buf.clear();
      const char* code = nullptr;
      Handle(job, &buf, &code);
      Record(OpSlot(job.op), code, job.arrival, &job.req);
      if (code && (std::strcmp(code, "internal") == 0 || std::strcmp(code, "unavailable") == 0)) {
        spdlog::warn("server: worker {}: op {} failed with {}", index, job.req.op, code);
      }
      send(job);
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      --busy;
      if (Idle()) idle_cv.notify_all();
    }
  }
}

void Server::Impl::WatchLoop() {
  // The watch follows *changes* of CURRENT: a version loaded another way (the reload op, e.g. a
  // rollback on one replica) stays until CURRENT names another version. What CURRENT named when
  // the engine was opened counts as seen; a version that fails to load is not retried until
  // CURRENT changes again.
  std::string seen = engine->model_version();
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_cv.wait_for(lock, std::chrono::milliseconds(config.watch_interval), [&] { return stop_watch; })) {
    auto current = artifacts::ReadCurrent(artifacts_root);
    if (!current.ok() || *current == seen) continue;
    seen = *current;
    if (*current == engine->model_version()) continue;
    lock.unlock();
    auto r = engine->Reload(*current);
    lock.lock();
    std::lock_guard<std::mutex> s(stats_mu);
    counters.RecordReload({NowMs(), *current, "watch", r.ok() ? *r : "", r.ok() ? "" : r.status().message()});
    if (r.ok()) {
      spdlog::info("server: CURRENT names {}: now serving {}", *current, *r);
    } else {
      spdlog::error("server: CURRENT names {} but it was refused: {}", *current, r.status().message());
    }
  }
}

void Server::Impl::MaintainLoop() {
  // The compaction is background work: in Linux's idle scheduling class (this thread only), it
  // takes the cores only when the workers leave them idle, as RocksDB's own background threads
  // do. Measured on the 1M soak: at nice 19 pages were shed through every compaction, in the idle
  // class few (docs/BENCHMARKS.md; that the fair scheduler lets a nice-19 thread finish its slice
  // before a woken worker preempts it is the likely reason, not a measured one).
  // Its steps that hold a lock requests wait for run on a thread of the normal class, started
  // before this one leaves it: in the idle class a thread holding a stripe's lock waited up to
  // half a second for a core while the workers waited for the lock (docs/BENCHMARKS.md).
  StepThread locked("qm-compact-lock");
  IdleThisThread("the compaction thread");
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_cv.wait_for(lock, std::chrono::milliseconds(config.compact_interval), [&] { return stop_watch; })) {
    lock.unlock();
    const auto t0 = Clock::now();
    Status st = engine->store()->Compact(CompactionNow(), engine->policy().state_options(),
                                         [&locked](const policy::EventStore::Step& step) { return locked.Run(step); });
    const int64_t ms = MicrosSince(t0) / 1000;
    lock.lock();
    std::lock_guard<std::mutex> s(stats_mu);
    if (st.ok()) {
      ++counters.compactions;
      spdlog::info("server: event store compacted in {} ms ({})", ms, locked.Summary());
    } else {
      ++counters.compaction_failures;
      counters.last_compaction_error = st.message();
      spdlog::error("server: event store compaction failed ({})", StatusCodeName(st.code()));
    }
  }
}

void Server::Impl::SchedulerLoop() {
  LowerThisThread(config.worker_nice, "the campaign scheduler");  // threads it starts inherit it
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  campaign::SchedulerOptions o;
  o.holder = std::string("serve@") + host + ":" + std::to_string(getpid());
  o.grace = config.campaign_grace;
  o.lease = config.campaign_lease;
  o.outbox = config.campaign_outbox.empty() ? "campaign_runs" : config.campaign_outbox;
  o.time_zone = engine->time_zone().name();
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_cv.wait_for(lock, std::chrono::milliseconds(config.campaign_tick), [&] { return stop_watch; })) {
    lock.unlock();
    Result<campaign::PassReport> r = campaign::RunDueOccurrences(engine, campaigns.get(), o, NowMs());
    if (!r.ok()) {
      spdlog::error("server: campaign scheduler: {}", r.status().message());
    } else {
      for (const std::string& k : r->ran) spdlog::info("server: campaign occurrence {} ran", k);
      for (const std::string& k : r->missed) spdlog::warn("server: campaign occurrence {} missed (past the grace)", k);
      for (const std::string& k : r->failed) spdlog::error("server: campaign occurrence {}", k);
    }
    Result<std::vector<campaign::TriggerDecision>> due = triggers->RunDue(NowMs());
    if (!due.ok()) {
      spdlog::error("server: delayed trigger events: {}", due.status().message());
    } else if (!due->empty()) {
      spdlog::info("server: {} delayed trigger events decided", due->size());
    }
    lock.lock();
  }
}

void Server::Impl::StreamLoop() {
  LowerThisThread(config.worker_nice, "the trigger stream");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  campaign::StreamOptions o;
  o.key = config.trigger_stream;
  o.group = config.trigger_group;
  o.consumer = config.trigger_consumer.empty() ? std::string("serve@") + host : config.trigger_consumer;
  o.block_ms = 500;
  std::unique_ptr<campaign::EventStream> es;
  auto stopping = [&] {
    std::lock_guard<std::mutex> lock(watch_mu);
    return stop_watch;
  };
  auto pause = [&] {  // after an error: wait a second (or until the server stops)
    std::unique_lock<std::mutex> lock(watch_mu);
    watch_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stop_watch; });
  };
  while (!stopping()) {
    if (!es) {
      Result<std::unique_ptr<campaign::EventStream>> r = campaign::EventStream::Open(config.trigger_redis, o);
      if (!r.ok()) {
        spdlog::error("server: trigger stream {}: {}", o.key, r.status().message());
        pause();
        continue;
      }
      es = std::move(*r);
      spdlog::info("server: consuming trigger stream {} as {} of group {}", o.key, o.consumer, o.group);
    }
    Status st = es->Poll(triggers.get());
    if (!st.ok()) {
      spdlog::error("server: trigger stream {}: {} (the entries are read again)", o.key, st.message());
      pause();
    }
  }
}

TimeMs Server::Impl::CompactionNow() {
  const TimeMs wall = NowMs();
  const TimeMs bound = started_wall + MicrosSince(started) / 1000 + kMsPerMinute;
  if (wall <= bound) return wall;
  spdlog::warn(
      "server: the host clock reads {} s ahead of the time the server has run; compacting the event store "
      "as of that time instead",
      (wall - bound) / 1000);
  return bound;
}

void Server::Impl::Handle(const Job& job, msgpack::sbuffer* out, const char** error_code) {
  const auto fail = [&](const char* code, const std::string& message) {
    out->clear();
    PackError(out, job.req.id, code, message);
    *error_code = code;
  };
  if (Clock::now() >= job.deadline) {
    return fail("deadline_exceeded",
                "deadline passed after " + std::to_string(MicrosSince(job.arrival) / 1000) + " ms in the queue");
  }
  if (Clock::now() >= job.queue_deadline) {
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++counters.queue_deadline;
    }
    return fail("deadline_exceeded", "an app_home page still queued after " +
                                         std::to_string(MicrosSince(job.arrival) / 1000) +
                                         " ms ([server] app_home_deadline): the app has shown its fallback");
  }
  try {
    Status st = Run(*job.op, job.req, out);
    if (!st.ok()) return fail(ErrorCodeOf(st), st.message());
    if (job.op->read_only && Clock::now() > job.deadline) {
      return fail("deadline_exceeded",
                  "not answered within the deadline (" + std::to_string(MicrosSince(job.arrival) / 1000) + " ms)");
    }
  } catch (const std::bad_alloc&) {
    fail("internal", "out of memory");
  } catch (const std::exception& e) {
    fail("internal", std::string("internal error: ") + e.what());
  } catch (...) {
    fail("internal", "internal error");
  }
}

Status Server::Impl::Run(const Op& op, const Decoded& req, msgpack::sbuffer* out) {
  QM_ASSIGN_OR_RETURN(Fields request, Fields::Of(req.root(), ""));
  Status st;
  SetCurrentRequest(&req);
  MapWriter::Write(out, [&](MapWriter& reply) {
    WriteReplyHead(true, req.id, &reply);
    st = (this->*op.run)(request, &reply);
  });
  SetCurrentRequest(nullptr);
  return st;
}

Result<std::unique_ptr<Server>> Server::Start(const ServerConfig& config, serving::Engine* engine,
                                              std::string artifacts_root, ExperimentsSource experiments) {
  if (!engine) return Status::InvalidArgument("no engine");
  if (config.queue_capacity < 1) return Status::InvalidArgument("'server.queue_capacity': must be >= 1");
  if (config.max_frame_bytes < 64) return Status::InvalidArgument("'server.max_frame_bytes': must be >= 64");
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->engine = engine;
  impl->artifacts_root = std::move(artifacts_root);
  impl->experiments = std::move(experiments);
  QM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { (void)Stop(); }

std::string Server::endpoint() const { return impl_->endpoint; }

bool Server::Impl::FromHttpPort(const Job& job) const {
  return !http_prefix.empty() && job.req.user.empty() && job.req.peer.empty() && !job.envelope.empty() &&
         job.envelope[0].to_string_view().substr(0, http_prefix.size()) == http_prefix;
}

std::string Server::http_endpoint() const { return impl_->http ? impl_->http->endpoint() : ""; }

Status Server::Stop() {
  Impl& im = *impl_;
  if (im.stopped.exchange(true)) return Status::Ok();
  im.draining = true;
  bool drained;
  {
    std::unique_lock<std::mutex> lock(im.mu);
    drained = im.idle_cv.wait_for(lock, std::chrono::milliseconds(im.config.drain_timeout), [&] { return im.Idle(); });
    im.stop_workers = true;
  }
  im.work_cv.notify_all();
  im.write_cv.notify_all();
  for (auto& t : im.workers) t.join();  // a worker still in the engine finishes its request first
  if (im.http) im.http->Stop();         // its requests in flight have their replies (the front forwards them)
  im.stop_front = true;                 // forwards every reply the workers pushed, then closes (linger 2 s)
  if (im.front.joinable()) im.front.join();
  {
    std::lock_guard<std::mutex> lock(im.watch_mu);
    im.stop_watch = true;
  }
  im.watch_cv.notify_all();
  if (im.watch.joinable()) im.watch.join();
  if (im.maintain.joinable()) im.maintain.join();    // a compaction in progress finishes first
  if (im.scheduler.joinable()) im.scheduler.join();  // an occurrence in progress finishes first
  if (im.stream.joinable()) im.stream.join();        // the batch in progress is decided and acknowledged
  im.stop_zap = true;
  if (im.zap.joinable()) im.zap.join();
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
  s.overloaded = impl_->counters.shed;
  s.received = impl_->received.load();
  s.reloads = impl_->counters.reloads;
  s.compactions = impl_->counters.compactions;
  return s;
}

}  // namespace qm::server
