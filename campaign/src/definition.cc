// Campaign definitions: parsed from JSON with an error per field, written back canonically,
// hashed, and checked against the bank's data (campaign.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/campaign/campaign.h"
#include "qianmian/campaign/trigger.h"
#include "qianmian/push/audience.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kWeekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

Status Bad(const std::string& field, const std::string& why) {
  return Status::InvalidArgument("'" + field + "': " + why);
}

// Refuses keys of `obj` outside `known`, naming the first one and the known ones.
Status OnlyKnown(const json& obj, const std::string& path, const std::vector<std::string>& known) {
  for (const auto& [key, _] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    return Bad(path.empty() ? key : path + "." + key, "unknown field (known: " + list + ")");
  }
  return Status::Ok();
}

Status ReadString(const json& obj, const std::string& key, const std::string& path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Bad(path + key, "must be a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadStrings(const json& obj, const std::string& key, const std::string& path, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Bad(path + key, "must be a list of strings");
  out->clear();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string() || v.get<std::string>().empty()) {
      return Bad(path + key + "[" + std::to_string(i) + "]", "must be a non-empty string");
    }
    out->push_back(v.get<std::string>());
  }
  return Status::Ok();
}

Status ReadNumber(const json& obj, const std::string& key, const std::string& path, double lo, double hi, double* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return Bad(path + key, "must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "must be a number in %g..%g, not %g", lo, hi, v);
    return Bad(path + key, buf);
  }
  *out = v;
  return Status::Ok();
}

Status ReadWhole(const json& obj, const std::string& key, const std::string& path, int64_t lo, int64_t hi,
                 int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return Bad(path + key, "must be a whole number");
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return Bad(path + key, "must be a whole number in " + std::to_string(lo) + ".." + std::to_string(hi) + ", not " +
                               std::to_string(v));
  }
  *out = v;
  return Status::Ok();
}

bool IsClock(const std::string& s) {
  int h = 0, m = 0;
  char tail = 0;
  return s.size() == 5 && std::sscanf(s.c_str(), "%2d:%2d%c", &h, &m, &tail) == 2 && s[2] == ':' && h >= 0 && h < 24 &&
         m >= 0 && m < 60;
}

bool IsDate(const std::string& s) {
  int y = 0, mo = 0, d = 0;
  char tail = 0;
  return s.size() == 10 && std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3 && s[4] == '-' &&
         s[7] == '-' && mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}

