// `qianmian bench` (SPEC §3): a `recommend` load generator against a running server.
//   closed loop (--rate 0): C connections, each sends its next request when the last is answered;
//   open loop (--rate R):   R requests/s spread over C connections on a fixed schedule, whatever
//                           the replies do; latency counts from the scheduled send time, so a
//                           stalled server is not hidden (no coordinated omission).
// Prints throughput, latency percentiles and error counts; --csv writes every latency.
// --feedback-every N mixes in what an app reports: every Nth page served, its first item goes back
// as an `impression` (confirming the page's reservation) over --feedback-connections more
// connections (default 4; each sends its next impression when the last is answered).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_map>

#include "commands.h"
#include "curve_flags.h"
#include "qianmian/client/client.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/time.h"

namespace qm::tools {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string connect = "tcp://127.0.0.1:5555";
  double rate = 0;       // 0 = closed loop
  double duration = 10;  // seconds
  int concurrency = 4;
  std::string data;       // <data>/customers.csv supplies ids
  std::string customers;  // or one id per line
  std::string channel = "app_home";
  int count = 10;
  int64_t deadline_ms = 0;
  int64_t timeout_ms = 5000;
  uint64_t seed = 1;
  std::string csv;
  int retries = 0;         // closed loop: send an `overloaded` page again up to this many times
  int feedback_every = 0;  // 0 = no feedback; N = an impression for every Nth page served
  int feedback_connections = 4;
  int64_t tick_us = 0;  // open loop: send what is due every tick_us (0 = each request at its time)
  CurveFlags curve;
};

struct Sample {
  int64_t send_us;  // scheduled (open loop) or actual (closed loop) send, from the start
  int64_t latency_us;
  std::string outcome;  // "ok", a server error code, or "timeout" / "client_error"
};

// The pages to feed back (--feedback-every): the page connections hand every Nth served page's
// (customer, request id, first item) to the feedback connections, which sleep until one is handed
// (they polled every millisecond before: 4,000 wake-ups a second of the load generator's CPU on
// the server's two cores).
struct FeedbackFeed {
  int every = 0;
  std::string channel;
  std::atomic<int64_t> pages{0};
  std::mutex mu;
  std::condition_variable ready;
  std::deque<std::array<std::string, 3>> queue;
  bool closed = false;  // the load has ended: Next drains the queue, then says so

  void Served(const std::string& customer, const client::RecommendReply& r) {
    if (every <= 0 || !r.ok || r.items.empty()) return;
    if (pages.fetch_add(1) % every != every - 1) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back({customer, r.request_id, r.items[0].item_id});
    }
    ready.notify_one();
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
    }
    ready.notify_all();
  }
  // The next page to feed back; false once the feed is closed and empty.
  bool Next(std::array<std::string, 3>* page) {
    std::unique_lock<std::mutex> lock(mu);
    ready.wait(lock, [&] { return closed || !queue.empty(); });
    if (queue.empty()) return false;
    *page = std::move(queue.front());
    queue.pop_front();
    return true;
  }
};

Result<std::vector<std::string>> LoadIds(const BenchOptions& o) {
  std::vector<std::string> ids;
  if (!o.customers.empty()) {
    QM_ASSIGN_OR_RETURN(ids, ReadLines(o.customers, "customers file"));
  } else if (!o.data.empty()) {
    QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(o.data + "/customers.csv"));
    CsvRecord rec;
    int col = -1;
    while (reader->Next(&rec)) {
      if (col < 0) {
        for (size_t i = 0; i < rec.fields.size(); ++i) {
          if (rec.fields[i] == "customer_id") col = static_cast<int>(i);
        }
        if (col < 0) return Status::InvalidArgument(o.data + "/customers.csv has no customer_id column");
        continue;
      }
      if (rec.error.empty() && static_cast<size_t>(col) < rec.fields.size() && !rec.fields[col].empty()) {
        ids.emplace_back(rec.fields[col]);
      }
    }
    QM_RETURN_IF_ERROR(reader->status());
  } else {
    return Status::InvalidArgument("give --data DIR (customers.csv) or --customers FILE for the ids to ask for");
  }
  if (ids.empty()) return Status::InvalidArgument("no customer ids to ask for");
  return ids;
}

