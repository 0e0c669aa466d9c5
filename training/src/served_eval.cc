#include "served_eval.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "online_value.h"
#include "qianmian/core/progress.h"
#include "qianmian/serving/engine.h"
#include "qianmian/serving/rerank.h"

namespace qm::training {

namespace fs = std::filesystem;

namespace {

// The bank as it was before the held-out events: customers and items as loaded, the events
// `held_out` does not mark.
std::shared_ptr<Dataset> WithoutHeldOut(const Dataset& ds, const std::vector<uint8_t>& held_out) {
  auto out = std::make_shared<Dataset>();
  Dataset& d = *out;
  d.channels = ds.channels;
  d.regions = ds.regions;
  d.labels = ds.labels;
  d.categories = ds.categories;
  d.item_tags = ds.item_tags;
  d.campaigns = ds.campaigns;
  for (const Item& it : ds.items) d.AddItem(it);
  for (const Customer& c : ds.customers) d.AddCustomer(c);
  d.features = ds.features;
  const EventLog& e = ds.events;
  size_t kept = 0;
  for (size_t i = 0; i < e.size(); ++i) kept += !held_out[i];
  d.events.Reserve(kept);
  for (size_t i = 0; i < e.size(); ++i) {
    if (!held_out[i]) d.events.Append(e.ts[i], e.customer[i], e.item[i], e.type[i], e.channel[i], e.RequestId(i));
  }
  return out;
}

}  // namespace

ScratchDir::ScratchDir(const std::string& path) {
  static std::atomic<int> n{0};
  path_ =
      !path.empty()
          ? path
          : (fs::temp_directory_path() / ("qm_served_eval_" + std::to_string(::getpid()) + "_" + std::to_string(n++)))
                .string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Result<std::map<std::string, double>> EvaluateServed(const Dataset& ds, const std::vector<uint8_t>& held_out,
                                                     const metrics::EvalTargets& targets,
                                                     const std::vector<TimeMs>& times,
                                                     const ServedEvalOptions& options) {
  if (times.size() != targets.size()) return Status::InvalidArgument("one serving time per evaluated customer");
  ScratchDir scratch;
  serving::EngineOptions eo;
  eo.data = options.data;
  eo.dataset = WithoutHeldOut(ds, held_out);
  eo.artifacts_root = options.artifacts_root;
  eo.policy = options.policy;
  eo.serving = options.serving;
  eo.serving.seed_store = true;  // the contact state known then
  eo.store.path = scratch.path() + "/store";
  eo.store.sync = false;
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(eo));
  if (!options.version.empty() && engine->model_version() != options.version) {
    QM_RETURN_IF_ERROR(engine->Reload(options.version).status());
  }
  eo.dataset.reset();
  const int kmax = *std::max_element(options.ks.begin(), options.ks.end());
  // Per thread, per K: each K is scored on its own page of K items.
  const int threads = std::max(1, options.threads);
  std::vector<std::vector<metrics::RankingMetrics>> per_thread(threads);
  for (auto& v : per_thread) {
    for (int k : options.ks) v.emplace_back(std::vector<int>{k});
  }
  // pages[i * kmax ...]: the largest page of customer i (coverage).
  std::vector<uint32_t> top(targets.size() * kmax, metrics::kNoIndex);
  std::vector<std::string> lines;
  std::mutex lines_mu;
  Status failed;
  std::mutex failed_mu;
  std::atomic<size_t> next{0};
  Progress progress("serving the evaluated customers", targets.size(), " customers");
  auto work = [&](int w) {
    std::vector<serving::Response> out;
    std::vector<uint32_t> page;
    for (size_t i = next++; i < targets.size(); i = next++) {
      const Customer& cu = ds.customers[targets.customers[i]];
      std::vector<serving::Request> reqs;
      for (int k : options.ks) {
        serving::Request r;
        r.customer_id = cu.id;
        r.channel = options.channel;
        r.count = k;
        r.now_ms = times[i];
        r.dry_run = true;
        r.request_id = serving::BatchRequestId(times[i], cu.id);
        reqs.push_back(std::move(r));
      }
      Status st = engine->Recommend(reqs, &out);
      for (const auto& resp : out) {
        if (st.ok() && !resp.status.ok()) st = resp.status;
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(failed_mu);
        failed = st;
        return;
      }
      for (size_t q = 0; q < out.size(); ++q) {
        page.clear();
        for (const auto& item : out[q].items) {
          if (auto idx = ds.FindItem(item.item_id)) page.push_back(*idx);
        }
        if (options.ks[q] == kmax) std::copy(page.begin(), page.end(), top.begin() + i * kmax);
        if (!options.pages_csv.empty()) {
          std::string s;
          for (size_t r = 0; r < out[q].items.size(); ++r) {
            s += cu.id + "," + std::to_string(times[i]) + "," + std::to_string(options.ks[q]) + "," +
                 std::to_string(r + 1) + "," + out[q].items[r].item_id + "\n";
          }
          std::lock_guard<std::mutex> lock(lines_mu);
          lines.push_back(std::move(s));
        }
        per_thread[w][q].Add(metrics::IndexSpan{page.data(), page.size()}, targets.targets[i]);
      }
      progress.Add(1);
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) pool.emplace_back(work, w);
  for (auto& t : pool) t.join();
  progress.Finish();
  QM_RETURN_IF_ERROR(failed);
  std::map<std::string, double> out;
  for (size_t q = 0; q < options.ks.size(); ++q) {
    const int k = options.ks[q];
    metrics::RankingMetrics all({k});
    for (const auto& m : per_thread) all.Merge(m[q]);
    out["served.recall@" + std::to_string(k)] = all.Recall(k);
    out["served.ndcg@" + std::to_string(k)] = all.Ndcg(k);
  }
  if (kmax >= 20) {
    out["served.coverage@20"] =
        metrics::CatalogueCoverage(top.data(), targets.size(), kmax, 20, static_cast<uint32_t>(ds.items.size()));
  }
  out["served.customers"] = static_cast<double>(targets.size());
  if (!options.data_dir.empty() && options.value_at != kNoTime && options.value_customers > 0) {
    OnlineValueOptions vo;
    vo.customers = options.value_customers;
    vo.at = options.value_at;
    vo.slot_kinds = serving::SlotKinds(options.serving.slots);
    vo.max_per_category = options.serving.max_per_category;
    auto serve = [&](const std::string& customer, TimeMs at, std::vector<std::string>* items) -> Status {
      serving::Request r;
      r.customer_id = customer;
      r.channel = "app_home";
      r.count = vo.page_size;
      r.now_ms = at;
      r.dry_run = true;
      r.request_id = serving::BatchRequestId(at, customer);
      std::vector<serving::Response> resp;
      QM_RETURN_IF_ERROR(engine->Recommend({r}, &resp));
      QM_RETURN_IF_ERROR(resp[0].status);
      items->clear();
      for (const auto& it : resp[0].items) items->push_back(it.item_id);
      return Status::Ok();
    };
    QM_ASSIGN_OR_RETURN(auto value, OnlineValue(options.data_dir, ds, vo, serve));
    out.insert(value.begin(), value.end());
  }
  if (!options.pages_csv.empty()) {
    std::ofstream f(options.pages_csv, std::ios::trunc);
    f << "customer_id,now,k,rank,item_id\n";
    for (const auto& s : lines) f << s;
    if (!f) return Status::IoError("writing " + options.pages_csv + " failed");
  }
  return out;
}

}  // namespace qm::training
