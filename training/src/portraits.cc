// Customer portraits and the churn model (portraits.h).
#include "qianmian/training/portraits.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace qm::training {

namespace {

constexpr int kWeeks = 8;        // activity counts per week, the last eight weeks
constexpr int kRegularDays = 1;  // customers active on fewer days of the lookback are not modelled

bool IsActivity(EventType t) { return t != EventType::kPushSent && t != EventType::kOptOut; }

// Each customer's activity days (day index from the first event's day), ascending, with
// repeats; and push sends and opens per day.
struct Activity {
  TimeMs day0 = 0;
  std::vector<std::vector<int32_t>> days;   // activity
  std::vector<std::vector<int32_t>> sends;  // push_sent
  std::vector<std::vector<int32_t>> opens;  // push_open
  int32_t DayOf(TimeMs t) const { return static_cast<int32_t>((t - day0) / kMsPerDay); }
};

Activity BuildActivity(const Dataset& ds, TimeMs first) {
  Activity a;
  a.day0 = first;
  const size_t n = ds.customers.size();
  a.days.assign(n, {});
  a.sends.assign(n, {});
  a.opens.assign(n, {});
  const EventLog& ev = ds.events;
  for (size_t e = 0; e < ev.size(); ++e) {
    const uint32_t c = ev.customer[e];
    if (c >= n) continue;
    const int32_t d = a.DayOf(ev.ts[e]);
    if (IsActivity(ev.type[e])) a.days[c].push_back(d);
    if (ev.type[e] == EventType::kPushSent) a.sends[c].push_back(d);
    if (ev.type[e] == EventType::kPushOpen) a.opens[c].push_back(d);
  }
  for (auto* v : {&a.days, &a.sends, &a.opens}) {
    for (auto& d : *v) std::sort(d.begin(), d.end());
  }
  return a;
}

// Entries of sorted `v` in [lo, hi).
int64_t CountIn(const std::vector<int32_t>& v, int32_t lo, int32_t hi) {
  return std::lower_bound(v.begin(), v.end(), hi) - std::lower_bound(v.begin(), v.end(), lo);
}

// Distinct values of sorted `v` in [lo, hi).
int64_t DistinctIn(const std::vector<int32_t>& v, int32_t lo, int32_t hi) {
  int64_t n = 0;
  for (auto it = std::lower_bound(v.begin(), v.end(), lo); it != v.end() && *it < hi; ++it) {
    n += it == v.begin() || *(it - 1) != *it;
  }
  return n;
}

// The last activity day before `day`, or -1.
int32_t LastBefore(const std::vector<int32_t>& v, int32_t day) {
  auto it = std::lower_bound(v.begin(), v.end(), day);
  return it == v.begin() ? -1 : *(it - 1);
}

// The features of customer c at the start of day `day` (the cutoff), with a lookback of `look` days.
std::vector<double> Features(const Dataset& ds, const Activity& a, uint32_t c, int32_t day, int32_t look) {
  const auto& v = a.days[c];
  std::vector<double> f;
  const int32_t last = LastBefore(v, day);
  const int32_t since = last < 0 ? look + 1 : std::min(day - last, look + 1);
  f.push_back(std::log1p(since));
  f.push_back(since <= 3 ? 1.0 : 0.0);
  double recent = 0, before = 0;
  for (int w = 0; w < kWeeks; ++w) {
    const int32_t hi = day - 7 * w, lo = std::max(day - 7 * (w + 1), day - look);
    const double n = hi > lo ? static_cast<double>(CountIn(v, lo, hi)) : 0.0;
    f.push_back(std::log1p(n));
    (w < 2 ? recent : before) += w < 4 ? n : 0;
  }
  f.push_back(std::log((recent + 1) / (before + 1)));
  // Silence against the customer's own rhythm: a regular customer's week of silence says more
  // than a rare visitor's. The rate is of active days before the last two weeks.
  const double early_days = static_cast<double>(std::max(1, look - 14));
  const double rate = static_cast<double>(DistinctIn(v, day - look, day - 14)) / early_days;
  f.push_back(std::log1p(since * rate));
  f.push_back(std::log((static_cast<double>(DistinctIn(v, day - 14, day)) + 0.5) / (14 * rate + 0.5)));
  f.push_back(std::log1p(static_cast<double>(DistinctIn(v, day - 14, day))));
  f.push_back(std::log1p(static_cast<double>(DistinctIn(v, std::max(day - look, day - 56), day - 14))));
  const double sends = static_cast<double>(CountIn(a.sends[c], day - 28, day));
  const double opens = static_cast<double>(CountIn(a.opens[c], day - 28, day));
  f.push_back((opens + 0.1) / (sends + 1));
  // The bank's numeric columns (e.g. balances and their change), signed log scale; missing = 0.
  for (const FeatureColumn& col : ds.features) {
    if (col.kind != FeatureColumn::Kind::kNumeric) continue;
    const float v = c < col.numeric.size() ? col.numeric[c] : NAN;
    f.push_back(std::isnan(v) ? 0.0 : std::copysign(std::log1p(std::fabs(v)), v));
  }
  const Customer& cu = ds.customers[c];
  f.push_back(cu.tier == Tier::kAffluent ? 1 : 0);
  f.push_back(cu.tier == Tier::kPrivate ? 1 : 0);
  for (uint32_t l = 1; l < ds.labels.size(); ++l) {
    f.push_back(std::binary_search(cu.tags.begin(), cu.tags.end(), l) ? 1 : 0);
  }
  return f;
}

// A logistic regression on standardized features (Newton's method, a small L2 penalty).
struct Logistic {
  Eigen::VectorXd mean, scale, w;  // w: weights then the intercept

