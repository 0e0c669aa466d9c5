// Running the due occurrences of campaigns exactly once across processes (scheduler.h).
#include "qianmian/campaign/scheduler.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "content.h"
#include "qianmian/core/file.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kLeases = "campaign_runs";

struct Lease {
  std::string state;  // "running" | "done" | "missed"
  std::string holder;
  TimeMs expires = 0;
  int64_t sends = 0;
  std::string Encode() const {
    return json{{"state", state}, {"holder", holder}, {"expires", expires}, {"sends", sends}}.dump();
  }
  static bool Decode(const std::string& v, Lease* l) {
    const json j = json::parse(v, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    try {
      l->state = j.at("state").get<std::string>();
      l->holder = j.at("holder").get<std::string>();
      l->expires = j.at("expires").get<TimeMs>();
      l->sends = j.at("sends").get<int64_t>();
    } catch (const json::exception&) {
      return false;
    }
    return true;
  }
};

enum class Take { kOurs, kNotOurs, kFinished };

// Tries to take occurrence `key`'s lease as `next` (a running or missed lease); *revision is the
// lease's revision after our write.
Result<Take> TakeLease(policy::EventStore* store, const std::string& key, const Lease& next, TimeMs now,
                       uint64_t* revision) {
  Result<policy::GovernedRecord> cur = store->ReadRecord(kLeases, key);
  uint64_t expected = 0;
  if (cur.ok()) {
    Lease l;
    if (!Lease::Decode(cur->value, &l)) return Status::Corruption("bad lease of campaign occurrence '" + key + "'");
    if (l.state != "running") return Take::kFinished;
    if (l.expires > now) return Take::kNotOurs;  // someone runs it now
    expected = cur->revision;                    // its runner died: take it over
  } else if (cur.status().code() != StatusCode::kNotFound) {
    return cur.status();
  }
  const std::string audit = json{{"ts", now}, {"who", next.holder}, {"state", next.state}}.dump();
  Status st = store->WriteRecord(kLeases, key, expected, next.Encode(), audit);
  if (st.code() == StatusCode::kConflict) return Take::kNotOurs;
  QM_RETURN_IF_ERROR(st);
  *revision = expected + 1;
  return Take::kOurs;
}

// An occurrence this pass holds the lease of.
struct Due {
  Campaign campaign;
  Occurrence occ;
  uint64_t revision = 0;  // the lease's
  std::string key() const { return campaign.definition.id + "/" + occ.name; }
};

// Starts a due occurrence: the campaign goes running (d->campaign is the new record) and its
// outbox folder exists. The send list's path.
Result<std::string> Start(Campaigns* campaigns, const SchedulerOptions& o, Due* d, TimeMs now) {
  const std::string id = d->campaign.definition.id;
  QM_ASSIGN_OR_RETURN(d->campaign, campaigns->Get(id));  // an earlier occurrence of this pass changed it
  if (d->campaign.state == State::kScheduled) {
    QM_ASSIGN_OR_RETURN(d->campaign, campaigns->Transition(id, State::kRunning, Actor{o.holder, "scheduler", now},
                                                           "occurrence " + d->occ.name));
  }
  const std::filesystem::path dir = std::filesystem::path(o.outbox) / id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create the campaign outbox '" + dir.string() + "': " + ec.message());
  return (dir / (d->occ.name + ".csv")).string();
}

RunOptions Options(const SchedulerOptions& o, const Due& d, TimeMs now, const std::string& out) {
  RunOptions ro;
  ro.occurrence = d.occ.name;
  ro.now = now;
  ro.out = out;
  ro.time_zone = o.time_zone;
  ro.threads = o.threads;
  ro.progress = false;
  return ro;
}

// Records a run occurrence's sends on the campaign (again on a concurrent edit's new revision),
// then marks its lease done.
Status Finish(Campaigns* campaigns, const SchedulerOptions& o, const Due& d, int64_t sends, TimeMs now,
              const std::string& from = "scheduler") {
  const std::string id = d.campaign.definition.id;
  Result<Campaign> recorded = Status::Internal("not recorded");
  for (int attempt = 0; attempt < 5; ++attempt) {
    recorded = campaigns->RecordOccurrence(id, d.occ.name, sends, Actor{o.holder, from, now});
    if (recorded.status().code() != StatusCode::kConflict) break;
  }
  QM_RETURN_IF_ERROR(recorded.status());
  const Lease done{"done", o.holder, now, sends};
  const std::string audit = json{{"ts", now}, {"who", o.holder}, {"state", "done"}}.dump();
  return campaigns->store()->WriteRecord(kLeases, d.key(), d.revision, done.Encode(), audit);
}

// Runs one due occurrence alone.
Status RunOne(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o, Due* d, TimeMs now) {
  QM_ASSIGN_OR_RETURN(std::string out, Start(campaigns, o, d, now));
  QM_ASSIGN_OR_RETURN(push::PushSummary summary, RunOccurrence(engine, d->campaign, Options(o, *d, now, out)));
  return Finish(campaigns, o, *d, summary.sends, now);
}

// One customer's place in a competition: a campaign's (priority, the bank's expected value of
// what it would send them, or -inf when it would send nothing).
struct Bid {
  int priority = 0;
  double value = 0;
  size_t campaign = 0;  // index into the group
};

bool Better(const Bid& a, const Bid& b, const std::vector<Due*>& group) {
  if (a.priority != b.priority) return a.priority > b.priority;
  if (a.value != b.value) return a.value > b.value;
  return group[a.campaign]->campaign.definition.id < group[b.campaign]->campaign.definition.id;
}

// The dry runs of a competition: every audience customer's bids, best first.
Result<std::unordered_map<std::string, std::vector<Bid>>> Bids(serving::Engine* engine, const SchedulerOptions& o,
                                                               const std::vector<Due*>& group,
                                                               const std::vector<std::string>& outs, TimeMs now) {
  std::unordered_map<std::string, std::vector<Bid>> bids;
  for (size_t i = 0; i < group.size(); ++i) {
    RunOptions ro = Options(o, *group[i], now, outs[i] + ".dry");
    ro.dry_run = true;
    ro.no_budget = true;
    const int priority = group[i]->campaign.definition.priority;
    ro.on_choice = [&](const std::string& id, const serving::PushChoice& c) {
      const double v = c.items.empty() ? -std::numeric_limits<double>::infinity() : c.expected_value;
      bids[id].push_back(Bid{priority, v, i});
    };
    Result<push::PushSummary> dry = RunOccurrence(engine, group[i]->campaign, ro);
    std::filesystem::remove(outs[i] + ".dry");
    QM_RETURN_IF_ERROR(dry.status());
  }
  for (auto& [id, list] : bids) {
    std::sort(list.begin(), list.end(), [&](const Bid& a, const Bid& b) { return Better(a, b, group); });
  }
  return bids;
}

// Several occurrences due in one pass on one channel compete for each customer's caps. Each is
// first run dry (every customer's choice and the bank's expected value of it, no budget); each
// customer's campaigns are ordered by priority, then expected value, then id; then the real runs
// go in rounds: round k runs each campaign for the customers whose k-th choice it is (the highest
// expected value first, for the budget), so the last unit of a customer's cap goes to the best
// campaign for that customer, whichever campaign is listed first. The rounds of a campaign share
// its run id; its send list is their rows in round order.
void RunCompeting(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o, std::vector<Due*> group,
                  TimeMs now, PassReport* report) {
  std::vector<std::string> outs;
  for (auto it = group.begin(); it != group.end();) {
    Result<std::string> out = Start(campaigns, o, *it, now);
    if (!out.ok()) {
      report->failed.push_back((*it)->key() + ": " + out.status().message());
      it = group.erase(it);
      continue;
    }
    outs.push_back(*out);
    ++it;
  }
  auto fail_all = [&](const Status& st) {
    for (Due* d : group) report->failed.push_back(d->key() + ": " + st.message());
  };
  Result<std::unordered_map<std::string, std::vector<Bid>>> bids = Bids(engine, o, group, outs, now);
  if (!bids.ok()) return fail_all(bids.status());
  std::vector<int64_t> sends(group.size(), 0);
  std::vector<std::vector<std::string>> rows(group.size(),
                                             std::vector<std::string>{"customer_id,item_id,scheduled_at,reasons\n"});
  std::vector<Status> failed(group.size());
  for (size_t round = 0; round < group.size(); ++round) {
    std::vector<std::vector<std::pair<double, std::string>>> lists(group.size());
    for (const auto& [id, list] : *bids) {
      if (round < list.size()) lists[list[round].campaign].emplace_back(-list[round].value, id);
    }
    for (size_t i = 0; i < group.size(); ++i) {
      if (lists[i].empty() || !failed[i].ok()) continue;
      std::sort(lists[i].begin(), lists[i].end());
      auto who = std::make_shared<std::vector<std::string>>();
      for (auto& [_, id] : lists[i]) who->push_back(std::move(id));
      RunOptions ro = Options(o, *group[i], now, outs[i] + ".round" + std::to_string(round));
      ro.customers = who;
      ro.spent = sends[i];
      Result<push::PushSummary> part = RunOccurrence(engine, group[i]->campaign, ro);
      Status st = part.status();
      if (part.ok()) {
        sends[i] += part->sends;
        st = AppendRows(ro.out, &rows[i]);
      }
      std::filesystem::remove(ro.out);
      failed[i] = st;
    }
  }
  for (size_t i = 0; i < group.size(); ++i) {
    Status st = failed[i];
    if (st.ok()) st = WriteFileAtomically(outs[i], rows[i]);
    if (st.ok()) st = Finish(campaigns, o, *group[i], sends[i], now);
    if (st.ok()) {
      report->ran.push_back(group[i]->key());
    } else {
      report->failed.push_back(group[i]->key() + ": " + st.message());
    }
  }
}

// Runs the occurrences whose leases this pass took: each alone, or in competition with the others
// due on its channel (RunCompeting).
void RunTaken(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o, std::vector<Due>* due,
              TimeMs now, PassReport* report) {
  // One occurrence of a campaign competes; its other due ones (a late one beside today's) run
  // alone afterwards.
  std::map<std::string, std::vector<Due*>> by_channel;
  std::vector<Due*> alone;
  for (Due& d : *due) {
    std::vector<Due*>& group = by_channel[d.campaign.definition.channel];
    const bool twice = std::any_of(group.begin(), group.end(),
                                   [&](const Due* g) { return g->campaign.definition.id == d.campaign.definition.id; });
    const bool several_channels = !d.campaign.definition.channels.empty();  // chooses its channels alone
    (twice || several_channels ? alone : group).push_back(&d);
  }
  for (auto& [channel, group] : by_channel) {
    if (group.size() > 1) {
      RunCompeting(engine, campaigns, o, group, now, report);
    } else {
      alone.insert(alone.begin(), group[0]);
    }
  }
  for (Due* d : alone) {
    Status st = RunOne(engine, campaigns, o, d, now);
    if (st.ok()) {
      report->ran.push_back(d->key());
    } else {
      report->failed.push_back(d->key() + ": " + st.message());
    }
  }
}

}  // namespace

