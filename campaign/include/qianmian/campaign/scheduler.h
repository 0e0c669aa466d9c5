// Module campaign: the schedule of a campaign's occurrences and the pass that runs the due ones
// (issue 18: "the server runs due occurrences itself, exactly once across replicas").
//
// Exactly once: before running occurrence O of campaign C, a runner takes O's lease, a governed
// record ("campaign_runs", "C/O") created by compare-and-set: of all the processes sharing the
// store, the one whose write creates it runs O. The record then says `running` until the runner
// marks it `done` (or `missed`). A runner that dies leaves a lease that expires
// (SchedulerOptions::lease); the next pass of any process takes it over by compare-and-set and
// runs O again under the same push run id, which replays what the dead run reserved and sends the
// rest: nothing is sent twice. An occurrence whose time is more than `grace` ago and never ran is
// marked missed (in the lease and the campaign's audit log) and never runs.
//
// Competition: when several campaigns have occurrences due in one pass on one channel, they
// compete for each customer's caps. Each is first run dry to learn what it would send each
// customer and the bank's expected value of that send (serving::PushChoice::expected_value: the
// bank's [serving] objective, whatever each campaign's own). A customer's campaigns are ordered by
// priority (the bank's explicit override), then by that expected value, then by id. The real runs
// then go in rounds: round k sends each campaign to the customers whose k-th choice it is, the
// highest expected value first (so a budget goes to the best customers). The last unit of a
// customer's cap therefore goes to their best campaign, not to whichever campaign runs first; the
// others are skipped by the cap's rule. A campaign's holdout customer gets a ghost in its round
// and stays available to the next campaign, as it would without that campaign. Competition costs
// one dry run per campaign; only occurrences due in the same pass compete (campaigns that should
// compete share a send time), and a manual `campaign run` or a campaign choosing among several
// channels runs alone.
#pragma once

#include <string>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/campaign/run.h"
#include "qianmian/serving/engine.h"

namespace qm::campaign {

struct SchedulerOptions {
  std::string holder;                    // who runs (e.g. "serve@host:pid"): the lease's holder and the audit's who
  TimeMs grace = 2 * 60 * kMsPerMinute;  // an occurrence this late still runs; later it is missed
  TimeMs lease = 10 * kMsPerMinute;      // a running lease not marked done by then is taken over
  std::string outbox;                    // send lists go to <outbox>/<campaign>/<occurrence>.csv
  std::string time_zone = "Asia/Shanghai";
  int threads = 2;
};

struct PassReport {
  std::vector<std::string> ran;     // "C/O" run by this pass
  std::vector<std::string> missed;  // "C/O" marked missed by this pass
  std::vector<std::string> failed;  // "C/O: reason" (the lease expires and a later pass retries)
};

// One pass at `now`: every due occurrence (at <= now < at + grace, not done or missed) of every
// scheduled or running campaign that this process wins the lease of is run (RunOccurrence, the
// send list in the outbox) and recorded (Campaigns::RecordOccurrence); late ones are marked missed.
// Returns non-OK only when the campaigns cannot be listed.
// Runs occurrence `occurrence` of campaign `id` by hand (`campaign run`) under the same lease as
// the scheduler's, so it never runs at the same time as a replica's scheduler: FailedPrecondition
// when another process holds the lease now (or the campaign does not run its approved version in
// state scheduled or running). An occurrence already done runs again without a lease: a replay
// that re-emits its send list and sends nothing twice. The sends are recorded on the campaign
// and the lease is marked done. `out`: the send list.
[[nodiscard]] Result<push::PushSummary> RunByHand(serving::Engine* engine, Campaigns* campaigns,
                                                  const SchedulerOptions& o, const std::string& id,
                                                  const std::string& occurrence, const std::string& out, TimeMs now);

[[nodiscard]] Result<PassReport> RunDueOccurrences(serving::Engine* engine, Campaigns* campaigns,
                                                   const SchedulerOptions& o, TimeMs now);

}  // namespace qm::campaign
