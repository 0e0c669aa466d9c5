#include "qianmian/synth/simulator.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "logging_policy.h"
#include "parallel.h"
#include "world.h"
#include "writers.h"

namespace qm::synth {

std::string RequestIdText(const Event& e) {
  char buf[gen::kRequestIdChars];
  return std::string(buf, gen::FormatRequestId(e, buf));
}

struct Simulator::Impl {
  const gen::World* w = nullptr;
  uint32_t first = 0, end = 0;
  int threads = 0;
  TimeMs day0 = 0;
  int64_t num_days = 0, day = 0;
  std::vector<gen::CustomerSim> sims;  // customer first + k at k

  Status Check(const Exposure& x) const {
    if (x.customer < first || x.customer >= end) {
      return Status::InvalidArgument("customer " + std::to_string(x.customer) + " is outside the simulated slice [" +
                                     std::to_string(first) + ", " + std::to_string(end) + ")");
    }
    if (x.item >= w->items.size()) return Status::InvalidArgument("unknown item " + std::to_string(x.item));
    if (x.channel != kAppHome && x.channel != kWechatPush) {
      return Status::InvalidArgument("channel " + std::to_string(x.channel) +
                                     ": the true model answers app_home and wechat_push only");
    }
    return Status::Ok();
  }
};

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;

Result<std::unique_ptr<Simulator>> Simulator::Create(const Bank& bank, const SimulatorOptions& options) {
  const gen::World& w = bank.world();
  const uint32_t n = bank.num_customers();
  const uint32_t end = options.end_customer == 0 ? n : options.end_customer;
  if (options.first_customer >= end || end > n) {
    return Status::InvalidArgument("customer slice [" + std::to_string(options.first_customer) + ", " +
                                   std::to_string(end) + ") is empty or beyond the bank's " + std::to_string(n) +
                                   " customers");
  }
  if (options.threads < 0) return Status::InvalidArgument("threads must be >= 0");
  auto impl = std::make_unique<Impl>();
  impl->w = &w;
  impl->first = options.first_customer;
  impl->end = end;
  impl->threads = options.threads;
  impl->day0 = w.tz.StartOfDay(w.start);
  impl->num_days = (w.end - impl->day0 + kMsPerDay - 1) / kMsPerDay;
  impl->sims.resize(end - impl->first);
  gen::ParallelFor(impl->sims.size(), options.threads, 1024, [&](size_t b, size_t e) {
    for (size_t k = b; k < e; ++k)
      impl->sims[k] = gen::CustomerSim(w, impl->first + static_cast<uint32_t>(k), options.opt_outs);
  });
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

int64_t Simulator::num_days() const { return impl_->num_days; }
int64_t Simulator::day() const { return impl_->day; }
TimeMs Simulator::DayStart(int64_t d) const { return impl_->day0 + d * kMsPerDay; }

Status Simulator::NextDays(int64_t days, std::vector<Event>* events) {
  return NextDaysClosedLoop(days, nullptr, events, nullptr);
}

Status Simulator::NextDaysClosedLoop(int64_t days, const std::function<bool(uint32_t)>& caller_serves,
                                     std::vector<Event>* events, std::vector<PlannedContact>* contacts) {
  events->clear();
  if (contacts) contacts->clear();
  if (days < 1) return Status::InvalidArgument("days must be >= 1, got " + std::to_string(days));
  if (done()) return Status::FailedPrecondition("all " + std::to_string(num_days()) + " days are simulated");
  if (caller_serves && !contacts) return Status::InvalidArgument("the closed loop needs a contacts list");
  const int64_t last = std::min(num_days(), impl_->day + days);
  const TimeMs until = DayStart(last);
  auto& sims = impl_->sims;
  const uint32_t first = impl_->first;
  auto run = [&](size_t k, std::vector<Event>* ev, std::vector<PlannedContact>* taken) {
    if (caller_serves && caller_serves(first + static_cast<uint32_t>(k))) {
      sims[k].HandOverUntil(until, taken);
    } else {
      sims[k].RunUntil(until, ev);
    }
  };
  constexpr size_t kBlock = 256;
  std::vector<PlannedContact> none;
  if (gen::ResolveThreads(impl_->threads) == 1 || sims.size() <= kBlock) {
    for (size_t k = 0; k < sims.size(); ++k) run(k, events, contacts ? contacts : &none);
  } else {
    const size_t blocks = (sims.size() + kBlock - 1) / kBlock;
    std::vector<std::vector<Event>> parts(blocks);
    std::vector<std::vector<PlannedContact>> taken(blocks);
    gen::ParallelFor(sims.size(), impl_->threads, kBlock, [&](size_t b, size_t e) {
      for (size_t k = b; k < e; ++k) run(k, &parts[b / kBlock], &taken[b / kBlock]);
    });
    size_t total = 0;
    for (const auto& p : parts) total += p.size();
    events->reserve(total);
    for (const auto& p : parts) events->insert(events->end(), p.begin(), p.end());
    if (contacts) {
      for (const auto& t : taken) contacts->insert(contacts->end(), t.begin(), t.end());
    }
  }
  std::sort(events->begin(), events->end());
  if (contacts) std::sort(contacts->begin(), contacts->end());
  impl_->day = last;
  return Status::Ok();
}

Status Simulator::RunServicePush(const PlannedContact& k, std::vector<Event>* events) {
  if (!k.service || k.customer < impl_->first || k.customer >= impl_->end) {
    return Status::InvalidArgument("not a service push of the simulated slice");
  }
  impl_->sims[k.customer - impl_->first].ServicePush(k.ts, events);
  return Status::Ok();
}

Status Simulator::RunLoggingContact(const PlannedContact& k, std::vector<Event>* events) {
  if (k.customer < impl_->first || k.customer >= impl_->end) {
    return Status::InvalidArgument("customer " + std::to_string(k.customer) + " is outside the simulated slice");
  }
  impl_->sims[k.customer - impl_->first].RunContact(k, events);
  return Status::Ok();
}

Status Simulator::LoggingPush(uint32_t customer, TimeMs t, std::vector<Event>* events) {
  if (customer < impl_->first || customer >= impl_->end) {
    return Status::InvalidArgument("customer " + std::to_string(customer) + " is outside the simulated slice");
  }
  impl_->sims[customer - impl_->first].MarketingPush(t, events);
  return Status::Ok();
}

bool Simulator::OptedOutOfPush(uint32_t customer) const {
  const gen::World& w = *impl_->w;
  if ((w.customers[customer].opt_out >> gen::kChPush) & 1) return true;
  return customer >= impl_->first && customer < impl_->end &&
         impl_->sims[customer - impl_->first].state().opted_out_push();
}

uint64_t Simulator::ConsentViolations() const {
  uint64_t n = 0;
  for (const auto& s : impl_->sims) n += s.state().violations();
  return n;
}

Status Simulator::Probabilities(const Exposure* shown, size_t n, Knowledge knowledge,
                                ResponseProbabilities* out) const {
  for (size_t k = 0; k < n; ++k) QM_RETURN_IF_ERROR(impl_->Check(shown[k]));
  for (size_t k = 0; k < n; ++k) {
    const Exposure& x = shown[k];
    out[k] = impl_->sims[x.customer - impl_->first].Probabilities(x.item, x.channel, x.ts, knowledge);
  }
  return Status::Ok();
}

bool Simulator::EligibleOnAppHome(uint32_t customer, uint32_t item, TimeMs t) const {
  const gen::World& w = *impl_->w;
  return w.Eligible(w.customers[customer], w.items[item], gen::kChApp, t) && !w.Holds(customer, item) &&
         !impl_->sims[customer - impl_->first].state().Blocked(item);
}

bool Simulator::EligibleForPush(uint32_t customer, uint32_t item, TimeMs t) const {
  const gen::World& w = *impl_->w;
  const gen::ItemRec& it = w.items[item];
  const gen::CustomerState& st = impl_->sims[customer - impl_->first].state();
  return !it.product && !it.service && !OptedOutOfPush(customer) &&
         w.Eligible(w.customers[customer], it, gen::kChPush, t) && !st.Blocked(item) && st.ExposureCount(item) == 0;
}

Status Simulator::LoggingPage(uint32_t customer, TimeMs t, const std::vector<int>& kinds, LoggingMode mode,
                              uint64_t seed, std::vector<uint32_t>* page) const {
  page->clear();
  if (customer < impl_->first || customer >= impl_->end) {
    return Status::InvalidArgument("customer " + std::to_string(customer) + " is outside the simulated slice");
  }
  const gen::World& w = *impl_->w;
  const gen::Params& p = w.params;
  float pi_pop = p.pi_popularity, pi_seg = p.pi_segment;
  if (mode == LoggingMode::kSegmentTargeting) pi_pop = 0, pi_seg = 1;
  if (mode == LoggingMode::kPopularity) pi_pop = 1, pi_seg = 0;
  gen::Rng rng(gen::Mix(seed, customer, static_cast<uint64_t>(t)));
  auto accept = [&](uint32_t i) {
    return std::find(page->begin(), page->end(), i) == page->end() && EligibleOnAppHome(customer, i, t);
  };
  for (int kind : kinds) {
    const gen::Pool& pool = kind == 0 ? w.app_products : w.app_contents;
    const uint32_t i = gen::DrawSlot(w, pool, w.customers[customer].segment, pi_pop, pi_seg, rng, accept);
    if (i != gen::kNone) page->push_back(i);
  }
  return Status::Ok();
}

Status Simulator::Show(const Exposure* shown, size_t n, std::vector<Event>* events) {
  const gen::World& w = *impl_->w;
  std::unordered_map<uint32_t, TimeMs> latest;  // per customer of the batch: its latest time so far
  for (size_t k = 0; k < n; ++k) {
    const Exposure& x = shown[k];
    QM_RETURN_IF_ERROR(impl_->Check(x));
    if (x.ts < w.start || x.ts >= w.end) {
      return Status::InvalidArgument("exposure " + std::to_string(k) + " at " + std::to_string(x.ts) +
                                     " is outside the period [" + std::to_string(w.start) + ", " +
                                     std::to_string(w.end) + ")");
    }
    auto it = latest.find(x.customer);
    const TimeMs before = it != latest.end() ? it->second : impl_->sims[x.customer - impl_->first].state().last_shown();
    if (before != kNoTime && x.ts < before) {
      return Status::InvalidArgument("exposure " + std::to_string(k) + " of customer " + std::to_string(x.customer) +
                                     " is earlier than something already shown to them");
    }
    latest[x.customer] = x.ts;
  }
  for (size_t k = 0; k < n; ++k) {
    const Exposure& x = shown[k];
    const bool same_request = k > 0 && shown[k - 1].customer == x.customer && shown[k - 1].channel == x.channel;
    impl_->sims[x.customer - impl_->first].Show(x.item, x.channel, x.ts, same_request, events);
  }
  return Status::Ok();
}

}  // namespace qm::synth