int64_t Us(Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

// The page request both loops send (the customer is drawn for each).
client::RecommendRequest PageRequest(const BenchOptions& o) {
  client::RecommendRequest req;
  req.channel = o.channel;
  req.count = o.count;
  req.deadline_ms = o.deadline_ms;
  return req;
}

// The closed loop: one connection's requests, each sent when the last is answered (with
// --retries, the client library's retries); appends its samples to *out. Each connection has its
// own thread (the closed loop's cost is small next to the open loop's at three times capacity).
Status RunClosedConnection(const BenchOptions& o, const std::vector<std::string>& ids, int index,
                           Clock::time_point start, FeedbackFeed* feed, std::vector<Sample>* out, int64_t* retried) {
  client::ClientOptions co;
  co.endpoint = o.connect;
  co.timeout_ms = o.timeout_ms;
  QM_RETURN_IF_ERROR(ApplyCurve(o.curve, &co));
  co.retries = o.retries;
  QM_ASSIGN_OR_RETURN(auto c, client::Client::Connect(co));
  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(index));
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  client::RecommendRequest req = PageRequest(o);
  const auto end = start + std::chrono::microseconds(static_cast<int64_t>(o.duration * 1e6));
  while (Clock::now() < end) {
    req.customer_id = ids[pick(rng)];
    const auto t0 = Clock::now();
    auto r = c->Recommend(req);
    const auto t1 = Clock::now();
    if (r.ok()) feed->Served(req.customer_id, *r);
    std::string outcome = r.ok() ? (r->ok ? "ok" : r->error_code)
                                 : (r.status().code() == StatusCode::kDeadlineExceeded ? "timeout" : "client_error");
    out->push_back({Us(t0 - start), Us(t1 - t0), std::move(outcome)});
  }
  *retried = c->retried();
  return Status::Ok();
}

