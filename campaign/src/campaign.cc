// The campaign lifecycle over the event store's governed records (campaign.h).
#include "qianmian/campaign/campaign.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qianmian/campaign/segments.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kCollection = "campaigns";

constexpr const char* kStateNames[] = {"draft",     "submitted", "approved", "scheduled", "running",
                                       "completed", "paused",    "rejected", "cancelled"};

json CampaignToJson(const Campaign& c) {
  return {{"definition", json::parse(DefinitionJson(c.definition))},
          {"state", StateName(c.state)},
          {"paused_from", StateName(c.paused_from)},
          {"authors", c.authors},
          {"approved_hash", c.approved_hash},
          {"approved_by", c.approved_by},
          {"approved_at", c.approved_at},
          {"reason", c.reason},
          {"created_by", c.created_by},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at},
          {"occurrences", c.occurrences},
          {"missed", c.missed},
          {"scheduled_at", c.scheduled_at},
          {"segments", c.segments}};
}

Result<Campaign> CampaignFromRecord(const policy::GovernedRecord& r) {
  const json j = json::parse(r.value, nullptr, false);
  auto bad = [&] { return Status::Corruption("bad campaign record '" + r.id + "'"); };
  if (j.is_discarded() || !j.is_object() || !j.contains("definition")) return bad();
  Campaign c;
  auto d = ParseDefinition(j["definition"].dump());
  if (!d.ok()) return Status::Corruption("campaign record '" + r.id + "': " + d.status().message());
  c.definition = std::move(*d);
  try {
    auto state = ParseState(j.at("state").get<std::string>());
    auto paused_from = ParseState(j.at("paused_from").get<std::string>());
    if (!state || !paused_from) return bad();
    c.state = *state;
    c.paused_from = *paused_from;
    c.authors = j.at("authors").get<std::vector<std::string>>();
    c.approved_hash = j.at("approved_hash").get<std::string>();
    c.approved_by = j.at("approved_by").get<std::string>();
    c.approved_at = j.at("approved_at").get<TimeMs>();
    c.reason = j.at("reason").get<std::string>();
    c.created_by = j.at("created_by").get<std::string>();
    c.created_at = j.at("created_at").get<TimeMs>();
    c.updated_at = j.at("updated_at").get<TimeMs>();
    if (j.contains("occurrences")) c.occurrences = j.at("occurrences").get<std::map<std::string, int64_t>>();
    if (j.contains("missed")) c.missed = j.at("missed").get<std::vector<std::string>>();
    if (j.contains("scheduled_at")) c.scheduled_at = j.at("scheduled_at").get<TimeMs>();
    if (j.contains("segments")) c.segments = j.at("segments").get<std::map<std::string, std::string>>();
  } catch (const json::exception&) {
    return bad();
  }
  c.revision = r.revision;
  return c;
}

json AuditToJson(const AuditEntry& e) {
  json changes = json::parse(e.changes.empty() ? "null" : e.changes, nullptr, false);
  return {{"revision", e.revision}, {"ts", e.ts},         {"who", e.who},
          {"from", e.from},         {"action", e.action}, {"from_state", e.from_state},
          {"to_state", e.to_state}, {"hash", e.hash},     {"changes", changes.is_discarded() ? json() : changes},
          {"reason", e.reason}};
}

Result<AuditEntry> AuditFromText(const std::string& id, const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::Corruption("bad audit entry of campaign '" + id + "'");
  AuditEntry e;
  try {
    e.revision = j.at("revision").get<uint64_t>();
    e.ts = j.at("ts").get<TimeMs>();
    e.who = j.at("who").get<std::string>();
    e.from = j.at("from").get<std::string>();
    e.action = j.at("action").get<std::string>();
    e.from_state = j.at("from_state").get<std::string>();
    e.to_state = j.at("to_state").get<std::string>();
    e.hash = j.at("hash").get<std::string>();
    e.changes = j.at("changes").dump();
    e.reason = j.at("reason").get<std::string>();
  } catch (const json::exception&) {
    return Status::Corruption("bad audit entry of campaign '" + id + "'");
  }
  return e;
}

std::string CsvCell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Status CheckActor(const Actor& a) {
  if (a.who.empty()) return Status::InvalidArgument("'operator': required (who makes the change)");
  return Status::Ok();
}

