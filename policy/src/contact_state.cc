#include "qianmian/policy/contact_state.h"
#include "qianmian/policy/decision_log.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "qianmian/core/status.h"
#include "qianmian/policy/policy_config.h"

namespace qm::policy {

bool StoredEvent::operator==(const StoredEvent& o) const {
  return ts == o.ts && customer_id == o.customer_id && item_id == o.item_id && type == o.type && channel == o.channel &&
         request_id == o.request_id && campaign == o.campaign && category == o.category && service == o.service;
}

TimeMs StateOptions::KeepFor(EventType t) const {
  switch (t) {
    case EventType::kClick:
    case EventType::kPushOpen:
      return std::max(keep_contacts, keep_clicks);
    case EventType::kDismiss:
      return std::max(keep_contacts, keep_dismissals);
    case EventType::kOptOut:
      return kKeepForever;
    default:
      return keep_contacts;
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
    case KeyScope::kChannel:
      return r.channel == c.value;
    case KeyScope::kItem:
      return r.item == c.value;
    case KeyScope::kCampaign:
      return !r.campaign.empty() && r.campaign == c.value;
    case KeyScope::kCategory:
      return !r.category.empty() && r.category == c.value;
    case KeyScope::kMarketing:
      return true;
  }
  return false;
}

bool SameEvent(const ContactRecord& r, const StoredEvent& e) {
  return r.type == e.type && r.item == e.item_id && r.channel == e.channel && r.request_id == e.request_id;
}

}  // namespace

int CountUsage(const Constraint& c, const CustomerState& state) {
  int n = 0;
  for (const ContactRecord& r : state.records) n += MatchesScope(c, r) && MatchesRest(c, r);
  return n;
}

const char* StateRuleName(StateRule r) {
  switch (r) {
    case StateRule::kCapChannel:
      return blocked::kCapCustomerChannel;
    case StateRule::kCapItem:
      return blocked::kCapCustomerItem;
    case StateRule::kCapCampaign:
      return blocked::kCapCustomerCampaign;
    case StateRule::kCapCategory:
      return blocked::kCapCustomerCategory;
    case StateRule::kCapMarketing:
      return blocked::kCapCustomerMarketing;
    case StateRule::kCooldown:
      return blocked::kCooldown;
    case StateRule::kClicked:
      return blocked::kClicked;
    case StateRule::kDismissed:
      return blocked::kDismissed;
    case StateRule::kConsent:
      return blocked::kConsent;
  }
  return "cap";
}

namespace {

constexpr uint32_t kEnd = UINT32_MAX;

// A customer's records by item: an open-addressing table from item id to its newest record,
// the item's other records chained through `next`. Keys are views into the records, so the
// records vector must not reallocate while the index is in use.
class ItemIndex {
 public:
  ItemIndex(const std::vector<ContactRecord>& recs, size_t extra) : recs_(recs) {
    size_t cap = 16;
    while (cap < 2 * (recs.size() + extra)) cap <<= 1;
    slots_.assign(cap, kEnd);
    mask_ = cap - 1;
    next_.reserve(recs.size() + extra);
    for (uint32_t k = 0; k < recs.size(); ++k) Add(k);
  }
  // Indexes record k (REQUIRES records 0..k-1 indexed).
  void Add(uint32_t k) {
    uint32_t& head = Slot(recs_[k].item);
    next_.push_back(head);
    head = k;
  }
  uint32_t Head(std::string_view item) const { return const_cast<ItemIndex*>(this)->Slot(item); }
  uint32_t Next(uint32_t k) const { return next_[k]; }

 private:
  uint32_t& Slot(std::string_view item) {
    size_t h = std::hash<std::string_view>()(item) & mask_;
    while (slots_[h] != kEnd && recs_[slots_[h]].item != item) h = (h + 1) & mask_;
    return slots_[h];
  }
  const std::vector<ContactRecord>& recs_;
  std::vector<uint32_t> slots_, next_;
  size_t mask_ = 0;
};

bool Matches(const Constraint& c, const ContactRecord& r) { return MatchesRest(c, r) && MatchesScope(c, r); }

}  // namespace

