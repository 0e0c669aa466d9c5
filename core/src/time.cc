#include "qianmian/core/time.h"

#include <date/date.h>
#include <date/tz.h>
#include <chrono>
#include <cstdio>

namespace qm {

using std::chrono::milliseconds;
using SysMs = date::sys_time<milliseconds>;
using LocalMs = date::local_time<milliseconds>;

struct TimeZone::Impl {
  std::string name;
  const date::time_zone* zone = nullptr;  // null = UTC
};

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC" || name == "Etc/UTC") return Utc();
  try {
    auto impl = std::make_shared<Impl>();
    impl->name = std::string(name);
    impl->zone = date::locate_zone(impl->name);
    TimeZone tz;
    tz.impl_ = std::move(impl);
    return tz;
  } catch (const std::exception& e) {
    return Status::NotFound("unknown time zone '" + std::string(name) + "' (" + e.what() + ")");
  }
}

TimeZone TimeZone::Utc() {
  static const auto kUtc = [] {
    auto impl = std::make_shared<Impl>();
    impl->name = "UTC";
    return impl;
  }();
  TimeZone tz;
  tz.impl_ = kUtc;
  return tz;
}

const std::string& TimeZone::name() const { return impl_->name; }

TimeMs TimeZone::OffsetAt(TimeMs utc) const {
  if (impl_->zone == nullptr) return 0;
  auto info = impl_->zone->get_info(SysMs(milliseconds(utc)));
  return std::chrono::duration_cast<milliseconds>(info.offset).count();
}

TimeMs TimeZone::LocalToUtc(TimeMs local) const {
  if (impl_->zone == nullptr) return local;
  LocalMs lt{milliseconds(local)};
  auto info = impl_->zone->get_info(lt);
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:  // earlier instant: first offset
      return local - std::chrono::duration_cast<milliseconds>(info.first.offset).count();
    case date::local_info::nonexistent:  // skipped: map forward using the earlier offset
      return local - std::chrono::duration_cast<milliseconds>(info.first.offset).count();
  }
  return local;
}

namespace {
TimeMs FloorDiv(TimeMs a, TimeMs b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
}  // namespace

TimeMs TimeZone::StartOfDay(TimeMs utc) const {
  TimeMs local = UtcToLocal(utc);
  return LocalToUtc(FloorDiv(local, kMsPerDay) * kMsPerDay);
}

TimeMs TimeZone::StartOfWeek(TimeMs utc) const {
  TimeMs local = UtcToLocal(utc);
  TimeMs day = FloorDiv(local, kMsPerDay);   // days since 1970-01-01 (a Thursday)
  TimeMs weekday = ((day + 3) % 7 + 7) % 7;  // 0 = Monday
  return LocalToUtc((day - weekday) * kMsPerDay);
}

int TimeZone::LocalHour(TimeMs utc) const { return LocalMinuteOfDay(utc) / 60; }

int TimeZone::LocalMinuteOfDay(TimeMs utc) const {
  TimeMs local = UtcToLocal(utc);
  TimeMs in_day = local - FloorDiv(local, kMsPerDay) * kMsPerDay;
  return static_cast<int>(in_day / kMsPerMinute);
}

int TimeZone::LocalWeekday(TimeMs utc) const {
  TimeMs day = FloorDiv(UtcToLocal(utc), kMsPerDay);
  return static_cast<int>(((day + 3) % 7 + 7) % 7);
}

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<TimeMs> ParseTime(std::string_view s, const TimeZone& tz) {
  if (s.empty()) return std::nullopt;
  // Epoch milliseconds: an optional '-' then digits only.
  {
    size_t i = (s[0] == '-') ? 1 : 0;
    bool all_digits = i < s.size();
    for (size_t j = i; j < s.size() && all_digits; ++j) all_digits = s[j] >= '0' && s[j] <= '9';
    if (all_digits) {
      if (s.size() - i > 18) return std::nullopt;
      TimeMs v = 0;
      for (size_t j = i; j < s.size(); ++j) v = v * 10 + (s[j] - '0');
      return i ? -v : v;
    }
  }
  int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
  if (s.size() < 10 || !Digits(s, 0, 4, &y) || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
      !Digits(s, 8, 2, &d)) {
    return std::nullopt;
  }
  date::year_month_day ymd{date::year(y), date::month(static_cast<unsigned>(mo)), date::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  size_t p = 10;
  bool has_offset = false;
  TimeMs offset = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!Digits(s, p, 2, &h) || p + 2 >= s.size() + 0 || s[p + 2] != ':' || !Digits(s, p + 3, 2, &mi)) {
      return std::nullopt;
    }
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &sec)) return std::nullopt;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        int scale = 100, digits = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          ms += (s[p] - '0') * scale;
          scale /= 10;
          ++p;
          ++digits;
        }
        if (digits == 0) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (p < s.size()) {
      if (s[p] == 'Z' && p + 1 == s.size()) {
        has_offset = true;
      } else if ((s[p] == '+' || s[p] == '-') && p + 6 == s.size() && s[p + 3] == ':') {
        int oh, om;
        if (!Digits(s, p + 1, 2, &oh) || !Digits(s, p + 4, 2, &om) || oh > 18 || om > 59) {
          return std::nullopt;
        }
        offset = (oh * kMsPerHour + om * kMsPerMinute) * (s[p] == '-' ? -1 : 1);
        has_offset = true;
      } else {
        return std::nullopt;
      }
    }
  }
  TimeMs days = date::sys_days(ymd).time_since_epoch().count();
  TimeMs wall = days * kMsPerDay + h * kMsPerHour + mi * kMsPerMinute + sec * kMsPerSecond + ms;
  if (has_offset) return wall - offset;
  return tz.LocalToUtc(wall);
}

std::string FormatIsoUtc(TimeMs t) { return date::format("%Y-%m-%dT%H:%M:%SZ", SysMs(milliseconds(t))); }

std::string FormatIsoLocal(TimeMs t, const TimeZone& tz) {
  TimeMs off = tz.OffsetAt(t);
  std::string s = date::format("%Y-%m-%dT%H:%M:%S", SysMs(milliseconds(t + off)));
  TimeMs a = off < 0 ? -off : off;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', static_cast<int>(a / kMsPerHour),
                static_cast<int>((a % kMsPerHour) / kMsPerMinute));
  return s + buf;
}

TimeMs NowMs() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace qm