  // Targets may be soft (0..1); a second Fit starts from the first's weights.
  void Fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y) {
    const size_t n = x.size(), d = x.empty() ? 0 : x[0].size();
    mean = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d));
    scale = Eigen::VectorXd::Ones(static_cast<Eigen::Index>(d));
    Eigen::MatrixXd X(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d + 1));
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < d; ++j) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = x[i][j];
    }
    for (size_t j = 0; j < d; ++j) {
      const auto col = X.col(static_cast<Eigen::Index>(j));
      mean(static_cast<Eigen::Index>(j)) = col.mean();
      const double sd = std::sqrt((col.array() - col.mean()).square().mean());
      scale(static_cast<Eigen::Index>(j)) = sd > 1e-9 ? sd : 1.0;
    }
    for (size_t j = 0; j < d; ++j) {
      const auto jj = static_cast<Eigen::Index>(j);
      X.col(jj) = (X.col(jj).array() - mean(jj)) / scale(jj);
    }
    X.col(static_cast<Eigen::Index>(d)).setOnes();
    Eigen::VectorXd Y(static_cast<Eigen::Index>(n));
    for (size_t i = 0; i < n; ++i) Y(static_cast<Eigen::Index>(i)) = y[i];
    if (w.size() != static_cast<Eigen::Index>(d + 1)) w = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d + 1));
    const double lambda = 1e-3 * static_cast<double>(n);
    for (int it = 0; it < 25; ++it) {
      const Eigen::VectorXd prob = (1.0 / (1.0 + (-(X * w).array()).exp())).matrix();
      const Eigen::VectorXd wt = (prob.array() * (1 - prob.array())).max(1e-6).matrix();
      const Eigen::VectorXd grad = X.transpose() * (prob - Y) + lambda * w;
      Eigen::MatrixXd H = X.transpose() * wt.asDiagonal() * X;
      H.diagonal().array() += lambda;
      const Eigen::VectorXd step = H.ldlt().solve(grad);
      w -= step;
      if (step.norm() < 1e-8) break;
    }
  }

  double Predict(const std::vector<double>& x) const {
    double z = w(w.size() - 1);
    for (size_t j = 0; j < x.size(); ++j) {
      const auto jj = static_cast<Eigen::Index>(j);
      z += w(jj) * (x[j] - mean(jj)) / scale(jj);
    }
    return 1.0 / (1.0 + std::exp(-z));
  }
};

// The probability that a customer who stays is nevertheless silent through `horizon` days after
// `day`: (1 - r)^horizon, r the share of active days in the lookback (smoothed). Measuring r
// before the last two weeks only (so that a leaver's decline does not lower it) ranked the
// planted leavers a little better (AUC 0.828 against 0.821 on the demo's bank) but the
// observable label worse (0.793 against 0.807, and the top 5% below recency's).
double ChanceSilence(const Activity& a, uint32_t c, int32_t day, int32_t look, int32_t horizon) {
  const double r = (static_cast<double>(DistinctIn(a.days[c], day - look, day)) + 0.5) / (look + 1.0);
  return std::pow(1.0 - std::min(r, 0.999), horizon);
}

