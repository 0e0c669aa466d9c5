#include "qianmian/policy/policy_config.h"

#include <cstdio>

namespace qm::policy {

const char* CapScopeName(CapScope s) {
  switch (s) {
    case CapScope::kCustomerChannel:
      return "customer_channel";
    case CapScope::kCustomerItem:
      return "customer_item";
    case CapScope::kCustomerCampaign:
      return "customer_campaign";
    case CapScope::kCustomerCategory:
      return "customer_category";
    case CapScope::kCustomerMarketing:
      return "customer_marketing";
  }
  return "?";
}

const char* CapBlockedName(CapScope s) {
  switch (s) {
    case CapScope::kCustomerChannel:
      return blocked::kCapCustomerChannel;
    case CapScope::kCustomerItem:
      return blocked::kCapCustomerItem;
    case CapScope::kCustomerCampaign:
      return blocked::kCapCustomerCampaign;
    case CapScope::kCustomerCategory:
      return blocked::kCapCustomerCategory;
    case CapScope::kCustomerMarketing:
      return blocked::kCapCustomerMarketing;
  }
  return "cap";
}

std::vector<CapRule> DefaultCaps() {
  std::vector<CapRule> caps(4);
  // At most 3 WeChat pushes in any 7 days.
  caps[0] = {"push_weekly", CapScope::kCustomerChannel, "wechat_push", "contact", 3,
             7 * kMsPerDay, WindowKind::kRolling};
  // At most 1 push a calendar day across every push-like channel.
  caps[1] = {"marketing_daily", CapScope::kCustomerMarketing, "", "push_sent", 1, kMsPerDay, WindowKind::kCalendarDay};
  // The same item on the home page at most 6 times a day.
  caps[2] = {"home_item_daily", CapScope::kCustomerItem, "app_home", "impression", 6, kMsPerDay, WindowKind::kRolling};
  // A campaign at most 2 pushes a week.
  caps[3] = {"campaign_weekly", CapScope::kCustomerCampaign, "wechat_push", "contact", 2,
             7 * kMsPerDay,     WindowKind::kRolling};
  return caps;
}

namespace {

bool ParseClock(const std::string& s, int* minute) {
  int h = 0, m = 0;
  char extra = 0;
  if (std::sscanf(s.c_str(), "%d:%d%c", &h, &m, &extra) != 2) return false;
  if (h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0)) return false;
  *minute = (h * 60 + m) % (24 * 60);
  return true;
}

void ReadCap(ConfigTable t, CapRule* c) {
  std::string scope = CapScopeName(c->scope);
  t.Read("scope", &scope);
  bool scope_ok = false;
  for (CapScope s : {CapScope::kCustomerChannel, CapScope::kCustomerItem, CapScope::kCustomerCampaign,
                     CapScope::kCustomerCategory, CapScope::kCustomerMarketing}) {
    if (scope == CapScopeName(s)) {
      c->scope = s;
      scope_ok = true;
    }
  }
  if (!scope_ok) {
    t.Error("scope", "unknown scope '" + scope +
                         "' (customer_channel, customer_item, customer_campaign, "
                         "customer_category or customer_marketing)");
  }
  c->name = "";
  t.Read("name", &c->name);
  if (c->name.empty()) c->name = CapBlockedName(c->scope);
  t.Read("channel", &c->channel);
  t.Read("event", &c->event);
  if (c->event != "contact" && !ParseEventType(c->event)) {
    t.Error("event", "unknown event '" + c->event + "' (contact or an event type)");
  }
  if (!t.Has("limit")) t.Error("limit", "required");
  t.Read("limit", &c->limit);
  if (c->limit < 0) t.Error("limit", "must be >= 0");
  std::string cal = "rolling";
  t.Read("calendar", &cal);
  if (cal == "rolling")
    c->calendar = WindowKind::kRolling;
  else if (cal == "day")
    c->calendar = WindowKind::kCalendarDay;
  else if (cal == "week")
    c->calendar = WindowKind::kCalendarWeek;
  else
    t.Error("calendar", "must be \"rolling\", \"day\" or \"week\"");
  if (c->calendar == WindowKind::kRolling) {
    if (!t.Has("window")) t.Error("window", "required for a rolling window");
    c->window = 0;
    t.ReadDuration("window", &c->window);
    if (t.Has("window") && c->window <= 0) t.Error("window", "must be positive");
  } else {
    if (t.Has("window")) t.Error("window", "not allowed with a calendar window");
    c->window = c->calendar == WindowKind::kCalendarDay ? kMsPerDay : 7 * kMsPerDay;
  }
}

}  // namespace

