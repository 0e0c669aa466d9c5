// A campaign's effect report (report.h).
#include "qianmian/campaign/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace qm::campaign {

namespace {

struct Customer {
  int arm = -1;  // 0 treatment, 1 holdout
  TimeMs first = 0;
  double y[CampaignReport::kMetrics] = {};
};

int MetricOf(EventType t) {
  switch (t) {
    case EventType::kPushOpen:
      return 0;
    case EventType::kClick:
      return 1;
    case EventType::kConvert:
      return 2;
    case EventType::kOptOut:
      return 3;
    default:
      return -1;
  }
}

}  // namespace

Result<CampaignReport> ReportCampaign(policy::EventStore* store, const Campaign& c, TimeMs to) {
  const std::string id = c.definition.id, prefix = id + "/", holdout_arm = "campaign:" + id + "=holdout";
  std::unordered_map<std::string, Customer> who;
  QM_RETURN_IF_ERROR(store->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.request_id.compare(0, prefix.size(), prefix) != 0) return true;
    int arm = -1;
    if (d.kind == policy::DecisionKind::kPushSend) arm = 0;
    if (d.kind == policy::DecisionKind::kGhost &&
        std::find(d.arms.begin(), d.arms.end(), holdout_arm) != d.arms.end()) {
      arm = 1;
    }
    if (arm < 0) return true;
    auto [it, added] = who.try_emplace(d.customer_id);
    if (added || d.ts < it->second.first) it->second.first = d.ts;
    if (it->second.arm < 0) it->second.arm = arm;
    return true;
  }));
  if (who.empty()) return Status::NotFound("campaign '" + id + "' has no sends or ghosts recorded yet");
  QM_RETURN_IF_ERROR(store->Export([&](const policy::StoredEvent& e) {
    auto it = who.find(e.customer_id);
    if (it == who.end() || e.ts < it->second.first || (to != kNoTime && e.ts >= to)) return true;
    const int m = MetricOf(e.type);
    if (m >= 0) it->second.y[m] += 1;
    return true;
  }));
  CampaignReport r;
  r.campaign = id;
  r.to = to;
  std::vector<double> y[2][CampaignReport::kMetrics];
  for (const auto& [_, cu] : who) {
    for (int m = 0; m < CampaignReport::kMetrics; ++m) y[cu.arm][m].push_back(cu.y[m]);
  }
  r.treatment_customers = static_cast<int64_t>(y[0][0].size());
  r.holdout_customers = static_cast<int64_t>(y[1][0].size());
  for (int m = 0; m < CampaignReport::kMetrics; ++m) {
    r.treatment[m] = experiment::MeanWithInterval(y[0][m]);
    r.holdout[m] = experiment::MeanWithInterval(y[1][m]);
    if (!y[0][m].empty() && !y[1][m].empty()) r.lift[m] = experiment::WelchLift(y[0][m], y[1][m]);
  }
  const double h = c.definition.holdout;
  if (h > 0 && h < 1) r.ratio = experiment::SampleRatioCheck({r.treatment_customers, r.holdout_customers}, {1 - h, h});
  return r;
}

std::string CampaignReport::Format() const {
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf, "campaign %s: %lld customers sent to, %lld held out (the same selection)\n",
                campaign.c_str(), static_cast<long long>(treatment_customers),
                static_cast<long long>(holdout_customers));
  s += buf;
  s += "  per customer since their first decision    treatment [95%]            holdout [95%]              lift "
       "[95%] (p)\n";
  for (int m = 0; m < kMetrics; ++m) {
    std::snprintf(buf, sizeof buf,
                  "  %-40s %7.4f [%7.4f, %7.4f]  %7.4f [%7.4f, %7.4f]  %+8.4f [%+.4f, %+.4f] (p=%.3g)\n",
                  kMetricNames[m], treatment[m].mean, treatment[m].low, treatment[m].high, holdout[m].mean,
                  holdout[m].low, holdout[m].high, lift[m].difference, lift[m].low, lift[m].high, lift[m].p_value);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "  sample ratio: chi-square %.2f, p = %.3g%s\n", ratio.chi_square, ratio.p_value,
                ratio.mismatch ? " -- MISMATCH: check the assignment and the logging" : "");
  s += buf;
  return s;
}

std::string CampaignReport::Json() const {
  nlohmann::json j = {
      {"campaign", campaign},
      {"treatment_customers", treatment_customers},
      {"holdout_customers", holdout_customers},
      {"sample_ratio", {{"chi_square", ratio.chi_square}, {"p_value", ratio.p_value}, {"mismatch", ratio.mismatch}}}};
  for (int m = 0; m < kMetrics; ++m) {
    auto mi = [](const experiment::MeanInterval& x) {
      return nlohmann::json{{"n", x.n}, {"mean", x.mean}, {"low", x.low}, {"high", x.high}};
    };
    j["metrics"][kMetricNames[m]] = {{"treatment", mi(treatment[m])},
                                     {"holdout", mi(holdout[m])},
                                     {"lift",
                                      {{"difference", lift[m].difference},
                                       {"low", lift[m].low},
                                       {"high", lift[m].high},
                                       {"p_value", lift[m].p_value},
                                       {"relative", lift[m].relative}}}};
  }
  return j.dump(2);
}

}  // namespace qm::campaign
