// The oracle and popularity rankings, scored on the held-out metric (qianmian/metrics).
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>

#include "parallel.h"
#include "qianmian/core/progress.h"
#include "qianmian/core/top_k.h"
#include "qianmian/metrics/held_out.h"
#include "qianmian/metrics/metrics.h"
#include "response.h"
#include "world.h"

namespace qm::synth::gen {

struct Facts {
  float valid;  // share of the holdout the item is valid
  float pop, sqrt_pop;
  uint8_t tiers, risk, category, pools;  // pools: bit 0 app product, 1 app content, 2 push, 3 service
  uint16_t regions;
};

// Tier, region, validity and suitability of an item for a customer, as a weight in [0, 1].
inline float StaticWeight(const Facts& f, const CustomerRec& cu, float assessed_share) {
  if (f.tiers && !((f.tiers >> cu.tier) & 1)) return 0;
  if (f.regions && !((f.regions >> cu.region) & 1)) return 0;
  if (f.risk) return cu.risk >= f.risk ? f.valid * assessed_share : 0;
  return f.valid;
}

constexpr int kNumGroups = kNumTiers * kNumRegions * 6;
inline int GroupOf(const CustomerRec& c) { return (c.tier * kNumRegions + c.region) * 6 + c.risk; }

struct GroupSums {
  double pop[2][4] = {};
  double n[2][4] = {};
  double seg[kNumSegments][2][4] = {};
};

// One logged exposure of a sampled customer before the holdout, as the response model saw it.
struct LoggedExposure {
  uint32_t item;
  float offset;   // intercept + item bias - fatigue at the time
  bool positive;  // a click or push open followed (same request)
};

// The history oracle's customer latents (rows of `customers`): the MAP estimate of each latent
// given its attribute part (the prior mean), the idiosyncratic prior N(0, s_k^2) measured over
// the customers, and the customer's own responses in `events` (per customer, before the
// holdout, in time order) under the true response model (fatigue replayed as the simulation
// applied it). Newton's method on the log posterior.
std::vector<float> HistoryLatents(const World& w, const std::vector<std::vector<const Event*>>& events,
                                  const std::vector<uint32_t>& customers, int threads) {
  const Params& p = w.params;
  const size_t n = w.customers.size(), k = customers.size();
  double prior_var[kDim] = {0};
  const size_t stat_n = std::min<size_t>(n, 50000);
  for (size_t c = 0; c < stat_n; ++c)
    for (int d = 0; d < kDim; ++d) {
      const double e = w.customer_latent[c * kDim + d] - w.customer_latent_observable[c * kDim + d];
      prior_var[d] += e * e / static_cast<double>(stat_n);
    }
  std::vector<float> out(k * kDim);
  ParallelFor(k, threads, 64, [&](size_t b, size_t e) {
    std::vector<LoggedExposure> xs;
    for (size_t s = b; s < e; ++s) {
      const auto& ev = events[s];
      xs.clear();
      CustomerState state(w.start);  // replays the fatigue the simulation applied
      for (size_t j = 0; j < ev.size(); ++j) {
        const Event& x = *ev[j];
        const auto type = x.type;
        if (type != EventType::kImpression && type != EventType::kPushSent) continue;
        const ItemRec& it = w.items[x.item];
        const bool service = type == EventType::kPushSent && it.service;
        const float fatigue = service ? 0.0f : state.Fatigue(w, x.item, x.ts);
        const float intercept = type == EventType::kPushSent
                                    ? p.open_intercept
                                    : p.click_intercept + (it.product ? p.product_click_offset : 0.0f);
        bool positive = false;
        const EventType response = type == EventType::kPushSent ? EventType::kPushOpen : EventType::kClick;
        for (size_t q = j + 1; q < ev.size(); ++q)
          if (ev[q]->request == x.request && ev[q]->item == x.item && ev[q]->type == response) {
            positive = true;
            break;
          }
        xs.push_back({x.item, intercept + w.item_bias[x.item] - fatigue, positive});
        if (!service) state.Expose(w, x.item, x.ts);
      }
      const uint32_t c = customers[s];
      Eigen::VectorXd mean(kDim), delta = Eigen::VectorXd::Zero(kDim);
      for (int d = 0; d < kDim; ++d) mean(d) = w.customer_latent_observable[size_t(c) * kDim + d];
      for (int iter = 0; iter < 20 && !xs.empty(); ++iter) {
        Eigen::VectorXd g = Eigen::VectorXd::Zero(kDim);
        Eigen::MatrixXd hess = Eigen::MatrixXd::Zero(kDim, kDim);
        for (int d = 0; d < kDim; ++d) {
          g(d) = delta(d) / prior_var[d];
          hess(d, d) = 1.0 / prior_var[d];
        }
        for (const LoggedExposure& x : xs) {
          Eigen::Map<const Eigen::VectorXf> v(&w.item_latent[size_t(x.item) * kDim], kDim);
          const Eigen::VectorXd vd = v.cast<double>();
          const double z = x.offset + p.alpha * vd.dot(mean + delta);
          const double pr = 1.0 / (1.0 + std::exp(-z));
          g += p.alpha * (pr - (x.positive ? 1.0 : 0.0)) * vd;
          hess.selfadjointView<Eigen::Lower>().rankUpdate(vd, p.alpha * p.alpha * pr * (1 - pr));
        }
        const Eigen::VectorXd step = hess.selfadjointView<Eigen::Lower>().ldlt().solve(g);
        delta -= step;
        if (step.norm() < 1e-6) break;
      }
      for (int d = 0; d < kDim; ++d) out[s * kDim + d] = static_cast<float>(mean(d) + delta(d));
    }
  });
  return out;
}

OracleResult ComputeOracle(const World& w, const std::vector<std::vector<Event>>& runs, int threads,
                           int64_t oracle_sample) {
  OracleResult res;
  const size_t n = w.customers.size(), m = w.items.size();
  const TimeMs H = w.holdout_start;
  std::vector<metrics::PositiveEvent> pos;
  std::vector<uint32_t> pop_count(m, 0);
  for (const auto& run : runs)
    for (const Event& e : run) {
      if (!IsPositive(e.type)) continue;
      pos.push_back({e.customer, e.item, e.ts >= H});
      if (e.ts < H) ++pop_count[e.item];
    }
  const metrics::EvalTargets ht = metrics::BuildEvalTargets(std::move(pos));
  res.eligible = ht.customers.size();
  if (ht.customers.empty()) return res;

  // A seeded sample of the eligible customers (positions into ht).
  std::vector<uint32_t> sample(ht.customers.size());
  for (uint32_t k = 0; k < sample.size(); ++k) sample[k] = k;
  const size_t want = static_cast<size_t>(std::max<int64_t>(1, oracle_sample));
  if (sample.size() > want) {
    Rng r(Mix(w.options.seed, 0, kStreamOracle));
    for (size_t k = 0; k < want; ++k) {
      size_t j = k + r.Below(static_cast<uint32_t>(sample.size() - k));
      std::swap(sample[k], sample[j]);
    }
    sample.resize(want);
    std::sort(sample.begin(), sample.end());
  }
  res.evaluated = sample.size();

  // The sampled customers' events before the holdout, in time order (runs are sorted by time),
  // and from them their dismissals and conversions and their history oracle latents.
  std::vector<uint32_t> sampled(sample.size());
  std::vector<int32_t> slot(n, -1);
  for (size_t s = 0; s < sample.size(); ++s) {
    sampled[s] = ht.customers[sample[s]];
    slot[sampled[s]] = static_cast<int32_t>(s);
  }
  std::vector<std::vector<const Event*>> before(sample.size());
  std::vector<std::vector<uint32_t>> blocked(sample.size());
  for (const auto& run : runs)
    for (const Event& e : run) {
      if (e.ts >= H || slot[e.customer] < 0) continue;
      before[slot[e.customer]].push_back(&e);
      if (e.type == EventType::kDismiss || e.type == EventType::kConvert) blocked[slot[e.customer]].push_back(e.item);
    }
  for (auto& b : blocked) {
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
  }
  const std::vector<float> history_latent = HistoryLatents(w, before, sampled, threads);

  // Popularity order.
  std::vector<uint32_t> by_pop(m);
  for (uint32_t i = 0; i < m; ++i) by_pop[i] = i;
  std::stable_sort(by_pop.begin(), by_pop.end(), [&](uint32_t a, uint32_t b) { return pop_count[a] > pop_count[b]; });

  // Per-item facts over the held-out period, as compact arrays.
  const Params& p = w.params;
  const double hold_len = static_cast<double>(w.end - H);
  const double hold_days = hold_len / kMsPerDay;
  std::vector<Facts> facts(m);
  for (size_t i = 0; i < m; ++i) {
    const ItemRec& it = w.items[i];
    TimeMs a = std::max(H, it.start == kNoTime ? H : it.start);
    TimeMs b = std::min(w.end, it.end == kNoTime ? w.end : it.end);
    facts[i] = {b > a ? static_cast<float>((b - a) / hold_len) : 0.0f,
                w.item_pop[i],
                std::sqrt(w.item_pop[i]),
                it.tiers,
                it.risk,
                it.category,
                0,
                it.regions};
  }
  for (uint32_t i : w.app_products.items) facts[i].pools |= 1;
  for (uint32_t i : w.app_contents.items) facts[i].pools |= 2;
  for (uint32_t i : w.push_contents.items) facts[i].pools |= 4;
  for (uint32_t i : w.service_items) facts[i].pools |= 8;
  const TimeMs mid = H + (w.end - H) / 2;
  const size_t num_cats = w.categories.size();

  // Sums over the statically eligible items per (tier, region, risk level) group, split into
  // non-investment [0] and investment [1] items, per pool q (the segment sums per segment).
  std::vector<GroupSums> group_sums(kNumGroups);
  ParallelFor(kNumGroups, threads, 1, [&](size_t gb, size_t ge) {
    for (size_t gi = gb; gi < ge; ++gi) {
      CustomerRec probe;
      probe.tier = static_cast<uint8_t>(gi / (kNumRegions * 6));
      probe.region = static_cast<uint8_t>(gi / 6 % kNumRegions);
      probe.risk = static_cast<uint8_t>(gi % 6);
      GroupSums& g = group_sums[gi];
      std::vector<double> by_cat(2 * 4 * num_cats, 0.0);  // [part][q][category] sums of sqrt(pop)
      for (size_t i = 0; i < m; ++i) {
        const Facts& f = facts[i];
        const float wt = StaticWeight(f, probe, 1.0f);
        if (wt == 0) continue;
        const int part = f.risk ? 1 : 0;
        for (int q = 0; q < 4; ++q) {
          if (!((f.pools >> q) & 1)) continue;
          g.pop[part][q] += wt * f.pop;
          g.n[part][q] += wt;
          by_cat[(part * 4 + q) * num_cats + f.category] += wt * f.sqrt_pop;
        }
      }
      for (int sg = 0; sg < kNumSegments; ++sg)
        for (int part = 0; part < 2; ++part)
          for (int q = 0; q < 4; ++q)
            for (size_t cat = 0; cat < num_cats; ++cat)
              g.seg[sg][part][q] += w.targeting[sg * num_cats + cat] * by_cat[(part * 4 + q) * num_cats + cat];
    }
  });

  constexpr int kCols = 12;  // recall@10/20/50 of the oracle, popularity, attribute and history oracles
  std::vector<float> recall(sample.size() * kCols, 0.0f);
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMat> V(w.item_latent.data(), static_cast<Eigen::Index>(m), kDim);
  Progress progress("generate: oracle", sample.size(), " customers");
  constexpr size_t kBatch = 64;
  ParallelFor(sample.size(), threads, kBatch, [&](size_t b, size_t e) {
    const Eigen::Index rows = static_cast<Eigen::Index>(e - b);
    RowMat U(rows, kDim), Uo(rows, kDim), Uh(rows, kDim);
    for (size_t s = b; s < e; ++s)
      for (int k = 0; k < kDim; ++k) {
        const size_t at = size_t(ht.customers[sample[s]]) * kDim + k;
        U(static_cast<Eigen::Index>(s - b), k) = w.customer_latent[at];
        Uo(static_cast<Eigen::Index>(s - b), k) = w.customer_latent_observable[at];
        Uh(static_cast<Eigen::Index>(s - b), k) = history_latent[s * kDim + k];
      }
    const RowMat S = U * V.transpose(), So = Uo * V.transpose(), Sh = Uh * V.transpose();
    std::vector<float> lambda(m), weight(m), app_exp(m), push_exp(m);
    std::vector<uint32_t> excluded, top;
    TopK<uint32_t> best;
    for (size_t s = b; s < e; ++s) {
      const uint32_t c = ht.customers[sample[s]];
      const CustomerRec& cu = w.customers[c];
      const metrics::IndexSpan seen = ht.seen[sample[s]];
      const metrics::IndexSpan targets = ht.targets[sample[s]];
      // Share of the held-out period with a valid assessment.
      float assessed_share = 0;
      if (cu.assessed != kNoTime) {
        TimeMs a = std::max(H, cu.assessed), z = std::min(w.end, cu.assessed + p.assessment_validity);
        assessed_share = z > a ? static_cast<float>((z - a) / hold_len) : 0.0f;
      }
      const float* T = &w.targeting[cu.segment * num_cats];
      // Normalisers of the policy's components over the eligible items: the group's sums, the
      // risky part scaled by the assessment's validity, minus the items never shown again.
      const GroupSums& g = group_sums[GroupOf(cu)];
      double z_pop[4], z_seg[4], z_n[4];
      for (int q = 0; q < 4; ++q) {
        z_pop[q] = g.pop[0][q] + assessed_share * g.pop[1][q];
        z_seg[q] = g.seg[cu.segment][0][q] + assessed_share * g.seg[cu.segment][1][q];
        z_n[q] = g.n[0][q] + assessed_share * g.n[1][q];
      }
      excluded.assign(w.holdings.begin() + w.holding_offsets[c], w.holdings.begin() + w.holding_offsets[c + 1]);
      excluded.insert(excluded.end(), blocked[s].begin(), blocked[s].end());
      for (uint32_t i : seen)
        if (!w.items[i].product) excluded.push_back(i);
      std::sort(excluded.begin(), excluded.end());
      excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
      for (uint32_t i : excluded) {
        const float wt = StaticWeight(facts[i], cu, assessed_share);
        if (wt == 0) continue;
        const Facts& f = facts[i];
        for (int q = 0; q < 4; ++q) {
          if (!((f.pools >> q) & 1)) continue;
          z_pop[q] -= wt * f.pop;
          z_seg[q] -= wt * T[f.category] * f.sqrt_pop;
          z_n[q] -= wt;
        }
      }
      for (int q = 0; q < 4; ++q) {
        if (z_pop[q] < 1e-9) z_pop[q] = 0;
        if (z_seg[q] < 1e-9) z_seg[q] = 0;
        if (z_n[q] < 1e-9) z_n[q] = 0;
      }
      const float trend = w.Trend(cu, mid);
      const double sessions = ((cu.opt_out >> kChApp) & 1) ? 0.0 : cu.app_rate * trend * hold_days;
      const double pushes = cu.push_rate * trend * hold_days;
      const double service =
          ((cu.opt_out >> kChPush) & 1) || w.service_items.empty() ? 0.0 : p.service_push_rate * hold_days;
      const float pi_r = 1.0f - p.pi_popularity - p.pi_segment;
      // Expected exposures per unit of weight: pop * a[q] + T[cat] * sqrt_pop * b[q] + c[q].
      float ca[4] = {0, 0, 0, 0}, cb[4] = {0, 0, 0, 0}, cc[4] = {0, 0, 0, 0};
      const double slots[2] = {double(p.product_slots), double(p.content_slots)};
      for (int q = 0; q < 2; ++q) {
        if (sessions == 0) continue;
        if (z_pop[q] > 0) ca[q] = static_cast<float>(sessions * slots[q] * p.pi_popularity / z_pop[q]);
        if (z_seg[q] > 0) cb[q] = static_cast<float>(sessions * slots[q] * p.pi_segment / z_seg[q]);
        if (z_n[q] > 0) cc[q] = static_cast<float>(sessions * slots[q] * pi_r / z_n[q]);
      }
      if (pushes > 0) {
        if (z_pop[2] > 0) ca[2] = static_cast<float>(pushes * p.push_pi_popularity / z_pop[2]);
        if (z_seg[2] > 0) cb[2] = static_cast<float>(pushes * p.push_pi_segment / z_seg[2]);
      }
      if (service > 0 && z_n[3] > 0) cc[3] = static_cast<float>(service / z_n[3]);
      const float e_click = std::exp(-p.click_intercept), e_open = std::exp(-p.open_intercept);
      const float e_click_product = std::exp(-(p.click_intercept + p.product_click_offset));
      // Expected app_home impressions and pushes of each item in the holdout, as weight x per
      // unit of weight (the same for the three rankings below); weight 0: never shown.
      for (size_t i = 0; i < m; ++i) {
        const Facts& f = facts[i];
        const float wt = StaticWeight(f, cu, assessed_share);
        float app = 0, push = 0;
        if (wt != 0) {
          const float tp = T[f.category] * f.sqrt_pop;
          if (f.pools & 1) app += f.pop * ca[0] + tp * cb[0] + cc[0];
          if (f.pools & 2) app += f.pop * ca[1] + tp * cb[1] + cc[1];
          if (f.pools & 4) push += f.pop * ca[2] + tp * cb[2];
          if (f.pools & 8) push += cc[3];
        }
        weight[i] = wt;
        app_exp[i] = app;  // per unit of weight
        push_exp[i] = push;
      }
      for (uint32_t i : excluded) weight[i] = 0;
      // Top 50 by expected positives under affinities `srow` (ties: lower index), never a seen item.
      auto rank_by = [&](const float* srow) {
        for (size_t i = 0; i < m; ++i) {
          if (weight[i] == 0) {
            lambda[i] = 0;
            continue;
          }
          // sigmoid(k + x) = 1 / (1 + exp(-k) * exp(-x)), x = bias + alpha * affinity.
          const float ex = std::exp(-(w.item_bias[i] + p.alpha * srow[i]));
          const float ec = (facts[i].pools & 1) ? e_click_product : e_click;
          lambda[i] = weight[i] * (app_exp[i] / (1.0f + ec * ex) + push_exp[i] / (1.0f + e_open * ex));
        }
        for (uint32_t i : seen) lambda[i] = -1;
        best.Reset(static_cast<int64_t>(std::min<size_t>(50, m - seen.size)));
        for (uint32_t i = 0; i < m; ++i)
          if (lambda[i] >= 0) best.Push(lambda[i], i);
        top.clear();
        for (const auto& h : best.SortBestFirst()) top.push_back(h.second);
      };
      float* rc = &recall[s * kCols];
      const Eigen::Index row = static_cast<Eigen::Index>(s - b);
      rank_by(&So(row, 0));
      rc[6] = static_cast<float>(metrics::RecallAtK(top, targets, 10));
      rc[7] = static_cast<float>(metrics::RecallAtK(top, targets, 20));
      rc[8] = static_cast<float>(metrics::RecallAtK(top, targets, 50));
      rank_by(&Sh(row, 0));
      rc[9] = static_cast<float>(metrics::RecallAtK(top, targets, 10));
      rc[10] = static_cast<float>(metrics::RecallAtK(top, targets, 20));
      rc[11] = static_cast<float>(metrics::RecallAtK(top, targets, 50));
      rank_by(&S(row, 0));
      rc[0] = static_cast<float>(metrics::RecallAtK(top, targets, 10));
      rc[1] = static_cast<float>(metrics::RecallAtK(top, targets, 20));
      rc[2] = static_cast<float>(metrics::RecallAtK(top, targets, 50));
      // Popularity: most positives before the holdout, minus the customer's seen items.
      top.clear();
      for (uint32_t i : by_pop) {
        if (top.size() >= 50) break;
        if (!std::binary_search(seen.begin(), seen.end(), i)) top.push_back(i);
      }
      rc[3] = static_cast<float>(metrics::RecallAtK(top, targets, 10));
      rc[4] = static_cast<float>(metrics::RecallAtK(top, targets, 20));
      rc[5] = static_cast<float>(metrics::RecallAtK(top, targets, 50));
    }
    progress.Add(e - b);
  });
  progress.Finish();
  double sum[kCols] = {0};
  for (size_t s = 0; s < sample.size(); ++s)
    for (int k = 0; k < kCols; ++k) sum[k] += recall[s * kCols + k];
  const double ns = static_cast<double>(sample.size());
  res.oracle = {sum[0] / ns, sum[1] / ns, sum[2] / ns};
  res.popularity = {sum[3] / ns, sum[4] / ns, sum[5] / ns};
  res.attribute_oracle = {sum[6] / ns, sum[7] / ns, sum[8] / ns};
  res.history_oracle = {sum[9] / ns, sum[10] / ns, sum[11] / ns};
  return res;
}

}  // namespace qm::synth::gen
