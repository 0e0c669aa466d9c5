#include "online_value.h"

#include <algorithm>
#include <random>

#include "qianmian/core/progress.h"
#include "qianmian/serving/rerank.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/simulator.h"

namespace qm::training {

namespace {

using synth::Exposure;
using synth::ResponseProbabilities;

struct Value {
  double clicks = 0, converted_value = 0;
};

// The page's value under the truth.
Status PageValue(const synth::Simulator& sim, const Dataset& ds, uint32_t customer, TimeMs at,
                 const std::vector<uint32_t>& page, Value* v) {
  std::vector<Exposure> shown;
  for (uint32_t i : page) shown.push_back({customer, i, kAppHome, at});
  std::vector<ResponseProbabilities> p(shown.size());
  QM_RETURN_IF_ERROR(sim.Probabilities(shown.data(), shown.size(), p.data()));
  for (size_t k = 0; k < page.size(); ++k) {
    v->clicks += p[k].click;
    v->converted_value += static_cast<double>(p[k].click) * p[k].convert * ds.items[page[k]].value;
  }
  return Status::Ok();
}

// The best page by `score` (higher first) among `eligible`, laid out by the served page rules.
std::vector<uint32_t> BestPage(const Dataset& ds, const std::vector<uint32_t>& eligible,
                               const std::vector<double>& score, const OnlineValueOptions& o) {
  std::vector<size_t> order(eligible.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<serving::PageCandidate> ranked;
  for (size_t k : order) {
    const Item& it = ds.items[eligible[k]];
    ranked.push_back({static_cast<int>(it.kind), it.category, false});
  }
  serving::PageOptions po;
  po.slot_kinds = o.slot_kinds;
  po.max_per_category = o.max_per_category;
  std::mt19937_64 unused(0);
  const serving::Page page = serving::LayOutPage(ranked, static_cast<size_t>(o.page_size), po, &unused);
  std::vector<uint32_t> items;
  for (size_t p : page.positions) items.push_back(eligible[order[p]]);
  return items;
}

// The kinds of the page's positions for the logging policy (0 product, 1 content).
std::vector<int> PositionKinds(const OnlineValueOptions& o) {
  std::vector<int> kinds;
  for (int p = 0; p < o.page_size; ++p) {
    const int k = p < static_cast<int>(o.slot_kinds.size()) ? o.slot_kinds[p] : -1;
    kinds.push_back(k == 0 ? 0 : 1);
  }
  return kinds;
}

}  // namespace

Result<std::map<std::string, double>> OnlineValue(const std::string& data_dir, const Dataset& ds,
                                                  const OnlineValueOptions& o, const ServePage& serve) {
  std::map<std::string, double> out;
  auto options = synth::ReadBankOptions(data_dir);
  if (!options.ok()) {
    if (options.status().code() == StatusCode::kNotFound) return out;  // not a generated bank
    return options.status();
  }
  QM_ASSIGN_OR_RETURN(auto bank, synth::Bank::Create(*options));
  if (bank->num_customers() != ds.customers.size() || bank->num_items() != ds.items.size() ||
      bank->customer_id(0) != ds.customers[0].id) {
    return Status::FailedPrecondition("the bank's truth/ does not describe its customers.csv and items.csv");
  }
  synth::SimulatorOptions so;
  so.end_customer = static_cast<uint32_t>(std::min<int64_t>(o.customers, bank->num_customers()));
  QM_ASSIGN_OR_RETURN(auto sim, synth::Simulator::Create(*bank, so));
  const int64_t day = (o.at - sim->DayStart(0)) / kMsPerDay;
  if (sim->DayStart(day) != o.at) return Status::InvalidArgument("online value: pages are shown at a day's start");
  std::vector<synth::Event> events;
  if (day > 0) QM_RETURN_IF_ERROR(sim->NextDays(day, &events));
  events = {};
  const char* names[] = {"served",     "oracle", "value_oracle", "attribute_oracle", "logging", "segment_targeting",
                         "popularity", "random"};
  constexpr int kPages = 8;
  Value sum[kPages];
  const std::vector<int> kinds = PositionKinds(o);
  Progress progress("online value", so.end_customer, " customers");
  std::vector<std::string> served_ids;
  for (uint32_t c = 0; c < so.end_customer; ++c) {
    progress.Add(1);
    Value v[kPages];
    QM_RETURN_IF_ERROR(serve(ds.customers[c].id, o.at, &served_ids));
    std::vector<uint32_t> page;
    for (const auto& id : served_ids) {
      if (auto i = ds.FindItem(id)) page.push_back(*i);
    }
    QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, page, &v[0]));
    // The oracles rank every item the bank may show the customer.
    std::vector<uint32_t> eligible;
    for (uint32_t i = 0; i < ds.items.size(); ++i) {
      if (sim->EligibleOnAppHome(c, i, o.at)) eligible.push_back(i);
    }
    std::vector<Exposure> shown;
    for (uint32_t i : eligible) shown.push_back({c, i, kAppHome, o.at});
    std::vector<ResponseProbabilities> truth(shown.size()), believed(shown.size());
    QM_RETURN_IF_ERROR(sim->Probabilities(shown.data(), shown.size(), truth.data()));
    QM_RETURN_IF_ERROR(sim->Probabilities(shown.data(), shown.size(), synth::Knowledge::kAttributes, believed.data()));
    std::vector<double> by_click(shown.size()), by_value(shown.size()), by_belief(shown.size());
    for (size_t k = 0; k < shown.size(); ++k) {
      by_click[k] = truth[k].click;
      by_value[k] = static_cast<double>(truth[k].click) * truth[k].convert * ds.items[eligible[k]].value;
      by_belief[k] = believed[k].click;
    }
    QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, BestPage(ds, eligible, by_click, o), &v[1]));
    QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, BestPage(ds, eligible, by_value, o), &v[2]));
    QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, BestPage(ds, eligible, by_belief, o), &v[3]));
    // The logging policy and random choice: means over draws.
    const synth::LoggingMode modes[] = {synth::LoggingMode::kAsLogged, synth::LoggingMode::kSegmentTargeting,
                                        synth::LoggingMode::kPopularity};
    std::mt19937_64 rng(o.seed ^ (0x9e3779b97f4a7c15ull * (c + 1)));
    for (int d = 0; d < o.draws; ++d) {
      for (int m = 0; m < 3; ++m) {
        QM_RETURN_IF_ERROR(sim->LoggingPage(c, o.at, kinds, modes[m], o.seed + d, &page));
        Value x;
        QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, page, &x));
        v[4 + m].clicks += x.clicks / o.draws;
        v[4 + m].converted_value += x.converted_value / o.draws;
      }
      page.clear();
      for (int kind : kinds) {  // uniform among the eligible items of the position's kind
        std::vector<uint32_t> pool;
        for (uint32_t i : eligible) {
          if ((ds.items[i].kind == ItemKind::kProduct) == (kind == 0) &&
              std::find(page.begin(), page.end(), i) == page.end()) {
            pool.push_back(i);
          }
        }
        if (!pool.empty()) page.push_back(pool[rng() % pool.size()]);
      }
      Value x;
      QM_RETURN_IF_ERROR(PageValue(*sim, ds, c, o.at, page, &x));
      v[7].clicks += x.clicks / o.draws;
      v[7].converted_value += x.converted_value / o.draws;
    }
    for (int k = 0; k < kPages; ++k) {
      sum[k].clicks += v[k].clicks;
      sum[k].converted_value += v[k].converted_value;
    }
  }
  progress.Finish();
  const double n = so.end_customer;
  for (int k = 0; k < kPages; ++k) {
    out[std::string("value.") + names[k] + ".clicks"] = sum[k].clicks / n;
    out[std::string("value.") + names[k] + ".converted_value"] = sum[k].converted_value / n;
  }
  out["value.customers"] = n;
  if (sum[3].clicks > 0) out["value.served.share_of_attribute_oracle"] = sum[0].clicks / sum[3].clicks;
  if (sum[1].clicks > 0) out["value.served.share_of_oracle"] = sum[0].clicks / sum[1].clicks;
  if (sum[5].clicks > 0) out["value.served.vs_segment_targeting"] = sum[0].clicks / sum[5].clicks;
  if (sum[2].converted_value > 0) {
    out["value.served.share_of_value_oracle"] = sum[0].converted_value / sum[2].converted_value;
  }
  return out;
}

}  // namespace qm::training