Result<push::PushSummary> RunByHand(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o,
                                    const std::string& id, const std::string& occurrence, const std::string& out,
                                    TimeMs now) {
  if (o.holder.empty()) return Status::InvalidArgument("a run needs a holder name");
  Due d;
  QM_ASSIGN_OR_RETURN(d.campaign, campaigns->Get(id));
  d.occ = Occurrence{occurrence, now};
  QM_RETURN_IF_ERROR(CheckRunnable(d.campaign));  // before the lease: a refusal holds nothing
  const Lease next{"running", o.holder, now + o.lease, 0};
  QM_ASSIGN_OR_RETURN(Take take, TakeLease(campaigns->store(), d.key(), next, now, &d.revision));
  if (take == Take::kNotOurs) {
    return Status::FailedPrecondition("occurrence '" + d.key() +
                                      "' is being run by another process now (it holds the lease): try again later");
  }
  const Actor actor{o.holder, "cli", now};
  if (d.campaign.state == State::kScheduled) {
    QM_ASSIGN_OR_RETURN(d.campaign, campaigns->Transition(id, State::kRunning, actor, "occurrence " + occurrence));
  }
  RunOptions ro = Options(o, d, now, out);
  QM_ASSIGN_OR_RETURN(push::PushSummary summary, RunOccurrence(engine, d.campaign, ro));
  if (take == Take::kOurs) {
    QM_RETURN_IF_ERROR(Finish(campaigns, o, d, summary.sends, now, "cli"));
  } else {  // done before: a replay, recorded again (the same sends)
    QM_RETURN_IF_ERROR(campaigns->RecordOccurrence(id, occurrence, summary.sends, actor).status());
  }
  return summary;
}

