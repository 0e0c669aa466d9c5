// Private to synth: the true response model (truth.json's "response_model") and what it
// remembers of a customer. One definition, used by the logging policy's simulation, by
// Simulator::Probabilities and Simulator::Show, and replayed by the history oracle.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "qianmian/synth/simulator.h"
#include "world.h"

namespace qm::synth::gen {

inline constexpr int kMaxCategories = 32;

// What the true model and the logging policy remember of one customer: earlier exposures of each
// item (service pushes excluded), the decayed exposures of each category with their clocks, and
// the items the logging policy shows no more (dismissed, converted, content clicked or opened).
class CustomerState {
 public:
  CustomerState() = default;
  // Category clocks start at the period's start.
  explicit CustomerState(TimeMs start);

  int ExposureCount(uint32_t item) const {
    for (const auto& e : exposures_)
      if (e.first == item) return e.second;
    return 0;
  }
  bool Blocked(uint32_t item) const;
  // Exposures of `category`, each halved every `half_life_days`, at time t.
  float CategoryFatigue(int category, TimeMs t, float half_life_days) const {
    double days = double(t - cat_last_[category]) / kMsPerDay;
    return static_cast<float>(cat_fatigue_[category] * std::exp2(-days / half_life_days));
  }
  // fatigue_item x earlier exposures of the item + fatigue_category x decayed category exposures.
  float Fatigue(const World& w, uint32_t item, TimeMs t) const {
    const Params& p = w.params;
    return p.fatigue_item * ExposureCount(item) +
           p.fatigue_category * CategoryFatigue(w.items[item].category, t, p.fatigue_half_life_days);
  }
  void Expose(const World& w, uint32_t item, TimeMs t);
  void Block(uint32_t item) { blocked_.push_back(item); }
  // Contact pressure (SimulatorOptions::opt_outs): whether the customer's opt-outs are drawn, the
  // marketing pushes of the last 7 days, whether they opted out of wechat_push, and how many
  // marketing pushes reached them after that (consent violations of the showing policy).
  void EnableOptOuts() { opt_outs_ = true; }
  bool opt_outs() const { return opt_outs_; }
  // Records a marketing push at t; returns the pushes in (t - 7 days, t].
  int PushPressure(TimeMs t);
  bool opted_out_push() const { return opted_out_push_; }
  void OptOutPush() { opted_out_push_ = true; }
  void CountViolation() { ++violations_; }
  uint32_t violations() const { return violations_; }

  // The latest time anything was shown to the customer (kNoTime before the first exposure).
  TimeMs last_shown() const { return last_shown_; }
  void set_last_shown(TimeMs t) { last_shown_ = t; }

 private:
  std::vector<std::pair<uint32_t, int>> exposures_;
  std::vector<uint32_t> blocked_;
  float cat_fatigue_[kMaxCategories] = {};
  TimeMs cat_last_[kMaxCategories] = {};
  TimeMs last_shown_ = kNoTime;
  std::vector<TimeMs> pushes_;  // marketing pushes of the last 7 days (opt_outs_ only)
  bool opt_outs_ = false, opted_out_push_ = false;
  uint32_t violations_ = 0;
};

// The true probabilities for `item` shown to customer `c` on `channel` (kChApp or kChPush) at t,
// given `state` before it. Service items pushed carry no fatigue.
// With `knowledge` kAttributes the customer's affinity uses only the attribute part of its latent
// (what the attribute oracle believes), everything else as the truth.
ResponseProbabilities TrueResponse(const World& w, uint32_t c, uint32_t item, uint8_t channel, TimeMs t,
                                   const CustomerState& state, Knowledge knowledge = Knowledge::kTruth);

// Shows `item` to customer `c`: appends the exposure event (impression or push_sent under
// `request`), records it in `state`, draws the response from `rng` and appends its events (a
// click and maybe a conversion or a dismissal on app_home; an open on a push; none at or after
// the end), blocking the items the logging policy must not show again; with opt-outs enabled a
// marketing push may also draw an opt_out (Params::opt_out_*). Returns the exposure's
// probabilities.
ResponseProbabilities ShowItem(const World& w, uint32_t c, uint32_t item, uint8_t channel, TimeMs t, uint32_t request,
                               Rng& rng, CustomerState* state, std::vector<Event>* out);

}  // namespace qm::synth::gen