// The open loop: one thread drives every connection (they share one ZeroMQ I/O thread), so the
// load generator takes little of a machine it shares with the server: at 5,100 requests/s a
// thread and an I/O thread per connection took 4.5-4.8 s of CPU in 10 s, this loop 3.6-3.9 s,
// and 2.5-2.8 s with --tick-us 1000 (2026-12-07; most of the rest is wake-ups). Request n goes
// at start + n / R on connection n mod C; latency counts from that scheduled time, so a request
// the generator sends late counts its lateness too.
Status RunOpenLoop(const BenchOptions& o, const std::vector<std::string>& ids, Clock::time_point start,
                   FeedbackFeed* feed, std::vector<std::vector<Sample>>* out) {
  client::ClientOptions co;
  co.endpoint = o.connect;
  co.timeout_ms = o.timeout_ms;
  QM_RETURN_IF_ERROR(ApplyCurve(o.curve, &co));
  QM_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<client::Client>> owned,
                      client::Client::ConnectMany(co, o.concurrency));
  std::vector<client::Client*> clients;
  for (auto& c : owned) clients.push_back(c.get());
  const size_t n_conn = clients.size();
  std::mt19937_64 rng(o.seed * 1000003);
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  client::RecommendRequest req = PageRequest(o);
  const auto end = start + std::chrono::microseconds(static_cast<int64_t>(o.duration * 1e6));
  const double gap_us = 1e6 / o.rate;
  struct Pending {
    Clock::time_point scheduled;
    std::string customer;
  };
  std::vector<std::unordered_map<uint64_t, Pending>> pending(n_conn);
  size_t in_flight = 0;
  int64_t n = 0;
  auto scheduled = [&](int64_t k) {
    return start + std::chrono::microseconds(static_cast<int64_t>(gap_us * static_cast<double>(k)));
  };
  const auto drain_until = end + std::chrono::milliseconds(o.timeout_ms);
  client::RecommendReply reply;
  for (;;) {
    auto now = Clock::now();
    auto next = scheduled(n);
    while (next < end && next <= now) {
      const size_t c = static_cast<size_t>(n % static_cast<int64_t>(n_conn));
      req.customer_id = ids[pick(rng)];
      auto tag = clients[c]->PostRecommend(req);
      if (tag.ok()) {
        pending[c][*tag] = {next, req.customer_id};
        ++in_flight;
      } else {
        (*out)[c].push_back({Us(next - start), Us(Clock::now() - next), "client_error"});
      }
      next = scheduled(++n);
    }
    if (next >= end && (in_flight == 0 || now >= drain_until)) break;
    auto wait_until = next < end ? next : drain_until;
    if (o.tick_us > 0 && next < end) wait_until = std::max(wait_until, now + std::chrono::microseconds(o.tick_us));
    // Waits to the microsecond (a request sent late would add the delay to its latency, which
    // counts from its schedule), then takes every reply that is ready.
    auto any = client::Client::WaitAny(clients, std::chrono::microseconds(std::max<int64_t>(0, Us(wait_until - now))));
    if (!any.ok()) return any.status();
    if (!*any) continue;
    for (size_t c = 0; c < n_conn; ++c) {
      for (;;) {
        uint64_t tag = 0;
        auto got = clients[c]->Receive(std::chrono::microseconds(0), &tag, &reply);
        if (!got.ok()) return got.status();
        if (!*got) break;
        auto it = pending[c].find(tag);
        if (it == pending[c].end()) continue;
        const auto t = it->second.scheduled;
        (*out)[c].push_back({Us(t - start), Us(Clock::now() - t), reply.ok ? "ok" : reply.error_code});
        feed->Served(it->second.customer, reply);
        pending[c].erase(it);
        --in_flight;
      }
    }
  }
  for (size_t c = 0; c < n_conn; ++c) {
    for (const auto& [tag, p] : pending[c]) {
      (*out)[c].push_back({Us(p.scheduled - start), Us(Clock::now() - p.scheduled), "timeout"});
    }
  }
  return Status::Ok();
}

// The feedback connection: sends each handed page's impression (synchronously) until the load has
// ended and the queue is empty; a sample per request ("ok" only when the event was accepted).
Status RunFeedback(const BenchOptions& o, Clock::time_point start, FeedbackFeed* feed, std::vector<Sample>* out) {
  client::ClientOptions co;
  co.endpoint = o.connect;
  co.timeout_ms = o.timeout_ms;
  QM_RETURN_IF_ERROR(ApplyCurve(o.curve, &co));
  QM_ASSIGN_OR_RETURN(auto c, client::Client::Connect(co));
  std::array<std::string, 3> page;
  while (feed->Next(&page)) {
    nlohmann::json ev = {{"ts_ms", NowMs()},     {"customer_id", page[0]}, {"item_id", page[2]},
                         {"type", "impression"}, {"channel", o.channel},   {"request_id", page[1]}};
    const std::string fields = nlohmann::json{{"events", nlohmann::json::array({ev})}}.dump();
    const auto t0 = Clock::now();
    auto r = c->Call("feedback", fields);
    const auto t1 = Clock::now();
    std::string outcome = "client_error";
    if (r.ok()) {
      outcome = !r->ok ? r->error_code : nlohmann::json::parse(r->json).value("accepted", 0) == 1 ? "ok" : "rejected";
    } else if (r.status().code() == StatusCode::kDeadlineExceeded) {
      outcome = "timeout";
    }
    out->push_back({Us(t0 - start), Us(t1 - t0), std::move(outcome)});
  }
  return Status::Ok();
}

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