PlanOutcome RunPlan(const ContactPlan& plan, CustomerState* state, bool* changed) {
  *changed = false;
  PlanOutcome out;
  const size_t nc = plan.candidates.size();
  out.taken.assign(nc, 0);
  out.blocked.assign(nc, 0);
  auto& recs = state->records;
  const size_t before = recs.size();
  recs.erase(std::remove_if(recs.begin(), recs.end(),
                            [&](const ContactRecord& r) { return r.expires != 0 && r.expires <= plan.now; }),
             recs.end());
  if (recs.size() != before) *changed = true;

  if (plan.max_take > 0 && !plan.request_id.empty()) {
    std::unordered_set<std::string_view> earlier;
    for (const ContactRecord& r : recs) {
      if (r.request_id == plan.request_id && r.channel == plan.channel && r.type == plan.contact_type) {
        earlier.insert(r.item);
      }
    }
    if (!earlier.empty()) {
      out.replayed = true;
      for (size_t i = 0; i < nc; ++i) out.taken[i] = earlier.count(plan.candidates[i].item) > 0;
      return out;
    }
  }

  // Takes append records: no reallocation, so the index's views stay valid.
  const size_t max_new = std::min(nc, static_cast<size_t>(std::max(plan.max_take, 0)));
  recs.reserve(recs.size() + max_new);
  const uint32_t first_new = static_cast<uint32_t>(recs.size());
  // Shared constraints are few: count each over the records once, bump on every take.
  std::vector<int> used(plan.shared.size(), 0);
  for (size_t j = 0; j < plan.shared.size(); ++j) {
    const Constraint& c = plan.shared[j];
    for (const ContactRecord& r : recs) used[j] += Matches(c, r);
  }
  // Templates: counted per candidate over its item's records (this request's takes included,
  // except for per-request constraints).
  ItemIndex by_item(recs, max_new);
  const size_t nt = plan.templates.size();
  QM_CHECK(nt <= 32);

  int taken = 0;
  for (size_t i = 0; i < nc; ++i) {
    const PlanCandidate& cand = plan.candidates[i];
    uint32_t blocked = 0;
    for (uint32_t s = cand.shared_begin; s < cand.shared_end; ++s) {
      const uint32_t j = plan.candidate_shared[s];
      if (used[j] >= plan.shared[j].limit) blocked |= 1u << static_cast<int>(plan.shared[j].rule);
    }
    if (cand.templates != 0) {
      const uint32_t head = by_item.Head(cand.item);
      for (size_t t = 0; t < nt; ++t) {
        if (!(cand.templates >> t & 1u)) continue;
        const Constraint& c = plan.templates[t];
        int n = 0;
        for (uint32_t k = head; k != kEnd && n < c.limit; k = by_item.Next(k)) {
          n += MatchesRest(c, recs[k]) && !(c.per_request && k >= first_new);
        }
        if (n >= c.limit) blocked |= 1u << static_cast<int>(c.rule);
      }
    }
    out.blocked[i] = blocked;
    if (blocked != 0 || taken >= plan.max_take) continue;
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
    // A request is one contact for per-request constraints: its own takes never block it.
    for (size_t j = 0; j < plan.shared.size(); ++j) {
      const Constraint& c = plan.shared[j];
      if (!c.per_request && Matches(c, r)) ++used[j];
    }
    recs.push_back(std::move(r));
    by_item.Add(static_cast<uint32_t>(recs.size() - 1));
    out.taken[i] = 1;
    ++taken;
    *changed = true;
  }
  return out;
}

void CountPushes(const CustomerState& state, std::string_view channel, std::string_view skip_request, TimeMs now,
                 int* pushes_7d, int* pushes_30d) {
  for (const ContactRecord& rec : state.records) {
    if (rec.type != EventType::kPushSent || rec.channel != channel || rec.ts > now) continue;
    if (!skip_request.empty() && rec.request_id == skip_request) continue;
    if (rec.ts > now - 30 * kMsPerDay) ++*pushes_30d;
    if (rec.ts > now - 7 * kMsPerDay) ++*pushes_7d;
  }
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
                              return (r.expires != 0 && r.expires <= now) || r.ts < now - o.KeepFor(r.type);
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
    if (d.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(d[i])) << (8 * i);
    d.remove_prefix(8);
    return v;
  }
  uint8_t U8() {
    if (d.empty()) {
      ok = false;
      return 0;
    }
    uint8_t v = static_cast<uint8_t>(d[0]);
    d.remove_prefix(1);
    return v;
  }
  std::string Str() {
    if (d.size() < 4) {
      ok = false;
      return {};
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(d[i])) << (8 * i);
    d.remove_prefix(4);
    if (d.size() < n) {
      ok = false;
      return {};
    }
    std::string s(d.substr(0, n));
    d.remove_prefix(n);
    return s;
  }
};

