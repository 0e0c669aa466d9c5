#include "sim_estimate.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <unordered_map>

#include "qianmian/campaign/run.h"
#include "qianmian/experiment/assignment.h"
#include "qianmian/synth/bank.h"
#include "qianmian/synth/simulator.h"

namespace qm::tools {

namespace {

// The generated bank's world and its simulator (opt-outs drawn when `opt_outs`); nullptr bank
// when `data_dir` is not a generated bank.
struct World {
  std::unique_ptr<synth::Bank> bank;
  std::unique_ptr<synth::Simulator> sim;
};
Result<World> BuildWorld(const std::string& data_dir, int threads, bool opt_outs) {
  World w;
  Result<synth::BankOptions> bo = synth::ReadBankOptions(data_dir);
  if (bo.status().code() == StatusCode::kNotFound) return w;
  QM_RETURN_IF_ERROR(bo.status());
  bo->threads = threads;
  QM_ASSIGN_OR_RETURN(w.bank, synth::Bank::Create(*bo));
  synth::SimulatorOptions so;
  so.threads = threads;
  so.opt_outs = opt_outs;
  QM_ASSIGN_OR_RETURN(w.sim, synth::Simulator::Create(*w.bank, so));
  return w;
}

}  // namespace

void WriteSynthEvent(std::ostream& out, const synth::Bank& bank, const synth::Event& e, const std::string& request) {
  out << e.ts << ',' << bank.customer_id(e.customer) << ',' << bank.item_id(e.item) << ',' << EventTypeName(e.type)
      << ',' << (e.channel == kAppHome ? "app_home" : "wechat_push") << ','
      << (request.empty() ? synth::RequestIdText(e) : request) << '\n';
}

Result<WorldEstimate> EstimateInPlantedWorld(const std::string& data_dir, const std::vector<PlannedSend>& sends,
                                             int threads, std::vector<float>* open_probability) {
  WorldEstimate out;
  const auto t0 = std::chrono::steady_clock::now();
  QM_ASSIGN_OR_RETURN(World world, BuildWorld(data_dir, threads, false));
  if (!world.bank) return out;
  const synth::Bank* bank = world.bank.get();
  synth::Simulator* sim = world.sim.get();
  std::vector<synth::Event> events;
  QM_RETURN_IF_ERROR(sim->NextDays(sim->num_days(), &events));  // every customer's state as logged
  events = {};
  std::unordered_map<std::string, uint32_t> customers, items;
  for (uint32_t c = 0; c < bank->num_customers(); ++c) customers.emplace(bank->customer_id(c), c);
  for (uint32_t i = 0; i < bank->num_items(); ++i) items.emplace(bank->item_id(i), i);
  std::vector<synth::Exposure> shown;
  std::vector<size_t> of;  // shown[k] is sends[of[k]]
  for (size_t k = 0; k < sends.size(); ++k) {
    const PlannedSend& s = sends[k];
    auto c = customers.find(s.customer_id);
    auto i = items.find(s.item_id);
    if (c == customers.end() || i == items.end()) {
      ++out.unknown;
      continue;
    }
    shown.push_back({c->second, i->second, kWechatPush, std::max(s.at, bank->start())});
    of.push_back(k);
  }
  std::vector<synth::ResponseProbabilities> p(shown.size());
  QM_RETURN_IF_ERROR(sim->Probabilities(shown.data(), shown.size(), p.data()));
  for (const auto& r : p) out.opens += r.open;
  if (open_probability) {
    open_probability->assign(sends.size(), -1.0f);
    for (size_t k = 0; k < shown.size(); ++k) (*open_probability)[of[k]] = p[k].open;
  }
  out.sends = static_cast<int64_t>(shown.size());
  out.available = true;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

Result<WorldResponses> RespondInPlantedWorld(const std::string& data_dir, const std::vector<PlannedSend>& sends,
                                             uint64_t seed, int threads) {
  WorldResponses out;
  std::vector<float> p;
  QM_ASSIGN_OR_RETURN(WorldEstimate w, EstimateInPlantedWorld(data_dir, sends, threads, &p));
  if (!w.available) return out;
  out.available = true;
  out.sends = w.sends;
  out.unknown = w.unknown;
  out.expected_opens = w.opens;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::exponential_distribution<double> delay(1.0 / (40.0 * 60000.0));  // the world's open delay, mean 40 min
  for (size_t k = 0; k < sends.size(); ++k) {
    const double u = uniform(rng), d = delay(rng);  // drawn for every send: a send's draw never depends on another's
    if (p[k] < 0 || u >= p[k]) continue;
    out.opens.push_back({sends[k].customer_id, sends[k].item_id, sends[k].at + 60000 + static_cast<TimeMs>(d)});
  }
  return out;
}

namespace {

// mean(a) - mean(b) of per-customer counts whose sums and sums of squares are given, with a 95%
// normal interval; the counts are mostly 0/1, so the sum stands for the sum of squares.
std::string Difference(double sum_a, int64_t n_a, double sum_b, int64_t n_b) {
  if (n_a < 2 || n_b < 2) return "n/a";
  const double ma = sum_a / static_cast<double>(n_a), mb = sum_b / static_cast<double>(n_b);
  const double va = std::max(0.0, ma - ma * ma), vb = std::max(0.0, mb - mb * mb);
  const double se = std::sqrt(va / static_cast<double>(n_a) + vb / static_cast<double>(n_b));
  char buf[96];
  std::snprintf(buf, sizeof buf, "%+.4f [%+.4f, %+.4f]", ma - mb, ma - mb - 1.96 * se, ma - mb + 1.96 * se);
  return buf;
}

}  // namespace

std::string SimulatedEffect::Format() const {
  std::string s;
  char buf[256];
  auto per = [](double v, int64_t n) { return n > 0 ? v / static_cast<double>(n) : 0.0; };
  std::snprintf(buf, sizeof buf,
                "simulated effect of campaign %s (the planted world, %lld days after the occurrence)\n",
                campaign.c_str(), static_cast<long long>(days));
  s += buf;
  std::snprintf(buf, sizeof buf, "  %-22s %10s %10s %10s %12s %10s\n", "arm", "customers", "opens", "clicks",
                "conversions", "opt-outs");
  s += buf;
  for (const auto& [name, a] : {std::pair<const char*, const SimulatedArm&>{"treated (sent)", treated},
                                std::pair<const char*, const SimulatedArm&>{"held out", held_out}}) {
    std::snprintf(buf, sizeof buf, "  %-22s %10lld %10.4f %10.4f %12.5f %10.5f\n", name,
                  static_cast<long long>(a.customers), per(a.opens, a.customers), per(a.clicks, a.customers),
                  per(a.conversions, a.customers), per(a.opt_outs, a.customers));
    s += buf;
  }
  s += "  per customer, treated minus held out, with 95% intervals:\n";
  s += "    clicks      " + Difference(treated.clicks, treated.customers, held_out.clicks, held_out.customers) + "\n";
  s += "    conversions " +
       Difference(treated.conversions, treated.customers, held_out.conversions, held_out.customers) + "\n";
  s += "    opt-outs    " + Difference(treated.opt_outs, treated.customers, held_out.opt_outs, held_out.customers) +
       "\n";
  std::snprintf(buf, sizeof buf, "  %lld of the treated arm were sent the campaign's push; %.1f s\n",
                static_cast<long long>(treated.sent), seconds);
  s += buf;
  return s;
}

Result<SimulatedEffect> SimulateOccurrence(const serving::EngineOptions& engine_options, const campaign::Campaign& c,
                                           const std::string& data_dir, int64_t day, int threads) {
  SimulatedEffect out;
  out.campaign = c.definition.id;
  const auto t0 = std::chrono::steady_clock::now();
  // Contact pressure costs opt-outs, as in the closed loop.
  QM_ASSIGN_OR_RETURN(World world, BuildWorld(data_dir, threads, true));
  if (!world.bank) return out;
  const synth::Bank* bank = world.bank.get();
  synth::Simulator* sim = world.sim.get();
  if (day == 0) day = std::max<int64_t>(1, sim->num_days() - 7);  // a week of effect
  if (day < 1 || day >= sim->num_days()) {
    return Status::InvalidArgument("the occurrence's day must be within the world's period: 1.." +
                                   std::to_string(sim->num_days() - 1));
  }
  std::vector<synth::Event> events;
  QM_RETURN_IF_ERROR(sim->NextDays(day, &events));
  out.at = sim->DayStart(sim->day());
  out.days = sim->num_days() - sim->day();
  // The bank as it was at that midnight: a scratch folder with the events before it.
  namespace fs = std::filesystem;
  const fs::path scratch = fs::temp_directory_path() / ("qm-simulate-" + std::to_string(::getpid()));
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{scratch};
  for (const char* f : {"customers.csv", "items.csv"}) {
    std::error_code ec;
    fs::copy_file(fs::path(data_dir) / f, scratch / f, ec);
    if (ec) return Status::IoError("copying " + std::string(f) + ": " + ec.message());
  }
  {
    std::ofstream ev(scratch / "events.csv", std::ios::trunc);
    ev << "ts,customer_id,item_id,type,channel,request_id\n";
    for (const synth::Event& e : events) WriteSynthEvent(ev, *bank, e);
    if (!ev) return Status::IoError("writing the simulation's events.csv");
  }
  events = {};
  serving::EngineOptions eo = engine_options;
  eo.data.dir = scratch.string();
  eo.store = policy::StoreConfig();
  eo.store.path = (scratch / "store").string();
  eo.store.sync = false;
  eo.serving.seed_store = true;
  eo.shared_store = nullptr;
  eo.dataset = nullptr;
  QM_ASSIGN_OR_RETURN(auto engine_ptr, serving::Engine::Open(eo));
  serving::Engine* engine = engine_ptr.get();
  // The engine's choice at that midnight, for everyone; the holdout is split off as the runs do.
  std::unordered_map<std::string, uint32_t> customers, items;
  for (uint32_t i = 0; i < bank->num_customers(); ++i) customers.emplace(bank->customer_id(i), i);
  for (uint32_t i = 0; i < bank->num_items(); ++i) items.emplace(bank->item_id(i), i);
  std::vector<int8_t> arm(bank->num_customers(), -1);  // -1 not in the audience, 0 held out, 1 treated
  std::vector<synth::Exposure> shown;
  const uint64_t key = experiment::SaltKey("campaign:" + c.definition.id);
  campaign::RunOptions ro;
  ro.occurrence = "simulated";
  ro.dry_run = true;
  ro.no_budget = true;  // every selected customer is in an arm: the effect is per customer
  ro.now = out.at + 1;
  ro.out = (scratch / "occurrence.csv").string();
  ro.progress = false;
  ro.on_choice = [&](const std::string& id, const serving::PushChoice& choice) {
    auto cu = customers.find(id);
    if (cu == customers.end() || choice.items.empty()) return;  // the selection: those it would send to
    const bool held = experiment::UnitValue(id, key) < c.definition.holdout;
    arm[cu->second] = held ? 0 : 1;
    if (held) return;
    for (const serving::ResponseItem& it : choice.items) {
      auto i = items.find(it.item_id);
      if (i != items.end()) shown.push_back({cu->second, i->second, kWechatPush, out.at + 1});
    }
  };
  // Everyone's would-be sends (a dry run withholds the holdout): the campaign without its holdout,
  // taken as approved with the segments the caller resolved (c.segments).
  campaign::Campaign everyone = c;
  everyone.definition.holdout = 0;
  everyone.approved_hash = everyone.hash();
  QM_RETURN_IF_ERROR(campaign::RunOccurrence(engine, everyone, ro).status());
  std::sort(shown.begin(), shown.end(), [](const synth::Exposure& a, const synth::Exposure& b) {
    return a.customer < b.customer || (a.customer == b.customer && a.item < b.item);
  });
  std::vector<synth::Event> after;
  QM_RETURN_IF_ERROR(sim->Show(shown.data(), shown.size(), &after));
  std::vector<uint8_t> sent(bank->num_customers(), 0);
  for (const synth::Exposure& e : shown) sent[e.customer] = 1;
  std::vector<synth::Event> rest;
  QM_RETURN_IF_ERROR(sim->NextDays(out.days, &rest));
  after.insert(after.end(), rest.begin(), rest.end());
  for (size_t i = 0; i < arm.size(); ++i) {
    if (arm[i] < 0) continue;
    SimulatedArm& a = arm[i] ? out.treated : out.held_out;
    ++a.customers;
    a.sent += sent[i];
  }
  for (const synth::Event& e : after) {
    if (arm[e.customer] < 0) continue;
    SimulatedArm& a = arm[e.customer] ? out.treated : out.held_out;
    if (e.type == EventType::kPushOpen) a.opens += 1;
    if (e.type == EventType::kClick) a.clicks += 1;
    if (e.type == EventType::kConvert) a.conversions += 1;
    if (e.type == EventType::kOptOut) a.opt_outs += 1;
  }
  out.available = true;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace qm::tools
