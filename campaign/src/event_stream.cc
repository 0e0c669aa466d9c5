// Business events from a Redis stream through a consumer group (event_stream.h).
#include "qianmian/campaign/event_stream.h"

#include <cstdlib>

#include "redis_client.h"

namespace qm::campaign {

struct EventStream::Entry {
  std::string id;
  bool deleted = false;  // trimmed from the stream while pending: acknowledged, nothing to do
  BusinessEvent event;
  std::string error;  // not a valid event: why
};

namespace {

// The entry id's time (ms): "1733400000000-0".
TimeMs IdTime(const std::string& id) { return std::strtoll(id.c_str(), nullptr, 10); }

}  // namespace

namespace {

// [id, [field, value, ...]] -> an entry (or a deleted one).
void ParseEntry(const RedisValue& v, std::vector<EventStream::Entry>* out) {
  if (v.kind != RedisValue::kArray || v.elements.empty()) return;
  EventStream::Entry e;
  e.id = v.elements[0].str;
  if (v.elements.size() < 2 || v.elements[1].kind != RedisValue::kArray) {
    e.deleted = true;
    out->push_back(std::move(e));
    return;
  }
  const auto& f = v.elements[1].elements;
  BusinessEvent& ev = e.event;
  const EventTypeInfo* type = nullptr;
  std::vector<std::pair<std::string, std::string>> attrs;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    const std::string& k = f[i].str;
    const std::string& val = f[i + 1].str;
    if (k == "event_id") {
      ev.id = val;
    } else if (k == "customer_id") {
      ev.customer_id = val;
    } else if (k == "type") {
      ev.type = val;
      type = FindEventType(val);
    } else if (k == "ts_ms") {
      char* end = nullptr;
      ev.ts = std::strtoll(val.c_str(), &end, 10);
      if (val.empty() || *end != '\0') e.error = "ts_ms: must be a whole number (ms), not '" + val + "'";
    } else {
      attrs.emplace_back(k, val);
    }
  }
  if (ev.ts == kNoTime) ev.ts = IdTime(e.id);
  for (const auto& [k, val] : attrs) {
    AttrKind kind = AttrKind::kText;
    if (type) {
      for (const auto& [name, kd] : type->attributes) {
        if (name == k) kind = kd;
      }
    }
    if (kind == AttrKind::kNumber) {
      char* end = nullptr;
      const double x = std::strtod(val.c_str(), &end);
      if (val.empty() || *end != '\0') {
        if (e.error.empty()) e.error = "attrs." + k + ": must be a number, not '" + val + "'";
        continue;
      }
      ev.numbers[k] = x;
    } else {
      ev.texts[k] = val;
    }
  }
  if (e.error.empty()) {
    Status st = CheckEvent(ev, "entry " + e.id);
    if (!st.ok()) e.error = st.message();
  } else {
    e.error = "entry " + e.id + "." + e.error;
  }
  out->push_back(std::move(e));
}

// XREADGROUP's reply: [[key, [entry, ...]]] (nil when nothing came).
void ParseRead(const RedisValue& v, std::vector<EventStream::Entry>* out) {
  if (v.kind != RedisValue::kArray) return;
  for (const RedisValue& stream : v.elements) {
    if (stream.kind != RedisValue::kArray || stream.elements.size() < 2) continue;
    for (const RedisValue& entry : stream.elements[1].elements) ParseEntry(entry, out);
  }
}

}  // namespace

EventStream::EventStream(std::unique_ptr<RedisClient> c, StreamOptions o) : client_(std::move(c)), o_(std::move(o)) {}
EventStream::~EventStream() = default;

Result<std::unique_ptr<EventStream>> EventStream::Open(const policy::StoreConfig& store, StreamOptions o) {
  if (o.key.empty()) return Status::InvalidArgument("event stream: no key");
  if (o.consumer.empty()) return Status::InvalidArgument("event stream: no consumer name");
  if (store.redis_cluster) return Status::InvalidArgument("event stream: needs a standalone Redis, not a cluster node");
  QM_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, RedisClient::Connect(store));
  Result<RedisValue> r = client->Command({"XGROUP", "CREATE", o.key, o.group, "0", "MKSTREAM"});
  if (!r.ok() && r.status().message().find("BUSYGROUP") == std::string::npos) return r.status();
  return std::unique_ptr<EventStream>(new EventStream(std::move(client), std::move(o)));
}

Result<std::vector<EventStream::Entry>> EventStream::ReadBatch() {
  std::vector<Entry> out;
  const std::string count = std::to_string(o_.batch);
  if (pending_) {  // this consumer's own entries, delivered before and never acknowledged
    QM_ASSIGN_OR_RETURN(RedisValue v, client_->Command({"XREADGROUP", "GROUP", o_.group, o_.consumer, "COUNT", count,
                                                        "STREAMS", o_.key, "0"}));
    ParseRead(v, &out);
    if (!out.empty()) return out;
    pending_ = false;
  }
  if (rounds_++ % 10 == 0) {  // now and then: entries another consumer left pending too long
    QM_ASSIGN_OR_RETURN(RedisValue v, client_->Command({"XAUTOCLAIM", o_.key, o_.group, o_.consumer,
                                                        std::to_string(o_.claim_idle_ms), "0-0", "COUNT", count}));
    if (v.kind == RedisValue::kArray && v.elements.size() >= 2) {
      for (const RedisValue& entry : v.elements[1].elements) ParseEntry(entry, &out);
      stats_.claimed += static_cast<int64_t>(out.size());
      if (!out.empty()) return out;
    }
  }
  QM_ASSIGN_OR_RETURN(RedisValue v, client_->Blocking({"XREADGROUP", "GROUP", o_.group, o_.consumer, "COUNT", count,
                                                       "BLOCK", std::to_string(o_.block_ms), "STREAMS", o_.key, ">"},
                                                      o_.block_ms));
  ParseRead(v, &out);
  return out;
}

Status EventStream::Poll(Triggers* triggers, TimeMs now) {
  Result<std::vector<Entry>> batch = ReadBatch();
  if (!batch.ok()) {
    pending_ = true;
    return batch.status();
  }
  if (batch->empty()) return Status::Ok();
  stats_.read += static_cast<int64_t>(batch->size());
  std::vector<BusinessEvent> events;
  std::vector<std::string> ack = {"XACK", o_.key, o_.group};
  for (const Entry& e : *batch) {
    ack.push_back(e.id);
    if (e.deleted) continue;
    if (!e.error.empty()) {
      // Kept with its reason, then acknowledged: a bad entry is never lost nor retried forever.
      Status st = client_->Command({"XADD", o_.key + ":rejected", "*", "entry", e.id, "reason", e.error}).status();
      if (!st.ok()) {
        pending_ = true;
        return st;
      }
      ++stats_.rejected;
      continue;
    }
    events.push_back(e.event);
  }
  if (!events.empty()) {
    Result<std::vector<TriggerDecision>> d = triggers->Process(events, now);
    if (!d.ok()) {
      pending_ = true;  // not acknowledged: read again (the decisions made replay)
      return d.status();
    }
    stats_.decided += static_cast<int64_t>(d->size());
  }
  QM_ASSIGN_OR_RETURN(RedisValue acked, client_->Command(ack));
  stats_.acked += acked.integer;
  return Status::Ok();
}

}  // namespace qm::campaign
