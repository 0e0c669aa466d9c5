// Private to synth: the synthetic world (customers, items), the hidden true model, the logging
// policy's pools and targeting, and the pieces shared by the simulation, the oracle and the
// writers. Bank (bank.h) owns one World.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "qianmian/core/time.h"
#include "qianmian/core/types.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/generate.h"
#include "qianmian/synth/simulator.h"

namespace qm::synth::gen {

// ---------------------------------------------------------------------------------------------
// Random numbers: xoshiro256** seeded through SplitMix64; every stream is a pure function of
// (seed, index, purpose), so nothing depends on the number of threads.

inline uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t Mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
  x ^= (c + 0x165667B19E3779F9ULL) * 0xD6E8FEB86659FD93ULL;
  return SplitMix64(&x);
}

// Purposes of the random streams.
enum Stream : uint64_t {
  kStreamCustomer = 1,
  kStreamEvents = 2,
  kStreamItem = 3,
  kStreamModel = 4,
  kStreamCalibrate = 5,
  kStreamOracle = 6,
  kStreamChurn = 7,
};

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& v : s_) v = SplitMix64(&seed);
  }
  uint64_t Next() {
    uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // [0, 1)
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // [0, n)
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>((Next() >> 32) * n >> 32); }
  bool Bernoulli(double p) { return Uniform() < p; }
  double Normal() {
    double u1 = 1.0 - Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double Exponential(double mean) { return -std::log(1.0 - Uniform()) * mean; }
  int Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean > 30) {
      double v = std::round(mean + std::sqrt(mean) * Normal());
      return v < 0 ? 0 : static_cast<int>(v);
    }
    double l = std::exp(-mean), p = 1.0;
    int k = 0;
    do {
      ++k;
      p *= Uniform();
    } while (p > l);
    return k - 1;
  }
  // Index drawn from unnormalised weights.
  int Pick(const double* w, int n) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += w[i];
    double x = Uniform() * total;
    for (int i = 0; i < n; ++i) {
      if (x < w[i]) return i;
      x -= w[i];
    }
    return n - 1;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Walker's alias table over unnormalised weights: O(1) draws.
class AliasTable {
 public:
  void Build(const std::vector<double>& weights);
  bool empty() const { return prob_.empty(); }
  uint32_t Sample(Rng& rng) const {
    uint32_t i = rng.Below(static_cast<uint32_t>(prob_.size()));
    return rng.Uniform() < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<uint32_t> alias_;
};

inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// ---------------------------------------------------------------------------------------------
// Vocabulary.

// Latent taste dimensions: topics shared by customers and items, two style dimensions and two
// dimensions with no name (only reachable through the random part of the feature maps).
enum Dim : int {
  kDimDeposit,
  kDimWealth,
  kDimEquity,
  kDimFixedIncome,
  kDimInsurance,
  kDimCard,
  kDimLoan,
  kDimHousing,
  kDimCar,
  kDimTravel,
  kDimEducation,
  kDimRetirement,
  kDimHealth,
  kDimMarket,
  kDimSecurity,
  kDimDeals,
  kDimPrivate,
  kDimPayroll,
  kDimDigital,
  kDimGold,
  kDimVideo,
  kDimDepth,
  kDimHidden1,
  kDimHidden2,
  kDim
};
extern const char* const kDimNames[kDim];

// Channels, in the order the default DataConfig registers them.
enum : uint8_t { kChApp = 0, kChPush = 1, kChSms = 2, kChBanner = 3 };
static_assert(kChApp == kAppHome && kChPush == kWechatPush, "the bank's channel ids are core's");
extern const char* const kChannelNames[4];

inline constexpr int kNumRegions = 12;
extern const char* const kRegionNames[kNumRegions];

enum Label : int {
  kPayroll,
  kYoungProfessional,
  kRetiree,
  kNewCustomer,
  kDormant,
  kChurnRisk,
  kCarOwner,
  kParent,
  kHighNetWorth,
  kInvestor,
  kHomeowner,
  kFrequentTraveler,
  kOnlineShopper,
  kNumLabels
};
extern const char* const kLabelNames[kNumLabels];

inline constexpr int kNumLifeStages = 6;
extern const char* const kLifeStageNames[kNumLifeStages];
inline constexpr int kNumOccupations = 12;
extern const char* const kOccupationNames[kNumOccupations];

inline constexpr int kNumAgeBands = 5;  // <25, 25-34, 35-49, 50-59, 60+
inline constexpr int kNumPersonas = 4;  // investor, parent, car owner, other (first that applies)
inline constexpr int kNumSegments = kNumTiers * kNumAgeBands * kNumPersonas;

// ---------------------------------------------------------------------------------------------
// The world.

struct CustomerRec {
  uint8_t tier = 0;  // Tier
  uint8_t risk = 0;  // 1..5, 0 = never assessed
  uint8_t age = 0;
  uint8_t female = 0;
  uint8_t life_stage = 0;
  uint8_t occupation = 0;
  uint8_t region = 0;
  uint8_t segment = 0;  // (tier * kNumAgeBands + age band) * kNumPersonas + persona (the logging policy's segment)
  uint8_t opt_out = 0;  // bit = channel id
  uint32_t labels = 0;  // bit = Label
  float income = 0;     // monthly, CNY
  float aum = 0;        // CNY
  TimeMs assessed = kNoTime;
  float app_rate = 0;  // app_home sessions per day (before the churn trend)
  // Planted churn (issue 18; no input column states it): a leaving customer's activity falls
  // from churn_at - churn_window to churn_at and then stops. kNoTime = not leaving. Some leave
  // after the data ends (their decline has begun or not): what a churn model should foresee.
  TimeMs churn_at = kNoTime;
  float push_rate = 0;  // marketing push runs per day that reach the customer
  bool HasLabel(Label l) const { return (labels >> l) & 1u; }
};

struct ItemRec {
  std::string id, title, text, tags, campaign;
  bool product = true;
  bool service = false;
  uint8_t category = 0;
  uint8_t risk = 0;      // 1..5, 0 = not an investment product
  uint8_t tiers = 0;     // bit = Tier, 0 = all
  uint16_t regions = 0;  // bit = region, 0 = all
  uint8_t channels = 0;  // bit = channel id, 0 = all
  TimeMs start = kNoTime, end = kNoTime;
  float value = 1, boost = 1;
  std::vector<uint16_t> tag_codes;

