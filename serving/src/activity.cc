#include "activity.h"

#include <algorithm>

namespace qm::serving {

namespace {
bool EarlierEv(const Ev& x, const Ev& y) { return x.ts < y.ts; }
}  // namespace

void ActivityLog::Build(const EventLog& e, size_t nc) {
  begin_.assign(nc + 1, 0);
  for (size_t i = 0; i < e.size(); ++i) ++begin_[e.customer[i] + 1];
  for (size_t c = 0; c < nc; ++c) begin_[c + 1] += begin_[c];
  ev_.resize(e.size());
  std::vector<uint64_t> pos(begin_.begin(), begin_.end() - 1);
  for (size_t i = 0; i < e.size(); ++i) ev_[pos[e.customer[i]]++] = Ev{e.ts[i], e.item[i], e.type[i], e.channel[i]};
  for (size_t c = 0; c < nc; ++c) {
    auto b = ev_.begin() + begin_[c], en = ev_.begin() + begin_[c + 1];
    if (!std::is_sorted(b, en, EarlierEv)) std::stable_sort(b, en, EarlierEv);
  }
  overlay_.assign(nc, {});
}

void ActivityLog::AddFeedback(uint32_t customer, const Ev& ev, TimeMs keep) {
  if (customer >= overlay_.size()) return;
  std::lock_guard<std::mutex> lock(Stripe(customer));
  auto& list = overlay_[customer];
  list.push_back(ev);
  if (list.size() > 1 && list[list.size() - 2].ts > ev.ts) std::stable_sort(list.begin(), list.end(), EarlierEv);
  if (list.size() > kPruneAbove) {
    const TimeMs horizon = list.back().ts - keep;
    list.erase(list.begin(),
               std::lower_bound(list.begin(), list.end(), horizon, [](const Ev& x, TimeMs t) { return x.ts < t; }));
  }
}

TimeMs ActivityLog::last_ts() const {
  TimeMs last = kNoTime;
  for (const Ev& x : ev_) last = std::max(last, x.ts);
  return last;
}

void ActivityLog::Recent(uint32_t customer, TimeMs since, TimeMs now, std::vector<Ev>* out) const {
  out->clear();
  if (customer + 1 < begin_.size()) {
    auto b = ev_.begin() + begin_[customer], e = ev_.begin() + begin_[customer + 1];
    auto lo = std::lower_bound(b, e, since, [](const Ev& x, TimeMs t) { return x.ts < t; });
    for (auto it = lo; it != e && it->ts < now; ++it) out->push_back(*it);
  }
  if (customer < overlay_.size()) {
    const size_t mid = out->size();
    {
      std::lock_guard<std::mutex> lock(Stripe(customer));
      for (const Ev& x : overlay_[customer]) {
        if (x.ts >= since && x.ts < now) out->push_back(x);
      }
    }
    if (mid > 0 && mid < out->size()) std::inplace_merge(out->begin(), out->begin() + mid, out->end(), EarlierEv);
  }
}

void ActivityLog::Gather(const Dataset& ds, uint32_t customer, TimeMs now, TimeMs window, TimeMs clicked_horizon,
                         int history_length, Activity* out) const {
  const TimeMs since = now - std::max(window, clicked_horizon);
  std::vector<uint32_t>& history = out->history;
  std::vector<uint32_t>& clicked = out->clicked;
  history.clear();
  clicked.clear();
  out->contact.clear();
  std::vector<Ev> recent;
  Recent(customer, since, now, &recent);
  auto add = [&](const Ev& e) {
    if (static_cast<int>(history.size()) < history_length &&
        std::find(history.begin(), history.end(), e.item) == history.end()) {
      history.push_back(e.item);
    }
  };
  for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
    if (!IsPositive(it->type)) continue;
    add(*it);
    if ((it->type == EventType::kClick || it->type == EventType::kPushOpen) && it->ts > now - clicked_horizon &&
        ds.items[it->item].kind == ItemKind::kContent) {
      clicked.push_back(it->item);
    }
  }
  std::sort(clicked.begin(), clicked.end());
  clicked.erase(std::unique(clicked.begin(), clicked.end()), clicked.end());
  for (const Ev& x : recent) {
    if (x.ts >= now - window) out->contact.push_back({x.ts, x.item, ds.items[x.item].category, x.channel, x.type});
  }
  if (static_cast<int>(history.size()) < history_length) {  // positives older than the window
    std::vector<Ev> older;
    Recent(customer, kNoTime + 1, since, &older);
    for (auto it = older.rbegin(); it != older.rend(); ++it) {
      if (IsPositive(it->type)) add(*it);
    }
  }
}

