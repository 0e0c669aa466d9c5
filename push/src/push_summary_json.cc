// PushSummary::Json (push_run.h).
#include <nlohmann/json.hpp>

#include "qianmian/push/push_run.h"

namespace qm::push {

using json = nlohmann::json;

std::string PushSummary::Json() const {
  const PushSummary& s = *this;
  json pressure = json::object();
  const char* when[2] = {"before", "after"};
  const char* window[2] = {"7d", "30d"};
  for (int b = 0; b < 2; ++b) {
    for (int w = 0; w < 2; ++w) {
      std::vector<int64_t> buckets(s.pressure[b][w], s.pressure[b][w] + kPressureBuckets);
      pressure[when[b]][window[w]] = {{"customers_by_bucket", buckets}, {"mean", s.mean_pressure[b][w]}};
    }
  }
  json j = {{"run_id", s.run_id},
            {"channel", s.channel},
            {"model_version", s.model_version},
            {"dry_run", s.dry_run},
            {"shard", s.shard},
            {"audience", s.audience},
            {"sent_customers", s.sent_customers},
            {"sends", s.sends},
            {"scheduled", s.scheduled},
            {"service", s.service},
            {"replayed", s.replayed},
            {"skipped", s.skipped},
            {"skipped_by", s.skipped_by},
            {"score_quantiles", s.score_quantiles},
            {"score_histogram", s.score_histogram},
            {"pressure", pressure},
            {"seconds", s.seconds},
            {"customers_per_second", s.customers_per_second}};
  return j.dump(2);
}

}  // namespace qm::push