  bool AllowsChannel(int ch) const { return channels == 0 || ((channels >> ch) & 1); }
  bool ValidAt(TimeMs t) const { return (start == kNoTime || t >= start) && (end == kNoTime || t < end); }
};

// Parameters of the true response model and of the logging policy (all written to truth.json).
struct Params {
  // Response model: logit = intercept + item_bias + alpha * affinity - fatigue, where
  // affinity = dot(customer_latent, item_latent) (latents are pre-scaled so that affinity has
  // unit variance over random pairs).
  float alpha = 4.0f;
  float click_intercept = -4.0f;       // app_home impression -> click (calibrated)
  float product_click_offset = -1.0f;  // added to the click logit of products (cards are clicked less)
  float open_intercept = -2.5f;        // push_sent -> push_open (calibrated)
  float convert_intercept = -3.0f;     // product click -> convert (calibrated)
  float convert_alpha = 1.0f;
  float dismiss_intercept = -5.0f;  // impression without click -> dismiss (calibrated)
  float dismiss_alpha = -1.2f;
  float fatigue_item = 0.45f;      // per earlier exposure of the same item
  float fatigue_category = 0.12f;  // per recent (decayed) exposure of the same category
  float fatigue_half_life_days = 2.0f;
  // Cost of contact pressure (the closed loop only: SimulatorOptions::opt_outs): a marketing push
  // makes the customer opt out of wechat_push with probability sigmoid(opt_out_intercept +
  // opt_out_pressure * marketing pushes in the 7 days up to and including it - opt_out_alpha *
  // affinity): about 0.3% for a lone relevant push, 1.7% at one a day.
  float opt_out_intercept = -6.5f;
  float opt_out_pressure = 0.35f;
  float opt_out_alpha = 0.3f;
  float target_ctr = 0.035f, target_open = 0.10f, target_convert = 0.04f, target_dismiss = 0.01f;
  float unobservable_share = 0.2f;  // idiosyncratic share of latent variance (customers, items)
  // Logging policy.
  int product_slots = 1, content_slots = 3;                            // per app_home session
  float pi_popularity = 0.30f, pi_segment = 0.60f, pi_random = 0.10f;  // app_home slots
  float push_pi_popularity = 0.35f, push_pi_segment = 0.65f;           // wechat_push
  float segment_temperature = 1.5f;
  float service_push_rate = 0.004f;  // service pushes per customer-day
  float churn_decline = 0.6f;        // a leaving customer's activity drops by this share when the decline begins
  double churn_window_share = 0.4;   // the decline lasts this share of the period
  float churn_rate = 0.08f;          // the share of customers who leave (four times as many among those
                                     // the bank tags churn_risk: the tag is a weak, noisy signal)
  float weekend_factor = 1.15f;
  int max_tries = 24;                            // rejection-sampling attempts per slot
  TimeMs assessment_validity = 360 * kMsPerDay;  // stricter than the 12-month rule
};

// One candidate pool of the logging policy (e.g. app_home products) and its samplers.
struct Pool {
  std::vector<uint32_t> items;                     // item indexes
  AliasTable popularity;                           // over items, weight pop
  std::vector<std::vector<uint32_t>> by_category;  // item indexes per category
  std::vector<AliasTable> category_items;          // per category, weight sqrt(pop)
  std::vector<double> category_mass;               // per category, sum of sqrt(pop)
  AliasTable segment_category[kNumSegments];       // per segment, weight T[s][cat] * mass
};

struct World {
  BankOptions options;
  TimeZone tz = TimeZone::Utc();
  TimeMs start = 0, end = 0, holdout_start = 0;
  Params params;

