#include "qianmian/training/store_events.h"

#include <algorithm>
#include <vector>

namespace qm::training {

namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xbf58476d1ce4e5b9ULL;
}

uint64_t Key(TimeMs ts, uint32_t customer, uint32_t item, EventType type, ChannelId channel) {
  uint64_t h = Mix(0, static_cast<uint64_t>(ts));
  h = Mix(h, customer);
  h = Mix(h, item);
  return Mix(h, (static_cast<uint64_t>(type) << 8) | channel);
}

}  // namespace

Status MergeStoreEvents(policy::EventStore& store, Dataset* ds, StoreMergeStats* stats) {
  StoreMergeStats local;
  if (!stats) stats = &local;
  const EventLog& ev = ds->events;
  std::vector<uint64_t> keys(ev.size());
  for (size_t e = 0; e < ev.size(); ++e) keys[e] = Key(ev.ts[e], ev.customer[e], ev.item[e], ev.type[e], ev.channel[e]);
  std::sort(keys.begin(), keys.end());
  std::vector<policy::StoredEvent> fresh;
  QM_RETURN_IF_ERROR(store.Export([&](const policy::StoredEvent& s) {
    ++stats->read;
    auto c = ds->FindCustomer(s.customer_id);
    if (!c) {
      ++stats->unknown_customer;
      return true;
    }
    auto i = ds->FindItem(s.item_id);
    if (!i) {
      ++stats->unknown_item;
      return true;
    }
    auto ch = ds->channels.Find(s.channel);
    if (!ch) {
      ++stats->unknown_channel;
      return true;
    }
    if (std::binary_search(keys.begin(), keys.end(), Key(s.ts, *c, *i, s.type, *ch))) {
      ++stats->duplicates;
      return true;
    }
    fresh.push_back(s);
    return true;
  }));
  for (const auto& s : fresh) {
    ds->events.Append(s.ts, *ds->FindCustomer(s.customer_id), *ds->FindItem(s.item_id), s.type,
                      *ds->channels.Find(s.channel), s.request_id);
  }
  stats->added = fresh.size();
  return Status::Ok();
}

}  // namespace qm::training