// Version bytes: 1 begins an event, and a state written before 2026-12-07; 2 a state of the
// compact layout (EncodeState), whose records keep two flags beside their type.
constexpr uint8_t kStateVersion = 1;
constexpr uint8_t kStateVersion2 = 2;
constexpr uint8_t kCounted = 0x80, kExpires = 0x40;

void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* d, uint64_t* v) {
  uint64_t out = 0;
  for (int shift = 0; shift < 64 && !d->empty(); shift += 7) {
    const auto b = static_cast<uint8_t>(d->front());
    d->remove_prefix(1);
    out |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = out;
      return true;
    }
  }
  return false;
}

void PutVarStr(std::string* out, std::string_view v) {
  PutVarint(out, v.size());
  out->append(v);
}

// Reads a string written by PutVarStr as a view into *d's data.
bool GetVarView(std::string_view* d, std::string_view* s) {
  uint64_t n = 0;
  if (!GetVarint(d, &n) || n > d->size()) return false;
  *s = d->substr(0, n);
  d->remove_prefix(n);
  return true;
}

bool GetVarStr(std::string_view* d, std::string* s) {
  std::string_view v;
  if (!GetVarView(d, &v)) return false;
  s->assign(v);
  return true;
}

// The distinct strings of a value, each stored once and referred to by its index (the compact
// layouts of a state and of a decision page).
class StringTable {
 public:
  uint64_t Add(std::string_view x) {
    auto [it, added] = index_.try_emplace(x, strings_.size());
    if (added) strings_.push_back(x);
    return it->second;
  }
  size_t bytes() const {
    size_t n = 0;
    for (std::string_view x : strings_) n += x.size() + 2;
    return n;
  }
  void Put(std::string* out) const {
    PutVarint(out, strings_.size());
    for (std::string_view x : strings_) PutVarStr(out, x);
  }
  // Reads a table written by Put: views into *d's data.
  static bool Get(std::string_view* d, std::vector<std::string_view>* strings) {
    uint64_t count = 0;
    if (!GetVarint(d, &count) || count > d->size()) return false;  // a string takes a byte at least
    strings->resize(count);
    for (std::string_view& x : *strings) {
      if (!GetVarView(d, &x)) return false;
    }
    return true;
  }

 private:
  std::vector<std::string_view> strings_;
  std::unordered_map<std::string_view, uint64_t> index_;
};

// Differences of times, wrapping in 64 bits (any two values round-trip), small either way.
uint64_t ZigZag(uint64_t delta) {
  const auto d = static_cast<int64_t>(delta);
  return (static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63);
}
uint64_t UnZigZag(uint64_t z) { return (z >> 1) ^ (~(z & 1) + 1); }

bool DecodeStateV1(std::string_view data, CustomerState* s) {
  Reader rd{data};
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

}  // namespace

// A state, version 2: the distinct strings of its records once (a page's ten reservations share
// their channel and request id), then per record the time as a difference from the record
// before, a byte of type and flags (counted, has an expiry), the expiry (when it has one) as a
// difference from the time, and five indexes into the strings. A ten-item page's reservations
// take ~210 bytes instead of ~920 (version 1: fixed 8-byte fields and every string whole), and
// the state is rewritten on every page: in issue 20's soak states were two thirds of the bytes
// the store wrote.
std::string EncodeState(const CustomerState& s) {
  StringTable strings;
  std::vector<uint64_t> refs;
  refs.reserve(5 * s.records.size());
  for (const ContactRecord& r : s.records) {
    for (const std::string* x : {&r.channel, &r.item, &r.campaign, &r.category, &r.request_id}) {
      refs.push_back(strings.Add(*x));
    }
  }
  std::string out;
  out.reserve(8 + strings.bytes() + 16 * s.records.size());
  out.push_back(static_cast<char>(kStateVersion2));
  strings.Put(&out);
  PutVarint(&out, s.records.size());
  uint64_t previous = 0;
  const uint64_t* ref = refs.data();
  for (const ContactRecord& r : s.records) {
    const auto ts = static_cast<uint64_t>(r.ts);
    PutVarint(&out, ZigZag(ts - previous));
    previous = ts;
    out.push_back(
        static_cast<char>(static_cast<uint8_t>(r.type) | (r.counted ? kCounted : 0) | (r.expires != 0 ? kExpires : 0)));
    if (r.expires != 0) PutVarint(&out, ZigZag(static_cast<uint64_t>(r.expires) - ts));
    for (int i = 0; i < 5; ++i) PutVarint(&out, *ref++);
  }
  return out;
}

