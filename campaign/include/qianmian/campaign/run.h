// Module campaign: running a campaign's occurrence (issue 18) as a push run through the engine.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/push/push_run.h"
#include "qianmian/serving/engine.h"

namespace qm::campaign {

struct RunOptions {
  // The occurrence ("2026-12-20", "2026-12-20T09:30", ...): the push run id is "<id>/<occurrence>",
  // so running an occurrence again sends nothing twice (push_run.h). [A-Za-z0-9_.:-], 1..64.
  std::string occurrence;
  bool dry_run = false;  // the approver's preview: nothing reserved, recorded or changed
  TimeMs now = kNoTime;  // kNoTime = the engine's clock
  std::string out;       // the send list CSV (push_run.h)
  std::string time_zone = "Asia/Shanghai";
  int threads = 0;
  bool progress = true;
  // Campaign competition (scheduler.h) runs an occurrence in rounds:
  // set: only these customers, in this order, instead of the audience's;
  std::shared_ptr<const std::vector<std::string>> customers;
  // sends this occurrence already made in earlier rounds (taken off its budget);
  int64_t spent = 0;
  // a dry run that ignores the budget (what every customer would get);
  bool no_budget = false;
  // every customer's choice (push_run.h PushRunOptions::on_choice).
  std::function<void(const std::string& customer_id, const serving::PushChoice& choice)> on_choice;
};

// Runs one occurrence of `c` as a push run on its channel and audience, its content only (explicit
// items, or the items of its categories / tags; when there are at most 2,000, the push_ann of them
// nearest each customer are candidates beside what the ANN finds), ranked by its objective, its holdout share kept back
// as ghosts (the arm "campaign:<id>=holdout"), and at most its budget: min(per_day, total minus the sends of its other
// occurrences). A real run requires the approved version (RunsApprovedVersion) in state scheduled or running:
// FailedPrecondition otherwise. A dry run works in any state.
// Whether `c` may run for real: the approved version in state scheduled or running
// (FailedPrecondition naming what is missing).
[[nodiscard]] Status CheckRunnable(const Campaign& c);

[[nodiscard]] Result<push::PushSummary> RunOccurrence(serving::Engine* engine, const Campaign& c, const RunOptions& o);

}  // namespace qm::campaign