Status ReadSchedule(const json& j, Schedule* s) {
  if (!j.is_object()) return Bad("schedule", "must be an object");
  QM_RETURN_IF_ERROR(OnlyKnown(j, "schedule", {"kind", "at", "time", "days", "dates", "from", "to", "window"}));
  QM_RETURN_IF_ERROR(ReadString(j, "kind", "schedule.", &s->kind));
  static const std::set<std::string> kKinds = {"none", "once", "daily", "weekly", "dates"};
  if (!kKinds.count(s->kind)) return Bad("schedule.kind", "must be none, once, daily, weekly or dates");
  QM_RETURN_IF_ERROR(ReadString(j, "at", "schedule.", &s->at));
  QM_RETURN_IF_ERROR(ReadString(j, "time", "schedule.", &s->time));
  QM_RETURN_IF_ERROR(ReadString(j, "from", "schedule.", &s->from));
  QM_RETURN_IF_ERROR(ReadString(j, "to", "schedule.", &s->to));
  QM_RETURN_IF_ERROR(ReadStrings(j, "dates", "schedule.", &s->dates));
  std::vector<std::string> days;
  QM_RETURN_IF_ERROR(ReadStrings(j, "days", "schedule.", &days));
  for (size_t i = 0; i < days.size(); ++i) {
    const auto* end = std::end(kWeekdays);
    const auto* at = std::find_if(std::begin(kWeekdays), end, [&](const char* w) { return days[i] == w; });
    if (at == end) return Bad("schedule.days[" + std::to_string(i) + "]", "must be one of mon, tue, ..., sun");
    s->weekdays.push_back(static_cast<int>(at - std::begin(kWeekdays)));
  }
  std::sort(s->weekdays.begin(), s->weekdays.end());
  s->weekdays.erase(std::unique(s->weekdays.begin(), s->weekdays.end()), s->weekdays.end());
  if (auto w = j.find("window"); w != j.end() && !w->is_null()) {
    if (!w->is_array() || w->size() != 2 || !(*w)[0].is_string() || !(*w)[1].is_string()) {
      return Bad("schedule.window", "must be [\"HH:MM\", \"HH:MM\"]");
    }
    s->window_from = (*w)[0].get<std::string>();
    s->window_to = (*w)[1].get<std::string>();
    if (!IsClock(s->window_from) || !IsClock(s->window_to) || s->window_from >= s->window_to) {
      return Bad("schedule.window", "must be two local times \"HH:MM\", the first before the second");
    }
  }
  // What each kind needs, and nothing it does not use.
  const bool once = s->kind == "once", recurring = s->kind == "daily" || s->kind == "weekly";
  if (once != !s->at.empty()) return Bad("schedule.at", once ? "a one-off schedule needs it" : "only for kind once");
  if (once && !IsDate(s->at.substr(0, 10))) return Bad("schedule.at", "must be a local time such as 2026-12-10T09:30");
  const bool timed = recurring || s->kind == "dates";
  if (timed != !s->time.empty()) return Bad("schedule.time", timed ? "needs a local time HH:MM" : "not for this kind");
  if (timed && !IsClock(s->time)) return Bad("schedule.time", "must be a local time HH:MM, not '" + s->time + "'");
  if (recurring != !s->from.empty() || recurring != !s->to.empty()) {
    return Bad(s->from.empty() == recurring ? "schedule.from" : "schedule.to",
               recurring ? "a recurring schedule needs from and to dates" : "only for daily and weekly schedules");
  }
  if (recurring && (!IsDate(s->from) || !IsDate(s->to) || s->from > s->to)) {
    return Bad("schedule.from", "from and to must be dates YYYY-MM-DD, from not after to");
  }
  if ((s->kind == "weekly") != !s->weekdays.empty()) {
    return Bad("schedule.days", s->kind == "weekly" ? "a weekly schedule needs days" : "only for weekly schedules");
  }
  if ((s->kind == "dates") != !s->dates.empty()) {
    return Bad("schedule.dates", s->kind == "dates" ? "needs at least one date" : "only for kind dates");
  }
  for (size_t i = 0; i < s->dates.size(); ++i) {
    if (!IsDate(s->dates[i])) return Bad("schedule.dates[" + std::to_string(i) + "]", "must be a date YYYY-MM-DD");
  }
  return Status::Ok();
}

Status ReadContent(const json& j, Definition* d) {
  if (!j.is_object()) return Bad("content", "must be an object (items, categories or tags; {} = the engine chooses)");
  QM_RETURN_IF_ERROR(OnlyKnown(j, "content", {"items", "categories", "tags"}));
  QM_RETURN_IF_ERROR(ReadStrings(j, "items", "content.", &d->items));
  QM_RETURN_IF_ERROR(ReadStrings(j, "categories", "content.", &d->categories));
  QM_RETURN_IF_ERROR(ReadStrings(j, "tags", "content.", &d->tags));
  if (!d->items.empty() && (!d->categories.empty() || !d->tags.empty())) {
    return Bad("content", "give explicit items or categories/tags, not both");
  }
  return Status::Ok();
}

Status ReadTrigger(const json& j, Trigger* t) {
  if (!j.is_object()) return Bad("trigger", "must be an object {event, condition, delay_s, expiry_s}");
  QM_RETURN_IF_ERROR(OnlyKnown(j, "trigger", {"event", "condition", "delay_s", "expiry_s"}));
  QM_RETURN_IF_ERROR(ReadString(j, "event", "trigger.", &t->event));
  QM_RETURN_IF_ERROR(ReadString(j, "condition", "trigger.", &t->condition));
  QM_RETURN_IF_ERROR(ReadWhole(j, "delay_s", "trigger.", 0, 30 * 86400, &t->delay_s));
  QM_RETURN_IF_ERROR(ReadWhole(j, "expiry_s", "trigger.", 1, 90 * 86400, &t->expiry_s));
  if (t->event.empty()) return Bad("trigger.event", "required: the event type that fires the campaign");
  if (t->delay_s >= t->expiry_s) return Bad("trigger.delay_s", "must be less than expiry_s");
  return Status::Ok();
}