bool DecodeState(std::string_view data, CustomerState* s) {
  s->records.clear();
  if (data.empty()) return false;
  if (static_cast<uint8_t>(data[0]) == kStateVersion) return DecodeStateV1(data, s);
  if (static_cast<uint8_t>(data[0]) != kStateVersion2) return false;
  std::string_view d = data.substr(1);
  std::vector<std::string_view> strings;
  if (!StringTable::Get(&d, &strings)) return false;
  uint64_t n = 0;
  if (!GetVarint(&d, &n) || n > d.size() / 7) return false;  // a record takes 7 bytes at least
  s->records.resize(n);
  uint64_t previous = 0;
  for (ContactRecord& r : s->records) {
    uint64_t delta = 0, expires = 0;
    if (!GetVarint(&d, &delta) || d.empty()) return false;
    previous += UnZigZag(delta);
    r.ts = static_cast<TimeMs>(previous);
    const auto flags = static_cast<uint8_t>(d.front());
    d.remove_prefix(1);
    const uint8_t type = flags & ~(kCounted | kExpires);
    if (type >= kNumEventTypes) return false;
    r.type = static_cast<EventType>(type);
    r.counted = (flags & kCounted) != 0;
    r.expires = 0;
    if ((flags & kExpires) != 0) {
      if (!GetVarint(&d, &expires)) return false;
      r.expires = static_cast<TimeMs>(previous + UnZigZag(expires));
    }
    for (std::string* x : {&r.channel, &r.item, &r.campaign, &r.category, &r.request_id}) {
      uint64_t i = 0;
      if (!GetVarint(&d, &i) || i >= strings.size()) return false;
      x->assign(strings[i]);
    }
  }
  if (!d.empty()) {
    s->records.clear();
    return false;
  }
  return true;
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

namespace {

constexpr uint8_t kDecisionPageVersion = 0x50;   // 'P': a page written before 2026-12-07
constexpr uint8_t kDecisionPageVersion2 = 0x51;  // 'Q': varints and a table of the reasons

bool GetFixed64(std::string_view* d, uint64_t* v) {
  Reader rd{*d};
  *v = rd.U64();
  *d = rd.d;
  return rd.ok;
}

void PutFloats(std::string* out, float a, float b) {
  uint32_t bits[2];
  std::memcpy(&bits[0], &a, 4);
  std::memcpy(&bits[1], &b, 4);
  PutU64(out, uint64_t{bits[0]} | uint64_t{bits[1]} << 32);
}

void PutStrings(std::string* out, const std::vector<std::string>& list) {
  PutU64(out, list.size());
  for (const auto& x : list) PutStr(out, x);
}

bool ReadStrings(Reader* rd, std::vector<std::string>* list) {
  const uint64_t count = rd->U64();
  if (!rd->ok || count > rd->d.size() / 4) return false;
  list->resize(count);
  for (auto& x : *list) x = rd->Str();
  return rd->ok;
}

// A decision's own numbers, in the same layout in a record and in a page: position, score,
// p_click and p_convert.
void PutItemNumbers(std::string* out, const DecisionRecord& d) {
  PutU64(out, static_cast<uint64_t>(static_cast<int64_t>(d.position)));
  uint64_t bits = 0;
  std::memcpy(&bits, &d.score, sizeof d.score);
  PutU64(out, bits);
  PutFloats(out, d.p_click, d.p_convert);
}

void ReadItemNumbers(Reader* rd, DecisionRecord* d) {
  d->position = static_cast<int>(static_cast<int64_t>(rd->U64()));
  const uint64_t bits = rd->U64();
  std::memcpy(&d->score, &bits, sizeof d->score);
  const uint64_t p = rd->U64();
  const uint32_t fbits[2] = {static_cast<uint32_t>(p), static_cast<uint32_t>(p >> 32)};
  std::memcpy(&d->p_click, &fbits[0], 4);
  std::memcpy(&d->p_convert, &fbits[1], 4);
}

}  // namespace

// A decision: a version byte of its own, then fixed-size fields, then strings and two lists.
constexpr uint8_t kDecisionVersion = 0x44;  // 'D'

std::string EncodeDecision(const DecisionRecord& d) {
  std::string out;
  size_t n =
      64 + d.request_id.size() + d.customer_id.size() + d.channel.size() + d.item_id.size() + d.model_version.size();
  for (const auto& a : d.arms) n += 4 + a.size();
  for (const auto& r : d.reasons) n += 4 + r.size();
  out.reserve(n);
  out.push_back(static_cast<char>(kDecisionVersion));
  out.push_back(static_cast<char>(d.kind));
  PutU64(&out, static_cast<uint64_t>(d.ts));
  PutItemNumbers(&out, d);
  PutStr(&out, d.request_id);
  PutStr(&out, d.customer_id);
  PutStr(&out, d.channel);
  PutStr(&out, d.item_id);
  PutStr(&out, d.model_version);
  PutStrings(&out, d.arms);
  PutStrings(&out, d.reasons);
  return out;
}

bool DecodeDecision(std::string_view data, DecisionRecord* d) {
  Reader rd{data};
  if (rd.U8() != kDecisionVersion) return false;
  const uint8_t kind = rd.U8();
  if (kind >= kNumDecisionKinds) return false;
  d->kind = static_cast<DecisionKind>(kind);
  d->ts = static_cast<TimeMs>(rd.U64());
  ReadItemNumbers(&rd, d);
  d->request_id = rd.Str();
  d->customer_id = rd.Str();
  d->channel = rd.Str();
  d->item_id = rd.Str();
  d->model_version = rd.Str();
  if (!ReadStrings(&rd, &d->arms) || !ReadStrings(&rd, &d->reasons)) return false;
  return rd.ok && rd.d.empty();
}

bool SameDecisionPage(const DecisionRecord& a, const DecisionRecord& b) {
  return a.ts == b.ts && a.kind == b.kind && a.request_id == b.request_id && a.customer_id == b.customer_id &&
         a.channel == b.channel && a.model_version == b.model_version && a.arms == b.arms;
}

// A page, version 2 ('Q'): the shared fields once, the distinct reasons once (every item of a
// page says "recall:ann"), then per item its position (a varint), score and probabilities (fixed:
// they are any bits), id, and indexes of its reasons. A ten-item page of the soak: ~770 bytes
// instead of ~1,160 ('P': 8-byte counts and positions, every reason whole).
std::string EncodeDecisionPage(const DecisionRecord* records, size_t n) {
  const DecisionRecord& h = records[0];
  StringTable reasons;
  std::vector<uint64_t> refs;
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& r : records[i].reasons) refs.push_back(reasons.Add(r));
  }
  std::string out;
  out.reserve(64 + 40 * n);
  out.push_back(static_cast<char>(kDecisionPageVersion2));
  out.push_back(static_cast<char>(h.kind));
  PutU64(&out, static_cast<uint64_t>(h.ts));
  PutVarStr(&out, h.request_id);
  PutVarStr(&out, h.customer_id);
  PutVarStr(&out, h.channel);
  PutVarStr(&out, h.model_version);
  PutVarint(&out, h.arms.size());
  for (const auto& a : h.arms) PutVarStr(&out, a);
  reasons.Put(&out);
  PutVarint(&out, n);
  const uint64_t* ref = refs.data();
  for (size_t i = 0; i < n; ++i) {
    const DecisionRecord& d = records[i];
    PutVarint(&out, ZigZag(static_cast<uint64_t>(static_cast<int64_t>(d.position))));
    uint64_t bits = 0;
    std::memcpy(&bits, &d.score, sizeof d.score);
    PutU64(&out, bits);
    PutFloats(&out, d.p_click, d.p_convert);
    PutVarStr(&out, d.item_id);
    PutVarint(&out, d.reasons.size());
    for (size_t k = 0; k < d.reasons.size(); ++k) PutVarint(&out, *ref++);
  }
  return out;
}

