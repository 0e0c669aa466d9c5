#include "qianmian/experiment/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "qianmian/core/canvas.h"

namespace qm::experiment {

const char* MetricName(int metric) {
  static const char* kNames[kNumMetrics] = {"contacts",   "clicks", "conversions", "value",
                                            "dismissals", "opens",  "ghosts",      "opt_outs"};
  return metric >= 0 && metric < kNumMetrics ? kNames[metric] : "?";
}

void CountEvent(EventType type, bool service, double item_value, double* counts) {
  switch (type) {
    case EventType::kImpression:
    case EventType::kPushSent:
      counts[kContacts] += service ? 0 : 1;
      break;
    case EventType::kClick:
      counts[kClicks] += 1;
      break;
    case EventType::kConvert:
      counts[kConversions] += 1;
      counts[kValue] += item_value;
      break;
    case EventType::kDismiss:
      counts[kDismissals] += 1;
      break;
    case EventType::kPushOpen:
      counts[kOpens] += 1;
      break;
    case EventType::kOptOut:
      counts[kOptOuts] += 1;
      break;
  }
}

std::vector<CustomerOutcome> AssignedOutcomes(const Assigner& assigner, int layer, size_t n,
                                              const std::function<const std::string&(size_t)>& id) {
  std::vector<CustomerOutcome> out(n);
  Assignment a;
  for (size_t c = 0; c < n; ++c) {
    assigner.Assign(id(c), &a);
    out[c].arm = a.holdout ? kNoArm : a.arms[layer];
  }
  return out;
}

Result<int> FindLayer(const ExperimentsConfig& config, const std::string& name, const std::string& key) {
  std::string names;
  for (size_t l = 0; l < config.layers.size(); ++l) {
    if (config.layers[l].name == name) return static_cast<int>(l);
    names += (names.empty() ? "" : ", ") + config.layers[l].name;
  }
  return Status::InvalidArgument(key + ": no layer '" + name + "' in [experiments] (" +
                                 (names.empty() ? "none is configured" : "layers: " + names) + ")");
}

int ControlArm(const LayerConfig& layer) {
  for (size_t a = 0; a < layer.arms.size(); ++a) {
    if (layer.arms[a].control_all || !layer.arms[a].control_channels.empty()) return static_cast<int>(a);
  }
  return 0;
}

Result<int> FindArm(const LayerConfig& layer, const std::string& name, const std::string& key) {
  std::string names;
  for (size_t a = 0; a < layer.arms.size(); ++a) {
    if (layer.arms[a].name == name) return static_cast<int>(a);
    names += (names.empty() ? "" : ", ") + layer.arms[a].name;
  }
  return Status::InvalidArgument(key + ": no arm '" + name + "' in layer " + layer.name + " (arms: " + names + ")");
}

ExperimentReport BuildReport(const LayerConfig& layer, const std::vector<CustomerOutcome>& customers, bool cuped,
                             int baseline) {
  ExperimentReport r;
  r.layer = layer.name;
  r.cuped = cuped;
  const int arms = static_cast<int>(layer.arms.size());
  const int control = baseline >= 0 && baseline < arms ? baseline : ControlArm(layer);
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
    if (c.in_window[kGhosts] > 0) ++a.ghosted;
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
  std::snprintf(line, sizeof(line), "%-16s %7s %10s %10s %10s\n", "arm", "share", "assigned", "contacted", "ghosted");
  out += line;
  for (const ArmReport& a : r.arms) {
    std::snprintf(line, sizeof(line), "%-16s %7.3f %10lld %10lld %10lld%s\n", a.name.c_str(), a.share,
                  static_cast<long long>(a.assigned), static_cast<long long>(a.contacted),
                  static_cast<long long>(a.ghosted), a.control ? "  (control)" : "");
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
    nlohmann::json ja = {{"arm", a.name},          {"share", a.share},         {"control", a.control},
                         {"assigned", a.assigned}, {"contacted", a.contacted}, {"ghosted", a.ghosted}};
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

namespace {

// One panel: each arm's per-customer mean (bar) and its 95% interval (whisker).
void Panel(Canvas& c, const ExperimentReport& r, int metric, int x0, int y0, int x1, int y1) {
  c.Text(x0, y0 - 28, std::string(MetricName(metric)) + " per customer", 2);
  double top = 0;
  for (const ArmReport& a : r.arms) top = std::max(top, a.metrics[metric].per_customer.high);
  if (!(top > 0)) top = 1;
  c.Rect(x0, y1, x1, y1 + 2, 0x202020);
  c.Rect(x0 - 2, y0, x0, y1 + 2, 0x202020);
  c.Text(x0 - 4 - c.TextWidth(Num(top), 1), y0, Num(top), 1);
  c.Text(x0 - 10, y1 - 8, "0", 1);
  const int n = static_cast<int>(r.arms.size()), slot = n > 0 ? (x1 - x0) / n : 0;
  auto y_of = [&](double v) { return y1 - static_cast<int>(std::lround(std::max(0.0, v) / top * (y1 - y0))); };
  for (int i = 0; i < n; ++i) {
    const ArmReport& a = r.arms[i];
    const MeanInterval& m = a.metrics[metric].per_customer;
    const int bx0 = x0 + i * slot + slot / 5, bx1 = x0 + (i + 1) * slot - slot / 5, mid = (bx0 + bx1) / 2;
    c.Rect(bx0, y_of(m.mean), bx1, y1, a.control ? 0xa0a0a0 : 0x2f6fb5);
    if (std::isfinite(m.low) && std::isfinite(m.high)) {
      c.Rect(mid - 1, y_of(m.high), mid + 2, y_of(m.low) + 1, 0x202020);
      c.Rect(mid - 8, y_of(m.high), mid + 9, y_of(m.high) + 2, 0x202020);
      c.Rect(mid - 8, y_of(m.low) - 1, mid + 9, y_of(m.low) + 1, 0x202020);
    }
    c.Text(mid - c.TextWidth(a.name, 1) / 2, y1 + 8, a.name, 1);
    if (a.metrics[metric].has_lift) {
      const Lift& l = a.metrics[metric].lift;
      char b[64];
      std::snprintf(b, sizeof(b), "%+.1f%% p=%.3f", 100 * l.relative, l.p_value);
      c.Text(mid - c.TextWidth(b, 1) / 2, y1 + 20, b, 1, l.p_value < 0.05 ? 0xb02020 : 0x606060);
    }
  }
}

}  // namespace

Status WriteReportPlot(const ExperimentReport& r, const std::string& path) {
  const int W = 1200, H = 760;
  Canvas c(W, H);
  c.Text(20, 12, "Experiment " + r.layer + ": per-customer means with 95% intervals; lift over the control (grey)", 2);
  if (r.sample_ratio.mismatch)
    c.Text(20, 36, "SAMPLE RATIO MISMATCH: the assignment or the logging is broken", 2, 0xb02020);
  const int metrics[4] = {kContacts, kClicks, kConversions, kValue};
  for (int k = 0; k < 4; ++k) {
    const int col = k % 2, row = k / 2;
    const int x0 = 80 + col * (W / 2), x1 = x0 + W / 2 - 130, y0 = 100 + row * 340, y1 = y0 + 250;
    Panel(c, r, metrics[k], x0, y0, x1, y1);
  }
  return c.WritePng(path);
}

}  // namespace qm::experiment
