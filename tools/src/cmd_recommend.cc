// `qianmian recommend` (SPEC §3): batch recommendations through the same engine path as the
// server, as a dry run (no contact is recorded), written as CSV.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"
#include "qianmian/push/shard.h"
#include "qianmian/serving/engine.h"

namespace qm::tools {

namespace {

struct RecommendOptions {
  CommonOptions common;
  std::string customers;
  std::string channel = "app_home";
  int count = 10;
  std::string out;
  std::string now;
  int threads = 0;
  std::string shard;
};

Status Run(const RecommendOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  if (o.count < 1 || o.count > 100) return Status::InvalidArgument("--count must be in 1..100");
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  TimeMs now = kNoTime;
  if (!o.now.empty()) {
    auto t = ParseTime(o.now, tz);
    if (!t) return Status::InvalidArgument("--now: cannot parse time '" + o.now + "'");
    now = *t;
  }
  push::Shard shard;
  if (!o.shard.empty()) {
    QM_ASSIGN_OR_RETURN(shard, push::ParseShard(o.shard));
  }
  QM_ASSIGN_OR_RETURN(std::vector<std::string> ids, ReadLines(o.customers, "customers file"));
  if (!shard.all())
    ids.erase(std::remove_if(ids.begin(), ids.end(), [&](const std::string& id) { return !shard.Holds(id); }),
              ids.end());
  serving::EngineOptions eo = EngineOptionsFrom(config);
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(std::move(eo)));
  if (now == kNoTime) now = engine->Now();  // the wall clock, or the data's end ([data] clock)
  QM_ASSIGN_OR_RETURN(auto writer, CsvWriter::Open(o.out));
  writer->Row({"customer_id", "rank", "item_id", "kind", "score", "reasons"});

  // Several workers, each running libtorch single-threaded (the engine pins 1 thread).
  const int workers = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<serving::Response> responses(ids.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  Status first_error;
  std::mutex error_mu;
  Progress progress("recommend", ids.size(), " customers");
  const size_t chunk = 32;
  auto work = [&] {
    std::vector<serving::Request> batch;
    std::vector<serving::Response> out;
    for (;;) {
      const size_t lo = next.fetch_add(chunk);
      if (lo >= ids.size() || failed.load()) return;
      const size_t hi = std::min(ids.size(), lo + chunk);
      batch.clear();
      for (size_t i = lo; i < hi; ++i) {
        serving::Request r;
        r.customer_id = ids[i];
        r.channel = o.channel;
        r.count = o.count;
        r.now_ms = now;
        r.dry_run = true;
        r.request_id = serving::BatchRequestId(now, ids[i]);  // deterministic exploration
        batch.push_back(std::move(r));
      }
      Status st = engine->Recommend(batch, &out);
      for (size_t k = 0; st.ok() && k < out.size(); ++k) {
        if (!out[k].status.ok()) st = out[k].status;
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = st;
        failed = true;
        return;
      }
      for (size_t i = lo; i < hi; ++i) responses[i] = std::move(out[i - lo]);
      progress.Add(hi - lo);
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  progress.Finish();
  QM_RETURN_IF_ERROR(first_error);
  std::string reasons;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& items = responses[i].items;
    for (size_t r = 0; r < items.size(); ++r) {
      reasons.clear();
      for (const auto& s : items[r].reasons) {
        if (!reasons.empty()) reasons += ';';
        reasons += s;
      }
      writer->Field(ids[i]);
      writer->Field(static_cast<int64_t>(r + 1));
      writer->Field(items[r].item_id);
      writer->Field(items[r].kind);
      writer->Field(items[r].score, 6);
      writer->Field(reasons);
      writer->EndRow();
    }
  }
  return writer->Close();
}

}  // namespace

Command AddRecommendCommand(CLI::App& root) {
  auto opts = std::make_shared<RecommendOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("recommend",
                                "Batch recommendations for a list of customers through the serving engine "
                                "(a dry run: no contact is recorded); writes CSV "
                                "customer_id,rank,item_id,kind,score,reasons");
  AddCommonOptions(cmd.app, &opts->common);
  cmd.app->add_option("--customers", opts->customers, "file with one customer id per line")->required();
  cmd.app->add_option("--channel", opts->channel, "channel (default app_home)");
  cmd.app->add_option("--count", opts->count, "items per customer, 1..100 (default 10)");
  cmd.app->add_option("--out", opts->out, "output CSV file")->required();
  cmd.app->add_option("--now", opts->now,
                      "time of the recommendations (ISO-8601 or epoch ms; default: now, or the data's end with [data] "
                      "clock = \"data_end\")");
  cmd.app->add_option("--shard", opts->shard,
                      "K/N: only the listed customers in shard K of N (by a hash of the customer id, as push)");
  cmd.app->add_option("--threads", opts->threads, "worker threads (default: every core)");
  cmd.run = [opts]() -> Status { return Run(*opts); };
  return cmd;
}

}  // namespace qm::tools
