// Shared event store: Redis via hiredis. Per customer c (hash-tagged, so one cluster slot):
//   <prefix>:{c}:s  a string: the contact state, "QM\x02" + an 8-byte write token + EncodeState;
//                   expires after the longest state horizon. (Older versions stored a JSON array
//                   of records; it is still read, and replaced on the next write.)
//   <prefix>:{c}:l  a sorted set of events scored by ts; member JSON [ts,type,channel,item,
//                   request,campaign,category,service]; expires after the retention
//   <prefix>:{c}:d  a sorted set of decisions (the decision log) scored by ts; member
//                   EncodeDecision (binary); expires after the retention. Written with plain ZADD:
//                   decisions touch no contact state.
// Governed records (campaigns), all of a collection in one hash slot:
//   <prefix>:rec:{<collection>}:v:<id>  a hash: rev (the revision), value
//   <prefix>:rec:{<collection>}:a:<id>  a list: the audit entries, oldest first
//   <prefix>:rec:{<collection>}:ids     a set: the ids written
// written together by one Lua script that compares the revision first (kRecordLua). They never
// expire.
// Check-and-count runs the same C++ RunPlan/ApplyEvent as the embedded store on a snapshot of
// the state (GET), then commits with ONE Lua script per customer that writes the new state and
// the log records only if the state's token is still the one read (compare-and-set). A
// concurrent writer makes the script refuse, and the step is run again on the new state; so
// per customer every check-and-count is atomic. Durability is the Redis server's (appendfsync).
// With [store] redis_cluster (issue 21) the store talks to a Redis Cluster: a slot map from
// CLUSTER SLOTS sends each command to its slot's master (a pipeline is split per node), a MOVED
// reply refreshes the map and sends the command again, an ASK reply sends it once to the named
// node after ASKING; a scan visits every master. A customer's keys share one hash tag, so each
// compare-and-set script runs on one node.
#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "store_backends.h"

namespace qm::policy {
namespace {

using json = nlohmann::json;

// Commits a customer's new state if nobody wrote it since it was read.
// KEYS: state, log. ARGV[1]: the token read ("" = no state; "QM\2" + 8 bytes; or a whole
// old-format JSON state). ARGV[2]: the new state ("" = delete). ARGV[3]: state TTL (ms).
// ARGV[4]: log TTL (ms). A state TTL of 0: no expiry. ARGV[5..]: score, member pairs added to the log.
// Returns 1 when written, 0 when the state changed meanwhile.
constexpr const char* kCommitLua = R"LUA(
local cur
if #ARGV[1] == 11 and string.sub(ARGV[1], 1, 3) == 'QM\2' then
  cur = redis.call('GETRANGE', KEYS[1], 0, 10)
else
  cur = redis.call('GET', KEYS[1]) or ''
end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
elseif ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if #ARGV >= 5 then
  for i = 5, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
)LUA";

// Writes a governed record if its revision is still the one expected.
// KEYS: record, audit, ids. ARGV: expected revision, value, audit entry, id.
// Returns {1, new revision} when written, {0, current revision} when another write came first.
// Deletes a governed record (value, audit list, id) if its revision is ARGV[1]: {1, rev} done,
// {0, rev} not (rev 0: there is none).
constexpr const char* kDeleteRecordLua = R"LUA(
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev == 0 or rev ~= tonumber(ARGV[1]) then return {0, rev} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return {1, rev}
)LUA";

constexpr const char* kRecordLua = R"LUA(
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return {0, rev} end
redis.call('HSET', KEYS[1], 'rev', rev + 1, 'value', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return {1, rev + 1}
)LUA";

constexpr std::string_view kMagic("QM\x02", 3);
constexpr size_t kHeader = 11;  // magic + token

// Whether TCP socket `fd` is connected to itself (the same local and peer address).
bool ConnectedToItself(int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t ll = sizeof local, pl = sizeof peer;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) {
    return false;
  }
  return ll == pl && std::memcmp(&local, &peer, ll) == 0;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c) redisFree(c);
  }
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

// The state key's TTL: past the longest horizon of its records, or 0 (no expiry) while it holds
// an opt-out, which is kept for good.
TimeMs StateTtl(const StateOptions& o, const CustomerState& state) {
  for (const ContactRecord& r : state.records) {
    if (r.type == EventType::kOptOut) return 0;
  }
  TimeMs m = 0;
  for (int t = 0; t < kNumEventTypes; ++t) {
    if (static_cast<EventType>(t) != EventType::kOptOut) m = std::max(m, o.KeepFor(static_cast<EventType>(t)));
  }
  return m + kMsPerDay;
}

