// Saved segments over the event store's governed records (segments.h).
#include "qianmian/campaign/segments.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kCollection = "segments";
constexpr std::string_view kPrefix = "segment:";

bool ValidName(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == std::string::npos;
}

bool NameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }

// Calls on(begin, end, name) for every `segment:NAME` of `text` outside quotes, in order.
template <class On>
void ForEachReference(std::string_view text, On on) {
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      continue;
    }
    if (i > 0 && NameChar(text[i - 1])) continue;  // inside a word ("mysegment:x" is not one)
    if (text.size() - i < kPrefix.size()) break;
    bool match = true;
    for (size_t k = 0; k < kPrefix.size() && match; ++k) {
      match = std::tolower(static_cast<unsigned char>(text[i + k])) == kPrefix[k];
    }
    if (!match) continue;
    size_t end = i + kPrefix.size();
    while (end < text.size() && NameChar(text[end])) ++end;
    on(i, end, std::string(text.substr(i + kPrefix.size(), end - i - kPrefix.size())));
    i = end - 1;
  }
}

Result<Segment> FromRecord(const policy::GovernedRecord& r) {
  const json j = json::parse(r.value, nullptr, false);
  Segment s;
  try {
    s.name = r.id;
    s.audience = j.at("audience").get<std::string>();
    s.description = j.at("description").get<std::string>();
    s.updated_by = j.at("updated_by").get<std::string>();
    s.updated_at = j.at("updated_at").get<TimeMs>();
  } catch (const json::exception&) {
    return Status::Corruption("bad segment record '" + r.id + "'");
  }
  s.revision = r.revision;
  return s;
}

}  // namespace

std::string SegmentJson(const Segment& s) {
  return json{{"name", s.name},
              {"audience", s.audience},
              {"description", s.description},
              {"updated_by", s.updated_by},
              {"updated_at", s.updated_at},
              {"revision", s.revision}}
      .dump();
}

std::vector<std::string> SegmentNames(std::string_view audience) {
  std::vector<std::string> out;
  ForEachReference(audience, [&](size_t, size_t, const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  });
  return out;
}

Result<std::string> ExpandSegments(std::string_view audience,
                                   const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  std::string out;
  size_t done = 0;
  Status st;
  ForEachReference(audience, [&](size_t begin, size_t end, const std::string& name) {
    if (!st.ok()) return;
    if (name.empty()) {
      st = Status::InvalidArgument("'segment:' needs a segment name (position " + std::to_string(begin + 1) + ")");
      return;
    }
    std::optional<std::string> expr = lookup(name);
    if (!expr) {
      st = Status::InvalidArgument("unknown segment '" + name + "'");
      return;
    }
    out.append(audience.substr(done, begin - done));
    out += "(" + (expr->empty() ? std::string("all") : *expr) + ")";
    done = end;
  });
  QM_RETURN_IF_ERROR(st);
  out.append(audience.substr(done));
  return out;
}

Result<Segment> Segments::Save(const std::string& name, const std::string& audience, const std::string& description,
                               const Actor& actor, uint64_t expected_revision) {
  if (actor.who.empty()) return Status::InvalidArgument("'operator': required (who makes the change)");
  if (!ValidName(name)) {
    return Status::InvalidArgument("'name': 1..64 letters, digits, '_', '.' or '-' (got '" + name + "')");
  }
  if (!SegmentNames(audience).empty()) {
    return Status::InvalidArgument("'audience': a segment cannot name another segment");
  }
  if (check_) {
    Status st = check_(audience);
    if (!st.ok()) return Status::InvalidArgument("'audience': " + st.message());
  }
  uint64_t revision = 0;
  Result<policy::GovernedRecord> cur = store_->ReadRecord(kCollection, name);
  if (cur.ok()) {
    revision = cur->revision;
  } else if (cur.status().code() != StatusCode::kNotFound) {
    return cur.status();
  }
  if (expected_revision != 0 && expected_revision != revision) {
    return Status::Conflict("segment '" + name + "' is at revision " + std::to_string(revision) + ", not " +
                            std::to_string(expected_revision) + ": it changed since it was read");
  }
  const TimeMs now = actor.now == kNoTime ? NowMs() : actor.now;
  Segment s{name, audience, description, actor.who, now, revision + 1};
  const std::string value =
      json{{"audience", audience}, {"description", description}, {"updated_by", actor.who}, {"updated_at", now}}.dump();
  const std::string audit =
      json{{"revision", revision + 1},  {"ts", now}, {"who", actor.who}, {"from", actor.from}, {"audience", audience},
           {"description", description}}
          .dump();
  QM_RETURN_IF_ERROR(store_->WriteRecord(kCollection, name, revision, value, audit));
  return s;
}

Result<Segment> Segments::Get(const std::string& name) const {
  Result<policy::GovernedRecord> r = store_->ReadRecord(kCollection, name);
  if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("no segment '" + name + "'");
  QM_RETURN_IF_ERROR(r.status());
  return FromRecord(*r);
}

Result<std::vector<Segment>> Segments::List() const {
  QM_ASSIGN_OR_RETURN(std::vector<policy::GovernedRecord> records, store_->ListRecords(kCollection));
  std::vector<Segment> out;
  for (const policy::GovernedRecord& r : records) {
    QM_ASSIGN_OR_RETURN(Segment s, FromRecord(r));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<std::string>> Segments::Audit(const std::string& name) const {
  QM_ASSIGN_OR_RETURN(std::vector<std::string> entries, store_->RecordAudit(kCollection, name));
  if (entries.empty()) return Status::NotFound("no segment '" + name + "'");
  return entries;
}

Result<std::map<std::string, std::string>> Segments::Resolve(std::string_view audience) const {
  std::map<std::string, std::string> out;
  for (const std::string& name : SegmentNames(audience)) {
    Result<Segment> s = Get(name);
    if (s.status().code() == StatusCode::kNotFound) return Status::NotFound("unknown segment '" + name + "'");
    QM_RETURN_IF_ERROR(s.status());
    out[name] = s->audience;
  }
  return out;
}

Result<std::string> CampaignAudience(const Campaign& c) {
  std::string missing;
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = c.segments.find(name);
    if (it == c.segments.end()) {
      missing = name;
      return std::nullopt;
    }
    return it->second;
  };
  Result<std::string> out = ExpandSegments(c.definition.audience, lookup);
  if (!out.ok() && !missing.empty()) {
    return Status::FailedPrecondition("campaign '" + c.definition.id + "': segment '" + missing +
                                      "' is not in its approval's snapshot");
  }
  return out;
}

}  // namespace qm::campaign
