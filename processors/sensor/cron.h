// Cron expressions (our own parser; none is packaged in Debian): 6 fields with leading seconds
// or classic 5 fields (seconds = 0), evaluated on a time zone's wall clock.
//
//   field         values            names
//   second        0-59
//   minute        0-59
//   hour          0-23
//   day of month  1-31              ?  (= *)
//   month         1-12              JAN-DEC
//   day of week   0-7 (0, 7 = Sun)  SUN-SAT, ? (= *)
//
// Each field is `*` or a comma list of `N`, `A-B`, `*/S`, `A-B/S` or `A/S` (A to the field's
// maximum); names are case-insensitive and may be used in ranges (`MON-FRI`). A range whose end is
// below its start wraps around (`FRI-MON`, `22-2`). Macros: @yearly (@annually), @monthly,
// @weekly, @daily (@midnight), @hourly. Day of month and day of week follow Vixie cron: when
// both are restricted a day matches if either does.
//
// Daylight saving: a wall time that does not exist (spring forward) fires at the end of the gap;
// a wall time that occurs twice (fall back) fires once, at its first occurrence — unless the hour
// field is `*`, in which case both occurrences fire (an hourly or every-5-seconds schedule keeps
// its period through the repeated hour).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "processors/sensor/zone.h"
#include "topology/core/result.h"

namespace attune::sensor {

class CronExpression {
 public:
  // Errc::kValidation with a message naming the field on a bad expression.
  static Result<CronExpression> parse(std::string_view text);

  // The first wall-clock time >= `local` that matches, searching up to `horizon_years` ahead.
  std::optional<int64_t> next_local(int64_t local, int horizon_years = 100) const;
  // The first instant (sys seconds) strictly after `sys` at which the expression fires in `tz`.
  std::optional<int64_t> next_after(int64_t sys, const TimeZone& tz) const;

  bool matches_local(int64_t local) const;
  const std::string& text() const { return text_; }

 private:
  bool day_matches(const Civil& c) const;

  uint64_t seconds_ = 0;  // bit n = value n
  uint64_t minutes_ = 0;
  uint32_t hours_ = 0;
  uint32_t days_ = 0;     // bits 1..31
  uint16_t months_ = 0;   // bits 1..12
  uint8_t weekdays_ = 0;  // bits 0..6
  bool dom_star_ = true, dow_star_ = true, hour_star_ = true;
  std::string text_;
};

}  // namespace attune::sensor
