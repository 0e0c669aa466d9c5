// `qianmian simulate --world DIR --out DIR --days N --experiment LAYER`: the closed-loop
// simulator (issue 17). A generated bank's planted world is driven day by day: its first days
// run the bank's old logging policy for everyone (the history, written as out/data), then `train`
// learns from that history, and for the last N days every customer's planned contacts are handed
// over and decided by the customer's experiment arm: app sessions through `Engine::Recommend`
// (reserving caps), marketing pushes through push runs (`Engine::Push`, the path of `qianmian
// push`: caps, consent and ghosts for control arms), or by the bank's legacy logging policy
// (--legacy ARM), or at random (--random ARM). The push calendar is the world's planned push
// slots, one run per slot window (09:30, 12:00, 18:30), or with --push-calendar daily one run a
// day for every customer. The planted response model answers every item shown (fatigue and
// opt-outs from contact pressure included) and every event is fed back through
// `Engine::Feedback`, so caps, consent, suppression and profiles work as in production. The
// output is the layer's effect report on the simulated days (out/report.txt, out/report.json)
// and every event (out/simulated_events.csv).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/time.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/experiment/report.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/serving/engine.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/simulator.h"
#include "qianmian/training/pipeline.h"
#include "report_counts.h"
#include "sim_estimate.h"