// Whether every occurrence of the schedule has run or was missed (a schedule without any: no).
bool AllOccurrencesDone(const Campaign& c) {
  // Names only (they do not depend on the zone); those before the scheduling may be a day off
  // here, which at worst keeps a campaign running until its last occurrence is recorded.
  const std::vector<Occurrence> all = OccurrencesOf(c.definition.schedule, TimeZone::Utc());
  if (all.empty()) return false;
  for (const Occurrence& o : all) {
    if (c.scheduled_at != kNoTime && o.at + kMsPerDay < c.scheduled_at) continue;
    if (!c.occurrences.count(o.name) && std::find(c.missed.begin(), c.missed.end(), o.name) == c.missed.end()) {
      return false;
    }
  }
  return true;
}

bool IsAuthor(const Campaign& c, const std::string& who) {
  return std::find(c.authors.begin(), c.authors.end(), who) != c.authors.end();
}

}  // namespace

const char* StateName(State s) { return kStateNames[static_cast<int>(s)]; }

std::optional<State> ParseState(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (name == kStateNames[i]) return static_cast<State>(i);
  }
  return std::nullopt;
}

std::vector<State> AllowedTransitions(State from) {
  switch (from) {
    case State::kDraft:
      return {State::kSubmitted, State::kCancelled};
    case State::kSubmitted:
      return {State::kApproved, State::kRejected, State::kDraft, State::kCancelled};
    case State::kApproved:
      return {State::kScheduled, State::kDraft, State::kCancelled};
    case State::kScheduled:
      return {State::kRunning, State::kPaused, State::kCancelled};
    case State::kRunning:
      return {State::kCompleted, State::kPaused, State::kCancelled};
    case State::kPaused:
      return {State::kScheduled, State::kRunning, State::kCancelled};
    case State::kRejected:
      return {State::kDraft, State::kCancelled};
    case State::kCompleted:
    case State::kCancelled:
      return {};
  }
  return {};
}

std::string CampaignJson(const Campaign& c) {
  json j = CampaignToJson(c);
  j["hash"] = c.hash();
  j["revision"] = c.revision;
  j["id"] = c.definition.id;
  j["runs_approved_version"] = c.RunsApprovedVersion();
  if (c.approved_at == kNoTime) j["approved_at"] = nullptr;
  if (c.scheduled_at == kNoTime) j["scheduled_at"] = nullptr;
  return j.dump();
}

std::string AuditJson(const AuditEntry& e) { return AuditToJson(e).dump(); }

std::string AuditCsv(const std::vector<AuditEntry>& entries) {
  std::ostringstream out;
  out << "revision,ts,who,from,action,from_state,to_state,hash,reason,changes\n";
  for (const AuditEntry& e : entries) {
    out << e.revision << ',' << e.ts << ',' << CsvCell(e.who) << ',' << CsvCell(e.from) << ',' << e.action << ','
        << e.from_state << ',' << e.to_state << ',' << e.hash << ',' << CsvCell(e.reason) << ',' << CsvCell(e.changes)
        << '\n';
  }
  return out.str();
}

Result<Campaign> Campaigns::Write(const Campaign& before, Campaign after, const Actor& actor, AuditEntry entry) {
  const TimeMs now = actor.now == kNoTime ? NowMs() : actor.now;
  after.updated_at = now;
  entry.revision = before.revision + 1;
  entry.ts = now;
  entry.who = actor.who;
  entry.from = actor.from;
  entry.from_state = before.revision == 0 ? "" : StateName(before.state);
  entry.to_state = StateName(after.state);
  entry.hash = after.hash();
  QM_RETURN_IF_ERROR(store_->WriteRecord(kCollection, after.definition.id, before.revision,
                                         CampaignToJson(after).dump(), AuditJson(entry)));
  after.revision = before.revision + 1;
  return after;
}

Status Campaigns::CheckExpanded(const Definition& d, TimeMs now, const std::map<std::string, std::string>* snapshot,
                                std::map<std::string, std::string>* used) const {
  std::map<std::string, std::string> current;
  if (snapshot == nullptr) {
    Result<std::map<std::string, std::string>> r = Segments(store_, nullptr).Resolve(d.audience);
    if (r.status().code() == StatusCode::kNotFound)
      return Status::InvalidArgument("'audience': " + r.status().message());
    QM_RETURN_IF_ERROR(r.status());
    current = *std::move(r);
    snapshot = &current;
  }
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = snapshot->find(name);
    if (it == snapshot->end()) return std::nullopt;
    return it->second;
  };
  Result<std::string> audience = ExpandSegments(d.audience, lookup);
  if (!audience.ok()) return Status::InvalidArgument("'audience': " + audience.status().message());
  Definition expanded = d;
  expanded.audience = *audience;
  QM_RETURN_IF_ERROR(check_(expanded, now));
  if (used) *used = *snapshot;
  return Status::Ok();
}

