// The planted world's estimate of a campaign's sends (issue 18: "the simulator's estimate" in the
// approver's dry run). On a generated bank (its folder has truth/truth.json) the world is rebuilt
// and driven through its period as it was logged, so every customer's state (recent pushes,
// clicks, opt-outs) is as at the end of the data; then the true model gives each planned send's
// P(push_open). Private to the tools module.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/serving/engine.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/simulator.h"

namespace qm::tools {

// One events.csv row (ts,customer_id,item_id,type,channel,request_id) of a simulated event;
// `request` overrides its request id when not empty.
void WriteSynthEvent(std::ostream& out, const synth::Bank& bank, const synth::Event& e,
                     const std::string& request = "");

struct PlannedSend {
  std::string customer_id, item_id;
  TimeMs at = 0;
};

struct WorldEstimate {
  bool available = false;  // false: not a generated bank (no truth/)
  int64_t sends = 0;       // sends of customers and items the world knows
  int64_t unknown = 0;     // sends of customers or items added since (not in the world)
  double opens = 0;        // the true expected push opens of the known sends
  double seconds = 0;      // rebuilding and driving the world
};

// NotFound-free: a folder without truth/ gives available = false. `open_probability`, when not
// null, receives each send's true P(push_open) (-1 for a send the world does not know).
[[nodiscard]] Result<WorldEstimate> EstimateInPlantedWorld(const std::string& data_dir,
                                                           const std::vector<PlannedSend>& sends, int threads,
                                                           std::vector<float>* open_probability = nullptr);

// The planted world's answers to sends made at or after the end of its data (a campaign's
// occurrence after the bank's last day): each send is opened with its true probability given the
// customer's state at the end of the data (EstimateInPlantedWorld), drawn from `seed`; an open
// comes one minute plus an exponential 40 minutes after the send, as the world's opens do. The
// opens, as PlannedSend {customer, item, when}. The world's push response is the open alone: its
// clicks and conversions come from app sessions, which end with the data.
struct WorldResponses {
  bool available = false;
  int64_t sends = 0, unknown = 0;
  double expected_opens = 0;
  std::vector<PlannedSend> opens;
};
[[nodiscard]] Result<WorldResponses> RespondInPlantedWorld(const std::string& data_dir,
                                                           const std::vector<PlannedSend>& sends, uint64_t seed,
                                                           int threads);

// The simulated effect of one occurrence of a campaign on a generated bank: the world is driven
// as logged up to the local midnight starting `day` (a day index of the world's period); the
// engine chooses the occurrence's sends then (a dry run of the campaign: its audience, content,
// objective and budget, over the events before that midnight; the served model itself was
// trained on the whole data, which the randomised comparison below does not depend on); the
// campaign's holdout
// (the same keyed hash of the customer id as its runs) is sent nothing, the others get their
// sends at that midnight with the true responses; then the world runs its remaining days as
// logged for everyone. The report compares the two arms over those days, per customer.
struct SimulatedArm {
  int64_t customers = 0;
  int64_t sent = 0;                                             // customers sent the campaign's push (the treated arm)
  double opens = 0, clicks = 0, conversions = 0, opt_outs = 0;  // totals over the days after
};
struct SimulatedEffect {
  bool available = false;
  std::string campaign;
  TimeMs at = 0;     // the occurrence (local midnight)
  int64_t days = 0;  // days simulated after it
  SimulatedArm treated, held_out;
  double seconds = 0;
  std::string Format() const;  // the table: per arm per customer, the differences with 95% intervals
};

// `engine`: the options of the engine that serves the bank (its artifacts serve the campaign);
// the simulation opens its own engine on a scratch copy of the bank holding only the events
// before the occurrence, with a store seeded from them, so the choice knows no later event.
// REQUIRES: c.segments holds the expressions of the segments its audience names.
[[nodiscard]] Result<SimulatedEffect> SimulateOccurrence(const serving::EngineOptions& engine,
                                                         const campaign::Campaign& c, const std::string& data_dir,
                                                         int64_t day, int threads);

}  // namespace qm::tools
