#include "qianmian/policy/contact_state.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace qm::policy {

bool StoredEvent::operator==(const StoredEvent& o) const {
  return ts == o.ts && customer_id == o.customer_id && item_id == o.item_id && type == o.type &&
         channel == o.channel && request_id == o.request_id && campaign == o.campaign &&
         category == o.category && service == o.service;
}

TimeMs StateOptions::KeepFor(EventType t) const {
  switch (t) {
    case EventType::kClick:
    case EventType::kPushOpen: return std::max(keep_contacts, keep_clicks);
    case EventType::kDismiss: return std::max(keep_contacts, keep_dismissals);
    default: return keep_contacts;
  }
}

namespace {

// Everything but the scope key.
bool MatchesRest(const Constraint& c, const ContactRecord& r) {
  return (c.types >> static_cast<int>(r.type) & 1u) && r.ts >= c.since &&
         (c.channel.empty() || c.channel == r.channel) && (!c.counted_only || r.counted);
}

bool MatchesScope(const Constraint& c, const ContactRecord& r) {
  switch (c.scope) {
    case KeyScope::kChannel: return r.channel == c.value;
    case KeyScope::kItem: return r.item == c.value;
    case KeyScope::kCampaign: return !r.campaign.empty() && r.campaign == c.value;
    case KeyScope::kCategory: return !r.category.empty() && r.category == c.value;
    case KeyScope::kMarketing: return true;
  }
  return false;
}

bool SameEvent(const ContactRecord& r, const StoredEvent& e) {
  return r.type == e.type && r.item == e.item_id && r.channel == e.channel &&
         r.request_id == e.request_id;
}

}  // namespace

int CountUsage(const Constraint& c, const CustomerState& state) {
  int n = 0;
  for (const ContactRecord& r : state.records) n += MatchesScope(c, r) && MatchesRest(c, r);
  return n;
}

PlanOutcome RunPlan(const ContactPlan& plan, CustomerState* state, bool* changed) {
  *changed = false;
  PlanOutcome out;
  const size_t nc = plan.candidates.size();
  out.taken.assign(nc, 0);
  out.blocked.assign(nc, {});
  auto& recs = state->records;
  const size_t before = recs.size();
  recs.erase(std::remove_if(recs.begin(), recs.end(),
                            [&](const ContactRecord& r) {
                              return r.expires != 0 && r.expires <= plan.now;
                            }),
             recs.end());
  if (recs.size() != before) *changed = true;

  if (plan.max_take > 0 && !plan.request_id.empty()) {
    std::unordered_set<std::string> earlier;
    for (const ContactRecord& r : recs) {
      if (r.request_id == plan.request_id && r.channel == plan.channel &&
          r.type == plan.contact_type) {
        earlier.insert(r.item);
      }
    }
    if (!earlier.empty()) {
      out.replayed = true;
      for (size_t i = 0; i < nc; ++i) out.taken[i] = earlier.count(plan.candidates[i].item) > 0;
      return out;
    }
  }

  // Usage: index the (few) records by scope value, then count per constraint.
  std::unordered_map<std::string_view, std::vector<uint32_t>> by_value[5];
  for (uint32_t k = 0; k < recs.size(); ++k) {
    const ContactRecord& r = recs[k];
    by_value[0][r.channel].push_back(k);
    by_value[1][r.item].push_back(k);
    if (!r.campaign.empty()) by_value[2][r.campaign].push_back(k);
    if (!r.category.empty()) by_value[3][r.category].push_back(k);
  }
  std::vector<int> used(plan.constraints.size(), 0);
  for (uint32_t j = 0; j < plan.constraints.size(); ++j) {
    const Constraint& c = plan.constraints[j];
    if (c.scope == KeyScope::kMarketing) {
      for (const ContactRecord& r : recs) used[j] += MatchesRest(c, r);
      continue;
    }
    const auto& index = by_value[static_cast<int>(c.scope)];
    auto it = index.find(c.value);
    if (it == index.end()) continue;
    for (uint32_t k : it->second) used[j] += MatchesRest(c, recs[k]);
  }
  // Constraints by scope value, built on the first take only (checks never need it).
  std::unordered_map<std::string_view, std::vector<uint32_t>> con_by_value[5];
  bool con_index_built = false;
  auto bump = [&](KeyScope scope, std::string_view value, const ContactRecord& r) {
    auto& index = con_by_value[static_cast<int>(scope)];
    auto it = index.find(value);
    if (it == index.end()) return;
    for (uint32_t j : it->second) {
      const Constraint& c = plan.constraints[j];
      // A request is one contact for per-request constraints: its own takes never block it.
      if (c.per_request || !MatchesRest(c, r)) continue;
      ++used[j];
    }
  };

  int taken = 0;
  for (size_t i = 0; i < nc; ++i) {
    const PlanCandidate& cand = plan.candidates[i];
    for (uint32_t j : cand.constraints) {
      if (used[j] >= plan.constraints[j].limit) out.blocked[i].push_back(j);
    }
    if (!out.blocked[i].empty() || taken >= plan.max_take) continue;
    ContactRecord r;
    r.ts = cand.ts;
    r.type = plan.contact_type;
    r.channel = plan.channel;
    r.item = cand.item;
    r.campaign = cand.campaign;
    r.category = cand.category;
    r.request_id = plan.request_id;
    r.counted = cand.counted;
    r.expires = plan.expires;
    if (!con_index_built) {
      con_index_built = true;
      for (uint32_t j = 0; j < plan.constraints.size(); ++j) {
        const Constraint& c = plan.constraints[j];
        con_by_value[static_cast<int>(c.scope)][c.scope == KeyScope::kMarketing ? std::string_view() : std::string_view(c.value)].push_back(j);
      }
    }
    bump(KeyScope::kChannel, r.channel, r);
    bump(KeyScope::kItem, r.item, r);
    if (!r.campaign.empty()) bump(KeyScope::kCampaign, r.campaign, r);
    if (!r.category.empty()) bump(KeyScope::kCategory, r.category, r);
    bump(KeyScope::kMarketing, std::string_view(), r);
    recs.push_back(std::move(r));
    out.taken[i] = 1;
    ++taken;
    *changed = true;
  }
  return out;
}