std::string LogMember(const StoredEvent& e) {
  std::string m = "[" + std::to_string(e.ts) + "," + std::to_string(static_cast<int>(e.type)) + ",";
  JsonString(&m, e.channel);
  m += ',';
  JsonString(&m, e.item_id);
  m += ',';
  JsonString(&m, e.request_id);
  m += ',';
  JsonString(&m, e.campaign);
  m += ',';
  JsonString(&m, e.category);
  m += e.service ? ",1]" : ",0]";
  return m;
}

// A state as older versions stored it: a JSON array of records [ts,type,channel,item,campaign,
// category,request,counted,expires].
bool ParseJsonState(std::string_view raw, CustomerState* s) {
  s->records.clear();
  json j = json::parse(raw, nullptr, false);
  if (j.is_discarded()) return false;
  if (j.is_object()) return j.empty();  // Lua's cjson encodes an empty array as {}
  if (!j.is_array()) return false;
  try {
    for (const json& x : j) {
      ContactRecord c;
      c.ts = x.at(0).get<TimeMs>();
      const int t = x.at(1).get<int>();
      if (t < 0 || t >= kNumEventTypes) return false;
      c.type = static_cast<EventType>(t);
      c.channel = x.at(2).get<std::string>();
      c.item = x.at(3).get<std::string>();
      c.campaign = x.at(4).get<std::string>();
      c.category = x.at(5).get<std::string>();
      c.request_id = x.at(6).get<std::string>();
      c.counted = x.at(7).get<int>() != 0;
      c.expires = x.at(8).get<TimeMs>();
      s->records.push_back(std::move(c));
    }
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

// An error reply that says the server cannot answer now but will (restarting and loading its
// data, busy with a script, a cluster failing over): `unavailable`, never `internal`.
bool TransientError(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ERROR || r->str == nullptr) return false;
  const std::string_view m(r->str, r->len);
  for (std::string_view p : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"}) {
    if (m.substr(0, p.size()) == p) return true;
  }
  return false;
}

// A fresh write token: random, so a state deleted and written again never repeats one.
std::string NewToken() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ std::hash<std::thread::id>()(std::this_thread::get_id()));
  const uint64_t v = rng();
  std::string t(kMagic);
  for (int i = 0; i < 8; ++i) t.push_back(static_cast<char>(v >> (8 * i)));
  return t;
}

}  // namespace

int RedisKeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  uint16_t crc = 0;  // CRC16-CCITT (XMODEM), as the cluster specification
  for (unsigned char b : key) {
    crc ^= static_cast<uint16_t>(b) << 8;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : crc << 1;
  }
  return crc & 16383;
}

