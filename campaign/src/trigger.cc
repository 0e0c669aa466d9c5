// Deciding triggered campaigns for business events (trigger.h).
#include "qianmian/campaign/trigger.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "content.h"
#include "qianmian/campaign/segments.h"
#include "qianmian/push/audience.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kPending = "trigger_pending";  // delayed events, by "<campaign>/ev:<event>"
constexpr const char* kBudget = "trigger_budget";    // a triggered campaign's sends, by campaign id
constexpr const char* kChannel = "trigger_channel";  // channel choice: the order and how far tried, by key
constexpr int kCasTries = 50;
constexpr TimeMs kMaxExpiry = 90 * kMsPerDay;  // the longest trigger.expiry_s (definition.cc)

}  // namespace

struct Triggers::Active {
  Campaign c;
  EventCondition condition;
  std::shared_ptr<const serving::PushRequest::Campaign> content;
  // The audience (its segments from the approval's snapshot), compiled once per refresh against
  // the dataset `audience_of`; an event meeting another dataset (a reload since) compiles anew.
  std::shared_ptr<const push::Audience> audience;
  const Dataset* audience_of = nullptr;
};

namespace {

// Whether customer `index` is in the campaign's audience; compiled anew unless `a` holds it
// compiled against `ds`.
bool InAudience(const Triggers::Active& a, const Dataset& ds, uint32_t index) {
  if (a.audience && a.audience_of == &ds) return a.audience->Matches(ds, index);
  Result<std::string> text = CampaignAudience(a.c);
  if (!text.ok()) return false;
  auto audience = push::Audience::Compile(*text, ds);
  return audience.ok() && audience->Matches(ds, index);
}

}  // namespace

Triggers::Triggers(serving::Engine* engine, Campaigns* campaigns, Outbox* outbox, TriggerOptions o)
    : engine_(engine), campaigns_(campaigns), outbox_(outbox), o_(std::move(o)) {}

Triggers::~Triggers() = default;

void Triggers::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  active_at_ = kNoTime;
}

Result<std::shared_ptr<const std::vector<Triggers::Active>>> Triggers::ActiveCampaigns(TimeMs now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_ && active_at_ != kNoTime && now >= active_at_ && now - active_at_ < o_.refresh) return active_;
  }
  QM_ASSIGN_OR_RETURN(std::vector<Campaign> all, campaigns_->List());
  auto out = std::make_shared<std::vector<Active>>();
  for (Campaign& c : all) {
    if (!c.definition.triggered() || !c.RunsApprovedVersion()) continue;
    if (c.state != State::kScheduled && c.state != State::kRunning) continue;
    auto condition = EventCondition::Compile(c.definition.trigger.condition, c.definition.trigger.event);
    if (!condition.ok()) continue;  // checked at creation; a catalogue change could only narrow it
    Active a{std::move(c), std::move(*condition), nullptr, nullptr, nullptr};
    Result<std::string> text = CampaignAudience(a.c);
    engine_->WithDataset([&](const Dataset& ds) {
      a.content = ContentOf(a.c.definition, ds);
      if (!text.ok()) return;
      auto audience = push::Audience::Compile(*text, ds);
      if (!audience.ok()) return;  // checked at approval; InAudience refuses its customers
      a.audience = std::make_shared<const push::Audience>(*std::move(audience));
      a.audience_of = &ds;
    });
    out->push_back(std::move(a));
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_ = out;
  active_at_ = now;
  return active_;
}

// Counts `delta` sends (+1 to claim, -1 to give back) against the campaign's budget, as a
// compare-and-set on its budget record: FailedPrecondition when a claim would pass the budget.
Status Triggers::ClaimBudget(const Active& a, const BusinessEvent& e, TimeMs now, int delta) {
  const Definition& d = a.c.definition;
  if (d.budget_total <= 0 && d.budget_per_day <= 0) return Status::Ok();
  const std::string day = FormatIsoLocal(now, engine_->time_zone()).substr(0, 10);
  policy::EventStore* store = campaigns_->store();
  for (int attempt = 0; attempt < kCasTries; ++attempt) {
    uint64_t revision = 0;
    json v = {{"total", 0}, {"days", json::object()}};
    Result<policy::GovernedRecord> r = store->ReadRecord(kBudget, d.id);
    if (r.ok()) {
      revision = r->revision;
      v = json::parse(r->value, nullptr, false);
      if (v.is_discarded()) return Status::Internal("trigger budget of '" + d.id + "': unreadable record");
    } else if (r.status().code() != StatusCode::kNotFound) {
      return r.status();
    }
    const int64_t total = v.value("total", int64_t{0});
    const int64_t today = v["days"].value(day, int64_t{0});
    if (delta > 0 && ((d.budget_total > 0 && total + delta > d.budget_total) ||
                      (d.budget_per_day > 0 && today + delta > d.budget_per_day))) {
      return Status::FailedPrecondition("campaign.budget");
    }
    v["total"] = total + delta;
    v["days"][day] = today + delta;
    // Keep the last days only: the per-day budget needs today's.
    while (v["days"].size() > 8) v["days"].erase(v["days"].begin());
    const std::string audit = json{{"event_id", e.id}, {"delta", delta}, {"ts", now}}.dump();
    Status st = store->WriteRecord(kBudget, d.id, revision, v.dump(), audit);
    if (st.ok() || st.code() != StatusCode::kConflict) return st;
  }
  return Status::Unavailable("trigger budget of '" + d.id + "': too many concurrent claims, retry");
}

