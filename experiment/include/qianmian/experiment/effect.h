// Module experiment: experiment layers, arms and the global holdout (issue 17), and the pure
// assignment of a customer to them, and effect reports. May depend on: core; Boost.Math,
// nlohmann_json (private).
// Effect statistics of an experiment report: per-customer means with 95% intervals, the lift of
// an arm over the control (Welch's t, optionally CUPED-adjusted with a pre-period covariate),
// and the sample-ratio-mismatch check. Pure functions of the per-customer values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qm::experiment {

// A mean and its two-sided interval (Student t with n - 1 degrees of freedom).
struct MeanInterval {
  int64_t n = 0;
  double mean = 0, low = 0, high = 0;
};
MeanInterval MeanWithInterval(const std::vector<double>& y, double level = 0.95);

// mean(treatment) - mean(control) with Welch's interval and two-sided p-value; `relative` is
// the difference over the control's mean (0 when that mean is 0).
struct Lift {
  double difference = 0, low = 0, high = 0, p_value = 1, relative = 0;
  bool cuped = false;  // adjusted with the pre-period covariate
};
Lift WelchLift(const std::vector<double>& treatment, const std::vector<double>& control, double level = 0.95);

// CUPED: each arm's y - theta * (x - mean(x)) with theta = cov(y, x) / var(x) over both arms
// (x: the same metric in the pre-period), then Welch's t on the adjusted values. Falls back to
// WelchLift when x has no variance.
Lift CupedLift(const std::vector<double>& y_treatment, const std::vector<double>& x_treatment,
               const std::vector<double>& y_control, const std::vector<double>& x_control, double level = 0.95);

// Sample ratio mismatch: chi-square goodness of fit of the customers counted per arm against the
// configured shares; `mismatch` when p < alpha (an assignment or logging fault, not chance).
struct SampleRatio {
  double chi_square = 0, p_value = 1;
  bool mismatch = false;
};
SampleRatio SampleRatioCheck(const std::vector<int64_t>& observed, const std::vector<double>& shares,
                             double alpha = 0.001);

}  // namespace qm::experiment