  std::vector<CustomerRec> customers;
  std::vector<uint32_t> holding_offsets;  // CSR into holdings, size customers + 1
  std::vector<uint32_t> holdings;         // item indexes, sorted per customer
  std::vector<std::string> customer_ids;
  std::vector<float> customer_latent;  // customers x kDim
  // The part of customer_latent the customers.csv attributes determine (A phi, centred and
  // scaled like customer_latent): E[latent | attributes]. The rest is idiosyncratic noise.
  std::vector<float> customer_latent_observable;  // customers x kDim
  std::vector<float> customer_observable_share;   // per dim, measured
  std::vector<ItemRec> items;
  std::vector<float> item_latent;  // items x kDim
  std::vector<float> item_observable_share;
  std::vector<float> item_bias, item_pop;
  std::vector<std::string> categories;  // category names
  std::vector<std::string> tag_names;
  double affinity_scale = 1;  // raw dot products were divided by this

  std::vector<float> targeting;  // kNumSegments x categories: T[s][cat]
  Pool app_products, app_contents, push_contents;
  std::vector<uint32_t> service_items;
  int num_services = 0;

  float Affinity(uint32_t c, uint32_t i) const { return Dot(&customer_latent[size_t(c) * kDim], i); }
  // The same with the customer's latent replaced by its attribute part (what an oracle knowing
  // customers only by their customers.csv attributes believes).
  float AttributeAffinity(uint32_t c, uint32_t i) const {
    return Dot(&customer_latent_observable[size_t(c) * kDim], i);
  }
  // dot(u, item_latent of i) for a kDim customer vector u.
  float Dot(const float* u, uint32_t i) const {
    const float* v = &item_latent[size_t(i) * kDim];
    float s = 0;
    for (int k = 0; k < kDim; ++k) s += u[k] * v[k];
    return s;
  }
  bool Holds(uint32_t c, uint32_t i) const;
  // Static eligibility of an item for a customer on a channel at time t (tier, region,
  // channel, validity, suitability, consent); state-dependent rules are the logging policy's.
  bool Eligible(const CustomerRec& c, const ItemRec& it, int channel, TimeMs t) const {
    if (!it.AllowsChannel(channel)) return false;
    if ((c.opt_out >> channel) & 1) return false;
    if (it.tiers && !((it.tiers >> c.tier) & 1)) return false;
    if (it.regions && !((it.regions >> c.region) & 1)) return false;
    if (!it.ValidAt(t)) return false;
    if (it.risk) {
      if (c.risk < it.risk || c.assessed == kNoTime || c.assessed > t || t - c.assessed >= params.assessment_validity) {
        return false;
      }
    }
    return true;
  }
  // Multiplier of a customer's activity at time t (the churn trend): 1, or for a leaving
  // customer, during the decline (the `window` before churn_at), a drop to 1 - churn_decline
  // that falls on linearly to a tenth of it, and 0 from churn_at.
  float Trend(const CustomerRec& c, TimeMs t) const {
    if (c.churn_at == kNoTime) return 1.0f;
    if (t >= c.churn_at) return 0.0f;
    const double window = params.churn_window_share * double(end - start);
    const double f = (double(t) - (double(c.churn_at) - window)) / window;
    return f <= 0 ? 1.0f : static_cast<float>((1.0 - params.churn_decline) * (1.0 - 0.9 * f));
  }
};

// OK when lo <= v <= hi; else InvalidArgument "--<flag> must be between lo and hi (got v)".
Status CheckOptionRange(const char* flag, int64_t v, int64_t lo, int64_t hi);

// Builds customers, items, latents and the logging policy. Uses options.threads workers.
Status BuildWorld(const BankOptions& options, World* world);

// Calibrates the intercepts of world->params on a fixed sample (single-threaded).
void Calibrate(World* world);

// The oracle and popularity baselines on the held-out metric.
struct OracleResult {
  uint64_t eligible = 0, evaluated = 0;
  RecallAtKs oracle, popularity;
  // The oracle with each customer's latent replaced by its attribute part: what a model that
  // knew everything but the customers' idiosyncratic tastes would reach.
  RecallAtKs attribute_oracle;
  // The oracle with each customer's latent estimated (MAP) from their attribute part and their
  // own responses before the holdout: the best a model that learned the items, the response
  // model and the logging policy exactly could do with each customer's history.
  RecallAtKs history_oracle;
};
// `runs`: the bank's events, each run sorted. `oracle_sample` as GenerateOptions::oracle_sample.
OracleResult ComputeOracle(const World& world, const std::vector<std::vector<Event>>& runs, int threads,
                           int64_t oracle_sample);

}  // namespace qm::synth::gen
