// Module training: customer portraits (客户画像) and the churn model (issue 18).
//
// From the events alone (nothing the bank states), at the end of the data:
//   churn_risk    P(no activity in the next `horizon`) for a customer active in the lookback, from a
//                 logistic regression on the customer's activity (recency, counts per week over
//                 eight weeks, active days, the trend, push opens, tier and the bank's labels);
//   lifecycle     new (first active in the last 14 days) | growing (the last two weeks' activity
//                 over 1.5 times the two before, plus 3) | declining (churn_risk >= 0.5, or under
//                 half of the two weeks before when they held 6 or more) | mature | dormant (no
//                 activity in the lookback);
//   days_inactive days since the last activity;
//   value_trend   up | flat | down | none: conversions' value in the last horizon against the one before;
//   interest_1..3 the customer's top item categories by clicks, conversions and push opens.
// Activity is what the customer does: every event but push_sent and opt_out.
//
// The model's honest figure: fit at T0 = end - 2 horizons on whether each customer was active in
// [T0, T0 + horizon), scored at T1 = end - horizon and compared with what happened in [T1, end):
// AUC and precision among the top 5%, beside the baseline "days since the last activity". The
// published scores come from a fit at T1 (labels up to the end), applied at the end.
#pragma once

#include <map>
#include <string>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"

namespace qm::training {

struct PortraitResult {
  std::string csv;  // portraits.csv: customer_id,churn_risk,lifecycle,value_trend,days_inactive,interest_1..3
  // churn.auc, churn.precision@5%, churn.baseline_auc, churn.baseline_precision@5%,
  // churn.evaluated, churn.positive_rate, churn.horizon_days, portraits.customers, ...
  std::map<std::string, double> metrics;
};

// Fits the churn model and derives every customer's portrait. InvalidArgument when the events
// span less than 3 weeks (no horizon to learn from).
[[nodiscard]] Result<PortraitResult> FitPortraits(const Dataset& ds);

// ROC AUC of `score` against `label` (ties count one half); 0.5 without both classes.
double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label);
// The share of positives among the top `share` by score.
double PrecisionAtTop(const std::vector<double>& score, const std::vector<uint8_t>& label, double share);

}  // namespace qm::training
