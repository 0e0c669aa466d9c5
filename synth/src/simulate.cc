// The simulation: the old logging policy decides what each customer is shown (app_home
// sessions, WeChat pushes); the hidden true model decides how the customer responds.
#include <algorithm>
#include <functional>

#include "parallel.h"
#include "qianmian/core/progress.h"
#include "world.h"

namespace qm::synth::gen {

namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;

// One slot of the logging policy: a mixture of popularity, segment targeting and uniform
// exploration over `pool`, each component rejection-sampled until `accept` holds.
template <typename Accept>
uint32_t DrawSlot(const World& w, const Pool& pool, int segment, float pi_pop, float pi_seg, Rng& r,
                  Accept&& accept) {
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

// Hourly weights of app sessions (local time).
constexpr double kAppHours[24] = {0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.6, 1.2, 1.6, 1.3, 1.1, 1.2,
                                  1.6, 1.3, 1.0, 1.0, 1.0, 1.1, 1.4, 1.7, 1.9, 1.8, 1.2, 0.6};

// Bisection for the intercept b with mean_fn(b) = target (mean_fn increasing in b).
float SolveIntercept(const std::function<double(float)>& mean_fn, double target) {
  float lo = -25, hi = 15;
  for (int it = 0; it < 60; ++it) {
    float mid = 0.5f * (lo + hi);
    (mean_fn(mid) < target ? lo : hi) = mid;
  }
  return 0.5f * (lo + hi);
}

struct Contact {
  TimeMs t;
  uint8_t kind;  // 0 app session, 1 marketing push, 2 service push
  bool operator<(const Contact& o) const { return t != o.t ? t < o.t : kind < o.kind; }
};

class CustomerSim {
 public:
  CustomerSim(const World& w, uint32_t c, std::vector<Ev>* out)
      : w_(w), p_(w.params), c_(c), cust_(w.customers[c]), out_(out),
        rng_(Mix(w.options.seed, c, kStreamEvents)) {
    std::fill(std::begin(cat_fatigue_), std::end(cat_fatigue_), 0.0f);
    std::fill(std::begin(cat_last_), std::end(cat_last_), w.start);
  }

  void Run() {
    PlanContacts();
    for (const Contact& k : contacts_) {
      if (k.kind == 0) AppSession(k.t);
      else Push(k.t, k.kind == 2);
    }
  }

 private:
  void PlanContacts() {
    const TimeMs day0 = w_.tz.StartOfDay(w_.start);
    for (TimeMs d = day0; d < w_.end; d += kMsPerDay) {
      const TimeMs noon = d + 12 * kMsPerHour;
      const float trend = w_.Trend(cust_, std::clamp(noon, w_.start, w_.end));
      const bool weekend = w_.tz.LocalWeekday(noon) >= 5;
      int sessions = rng_.Poisson(cust_.app_rate * trend * (weekend ? p_.weekend_factor : 1.0f));
      for (int s = 0; s < sessions; ++s) {
        int h = rng_.Pick(kAppHours, 24);
        TimeMs t = d + h * kMsPerHour + static_cast<TimeMs>(rng_.Below(3600 * 1000));
        if (t >= w_.start && t < w_.end) contacts_.push_back({t, 0});
      }
      if (cust_.push_rate > 0 && rng_.Bernoulli(cust_.push_rate * trend)) {
        static const int kRunMinutes[3] = {9 * 60 + 30, 12 * 60, 18 * 60 + 30};
        TimeMs t = d + kRunMinutes[rng_.Below(3)] * kMsPerMinute + static_cast<TimeMs>(rng_.Below(30 * 60 * 1000));
        if (t >= w_.start && t < w_.end) contacts_.push_back({t, 1});
      }
      if (!w_.service_items.empty() && rng_.Bernoulli(p_.service_push_rate)) {
        TimeMs t = d + 10 * kMsPerHour + static_cast<TimeMs>(rng_.Below(10 * 3600 * 1000));
        if (t >= w_.start && t < w_.end) contacts_.push_back({t, 2});
      }
    }
    std::sort(contacts_.begin(), contacts_.end());
  }

  bool Blocked(uint32_t i) const {
    return std::find(blocked_.begin(), blocked_.end(), i) != blocked_.end();
  }
  int ExposureCount(uint32_t i) const {
    for (const auto& e : exposures_)
      if (e.first == i) return e.second;
    return 0;
  }
  void Expose(uint32_t i, TimeMs t) {
    bool found = false;
    for (auto& e : exposures_)
      if (e.first == i) { ++e.second; found = true; break; }
    if (!found) exposures_.push_back({i, 1});
    int cat = w_.items[i].category;
    cat_fatigue_[cat] = CategoryFatigue(cat, t) + 1.0f;
    cat_last_[cat] = t;
  }
  float CategoryFatigue(int cat, TimeMs t) const {
    double days = double(t - cat_last_[cat]) / kMsPerDay;
    return static_cast<float>(cat_fatigue_[cat] * std::exp2(-days / p_.fatigue_half_life_days));
  }
  float Fatigue(uint32_t i, TimeMs t) const {
    return p_.fatigue_item * ExposureCount(i) + p_.fatigue_category * CategoryFatigue(w_.items[i].category, t);
  }
  void Emit(TimeMs t, uint32_t item, EventType type, uint8_t channel, uint32_t request) {
    out_->push_back(Ev{t, c_, item, request, static_cast<uint8_t>(type), channel});
  }

  void AppSession(TimeMs t) {
    if ((cust_.opt_out >> kChApp) & 1) return;  // consent: no marketing on app_home
    const uint32_t request = ++app_requests_;
    uint32_t shown[8];
    int n_shown = 0;
    auto accept = [&](uint32_t i) {
      for (int k = 0; k < n_shown; ++k)
        if (shown[k] == i) return false;
      return w_.Eligible(cust_, w_.items[i], kChApp, t) && !w_.Holds(c_, i) && !Blocked(i);
    };
    const int slots = p_.product_slots + p_.content_slots;
    for (int s = 0; s < slots && s < 8; ++s) {
      const Pool& pool = s < p_.product_slots ? w_.app_products : w_.app_contents;
      uint32_t i = DrawSlot(w_, pool, cust_.segment, p_.pi_popularity, p_.pi_segment, rng_, accept);
      if (i == kNone) continue;
      shown[n_shown++] = i;
      const TimeMs ts = t + s;
      Emit(ts, i, EventType::kImpression, kChApp, request);
      const float a = w_.Affinity(c_, i);
      const float fatigue = Fatigue(i, ts);
      const int before = ExposureCount(i);
      Expose(i, ts);
      const float p_click = Sigmoid(p_.click_intercept + (w_.items[i].product ? p_.product_click_offset : 0.0f) +
                                    w_.item_bias[i] + p_.alpha * a - fatigue);
      if (rng_.Bernoulli(p_click)) {
        TimeMs tc = ts + 1000 + static_cast<TimeMs>(rng_.Exponential(20000));
        if (tc >= w_.end) continue;
        Emit(tc, i, EventType::kClick, kChApp, request);
        if (w_.items[i].product) {
          float p_conv = Sigmoid(p_.convert_intercept + p_.convert_alpha * a);
          if (rng_.Bernoulli(p_conv)) {
            TimeMs tv = tc + 30000 + static_cast<TimeMs>(rng_.Exponential(240000));
            if (tv < w_.end) {
              Emit(tv, i, EventType::kConvert, kChApp, request);
              blocked_.push_back(i);  // now held
            }
          }
        } else {
          blocked_.push_back(i);  // content already clicked is not shown again
        }
      } else {
        float p_dis = Sigmoid(p_.dismiss_intercept + p_.dismiss_alpha * a + 0.3f * before);
        if (rng_.Bernoulli(p_dis)) {
          TimeMs td = ts + 2000 + static_cast<TimeMs>(rng_.Exponential(5000));
          if (td < w_.end) {
            Emit(td, i, EventType::kDismiss, kChApp, request);
            blocked_.push_back(i);
          }
        }
      }
    }
  }

  void Push(TimeMs t, bool service) {
    if ((cust_.opt_out >> kChPush) & 1) return;
    auto accept = [&](uint32_t i) {
      return w_.Eligible(cust_, w_.items[i], kChPush, t) && !Blocked(i) && ExposureCount(i) == 0;
    };
    uint32_t i = kNone;
    if (service) {
      for (int k = 0; k < p_.max_tries && i == kNone; ++k) {
        uint32_t cand = w_.service_items[rng_.Below(static_cast<uint32_t>(w_.service_items.size()))];
        if (w_.Eligible(cust_, w_.items[cand], kChPush, t)) i = cand;
      }
    } else {
      i = DrawSlot(w_, w_.push_contents, cust_.segment, p_.push_pi_popularity, p_.push_pi_segment, rng_, accept);
    }
    if (i == kNone) return;
    const uint32_t request = kPushRequest | ++push_requests_;
    Emit(t, i, EventType::kPushSent, kChPush, request);
    const float a = w_.Affinity(c_, i);
    const float fatigue = service ? 0.0f : Fatigue(i, t);
    if (!service) Expose(i, t);
    const float p_open = Sigmoid(p_.open_intercept + w_.item_bias[i] + p_.alpha * a - fatigue);
    if (rng_.Bernoulli(p_open)) {
      TimeMs to = t + 60000 + static_cast<TimeMs>(rng_.Exponential(40 * 60000.0));
      if (to < w_.end) {
        Emit(to, i, EventType::kPushOpen, kChPush, request);
        if (!service) blocked_.push_back(i);
      }
    }
  }

  const World& w_;
  const Params& p_;
  const uint32_t c_;
  const CustomerRec& cust_;
  std::vector<Ev>* out_;
  Rng rng_;
  std::vector<Contact> contacts_;
  std::vector<std::pair<uint32_t, int>> exposures_;
  std::vector<uint32_t> blocked_;  // dismissed, converted, or content already clicked/opened
  float cat_fatigue_[32];
  TimeMs cat_last_[32];
  uint32_t app_requests_ = 0, push_requests_ = 0;
};

}  // namespace

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
          app.push_back({w.item_bias[i] + (product ? p.product_click_offset : 0.0f), w.Affinity(static_cast<uint32_t>(c), i), product});
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
    p.click_intercept = SolveIntercept([&](float b) {
      double s = 0;
      for (const auto& x : app) s += Sigmoid(b + x.bias + p.alpha * x.a);
      return s / app.size();
    }, p.target_ctr * kFatigueAllowance);
    p.convert_intercept = SolveIntercept([&](float b) {
      double num = 0, den = 0;
      for (const auto& x : app) {
        if (!x.product) continue;
        double pc = Sigmoid(p.click_intercept + x.bias + p.alpha * x.a);
        num += pc * Sigmoid(b + p.convert_alpha * x.a);
        den += pc;
      }
      return den > 0 ? num / den : 0.0;
    }, p.target_convert);
    p.dismiss_intercept = SolveIntercept([&](float b) {
      double s = 0;
      for (const auto& x : app) {
        double pc = Sigmoid(p.click_intercept + x.bias + p.alpha * x.a);
        s += (1 - pc) * Sigmoid(b + p.dismiss_alpha * x.a);
      }
      return s / app.size();
    }, p.target_dismiss);
  }
  if (!push.empty()) {
    p.open_intercept = SolveIntercept([&](float b) {
      double s = 0;
      for (const auto& x : push) s += Sigmoid(b + x.bias + p.alpha * x.a);
      return s / push.size();
    }, p.target_open * kFatigueAllowance);
  }
}

std::vector<std::vector<Ev>> Simulate(const World& w, int threads) {
  const size_t n = w.customers.size();
  constexpr size_t kBlock = 2048;
  std::vector<std::vector<Ev>> runs((n + kBlock - 1) / kBlock);
  Progress progress("generate: events", n, " customers");
  ParallelFor(n, threads, kBlock, [&](size_t b, size_t e) {
    std::vector<Ev>& out = runs[b / kBlock];
    out.reserve((e - b) * 40);
    for (size_t c = b; c < e; ++c) {
      CustomerSim sim(w, static_cast<uint32_t>(c), &out);
      sim.Run();
    }
    std::sort(out.begin(), out.end());
    out.shrink_to_fit();
    progress.Add(e - b);
  });
  progress.Finish();
  return runs;
}

}  // namespace qm::synth::gen
