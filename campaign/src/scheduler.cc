// Running the due occurrences of campaigns exactly once across processes (scheduler.h).
#include "qianmian/campaign/scheduler.h"

#include <filesystem>
#include <nlohmann/json.hpp>

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

// Runs occurrence `occ` of `c` under its lease, records it and marks the lease done.
Status RunOne(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o, const Campaign& c,
              const Occurrence& occ, TimeMs now, uint64_t lease_revision) {
  const std::string id = c.definition.id;
  const Actor actor{o.holder, "scheduler", now};
  Campaign cur = c;
  if (cur.state == State::kScheduled) {
    QM_ASSIGN_OR_RETURN(cur, campaigns->Transition(id, State::kRunning, actor, "occurrence " + occ.name));
  }
  const std::filesystem::path dir = std::filesystem::path(o.outbox) / id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create the campaign outbox '" + dir.string() + "': " + ec.message());
  RunOptions ro;
  ro.occurrence = occ.name;
  ro.now = now;
  ro.out = (dir / (occ.name + ".csv")).string();
  ro.time_zone = o.time_zone;
  ro.threads = o.threads;
  ro.progress = false;
  QM_ASSIGN_OR_RETURN(push::PushSummary summary, RunOccurrence(engine, cur, ro));
  // Recorded on the campaign (again on a concurrent edit's new revision), then the lease.
  Result<Campaign> recorded = Status::Internal("not recorded");
  for (int attempt = 0; attempt < 5; ++attempt) {
    recorded = campaigns->RecordOccurrence(id, occ.name, summary.sends, actor);
    if (recorded.status().code() != StatusCode::kConflict) break;
  }
  QM_RETURN_IF_ERROR(recorded.status());
  const Lease done{"done", o.holder, now, summary.sends};
  const std::string audit = json{{"ts", now}, {"who", o.holder}, {"state", "done"}}.dump();
  return campaigns->store()->WriteRecord(kLeases, id + "/" + occ.name, lease_revision, done.Encode(), audit);
}

}  // namespace

Result<PassReport> RunDueOccurrences(serving::Engine* engine, Campaigns* campaigns, const SchedulerOptions& o,
                                     TimeMs now) {
  if (o.holder.empty()) return Status::InvalidArgument("the scheduler needs a holder name");
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(o.time_zone));
  QM_ASSIGN_OR_RETURN(std::vector<Campaign> all, campaigns->List());
  PassReport report;
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
      QM_ASSIGN_OR_RETURN(Campaign fresh, campaigns->Get(c.definition.id));  // earlier occurrences changed it
      Status st = RunOne(engine, campaigns, o, fresh, occ, now, revision);
      if (st.ok()) {
        report.ran.push_back(key);
      } else {
        report.failed.push_back(key + ": " + st.message());
      }
    }
  }
  return report;
}

}  // namespace qm::campaign
