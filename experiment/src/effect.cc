#include "qianmian/experiment/effect.h"

#include <algorithm>
#include <cmath>

#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/students_t.hpp>

namespace qm::experiment {

namespace {

struct Moments {
  double n = 0, mean = 0, var = 0;  // var: unbiased sample variance
};

Moments MomentsOf(const std::vector<double>& y) {
  Moments m;
  m.n = static_cast<double>(y.size());
  if (y.empty()) return m;
  double s = 0;
  for (double v : y) s += v;
  m.mean = s / m.n;
  double ss = 0;
  for (double v : y) ss += (v - m.mean) * (v - m.mean);
  m.var = y.size() > 1 ? ss / (m.n - 1) : 0;
  return m;
}

double TQuantile(double df, double p) {
  boost::math::students_t t(df);
  return boost::math::quantile(t, p);
}

Lift WelchOf(const Moments& t, const Moments& c, double level) {
  Lift l;
  l.difference = t.mean - c.mean;
  l.relative = c.mean != 0 ? l.difference / c.mean : 0;
  if (t.n < 2 || c.n < 2) {
    l.low = -INFINITY;
    l.high = INFINITY;
    return l;
  }
  const double vt = t.var / t.n, vc = c.var / c.n, se2 = vt + vc;
  if (se2 <= 0) {  // no variance anywhere: the difference is exact
    l.low = l.high = l.difference;
    l.p_value = l.difference == 0 ? 1 : 0;
    return l;
  }
  const double df = se2 * se2 / (vt * vt / (t.n - 1) + vc * vc / (c.n - 1));  // Welch-Satterthwaite
  const double se = std::sqrt(se2), q = TQuantile(df, 0.5 + level / 2);
  l.low = l.difference - q * se;
  l.high = l.difference + q * se;
  boost::math::students_t dist(df);
  l.p_value = 2 * boost::math::cdf(boost::math::complement(dist, std::fabs(l.difference) / se));
  return l;
}

}  // namespace

MeanInterval MeanWithInterval(const std::vector<double>& y, double level) {
  Moments m = MomentsOf(y);
  MeanInterval r;
  r.n = static_cast<int64_t>(y.size());
  r.mean = r.low = r.high = m.mean;
  if (y.size() > 1) {
    const double h = TQuantile(m.n - 1, 0.5 + level / 2) * std::sqrt(m.var / m.n);
    r.low = m.mean - h;
    r.high = m.mean + h;
  }
  return r;
}

Lift WelchLift(const std::vector<double>& treatment, const std::vector<double>& control, double level) {
  return WelchOf(MomentsOf(treatment), MomentsOf(control), level);
}

Lift CupedLift(const std::vector<double>& y_treatment, const std::vector<double>& x_treatment,
               const std::vector<double>& y_control, const std::vector<double>& x_control, double level) {
  // theta from both arms pooled (the covariate is pre-treatment, so pooling is unbiased).
  double n = 0, sx = 0, sy = 0;
  auto add = [&](const std::vector<double>& y, const std::vector<double>& x) {
    for (size_t i = 0; i < y.size(); ++i) {
      sx += x[i];
      sy += y[i];
      n += 1;
    }
  };
  add(y_treatment, x_treatment);
  add(y_control, x_control);
  if (n < 2) return WelchLift(y_treatment, y_control, level);
  const double mx = sx / n, my = sy / n;
  double sxx = 0, sxy = 0;
  auto moments = [&](const std::vector<double>& y, const std::vector<double>& x) {
    for (size_t i = 0; i < y.size(); ++i) {
      sxx += (x[i] - mx) * (x[i] - mx);
      sxy += (x[i] - mx) * (y[i] - my);
    }
  };
  moments(y_treatment, x_treatment);
  moments(y_control, x_control);
  if (sxx <= 0) return WelchLift(y_treatment, y_control, level);
  const double theta = sxy / sxx;
  auto adjust = [&](const std::vector<double>& y, const std::vector<double>& x) {
    std::vector<double> a(y.size());
    for (size_t i = 0; i < y.size(); ++i) a[i] = y[i] - theta * (x[i] - mx);
    return a;
  };
  Lift l = WelchLift(adjust(y_treatment, x_treatment), adjust(y_control, x_control), level);
  const double control_mean = MomentsOf(y_control).mean;  // the relative lift of the raw means' scale
  l.relative = control_mean != 0 ? l.difference / control_mean : 0;
  l.cuped = true;
  return l;
}

SampleRatio SampleRatioCheck(const std::vector<int64_t>& observed, const std::vector<double>& shares, double alpha) {
  SampleRatio r;
  double total = 0;
  for (int64_t o : observed) total += static_cast<double>(o);
  int cells = 0;
  for (size_t i = 0; i < observed.size() && i < shares.size(); ++i) {
    if (shares[i] <= 0) continue;
    const double e = total * shares[i];
    r.chi_square += (observed[i] - e) * (observed[i] - e) / e;
    ++cells;
  }
  if (cells < 2 || total <= 0) return r;
  boost::math::chi_squared dist(cells - 1);
  r.p_value = boost::math::cdf(boost::math::complement(dist, r.chi_square));
  r.mismatch = r.p_value < alpha;
  return r;
}

}  // namespace qm::experiment
