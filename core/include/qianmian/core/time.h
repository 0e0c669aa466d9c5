// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Time: parsing ISO-8601 / epoch-ms cells and calendar arithmetic in the bank's time zone.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm {

// An IANA time zone (from the system tz database). Cheap to copy; thread-safe.
class TimeZone {
 public:
  // NotFound when the name is not in the tz database.
  static Result<TimeZone> Load(std::string_view name);
  // UTC, always available.
  static TimeZone Utc();

  const std::string& name() const;
  // Local time minus UTC at the UTC instant `utc`, in ms.
  TimeMs OffsetAt(TimeMs utc) const;
  // Local wall-clock ms (as if the zone were UTC) -> UTC ms. A wall time skipped by a DST
  // change maps forward; an ambiguous one maps to the earlier instant.
  TimeMs LocalToUtc(TimeMs local) const;
  TimeMs UtcToLocal(TimeMs utc) const { return utc + OffsetAt(utc); }
  // UTC instant of the local midnight starting the day / ISO week (Monday) that holds `utc`.
  TimeMs StartOfDay(TimeMs utc) const;
  TimeMs StartOfWeek(TimeMs utc) const;
  int LocalHour(TimeMs utc) const;         // 0..23
  int LocalMinuteOfDay(TimeMs utc) const;  // 0..1439
  int LocalWeekday(TimeMs utc) const;      // 0 = Monday .. 6 = Sunday

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Parses a time cell: epoch milliseconds (an integer), or ISO-8601 "YYYY-MM-DD",
// "YYYY-MM-DDTHH:MM[:SS[.fff]]" (space also accepted for T) with an optional "Z" or "±HH:MM"
// offset. Without an offset the time is local to `tz`. nullopt when malformed.
std::optional<TimeMs> ParseTime(std::string_view s, const TimeZone& tz);

// "2024-03-01T08:00:00.000Z".
std::string FormatIsoUtc(TimeMs t);
// "2024-03-01T16:00:00+08:00" in `tz`.
std::string FormatIsoLocal(TimeMs t, const TimeZone& tz);

// Milliseconds since the Unix epoch, now.
TimeMs NowMs();

}  // namespace qm