void PopularLists::Build(const ActivityLog& log, const Dataset& ds, int window_days, int popular_quota) {
  const size_t ni = ds.items.size();
  const int nch = ds.channels.size();
  positives.assign(ni, 0);
  const TimeMs last = log.last_ts();
  const TimeMs since = last == kNoTime ? kNoTime : last - static_cast<TimeMs>(window_days) * kMsPerDay;
  std::vector<std::vector<uint32_t>> channel_counts(nch, std::vector<uint32_t>(ni, 0));
  std::vector<std::vector<uint32_t>> segment_counts(static_cast<size_t>(nch) * kNumTiers);
  for (uint32_t c = 0; c < log.num_customers(); ++c) {
    const int tier = static_cast<int>(ds.customers[c].tier);
    for (const Ev* x = log.begin(c); x != log.end(c); ++x) {
      if (!IsPositive(x->type)) continue;
      ++positives[x->item];
      if (x->ts < since) continue;
      ++channel_counts[x->channel][x->item];
      auto& seg = segment_counts[static_cast<size_t>(x->channel) * kNumTiers + tier];
      if (seg.empty()) seg.assign(ni, 0);
      ++seg[x->item];
    }
  }
  const size_t keep = static_cast<size_t>(std::max(200, 4 * popular_quota));
  auto top = [&](const std::vector<uint32_t>& counts) {
    std::vector<uint32_t> items;
    for (uint32_t i = 0; i < counts.size(); ++i) {
      if (counts[i] > 0) items.push_back(i);
    }
    auto better = [&](uint32_t a, uint32_t b) { return counts[a] > counts[b] || (counts[a] == counts[b] && a < b); };
    if (items.size() > keep) {
      std::partial_sort(items.begin(), items.begin() + keep, items.end(), better);
      items.resize(keep);
    } else {
      std::sort(items.begin(), items.end(), better);
    }
    return items;
  };
  by_channel.assign(nch, {});
  by_segment.assign(static_cast<size_t>(nch) * kNumTiers, {});
  for (int ch = 0; ch < nch; ++ch) by_channel[ch] = top(channel_counts[ch]);
  for (size_t s = 0; s < segment_counts.size(); ++s) {
    if (!segment_counts[s].empty()) by_segment[s] = top(segment_counts[s]);
  }
  any_order.resize(ni);
  for (uint32_t i = 0; i < ni; ++i) any_order[i] = i;
  std::stable_sort(any_order.begin(), any_order.end(),
                   [&](uint32_t a, uint32_t b) { return positives[a] > positives[b]; });
  IndexService(ds);
}

void PopularLists::IndexService(const Dataset& ds) {
  service_at.clear();
  for (size_t k = 0; k < any_order.size() && k < kAnyEligibleScan; ++k) {
    if (ds.items[any_order[k]].service) service_at.push_back(static_cast<uint32_t>(k));
  }
}

size_t PopularLists::NewFrom(int max_positives) const {
  return static_cast<size_t>(std::partition_point(any_order.begin(), any_order.end(),
                                                  [&](uint32_t item) { return !IsNew(item, max_positives); }) -
                             any_order.begin());
}

}  // namespace qm::serving
