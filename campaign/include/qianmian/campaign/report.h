// Module campaign: a campaign's effect report (issue 18: "every campaign has its effect report").
//
// The campaign's runs split the customers they chose into two arms of the same selection: those
// sent to (decision kind push_send, arm "campaign:<id>=treatment") and those its holdout kept
// back (kind ghost, arm "campaign:<id>=holdout": they would have been sent the same way). From
// each customer's first decision of the campaign up to `to`, their recorded outcomes on every
// channel (push opens, clicks, conversions, opt-outs) are compared per customer: means with 95%
// intervals and the treatment's lift over the holdout (Welch). Push opens can only follow a
// send, so the fair measures of what the campaign caused are clicks and conversions.
#pragma once

#include <string>

#include "qianmian/campaign/campaign.h"
#include "qianmian/experiment/effect.h"

namespace qm::campaign {

struct CampaignReport {
  std::string campaign;
  TimeMs to = kNoTime;
  static constexpr int kMetrics = 4;
  static constexpr const char* kMetricNames[kMetrics] = {"push_opens", "clicks", "conversions", "opt_outs"};
  int64_t treatment_customers = 0, holdout_customers = 0;
  experiment::MeanInterval treatment[kMetrics], holdout[kMetrics];
  experiment::Lift lift[kMetrics];
  experiment::SampleRatio ratio;  // customers per arm against the holdout share
  std::string Format() const;
  std::string Json() const;
};

// Reads the store's decision log and events (the whole store: an operator's query). NotFound when
// the campaign has no decisions yet. `to` kNoTime = everything recorded.
[[nodiscard]] Result<CampaignReport> ReportCampaign(policy::EventStore* store, const Campaign& c, TimeMs to);

}  // namespace qm::campaign