// The at-risk population at cutoff `day` (active in the lookback) with their features, whether
// they stayed away through [day, day + horizon), and their chance of that silence if they stay.
struct ChurnExamples {
  std::vector<uint32_t> who;
  std::vector<std::vector<double>> x;
  std::vector<uint8_t> y;
  std::vector<double> chance;
};

ChurnExamples Examples(const Dataset& ds, const Activity& a, int32_t day, int32_t look, int32_t horizon) {
  ChurnExamples e;
  for (uint32_t c = 0; c < ds.customers.size(); ++c) {
    if (DistinctIn(a.days[c], day - look, day) < kRegularDays) continue;  // silence means little for the others
    e.who.push_back(c);
    e.x.push_back(Features(ds, a, c, day, look));
    e.y.push_back(CountIn(a.days[c], day, day + horizon) == 0 ? 1 : 0);
    e.chance.push_back(ChanceSilence(a, c, day, look, horizon));
  }
  return e;
}

// The churn model: a silent horizon is either leaving (probability p, the logistic regression)
// or chance for a customer who stays (probability q, ChanceSilence): P(silent) = p + (1 - p) q.
// Fit by expectation-maximization: a silent customer's soft label is p / (p + (1 - p) q), the
// posterior that they left. Without this, the model learns that rare visitors "leave", since
// they go silent as often as real leavers (docs/BENCHMARKS.md, issue 18: churn).
Logistic FitChurn(const ChurnExamples& e) {
  std::vector<double> soft(e.y.begin(), e.y.end());
  Logistic lr;
  for (int round = 0; round < 30; ++round) {
    lr.Fit(e.x, soft);
    double change = 0;
    for (size_t i = 0; i < soft.size(); ++i) {
      if (!e.y[i]) continue;
      const double p = lr.Predict(e.x[i]);
      const double s = p / (p + (1 - p) * e.chance[i]);
      change = std::max(change, std::fabs(s - soft[i]));
      soft[i] = s;
    }
    if (change < 1e-3) break;
  }
  return lr;
}

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return score[i] < score[j]; });
  double rank_sum = 0, pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double mid = (static_cast<double>(i) + static_cast<double>(j) + 1) / 2;  // 1-based average rank
    for (size_t k = i; k < j; ++k) {
      if (label[order[k]]) {
        rank_sum += mid;
        ++pos;
      }
    }
    i = j;
  }
  const double neg = static_cast<double>(score.size()) - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

double PrecisionAtTop(const std::vector<double>& score, const std::vector<uint8_t>& label, double share) {
  const size_t k = std::max<size_t>(1, static_cast<size_t>(std::ceil(share * static_cast<double>(score.size()))));
  if (score.empty()) return 0;
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return score[i] > score[j]; });
  double hits = 0;
  for (size_t i = 0; i < k && i < order.size(); ++i) hits += label[order[i]];
  return hits / static_cast<double>(std::min(k, order.size()));
}

