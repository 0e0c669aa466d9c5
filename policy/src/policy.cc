#include "qianmian/policy/policy.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

namespace qm::policy {

struct Policy::CompiledCap {
  CapRule rule;
  int channel = -1;    // channel id the cap is restricted to, -1 = every channel
  uint32_t types = 0;  // event types it counts
};

namespace {

constexpr uint32_t Bit(EventType t) { return 1u << static_cast<int>(t); }
constexpr uint32_t kContactTypes = Bit(EventType::kImpression) | Bit(EventType::kPushSent);
// Item caps become plan templates, with clicked and dismissed: at most 32 (a bit mask each).
constexpr int kMaxItemCaps = 30;

StateRule ToStateRule(CapScope s) {
  switch (s) {
    case CapScope::kCustomerChannel:
      return StateRule::kCapChannel;
    case CapScope::kCustomerItem:
      return StateRule::kCapItem;
    case CapScope::kCustomerCampaign:
      return StateRule::kCapCampaign;
    case CapScope::kCustomerCategory:
      return StateRule::kCapCategory;
    case CapScope::kCustomerMarketing:
      return StateRule::kCapMarketing;
  }
  return StateRule::kCapChannel;
}

KeyScope ToKeyScope(CapScope s) {
  switch (s) {
    case CapScope::kCustomerChannel:
      return KeyScope::kChannel;
    case CapScope::kCustomerItem:
      return KeyScope::kItem;
    case CapScope::kCustomerCampaign:
      return KeyScope::kCampaign;
    case CapScope::kCustomerCategory:
      return KeyScope::kCategory;
    case CapScope::kCustomerMarketing:
      return KeyScope::kMarketing;
  }
  return KeyScope::kChannel;
}

}  // namespace

Candidate MakeCandidate(const Dataset& ds, uint32_t item) {
  Candidate c;
  c.item = &ds.items[item];
  c.index = item;
  c.category = ds.categories.Name(ds.items[item].category);
  c.campaign = ds.campaigns.Name(ds.items[item].campaign);
  return c;
}

Result<Policy> Policy::Create(PolicyConfig config, ChannelRegistry channels, TimeZone tz) {
  Policy p;
  const int nch = channels.size();
  p.quiet_.assign(nch, -1);
  p.cooldown_.assign(nch, 0);
  p.reserve_.assign(nch, false);
  auto channel_id = [&](const std::string& name, const std::string& where) -> Result<int> {
    auto id = channels.Find(name);
    if (!id) return Status::InvalidArgument("'" + where + "': unknown channel '" + name + "'");
    return static_cast<int>(*id);
  };
  for (const std::string& c : config.reserve_channels) {
    QM_ASSIGN_OR_RETURN(int id, channel_id(c, "policy.reserve_channels"));
    p.reserve_[id] = true;
  }
  auto caps = std::make_shared<std::vector<CompiledCap>>();
  TimeMs longest = 0;
  int item_caps = 0;
  for (size_t i = 0; i < config.caps.size(); ++i) {
    const CapRule& r = config.caps[i];
    const std::string where = "policy.caps[" + std::to_string(i) + "]";
    CompiledCap cc;
    cc.rule = r;
    if (!r.channel.empty()) {
      QM_ASSIGN_OR_RETURN(cc.channel, channel_id(r.channel, where + ".channel"));
    }
    if (r.event == "contact") {
      cc.types = kContactTypes;
    } else if (auto t = ParseEventType(r.event); t && *t != EventType::kOptOut) {
      cc.types = Bit(*t);
    } else {
      return Status::InvalidArgument("'" + where + ".event': unknown event '" + r.event + "'");
    }
    if (r.limit < 0) return Status::InvalidArgument("'" + where + ".limit': must be >= 0");
    if (r.scope == CapScope::kCustomerItem && ++item_caps > kMaxItemCaps) {
      return Status::InvalidArgument("'" + where + "': at most " + std::to_string(kMaxItemCaps) +
                                     " caps of scope customer_item");
    }
    if (r.calendar == WindowKind::kRolling && r.window <= 0) {
      return Status::InvalidArgument("'" + where + ".window': must be positive");
    }
    longest = std::max(longest, r.calendar == WindowKind::kRolling ? r.window : 8 * kMsPerDay);
    caps->push_back(std::move(cc));
  }
  for (size_t i = 0; i < config.cooldowns.size(); ++i) {
    const CooldownRule& r = config.cooldowns[i];
    QM_ASSIGN_OR_RETURN(int id, channel_id(r.channel, "policy.cooldowns[" + std::to_string(i) + "].channel"));
    p.cooldown_[id] = std::max(p.cooldown_[id], r.gap);
    longest = std::max(longest, r.gap);
  }
  for (size_t i = 0; i < config.quiet_hours.size(); ++i) {
    const QuietHoursRule& r = config.quiet_hours[i];
    QM_ASSIGN_OR_RETURN(int id, channel_id(r.channel, "policy.quiet_hours[" + std::to_string(i) + "].channel"));
    p.quiet_[id] = static_cast<int>(i);
  }
  // Scheduled sends sit up to a day in the future; keep a day's margin.
  p.state_options_.keep_contacts = longest + kMsPerDay;
  p.state_options_.keep_clicks = config.clicked_horizon;
  p.state_options_.keep_dismissals = config.dismiss_suppression;
  p.state_options_.count_service = config.count_service_contacts;
  p.caps_ = std::move(caps);
  p.config_ = std::make_shared<const PolicyConfig>(std::move(config));
  p.channels_ = std::move(channels);
  p.tz_ = std::move(tz);
  return p;
}

TimeMs Policy::SendTime(ChannelId channel, TimeMs now, bool* quiet) const {
  *quiet = false;
  if (channel >= quiet_.size() || quiet_[channel] < 0) return now;
  const QuietHoursRule& q = config_->quiet_hours[quiet_[channel]];
  const int m = tz_.LocalMinuteOfDay(now);
  const bool inside = q.start_minute < q.end_minute ? (m >= q.start_minute && m < q.end_minute)
                                                    : (m >= q.start_minute || m < q.end_minute);
  if (!inside) return now;
  *quiet = true;
  const TimeMs local = tz_.UtcToLocal(now);
  TimeMs day = local - ((local % kMsPerDay) + kMsPerDay) % kMsPerDay;
  TimeMs target = day + q.end_minute * kMsPerMinute;
  if (target <= local) target += kMsPerDay;
  return tz_.LocalToUtc(target);
}

bool Policy::BlocksAllMarketing(const Customer& cu, ChannelId channel, TimeMs now) const {
  if (cu.opt_out >> channel & 1u) return true;
  bool quiet = false;
  SendTime(channel, now, &quiet);
  return quiet && QuietDrops(channel);
}

bool Policy::QuietDrops(ChannelId channel) const {
  return channel < quiet_.size() && quiet_[channel] >= 0 &&
         config_->quiet_hours[quiet_[channel]].action == QuietAction::kDrop;
}

void Policy::StaticCheck(const Customer& cu, const Candidate& c, ChannelId channel, TimeMs now,
                         std::vector<std::string>* out) const {
  bool quiet = false;
  const TimeMs send = SendTime(channel, now, &quiet);
  StaticCheckAt(cu, c, channel, now, send, quiet, out);
}

void Policy::StaticCheckAt(const Customer& cu, const Candidate& c, ChannelId channel, TimeMs now, TimeMs send,
                           bool send_quiet, std::vector<std::string>* out) const {
  const Item& it = *c.item;
  const bool quiet = !it.service && send_quiet;  // service items go out at once
  const TimeMs at = it.service ? now : send;
  if (!it.service && (cu.opt_out >> channel & 1u)) out->push_back(blocked::kConsent);
  if (it.risk != kNoRisk) {
    const bool assessed =
        cu.risk != kNoRisk && cu.risk_assessed != kNoTime && at - cu.risk_assessed < config_->suitability_max_age;
    if (!assessed || it.risk > cu.risk) out->push_back(blocked::kSuitability);
  }
  if (it.tiers != 0 && !(it.tiers >> static_cast<int>(cu.tier) & 1u)) out->push_back(blocked::kTier);
  if (!it.regions.empty() && std::find(it.regions.begin(), it.regions.end(), cu.region) == it.regions.end()) {
    out->push_back(blocked::kRegion);
  }
  if (it.channels != 0 && !(it.channels >> channel & 1u)) out->push_back(blocked::kChannel);
  if ((it.start != kNoTime && at < it.start) || (it.end != kNoTime && at >= it.end)) {
    out->push_back(blocked::kValidity);
  }
  if (it.kind == ItemKind::kProduct && c.index != UINT32_MAX &&
      std::binary_search(cu.holdings.begin(), cu.holdings.end(), c.index)) {
    out->push_back(blocked::kHeld);
  }
  if (quiet && QuietDrops(channel)) {
    out->push_back(blocked::kQuietHours);
  }
}

ContactPlan Policy::BuildPlan(const Customer& cu, const std::vector<Candidate>& items,
                              const std::vector<bool>& static_ok, ChannelId channel, TimeMs now,
                              const std::string& request_id, int max_take) const {
  ContactPlan plan;
  plan.customer_id = cu.id;
  plan.request_id = request_id;
  plan.channel = channels_.Name(channel);
  plan.now = now;
  const bool reserve = channel < reserve_.size() && reserve_[channel];
  plan.contact_type = reserve ? EventType::kImpression : EventType::kPushSent;
  plan.expires = reserve ? now + config_->reservation_ttl : 0;
  plan.max_take = max_take;
  plan.options = state_options_;
  bool quiet = false;
  const TimeMs send = SendTime(channel, now, &quiet);
  const uint32_t contact_bit = Bit(plan.contact_type);

  // Windows depend only on the contact time, `send` (service items are exempt from caps).
  auto since_of = [&](const CompiledCap& cap) -> TimeMs {
    switch (cap.rule.calendar) {
      case WindowKind::kRolling:
        return send - cap.rule.window + 1;
      case WindowKind::kCalendarDay:
        return tz_.StartOfDay(send);
      case WindowKind::kCalendarWeek:
        return tz_.StartOfWeek(send);
    }
    return send;
  };
  auto cap_constraint = [&](const CompiledCap& cap) {
    Constraint c;
    c.rule = ToStateRule(cap.rule.scope);
    c.scope = ToKeyScope(cap.rule.scope);
    c.types = cap.types;
    c.channel = cap.rule.channel;
    c.since = since_of(cap);
    c.limit = cap.rule.limit;
    return c;
  };

  // The caps that apply on this channel to this contact type. Channel and marketing caps are
  // one constraint each for every marketing candidate (`common`, with the cooldown); item caps
  // are templates; campaign and category caps get one constraint per value, made on first use.
  std::vector<uint32_t> common;
  uint32_t item_caps = 0, clicked = 0, dismissed = 0;
  struct ByValue {
    const CompiledCap* cap;
    bool campaign;
    std::unordered_map<std::string_view, uint32_t> index;
  };
  std::vector<ByValue> by_value;
  for (const CompiledCap& cap : *caps_) {
    if (cap.channel >= 0 && cap.channel != channel) continue;
    if (!(cap.types & contact_bit)) continue;
    switch (cap.rule.scope) {
      case CapScope::kCustomerChannel:
      case CapScope::kCustomerMarketing: {
        Constraint c = cap_constraint(cap);
        if (cap.rule.scope == CapScope::kCustomerChannel) c.value = plan.channel;
        common.push_back(static_cast<uint32_t>(plan.shared.size()));
        plan.shared.push_back(std::move(c));
        break;
      }
      case CapScope::kCustomerItem:
        item_caps |= 1u << plan.templates.size();
        plan.templates.push_back(cap_constraint(cap));
        break;
      case CapScope::kCustomerCampaign:
      case CapScope::kCustomerCategory:
        by_value.push_back({&cap, cap.rule.scope == CapScope::kCustomerCampaign, {}});
        break;
    }
  }
  {  // Consent withdrawn on this channel by an opt_out event (kept for good): no marketing.
    Constraint c;
    c.rule = StateRule::kConsent;
    c.scope = KeyScope::kChannel;
    c.value = plan.channel;
    c.types = Bit(EventType::kOptOut);
    c.since = std::numeric_limits<TimeMs>::min();
    c.limit = 1;
    c.counted_only = false;
    common.push_back(static_cast<uint32_t>(plan.shared.size()));
    plan.shared.push_back(std::move(c));
  }
  if (channel < cooldown_.size() && cooldown_[channel] > 0) {
    Constraint c;
    c.rule = StateRule::kCooldown;
    c.scope = KeyScope::kChannel;
    c.value = plan.channel;
    c.types = kContactTypes;
    c.since = send - cooldown_[channel] + 1;
    c.limit = 1;
    c.per_request = true;
    common.push_back(static_cast<uint32_t>(plan.shared.size()));
    plan.shared.push_back(std::move(c));
  }
  if (config_->clicked_horizon > 0) {
    Constraint c;
    c.rule = StateRule::kClicked;
    c.scope = KeyScope::kItem;
    c.types = Bit(EventType::kClick) | Bit(EventType::kPushOpen);
    c.since = now - config_->clicked_horizon + 1;
    c.limit = 1;
    c.counted_only = false;
    clicked = 1u << plan.templates.size();
    plan.templates.push_back(std::move(c));
  }
  if (config_->dismiss_suppression > 0) {
    Constraint c;
    c.rule = StateRule::kDismissed;
    c.scope = KeyScope::kItem;
    c.types = Bit(EventType::kDismiss);
    c.since = now - config_->dismiss_suppression + 1;
    c.limit = 1;
    c.counted_only = false;
    dismissed = 1u << plan.templates.size();
    plan.templates.push_back(std::move(c));
  }

  plan.candidates.reserve(items.size());
  plan.candidate_shared.reserve(items.size() * (common.size() + by_value.size()));
  for (size_t i = 0; i < items.size(); ++i) {
    if (!static_ok[i]) continue;
    const Item& it = *items[i].item;
    PlanCandidate pc;
    pc.item = it.id;
    pc.campaign = items[i].campaign;
    pc.category = items[i].category;
    pc.counted = !it.service || state_options_.count_service;
    pc.service = it.service;
    pc.ts = it.service ? now : send;
    pc.shared_begin = static_cast<uint32_t>(plan.candidate_shared.size());
    pc.templates = dismissed | (it.kind == ItemKind::kContent ? clicked : 0u);
    if (!it.service) {
      pc.templates |= item_caps;
      plan.candidate_shared.insert(plan.candidate_shared.end(), common.begin(), common.end());
      for (ByValue& bv : by_value) {
        const std::string_view value = bv.campaign ? pc.campaign : pc.category;
        if (value.empty()) continue;
        auto [found, fresh] = bv.index.emplace(value, static_cast<uint32_t>(plan.shared.size()));
        if (fresh) {
          Constraint c = cap_constraint(*bv.cap);
          c.value = std::string(value);
          plan.shared.push_back(std::move(c));
        }
        plan.candidate_shared.push_back(found->second);
      }
    }
    pc.shared_end = static_cast<uint32_t>(plan.candidate_shared.size());
    plan.candidates.push_back(pc);
  }
  return plan;
}

void Policy::Combine(const PlanOutcome& out, Prepared* p) const {
  for (size_t i = 0; i < p->decisions.size(); ++i) {
    const int pi = p->plan_index[i];
    if (pi < 0) continue;
    p->decisions[i].taken = out.taken[pi] != 0;
    for (uint32_t b = out.blocked[pi]; b != 0; b &= b - 1) {
      p->decisions[i].blocked_by.push_back(StateRuleName(static_cast<StateRule>(__builtin_ctz(b))));
    }
  }
}

Policy Policy::WithCampaignCap(int limit, TimeMs window) const {
  Policy p = *this;
  auto caps = std::make_shared<std::vector<CompiledCap>>(*caps_);
  CompiledCap cc;
  cc.rule = {"campaign_own", CapScope::kCustomerCampaign, "", "contact", limit, window, WindowKind::kRolling};
  cc.types = kContactTypes;
  caps->push_back(std::move(cc));
  p.caps_ = std::move(caps);
  return p;
}

Policy::Prepared Policy::Prepare(const Customer& cu, const std::vector<Candidate>& items, ChannelId channel,
                                 TimeMs now) const {
  Prepared p;
  const size_t n = items.size();
  p.decisions.resize(n);
  p.ok.resize(n);
  p.plan_index.assign(n, -1);
  bool quiet = false;
  const TimeMs send = SendTime(channel, now, &quiet);
  int next = 0;
  for (size_t i = 0; i < n; ++i) {
    QM_CHECK(items[i].item != nullptr);
    StaticCheckAt(cu, items[i], channel, now, send, quiet, &p.decisions[i].blocked_by);
    p.ok[i] = p.decisions[i].blocked_by.empty();
    if (p.ok[i]) p.plan_index[i] = next++;
    p.decisions[i].send_at = items[i].item->service ? now : send;
  }
  return p;
}

std::vector<Decision> Policy::Evaluate(const Customer& cu, const std::vector<Candidate>& items, ChannelId channel,
                                       TimeMs now, const CustomerState& state) const {
  Prepared p = Prepare(cu, items, channel, now);
  ContactPlan plan = BuildPlan(cu, items, p.ok, channel, now, "", 0);
  CustomerState copy = state;
  bool changed = false;
  Combine(RunPlan(plan, &copy, &changed), &p);
  return std::move(p.decisions);
}

Result<std::vector<Decision>> Policy::Check(EventStore* store, const Customer& cu, const std::vector<Candidate>& items,
                                            ChannelId channel, TimeMs now) const {
  Prepared p = Prepare(cu, items, channel, now);
  ContactPlan plan = BuildPlan(cu, items, p.ok, channel, now, "", 0);
  QM_ASSIGN_OR_RETURN(PlanOutcome out, store->Apply(plan));
  Combine(out, &p);
  return std::move(p.decisions);
}

Result<Contacts> Policy::Reserve(EventStore* store, const Customer& cu, const std::vector<Candidate>& items,
                                 ChannelId channel, TimeMs now, const std::string& request_id, int max_take) const {
  if (request_id.empty()) return Status::InvalidArgument("a reservation needs a request id");
  if (max_take < 0) return Status::InvalidArgument("max_take must be >= 0");
  Prepared p = Prepare(cu, items, channel, now);
  ContactPlan plan = BuildPlan(cu, items, p.ok, channel, now, request_id, max_take);
  QM_ASSIGN_OR_RETURN(PlanOutcome out, store->Apply(plan));
  Combine(out, &p);
  Contacts c;
  c.replayed = out.replayed;
  c.decisions = std::move(p.decisions);
  return c;
}

Result<std::vector<Contacts>> Policy::ReserveMany(EventStore* store, const std::vector<const Customer*>& customers,
                                                  const std::vector<std::vector<Candidate>>& items, ChannelId channel,
                                                  TimeMs now, const std::string& request_id, int max_take) const {
  if (request_id.empty()) return Status::InvalidArgument("a reservation needs a request id");
  if (max_take < 0) return Status::InvalidArgument("max_take must be >= 0");
  if (customers.size() != items.size()) return Status::InvalidArgument("one candidate list per customer");
  std::vector<Prepared> prepared;
  std::vector<ContactPlan> plans;
  prepared.reserve(customers.size());
  plans.reserve(customers.size());
  for (size_t k = 0; k < customers.size(); ++k) {
    QM_CHECK(customers[k] != nullptr);
    prepared.push_back(Prepare(*customers[k], items[k], channel, now));
    plans.push_back(BuildPlan(*customers[k], items[k], prepared.back().ok, channel, now, request_id, max_take));
  }
  QM_ASSIGN_OR_RETURN(std::vector<PlanOutcome> outs, store->ApplyMany(plans));
  std::vector<Contacts> result(customers.size());
  for (size_t k = 0; k < customers.size(); ++k) {
    result[k].replayed = outs[k].replayed;
    Combine(outs[k], &prepared[k]);
    result[k].decisions = std::move(prepared[k].decisions);
  }
  return result;
}

Result<CustomerHistory> Policy::History(EventStore* store, const std::string& customer_id, TimeMs since, size_t limit,
                                        TimeMs now) const {
  CustomerHistory h;
  QM_ASSIGN_OR_RETURN(h.events, store->Log(customer_id, since, limit));
  QM_ASSIGN_OR_RETURN(h.decisions, store->Decisions(customer_id, since, limit));
  QM_ASSIGN_OR_RETURN(CustomerState state, store->State(customer_id));
  CompactState(now, state_options_, &state);
  for (const CompiledCap& cap : *caps_) {
    Constraint c;
    c.scope = ToKeyScope(cap.rule.scope);
    c.types = cap.types;
    c.channel = cap.rule.channel;
    c.limit = cap.rule.limit;
    TimeMs window = cap.rule.window;
    switch (cap.rule.calendar) {
      case WindowKind::kRolling:
        c.since = now - cap.rule.window + 1;
        break;
      case WindowKind::kCalendarDay:
        c.since = tz_.StartOfDay(now);
        window = now - c.since;
        break;
      case WindowKind::kCalendarWeek:
        c.since = tz_.StartOfWeek(now);
        window = now - c.since;
        break;
    }
    std::set<std::string> scopes;
    if (cap.rule.scope == CapScope::kCustomerChannel && !cap.rule.channel.empty()) {
      scopes.insert(cap.rule.channel);
    }
    if (cap.rule.scope == CapScope::kCustomerMarketing) scopes.insert("");
    for (const ContactRecord& r : state.records) {
      if (!(cap.types >> static_cast<int>(r.type) & 1u)) continue;
      if (!cap.rule.channel.empty() && r.channel != cap.rule.channel) continue;
      switch (cap.rule.scope) {
        case CapScope::kCustomerChannel:
          scopes.insert(r.channel);
          break;
        case CapScope::kCustomerItem:
          scopes.insert(r.item);
          break;
        case CapScope::kCustomerCampaign:
          if (!r.campaign.empty()) scopes.insert(r.campaign);
          break;
        case CapScope::kCustomerCategory:
          if (!r.category.empty()) scopes.insert(r.category);
          break;
        case CapScope::kCustomerMarketing:
          break;
      }
    }
    for (const std::string& s : scopes) {
      c.value = s;
      int used = CountUsage(c, state);
      if (used == 0 && cap.rule.scope != CapScope::kCustomerChannel && cap.rule.scope != CapScope::kCustomerMarketing) {
        continue;
      }
      h.caps.push_back({cap.rule.name, s, used, cap.rule.limit, window});
    }
  }
  for (int ch = 0; ch < static_cast<int>(cooldown_.size()); ++ch) {
    if (cooldown_[ch] <= 0) continue;
    Constraint c;
    c.scope = KeyScope::kChannel;
    c.value = channels_.Name(static_cast<ChannelId>(ch));
    c.types = kContactTypes;
    c.since = now - cooldown_[ch] + 1;
    c.limit = 1;
    h.caps.push_back({blocked::kCooldown, c.value, CountUsage(c, state), 1, cooldown_[ch]});
  }
  return h;
}

}  // namespace qm::policy