Status ReadDefinition(const json& j, Definition* d) {
  if (!j.is_object()) return Status::InvalidArgument("a campaign definition must be a JSON object");
  QM_RETURN_IF_ERROR(OnlyKnown(j, "",
                               {"id", "name", "channel", "channels", "audience", "content", "objective", "budget",
                                "holdout", "schedule", "priority", "trigger", "caps"}));
  QM_RETURN_IF_ERROR(ReadString(j, "id", "", &d->id));
  QM_RETURN_IF_ERROR(ReadString(j, "name", "", &d->name));
  QM_RETURN_IF_ERROR(ReadString(j, "channel", "", &d->channel));
  QM_RETURN_IF_ERROR(ReadString(j, "audience", "", &d->audience));
  if (d->id.empty() || d->id.size() > 64 ||
      d->id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
          std::string::npos) {
    return Bad("id", "required: 1..64 letters, digits, '_', '.' or '-' (it names the campaign's push runs)");
  }
  if (d->channel.empty()) return Bad("channel", "must not be empty");
  QM_RETURN_IF_ERROR(ReadStrings(j, "channels", "", &d->channels));
  if (!d->channels.empty()) {
    for (size_t i = 0; i < d->channels.size(); ++i) {
      if (std::find(d->channels.begin(), d->channels.begin() + static_cast<std::ptrdiff_t>(i), d->channels[i]) !=
          d->channels.begin() + static_cast<std::ptrdiff_t>(i)) {
        return Bad("channels[" + std::to_string(i) + "]", "'" + d->channels[i] + "' is listed twice");
      }
    }
    if (j.contains("channel") && d->channel != d->channels[0]) {
      return Bad("channel", "must be the first of 'channels' (or left out)");
    }
    d->channel = d->channels[0];
    if (d->channels.size() == 1) d->channels.clear();
  }
  if (d->audience.empty()) d->audience = "all";
  if (auto c = j.find("content"); c != j.end() && !c->is_null()) QM_RETURN_IF_ERROR(ReadContent(*c, d));
  if (auto o = j.find("objective"); o != j.end() && !o->is_null()) {
    if (!o->is_object()) return Bad("objective", "must be an object {w_click, w_convert}");
    QM_RETURN_IF_ERROR(OnlyKnown(*o, "objective", {"w_click", "w_convert"}));
    QM_RETURN_IF_ERROR(ReadNumber(*o, "w_click", "objective.", 0, 1e6, &d->w_click));
    QM_RETURN_IF_ERROR(ReadNumber(*o, "w_convert", "objective.", 0, 1e6, &d->w_convert));
    if (d->w_click == 0 && d->w_convert == 0) return Bad("objective", "w_click and w_convert cannot both be 0");
  }
  if (auto b = j.find("budget"); b != j.end() && !b->is_null()) {
    if (!b->is_object()) return Bad("budget", "must be an object {total, per_day}");
    QM_RETURN_IF_ERROR(OnlyKnown(*b, "budget", {"total", "per_day"}));
    QM_RETURN_IF_ERROR(ReadWhole(*b, "total", "budget.", 0, INT64_MAX, &d->budget_total));
    QM_RETURN_IF_ERROR(ReadWhole(*b, "per_day", "budget.", 0, INT64_MAX, &d->budget_per_day));
  }
  if (auto c = j.find("caps"); c != j.end() && !c->is_null()) {
    if (!c->is_object()) return Bad("caps", "must be an object {per_customer, days}");
    QM_RETURN_IF_ERROR(OnlyKnown(*c, "caps", {"per_customer", "days"}));
    QM_RETURN_IF_ERROR(ReadWhole(*c, "per_customer", "caps.", 0, 1000, &d->cap_per_customer));
    QM_RETURN_IF_ERROR(ReadWhole(*c, "days", "caps.", 1, 366, &d->cap_days));
  }
  QM_RETURN_IF_ERROR(ReadNumber(j, "holdout", "", 0, 1, &d->holdout));
  int64_t priority = d->priority;
  QM_RETURN_IF_ERROR(ReadWhole(j, "priority", "", -1000, 1000, &priority));
  d->priority = static_cast<int>(priority);
  if (auto s = j.find("schedule"); s != j.end() && !s->is_null()) QM_RETURN_IF_ERROR(ReadSchedule(*s, &d->schedule));
  if (auto t = j.find("trigger"); t != j.end() && !t->is_null()) {
    QM_RETURN_IF_ERROR(ReadTrigger(*t, &d->trigger));
    if (d->schedule.kind != "none") {
      return Bad("schedule", "a triggered campaign has no schedule: it runs when its events arrive");
    }
  }
  return Status::Ok();
}

