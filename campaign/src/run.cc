// A campaign's occurrence as a push run (run.h).
#include "qianmian/campaign/run.h"

#include <algorithm>
#include <memory>

#include "content.h"
#include "qianmian/campaign/segments.h"

namespace qm::campaign {

namespace {

constexpr size_t kAllCandidatesUpTo = 2000;  // allowed items all become candidates up to this many

bool ValidOccurrence(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == std::string::npos;
}

}  // namespace

std::shared_ptr<serving::PushRequest::Campaign> ContentOf(const Definition& d, const Dataset& ds) {
  auto out = std::make_shared<serving::PushRequest::Campaign>();
  out->id = d.id;
  out->w_click = d.w_click;
  out->w_convert = d.w_convert;
  out->holdout = d.holdout;
  out->cap_limit = static_cast<int>(d.cap_per_customer);
  out->cap_window = d.cap_days * kMsPerDay;
  if (d.items.empty() && d.categories.empty() && d.tags.empty()) return out;
  auto mask = std::make_shared<std::vector<uint8_t>>(ds.items.size(), 0);
  for (const std::string& id : d.items) {
    if (auto it = ds.FindItem(id)) (*mask)[*it] = 1;
  }
  std::vector<uint8_t> categories(ds.categories.size(), 0), tags(ds.item_tags.size(), 0);
  for (const std::string& c : d.categories) {
    if (auto code = ds.categories.Find(c)) categories[*code] = 1;
  }
  for (const std::string& t : d.tags) {
    if (auto code = ds.item_tags.Find(t)) tags[*code] = 1;
  }
  if (!d.categories.empty() || !d.tags.empty()) {
    for (size_t i = 0; i < ds.items.size(); ++i) {
      const Item& item = ds.items[i];
      bool in = !d.categories.empty() && categories[item.category];
      for (uint32_t t : item.tags) in = in || tags[t];
      if (in) (*mask)[i] = 1;
    }
  }
  const size_t n = static_cast<size_t>(std::count(mask->begin(), mask->end(), 1));
  if (n <= kAllCandidatesUpTo) {
    for (uint32_t i = 0; i < mask->size(); ++i) {
      if ((*mask)[i]) out->allowed_list.push_back(i);
    }
  }
  out->allowed = std::move(mask);
  return out;
}

Result<push::PushSummary> RunOccurrence(serving::Engine* engine, const Campaign& c, const RunOptions& o) {
  const Definition& d = c.definition;
  if (!ValidOccurrence(o.occurrence)) {
    return Status::InvalidArgument("occurrence '" + o.occurrence +
                                   "': 1..64 letters, digits, '_', '.', ':' or '-' (e.g. the date it runs)");
  }
  if (!o.dry_run) {
    if (c.state != State::kScheduled && c.state != State::kRunning) {
      return Status::FailedPrecondition("campaign '" + d.id + "' is " + StateName(c.state) +
                                        ": only a scheduled or running campaign runs (a dry run works in any state)");
    }
    if (!c.RunsApprovedVersion()) {
      return Status::FailedPrecondition("campaign '" + d.id + "': its definition (hash " + c.hash() +
                                        ") is not the approved one; only the approved version runs");
    }
  }
  push::PushRunOptions p;
  p.run_id = d.id + "/" + o.occurrence;
  p.channel = d.channel;
  Campaign resolved = c;
  if (!c.RunsApprovedVersion() && engine->store()) {  // a dry run before approval: the segments now
    QM_ASSIGN_OR_RETURN(resolved.segments, Segments(engine->store(), nullptr).Resolve(d.audience));
  }
  QM_ASSIGN_OR_RETURN(p.audience, CampaignAudience(resolved));
  p.out = o.out;
  p.now = o.now;
  p.dry_run = o.dry_run;
  p.time_zone = o.time_zone;
  p.threads = o.threads;
  p.progress = o.progress;
  p.customers = o.customers;
  p.on_choice = o.on_choice;
  engine->WithDataset([&](const Dataset& ds) { p.campaign = ContentOf(d, ds); });
  // The budget: per day, and what the other occurrences left of the total.
  int64_t budget = -1;
  if (d.budget_per_day > 0) budget = d.budget_per_day;
  if (d.budget_total > 0) {
    int64_t others = 0;
    for (const auto& [occurrence, sends] : c.occurrences) {
      if (occurrence != o.occurrence) others += sends;
    }
    const int64_t left = std::max<int64_t>(0, d.budget_total - others);
    budget = budget < 0 ? left : std::min(budget, left);
  }
  if (budget >= 0) budget = std::max<int64_t>(0, budget - o.spent);
  p.max_sends = o.no_budget && o.dry_run ? -1 : budget;
  return push::RunPush(engine, p);
}

}  // namespace qm::campaign