bool ApplyEvent(const StoredEvent& e, const StateOptions& o, CustomerState* state) {
  for (ContactRecord& r : state->records) {
    if (!SameEvent(r, e)) continue;
    if (r.expires != 0 && !e.request_id.empty()) {  // confirms a pending reservation
      r.expires = 0;
      return true;
    }
    if (r.ts == e.ts || !e.request_id.empty()) return false;  // duplicate
  }
  ContactRecord r;
  r.ts = e.ts;
  r.type = e.type;
  r.channel = e.channel;
  r.item = e.item_id;
  r.campaign = e.campaign;
  r.category = e.category;
  r.request_id = e.request_id;
  r.counted = !e.service || o.count_service;
  // Keep the records in time order (events may arrive late).
  auto pos = std::upper_bound(state->records.begin(), state->records.end(), r.ts,
                              [](TimeMs t, const ContactRecord& x) { return t < x.ts; });
  state->records.insert(pos, std::move(r));
  return true;
}

bool CompactState(TimeMs now, const StateOptions& o, CustomerState* state) {
  auto& recs = state->records;
  const size_t before = recs.size();
  recs.erase(std::remove_if(recs.begin(), recs.end(),
                            [&](const ContactRecord& r) {
                              return (r.expires != 0 && r.expires <= now) ||
                                     r.ts < now - o.KeepFor(r.type);
                            }),
             recs.end());
  return recs.size() != before;
}

// ---- encoding ---------------------------------------------------------------------------

namespace {

void PutU64(std::string* s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  s->append(b, 8);
}
void PutStr(std::string* s, std::string_view v) {
  uint32_t n = static_cast<uint32_t>(v.size());
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(n >> (8 * i));
  s->append(b, 4);
  s->append(v);
}

struct Reader {
  std::string_view d;
  bool ok = true;
  uint64_t U64() {
    if (d.size() < 8) { ok = false; return 0; }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(d[i])) << (8 * i);
    d.remove_prefix(8);
    return v;
  }
  uint8_t U8() {
    if (d.empty()) { ok = false; return 0; }
    uint8_t v = static_cast<uint8_t>(d[0]);
    d.remove_prefix(1);
    return v;
  }
  std::string Str() {
    if (d.size() < 4) { ok = false; return {}; }
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(d[i])) << (8 * i);
    d.remove_prefix(4);
    if (d.size() < n) { ok = false; return {}; }
    std::string s(d.substr(0, n));
    d.remove_prefix(n);
    return s;
  }
};

constexpr uint8_t kStateVersion = 1;

}  // namespace

std::string EncodeState(const CustomerState& s) {
  std::string out;
  out.push_back(static_cast<char>(kStateVersion));
  PutU64(&out, s.records.size());
  for (const ContactRecord& r : s.records) {
    PutU64(&out, static_cast<uint64_t>(r.ts));
    out.push_back(static_cast<char>(r.type));
    out.push_back(static_cast<char>(r.counted));
    PutU64(&out, static_cast<uint64_t>(r.expires));
    PutStr(&out, r.channel);
    PutStr(&out, r.item);
    PutStr(&out, r.campaign);
    PutStr(&out, r.category);
    PutStr(&out, r.request_id);
  }
  return out;
}

bool DecodeState(std::string_view data, CustomerState* s) {
  Reader rd{data};
  s->records.clear();
  if (rd.U8() != kStateVersion) return false;
  uint64_t n = rd.U64();
  if (!rd.ok || n > data.size()) return false;
  s->records.resize(n);
  for (ContactRecord& r : s->records) {
    r.ts = static_cast<TimeMs>(rd.U64());
    uint8_t t = rd.U8();
    if (t >= kNumEventTypes) return false;
    r.type = static_cast<EventType>(t);
    r.counted = rd.U8() != 0;
    r.expires = static_cast<TimeMs>(rd.U64());
    r.channel = rd.Str();
    r.item = rd.Str();
    r.campaign = rd.Str();
    r.category = rd.Str();
    r.request_id = rd.Str();
    if (!rd.ok) return false;
  }
  return rd.ok && rd.d.empty();
}

std::string EncodeEvent(const StoredEvent& e) {
  std::string out;
  out.push_back(static_cast<char>(kStateVersion));
  PutU64(&out, static_cast<uint64_t>(e.ts));
  out.push_back(static_cast<char>(e.type));
  out.push_back(static_cast<char>(e.service));
  PutStr(&out, e.customer_id);
  PutStr(&out, e.item_id);
  PutStr(&out, e.channel);
  PutStr(&out, e.request_id);
  PutStr(&out, e.campaign);
  PutStr(&out, e.category);
  return out;
}

bool DecodeEvent(std::string_view data, StoredEvent* e) {
  Reader rd{data};
  if (rd.U8() != kStateVersion) return false;
  e->ts = static_cast<TimeMs>(rd.U64());
  uint8_t t = rd.U8();
  if (t >= kNumEventTypes) return false;
  e->type = static_cast<EventType>(t);
  e->service = rd.U8() != 0;
  e->customer_id = rd.Str();
  e->item_id = rd.Str();
  e->channel = rd.Str();
  e->request_id = rd.Str();
  e->campaign = rd.Str();
  e->category = rd.Str();
  return rd.ok && rd.d.empty();
}

}  // namespace qm::policy
