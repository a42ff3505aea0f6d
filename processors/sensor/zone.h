// Time zones for timers: IANA zones through Howard Hinnant's date/tz (Debian's
// libhowardhinnant-date, which reads the system's /usr/share/zoneinfo), behind a narrow header so
// <date/tz.h> stays inside this module's .cc files.
//
// Times are whole seconds: `sys` = seconds since the Unix epoch (UTC), `local` = seconds since
// 1970-01-01T00:00:00 on the zone's wall clock.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "topology/core/result.h"

namespace date {
class time_zone;
}

namespace attune::sensor {

inline constexpr int64_t kMinSeconds = std::numeric_limits<int64_t>::min() / 4;
inline constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 4;

// A civil date-time on a wall clock, broken down.
struct Civil {
  int year = 1970;
  unsigned month = 1, day = 1;  // 1-based
  unsigned hour = 0, minute = 0, second = 0;
  unsigned weekday = 4;  // 0 = Sunday … 6 = Saturday
  unsigned yearday = 1;  // 1-based
};

Civil civil_from_local(int64_t local);
int64_t local_from_civil(int year, unsigned month, unsigned day, unsigned hour = 0,
                         unsigned minute = 0, unsigned second = 0);
int64_t days_from_civil(int year, unsigned month, unsigned day);  // days since 1970-01-01
bool is_leap_year(int year);
unsigned days_in_month(int year, unsigned month);

// An IANA time zone ("UTC" when none is given). Cheap to copy; the zone data is shared and
// immutable. Thread-safe.
class TimeZone {
 public:
  TimeZone() = default;  // UTC
  // "UTC", "Etc/UTC", "Z" and "" are UTC; anything else must name a zone in the database.
  static Result<TimeZone> locate(std::string_view name);

  // The offset in force at `sys` and the sys range [begin, end) over which it holds.
  struct Span {
    int64_t begin = kMinSeconds;
    int64_t end = kMaxSeconds;
    int64_t offset = 0;  // local - sys, seconds
  };
  Span span_at(int64_t sys) const;
  int64_t to_local(int64_t sys) const { return sys + span_at(sys).offset; }

  // The instant a wall-clock time names. A time in a gap (spring forward) is moved forward by
  // the gap's length (RFC 5545 §3.3.5); an ambiguous time (fall back) is its first occurrence.
  int64_t to_sys(int64_t local) const;

  const std::string& name() const { return name_; }
  bool utc() const { return zone_ == nullptr; }

 private:
  const date::time_zone* zone_ = nullptr;
  std::string name_ = "UTC";
};

}  // namespace attune::sensor
