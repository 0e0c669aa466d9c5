// The simulation: the bank's old logging policy decides what each customer is shown (app_home
// sessions, WeChat pushes); the hidden true model (response.cc) decides how the customer
// responds. Also the calibration of the model's intercepts.
#include <algorithm>
#include <functional>

#include "logging_policy.h"
#include "response.h"
#include "world.h"

namespace qm::synth::gen {

namespace {

// Hourly weights of app sessions (local time).
constexpr double kAppHours[24] = {0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.6, 1.2, 1.6, 1.3, 1.1, 1.2,
                                  1.6, 1.3, 1.0,  1.0,  1.0,  1.1, 1.4, 1.7, 1.9, 1.8, 1.2, 0.6};

// Bisection for the intercept b with mean_fn(b) = target (mean_fn increasing in b).
float SolveIntercept(const std::function<double(float)>& mean_fn, double target) {
  float lo = -25, hi = 15;
  for (int it = 0; it < 60; ++it) {
    float mid = 0.5f * (lo + hi);
    (mean_fn(mid) < target ? lo : hi) = mid;
  }
  return 0.5f * (lo + hi);
}

}  // namespace

CustomerSim::CustomerSim(const World& w, uint32_t c, bool opt_outs)
    : w_(&w), c_(c), rng_(Mix(w.options.seed, c, kStreamEvents)), state_(w.start) {
  PlanContacts();
  if (opt_outs) state_.EnableOptOuts();
}

void CustomerSim::RunUntil(TimeMs until, std::vector<Event>* out) {
  for (; next_ < contacts_.size() && contacts_[next_].t < until; ++next_) {
    const Contact& k = contacts_[next_];
    if (k.kind == 0) {
      AppSession(k.t, out);
    } else {
      Push(k.t, k.kind == 2, out);
    }
  }
}

void CustomerSim::HandOverUntil(TimeMs until, std::vector<PlannedContact>* taken) {
  for (; next_ < contacts_.size() && contacts_[next_].t < until; ++next_) {
    const Contact& k = contacts_[next_];
    taken->push_back({c_, k.t, k.kind == 0 ? kAppHome : kWechatPush, k.kind == 2});
  }
}

void CustomerSim::Show(uint32_t item, uint8_t channel, TimeMs t, bool same_request, std::vector<Event>* out) {
  uint32_t request;
  if (channel == kChPush) {
    request = kPushRequest | (same_request ? push_requests_ : ++push_requests_);
  } else {
    request = same_request ? app_requests_ : ++app_requests_;
  }
  ShowItem(*w_, c_, item, channel, t, request, rng_, &state_, out);
}

void CustomerSim::PlanContacts() {
  const World& w = *w_;
  const Params& p = w.params;
  const CustomerRec& cust = w.customers[c_];
  const TimeMs day0 = w.tz.StartOfDay(w.start);
  for (TimeMs d = day0; d < w.end; d += kMsPerDay) {
    const TimeMs noon = d + 12 * kMsPerHour;
    const float trend = w.Trend(cust, std::clamp(noon, w.start, w.end));
    const bool weekend = w.tz.LocalWeekday(noon) >= 5;
    int sessions = rng_.Poisson(cust.app_rate * trend * (weekend ? p.weekend_factor : 1.0f));
    for (int s = 0; s < sessions; ++s) {
      int h = rng_.Pick(kAppHours, 24);
      TimeMs t = d + h * kMsPerHour + static_cast<TimeMs>(rng_.Below(3600 * 1000));
      if (t >= w.start && t < w.end) contacts_.push_back({t, 0});
    }
    if (cust.push_rate > 0 && rng_.Bernoulli(cust.push_rate * trend)) {
      static const int kRunMinutes[3] = {9 * 60 + 30, 12 * 60, 18 * 60 + 30};
      TimeMs t = d + kRunMinutes[rng_.Below(3)] * kMsPerMinute + static_cast<TimeMs>(rng_.Below(30 * 60 * 1000));
      if (t >= w.start && t < w.end) contacts_.push_back({t, 1});
    }
    if (!w.service_items.empty() && rng_.Bernoulli(p.service_push_rate)) {
      TimeMs t = d + 10 * kMsPerHour + static_cast<TimeMs>(rng_.Below(10 * 3600 * 1000));
      if (t >= w.start && t < w.end) contacts_.push_back({t, 2});
    }
  }
  std::sort(contacts_.begin(), contacts_.end());
}

void CustomerSim::AppSession(TimeMs t, std::vector<Event>* out) {
  const World& w = *w_;
  const Params& p = w.params;
  const CustomerRec& cust = w.customers[c_];
  if ((cust.opt_out >> kChApp) & 1) return;  // consent: no marketing on app_home
  const uint32_t request = ++app_requests_;
  uint32_t shown[8];
  int n_shown = 0;
  auto accept = [&](uint32_t i) {
    for (int k = 0; k < n_shown; ++k)
      if (shown[k] == i) return false;
    return w.Eligible(cust, w.items[i], kChApp, t) && !w.Holds(c_, i) && !state_.Blocked(i);
  };
  const int slots = p.product_slots + p.content_slots;
  for (int s = 0; s < slots && s < 8; ++s) {
    const Pool& pool = s < p.product_slots ? w.app_products : w.app_contents;
    uint32_t i = DrawSlot(w, pool, cust.segment, p.pi_popularity, p.pi_segment, rng_, accept);
    if (i == kNone) continue;
    shown[n_shown++] = i;
    ShowItem(w, c_, i, kChApp, t + s, request, rng_, &state_, out);
  }
}

void CustomerSim::Push(TimeMs t, bool service, std::vector<Event>* out) {
  const World& w = *w_;
  const Params& p = w.params;
  const CustomerRec& cust = w.customers[c_];
  if ((cust.opt_out >> kChPush) & 1) return;
  if (!service && state_.opted_out_push()) return;  // consent withdrawn in the closed loop
  auto accept = [&](uint32_t i) {
    return w.Eligible(cust, w.items[i], kChPush, t) && !state_.Blocked(i) && state_.ExposureCount(i) == 0;
  };
  uint32_t i = kNone;
  if (service) {
    for (int k = 0; k < p.max_tries && i == kNone; ++k) {
      uint32_t cand = w.service_items[rng_.Below(static_cast<uint32_t>(w.service_items.size()))];
      if (w.Eligible(cust, w.items[cand], kChPush, t)) i = cand;
    }
  } else {
    i = DrawSlot(w, w.push_contents, cust.segment, p.push_pi_popularity, p.push_pi_segment, rng_, accept);
  }
  if (i == kNone) return;
  const uint32_t request = kPushRequest | ++push_requests_;
  ShowItem(w, c_, i, kChPush, t, request, rng_, &state_, out);
}

void Calibrate(World* world) {
  World& w = *world;
  Params& p = w.params;
  struct Pair {
    float bias, a;  // bias includes the product click offset for app_home products
    bool product;
  };
  std::vector<Pair> app, push;
  const size_t n = std::min<size_t>(w.customers.size(), 4000);
  for (size_t c = 0; c < n; ++c) {
    const CustomerRec& cu = w.customers[c];
    Rng r(Mix(w.options.seed, c, kStreamCalibrate));
    TimeMs t = w.start + static_cast<TimeMs>(r.Uniform() * (w.end - w.start));
    if (!((cu.opt_out >> kChApp) & 1)) {
      for (int s = 0; s < 12; ++s) {
        const Pool& pool = s < 6 ? w.app_products : w.app_contents;
        uint32_t i = DrawSlot(w, pool, cu.segment, p.pi_popularity, p.pi_segment, r, [&](uint32_t i) {
          return w.Eligible(cu, w.items[i], kChApp, t) && !w.Holds(static_cast<uint32_t>(c), i);
        });
        if (i != kNone) {
          const bool product = w.items[i].product;
          app.push_back({w.item_bias[i] + (product ? p.product_click_offset : 0.0f),
                         w.Affinity(static_cast<uint32_t>(c), i), product});
        }
      }
    }
    if (cu.push_rate > 0) {
      for (int s = 0; s < 4; ++s) {
        uint32_t i = DrawSlot(w, w.push_contents, cu.segment, p.push_pi_popularity, p.push_pi_segment, r,
                              [&](uint32_t i) { return w.Eligible(cu, w.items[i], kChPush, t); });
        if (i != kNone) push.push_back({w.item_bias[i], w.Affinity(static_cast<uint32_t>(c), i), false});
      }
    }
  }
  // Repeated exposures and category fatigue lower the realised rates; aim a little higher.
  const double kFatigueAllowance = 1.15;
  if (!app.empty()) {
    p.click_intercept = SolveIntercept(
        [&](float b) {
          double s = 0;
          for (const auto& x : app) s += Sigmoid(b + x.bias + p.alpha * x.a);
          return s / app.size();
        },
        p.target_ctr * kFatigueAllowance);
    p.convert_intercept = SolveIntercept(
        [&](float b) {
          double num = 0, den = 0;
          for (const auto& x : app) {
            if (!x.product) continue;
            double pc = Sigmoid(p.click_intercept + x.bias + p.alpha * x.a);
            num += pc * Sigmoid(b + p.convert_alpha * x.a);
            den += pc;
          }
          return den > 0 ? num / den : 0.0;
        },
        p.target_convert);
    p.dismiss_intercept = SolveIntercept(
        [&](float b) {
          double s = 0;
          for (const auto& x : app) {
            double pc = Sigmoid(p.click_intercept + x.bias + p.alpha * x.a);
            s += (1 - pc) * Sigmoid(b + p.dismiss_alpha * x.a);
          }
          return s / app.size();
        },
        p.target_dismiss);
  }
  if (!push.empty()) {
    p.open_intercept = SolveIntercept(
        [&](float b) {
          double s = 0;
          for (const auto& x : push) s += Sigmoid(b + x.bias + p.alpha * x.a);
          return s / push.size();
        },
        p.target_open * kFatigueAllowance);
  }
}

}  // namespace qm::synth::gen
