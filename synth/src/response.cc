// The true response model: how a customer responds to a shown item (truth.json's
// "response_model"), and the state it depends on.
#include "response.h"

#include <algorithm>

namespace qm::synth::gen {

CustomerState::CustomerState(TimeMs start) { std::fill(std::begin(cat_last_), std::end(cat_last_), start); }

bool CustomerState::Blocked(uint32_t item) const {
  return std::find(blocked_.begin(), blocked_.end(), item) != blocked_.end();
}

void CustomerState::Expose(const World& w, uint32_t item, TimeMs t) {
  bool found = false;
  for (auto& e : exposures_)
    if (e.first == item) {
      ++e.second;
      found = true;
      break;
    }
  if (!found) exposures_.push_back({item, 1});
  const int cat = w.items[item].category;
  cat_fatigue_[cat] = CategoryFatigue(cat, t, w.params.fatigue_half_life_days) + 1.0f;
  cat_last_[cat] = t;
}

int CustomerState::PushPressure(TimeMs t) {
  pushes_.erase(std::remove_if(pushes_.begin(), pushes_.end(), [&](TimeMs x) { return x <= t - 7 * kMsPerDay; }),
                pushes_.end());
  pushes_.push_back(t);
  return static_cast<int>(pushes_.size());
}

ResponseProbabilities TrueResponse(const World& w, uint32_t c, uint32_t item, uint8_t channel, TimeMs t,
                                   const CustomerState& state, Knowledge knowledge) {
  const Params& p = w.params;
  const ItemRec& it = w.items[item];
  const float a = knowledge == Knowledge::kTruth ? w.Affinity(c, item) : w.AttributeAffinity(c, item);
  ResponseProbabilities r;
  if (channel == kChPush) {
    const float fatigue = it.service ? 0.0f : state.Fatigue(w, item, t);
    r.open = Sigmoid(p.open_intercept + w.item_bias[item] + p.alpha * a - fatigue);
    return r;
  }
  const float fatigue = state.Fatigue(w, item, t);
  const int before = state.ExposureCount(item);
  r.click = Sigmoid(p.click_intercept + (it.product ? p.product_click_offset : 0.0f) + w.item_bias[item] + p.alpha * a -
                    fatigue);
  if (it.product) r.convert = Sigmoid(p.convert_intercept + p.convert_alpha * a);
  r.dismiss = Sigmoid(p.dismiss_intercept + p.dismiss_alpha * a + 0.3f * before);
  return r;
}

namespace {

// Contact pressure's cost: a marketing push may make the customer opt out of wechat_push.
void DrawOptOut(const World& w, uint32_t c, uint32_t item, TimeMs t, uint32_t request, Rng& rng, CustomerState* state,
                std::vector<Event>* out) {
  if (state->opted_out_push()) {  // the showing policy ignored the customer's opt-out
    state->CountViolation();
    return;
  }
  const Params& p = w.params;
  const int pressure = state->PushPressure(t);
  const float logit =
      p.opt_out_intercept + p.opt_out_pressure * static_cast<float>(pressure) - p.opt_out_alpha * w.Affinity(c, item);
  if (!rng.Bernoulli(Sigmoid(logit))) return;
  state->OptOutPush();
  const TimeMs to = t + 60000 + static_cast<TimeMs>(rng.Exponential(30 * 60000.0));
  if (to < w.end) out->push_back(Event{to, c, item, request, EventType::kOptOut, kChPush});
}

}  // namespace

ResponseProbabilities ShowItem(const World& w, uint32_t c, uint32_t item, uint8_t channel, TimeMs t, uint32_t request,
                               Rng& rng, CustomerState* state, std::vector<Event>* out) {
  const ItemRec& it = w.items[item];
  const ResponseProbabilities p = TrueResponse(w, c, item, channel, t, *state);
  auto emit = [&](TimeMs ts, EventType type) { out->push_back(Event{ts, c, item, request, type, channel}); };
  state->set_last_shown(t);
  if (channel == kChPush) {
    emit(t, EventType::kPushSent);
    if (!it.service) state->Expose(w, item, t);
    if (!it.service && state->opt_outs()) DrawOptOut(w, c, item, t, request, rng, state, out);
    if (rng.Bernoulli(p.open)) {
      TimeMs to = t + 60000 + static_cast<TimeMs>(rng.Exponential(40 * 60000.0));
      if (to < w.end) {
        emit(to, EventType::kPushOpen);
        if (!it.service) state->Block(item);
      }
    }
    return p;
  }
  emit(t, EventType::kImpression);
  state->Expose(w, item, t);
  if (rng.Bernoulli(p.click)) {
    TimeMs tc = t + 1000 + static_cast<TimeMs>(rng.Exponential(20000));
    if (tc >= w.end) return p;
    emit(tc, EventType::kClick);
    if (it.product) {
      if (rng.Bernoulli(p.convert)) {
        TimeMs tv = tc + 30000 + static_cast<TimeMs>(rng.Exponential(240000));
        if (tv < w.end) {
          emit(tv, EventType::kConvert);
          state->Block(item);  // now held
        }
      }
    } else {
      state->Block(item);  // content already clicked is not shown again
    }
  } else if (rng.Bernoulli(p.dismiss)) {
    TimeMs td = t + 2000 + static_cast<TimeMs>(rng.Exponential(5000));
    if (td < w.end) {
      emit(td, EventType::kDismiss);
      state->Block(item);
    }
  }
  return p;
}

}  // namespace qm::synth::gen
