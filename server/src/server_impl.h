// Private: the server's state, shared by its threads (server.cc) and its ops (ops.cc).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "codec.h"
#include "codel.h"
#include "http.h"
#include "qianmian/campaign/campaign.h"
#include "qianmian/campaign/operators.h"
#include "qianmian/campaign/segments.h"
#include "qianmian/campaign/trigger.h"
#include "qianmian/server/server.h"
#include "reply_codec.h"

namespace qm::server {

using Clock = std::chrono::steady_clock;

inline int64_t MicrosSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count();
}

// Latency histogram: exact below 16 us, then 16 sub-buckets per power of two (<= 6.25% error).
class Histogram {
 public:
  static constexpr int kBuckets = 16 + 16 * 40;
  void Add(int64_t us) {
    ++b_[Index(us)];
    ++n_;
    sum_ += us;
  }
  int64_t count() const { return n_; }
  int64_t sum() const { return sum_; }
  // Entries whose bucket lies wholly at or below `us` (a Prometheus bucket's count, <= 6.25% low).
  int64_t CountAtMost(int64_t us) const {
    int64_t n = 0;
    for (int i = 0; i < kBuckets && Upper(i) <= us; ++i) n += b_[i];
    return n;
  }
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
  int64_t sum_ = 0;
};

struct OpStats {
  int64_t count = 0;
  std::array<int64_t, kNumErrorCodes> errors{};
  Histogram latency;
};

// The request an op runs for (campaign_ops.cc reads its peer address); set by Impl::Run.
void SetCurrentRequest(const Decoded* req);

struct Server::Impl {
  // One op of SPEC §5. `run` reads the request's fields and, on success, writes the reply's own
  // fields (after `ok` and `id`); on failure it writes nothing and the reply is an error.
  struct Op {
    const char* name;
    bool read_only;  // changes nothing: a reply ready past the deadline becomes deadline_exceeded
    bool front;      // answered at once by the front thread, never queued (nor refused while draining)
    bool shed;       // CoDel may answer it `overloaded` while the queue stands (not `stats`: an
                     // operator must see an overloaded server's figures)
    Status (Impl::*run)(const Fields& request, MapWriter* reply);
  };
  // The op table (ops.cc): every op once, in the order `stats` lists them.
  static const Op kOps[];
  static const size_t kNumOps;  // entries of kOps
  // The entry named `name`; null when no op has this name.
  static const Op* FindOp(std::string_view name);
  // The index of an op's counters: its place in kOps, or kNumOps ("other") for no op.
  static size_t OpSlot(const Op* op) { return op ? static_cast<size_t>(op - kOps) : kNumOps; }

  // A request waiting for a worker.
  struct Job {
    std::vector<zmq::message_t> envelope;  // peer identity [+ empty delimiter]
    zmq::message_t body;
    Decoded req;
    const Op* op = nullptr;  // the entry of req.op (set before the job is queued)
    Clock::time_point arrival;
    Clock::time_point deadline = Clock::time_point::max();
    // An app_home recommend without deadline_ms ([server] app_home_deadline): checked only
    // before it runs.
    Clock::time_point queue_deadline = Clock::time_point::max();
  };

  ServerConfig config;
  serving::Engine* engine = nullptr;
  std::string artifacts_root;
  ExperimentsSource experiments;  // null: `reload` keeps the experiment definition
  DecodeLimits limits;
  std::string endpoint;
  std::string replies_endpoint;  // inproc PULL of the front thread
  Clock::time_point started = Clock::now();
  TimeMs started_wall = NowMs();  // the host's wall clock when `started` was taken

  zmq::context_t ctx{1};
  std::thread front, watch, maintain, scheduler, stream;
  std::vector<std::thread> workers;  // the read lane's, then the write lane's

  // Queue and drain state.
  std::mutex mu;
  std::condition_variable work_cv;                                            // a job arrived, or stopping
  std::condition_variable write_cv;                                           // a write arrived, or stopping
  std::condition_variable idle_cv;                                            // queues empty and no worker busy
  std::deque<Job> queue;                                                      // guarded by mu: read-only ops
  std::deque<Job> writes;                                                     // guarded by mu: the write lane
  CoDel codel{std::chrono::milliseconds(0), std::chrono::milliseconds(100)};  // guarded by mu
  int busy = 0;                                                               // guarded by mu: workers running a job
  bool stop_workers = false;                                                  // guarded by mu
  std::atomic<bool> draining{false};
  std::atomic<bool> stop_front{false};
  std::atomic<bool> stopped{false};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool stop_watch = false;  // guarded by watch_mu

  // Stats, guarded by stats_mu.
  mutable std::mutex stats_mu;
  std::vector<OpStats> ops = std::vector<OpStats>(kNumOps + 1);  // by OpSlot
  ServerCounters counters;
  std::atomic<int64_t> received{0};  // frames the front thread took off the socket
  // What pages served (recommend): items by recall source ("ann", "popular", "similar_to",
  // "campaign", "explore", ...) and by experiment arm, and candidates blocked by each rule.
  std::map<std::string, int64_t> served_by_source, served_by_arm, blocked_by_rule;

  // CURVE (config.curve): each client's ops by the name its key maps to ("*" = all), by key
  // (32 raw bytes) the name, and the ZAP handler that lets in only those keys.
  std::map<std::string, std::vector<std::string>> client_ops;
  std::map<std::string, std::string> client_of_key;
  std::thread zap;
  std::atomic<bool> stop_zap{false};
  std::atomic<int64_t> curve_refused{0};  // handshakes the ZAP handler refused (/metrics)
  Status InitCurve(zmq::socket_t* router);
  void ZapLoop(zmq::socket_t* zap);
  // Whether the request's client may call its op (always without CURVE, and for the HTTP port's
  // JSON API); else the reason.
  bool MayCall(const Job& job, std::string* why) const;