namespace qm::tools {

namespace fs = std::filesystem;

namespace {

struct SimulateOptions {
  CommonOptions common;
  std::string world, out, experiment;
  int days = 0;
  int page = 4;  // items per app session: the logging policy's 1 product + 3 contents
  std::vector<std::string> legacy, random;
  int threads = 0;
  int retrain_every = 0;               // days; 0 = never
  std::string calendar = "planned";    // planned | daily
  std::string push_time = "09:30";     // the daily calendar's run (local time)
  std::vector<std::string> baselines;  // more reports, against these arms
  bool evaluate_training = false;      // false: train fits once, on every event, without figures
};

enum class Calendar { kPlanned, kDaily };

// A calendar push run in the handed-over contacts (sorted after every contact at its time).
constexpr uint32_t kCalendarRun = 0xFFFFFFFFu;

// The world's three marketing push windows of a day (09:30, 12:00, 18:30, each + up to 30 min).
int PushWindow(TimeMs ts, TimeMs day_start) {
  const TimeMs h = (ts - day_start) / kMsPerHour;
  return h < 11 ? 0 : h < 15 ? 1 : 2;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int ResolveThreads(int threads) {
  return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

enum class Strategy { kEngine, kLegacy, kRandom, kHoldout };

std::string ChannelName(ChannelId ch) { return ch == kAppHome ? "app_home" : "wechat_push"; }

serving::FeedbackEvent ToFeedback(const synth::Bank& bank, const synth::Event& e, const std::string& request) {
  serving::FeedbackEvent f;
  f.ts_ms = e.ts;
  f.customer_id = bank.customer_id(e.customer);
  f.item_id = bank.item_id(e.item);
  f.type = EventTypeName(e.type);
  f.channel = ChannelName(e.channel);
  f.request_id = request.empty() ? synth::RequestIdText(e) : request;
  return f;
}

// The history: the logging policy for everyone over the days before the closed loop, written as
// a data folder (the world's customers and items, these events).
Status WriteHistory(const SimulateOptions& o, const synth::Bank& bank, synth::Simulator* sim, int64_t days,
                    const std::string& data) {
  fs::create_directories(data);
  for (const char* f : {"customers.csv", "items.csv"}) {
    std::error_code ec;
    fs::copy_file(fs::path(o.world) / f, fs::path(data) / f, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::IoError("copying " + std::string(f) + " from --world: " + ec.message());
  }
  std::vector<synth::Event> events;
  QM_RETURN_IF_ERROR(sim->NextDays(days, &events));
  std::ofstream out(fs::path(data) / "events.csv", std::ios::trunc);
  out << "ts,customer_id,item_id,type,channel,request_id\n";
  for (const synth::Event& e : events) WriteSynthEvent(out, bank, e);
  out.close();
  if (!out) return Status::IoError("writing " + data + "/events.csv");
  std::fprintf(stderr, "history: %zu events over %lld days\n", events.size(), static_cast<long long>(days));
  return Status::Ok();
}

struct Loop {
  Loop(const synth::Bank& b, synth::Simulator& s, serving::Engine& e, const std::vector<Strategy>& st, int page_items,
       int worker_threads, Calendar cal, int push_at, std::ofstream& events_out, std::vector<synth::Event>* all)
      : bank(b),
        sim(s),
        engine(e),
        strategy(st),
        page(page_items),
        threads(worker_threads),
        calendar(cal),
        push_minute(push_at),
        out(events_out),
        window(all) {}

  const synth::Bank& bank;
  synth::Simulator& sim;
  serving::Engine& engine;
  const std::vector<Strategy>& strategy;
  int page;
  int threads;
  Calendar calendar;
  int push_minute;  // the daily calendar's run, minutes after local midnight
  std::ofstream& out;
  std::vector<synth::Event>* window;  // every event of the closed-loop days
  std::mt19937_64 rng{7};
  TimeMs day_start = 0;
  int64_t day = 0;
  std::vector<serving::FeedbackEvent> pending;
  // Wall seconds so far in the engine's pages and push runs, and in Engine::Feedback (the rest of
  // a day is the world's simulation and the loop's own work).
  double engine_seconds = 0, feedback_seconds = 0;

  // Shows `items` to the customer of contact `k`, feeds the events back and records them.
  Status ShowAndFeed(const synth::PlannedContact& k, const std::vector<uint32_t>& items, const std::string& request) {
    if (items.empty()) return Status::Ok();
    std::vector<synth::Exposure> x;
    for (size_t p = 0; p < items.size(); ++p)
      x.push_back({k.customer, items[p], k.channel, k.ts + static_cast<TimeMs>(p)});
    std::vector<synth::Event> ev;
    QM_RETURN_IF_ERROR(sim.Show(x.data(), x.size(), &ev));
    return Feed(ev, request);
  }

  // Queues events for the engine (sent by Flush, before the engine is asked again: one durable
  // store write per batch instead of one per contact) and records them.
  Status Feed(const std::vector<synth::Event>& ev, const std::string& request) {
    for (const synth::Event& e : ev) {
      pending.push_back(ToFeedback(bank, e, request));
      WriteSynthEvent(out, bank, e, request);
    }
    window->insert(window->end(), ev.begin(), ev.end());
    return Status::Ok();
  }
  Status Flush() {
    if (pending.empty()) return Status::Ok();
    const auto t0 = std::chrono::steady_clock::now();
    QM_ASSIGN_OR_RETURN(auto r, engine.Feedback(pending));
    feedback_seconds += Seconds(t0);
    pending.clear();
    if (!r.rejected.empty()) return Status::Internal("the engine rejected fed-back events: " + r.rejected[0].message);
    return Status::Ok();
  }

  uint32_t RandomItem(const std::function<bool(uint32_t)>& ok) {
    for (int tries = 0; tries < 50; ++tries) {
      const uint32_t i = static_cast<uint32_t>(rng() % bank.num_items());
      if (ok(i)) return i;
    }
    return UINT32_MAX;
  }
  std::vector<uint32_t> RandomPage(const synth::PlannedContact& k) {
    std::vector<uint32_t> items;
    for (int p = 0; p < page; ++p) {
      const uint32_t i = RandomItem([&](uint32_t i) {
        return sim.EligibleOnAppHome(k.customer, i, k.ts) && std::find(items.begin(), items.end(), i) == items.end();
      });
      if (i != UINT32_MAX) items.push_back(i);
    }
    return items;
  }
  // A random marketing push: eligible content the customer was never pushed (none after an opt-out).
  Status RandomPush(uint32_t customer, TimeMs ts) {
    const uint32_t i = RandomItem([&](uint32_t i) { return sim.EligibleForPush(customer, i, ts); });
    if (i == UINT32_MAX) return Status::Ok();
    return ShowAndFeed({customer, ts, kWechatPush, false}, {i}, "");
  }

  // Runs fn(lo, hi) over `threads` slices of [0, n) at once (as a server's workers); the engine's
  // work, timed into engine_seconds.
  Status InParallel(size_t n, const std::function<Status(size_t, size_t)>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t t = std::max<size_t>(1, std::min<size_t>(threads, n));
    std::vector<Status> st(t);
    std::vector<std::thread> workers;
    for (size_t w = 0; w < t; ++w) workers.emplace_back([&, w] { st[w] = fn(n * w / t, n * (w + 1) / t); });
    for (auto& w : workers) w.join();
    engine_seconds += Seconds(t0);
    for (const Status& x : st) QM_RETURN_IF_ERROR(x);
    return Status::Ok();
  }

  // The engine's answers to a batch of app sessions (distinct customers), shown and fed back.
  Status EngineBatch(const std::vector<synth::PlannedContact>& batch) {
    std::vector<serving::Request> reqs(batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      reqs[b].customer_id = bank.customer_id(batch[b].customer);
      reqs[b].channel = ChannelName(batch[b].channel);
      reqs[b].count = page;
      reqs[b].now_ms = batch[b].ts;
    }
    QM_RETURN_IF_ERROR(Flush());  // the engine sees every earlier response first
    std::vector<serving::Response> resp(reqs.size());
    QM_RETURN_IF_ERROR(InParallel(reqs.size(), [&](size_t lo, size_t hi) -> Status {
      std::vector<serving::Request> part(reqs.begin() + lo, reqs.begin() + hi);
      std::vector<serving::Response> got;
      QM_RETURN_IF_ERROR(engine.Recommend(part, &got));
      for (size_t k = 0; k < got.size(); ++k) resp[lo + k] = std::move(got[k]);
      return Status::Ok();
    }));
    for (size_t b = 0; b < batch.size(); ++b) {
      if (!resp[b].status.ok()) return resp[b].status;
      std::vector<uint32_t> items;
      for (const auto& it : resp[b].items) items.push_back(ItemIndex(it.item_id));
      QM_RETURN_IF_ERROR(ShowAndFeed(batch[b], items, resp[b].request_id));
    }
    return Status::Ok();
  }

  // A push run of the engine at ts for `customers` (the path of `qianmian push`: recall, ranker,
  // consent, caps, control arms' ghosts); each send is shown at ts and its responses fed back
  // under the run id, which the run's own reservation already counted.
  Status EnginePushRun(const std::vector<uint32_t>& customers, TimeMs ts, const std::string& run_id) {
    if (customers.empty()) return Status::Ok();
    QM_RETURN_IF_ERROR(Flush());
    std::vector<serving::PushChoice> choices(customers.size());
    constexpr size_t kChunk = 256;
    const size_t chunks = (customers.size() + kChunk - 1) / kChunk;
    QM_RETURN_IF_ERROR(InParallel(chunks, [&](size_t lo, size_t hi) -> Status {
      for (size_t c = lo; c < hi; ++c) {
        serving::PushRequest req;
        const size_t b = c * kChunk, e = std::min(customers.size(), b + kChunk);
        for (size_t k = b; k < e; ++k) req.customer_ids.push_back(bank.customer_id(customers[k]));
        req.now_ms = ts;
        req.run_id = run_id;
        std::vector<serving::PushChoice> got;
        QM_RETURN_IF_ERROR(engine.Push(req, &got));
        for (size_t k = 0; k < got.size(); ++k) choices[b + k] = std::move(got[k]);
      }
      return Status::Ok();
    }));
    for (size_t k = 0; k < customers.size(); ++k) {
      if (choices[k].items.empty()) continue;
      QM_RETURN_IF_ERROR(
          ShowAndFeed({customers[k], ts, kWechatPush, false}, {ItemIndex(choices[k].items[0].item_id)}, run_id));
    }
    ++push_runs;
    return Status::Ok();
  }
  int64_t push_runs = 0;

  std::unordered_map<std::string, uint32_t> item_index;
  uint32_t ItemIndex(const std::string& id) {
    if (item_index.empty()) {
      for (uint32_t i = 0; i < bank.num_items(); ++i) item_index[bank.item_id(i)] = i;
    }
    return item_index.at(id);
  }

  // The daily calendar's run: every customer, each by their arm's strategy.
  Status CalendarRun(TimeMs ts) {
    std::vector<uint32_t> engine_customers;
    for (uint32_t c = 0; c < strategy.size(); ++c) {
      switch (strategy[c]) {
        case Strategy::kLegacy: {
          std::vector<synth::Event> ev;
          QM_RETURN_IF_ERROR(sim.LoggingPush(c, ts, &ev));
          QM_RETURN_IF_ERROR(Feed(ev, ""));
          break;
        }
        case Strategy::kRandom:
          QM_RETURN_IF_ERROR(RandomPush(c, ts));
          break;
        default:
          engine_customers.push_back(c);
      }
    }
    return EnginePushRun(engine_customers, ts, "sim-d" + std::to_string(day) + "-daily");
  }

  // One day: every handed-over contact in time order (a customer's earlier contacts are answered
  // before a later one is asked); engine customers' app sessions go in batches of distinct
  // customers, their planned marketing pushes into one push run per push window.
  Status Day(const std::vector<synth::Event>& logged, std::vector<synth::PlannedContact> contacts) {
    QM_RETURN_IF_ERROR(Feed(logged, ""));
    std::vector<std::vector<uint32_t>> window_audience(3);
    for (const synth::PlannedContact& k : contacts) {
      const Strategy s = strategy[k.customer];
      if (k.channel == kWechatPush && !k.service && (s == Strategy::kEngine || s == Strategy::kHoldout))
        window_audience[PushWindow(k.ts, day_start)].push_back(k.customer);
    }
    if (calendar == Calendar::kDaily) {
      contacts.push_back({kCalendarRun, day_start + push_minute * kMsPerMinute, kWechatPush, false});
      std::stable_sort(contacts.begin(), contacts.end(), [](const auto& a, const auto& b) { return a.ts < b.ts; });
    }
    bool window_done[3] = {false, false, false};
    std::vector<synth::PlannedContact> batch;
    std::unordered_set<uint32_t> in_batch;
    auto flush = [&]() -> Status {
      Status st = batch.empty() ? Status::Ok() : EngineBatch(batch);
      batch.clear();
      in_batch.clear();
      return st;
    };
    for (const synth::PlannedContact& k : contacts) {
      if (k.customer == kCalendarRun) {
        QM_RETURN_IF_ERROR(flush());
        QM_RETURN_IF_ERROR(CalendarRun(k.ts));
        continue;
      }
      const Strategy s = strategy[k.customer];
      const bool marketing_push = k.channel == kWechatPush && !k.service;
      if (marketing_push && calendar == Calendar::kDaily) continue;  // the calendar replaces the plan
      if (in_batch.count(k.customer)) QM_RETURN_IF_ERROR(flush());
      std::vector<synth::Event> ev;
      if (k.service) {  // the bank's own service message, in its time order
        QM_RETURN_IF_ERROR(sim.RunServicePush(k, &ev));
        QM_RETURN_IF_ERROR(Feed(ev, ""));
      } else if (s == Strategy::kLegacy) {
        QM_RETURN_IF_ERROR(sim.RunLoggingContact(k, &ev));
        QM_RETURN_IF_ERROR(Feed(ev, ""));
      } else if (s == Strategy::kRandom) {
        QM_RETURN_IF_ERROR(marketing_push ? RandomPush(k.customer, k.ts) : ShowAndFeed(k, RandomPage(k), ""));
      } else if (marketing_push) {
        const int w = PushWindow(k.ts, day_start);
        if (window_done[w]) continue;
        window_done[w] = true;
        QM_RETURN_IF_ERROR(flush());
        QM_RETURN_IF_ERROR(
            EnginePushRun(window_audience[w], k.ts, "sim-d" + std::to_string(day) + "-w" + std::to_string(w)));
      } else {
        if (batch.size() >= 256) QM_RETURN_IF_ERROR(flush());
        batch.push_back(k);
        in_batch.insert(k.customer);
      }
    }
    QM_RETURN_IF_ERROR(flush());
    return Flush();
  }
};

// Per arm: the customers opted out of wechat_push at the end (customers.csv's and the loop's),
// and the consent check of the whole run.
std::string Consent(const experiment::LayerConfig& lc, const std::vector<experiment::CustomerOutcome>& outcomes,
                    const synth::Simulator& sim, int64_t push_runs) {
  std::vector<int64_t> assigned(lc.arms.size()), opted(lc.arms.size());
  for (uint32_t c = 0; c < outcomes.size(); ++c) {
    if (outcomes[c].arm == experiment::kNoArm) continue;
    ++assigned[outcomes[c].arm];
    opted[outcomes[c].arm] += sim.OptedOutOfPush(c);
  }
  std::string t = "\nopted out of wechat_push at the end (customers.csv's and the simulated days'):\n";
  char buf[160];
  for (size_t a = 0; a < lc.arms.size(); ++a) {
    std::snprintf(buf, sizeof buf, "  %-16s %8lld of %8lld (%.2f%%)\n", lc.arms[a].name.c_str(),
                  static_cast<long long>(opted[a]), static_cast<long long>(assigned[a]),
                  assigned[a] ? 100.0 * opted[a] / assigned[a] : 0.0);
    t += buf;
  }
  std::snprintf(buf, sizeof buf, "engine push runs: %lld; marketing pushes after an opt-out: %llu\n",
                static_cast<long long>(push_runs), static_cast<unsigned long long>(sim.ConsentViolations()));
  return t + buf;
}

Status Run(const SimulateOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  const auto& ex = config.experiments.config;
  QM_ASSIGN_OR_RETURN(const int layer, experiment::FindLayer(ex, o.experiment, "--experiment"));
  const experiment::LayerConfig& lc = ex.layers[layer];
  auto arm_index = [&](const std::string& name) -> int {
    for (size_t a = 0; a < lc.arms.size(); ++a) {
      if (lc.arms[a].name == name) return static_cast<int>(a);
    }
    return -1;
  };
  std::vector<int> baselines;
  for (const auto& n : o.baselines) {
    QM_ASSIGN_OR_RETURN(const int b, experiment::FindArm(lc, n, "--baseline"));
    baselines.push_back(b);
  }
  std::vector<Strategy> arm_strategy(lc.arms.size(), Strategy::kEngine);
  for (const auto& n : o.legacy) {
    if (arm_index(n) < 0) return Status::InvalidArgument("--legacy: no arm '" + n + "' in layer " + lc.name);
    arm_strategy[arm_index(n)] = Strategy::kLegacy;
  }
  for (const auto& n : o.random) {
    if (arm_index(n) < 0) return Status::InvalidArgument("--random: no arm '" + n + "' in layer " + lc.name);
    arm_strategy[arm_index(n)] = Strategy::kRandom;
  }
  QM_ASSIGN_OR_RETURN(synth::BankOptions bo, synth::ReadBankOptions(o.world));
  bo.threads = o.threads;
  QM_ASSIGN_OR_RETURN(auto bank, synth::Bank::Create(bo));
  Calendar calendar = Calendar::kPlanned;
  if (o.calendar == "daily") {
    calendar = Calendar::kDaily;
  } else if (o.calendar != "planned") {
    return Status::InvalidArgument("--push-calendar must be 'planned' or 'daily', got '" + o.calendar + "'");
  }
  int hh = 0, mm = 0;
  char extra = 0;
  if (std::sscanf(o.push_time.c_str(), "%d:%d%c", &hh, &mm, &extra) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59) {
    return Status::InvalidArgument("--push-time must be HH:MM (local time), got '" + o.push_time + "'");
  }
  synth::SimulatorOptions so;
  so.threads = o.threads;
  so.opt_outs = true;  // contact pressure costs opt-outs in the closed loop
  QM_ASSIGN_OR_RETURN(auto sim, synth::Simulator::Create(*bank, so));
  if (o.retrain_every < 0) return Status::InvalidArgument("--retrain-every must be >= 0");
  if (o.days < 1 || o.days >= sim->num_days()) {
    return Status::InvalidArgument("--days must be in [1, " + std::to_string(sim->num_days() - 1) +
                                   "]: the world's earlier days are the history");
  }
  const int64_t history_days = sim->num_days() - o.days;
  const std::string data = (fs::path(o.out) / "data").string(), artifacts = (fs::path(o.out) / "artifacts").string();
  fs::remove_all(o.out);
  const auto started = std::chrono::steady_clock::now();
  QM_RETURN_IF_ERROR(WriteHistory(o, *bank, sim.get(), history_days, data));
  config.data.dir = data;
  config.artifacts_root = artifacts;
  config.store.path = (fs::path(data) / "store").string();
  const training::ServedSettings served{config.policy, config.serving, "app_home"};
  // The loop serves only the published fit: without --evaluate-training, train skips the fit on
  // the split and its evaluation (about half of its time) and fits once, on every event.
  config.training.evaluate = o.evaluate_training;
  QM_ASSIGN_OR_RETURN(auto trained, training::Train(data, config.data, artifacts, config.training, config.json,
                                                    &config.store, &served));
  std::fprintf(stderr, "trained %s on the history, %.0f s\n", trained.version.c_str(), Seconds(started));
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(EngineOptionsFrom(config)));

  std::vector<experiment::CustomerOutcome> outcomes =
      experiment::AssignedOutcomes(experiment::Assigner(ex), layer, bank->num_customers(),
                                   [&](size_t c) -> const std::string& { return bank->customer_id(c); });
  std::vector<Strategy> strategy(bank->num_customers());
  for (size_t c = 0; c < strategy.size(); ++c) {
    strategy[c] = outcomes[c].arm == experiment::kNoArm ? Strategy::kHoldout : arm_strategy[outcomes[c].arm];
  }
  std::ofstream out(fs::path(o.out) / "simulated_events.csv", std::ios::trunc);
  out << "ts,customer_id,item_id,type,channel,request_id\n";
  std::vector<synth::Event> window;
  Loop loop(*bank, *sim, *engine, strategy, o.page, ResolveThreads(o.threads), calendar, hh * 60 + mm, out, &window);
  const TimeMs from = sim->DayStart(sim->day());
  std::vector<synth::Event> logged;
  std::vector<synth::PlannedContact> contacts;
  while (!sim->done()) {
    const auto day_started = std::chrono::steady_clock::now();
    const double engine_before = loop.engine_seconds, feedback_before = loop.feedback_seconds;
    loop.day_start = sim->DayStart(sim->day());
    loop.day = sim->day() - history_days + 1;
    QM_RETURN_IF_ERROR(sim->NextDaysClosedLoop(
        1, [](uint32_t) { return true; }, &logged, &contacts));
    const size_t handed = contacts.size();
    QM_RETURN_IF_ERROR(loop.Day(logged, std::move(contacts)));
    const int64_t day = sim->day() - history_days;
    const double day_seconds = Seconds(day_started), engine_s = loop.engine_seconds - engine_before,
                 feedback_s = loop.feedback_seconds - feedback_before;
    std::fprintf(stderr,
                 "day %lld of %lld: %zu handed-over contacts, %zu events so far, %.0f s (the day %.1f s: engine pages "
                 "and push runs %.1f s, feedback %.1f s, the world and the loop %.1f s)\n",
                 static_cast<long long>(day), static_cast<long long>(o.days), handed, window.size(), Seconds(started),
                 day_seconds, engine_s, feedback_s, day_seconds - engine_s - feedback_s);
    if (o.retrain_every > 0 && day % o.retrain_every == 0 && !sim->done()) {
      // train reads the history and every event fed back so far (the engine's store), then the
      // engine swaps the new version in as a server does.
      QM_RETURN_IF_ERROR(loop.Flush());
      QM_ASSIGN_OR_RETURN(auto again, training::Train(data, config.data, artifacts, config.training, config.json,
                                                      &config.store, &served));
      QM_ASSIGN_OR_RETURN(std::string now_serving, engine->Reload(again.version));
      std::fprintf(stderr, "day %lld: retrained, now serving %s\n", static_cast<long long>(day), now_serving.c_str());
    }
  }
  out.close();
  QM_ASSIGN_OR_RETURN(Dataset items, bank->ToDataset(config.data));
  for (const synth::Event& e : window) {
    double* k = outcomes[e.customer].in_window;
    const Item& it = items.items[e.item];
    experiment::CountEvent(e.type, it.service, it.value, k);
  }
  experiment::ReportWindow w;
  w.from = from;
  w.to = sim->DayStart(sim->num_days());
  std::unordered_map<std::string, uint32_t> index;
  for (uint32_t c = 0; c < bank->num_customers(); ++c) index[bank->customer_id(c)] = c;
  QM_RETURN_IF_ERROR(AddGhosts(
      engine->store(),
      [&](const std::string& id) -> std::optional<uint32_t> {
        auto c = index.find(id);
        if (c == index.end()) return std::nullopt;
        return c->second;
      },
      w, &outcomes));
  // The report against the layer's control (with the consent lines), then against each baseline.
  auto write = [&](int baseline, const std::string& name, const std::string& extra) {
    experiment::ExperimentReport r = experiment::BuildReport(lc, outcomes, false, baseline);
    r.from = w.from;
    r.to = w.to;
    const std::string text = experiment::FormatReport(r) + extra;
    std::fputs(text.c_str(), stdout);
    std::ofstream(fs::path(o.out) / (name + ".txt")) << text;
    std::ofstream(fs::path(o.out) / (name + ".json")) << experiment::ReportJson(r) << "\n";
  };
  write(-1, "report", Consent(lc, outcomes, *sim, loop.push_runs));
  for (size_t b = 0; b < baselines.size(); ++b) {
    std::printf("\nagainst %s:\n", o.baselines[b].c_str());
    write(baselines[b], "report_vs_" + o.baselines[b], "");
  }
  return Status::Ok();
}

}  // namespace

Command AddSimulateCommand(CLI::App& root) {
  auto opts = std::make_shared<SimulateOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("simulate", "closed-loop simulation of an experiment on a generated bank's world");
  cmd.app->add_option("--config", opts->common.config, "configuration file (TOML) with [experiments]");
  cmd.app->add_option("--world", opts->world, "a generated bank's folder (with truth/)")->required();
  cmd.app->add_option("--out", opts->out, "output folder (replaced): data/, artifacts/, events, report")->required();
  cmd.app->add_option("--days", opts->days, "closed-loop days at the end of the world's period")->required();
  cmd.app->add_option("--experiment", opts->experiment, "the layer of [experiments] whose arms are compared")
      ->required();
  cmd.app->add_option("--legacy", opts->legacy, "arms served by the bank's old logging policy");
  cmd.app->add_option("--random", opts->random, "arms shown random eligible pages and pushes");
  cmd.app->add_option("--page", opts->page, "items per app session (default 4, as the logging policy)");
  cmd.app->add_option("--retrain-every", opts->retrain_every,
                      "train again on everything so far every K closed-loop days and reload (0 = never)");
  cmd.app->add_option("--threads", opts->threads, "simulator threads (0 = all cores)");
  cmd.app->add_option("--push-calendar", opts->calendar,
                      "marketing push runs: 'planned' (the world's push slots, one run per window) or 'daily' "
                      "(one run a day for every customer)");
  cmd.app->add_option("--push-time", opts->push_time, "the daily calendar's run, local HH:MM (default 09:30)");
  cmd.app->add_option("--baseline", opts->baselines,
                      "also report every arm against this arm (DIR/report_vs_ARM.txt, .json); repeatable");
  cmd.app->add_flag("--evaluate-training", opts->evaluate_training,
                    "train as `train` does (fit on the split, evaluate, fit again on every event) instead of "
                    "one fit on every event without figures");
  cmd.run = [opts]() { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