Result<PassReport> RunDueOccurrences(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o,
                                     TimeMs now) {
  if (o.holder.empty()) return Status::InvalidArgument("the scheduler needs a holder name");
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(o.time_zone));
  QM_ASSIGN_OR_RETURN(std::vector<Campaign> all, campaigns->List());
  PassReport report;
  std::vector<Due> due;
  for (const Campaign& c : all) {
    if (c.state != State::kScheduled && c.state != State::kRunning) continue;
    for (const Occurrence& occ : OccurrencesOf(c.definition.schedule, tz)) {
      if (occ.at > now) break;                                             // in time order: the rest are later
      if (c.scheduled_at != kNoTime && occ.at < c.scheduled_at) continue;  // before it was scheduled
      if (c.occurrences.count(occ.name) || std::find(c.missed.begin(), c.missed.end(), occ.name) != c.missed.end()) {
        continue;
      }
      const std::string key = c.definition.id + "/" + occ.name;
      const bool late = now >= occ.at + o.grace;
      uint64_t revision = 0;
      const Lease next{late ? "missed" : "running", o.holder, late ? now : now + o.lease, 0};
      Result<Take> take = TakeLease(campaigns->store(), key, next, now, &revision);
      if (!take.ok()) {
        report.failed.push_back(key + ": " + take.status().message());
        continue;
      }
      if (*take != Take::kOurs) continue;
      if (late) {
        Result<Campaign> m = campaigns->RecordMissed(c.definition.id, occ.name, Actor{o.holder, "scheduler", now});
        if (m.ok()) {
          report.missed.push_back(key);
        } else {
          report.failed.push_back(key + ": " + m.status().message());
        }
        continue;
      }
      due.push_back(Due{c, occ, revision});
    }
  }
  RunTaken(engine, campaigns, o, &due, now, &report);
  return report;
}

}  // namespace qm::campaign