Result<TriggerDecision> Triggers::Decide(const Active& a, const BusinessEvent& e, TimeMs now) {
  const Definition& def = a.c.definition;
  TriggerDecision d;
  d.event_id = e.id;
  d.customer_id = e.customer_id;
  d.campaign_id = def.id;
  d.event_ts = e.ts;
  d.key = def.id + "/ev:" + e.id;
  d.channel = def.channel;
  d.decided_ms = now;
  d.outcome = "skipped";
  if (now > e.ts + def.trigger.expiry_s * kMsPerSecond) {
    d.skipped_by = "expired";
    return d;
  }
  if (def.trigger.delay_s > 0 && now < e.ts + def.trigger.delay_s * kMsPerSecond) {
    d.outcome = "pending";
    d.due_ms = e.ts + def.trigger.delay_s * kMsPerSecond;
    const std::string value = json{
        {"event", json::parse(EventJson(e))},
        {"campaign", def.id},
        {"due_ms", d.due_ms},
        {"expires_ms", e.ts + def.trigger.expiry_s * kMsPerSecond},
        {"state", "pending"}}.dump();
    Status st =
        campaigns_->store()->WriteRecord(kPending, d.key, 0, value, json{{"ts", now}, {"state", "pending"}}.dump());
    if (!st.ok() && st.code() != StatusCode::kConflict) return st;  // Conflict: already waiting (a retry)
    return d;
  }
  // The customer and the audience.
  std::string why;
  engine_->WithDataset([&](const Dataset& ds) {
    const auto index = ds.FindCustomer(e.customer_id);
    if (!index) {
      why = "unknown_customer";
      return;
    }
    if (!InAudience(a, ds, *index)) why = "audience";
  });
  if (!why.empty()) {
    d.skipped_by = why;
    return d;
  }
  Status claim = ClaimBudget(a, e, now, +1);
  if (claim.code() == StatusCode::kFailedPrecondition) {
    d.skipped_by = "campaign.budget";
    return d;
  }
  QM_RETURN_IF_ERROR(claim);
  const bool budgeted = def.budget_total > 0 || def.budget_per_day > 0;
  serving::PushChoice choice;
  Status st = def.channels.empty() ? PushOn(a, e.customer_id, now, d.key, def.channel, "", false, &choice)
                                   : PushChoosingChannel(a, e, now, &d, &choice);
  const serving::PushChoice* ch = st.ok() ? &choice : nullptr;
  const bool sent = ch && !ch->items.empty();
  if (budgeted && (!sent || ch->replayed)) {
    // Nothing new sent: give the claim back (a replay counted its send the first time).
    Status back = ClaimBudget(a, e, now, -1);
    if (!back.ok() && st.ok()) st = back;
  }
  QM_RETURN_IF_ERROR(st);
  d.replayed = ch->replayed;
  if (sent) {
    d.outcome = "sent";
    d.item_id = ch->items[0].item_id;
    d.send_at = ch->send_at.empty() ? now : ch->send_at[0];
    d.p_click = ch->expected_clicks;
    d.p_convert = ch->expected_conversions;
  } else if (ch->skipped_by == "campaign.holdout") {
    d.outcome = "holdout";
  } else {
    d.skipped_by = ch->skipped_by.empty() ? "no_candidates" : ch->skipped_by;
  }
  return d;
}

