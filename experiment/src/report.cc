#include "qianmian/experiment/report.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace qm::experiment {

const char* MetricName(int metric) {
  static const char* kNames[kNumMetrics] = {"contacts", "clicks", "conversions", "value", "dismissals", "opens"};
  return metric >= 0 && metric < kNumMetrics ? kNames[metric] : "?";
}

int ControlArm(const LayerConfig& layer) {
  for (size_t a = 0; a < layer.arms.size(); ++a) {
    if (layer.arms[a].control_all || !layer.arms[a].control_channels.empty()) return static_cast<int>(a);
  }
  return 0;
}

ExperimentReport BuildReport(const LayerConfig& layer, const std::vector<CustomerOutcome>& customers, bool cuped) {
  ExperimentReport r;
  r.layer = layer.name;
  r.cuped = cuped;
  const int arms = static_cast<int>(layer.arms.size()), control = ControlArm(layer);
  // Per arm and metric: the per-customer values (and the pre-period's).
  std::vector<std::vector<std::vector<double>>> y(arms, std::vector<std::vector<double>>(kNumMetrics));
  std::vector<std::vector<std::vector<double>>> x = y;
  r.arms.resize(arms);
  for (const CustomerOutcome& c : customers) {
    if (c.arm == kNoArm) {
      ++r.holdout;
      continue;
    }
    if (c.arm < 0 || c.arm >= arms) continue;
    ArmReport& a = r.arms[c.arm];
    ++a.assigned;
    if (c.in_window[kContacts] > 0) ++a.contacted;
    for (int m = 0; m < kNumMetrics; ++m) {
      y[c.arm][m].push_back(c.in_window[m]);
      x[c.arm][m].push_back(c.pre_period[m]);
      a.metrics[m].total += c.in_window[m];
    }
  }
  std::vector<int64_t> observed(arms);
  std::vector<double> shares(arms);
  for (int a = 0; a < arms; ++a) {
    ArmReport& ar = r.arms[a];
    ar.name = layer.arms[a].name;
    ar.share = layer.arms[a].share;
    ar.control = a == control;
    observed[a] = ar.assigned;
    shares[a] = ar.share;
    for (int m = 0; m < kNumMetrics; ++m) {
      ar.metrics[m].per_customer = MeanWithInterval(y[a][m]);
      if (a == control) continue;
      ar.metrics[m].has_lift = true;
      ar.metrics[m].lift =
          cuped ? CupedLift(y[a][m], x[a][m], y[control][m], x[control][m]) : WelchLift(y[a][m], y[control][m]);
    }
  }
  r.sample_ratio = SampleRatioCheck(observed, shares);
  return r;
}

namespace {

std::string Num(double v) {
  char b[32];
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::snprintf(b, sizeof(b), "%.4f", v);
  return b;
}

}  // namespace

std::string FormatReport(const ExperimentReport& r) {
  std::string out = "experiment " + r.layer + (r.cuped ? " (lifts CUPED-adjusted with the pre-period)" : "") + "\n";
  char line[512];
  std::snprintf(line, sizeof(line), "%-16s %7s %10s %10s\n", "arm", "share", "assigned", "contacted");
  out += line;
  for (const ArmReport& a : r.arms) {
    std::snprintf(line, sizeof(line), "%-16s %7.3f %10lld %10lld%s\n", a.name.c_str(), a.share,
                  static_cast<long long>(a.assigned), static_cast<long long>(a.contacted),
                  a.control ? "  (control)" : "");
    out += line;
  }
  if (r.holdout > 0) out += "global holdout: " + std::to_string(r.holdout) + " customers (in no arm)\n";
  std::snprintf(line, sizeof(line), "sample ratio: chi-square %.3f, p = %.4g%s\n", r.sample_ratio.chi_square,
                r.sample_ratio.p_value,
                r.sample_ratio.mismatch ? "  MISMATCH: the assignment or the logging is broken" : "");
  out += line;
  for (int m = 0; m < kNumMetrics; ++m) {
    out += std::string("\n") + MetricName(m) + " per customer\n";
    std::snprintf(line, sizeof(line), "%-16s %12s %23s %12s %23s %9s %9s\n", "arm", "mean", "95% interval", "lift",
                  "95% interval", "relative", "p");
    out += line;
    for (const ArmReport& a : r.arms) {
      const MetricReport& mr = a.metrics[m];
      const std::string ci = "[" + Num(mr.per_customer.low) + ", " + Num(mr.per_customer.high) + "]";
      if (mr.has_lift) {
        const std::string lci = "[" + Num(mr.lift.low) + ", " + Num(mr.lift.high) + "]";
        std::snprintf(line, sizeof(line), "%-16s %12s %23s %12s %23s %8.1f%% %9.4f\n", a.name.c_str(),
                      Num(mr.per_customer.mean).c_str(), ci.c_str(), Num(mr.lift.difference).c_str(), lci.c_str(),
                      100 * mr.lift.relative, mr.lift.p_value);
      } else {
        std::snprintf(line, sizeof(line), "%-16s %12s %23s %12s\n", a.name.c_str(), Num(mr.per_customer.mean).c_str(),
                      ci.c_str(), "(control)");
      }
      out += line;
    }
  }
  return out;
}

std::string ReportJson(const ExperimentReport& r) {
  nlohmann::json j;
  j["experiment"] = r.layer;
  if (r.from != kNoTime) j["from_ms"] = r.from;
  if (r.to != kNoTime) j["to_ms"] = r.to;
  j["cuped"] = r.cuped;
  j["holdout_customers"] = r.holdout;
  j["sample_ratio"] = {{"chi_square", r.sample_ratio.chi_square},
                       {"p_value", r.sample_ratio.p_value},
                       {"mismatch", r.sample_ratio.mismatch}};
  auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const ArmReport& a : r.arms) {
    nlohmann::json ja = {{"arm", a.name},
                         {"share", a.share},
                         {"control", a.control},
                         {"assigned", a.assigned},
                         {"contacted", a.contacted}};
    for (int m = 0; m < kNumMetrics; ++m) {
      const MetricReport& mr = a.metrics[m];
      nlohmann::json jm = {{"total", mr.total},
                           {"per_customer", mr.per_customer.mean},
                           {"low", finite(mr.per_customer.low)},
                           {"high", finite(mr.per_customer.high)}};
      if (mr.has_lift) {
        jm["lift"] = {{"difference", mr.lift.difference}, {"low", finite(mr.lift.low)}, {"high", finite(mr.lift.high)},
                      {"relative", mr.lift.relative},     {"p_value", mr.lift.p_value}, {"cuped", mr.lift.cuped}};
      }
      ja["metrics"][MetricName(m)] = jm;
    }
    j["arms"].push_back(ja);
  }
  return j.dump(2);
}

}  // namespace qm::experiment