Status Run(const BenchOptions& o) {
  if (o.concurrency < 1 || o.concurrency > 1024) return Status::InvalidArgument("--concurrency must be in 1..1024");
  if (!(o.duration > 0)) return Status::InvalidArgument("--duration must be > 0 seconds");
  if (o.rate < 0) return Status::InvalidArgument("--rate must be >= 0 (0 = closed loop)");
  if (o.retries < 0) return Status::InvalidArgument("--retries must be >= 0");
  if (o.feedback_every < 0) return Status::InvalidArgument("--feedback-every must be >= 0 (0 = none)");
  if (o.feedback_connections < 1 || o.feedback_connections > 64) {
    return Status::InvalidArgument("--feedback-connections must be in 1..64");
  }
  if (o.retries > 0 && o.rate > 0) {
    return Status::InvalidArgument("--retries applies to the closed loop only (an open loop keeps its schedule)");
  }
  QM_ASSIGN_OR_RETURN(std::vector<std::string> ids, LoadIds(o));
  std::vector<std::vector<Sample>> samples(o.concurrency);
  std::vector<Status> status(o.concurrency);
  std::vector<int64_t> retried(o.concurrency, 0);
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  FeedbackFeed feed;
  feed.every = o.feedback_every;
  const int feeders = o.feedback_every > 0 ? o.feedback_connections : 0;
  std::vector<std::vector<Sample>> feedback_samples(feeders);
  std::vector<Status> feedback_status(feeders);
  std::vector<std::thread> feeder;
  for (int i = 0; i < feeders; ++i) {
    feeder.emplace_back([&, i] { feedback_status[i] = RunFeedback(o, start, &feed, &feedback_samples[i]); });
  }
  std::vector<std::thread> threads;
  if (o.rate > 0) {
    threads.emplace_back([&] {
      std::this_thread::sleep_until(start);
      status[0] = RunOpenLoop(o, ids, start, &feed, &samples);
    });
  } else {
    for (int i = 0; i < o.concurrency; ++i) {
      threads.emplace_back([&, i] {
        std::this_thread::sleep_until(start);
        status[i] = RunClosedConnection(o, ids, i, start, &feed, &samples[i], &retried[i]);
      });
    }
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  feed.Close();
  for (auto& t : feeder) t.join();
  for (const auto& s : status) QM_RETURN_IF_ERROR(s);
  for (const auto& s : feedback_status) QM_RETURN_IF_ERROR(s);
  std::vector<Sample> feedback;
  for (auto& v : feedback_samples) feedback.insert(feedback.end(), v.begin(), v.end());
  std::vector<int64_t> all, ok;
  std::map<std::string, int64_t> outcomes;
  for (const auto& v : samples) {
    for (const auto& s : v) {
      all.push_back(s.latency_us);
      if (s.outcome == "ok") ok.push_back(s.latency_us);
      ++outcomes[s.outcome];
    }
  }
  std::sort(all.begin(), all.end());
  std::sort(ok.begin(), ok.end());
  const double window = std::min(elapsed, o.duration);
  std::printf("bench: %s loop, %s, concurrency %d, duration %.1f s, %zu customer ids, channel %s, count %d\n",
              o.rate > 0 ? "open" : "closed", o.connect.c_str(), o.concurrency, o.duration, ids.size(),
              o.channel.c_str(), o.count);
  if (o.rate > 0) std::printf("target rate   %.1f req/s\n", o.rate);
  std::printf("requests      %zu (%.1f req/s), ok %zu (%.1f req/s)\n", all.size(), all.size() / window, ok.size(),
              ok.size() / window);
  std::printf("outcomes     ");
  for (const auto& [k, v] : outcomes) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
  std::printf("\n");
  if (o.retries > 0) {
    int64_t n = 0;
    for (int64_t r : retried) n += r;
    std::printf("retried       %lld (overloaded pages sent again, up to %d times each)\n", static_cast<long long>(n),
                o.retries);
  }
  auto line = [](const char* name, const std::vector<int64_t>& v) {
    std::printf("%s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n", name,
                Percentile(v, 0.5) / 1e3, Percentile(v, 0.9) / 1e3, Percentile(v, 0.99) / 1e3,
                Percentile(v, 0.999) / 1e3, v.empty() ? 0.0 : v.back() / 1e3);
  };
  line("latency (all)", all);
  line("latency (ok) ", ok);
  if (o.feedback_every > 0) {
    std::map<std::string, int64_t> fb_outcomes;
    std::vector<int64_t> fb;
    for (const auto& s : feedback) {
      fb.push_back(s.latency_us);
      ++fb_outcomes[s.outcome];
    }
    std::sort(fb.begin(), fb.end());
    std::printf("feedback      %zu impressions (one per %d pages served), outcomes", feedback.size(), o.feedback_every);
    for (const auto& [k, v] : fb_outcomes) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
    std::printf("\n");
    line("feedback     ", fb);
  }
  if (!o.csv.empty()) {
    QM_ASSIGN_OR_RETURN(auto w, CsvWriter::Open(o.csv));
    w->Row({"connection", "send_us", "latency_us", "outcome"});
    auto rows = [&](int64_t connection, const std::vector<Sample>& v) {
      for (const auto& s : v) {
        w->Field(connection);
        w->Field(s.send_us);
        w->Field(s.latency_us);
        w->Field(s.outcome);
        w->EndRow();
      }
    };
    for (size_t c = 0; c < samples.size(); ++c) rows(static_cast<int64_t>(c), samples[c]);
    rows(-1, feedback);  // the feedback connections' requests
    QM_RETURN_IF_ERROR(w->Close());
  }
  return Status::Ok();
}

}  // namespace

