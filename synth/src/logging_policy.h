// Private to synth: the bank's old logging policy for one customer. Its contacts over the whole
// period are planned first (the first draws of the customer's random stream), then run in time
// order, a day at a time: each contact shows what the policy chooses and the true model
// (response.h) draws the response. Every draw comes from the customer's own stream, so customers
// can be simulated in any order, on any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "response.h"
#include "world.h"

namespace qm::synth::gen {

constexpr uint32_t kNone = 0xFFFFFFFFu;

// One slot of the logging policy: a mixture of popularity, segment targeting and uniform
// exploration over `pool`, each component rejection-sampled until `accept` holds.
template <typename Accept>
uint32_t DrawSlot(const World& w, const Pool& pool, int segment, float pi_pop, float pi_seg, Rng& r, Accept&& accept) {
  if (pool.items.empty()) return kNone;
  double u = r.Uniform();
  int comp = u < pi_pop ? 0 : u < pi_pop + pi_seg ? 1 : 2;
  for (int t = 0; t < w.params.max_tries; ++t) {
    uint32_t i;
    if (comp == 0) {
      i = pool.items[pool.popularity.Sample(r)];
    } else if (comp == 1) {
      uint32_t cat = pool.segment_category[segment].Sample(r);
      const auto& v = pool.by_category[cat];
      if (v.empty()) continue;
      i = v[pool.category_items[cat].Sample(r)];
    } else {
      i = pool.items[r.Below(static_cast<uint32_t>(pool.items.size()))];
    }
    if (accept(i)) return i;
  }
  return kNone;
}

class CustomerSim {
 public:
  CustomerSim() = default;
  // Plans customer c's contacts over the period.
  CustomerSim(const World& w, uint32_t c, bool opt_outs = false);

  // Runs the planned contacts before `until` that have not run yet, appending their events.
  void RunUntil(TimeMs until, std::vector<Event>* out);
  // The closed loop: the same contacts, handed to the caller (appended to `taken`) instead of
  // run by the logging policy.
  void HandOverUntil(TimeMs until, std::vector<PlannedContact>* taken);
  // A handed-over service push, run as the bank plans it (the caller keeps time order).
  void ServicePush(TimeMs t, std::vector<Event>* out) { Push(t, /*service=*/true, out); }
  // A handed-over contact run as the bank planned it (app session, marketing or service push).
  void RunContact(const PlannedContact& k, std::vector<Event>* out) {
    if (k.channel == kAppHome) {
      AppSession(k.ts, out);
    } else {
      Push(k.ts, k.service, out);
    }
  }
  // A marketing push of the logging policy at t outside the plan (a caller's push calendar).
  void MarketingPush(TimeMs t, std::vector<Event>* out) { Push(t, /*service=*/false, out); }
  // The true model's probabilities for `item` shown on `channel` at t, given the state now.
  ResponseProbabilities Probabilities(uint32_t item, uint8_t channel, TimeMs t,
                                      Knowledge knowledge = Knowledge::kTruth) const {
    return TrueResponse(*w_, c_, item, channel, t, state_, knowledge);
  }
  // Shows `item` on `channel` at t under the customer's next request of that kind, or under the
  // latest one when `same_request` (see ShowItem).
  void Show(uint32_t item, uint8_t channel, TimeMs t, bool same_request, std::vector<Event>* out);
  const CustomerState& state() const { return state_; }

 private:
  struct Contact {
    TimeMs t;
    uint8_t kind;  // 0 app session, 1 marketing push, 2 service push
    bool operator<(const Contact& o) const { return t != o.t ? t < o.t : kind < o.kind; }
  };
  void PlanContacts();
  void AppSession(TimeMs t, std::vector<Event>* out);
  void Push(TimeMs t, bool service, std::vector<Event>* out);

  const World* w_ = nullptr;
  uint32_t c_ = 0;
  Rng rng_{0};
  std::vector<Contact> contacts_;  // sorted
  size_t next_ = 0;                // contacts_[next_] runs next
  CustomerState state_;
  uint32_t app_requests_ = 0, push_requests_ = 0;
};

}  // namespace qm::synth::gen
