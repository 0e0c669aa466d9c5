// The served evaluation: the pages Engine::Recommend returns (the same stages, policy and
// re-rank as the server, exploration seeded by BatchRequestId) for each evaluated customer at the
// start of their held-out period, with the state known then (the bank without its held-out
// events), scored against the held-out targets. `qianmian eval` and `train` report it as their
// headline ("served.*"). Private to training.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/metrics/held_out.h"
#include "qianmian/policy/policy_config.h"
#include "qianmian/serving/serving_config.h"

namespace qm::training {

// A scratch folder, emptied when made and removed with the object: `path`, or a fresh folder
// under the system's temporary directory when `path` is "".
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& path = "");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ServedEvalOptions {
  std::string artifacts_root;  // the version to serve is <root>/CURRENT unless `version` is set
  std::string version;
  DataConfig data;  // its time zone
  policy::PolicyConfig policy;
  serving::ServingConfig serving;
  std::string channel = "app_home";
  std::vector<int> ks = {10, 20, 50};  // one page of each size per customer
  int threads = 2;                     // concurrent requests
  std::string pages_csv;               // "" = none; else every served page (customer_id,now,k,rank,item_id)
  // A generated bank's online value (online_value.h), when data_dir holds truth/ and value_at is
  // set: pages of 10 served at value_at to the bank's first value_customers customers.
  std::string data_dir;
  TimeMs value_at = kNoTime;
  int value_customers = 2000;
};

// Serves `targets.customers[i]` at times[i] from `ds` without the events `held_out` marks, with a
// scratch event store seeded from the remaining events (nothing reserved: dry runs), and returns
// "served.recall@K", "served.ndcg@K" for every K, "served.coverage@20" and "served.customers";
// and on a generated bank the online value ("value.*", online_value.h).
Result<std::map<std::string, double>> EvaluateServed(const Dataset& ds, const std::vector<uint8_t>& held_out,
                                                     const metrics::EvalTargets& targets,
                                                     const std::vector<TimeMs>& times,
                                                     const ServedEvalOptions& options);

}  // namespace qm::training