Command AddBenchCommand(CLI::App& root) {
  auto opts = std::make_shared<BenchOptions>();
  Command c;
  c.app = root.add_subcommand("bench",
                              "recommend load against a running server: closed loop (--rate 0) over C "
                              "connections, or open loop at a fixed rate; prints throughput, latency "
                              "percentiles and error counts");
  c.app->add_option("--connect", opts->connect, "server address (default tcp://127.0.0.1:5555)");
  AddCurveOptions(c.app, &opts->curve);
  c.app->add_option("--rate", opts->rate, "requests per second over all connections; 0 = closed loop (default)");
  c.app->add_option("--duration", opts->duration, "seconds of load (default 10)");
  c.app->add_option("--concurrency", opts->concurrency, "connections (default 4)");
  c.app->add_option("--data", opts->data, "data folder whose customers.csv supplies the customer ids");
  c.app->add_option("--customers", opts->customers, "file with one customer id per line (instead of --data)");
  c.app->add_option("--channel", opts->channel, "channel (default app_home)");
  c.app->add_option("--count", opts->count, "items per request (default 10)");
  c.app->add_option("--deadline-ms", opts->deadline_ms, "deadline_ms sent with each request (default none)");
  c.app->add_option("--timeout", opts->timeout_ms, "client timeout per request in ms (default 5000)");
  c.app->add_option("--seed", opts->seed, "seed of the customer choice (default 1)");
  c.app->add_option("--csv", opts->csv,
                    "write every latency: connection,send_us,latency_us,outcome (connection -1: feedback)");
  c.app->add_option("--feedback-every", opts->feedback_every,
                    "every Nth page served, feed its first item back as an impression over "
                    "--feedback-connections more connections (default 0: none)");
  c.app->add_option("--feedback-connections", opts->feedback_connections,
                    "connections sending the impressions of --feedback-every (default 4)");
  c.app->add_option("--tick-us", opts->tick_us,
                    "open loop: wake to send what is due at most every N microseconds (fewer wake-ups for the "
                    "load generator; a request sent late counts its lateness; default 0: each at its time)");
  c.app->add_option("--retries", opts->retries,
                    "closed loop: send a page answered `overloaded` again up to N times after a jittered backoff "
                    "(the latency counts every attempt; default 0)");
  c.run = [opts]() -> Status { return Run(*opts); };
  return c;
}

}  // namespace qm::tools