Result<PortraitResult> FitPortraits(const Dataset& ds) {
  const EventLog& ev = ds.events;
  if (ev.size() == 0) return Status::InvalidArgument("portraits: no events");
  const TimeMs first = *std::min_element(ev.ts.begin(), ev.ts.end());
  const TimeMs last = *std::max_element(ev.ts.begin(), ev.ts.end());
  const Activity a = BuildActivity(ds, first);
  const int32_t end = a.DayOf(last) + 1;  // the day after the last event's
  if (end < 21) return Status::InvalidArgument("portraits: the events span less than 3 weeks");
  const int32_t horizon = std::clamp(end / 4, 7, 30);
  const int32_t t1 = end - horizon, t0 = end - 2 * horizon;
  const int32_t look = std::min(56, t0);
  PortraitResult out;
  auto& m = out.metrics;
  m["churn.horizon_days"] = horizon;
  m["churn.lookback_days"] = look;
  // The held-out figure: fit at T0, score at T1 against [T1, end).
  {
    const ChurnExamples e0 = Examples(ds, a, t0, look, horizon), e1 = Examples(ds, a, t1, look, horizon);
    if (e0.x.size() < 50 || e1.x.size() < 50) return Status::InvalidArgument("portraits: too few active customers");
    const Logistic lr = FitChurn(e0);
    const auto& x1 = e1.x;
    const auto& y1 = e1.y;
    std::vector<double> score(x1.size()), baseline(x1.size());
    for (size_t i = 0; i < x1.size(); ++i) {
      const double p = lr.Predict(x1[i]);
      score[i] = p + (1 - p) * e1.chance[i];  // the observable label is silence, whatever its cause
      baseline[i] = x1[i][0];                 // log1p(days since the last activity)
    }
    m["churn.evaluated"] = static_cast<double>(x1.size());
    m["churn.positive_rate"] = std::accumulate(y1.begin(), y1.end(), 0.0) / static_cast<double>(y1.size());
    m["churn.auc"] = Auc(score, y1);
    m["churn.precision@5%"] = PrecisionAtTop(score, y1, 0.05);
    m["churn.baseline_auc"] = Auc(baseline, y1);
    m["churn.baseline_precision@5%"] = PrecisionAtTop(baseline, y1, 0.05);
  }
  // The published model: fit at T1 on [T1, end), applied at the end.
  const int32_t look1 = std::min(56, t1);
  const Logistic lr = FitChurn(Examples(ds, a, t1, look1, horizon));
  // Value of conversions and positive interactions per customer.
  const size_t n = ds.customers.size();
  std::vector<double> value_now(n, 0), value_before(n, 0);
  std::vector<std::map<uint32_t, double>> interest(n);
  for (size_t e = 0; e < ev.size(); ++e) {
    const uint32_t c = ev.customer[e];
    if (c >= n || ev.item[e] >= ds.items.size()) continue;
    const int32_t d = a.DayOf(ev.ts[e]);
    const Item& it = ds.items[ev.item[e]];
    if (ev.type[e] == EventType::kConvert) {
      if (d >= end - horizon) value_now[c] += it.value;
      if (d >= end - 2 * horizon && d < end - horizon) value_before[c] += it.value;
    }
    if (IsPositive(ev.type[e]) && it.category != 0)
      interest[c][it.category] += ev.type[e] == EventType::kConvert ? 3 : 1;
  }
  std::string csv = "customer_id,churn_risk,lifecycle,value_trend,days_inactive,interest_1,interest_2,interest_3\n";
  int64_t at_risk = 0;
  std::map<std::string, int64_t> stages;
  for (uint32_t c = 0; c < n; ++c) {
    const auto& v = a.days[c];
    const bool active = CountIn(v, end - look1, end) > 0;
    const int32_t lastday = LastBefore(v, end);
    const int32_t inactive = lastday < 0 ? -1 : end - 1 - lastday;
    double risk = 1.0;
    std::string stage = "dormant";
    if (active) {
      risk = lr.Predict(Features(ds, a, c, end, look1));
      const double recent = static_cast<double>(CountIn(v, end - 14, end));
      const double before = static_cast<double>(CountIn(v, end - 28, end - 14));
      if (v.front() >= end - 14 && end > 28) {
        stage = "new";
      } else if (risk >= 0.5 || (before >= 6 && recent < 0.5 * before)) {
        stage = "declining";
      } else if (recent > 1.5 * before + 3) {
        stage = "growing";
      } else {
        stage = "mature";
      }
    }
    at_risk += risk >= 0.5;
    ++stages[stage];
    const double vn = value_now[c], vb = value_before[c];
    const char* trend = vn == 0 && vb == 0 ? "none" : vn > 1.2 * vb ? "up" : vn < 0.8 * vb ? "down" : "flat";
    std::vector<std::pair<double, uint32_t>> top;
    for (const auto& [cat, w] : interest[c]) top.emplace_back(-w, cat);
    std::sort(top.begin(), top.end());
    csv += ds.customers[c].id + "," + Fmt(risk) + "," + stage + "," + trend + "," +
           (inactive < 0 ? std::string() : std::to_string(inactive));
    for (size_t k = 0; k < 3; ++k) csv += "," + (k < top.size() ? ds.categories.Name(top[k].second) : std::string());
    csv += "\n";
  }
  m["portraits.customers"] = static_cast<double>(n);
  m["portraits.churn_risk>=0.5"] = static_cast<double>(at_risk);
  for (const auto& [stage, k] : stages) m["portraits.lifecycle." + stage] = static_cast<double>(k);
  out.csv = std::move(csv);
  return out;
}

}  // namespace qm::training
