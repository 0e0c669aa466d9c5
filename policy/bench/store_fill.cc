// Store memory and size at scale (issue 5): records every contact of a data folder's last
// `--days` days into a fresh embedded event store through the policy, then compacts, and
// prints throughput, peak RSS and the store's size on disk.
//   qm_store_fill DATA_DIR STORE_DIR [DAYS=30] [SYNC=0]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "qianmian/core/dataset.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/policy/policy.h"

namespace {
long PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}
uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: qm_store_fill DATA_DIR STORE_DIR [DAYS=30] [SYNC=0]\n");
    return 2;
  }
  const std::string data_dir = argv[1], store_dir = argv[2];
  const int days = argc > 3 ? std::atoi(argv[3]) : 30;
  const bool sync = argc > 4 && std::atoi(argv[4]) != 0;
  qm::DataConfig dc;
  auto ds = qm::LoadDataset(data_dir, dc);
  if (!ds.ok()) {
    std::fprintf(stderr, "%s\n", ds.status().ToString().c_str());
    return 1;
  }
  const long rss_data = PeakRssMb();
  auto tz = qm::TimeZone::Load(dc.timezone);
  auto policy = qm::policy::Policy::Create(qm::policy::PolicyConfig{}, ds->channels, *tz);
  if (!policy.ok()) {
    std::fprintf(stderr, "%s\n", policy.status().ToString().c_str());
    return 1;
  }
  std::filesystem::remove_all(store_dir);
  qm::policy::StoreConfig sc;
  sc.path = store_dir;
  sc.sync = sync;
  auto store = qm::policy::EventStore::Open(sc);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const auto& ev = ds->events;
  qm::TimeMs last = 0;
  for (auto t : ev.ts) last = std::max(last, t);
  const qm::TimeMs since = last - days * qm::kMsPerDay;
  std::vector<qm::policy::StoredEvent> batch;
  uint64_t recorded = 0;
  auto t0 = std::chrono::steady_clock::now();
  qm::Progress progress("recording contacts", ev.size(), " events");
  for (size_t e = 0; e < ev.size(); ++e) {
    progress.Add(1);
    if (ev.ts[e] < since) continue;
    const qm::Item& it = ds->items[ev.item[e]];
    qm::policy::StoredEvent s;
    s.ts = ev.ts[e];
    s.customer_id = ds->customers[ev.customer[e]].id;
    s.item_id = it.id;
    s.type = ev.type[e];
    s.channel = ds->channels.Name(ev.channel[e]);
    s.request_id = std::string(ev.RequestId(e));
    s.campaign = ds->campaigns.Name(it.campaign);
    s.category = ds->categories.Name(it.category);
    s.service = it.service;
    batch.push_back(std::move(s));
    if (batch.size() >= 50000) {
      qm::Status st = policy->Record(store->get(), batch);
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
      recorded += batch.size();
      batch.clear();
    }
  }
  if (!batch.empty()) {
    qm::Status st = policy->Record(store->get(), batch);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    recorded += batch.size();
  }
  progress.Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long rss_fill = PeakRssMb();
  const uint64_t bytes_before = DirBytes(store_dir);
  auto tc = std::chrono::steady_clock::now();
  qm::Status cst = (*store)->Compact(last, policy->state_options());
  const double csecs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tc).count();
  store->reset();
  std::printf("customers %zu, events in the last %d days recorded: %llu in %.1f s (%.0f events/s, sync=%d)\n",
              ds->customers.size(), days, static_cast<unsigned long long>(recorded), secs, recorded / secs, sync);
  std::printf("peak RSS: %ld MB after loading the data, %ld MB after recording (store's own share ~%ld MB)\n", rss_data,
              rss_fill, rss_fill - rss_data);
  std::printf("store on disk: %.1f MB before compaction, %.1f MB after (%s, %.1f s)\n", bytes_before / 1e6,
              DirBytes(store_dir) / 1e6, cst.ok() ? "ok" : cst.ToString().c_str(), csecs);
  return cst.ok() ? 0 : 1;
}