namespace {

// The key a command addresses ("" for one that goes to a node, not a key: SCAN, CLUSTER).
std::string_view KeyOf(const std::vector<std::string>& cmd) {
  if (cmd.empty() || cmd[0] == "SCAN" || cmd[0] == "CLUSTER" || cmd[0] == "ASKING") return {};
  if (cmd[0] == "EVALSHA" || cmd[0] == "EVAL") return cmd.size() > 3 && cmd[2] != "0" ? cmd[3] : std::string_view();
  return cmd.size() > 1 ? std::string_view(cmd[1]) : std::string_view();
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381": the kind and the node; "" otherwise.
std::string Redirection(const redisReply* r, std::string* node) {
  if (r == nullptr || r->type != REDIS_REPLY_ERROR || r->str == nullptr) return "";
  const std::string m(r->str, r->len);
  for (const char* kind : {"MOVED ", "ASK "}) {
    if (m.rfind(kind, 0) != 0) continue;
    const size_t sp = m.find(' ', std::string_view(kind).size());
    if (sp == std::string::npos) return "";
    *node = m.substr(sp + 1);
    return std::string(kind, std::string_view(kind).size() - 1);
  }
  return "";
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
  explicit RedisStore(const StoreConfig& c) : config_(c) {}

  Status Init() {
    seed_ = NodeAt(config_.redis_host + ":" + std::to_string(config_.redis_port));
    QM_ASSIGN_OR_RETURN(Context c, Acquire(seed_));
    Status st = LoadScript(c.get());
    Release(seed_, st.ok() ? std::move(c) : nullptr);
    QM_RETURN_IF_ERROR(st);
    if (config_.redis_cluster) QM_RETURN_IF_ERROR(RefreshSlots());
    return Status::Ok();
  }

  Status Append(const std::vector<StoredEvent>& events, const StateOptions& options) override {
    std::map<std::string, std::vector<const StoredEvent*>> by_customer;
    for (const StoredEvent& e : events) {
      if (e.customer_id.empty()) return Status::InvalidArgument("event without a customer id");
      by_customer[e.customer_id].push_back(&e);
    }
    std::vector<std::string> customers;
    std::vector<const std::vector<const StoredEvent*>*> evs;
    for (const auto& [customer, list] : by_customer) {
      customers.push_back(customer);
      evs.push_back(&list);
    }
    return Transact(customers, [&](size_t k, CustomerState* state, Commit* commit) {
      TimeMs newest = kNoTime / 2;
      for (const StoredEvent* e : *evs[k]) {
        newest = std::max(newest, e->ts);
        if (!ApplyEvent(*e, options, state)) continue;  // a duplicate
        commit->log.push_back({e->ts, LogMember(*e)});
      }
      const bool compacted = CompactState(newest, options, state);
      commit->write = !commit->log.empty() || compacted;
      commit->state_ttl = StateTtl(options, *state);
    });
  }

  // A check reads the state once; a reservation runs RunPlan on the state read and commits it
  // with the compare-and-set script (again on the new state if another writer came first).
  Result<PlanOutcome> Apply(const ContactPlan& plan) override {
    QM_RETURN_IF_ERROR(CheckPlan(plan));
    if (plan.max_take == 0) {
      QM_ASSIGN_OR_RETURN(CustomerState state, State(plan.customer_id));
      bool changed = false;
      return RunPlan(plan, &state, &changed);
    }
    PlanOutcome out;
    QM_RETURN_IF_ERROR(Transact({plan.customer_id}, [&](size_t, CustomerState* state, Commit* commit) {
      out = ReserveInCommit(plan, state, commit);
    }));
    return out;
  }

  // Every customer's state read in one pipeline and committed in another; plans of the same
  // customer run in order on that customer's state.
  Result<std::vector<PlanOutcome>> ApplyMany(const std::vector<ContactPlan>& plans) override {
    std::map<std::string_view, std::vector<size_t>> by_customer;
    for (size_t i = 0; i < plans.size(); ++i) {
      QM_RETURN_IF_ERROR(CheckPlan(plans[i]));
      by_customer[plans[i].customer_id].push_back(i);
    }
    std::vector<std::string> customers;
    std::vector<const std::vector<size_t>*> of;
    for (const auto& [customer, list] : by_customer) {
      customers.emplace_back(customer);
      of.push_back(&list);
    }
    std::vector<PlanOutcome> out(plans.size());
    QM_RETURN_IF_ERROR(Transact(customers, [&](size_t k, CustomerState* state, Commit* commit) {
      for (size_t i : *of[k]) {
        const ContactPlan& plan = plans[i];
        if (plan.max_take == 0) {  // a check persists nothing: it runs on a copy
          CustomerState copy = *state;
          bool changed = false;
          out[i] = RunPlan(plan, &copy, &changed);
          continue;
        }
        out[i] = ReserveInCommit(plan, state, commit);
      }
    }));
    return out;
  }

  Result<CustomerState> State(const std::string& customer_id) override {
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline({{"GET", StateKey(customer_id)}}, false));
    CustomerState s;
    std::string token;
    QM_RETURN_IF_ERROR(ParseState(customer_id, replies[0].get(), &s, &token));
    return s;
  }

  Result<std::vector<StoredEvent>> Log(const std::string& customer_id, TimeMs since, size_t limit) override {
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"ZREVRANGEBYSCORE", LogKey(customer_id), "+inf", std::to_string(since), "LIMIT", "0",
                                   std::to_string(limit)}},
                                 false));
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

  Status AppendDecisions(const std::vector<DecisionRecord>& decisions) override {
    std::map<std::string, std::vector<std::string>> zadd;  // customer -> ZADD arguments
    for (const DecisionRecord& d : decisions) {
      if (d.customer_id.empty()) return Status::InvalidArgument("decision without a customer id");
      std::vector<std::string>& cmd = zadd[d.customer_id];
      if (cmd.empty()) cmd = {"ZADD", DecisionKey(d.customer_id)};
      cmd.push_back(std::to_string(d.ts));
      cmd.push_back(EncodeDecision(d));
    }
    if (zadd.empty()) return Status::Ok();
    std::vector<std::vector<std::string>> cmds;
    const std::string ttl = std::to_string(config_.retention + kMsPerDay);
    for (auto& [customer, cmd] : zadd) {
      cmds.push_back(std::move(cmd));
      cmds.push_back({"PEXPIRE", DecisionKey(customer), ttl});
    }
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(cmds, false));
    for (const Reply& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) return Status::Internal(std::string("append decisions: ") + r->str);
    }
    return Status::Ok();
  }

  Result<std::vector<DecisionRecord>> Decisions(const std::string& customer_id, TimeMs since, size_t limit) override {
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"ZREVRANGEBYSCORE", DecisionKey(customer_id), "+inf", std::to_string(since), "LIMIT",
                                   "0", std::to_string(limit)}},
                                 false));
    redisReply* r = replies[0].get();
    if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("decisions: unexpected reply");
    std::vector<DecisionRecord> out(r->elements);
    for (size_t i = 0; i < r->elements; ++i) {
      if (!DecodeDecision(std::string_view(r->element[i]->str, r->element[i]->len), &out[i])) {
        return Status::Corruption("bad decision record for customer '" + customer_id + "'");
      }
    }
    return out;
  }

  Status ExportDecisions(const std::function<bool(const DecisionRecord&)>& fn) override {
    bool stop = false;
    return ForEachKey("d", [&](const std::string& key, const std::string& customer) -> Status {
      if (stop) return Status::Ok();
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline({{"ZRANGE", key, "0", "-1"}}, false));
      redisReply* r = replies[0].get();
      if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("export decisions: unexpected reply");
      for (size_t i = 0; i < r->elements && !stop; ++i) {
        DecisionRecord d;
        if (!DecodeDecision(std::string_view(r->element[i]->str, r->element[i]->len), &d)) {
          return Status::Corruption("bad decision record for customer '" + customer + "'");
        }
        if (!fn(d)) stop = true;
      }
      return Status::Ok();
    });
  }

  Status Export(const std::function<bool(const StoredEvent&)>& fn) override {
    bool stop = false;
    return ForEachKey("l", [&](const std::string& key, const std::string& customer) -> Status {
      if (stop) return Status::Ok();
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline({{"ZRANGE", key, "0", "-1"}}, false));
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

  Status Compact(TimeMs now, const StateOptions& options, const StepRunner& /*locked: no local locks*/) override {
    const std::string horizon = "(" + std::to_string(now - config_.retention);
    for (const char* log : {"l", "d"}) {
      QM_RETURN_IF_ERROR(ForEachKey(log, [&](const std::string& key, const std::string&) -> Status {
        return Pipeline({{"ZREMRANGEBYSCORE", key, "-inf", horizon}}, false).status();
      }));
    }
    return ForEachKey("s", [&](const std::string&, const std::string& customer) -> Status {
      return Transact({customer}, [&](size_t, CustomerState* state, Commit* commit) {
        commit->write = CompactState(now, options, state);
        commit->state_ttl = StateTtl(options, *state);
      });
    });
  }

  Result<GovernedRecord> ReadRecord(const std::string& collection, const std::string& id) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"HMGET", RecordKey(collection, 'v', id), "rev", "value"}}, false));
    GovernedRecord r;
    QM_RETURN_IF_ERROR(ParseRecord(collection, id, replies[0].get(), &r));
    if (r.revision == 0) return Status::NotFound("no " + collection + " record '" + id + "'");
    return r;
  }

  Result<std::vector<GovernedRecord>> ListRecords(const std::string& collection) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, nullptr));
    QM_ASSIGN_OR_RETURN(std::vector<Reply> ids, Pipeline({{"SMEMBERS", RecordKey(collection, 'i', "")}}, false));
    const redisReply* r = ids[0].get();
    if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("list records: unexpected reply");
    std::vector<std::string> names;
    for (size_t i = 0; i < r->elements; ++i) names.emplace_back(r->element[i]->str, r->element[i]->len);
    std::sort(names.begin(), names.end());
    std::vector<std::vector<std::string>> gets;
    for (const std::string& id : names) gets.push_back({"HMGET", RecordKey(collection, 'v', id), "rev", "value"});
    std::vector<GovernedRecord> out(names.size());
    if (names.empty()) return out;
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(gets, false));
    for (size_t i = 0; i < names.size(); ++i) {
      QM_RETURN_IF_ERROR(ParseRecord(collection, names[i], replies[i].get(), &out[i]));
    }
    return out;
  }

  Status WriteRecord(const std::string& collection, const std::string& id, uint64_t expected_revision,
                     const std::string& value, const std::string& audit) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    QM_ASSIGN_OR_RETURN(
        std::vector<Reply> replies,
        Pipeline({{"EVAL", kRecordLua, "3", RecordKey(collection, 'v', id), RecordKey(collection, 'a', id),
                   RecordKey(collection, 'i', ""), std::to_string(expected_revision), value, audit, id}},
                 false));
    const redisReply* r = replies[0].get();
    if (r->type == REDIS_REPLY_ERROR) return Status::Internal("write a record: " + std::string(r->str, r->len));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
      return Status::Internal("write a record: unexpected reply");
    }
    if (r->element[0]->integer == 1) return Status::Ok();
    return Status::Conflict(collection + " record '" + id + "' is at revision " +
                            std::to_string(r->element[1]->integer) + ", not " + std::to_string(expected_revision) +
                            ": a concurrent change won");
  }

  Status DeleteRecord(const std::string& collection, const std::string& id, uint64_t expected_revision) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    QM_ASSIGN_OR_RETURN(
        std::vector<Reply> replies,
        Pipeline({{"EVAL", kDeleteRecordLua, "3", RecordKey(collection, 'v', id), RecordKey(collection, 'a', id),
                   RecordKey(collection, 'i', ""), std::to_string(expected_revision), id}},
                 false));
    const redisReply* r = replies[0].get();
    if (r->type == REDIS_REPLY_ERROR) return Status::Internal("delete a record: " + std::string(r->str, r->len));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
      return Status::Internal("delete a record: unexpected reply");
    }
    if (r->element[0]->integer == 1) return Status::Ok();
    if (r->element[1]->integer == 0) return Status::NotFound("no " + collection + " record '" + id + "'");
    return Status::Conflict(collection + " record '" + id + "' is at revision " +
                            std::to_string(r->element[1]->integer) + ", not " + std::to_string(expected_revision) +
                            ": a concurrent change won");
  }

  Result<std::vector<std::string>> RecordAudit(const std::string& collection, const std::string& id) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                        Pipeline({{"LRANGE", RecordKey(collection, 'a', id), "0", "-1"}}, false));
    const redisReply* r = replies[0].get();
    if (r->type != REDIS_REPLY_ARRAY) return Status::Internal("read an audit log: unexpected reply");
    std::vector<std::string> out;
    for (size_t i = 0; i < r->elements; ++i) out.emplace_back(r->element[i]->str, r->element[i]->len);
    return out;
  }

  const char* backend() const override { return "redis"; }

 private:
  // A governed record's keys: 'v' its value, 'a' its audit list, 'i' the collection's id set.
  std::string RecordKey(const std::string& collection, char kind, const std::string& id) const {
    const std::string head = config_.redis_prefix + ":rec:{" + collection + "}:";
    if (kind == 'i') return head + "ids";
    return head + kind + ":" + id;
  }

  // An HMGET rev value reply; revision 0 when the record does not exist.
  static Status ParseRecord(const std::string& collection, const std::string& id, const redisReply* r,
                            GovernedRecord* out) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return Status::Internal("read a record: unexpected reply");
    out->id = id;
    out->revision = 0;
    out->value.clear();
    if (r->element[0]->type == REDIS_REPLY_NIL) return Status::Ok();
    char* end = nullptr;
    const std::string rev(r->element[0]->str, r->element[0]->len);
    out->revision = std::strtoull(rev.c_str(), &end, 10);
    if (end == rev.c_str() || *end != '\0' || r->element[1]->type != REDIS_REPLY_STRING) {
      return Status::Corruption("bad " + collection + " record '" + id + "'");
    }
    out->value.assign(r->element[1]->str, r->element[1]->len);
    return Status::Ok();
  }
  static constexpr int kMaxAttempts = 64;

  // One server's connection pool.
  struct Node {
    std::string host;
    int port = 0;
    std::vector<Context> idle;
    int open = 0;  // connections handed out or idle
  };

  // What a transaction writes for one customer: the state (when `write`), and log records.
  struct Commit {
    bool write = false;
    TimeMs state_ttl = 0;
    std::vector<std::pair<TimeMs, std::string>> log;  // score, member
  };
  using Update = std::function<void(size_t k, CustomerState* state, Commit* commit)>;

  static Status CheckPlan(const ContactPlan& plan) {
    if (plan.customer_id.empty()) return Status::InvalidArgument("plan without a customer id");
    if (plan.max_take > 0 && plan.request_id.empty()) {
      return Status::InvalidArgument("a reservation needs a request id");
    }
    return Status::Ok();
  }

  // Runs a reserving plan on the state read: the sends it took go into the commit's log records.
  PlanOutcome ReserveInCommit(const ContactPlan& plan, CustomerState* state, Commit* commit) const {
    bool changed = false;
    PlanOutcome out = RunReserving(plan, state, &changed, [&](const StoredEvent& e) {
      commit->log.push_back({e.ts, LogMember(e)});
    });
    if (changed) {
      commit->write = true;
      commit->state_ttl = StateTtl(plan.options, *state);
    }
    return out;
  }

  // Decodes a GET reply into *s, and the token a commit must find (*token).
  Status ParseState(const std::string& customer, const redisReply* r, CustomerState* s, std::string* token) const {
    s->records.clear();
    token->clear();
    if (r->type == REDIS_REPLY_NIL) return Status::Ok();
    if (r->type != REDIS_REPLY_STRING) return Status::Internal("state: unexpected reply");
    std::string_view v(r->str, r->len);
    if (v.size() >= kHeader && v.substr(0, kMagic.size()) == kMagic) {
      token->assign(v.substr(0, kHeader));
      if (DecodeState(v.substr(kHeader), s)) return Status::Ok();
    } else {
      token->assign(v);
      if (ParseJsonState(v, s)) return Status::Ok();
    }
    return Status::Corruption("bad contact state for customer '" + customer + "'");
  }

  // For each customer k: reads its state, lets `update` change it, and commits the change with
  // the compare-and-set script, all customers in one pipeline per step. A customer whose state
  // another writer changed in between is read and updated again (`update` runs again from the
  // new state, so it must not keep results of an earlier run).
  Status Transact(const std::vector<std::string>& customers, const Update& update) {
    std::vector<size_t> pending(customers.size());
    for (size_t k = 0; k < pending.size(); ++k) pending[k] = k;
    thread_local std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; !pending.empty(); ++attempt) {
      if (attempt == kMaxAttempts) {
        return Status::Unavailable("redis: the contact state of customer '" + customers[pending[0]] +
                                   "' kept changing; gave up after " + std::to_string(kMaxAttempts) + " attempts");
      }
      if (attempt > 0) {  // back off a random while, longer after each conflict
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % (50u * std::min(attempt, 20))));
      }
      std::vector<std::vector<std::string>> gets;
      for (size_t k : pending) gets.push_back({"GET", StateKey(customers[k])});
      QM_ASSIGN_OR_RETURN(std::vector<Reply> states, Pipeline(gets, false));
      std::vector<std::vector<std::string>> commits;
      std::vector<size_t> committing;
      for (size_t p = 0; p < pending.size(); ++p) {
        const size_t k = pending[p];
        CustomerState state;
        std::string token;
        QM_RETURN_IF_ERROR(ParseState(customers[k], states[p].get(), &state, &token));
        Commit commit;
        update(k, &state, &commit);
        if (!commit.write && commit.log.empty()) continue;
        std::string value;
        if (!state.records.empty()) value = NewToken() + EncodeState(state);
        std::vector<std::string> cmd = {"EVALSHA",
                                        commit_sha_,
                                        "2",
                                        StateKey(customers[k]),
                                        LogKey(customers[k]),
                                        std::move(token),
                                        std::move(value),
                                        std::to_string(commit.state_ttl),
                                        std::to_string(config_.retention + kMsPerDay)};
        for (auto& [score, member] : commit.log) {
          cmd.push_back(std::to_string(score));
          cmd.push_back(std::move(member));
        }
        commits.push_back(std::move(cmd));
        committing.push_back(k);
      }
      pending.clear();
      if (commits.empty()) break;
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(commits, true));
      for (size_t c = 0; c < replies.size(); ++c) {
        const redisReply* r = replies[c].get();
        if (r->type == REDIS_REPLY_ERROR) return Status::Internal(std::string("commit script: ") + r->str);
        if (r->type != REDIS_REPLY_INTEGER) return Status::Internal("commit script: bad reply");
        if (r->integer == 0) pending.push_back(committing[c]);
      }
    }
    return Status::Ok();
  }

  std::string StateKey(const std::string& c) const { return config_.redis_prefix + ":{" + c + "}:s"; }
  std::string LogKey(const std::string& c) const { return config_.redis_prefix + ":{" + c + "}:l"; }
  std::string DecisionKey(const std::string& c) const { return config_.redis_prefix + ":{" + c + "}:d"; }

  // Calls fn(key, customer) for every key "<prefix>:{customer}:<suffix>".
  Status ForEachKey(const std::string& suffix,
                    const std::function<Status(const std::string&, const std::string&)>& fn) {
    if (!config_.redis_cluster) return ForEachKeyOn(seed_, suffix, fn);
    QM_RETURN_IF_ERROR(RefreshSlots());
    for (Node* node : Masters()) QM_RETURN_IF_ERROR(ForEachKeyOn(node, suffix, fn));
    return Status::Ok();
  }

  // ForEachKey on one server (a cluster's master holds the keys of its slots).
  Status ForEachKeyOn(Node* node, const std::string& suffix,
                      const std::function<Status(const std::string&, const std::string&)>& fn) {
    std::string cursor = "0";
    const std::string head = config_.redis_prefix + ":{";
    const std::string tail = "}:" + suffix;
    do {
      QM_ASSIGN_OR_RETURN(std::vector<Reply> replies,
                          PipelineOn(node, {{"SCAN", cursor, "MATCH", head + "*" + tail, "COUNT", "500"}}, false));
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

  Result<Context> Connect(const Node& node) {
    struct timeval tv;
    tv.tv_sec = config_.redis_timeout / 1000;
    tv.tv_usec = (config_.redis_timeout % 1000) * 1000;
    Context c(redisConnectWithTimeout(node.host.c_str(), node.port, tv));
    const std::string where = node.host + ":" + std::to_string(node.port);
    if (!c) return Status::Unavailable("redis " + where + ": cannot allocate a connection");
    if (c->err) return Status::Unavailable("redis " + where + ": " + c->errstr);
    if (ConnectedToItself(c->fd)) {
      // With nothing listening on a port of the ephemeral range, TCP may connect a socket to
      // itself (its local port chosen equal to the server's): every reply would be our own
      // request. Refused like a refused connection.
      return Status::Unavailable("redis " + where + ": not listening (the connection reached itself)");
    }
    redisSetTimeout(c.get(), tv);
    if (!config_.redis_password.empty()) {
      const std::string& pw = config_.redis_password;
      const std::string& user = config_.redis_user;
      Reply r(static_cast<redisReply*>(
          user.empty() ? redisCommand(c.get(), "AUTH %b", pw.data(), pw.size())
                       : redisCommand(c.get(), "AUTH %b %b", user.data(), user.size(), pw.data(), pw.size())));
      if (!r) return Status::Unavailable("redis " + where + ": " + c->errstr);
      // A refused password is a configuration error: retrying cannot help.
      if (r->type == REDIS_REPLY_ERROR) {
        return Status::InvalidArgument("redis " + where +
                                       ": AUTH with store.redis_password refused: " + std::string(r->str, r->len));
      }
    }
    return c;
  }

  Status LoadScript(redisContext* c) {
    Reply r(static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %s", kCommitLua)));
    if (!r) return Status::Unavailable(std::string("redis: ") + c->errstr);
    if (TransientError(r.get())) return Status::Unavailable(std::string("redis: ") + r->str);
    if (r->type != REDIS_REPLY_STRING) {
      return Status::Internal(std::string("redis SCRIPT LOAD failed: ") + (r->str ? r->str : ""));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (commit_sha_.empty()) commit_sha_.assign(r->str, r->len);  // a SHA1 never changes: set once
    return Status::Ok();
  }

  Result<Context> Acquire(Node* node) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !node->idle.empty() || node->open < config_.redis_connections; });
      if (!node->idle.empty()) {
        Context c = std::move(node->idle.back());
        node->idle.pop_back();
        return c;
      }
      ++node->open;
    }
    Result<Context> c = Connect(*node);
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      --node->open;
      cv_.notify_all();
    }
    return c;
  }

  void Release(Node* node, Context c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (c)
      node->idle.push_back(std::move(c));
    else
      --node->open;
    cv_.notify_all();
  }

  // The pool of the server at "host:port", made on first use.
  Node* NodeAt(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& n = nodes_[address];
    if (!n) {
      n = std::make_unique<Node>();
      const size_t colon = address.rfind(':');
      n->host = address.substr(0, colon);
      n->port = colon == std::string::npos ? 6379 : std::atoi(address.c_str() + colon + 1);
    }
    return n.get();
  }

  // Cluster: the slot map from CLUSTER SLOTS, asked of the known nodes in turn.
  Status RefreshSlots() {
    std::vector<Node*> known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [address, n] : nodes_) known.push_back(n.get());
    }
    Status last = Status::Unavailable("redis cluster: no node answered CLUSTER SLOTS");
    for (Node* node : known) {
      Result<std::vector<Reply>> r = PipelineOn(node, {{"CLUSTER", "SLOTS"}}, false);
      if (!r.ok()) {
        last = r.status();
        continue;
      }
      const redisReply* slots = (*r)[0].get();
      if (slots->type == REDIS_REPLY_ERROR) {
        return Status::InvalidArgument(
            "redis " + node->host + ":" + std::to_string(node->port) +
            " is not a cluster node (store.redis_cluster is set): " + std::string(slots->str, slots->len));
      }
      if (slots->type != REDIS_REPLY_ARRAY) return Status::Internal("CLUSTER SLOTS: bad reply");
      std::vector<Node*> owners(16384, nullptr);
      for (size_t i = 0; i < slots->elements; ++i) {
        const redisReply* range = slots->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
        const redisReply* master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
        std::string host(master->element[0]->str, master->element[0]->len);
        if (host.empty()) host = node->host;  // "the node you asked"
        Node* owner = NodeAt(host + ":" + std::to_string(master->element[1]->integer));
        for (long long slot = range->element[0]->integer; slot <= range->element[1]->integer && slot < 16384; ++slot) {
          owners[slot] = owner;
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      slots_ = std::move(owners);
      return Status::Ok();
    }
    return last;
  }

  // The cluster's masters (the nodes owning a slot).
  std::vector<Node*> Masters() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Node*> out;
    for (Node* n : slots_) {
      if (n && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
  }

  Node* NodeOfKey(std::string_view key) {
    if (key.empty()) return seed_;
    std::lock_guard<std::mutex> lock(mu_);
    Node* n = slots_.empty() ? nullptr : slots_[RedisKeySlot(key)];
    return n ? n : seed_;
  }

  // Sends `cmds` and returns their replies. Without a cluster: one pipeline to the server. With
  // one: a pipeline per slot owner; commands a MOVED refused go again after the slot map is
  // refreshed, those an ASK refused go once to the named node after ASKING; up to 5 rounds.
  Result<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& cmds, bool script) {
    if (!config_.redis_cluster) return PipelineOn(seed_, cmds, script);
    std::vector<Reply> replies(cmds.size());
    std::vector<size_t> pending(cmds.size());
    for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
    std::vector<std::string> ask(cmds.size());  // the node an ASK named, for the next round
    for (int round = 0; round < 5 && !pending.empty(); ++round) {
      std::map<Node*, std::vector<size_t>> by_node;
      for (size_t i : pending) by_node[ask[i].empty() ? NodeOfKey(KeyOf(cmds[i])) : NodeAt(ask[i])].push_back(i);
      std::vector<size_t> again;
      bool moved = false;
      for (auto& [node, idx] : by_node) {
        std::vector<std::vector<std::string>> sub;
        std::vector<size_t> at;  // idx[j]'s reply in the sub-pipeline's replies
        for (size_t i : idx) {
          if (!ask[i].empty()) sub.push_back({"ASKING"});
          at.push_back(sub.size());
          sub.push_back(cmds[i]);
        }
        QM_ASSIGN_OR_RETURN(std::vector<Reply> got, PipelineOn(node, sub, script));
        for (size_t j = 0; j < idx.size(); ++j) {
          const size_t i = idx[j];
          std::string target;
          const std::string kind = Redirection(got[at[j]].get(), &target);
          ask[i].clear();
          if (kind.empty()) {
            replies[i] = std::move(got[at[j]]);
            continue;
          }
          again.push_back(i);
          if (kind == "ASK") ask[i] = target;
          if (kind == "MOVED") moved = true;
        }
      }
      if (moved) QM_RETURN_IF_ERROR(RefreshSlots());
      pending = std::move(again);
    }
    if (!pending.empty()) return Status::Unavailable("redis cluster: a slot kept moving (5 redirections)");
    return replies;
  }

  // Sends `cmds` pipelined on one connection and returns their replies. With `script`, the
  // commands a NOSCRIPT error refused (the server lost its script cache: they never ran) are
  // sent again, once, after reloading the commit script. Unavailable when the connection breaks
  // or any reply is a TransientError (e.g. LOADING while a restarted server reads its AOF).
  Result<std::vector<Reply>> PipelineOn(Node* node, const std::vector<std::vector<std::string>>& cmds, bool script) {
    QM_ASSIGN_OR_RETURN(Context c, Acquire(node));
    std::vector<Reply> replies(cmds.size());
    std::vector<size_t> send(cmds.size());
    for (size_t i = 0; i < send.size(); ++i) send[i] = i;
    Status transient;  // a TransientError reply: the whole pipeline is `unavailable`
    for (int attempt = 0; attempt < 2 && !send.empty(); ++attempt) {
      if (attempt == 1) {
        Status s = LoadScript(c.get());
        if (!s.ok()) {
          Release(node, nullptr);
          return s;
        }
      }
      for (size_t i : send) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const std::string& a : cmds[i]) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
      }
      std::vector<size_t> refused;
      for (size_t i : send) {
        void* raw = nullptr;
        if (redisGetReply(c.get(), &raw) != REDIS_OK || raw == nullptr) {
          Status s = Status::Unavailable(std::string("redis: ") + c->errstr);
          Release(node, nullptr);  // drop the broken connection
          return s;
        }
        replies[i].reset(static_cast<redisReply*>(raw));
        const redisReply* r = replies[i].get();
        if (TransientError(r) && transient.ok()) transient = Status::Unavailable(std::string("redis: ") + r->str);
        if (script && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT") {
          refused.push_back(i);
        }
      }
      send = std::move(refused);
      if (!transient.ok()) break;
    }
    Release(node, std::move(c));
    if (!transient.ok()) return transient;
    return replies;
  }

  StoreConfig config_;
  std::mutex mu_;  // guards the pools, the slot map and the script hash
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // "host:port" -> its pool
  Node* seed_ = nullptr;                                // store.redis_host:redis_port
  std::vector<Node*> slots_;                            // cluster: slot -> master (empty until known)
  std::string commit_sha_;
};

}  // namespace

Result<std::unique_ptr<EventStore>> OpenRedisStore(const StoreConfig& config) {
  auto store = std::make_unique<RedisStore>(config);
  QM_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace qm::policy