Result<Campaign> Campaigns::Create(const Definition& d, const Actor& actor) {
  QM_RETURN_IF_ERROR(CheckActor(actor));
  const TimeMs now = actor.now == kNoTime ? NowMs() : actor.now;
  QM_RETURN_IF_ERROR(CheckExpanded(d, now, nullptr));
  Campaign c;
  c.definition = d;
  c.authors = {actor.who};
  c.created_by = actor.who;
  c.created_at = now;
  AuditEntry e;
  e.action = "create";
  e.changes = DefinitionJson(d);
  Result<Campaign> out = Write(Campaign(), std::move(c), actor, std::move(e));
  if (out.status().code() == StatusCode::kConflict) {
    return Status::AlreadyExists("campaign '" + d.id + "' already exists");
  }
  return out;
}

Result<Campaign> Campaigns::Update(const Definition& d, const Actor& actor, uint64_t expected_revision) {
  QM_RETURN_IF_ERROR(CheckActor(actor));
  QM_ASSIGN_OR_RETURN(Campaign before, Get(d.id));
  if (expected_revision != 0 && expected_revision != before.revision) {
    return Status::Conflict("campaign '" + d.id + "' is at revision " + std::to_string(before.revision) + ", not " +
                            std::to_string(expected_revision) + ": it changed since it was read");
  }
  if (before.state == State::kRunning || before.state == State::kCompleted || before.state == State::kCancelled) {
    return Status::InvalidArgument("campaign '" + d.id + "' is " + StateName(before.state) +
                                   ": its definition can no longer be edited" +
                                   (before.state == State::kRunning ? " (pause it first)" : ""));
  }
  QM_RETURN_IF_ERROR(CheckExpanded(d, actor.now == kNoTime ? NowMs() : actor.now, nullptr));
  Campaign after = before;
  after.definition = d;
  after.segments.clear();
  after.state = State::kDraft;
  after.approved_hash.clear();
  after.approved_by.clear();
  after.approved_at = kNoTime;
  if (!IsAuthor(after, actor.who)) after.authors.push_back(actor.who);
  AuditEntry e;
  e.action = "edit";
  e.changes = json::diff(json::parse(DefinitionJson(before.definition)), json::parse(DefinitionJson(d))).dump();
  return Write(before, std::move(after), actor, std::move(e));
}

Result<Campaign> Campaigns::Transition(const std::string& id, State to, const Actor& actor, const std::string& reason,
                                       uint64_t expected_revision) {
  QM_RETURN_IF_ERROR(CheckActor(actor));
  QM_ASSIGN_OR_RETURN(Campaign before, Get(id));
  if (expected_revision != 0 && expected_revision != before.revision) {
    return Status::Conflict("campaign '" + id + "' is at revision " + std::to_string(before.revision) + ", not " +
                            std::to_string(expected_revision) + ": it changed since it was read");
  }
  const std::vector<State> allowed = AllowedTransitions(before.state);
  const bool resume_elsewhere =
      before.state == State::kPaused && (to == State::kScheduled || to == State::kRunning) && to != before.paused_from;
  if (std::find(allowed.begin(), allowed.end(), to) == allowed.end() || resume_elsewhere) {
    std::string list;
    for (State s : allowed) {
      if (before.state == State::kPaused && (s == State::kScheduled || s == State::kRunning) && s != before.paused_from)
        continue;
      list += (list.empty() ? "" : ", ") + std::string(StateName(s));
    }
    return Status::InvalidArgument("campaign '" + id + "' is " + StateName(before.state) + ": it cannot go to " +
                                   StateName(to) + " (allowed: " + (list.empty() ? "none" : list) + ")");
  }
  const TimeMs now = actor.now == kNoTime ? NowMs() : actor.now;
  Campaign after = before;
  after.state = to;
  if (to == State::kApproved || to == State::kRejected) {
    if (IsAuthor(before, actor.who)) {
      return Status::PermissionDenied("'" + actor.who + "' wrote campaign '" + id + "' and so may not " +
                                      (to == State::kApproved ? "approve" : "reject") +
                                      " it: a second person must (maker-checker)");
    }
  }
  if (to == State::kApproved) {
    // The bank may have changed since it was written; the segments are snapshotted.
    QM_RETURN_IF_ERROR(CheckExpanded(before.definition, now, nullptr, &after.segments));
    after.approved_hash = before.hash();
    after.approved_by = actor.who;
    after.approved_at = now;
  }
  if (to == State::kDraft) {
    after.segments.clear();
    after.approved_hash.clear();
    after.approved_by.clear();
    after.approved_at = kNoTime;
  }
  if (to == State::kScheduled || to == State::kRunning) {
    if (!before.RunsApprovedVersion()) {
      return Status::FailedPrecondition("campaign '" + id + "': its definition (hash " + before.hash() +
                                        ") is not the approved one; only the approved version runs");
    }
  }
  if (to == State::kScheduled && before.state == State::kApproved) {
    if (before.definition.schedule.kind == "none" && !before.definition.triggered()) {
      return Status::InvalidArgument("campaign '" + id + "' has no schedule: edit its 'schedule' first");
    }
    QM_RETURN_IF_ERROR(CheckExpanded(before.definition, now, &before.segments));  // e.g. the schedule is now past
  }
  if (to == State::kPaused) after.paused_from = before.state;
  if (to == State::kScheduled && before.scheduled_at == kNoTime) after.scheduled_at = now;
  if (to == State::kRejected || to == State::kCancelled) after.reason = reason;
  AuditEntry e;
  e.action = "transition";
  e.reason = reason;
  return Write(before, std::move(after), actor, std::move(e));
}