json ScheduleJson(const Schedule& s) {
  json j = {{"kind", s.kind}};
  if (!s.at.empty()) j["at"] = s.at;
  if (!s.time.empty()) j["time"] = s.time;
  if (!s.from.empty()) j["from"] = s.from;
  if (!s.to.empty()) j["to"] = s.to;
  if (!s.dates.empty()) j["dates"] = s.dates;
  if (!s.weekdays.empty()) {
    json days = json::array();
    for (int w : s.weekdays) days.push_back(kWeekdays[w]);
    j["days"] = days;
  }
  if (!s.window_from.empty()) j["window"] = {s.window_from, s.window_to};
  return j;
}

// The local time `date` + "T" + `clock` in tz, or nullopt.
std::optional<TimeMs> LocalAt(const std::string& date, const std::string& clock, const TimeZone& tz) {
  return ParseTime(date + "T" + clock, tz);
}

Status CheckSchedule(const Schedule& s, TimeMs now, const TimeZone& tz) {
  if (s.kind == "once") {
    auto at = ParseTime(s.at, tz);
    if (!at) return Bad("schedule.at", "cannot parse '" + s.at + "' (a local time such as 2026-12-10T09:30)");
    if (*at <= now) return Bad("schedule.at", "'" + s.at + "' is in the past");
  } else if (s.kind == "daily" || s.kind == "weekly") {
    auto last = LocalAt(s.to, s.time, tz);
    if (!last || !LocalAt(s.from, s.time, tz)) return Bad("schedule.from", "not a valid date");
    if (*last <= now) return Bad("schedule.to", "the last occurrence (" + s.to + " " + s.time + ") is in the past");
  } else if (s.kind == "dates") {
    for (size_t i = 0; i < s.dates.size(); ++i) {
      auto at = LocalAt(s.dates[i], s.time, tz);
      const std::string field = "schedule.dates[" + std::to_string(i) + "]";
      if (!at) return Bad(field, "not a valid date");
      if (*at <= now) return Bad(field, "'" + s.dates[i] + " " + s.time + "' is in the past");
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<Occurrence> OccurrencesOf(const Schedule& s, const TimeZone& tz) {
  constexpr size_t kMax = 5000;
  std::vector<Occurrence> out;
  if (s.kind == "once") {
    if (auto at = ParseTime(s.at, tz)) out.push_back({s.at, *at});
    return out;
  }
  std::vector<std::string> dates = s.dates;
  if (s.kind == "daily" || s.kind == "weekly") {
    auto from = ParseTime(s.from, TimeZone::Utc()), to = ParseTime(s.to, TimeZone::Utc());
    for (TimeMs d = from ? *from : 0; from && to && d <= *to && dates.size() < kMax; d += kMsPerDay) {
      const int weekday = static_cast<int>(((d / kMsPerDay) % 7 + 7 + 3) % 7);  // 1970-01-01: a Thursday (3)
      if (s.kind == "weekly" && std::find(s.weekdays.begin(), s.weekdays.end(), weekday) == s.weekdays.end()) continue;
      dates.push_back(FormatIsoUtc(d).substr(0, 10));
    }
  }
  for (const std::string& date : dates) {
    if (auto at = ParseTime(date + "T" + s.time, tz)) out.push_back({date, *at});
    if (out.size() >= kMax) break;
  }
  std::sort(out.begin(), out.end(), [](const Occurrence& a, const Occurrence& b) { return a.at < b.at; });
  return out;
}

Result<Definition> ParseDefinition(std::string_view json_text) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("a campaign definition must be valid JSON");
  Definition d;
  QM_RETURN_IF_ERROR(ReadDefinition(j, &d));
  return d;
}

std::string DefinitionJson(const Definition& d) {
  json j = {{"id", d.id},
            {"name", d.name},
            {"channel", d.channel},
            {"audience", d.audience},
            {"content", {{"items", d.items}, {"categories", d.categories}, {"tags", d.tags}}},
            {"objective", {{"w_click", d.w_click}, {"w_convert", d.w_convert}}},
            {"budget", {{"total", d.budget_total}, {"per_day", d.budget_per_day}}},
            {"holdout", d.holdout},
            {"schedule", ScheduleJson(d.schedule)},
            {"priority", d.priority}};
  if (!d.channels.empty()) j["channels"] = d.channels;  // only when several: older hashes stay valid
  if (d.cap_per_customer > 0) j["caps"] = {{"per_customer", d.cap_per_customer}, {"days", d.cap_days}};
  if (d.triggered()) {  // only when set: the hashes of untriggered definitions stay as they were
    j["trigger"] = {{"event", d.trigger.event},
                    {"condition", d.trigger.condition},
                    {"delay_s", d.trigger.delay_s},
                    {"expiry_s", d.trigger.expiry_s}};
  }
  return j.dump();
}

std::string DefinitionHash(const Definition& d) { return artifacts::Sha256Hex(DefinitionJson(d)); }

Status CheckDefinition(const Definition& d, const Dataset& data, TimeMs now, const TimeZone& tz,
                       TimeMs contact_horizon) {
  const auto channel = data.channels.Find(d.channel);
  if (!channel) return Bad("channel", "unknown channel '" + d.channel + "'");
  ChannelMask offered = ChannelMask{1} << *channel;
  for (size_t i = 0; i < d.channels.size(); ++i) {
    const std::string field = "channels[" + std::to_string(i) + "]";
    const auto c = data.channels.Find(d.channels[i]);
    if (!c) return Bad(field, "unknown channel '" + d.channels[i] + "'");
    if (*c == kAppHome) return Bad(field, "channel choice is among push channels; app_home serves pages");
    offered |= ChannelMask{1} << *c;
  }
  if (d.cap_per_customer > 0 && contact_horizon > 0 && (d.cap_days + 1) * kMsPerDay > contact_horizon) {
    return Bad("caps.days", "at most " + std::to_string(contact_horizon / kMsPerDay - 1) +
                                " days: the store keeps contacts for the longest [policy] cap window plus a day");
  }
  auto audience = push::Audience::Compile(d.audience, data);
  if (!audience.ok()) {
    std::string m = audience.status().message();
    if (m.rfind("audience: ", 0) == 0) m = m.substr(10);
    return Bad("audience", m);
  }
  for (size_t i = 0; i < d.items.size(); ++i) {
    const std::string field = "content.items[" + std::to_string(i) + "]";
    auto it = data.FindItem(d.items[i]);
    if (!it) return Bad(field, "unknown item '" + d.items[i] + "'");
    const Item& item = data.items[*it];
    if (item.channels != 0 && !(item.channels & offered)) {
      return Bad(field, "item '" + d.items[i] + "' is not allowed on channel '" + d.channel + "'" +
                            (d.channels.empty() ? "" : " nor on the campaign's other channels"));
    }
  }
  for (size_t i = 0; i < d.categories.size(); ++i) {
    if (!data.categories.Find(d.categories[i])) {
      return Bad("content.categories[" + std::to_string(i) + "]", "no item has category '" + d.categories[i] + "'");
    }
  }
  for (size_t i = 0; i < d.tags.size(); ++i) {
    if (!data.item_tags.Find(d.tags[i])) {
      return Bad("content.tags[" + std::to_string(i) + "]", "no item has tag '" + d.tags[i] + "'");
    }
  }
  if (d.triggered()) {
    if (!FindEventType(d.trigger.event)) {
      return Bad("trigger.event", "unknown event type '" + d.trigger.event + "' (known: " + EventTypeNames() + ")");
    }
    auto condition = EventCondition::Compile(d.trigger.condition, d.trigger.event);
    if (!condition.ok()) return Bad("trigger.condition", condition.status().message());
  }
  return CheckSchedule(d.schedule, now, tz);
}

}  // namespace qm::campaign