void ReadPolicyConfig(ConfigTable t, PolicyConfig* c) {
  t.ReadDuration("suitability_max_age", &c->suitability_max_age);
  if (c->suitability_max_age <= 0) t.Error("suitability_max_age", "must be positive");
  t.ReadDuration("dismiss_suppression", &c->dismiss_suppression);
  t.ReadDuration("clicked_horizon", &c->clicked_horizon);
  t.ReadDuration("reservation_ttl", &c->reservation_ttl);
  if (c->reservation_ttl <= 0) t.Error("reservation_ttl", "must be positive");
  t.Read("count_service_contacts", &c->count_service_contacts);
  t.Read("reserve_channels", &c->reserve_channels);
  if (t.Has("caps")) {
    c->caps.clear();
    for (ConfigTable ct : t.TableArray("caps")) {
      CapRule r;
      ReadCap(ct, &r);
      c->caps.push_back(r);
    }
  }
  if (t.Has("cooldowns")) {
    c->cooldowns.clear();
    for (ConfigTable ct : t.TableArray("cooldowns")) {
      CooldownRule r;
      if (!ct.Has("channel")) ct.Error("channel", "required");
      ct.Read("channel", &r.channel);
      if (!ct.Has("gap")) ct.Error("gap", "required");
      r.gap = 0;
      ct.ReadDuration("gap", &r.gap);
      if (ct.Has("gap") && r.gap <= 0) ct.Error("gap", "must be positive");
      c->cooldowns.push_back(r);
    }
  }
  if (t.Has("quiet_hours")) {
    c->quiet_hours.clear();
    for (ConfigTable qt : t.TableArray("quiet_hours")) {
      QuietHoursRule r;
      if (!qt.Has("channel")) qt.Error("channel", "required");
      qt.Read("channel", &r.channel);
      for (const char* key : {"start", "end"}) {
        std::string s;
        qt.Read(key, &s);
        if (!qt.Has(key)) continue;
        int* out = std::string(key) == "start" ? &r.start_minute : &r.end_minute;
        if (!ParseClock(s, out)) qt.Error(key, "must be a local time \"HH:MM\"");
      }
      if (r.start_minute == r.end_minute) qt.Error("end", "an empty quiet window");
      std::string action = "schedule";
      qt.Read("action", &action);
      if (action == "schedule")
        r.action = QuietAction::kSchedule;
      else if (action == "drop")
        r.action = QuietAction::kDrop;
      else
        qt.Error("action", "must be \"schedule\" or \"drop\"");
      c->quiet_hours.push_back(r);
    }
  }
}

void ReadStoreConfig(ConfigTable t, StoreConfig* c) {
  t.Read("backend", &c->backend);
  if (c->backend != "embedded" && c->backend != "redis") {
    t.Error("backend", "must be \"embedded\" or \"redis\"");
  }
  t.Read("path", &c->path);
  t.Read("sync", &c->sync);
  t.Read("read_only", &c->read_only);
  t.Read("sync_reservations", &c->sync_reservations);
  t.Read("sync_decisions", &c->sync_decisions);
  t.Read("min_free_mb", &c->min_free_mb);
  if (c->min_free_mb < 0) t.Error("min_free_mb", "must be >= 0 (0 = no check)");
  t.Read("memory_mb", &c->memory_mb);
  if (c->memory_mb < 16 || c->memory_mb > 1 << 20) t.Error("memory_mb", "must be in [16, 1048576]");
  t.Read("background_mb_per_s", &c->background_mb_per_s);
  if (c->background_mb_per_s < 0 || c->background_mb_per_s > 1 << 20) {
    t.Error("background_mb_per_s", "must be in [0, 1048576] (0 = no limit)");
  }
  t.Read("redis_host", &c->redis_host);
  t.Read("redis_port", &c->redis_port);
  t.ReadSecret("redis_password", &c->redis_password);
  t.Read("redis_user", &c->redis_user);
  if (!c->redis_user.empty() && c->redis_password.empty()) t.Error("redis_user", "needs redis_password (or its _file)");
  if (c->redis_port <= 0 || c->redis_port > 65535) t.Error("redis_port", "must be in [1, 65535]");
  t.Read("redis_prefix", &c->redis_prefix);
  t.ReadDuration("redis_timeout", &c->redis_timeout);
  t.Read("redis_connections", &c->redis_connections);
  if (c->redis_connections < 1) t.Error("redis_connections", "must be >= 1");
  t.Read("redis_cluster", &c->redis_cluster);
  t.ReadDuration("retention", &c->retention);
  if (c->retention <= 0) t.Error("retention", "must be positive");
}

}  // namespace qm::policy