Result<Campaign> Campaigns::RecordOccurrence(const std::string& id, const std::string& occurrence, int64_t sends,
                                             const Actor& actor, uint64_t expected_revision) {
  QM_RETURN_IF_ERROR(CheckActor(actor));
  QM_ASSIGN_OR_RETURN(Campaign before, Get(id));
  if (expected_revision != 0 && expected_revision != before.revision) {
    return Status::Conflict("campaign '" + id + "' is at revision " + std::to_string(before.revision) + ", not " +
                            std::to_string(expected_revision) + ": it changed since it was read");
  }
  if (before.state != State::kRunning) {
    return Status::FailedPrecondition("campaign '" + id + "' is " + StateName(before.state) +
                                      ": an occurrence is recorded for a running campaign");
  }
  if (!before.RunsApprovedVersion()) {
    return Status::FailedPrecondition("campaign '" + id + "': its definition is not the approved one");
  }
  Campaign after = before;
  after.occurrences[occurrence] = sends;
  after.state = AllOccurrencesDone(after) ? State::kCompleted : State::kRunning;
  AuditEntry e;
  e.action = "occurrence";
  e.changes = json{{"occurrence", occurrence}, {"sends", sends}}.dump();
  return Write(before, std::move(after), actor, std::move(e));
}

Result<Campaign> Campaigns::RecordMissed(const std::string& id, const std::string& occurrence, const Actor& actor) {
  QM_RETURN_IF_ERROR(CheckActor(actor));
  QM_ASSIGN_OR_RETURN(Campaign before, Get(id));
  if (before.state != State::kScheduled && before.state != State::kRunning) {
    return Status::FailedPrecondition("campaign '" + id + "' is " + StateName(before.state));
  }
  Campaign after = before;
  if (std::find(after.missed.begin(), after.missed.end(), occurrence) == after.missed.end()) {
    after.missed.push_back(occurrence);
  }
  if (AllOccurrencesDone(after)) after.state = State::kCompleted;
  AuditEntry e;
  e.action = "missed";
  e.changes = json{{"occurrence", occurrence}}.dump();
  return Write(before, std::move(after), actor, std::move(e));
}

Result<Campaign> Campaigns::Get(const std::string& id) const {
  Result<policy::GovernedRecord> r = store_->ReadRecord(kCollection, id);
  if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("no campaign '" + id + "'");
  QM_RETURN_IF_ERROR(r.status());
  return CampaignFromRecord(*r);
}

Result<std::vector<Campaign>> Campaigns::List() const {
  QM_ASSIGN_OR_RETURN(std::vector<policy::GovernedRecord> records, store_->ListRecords(kCollection));
  std::vector<Campaign> out;
  for (const policy::GovernedRecord& r : records) {
    QM_ASSIGN_OR_RETURN(Campaign c, CampaignFromRecord(r));
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<AuditEntry>> Campaigns::Audit(const std::string& id) const {
  QM_ASSIGN_OR_RETURN(std::vector<std::string> entries, store_->RecordAudit(kCollection, id));
  if (entries.empty()) return Status::NotFound("no campaign '" + id + "'");
  std::vector<AuditEntry> out;
  for (const std::string& text : entries) {
    QM_ASSIGN_OR_RETURN(AuditEntry e, AuditFromText(id, text));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace qm::campaign
