// Shared event store: Redis via hiredis. Per customer c (hash-tagged, so one cluster slot):
//   <prefix>:{c}:s  a string: JSON array of contact records [ts,type,channel,item,campaign,
//                   category,request,counted,expires]; expires after the longest state horizon
//   <prefix>:{c}:l  a sorted set of events scored by ts; member JSON [ts,type,channel,item,
//                   request,campaign,category,service]; expires after the retention
// Check-and-count is ONE Lua script per customer (EVALSHA), a port of RunPlan; Append is
// another, a port of ApplyEvent. Durability is the Redis server's (appendfsync).
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdio>
#include <condition_variable>
#include <map>
#include <set>
#include <unordered_map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "store_backends.h"

namespace qm::policy {
namespace {

using json = nlohmann::json;

// Shared by both scripts: record layout, compaction, save.
constexpr const char* kCommonLua = R"LUA(
local function compact(recs, now, keep)
  local kept = {}
  for _, r in ipairs(recs) do
    if not ((r[9] ~= 0 and r[9] <= now) or r[1] < now - keep[r[2] + 1]) then kept[#kept + 1] = r end
  end
  return kept
end
local function save(recs, ttl)
  if #recs == 0 then redis.call('DEL', KEYS[1])
  else redis.call('SET', KEYS[1], cjson.encode(recs), 'PX', ttl) end
end
local function load()
  local raw = redis.call('GET', KEYS[1])
  if raw then return cjson.decode(raw) end
  return {}
end
)LUA";

// ARGV[1]: {now, r, ch, ct, x, mt, keep:[6], ttl, lttl,
//           sh:[[scope,value,types,channel,since,limit,counted_only,per_request]],
//           tp:[[types,channel,since,limit,counted_only,per_request]]   (item scope, own item),
//           pat:[[[sh indexes],[tp indexes]]]   (constraint patterns shared by candidates),
//           cands:[[item,campaign,category,counted,ts,pattern,service]]}
// Returns {replayed, taken ("0"/"1" per candidate), blocked (";" per candidate, ","-joined sh
// indexes, templates as -(t + 1))}.
constexpr const char* kPlanLua = R"LUA(
local P = cjson.decode(ARGV[1])
local recs = load()
local changed = false
local live = {}
for _, r in ipairs(recs) do
  if r[9] ~= 0 and r[9] <= P.now then changed = true else live[#live + 1] = r end
end
recs = live
local function finish()
  if changed and P.mt > 0 then save(compact(recs, P.now, P.keep), P.ttl) end
end
if P.mt > 0 and P.r ~= '' then
  local earlier, any = {}, false
  for _, r in ipairs(recs) do
    if r[7] == P.r and r[3] == P.ch and r[2] == P.ct then earlier[r[4]] = true; any = true end
  end
  if any then
    local t = {}
    for i, c in ipairs(P.cands) do t[i] = earlier[c[1]] and '1' or '0' end
    finish()
    return {1, table.concat(t), ''}
  end
end
local function rest(c, r)
  return bit.band(c[3], bit.lshift(1, r[2])) ~= 0 and r[1] >= c[5] and (c[4] == '' or c[4] == r[3])
     and (c[7] == 0 or r[8] == 1)
end
local function add(t, v, k)
  local l = t[v]
  if not l then l = {}; t[v] = l end
  l[#l + 1] = k
end
-- Usage: index the (few) records by scope value, then count per constraint.
local ridx = {{}, {}, {}, {}}
for k, r in ipairs(recs) do
  add(ridx[1], r[3], k)
  add(ridx[2], r[4], k)
  if r[5] ~= '' then add(ridx[3], r[5], k) end
  if r[6] ~= '' then add(ridx[4], r[6], k) end
end
local used = {}
for j, c in ipairs(P.sh) do
  local n = 0
  if c[1] == 4 then
    for _, r in ipairs(recs) do if rest(c, r) then n = n + 1 end end
  else
    local l = ridx[c[1] + 1][c[2]]
    if l then for _, k in ipairs(l) do if rest(c, recs[k]) then n = n + 1 end end end
  end
  used[j] = n
end
-- Item templates [types, channel, since, limit, counted_only, per_request]: usage per item.
local function trest(t, r)
  return bit.band(t[1], bit.lshift(1, r[2])) ~= 0 and r[1] >= t[3] and (t[2] == '' or t[2] == r[3])
     and (t[5] == 0 or r[8] == 1)
end
local tused = {}
local ZERO = {}
for t = 1, #P.tp do ZERO[t] = 0 end
local function tusage(item, fresh)
  local u = tused[item]
  if u then return u end
  local l = ridx[2][item]
  if not l and not fresh then return ZERO end
  u = {}
  for t, tp in ipairs(P.tp) do
    local n = 0
    if l then for _, k in ipairs(l) do if trest(tp, recs[k]) then n = n + 1 end end end
    u[t] = n
  end
  tused[item] = u
  return u
end
-- Shared constraints by scope value, built on the first take only.
local cidx = nil
local function bump(s, v, r)
  local l = cidx[s][v]
  if l then
    for _, j in ipairs(l) do
      local con = P.sh[j]
      if con[8] == 0 and rest(con, r) then used[j] = used[j] + 1 end
    end
  end
end
local taken, blocked, ntaken = {}, {}, 0
for i, c in ipairs(P.cands) do
  local pat = P.pat[c[6] + 1]
  local b = nil
  for _, j0 in ipairs(pat[1]) do
    if used[j0 + 1] >= P.sh[j0 + 1][6] then b = b and (b .. ',' .. j0) or tostring(j0) end
  end
  if #pat[2] > 0 then
    local u = tusage(c[1], false)
    for _, t0 in ipairs(pat[2]) do
      if u[t0 + 1] >= P.tp[t0 + 1][4] then
        local v = tostring(-(t0 + 1))
        b = b and (b .. ',' .. v) or v
      end
    end
  end
  blocked[i] = b or ''
  taken[i] = '0'
  if not b and ntaken < P.mt then
    local r = {c[5], P.ct, P.ch, c[1], c[2], c[3], P.r, c[4], P.x}
    if not cidx then
      cidx = {{}, {}, {}, {}, {}}
      for j, con in ipairs(P.sh) do add(cidx[con[1] + 1], con[1] == 4 and '' or con[2], j) end
    end
    bump(1, r[3], r)
    bump(2, r[4], r)
    if r[5] ~= '' then bump(3, r[5], r) end
    if r[6] ~= '' then bump(4, r[6], r) end
    bump(5, '', r)
    local u = tusage(c[1], true)
    for t, tp in ipairs(P.tp) do
      if tp[6] == 0 and trest(tp, r) then u[t] = u[t] + 1 end
    end
    recs[#recs + 1] = r
    taken[i] = '1'
    ntaken = ntaken + 1
    changed = true
    if P.x == 0 then
      redis.call('ZADD', KEYS[2], c[5], cjson.encode({c[5], P.ct, P.ch, c[1], P.r, c[2], c[3], c[7]}))
      redis.call('PEXPIRE', KEYS[2], P.lttl)
    end
  end
end
finish()
return {0, table.concat(taken), table.concat(blocked, ';')}
)LUA";

// ARGV[1]: {keep:[6], cs, ttl, lttl, now (or -1), ev:[[ts,type,channel,item,request,campaign,
//           category,service]]}. Returns the number of events recorded (not duplicates).
constexpr const char* kAppendLua = R"LUA(
local A = cjson.decode(ARGV[1])
local recs = load()
local newest = A.now
local n = 0
for _, e in ipairs(A.ev) do
  if e[1] > newest then newest = e[1] end
  local dup, confirmed = false, false
  for _, r in ipairs(recs) do
    if r[2] == e[2] and r[4] == e[4] and r[3] == e[3] and r[7] == e[5] then
      if r[9] ~= 0 and e[5] ~= '' then r[9] = 0; confirmed = true; break end
      if r[1] == e[1] or e[5] ~= '' then dup = true; break end
    end
  end
  if not dup then
    if not confirmed then
      local counted = 0
      if e[8] == 0 or A.cs == 1 then counted = 1 end
      local pos = #recs + 1
      while pos > 1 and recs[pos - 1][1] > e[1] do pos = pos - 1 end
      table.insert(recs, pos, {e[1], e[2], e[3], e[4], e[6], e[7], e[5], counted, 0})
    end
    redis.call('ZADD', KEYS[2], e[1], cjson.encode(e))
    redis.call('PEXPIRE', KEYS[2], A.lttl)
    n = n + 1
  end
end
local before = #recs
recs = compact(recs, newest, A.keep)
if n > 0 or #recs ~= before then save(recs, A.ttl) end
return n
)LUA";

struct ReplyDeleter {
  void operator()(redisReply* r) const { if (r) freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { if (c) redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// Appends `v` as a JSON string.
void JsonString(std::string* out, std::string_view v) {
  out->push_back('"');
  for (char c : v) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

json KeepArray(const StateOptions& o) {
  json k = json::array();
  for (int t = 0; t < kNumEventTypes; ++t) k.push_back(o.KeepFor(static_cast<EventType>(t)));
  return k;
}

TimeMs StateTtl(const StateOptions& o) {
  TimeMs m = 0;
  for (int t = 0; t < kNumEventTypes; ++t) m = std::max(m, o.KeepFor(static_cast<EventType>(t)));
  return m + kMsPerDay;
}

bool ParseLogMember(const std::string& customer, std::string_view member, StoredEvent* e) {
  json j = json::parse(member, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.size() != 8) return false;
  try {
    e->ts = j[0].get<TimeMs>();
    int t = j[1].get<int>();
    if (t < 0 || t >= kNumEventTypes) return false;
    e->type = static_cast<EventType>(t);
    e->channel = j[2].get<std::string>();
    e->item_id = j[3].get<std::string>();
    e->request_id = j[4].get<std::string>();
    e->campaign = j[5].get<std::string>();
    e->category = j[6].get<std::string>();
    e->service = j[7].get<int>() != 0;
    e->customer_id = customer;
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

class RedisStore final : public EventStore {
 public:
  explicit RedisStore(const StoreConfig& c) : config_(c) {
    plan_script_ = std::string(kCommonLua) + kPlanLua;
    append_script_ = std::string(kCommonLua) + kAppendLua;
  }

  Status Init() {
    QM_ASSIGN_OR_RETURN(Context c, Connect());
    QM_RETURN_IF_ERROR(LoadScripts(c.get()));
    Release(std::move(c));
    return Status::Ok();
  }

  Status Append(const std::vector<StoredEvent>& events, const StateOptions& options) override {
    std::map<std::string, json> by_customer;
    for (const StoredEvent& e : events) {
      if (e.customer_id.empty()) return Status::InvalidArgument("event without a customer id");
      json& arr = by_customer[e.customer_id];
      if (arr.is_null()) arr = json::array();
      arr.push_back({e.ts, static_cast<int>(e.type), e.channel, e.item_id, e.request_id, e.campaign,
                     e.category, e.service ? 1 : 0});
    }
    if (by_customer.empty()) return Status::Ok();
    // Pipelined: one EVALSHA per customer.
    std::vector<std::vector<std::string>> cmds;
    for (auto& [customer, evs] : by_customer) {
      json a = {{"keep", KeepArray(options)}, {"cs", options.count_service ? 1 : 0},
                {"ttl", StateTtl(options)}, {"lttl", config_.retention + kMsPerDay},
                {"now", kNoTime / 2}, {"ev", std::move(evs)}};
      cmds.push_back({"EVALSHA", append_sha_, "2", StateKey(customer), LogKey(customer), a.dump()});
    }
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(cmds, append_script_));
    for (const Reply& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) return Status::Internal(std::string("append script: ") + r->str);
    }
    return Status::Ok();
  }

  // Screens every candidate in C++ against a snapshot of the state (one GET), then sends only
  // the candidates the snapshot allows (at most 2 * max_take + 4, in order) to the Lua script,
  // which re-checks and counts them atomically. A concurrent writer can only make the script
  // take fewer; it can never make a cap overflow. A check (max_take == 0) never runs a script.
  Result<PlanOutcome> Apply(const ContactPlan& plan) override {
    if (plan.customer_id.empty()) return Status::InvalidArgument("plan without a customer id");
    if (plan.max_take > 0 && plan.request_id.empty()) {
      return Status::InvalidArgument("a reservation needs a request id");
    }
    QM_ASSIGN_OR_RETURN(CustomerState snapshot, State(plan.customer_id));
    bool changed = false;
    PlanOutcome out = RunPlan(plan, &snapshot, &changed);
    if (plan.max_take == 0 || out.replayed) return out;
    std::vector<size_t> keep;
    const size_t max_keep = 2 * static_cast<size_t>(plan.max_take) + 4;
    for (size_t i = 0; i < plan.candidates.size() && keep.size() < max_keep; ++i) {
      if (out.blocked[i] == 0) keep.push_back(i);
    }
    if (keep.empty() && !changed) return out;
    ContactPlan sub;
    sub.customer_id = plan.customer_id;
    sub.request_id = plan.request_id;
    sub.channel = plan.channel;
    sub.now = plan.now;
    sub.contact_type = plan.contact_type;
    sub.expires = plan.expires;
    sub.max_take = plan.max_take;
    sub.shared = plan.shared;
    sub.templates = plan.templates;
    sub.options = plan.options;
    for (size_t i : keep) {
      PlanCandidate c = plan.candidates[i];
      c.shared_begin = static_cast<uint32_t>(sub.candidate_shared.size());
      sub.candidate_shared.insert(sub.candidate_shared.end(),
                                  plan.candidate_shared.begin() + plan.candidates[i].shared_begin,
                                  plan.candidate_shared.begin() + plan.candidates[i].shared_end);
      c.shared_end = static_cast<uint32_t>(sub.candidate_shared.size());
      sub.candidates.push_back(c);
    }
    QM_ASSIGN_OR_RETURN(PlanOutcome got, RunScript(sub));
    if (got.replayed) {  // a concurrent request with the same id won: report its result
      out.replayed = true;
      std::fill(out.blocked.begin(), out.blocked.end(), 0u);
      std::fill(out.taken.begin(), out.taken.end(), 0);
    }
    for (size_t k = 0; k < keep.size(); ++k) {
      out.taken[keep[k]] = got.taken[k];
      out.blocked[keep[k]] = got.blocked[k];
    }
    if (got.replayed) {
      // Items of the earlier request that were not among those sent: look them up.
      QM_ASSIGN_OR_RETURN(CustomerState now, State(plan.customer_id));
      std::set<std::string_view> earlier;
      for (const ContactRecord& r : now.records) {
        if (r.request_id == plan.request_id && r.channel == plan.channel && r.type == plan.contact_type) {
          earlier.insert(r.item);
        }
      }
      for (size_t i = 0; i < plan.candidates.size(); ++i) out.taken[i] = earlier.count(plan.candidates[i].item) > 0;
    }
    return out;
  }

  // Runs the Lua port of RunPlan on `plan`: ONE atomic step on the customer's keys.
  Result<PlanOutcome> RunScript(const ContactPlan& plan) {
    std::string p;
    p.reserve(256 + plan.candidates.size() * 64 + plan.shared.size() * 64);
    p += "{\"now\":" + std::to_string(plan.now) + ",\"r\":";
    JsonString(&p, plan.request_id);
    p += ",\"ch\":";
    JsonString(&p, plan.channel);
    p += ",\"ct\":" + std::to_string(static_cast<int>(plan.contact_type)) +
         ",\"x\":" + std::to_string(plan.expires) + ",\"mt\":" + std::to_string(plan.max_take) +
         ",\"keep\":" + KeepArray(plan.options).dump() +
         ",\"ttl\":" + std::to_string(StateTtl(plan.options)) +
         ",\"lttl\":" + std::to_string(config_.retention + kMsPerDay) + ",\"sh\":[";
    for (size_t k = 0; k < plan.shared.size(); ++k) {
      const Constraint& c = plan.shared[k];
      if (k) p += ',';
      p += '[' + std::to_string(static_cast<int>(c.scope)) + ',';
      JsonString(&p, c.value);
      p += ',' + std::to_string(c.types) + ',';
      JsonString(&p, c.channel);
      p += ',' + std::to_string(c.since) + ',' + std::to_string(c.limit) + ',' +
           (c.counted_only ? '1' : '0') + ',' + (c.per_request ? '1' : '0') + ']';
    }
    p += "],\"tp\":[";
    for (size_t k = 0; k < plan.templates.size(); ++k) {
      const Constraint& c = plan.templates[k];
      if (k) p += ',';
      p += '[' + std::to_string(c.types) + ',';
      JsonString(&p, c.channel);
      p += ',' + std::to_string(c.since) + ',' + std::to_string(c.limit) + ',' +
           (c.counted_only ? '1' : '0') + ',' + (c.per_request ? '1' : '0') + ']';
    }
    // Candidates share a few constraint patterns (same shared indexes, same templates).
    std::unordered_map<std::string, int> pattern_of;
    std::string patterns;
    std::vector<int> cand_pattern(plan.candidates.size());
    for (size_t i = 0; i < plan.candidates.size(); ++i) {
      const PlanCandidate& c = plan.candidates[i];
      std::string pat = "[[";
      for (uint32_t s = c.shared_begin; s < c.shared_end; ++s) {
        if (s != c.shared_begin) pat += ',';
        pat += std::to_string(plan.candidate_shared[s]);
      }
      pat += "],[";
      bool first = true;
      for (size_t t = 0; t < plan.templates.size(); ++t) {
        if (!(c.templates >> t & 1u)) continue;
        if (!first) pat += ',';
        first = false;
        pat += std::to_string(t);
      }
      pat += "]]";
      auto [it, fresh] = pattern_of.emplace(pat, static_cast<int>(pattern_of.size()));
      if (fresh) {
        if (!patterns.empty()) patterns += ',';
        patterns += pat;
      }
      cand_pattern[i] = it->second;
    }
    p += "],\"pat\":[" + patterns + "],\"cands\":[";
    for (size_t i = 0; i < plan.candidates.size(); ++i) {
      const PlanCandidate& c = plan.candidates[i];
      if (i) p += ',';
      p += '[';
      JsonString(&p, c.item);
      p += ',';
      JsonString(&p, c.campaign);
      p += ',';
      JsonString(&p, c.category);
      p += std::string(",") + (c.counted ? '1' : '0') + ',' + std::to_string(c.ts) + ',' +
           std::to_string(cand_pattern[i]) + ',' + (c.service ? '1' : '0') + ']';
    }
    p += "]}";
    std::vector<std::vector<std::string>> cmds = {{"EVALSHA", plan_sha_, "2",
                                                   StateKey(plan.customer_id),
                                                   LogKey(plan.customer_id), std::move(p)}};
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(cmds, plan_script_));
    redisReply* r = replies[0].get();
    if (r->type == REDIS_REPLY_ERROR) return Status::Internal(std::string("plan script: ") + r->str);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return Status::Internal("plan script: bad reply");
    const size_t nc = plan.candidates.size();
    PlanOutcome out;
    out.replayed = r->element[0]->integer != 0;
    std::string_view taken(r->element[1]->str, r->element[1]->len);
    if (taken.size() != nc) return Status::Internal("plan script: bad reply size");
    out.taken.resize(nc);
    for (size_t i = 0; i < nc; ++i) out.taken[i] = taken[i] == '1';
    out.blocked.assign(nc, 0);
    // Blocked: per candidate (";"), shared indexes and templates as -(t + 1) (",").
    std::string_view b(r->element[2]->str, r->element[2]->len);
    size_t i = 0;
    int64_t v = 0;
    bool have = false, neg = false;
    auto flush = [&]() -> bool {
      if (!have || i >= nc) return true;
      const std::vector<Constraint>& from = neg ? plan.templates : plan.shared;
      const int64_t j = neg ? v - 1 : v;
      if (j < 0 || static_cast<size_t>(j) >= from.size()) return false;
      out.blocked[i] |= 1u << static_cast<int>(from[j].rule);
      return true;
    };
    for (char ch : b) {
      if (ch == ';' || ch == ',') {
        if (!flush()) return Status::Internal("plan script: bad blocked index");
        v = 0;
        have = neg = false;
        if (ch == ';') ++i;
      } else if (ch == '-') {
        neg = true;
      } else {
        v = v * 10 + (ch - '0');
        have = true;
      }
    }
    if (!flush()) return Status::Internal("plan script: bad blocked index");
    return out;
  }

  Result<CustomerState> State(const std::string& customer_id) override {
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"GET", StateKey(customer_id)}}, ""));
    CustomerState s;
    redisReply* r = replies[0].get();
    if (r->type == REDIS_REPLY_NIL) return s;
    if (r->type != REDIS_REPLY_STRING) return Status::Internal("state: unexpected reply");
    json j = json::parse(std::string_view(r->str, r->len), nullptr, false);
    if (j.is_discarded()) return Status::Corruption("bad contact state for '" + customer_id + "'");
    if (j.is_object()) return s;  // cjson encodes an empty array as {}
    try {
      for (const json& x : j) {
        ContactRecord c;
        c.ts = x[0].get<TimeMs>();
        c.type = static_cast<EventType>(x[1].get<int>());
        c.channel = x[2].get<std::string>();
        c.item = x[3].get<std::string>();
        c.campaign = x[4].get<std::string>();
        c.category = x[5].get<std::string>();
        c.request_id = x[6].get<std::string>();
        c.counted = x[7].get<int>() != 0;
        c.expires = x[8].get<TimeMs>();
        s.records.push_back(std::move(c));
      }
    } catch (const json::exception& e) {
      return Status::Corruption("bad contact state for '" + customer_id + "': " + e.what());
    }
    return s;
  }

  Result<std::vector<StoredEvent>> Log(const std::string& customer_id, TimeMs since,
                                       size_t limit) override {
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"ZREVRANGEBYSCORE", LogKey(customer_id), "+inf",
                                   std::to_string(since), "LIMIT", "0", std::to_string(limit)}},
                                 ""));
    redisReply* r = replies[0].get();
    if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("log: unexpected reply");
    std::vector<StoredEvent> out;
    for (size_t i = 0; i < r->elements; ++i) {
      StoredEvent e;
      if (!ParseLogMember(customer_id, std::string_view(r->element[i]->str, r->element[i]->len), &e)) {
        return Status::Corruption("bad event record for customer '" + customer_id + "'");
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  Status Export(const std::function<bool(const StoredEvent&)>& fn) override {
    bool stop = false;
    return ForEachKey("l", [&](const std::string& key, const std::string& customer) -> Status {
      if (stop) return Status::Ok();
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline({{"ZRANGE", key, "0", "-1"}}, ""));
      redisReply* r = replies[0].get();
      if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("export: unexpected reply");
      for (size_t i = 0; i < r->elements && !stop; ++i) {
        StoredEvent e;
        if (!ParseLogMember(customer, std::string_view(r->element[i]->str, r->element[i]->len), &e)) {
          return Status::Corruption("bad event record for customer '" + customer + "'");
        }
        if (!fn(e)) stop = true;
      }
      return Status::Ok();
    });
  }

  Status Compact(TimeMs now, const StateOptions& options) override {
    const std::string horizon = "(" + std::to_string(now - config_.retention);
    QM_RETURN_IF_ERROR(ForEachKey("l", [&](const std::string& key, const std::string&) -> Status {
      return Pipeline({{"ZREMRANGEBYSCORE", key, "-inf", horizon}}, "").status();
    }));
    return ForEachKey("s", [&](const std::string&, const std::string& customer) -> Status {
      json a = {{"keep", KeepArray(options)}, {"cs", options.count_service ? 1 : 0},
                {"ttl", StateTtl(options)}, {"lttl", config_.retention + kMsPerDay},
                {"now", now}, {"ev", json::array()}};
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                          Pipeline({{"EVALSHA", append_sha_, "2", StateKey(customer),
                                     LogKey(customer), a.dump()}}, append_script_));
      if (replies[0]->type == REDIS_REPLY_ERROR) return Status::Internal(replies[0]->str);
      return Status::Ok();
    });
  }

  const char* backend() const override { return "redis"; }

 private:
  std::string StateKey(const std::string& c) const { return config_.redis_prefix + ":{" + c + "}:s"; }
  std::string LogKey(const std::string& c) const { return config_.redis_prefix + ":{" + c + "}:l"; }

  // Calls fn(key, customer) for every key "<prefix>:{customer}:<suffix>".
  Status ForEachKey(const std::string& suffix,
                    const std::function<Status(const std::string&, const std::string&)>& fn) {
    std::string cursor = "0";
    const std::string head = config_.redis_prefix + ":{";
    const std::string tail = "}:" + suffix;
    do {
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                          Pipeline({{"SCAN", cursor, "MATCH", head + "*" + tail, "COUNT", "500"}}, ""));
      redisReply* r = replies[0].get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return Status::Internal("scan: bad reply");
      cursor.assign(r->element[0]->str, r->element[0]->len);
      std::vector<std::string> keys;
      for (size_t i = 0; i < r->element[1]->elements; ++i) {
        keys.emplace_back(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
      }
      for (const std::string& k : keys) {
        if (k.size() < head.size() + tail.size()) continue;
        QM_RETURN_IF_ERROR(fn(k, k.substr(head.size(), k.size() - head.size() - tail.size())));
      }
    } while (cursor != "0");
    return Status::Ok();
  }

  Result<Context> Connect() {
    struct timeval tv;
    tv.tv_sec = config_.redis_timeout / 1000;
    tv.tv_usec = (config_.redis_timeout % 1000) * 1000;
    Context c(redisConnectWithTimeout(config_.redis_host.c_str(), config_.redis_port, tv));
    const std::string where = config_.redis_host + ":" + std::to_string(config_.redis_port);
    if (!c) return Status::Unavailable("redis " + where + ": cannot allocate a connection");
    if (c->err) return Status::Unavailable("redis " + where + ": " + c->errstr);
    redisSetTimeout(c.get(), tv);
    return c;
  }

  Status LoadScripts(redisContext* c) {
    for (auto [script, sha] : {std::pair{&plan_script_, &plan_sha_}, std::pair{&append_script_, &append_sha_}}) {
      Reply r(static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %b", script->data(), script->size())));
      if (!r) return Status::Unavailable(std::string("redis: ") + c->errstr);
      if (r->type != REDIS_REPLY_STRING) {
        return Status::Internal(std::string("redis SCRIPT LOAD failed: ") + (r->str ? r->str : ""));
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (sha->empty()) sha->assign(r->str, r->len);  // a SHA1 never changes: set once
    }
    return Status::Ok();
  }

  Result<Context> Acquire() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < config_.redis_connections; });
      if (!idle_.empty()) {
        Context c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      ++open_;
    }
    Result<Context> c = Connect();
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      cv_.notify_one();
    }
    return c;
  }

  void Release(Context c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (c) idle_.push_back(std::move(c));
    else --open_;
    cv_.notify_one();
  }

  // Sends `cmds` pipelined on one connection and returns their replies. A NOSCRIPT error
  // (the server lost its script cache) reloads `script` and retries once.
  Result<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& cmds,
                                      const std::string& script) {
    QM_ASSIGN_OR_RETURN(Context c, Acquire());
    for (int attempt = 0; attempt < 2; ++attempt) {
      for (const auto& cmd : cmds) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const std::string& a : cmd) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
      }
      std::vector<Reply> replies;
      bool noscript = false;
      for (size_t i = 0; i < cmds.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(c.get(), &raw) != REDIS_OK || raw == nullptr) {
          Status s = Status::Unavailable(std::string("redis: ") + c->errstr);
          Release(nullptr);  // drop the broken connection
          return s;
        }
        replies.emplace_back(static_cast<redisReply*>(raw));
        const redisReply* r = replies.back().get();
        if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT") {
          noscript = true;
        }
      }
      if (!noscript || script.empty() || attempt == 1) {
        Release(std::move(c));
        return replies;
      }
      Status s = LoadScripts(c.get());
      if (!s.ok()) {
        Release(nullptr);
        return s;
      }
    }
    return Status::Internal("unreachable");
  }

  StoreConfig config_;
  std::string plan_script_, append_script_;
  std::mutex mu_;                    // guards the pool below and the script hashes
  std::condition_variable cv_;
  std::vector<Context> idle_;
  int open_ = 0;                     // connections handed out or idle
  std::string plan_sha_, append_sha_;
};

}  // namespace

Result<std::unique_ptr<EventStore>> OpenRedisStore(const StoreConfig& config) {
  auto store = std::make_unique<RedisStore>(config);
  QM_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace qm::policy
