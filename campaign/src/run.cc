// A campaign's occurrence as a push run (run.h).
#include "qianmian/campaign/run.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "content.h"
#include "qianmian/campaign/segments.h"
#include "qianmian/core/file.h"

namespace qm::campaign {

namespace {

constexpr size_t kAllCandidatesUpTo = 2000;  // allowed items all become candidates up to this many

bool ValidOccurrence(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == std::string::npos;
}

}  // namespace

Status AppendRows(const std::string& path, std::vector<std::string>* rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read the send list '" + path + "'");
  std::string header;
  std::getline(in, header);
  std::ostringstream rest;
  rest << in.rdbuf();
  rows->push_back(rest.str());
  return Status::Ok();
}

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

namespace {

// The run id and send list of `channel`: the campaign's first channel keeps "<id>/<occurrence>"
// and `out`; another gets "<id>/<occurrence>@<channel>" and `out` with ".<channel>" before its
// extension.
std::string RunIdOn(const Definition& d, const RunOptions& o, const std::string& channel) {
  const std::string base = d.id + "/" + o.occurrence;
  return channel == d.channel ? base : base + "@" + channel;
}

std::string OutOn(const Definition& d, const std::string& out, const std::string& channel) {
  if (channel == d.channel) return out;
  const size_t dot = out.rfind('.'), slash = out.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return out + "." + channel;
  return out.substr(0, dot) + "." + channel + out.substr(dot);
}

// One push run of the occurrence on one channel; `reason` (if any) is added to each send.
Result<push::PushSummary> RunOn(serving::Engine* engine, const Campaign& c, const RunOptions& o,
                                const std::string& channel, const std::string& reason) {
  const Definition& d = c.definition;
  push::PushRunOptions p;
  p.run_id = RunIdOn(d, o, channel);
  p.channel = channel;
  Campaign resolved = c;
  if (!c.RunsApprovedVersion() && engine->store()) {  // a dry run before approval: the segments now
    QM_ASSIGN_OR_RETURN(resolved.segments, Segments(engine->store(), nullptr).Resolve(d.audience));
  }
  QM_ASSIGN_OR_RETURN(p.audience, CampaignAudience(resolved));
  p.out = OutOn(d, o.out, channel);
  p.now = o.now;
  p.dry_run = o.dry_run;
  p.time_zone = o.time_zone;
  p.threads = o.threads;
  p.progress = o.progress;
  p.customers = o.customers;
  p.on_choice = o.on_choice;
  engine->WithDataset([&](const Dataset& ds) {
    auto content = ContentOf(d, ds);
    content->reason = reason;
    p.campaign = std::move(content);
  });
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

// Adds a channel's run to the occurrence's summary (counts; the distributions are the first
// channel's).
void AddRun(const push::PushSummary& part, push::PushSummary* sum) {
  sum->sends += part.sends;
  sum->scheduled += part.scheduled;
  sum->service += part.service;
  sum->replayed += part.replayed;
  sum->expected_clicks += part.expected_clicks;
  sum->expected_conversions += part.expected_conversions;
  for (const auto& [item, n] : part.items) sum->items[item] += n;
}

// Channel choice (several channels): every channel is first run dry for the whole audience (what
// it would send each customer and the bank's expected value of it, or why nothing); each
// customer's channels are ordered by that value, those that would send nothing last. The real
// runs then go in rounds: round k offers each customer not yet sent to their k-th channel, so a
// customer gets at most one channel, the best one the caps, consent and quiet hours allow. Each
// send carries the reason "channel:<name>=best" or "channel:<name>=fallback" (a better channel was
// blocked), in the decision log and the channel's send list.
Result<push::PushSummary> RunChoosingChannels(serving::Engine* engine, const Campaign& c, const RunOptions& o) {
  const Definition& d = c.definition;
  const std::vector<std::string> channels = d.AllChannels();
  std::unordered_map<std::string, std::vector<std::pair<double, size_t>>> offers;  // customer -> (value, channel)
  std::vector<std::string> order;                                                  // the audience, first seen
  double choosing = 0;                                                             // seconds of the channels' dry runs
  for (size_t ch = 0; ch < channels.size(); ++ch) {
    RunOptions dry = o;
    dry.dry_run = true;
    dry.no_budget = true;
    dry.out = o.out + ".choice";
    dry.on_choice = [&](const std::string& id, const serving::PushChoice& choice) {
      auto [it, fresh] = offers.try_emplace(id);
      if (fresh) order.push_back(id);
      const double v = choice.items.empty() ? -std::numeric_limits<double>::infinity() : choice.expected_value;
      it->second.emplace_back(-v, ch);
    };
    Result<push::PushSummary> part = RunOn(engine, c, dry, channels[ch], "");
    std::remove(OutOn(d, dry.out, channels[ch]).c_str());
    QM_RETURN_IF_ERROR(part.status());
    choosing += part->seconds;
  }
  std::sort(order.begin(), order.end());
  for (auto& [id, list] : offers) std::sort(list.begin(), list.end());  // best value first, then the listed order
  push::PushSummary sum;
  sum.run_id = d.id + "/" + o.occurrence;
  sum.channel = d.channel;
  sum.dry_run = o.dry_run;
  sum.audience = static_cast<int64_t>(order.size());
  std::unordered_map<std::string, std::string> last_skip;  // customer -> the last channel's reason
  std::unordered_map<std::string, bool> sent;
  std::vector<std::vector<std::string>> rows(channels.size(), {"customer_id,item_id,scheduled_at,reasons\n"});
  for (size_t round = 0; round < channels.size(); ++round) {
    for (size_t ch = 0; ch < channels.size(); ++ch) {
      std::vector<std::pair<double, std::string>> by_value;  // the most valuable first, for the budget
      for (const std::string& id : order) {
        const auto& list = offers[id];
        if (round < list.size() && list[round].second == ch && !sent[id]) by_value.emplace_back(list[round].first, id);
      }
      if (by_value.empty()) continue;
      std::sort(by_value.begin(), by_value.end());
      auto who = std::make_shared<std::vector<std::string>>();
      for (auto& [_, id] : by_value) who->push_back(std::move(id));
      RunOptions ro = o;
      ro.customers = who;
      ro.out = o.out + ".round" + std::to_string(round);
      ro.spent = o.spent + sum.sends;
      ro.on_choice = [&](const std::string& id, const serving::PushChoice& choice) {
        if (o.on_choice) o.on_choice(id, choice);
        if (choice.items.empty()) {
          last_skip[id] = choice.skipped_by;
        } else {
          sent[id] = true;
        }
      };
      const std::string reason = "channel:" + channels[ch] + (round == 0 ? "=best" : "=fallback");
      Result<push::PushSummary> run = RunOn(engine, c, ro, channels[ch], reason);
      const std::string part_out = OutOn(d, ro.out, channels[ch]);
      Status st = run.status();
      if (st.ok()) st = AppendRows(part_out, &rows[ch]);
      std::remove(part_out.c_str());
      QM_RETURN_IF_ERROR(st);
      const push::PushSummary& part = *run;
      AddRun(part, &sum);
      if (part.model_version.size()) sum.model_version = part.model_version;
      sum.seconds += part.seconds;
      sum.channel_sends[channels[ch]] += part.sends;
    }
  }
  for (size_t ch = 0; ch < channels.size(); ++ch) {
    QM_RETURN_IF_ERROR(WriteFileAtomically(OutOn(d, o.out, channels[ch]), rows[ch]));
  }
  sum.seconds += choosing;  // the dry runs that chose the channels, and the rounds
  sum.customers_per_second = sum.seconds > 0 ? static_cast<double>(sum.audience) / sum.seconds : 0;
  for (const std::string& id : order) {
    if (sent[id]) {
      ++sum.sent_customers;
    } else {
      ++sum.skipped;
      ++sum.skipped_by[last_skip.count(id) ? last_skip[id] : "no_candidates"];
    }
  }
  return sum;
}

}  // namespace

Status CheckRunnable(const Campaign& c) {
  const std::string& id = c.definition.id;
  if (c.state != State::kScheduled && c.state != State::kRunning) {
    return Status::FailedPrecondition("campaign '" + id + "' is " + StateName(c.state) +
                                      ": only a scheduled or running campaign runs (a dry run works in any state)");
  }
  if (!c.RunsApprovedVersion()) {
    return Status::FailedPrecondition("campaign '" + id + "': its definition (hash " + c.hash() +
                                      ") is not the approved one; only the approved version runs");
  }
  return Status::Ok();
}

Result<push::PushSummary> RunOccurrence(serving::Engine* engine, const Campaign& c, const RunOptions& o) {
  const Definition& d = c.definition;
  if (!ValidOccurrence(o.occurrence)) {
    return Status::InvalidArgument("occurrence '" + o.occurrence +
                                   "': 1..64 letters, digits, '_', '.', ':' or '-' (e.g. the date it runs)");
  }
  if (!o.dry_run) QM_RETURN_IF_ERROR(CheckRunnable(c));
  if (!d.channels.empty()) return RunChoosingChannels(engine, c, o);
  return RunOn(engine, c, o, d.channel, "");
}

}  // namespace qm::campaign