namespace {

// Reads a page of version 2 into *out (appending); false when the value is not one.
bool DecodePageV2(std::string_view d, std::vector<DecisionRecord>* out) {
  DecisionRecord h;
  uint64_t ts = 0, count = 0;
  if (d.size() < 2) return false;
  const auto kind = static_cast<uint8_t>(d[1]);
  d.remove_prefix(2);
  if (kind >= kNumDecisionKinds) return false;
  h.kind = static_cast<DecisionKind>(kind);
  if (!GetFixed64(&d, &ts)) return false;
  h.ts = static_cast<TimeMs>(ts);
  if (!GetVarStr(&d, &h.request_id) || !GetVarStr(&d, &h.customer_id) || !GetVarStr(&d, &h.channel) ||
      !GetVarStr(&d, &h.model_version) || !GetVarint(&d, &count) || count > d.size()) {
    return false;
  }
  h.arms.resize(count);
  for (auto& a : h.arms) {
    if (!GetVarStr(&d, &a)) return false;
  }
  std::vector<std::string_view> reasons;
  if (!StringTable::Get(&d, &reasons)) return false;
  uint64_t n = 0;
  if (!GetVarint(&d, &n) || n == 0 || n > d.size() / 19) return false;  // an item takes 19 bytes at least
  std::vector<DecisionRecord> items(n, h);
  for (DecisionRecord& x : items) {
    uint64_t position = 0, score = 0, p = 0, k = 0;
    if (!GetVarint(&d, &position) || !GetFixed64(&d, &score) || !GetFixed64(&d, &p) || !GetVarStr(&d, &x.item_id) ||
        !GetVarint(&d, &k) || k > d.size()) {
      return false;
    }
    x.position = static_cast<int>(static_cast<int64_t>(UnZigZag(position)));
    std::memcpy(&x.score, &score, sizeof x.score);
    const uint32_t fbits[2] = {static_cast<uint32_t>(p), static_cast<uint32_t>(p >> 32)};
    std::memcpy(&x.p_click, &fbits[0], 4);
    std::memcpy(&x.p_convert, &fbits[1], 4);
    x.reasons.resize(k);
    for (auto& r : x.reasons) {
      uint64_t i = 0;
      if (!GetVarint(&d, &i) || i >= reasons.size()) return false;
      r = reasons[i];
    }
  }
  if (!d.empty()) return false;
  out->insert(out->end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  return true;
}

}  // namespace

bool DecodeDecisions(std::string_view data, std::vector<DecisionRecord>* out) {
  if (!data.empty() && static_cast<uint8_t>(data[0]) == kDecisionVersion) {
    DecisionRecord d;
    if (!DecodeDecision(data, &d)) return false;
    out->push_back(std::move(d));
    return true;
  }
  if (!data.empty() && static_cast<uint8_t>(data[0]) == kDecisionPageVersion2) return DecodePageV2(data, out);
  Reader rd{data};
  if (rd.U8() != kDecisionPageVersion) return false;
  DecisionRecord h;
  const uint8_t kind = rd.U8();
  if (kind >= kNumDecisionKinds) return false;
  h.kind = static_cast<DecisionKind>(kind);
  h.ts = static_cast<TimeMs>(rd.U64());
  h.request_id = rd.Str();
  h.customer_id = rd.Str();
  h.channel = rd.Str();
  h.model_version = rd.Str();
  if (!ReadStrings(&rd, &h.arms)) return false;
  const uint64_t n = rd.U64();
  if (!rd.ok || n == 0 || n > rd.d.size() / 36) return false;  // an item takes at least 36 bytes
  const size_t before = out->size();
  for (uint64_t i = 0; i < n; ++i) {
    DecisionRecord d = h;
    ReadItemNumbers(&rd, &d);
    d.item_id = rd.Str();
    if (!ReadStrings(&rd, &d.reasons)) break;
    out->push_back(std::move(d));
  }
  if (!rd.ok || !rd.d.empty() || out->size() != before + n) {
    out->resize(before);
    return false;
  }
  return true;
}

}  // namespace qm::policy