Status Triggers::PushOn(const Active& a, const std::string& customer, TimeMs now, const std::string& key,
                        const std::string& channel, const std::string& reason, bool dry_run, serving::PushChoice* out) {
  serving::PushRequest req;
  req.customer_ids = {customer};
  req.channel = channel;
  req.now_ms = now;
  req.dry_run = dry_run;
  if (!dry_run) req.run_id = key;
  req.campaign = a.content;
  if (!reason.empty()) {
    auto content = std::make_shared<serving::PushRequest::Campaign>(*a.content);
    content->reason = reason;
    req.campaign = std::move(content);
  }
  std::vector<serving::PushChoice> choices;
  QM_RETURN_IF_ERROR(engine_->Push(req, &choices));
  if (choices.empty()) return Status::Internal("push returned no choice");
  *out = std::move(choices[0]);
  return Status::Ok();
}

// Channel choice for one event, exactly once across retries and processes. The channels are
// ordered once by a dry run on each (the bank's expected value of what it would send; channels
// that would send nothing last, then the listed order) and the order is stored under the
// decision's key with how far it has been tried. Each channel is marked tried before its real
// push, so a retry (or another process) resumes at the last one tried: a push that had sent
// replays there, and no channel before it (each blocked then) is asked again.
Status Triggers::PushChoosingChannel(const Active& a, const BusinessEvent& e, TimeMs now, TriggerDecision* d,
                                     serving::PushChoice* out) {
  const Definition& def = a.c.definition;
  policy::EventStore* store = campaigns_->store();
  for (int attempt = 0; attempt < kCasTries; ++attempt) {
    json plan;
    uint64_t revision = 0;
    Result<policy::GovernedRecord> r = store->ReadRecord(kChannel, d->key);
    if (r.ok()) {
      plan = json::parse(r->value, nullptr, false);
      if (plan.is_discarded()) return Status::Internal("trigger channel plan '" + d->key + "': unreadable record");
      revision = r->revision;
    } else if (r.status().code() == StatusCode::kNotFound) {
      std::vector<std::pair<double, std::string>> by_value;  // (-value, channel), stable: the listed order on ties
      for (const std::string& ch : def.AllChannels()) {
        serving::PushChoice dry;
        QM_RETURN_IF_ERROR(PushOn(a, e.customer_id, now, d->key, ch, "", true, &dry));
        by_value.emplace_back(dry.items.empty() ? std::numeric_limits<double>::infinity() : -dry.expected_value, ch);
      }
      std::stable_sort(by_value.begin(), by_value.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      plan = {{"order", json::array()}, {"tried", 0}, {"expires_ms", e.ts + def.trigger.expiry_s * kMsPerSecond}};
      for (const auto& [_, ch] : by_value) plan["order"].push_back(ch);
    } else {
      return r.status();
    }
    const std::vector<std::string> order = plan.value("order", std::vector<std::string>{});
    const size_t tried = plan.value("tried", size_t{0});
    bool conflict = false;
    for (size_t k = tried > 0 ? tried - 1 : 0; k < order.size() && !conflict; ++k) {
      if (k + 1 > plan.value("tried", size_t{0})) {
        plan["tried"] = k + 1;
        Status st =
            store->WriteRecord(kChannel, d->key, revision, plan.dump(), json{{"ts", now}, {"trying", order[k]}}.dump());
        if (st.code() == StatusCode::kConflict) {
          conflict = true;  // another process is deciding this event: follow its plan
          break;
        }
        QM_RETURN_IF_ERROR(st);
        ++revision;
      }
      const std::string reason = "channel:" + order[k] + (k == 0 ? "=best" : "=fallback");
      QM_RETURN_IF_ERROR(PushOn(a, e.customer_id, now, d->key, order[k], reason, false, out));
      d->channel = order[k];
      d->reason = reason;
      if (!out->items.empty() || out->skipped_by == "campaign.holdout") return Status::Ok();
    }
    if (!conflict) return Status::Ok();  // every channel blocked: *out says why (the last one's rule)
  }
  return Status::Unavailable("trigger channel plan '" + d->key + "': too many concurrent decisions, retry");
}

Result<std::vector<TriggerDecision>> Triggers::Process(const std::vector<BusinessEvent>& events, TimeMs now) {
  for (size_t i = 0; i < events.size(); ++i) {
    QM_RETURN_IF_ERROR(CheckEvent(events[i], "events[" + std::to_string(i) + "]"));
  }
  if (now == kNoTime) now = NowMs();
  QM_ASSIGN_OR_RETURN(auto active, ActiveCampaigns(now));
  std::vector<TriggerDecision> out, sent;
  for (const BusinessEvent& e : events) {
    for (const Active& a : *active) {
      if (a.c.definition.trigger.event != e.type || !a.condition.Matches(e)) continue;
      QM_ASSIGN_OR_RETURN(TriggerDecision d, Decide(a, e, now));
      if (d.outcome == "sent") sent.push_back(d);
      out.push_back(std::move(d));
    }
  }
  if (!sent.empty()) QM_RETURN_IF_ERROR(outbox_->Append(sent));
  return out;
}

// Channel plans are kept while a retry of their event could still arrive; past its expiry a
// retry is skipped as expired, so the plan is dropped.
Status Triggers::PruneChannelPlans(TimeMs now) {
  {
    // Listing every plan each campaign tick would cost as much as the plans are many: at most
    // once in ten minutes (a plan outlives its expiry by that much at most).
    std::lock_guard<std::mutex> lock(mu_);
    if (pruned_at_ != kNoTime && now >= pruned_at_ && now - pruned_at_ < 10 * kMsPerMinute) return Status::Ok();
    pruned_at_ = now;
  }
  policy::EventStore* store = campaigns_->store();
  QM_ASSIGN_OR_RETURN(std::vector<policy::GovernedRecord> plans, store->ListRecords(kChannel));
  for (const policy::GovernedRecord& r : plans) {
    json v = json::parse(r.value, nullptr, false);
    if (!v.is_discarded() && now <= v.value("expires_ms", TimeMs{0})) continue;
    Status st = store->DeleteRecord(kChannel, r.id, r.revision);
    if (!st.ok() && st.code() != StatusCode::kConflict && st.code() != StatusCode::kNotFound) return st;
  }
  return Status::Ok();
}

Result<std::vector<TriggerDecision>> Triggers::RunDue(TimeMs now) {
  if (now == kNoTime) now = NowMs();
  policy::EventStore* store = campaigns_->store();
  QM_RETURN_IF_ERROR(PruneChannelPlans(now));
  QM_ASSIGN_OR_RETURN(std::vector<policy::GovernedRecord> pending, store->ListRecords(kPending));
  QM_ASSIGN_OR_RETURN(auto active, ActiveCampaigns(now));
  std::vector<TriggerDecision> out;
  for (const policy::GovernedRecord& r : pending) {
    json v = json::parse(r.value, nullptr, false);
    if (!v.is_discarded() && v.value("state", "") == "done") {
      // Kept while a retry of its event could still arrive (it is a conflict then, not decided
      // again); pruned once the event is past its expiry, when a retry is skipped as expired.
      const TimeMs event_ts = v.contains("event") ? v["event"].value("ts_ms", TimeMs{0}) : TimeMs{0};
      const TimeMs expires = v.value("expires_ms", event_ts + kMaxExpiry);
      if (now > expires) {
        Status st = store->DeleteRecord(kPending, r.id, r.revision);
        if (!st.ok() && st.code() != StatusCode::kConflict && st.code() != StatusCode::kNotFound) return st;
      }
      continue;
    }
    if (v.is_discarded() || v.value("state", "") != "pending" || v.value("due_ms", kNoTime) > now) continue;
    Result<BusinessEvent> e = ParseEvent(v["event"].dump(), "pending event");
    const std::string campaign = v.value("campaign", "");
    const Active* a = nullptr;
    for (const Active& x : *active) {
      if (x.c.definition.id == campaign) a = &x;
    }
    TriggerDecision d;
    if (!e.ok()) {
      d.outcome = "skipped";
      d.skipped_by = "bad_event";
    } else if (a == nullptr) {
      // Paused: it waits (until its expiry); otherwise the campaign no longer fires.
      Result<Campaign> c = campaigns_->Get(campaign);
      const bool paused = c.ok() && c->state == State::kPaused;
      if (paused && now <= e->ts + c->definition.trigger.expiry_s * kMsPerSecond) continue;
      d.outcome = "skipped";
      d.skipped_by = paused ? "expired" : "campaign_inactive";
    } else {
      // Decide as if not delayed (the delay has passed), exactly as Process would.
      Active due = *a;
      due.c.definition.trigger.delay_s = 0;
      QM_ASSIGN_OR_RETURN(d, Decide(due, *e, now));
      d.due_ms = v.value("due_ms", kNoTime);
    }
    if (d.key.empty()) d.key = r.id;
    v["state"] = "done";
    v["outcome"] = d.outcome;
    if (d.outcome == "sent") QM_RETURN_IF_ERROR(outbox_->Append({d}));
    // Another process may have decided it too (the run id made that a replay): one marks it done.
    Status st = store->WriteRecord(kPending, r.id, r.revision, v.dump(),
                                   json{{"ts", now}, {"state", "done"}, {"outcome", d.outcome}}.dump());
    if (!st.ok() && st.code() != StatusCode::kConflict) return st;
    if (st.ok()) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace qm::campaign