  // The HTTP port (http.h): its JSON API reaches the ROUTER at http_inproc.
  std::unique_ptr<HttpFront> http;
  std::string http_inproc;
  std::string http_prefix;  // the routing ids of its inproc DEALERs start with this (random)
  // Whether the job came through the HTTP port (its inproc DEALERs: the random prefix, no CURVE
  // identity, no peer address).
  bool FromHttpPort(const Job& job) const;
  // The console's operator accounts (campaign/operators.h), null without an event store.
  std::unique_ptr<campaign::Operators> operators;
  // /metrics: the Prometheus text exposition of the counters above and `stats`'.
  std::string Metrics();
  // /readyz: a version is loaded, the store answers and the server is not draining.
  std::pair<bool, std::string> Ready();
  // Counts a served page for /metrics.
  void CountServed(const serving::Response& resp);

  // server.cc: the threads.
  Status Init();
  void FrontLoop(zmq::socket_t* router, zmq::socket_t* replies);
  // A worker of the read lane (writer false) or of the write lane.
  void WorkerLoop(int index, bool writer);
  // Waits for work and takes the next job into *job. Read lane: FIFO, or the newest while the
  // queue stands, moving into *shed the jobs CoDel sheds (to answer `overloaded`). Write lane:
  // FIFO. kRun: run *job; kShedOnly: only answer *shed; kStop: the workers stop. kRun and
  // kShedOnly count as busy.
  enum { kStop = 0, kRun = 1, kShedOnly = 2 };
  int NextJob(bool writer, Job* job, std::vector<Job>* shed);
  bool Idle() const { return queue.empty() && writes.empty() && busy == 0; }  // REQUIRES mu
  static bool IsAppHomeRecommend(const Job& job);
  void WatchLoop();
  void MaintainLoop();
  // Runs the due campaign occurrences and delayed trigger events every config.campaign_tick
  // (campaign/scheduler.h, trigger.h).
  void SchedulerLoop();
  // Consumes config.trigger_stream until the server stops (campaign/event_stream.h).
  void StreamLoop();
  // The time a compaction runs as of: the wall clock, bounded by the wall clock at the start plus
  // the (monotonic) time the server has run, plus a minute; a host clock stepped forward must not
  // age the event record (a year ahead would compact all of it away). Logs such a step.
  TimeMs CompactionNow();
  // Handles one frame in the front thread: true when answered there (reply in *out).
  bool Receive(std::vector<zmq::message_t>* frames, msgpack::sbuffer* out);
  void Record(size_t slot, const char* error_code, Clock::time_point arrival, const Decoded* req = nullptr);
  // Runs a decoded request; fills `out` with the reply (*error_code: null or the error's code).
  // Never throws.
  void Handle(const Job& job, msgpack::sbuffer* out, const char** error_code);
  // Runs `op`: on success *out holds the whole reply; on failure, part of one (to discard).
  Status Run(const Op& op, const Decoded& req, msgpack::sbuffer* out);

  // ops.cc: one function per op.
  Status Health(const Fields& request, MapWriter* reply);
  Status Recommend(const Fields& request, MapWriter* reply);
  Status Feedback(const Fields& request, MapWriter* reply);
  Status Score(const Fields& request, MapWriter* reply);
  Status UpsertItems(const Fields& request, MapWriter* reply);
  Status RetireItems(const Fields& request, MapWriter* reply);
  Status UpsertCustomers(const Fields& request, MapWriter* reply);
  Status History(const Fields& request, MapWriter* reply);
  Status Report(const Fields& request, MapWriter* reply);
  Status Reload(const Fields& request, MapWriter* reply);
  Status Stats(const Fields& request, MapWriter* reply);
  // campaign_ops.cc: SPEC §8's campaigns.* ops over `campaigns` (null without an event store).
  std::unique_ptr<campaign::Campaigns> campaigns;
  Status CampaignsCreate(const Fields& request, MapWriter* reply);
  Status CampaignsUpdate(const Fields& request, MapWriter* reply);
  Status CampaignsTransition(const Fields& request, MapWriter* reply);
  Status CampaignsGet(const Fields& request, MapWriter* reply);
  Status CampaignsList(const Fields& request, MapWriter* reply);
  Status CampaignsAudit(const Fields& request, MapWriter* reply);
  // The approver's preview of an occurrence: a dry run (campaign/run.h) through this engine on
  // one thread; nothing reserved or recorded. Its summary, with the channel's contact pressure
  // over the audience before and after.
  Status CampaignsDryrun(const Fields& request, MapWriter* reply);
  std::atomic<uint64_t> dryruns{0};
  // Contact pressure across the customer base: every customer of the data by the pushes on a
  // channel in the 7 and 30 days before now (confirmed contacts; reservations pending included).
  // Reads every customer's state: an operator's query.
  Status Pressure(const Fields& request, MapWriter* reply);  // names the dry runs' temporary send lists
  // Saved segments (campaign/segments.h), null without an event store.
  std::unique_ptr<campaign::Segments> segments;
  // (operators: see the HTTP port above)
  Status SegmentsSave(const Fields& request, MapWriter* reply);
  Status SegmentsGet(const Fields& request, MapWriter* reply);
  Status SegmentsList(const Fields& request, MapWriter* reply);
  // Event triggers (campaign/trigger.h): null without an event store.
  std::unique_ptr<campaign::Outbox> trigger_outbox;
  std::unique_ptr<campaign::Triggers> triggers;
  Status EventsIngest(const Fields& request, MapWriter* reply);
  // A customer's portrait in the served version (issue 18).
  Status Profile(const Fields& request, MapWriter* reply);
};

}  // namespace qm::server
