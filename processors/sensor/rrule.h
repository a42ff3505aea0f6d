// RFC 5545 recurrence rules (RRULE) for core.rruletimer: FREQ (SECONDLY … YEARLY), INTERVAL,
// COUNT, UNTIL, BYSECOND, BYMINUTE, BYHOUR, BYDAY (with ±n ordinals in MONTHLY/YEARLY rules),
// BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYMONTH, BYSETPOS and WKST, expanded on a zone's wall clock.
//
// The text may carry its start: "DTSTART:20260301T090000Z\nRRULE:FREQ=DAILY" (also with
// ";TZID=Zone" or a floating local time). With a DTSTART the rule is strict RFC 5545: BY parts it
// does not give come from DTSTART and COUNT counts from DTSTART. Without one (the usual timer
// case) the caller supplies the start (the rule's registration, rounded up to a whole second) and
// time-of-day parts finer than FREQ that the rule does not give are 0 — so "FREQ=DAILY;BYHOUR=9"
// fires at 09:00:00 and "FREQ=HOURLY" on the hour, as a timer user expects.
//
// Wall times in a DST gap are shifted forward by the gap (RFC 5545 §3.3.5); ambiguous ones use
// their first occurrence.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/sensor/zone.h"
#include "topology/core/result.h"

namespace attune::sensor {

enum class Freq { kSecondly, kMinutely, kHourly, kDaily, kWeekly, kMonthly, kYearly };

struct RecurrenceRule {
  Freq freq = Freq::kDaily;
  int interval = 1;
  std::optional<int64_t> count;
  std::optional<int64_t> until;  // local wall time, or sys when until_utc
  bool until_utc = false;
  std::vector<int> by_second, by_minute, by_hour, by_month_day, by_year_day, by_week_no, by_month,
      by_set_pos;
  std::vector<std::pair<int, int>> by_day;  // (ordinal or 0, weekday 0 = Sunday)
  int wkst = 1;                             // Monday
  // DTSTART from the text, if any: wall time in `dtstart_zone` (empty = the timer's zone) or
  // an instant when dtstart_utc.
  std::optional<int64_t> dtstart;
  bool dtstart_utc = false;
  std::string dtstart_zone;
  std::string text;

  // Errc::kValidation naming the bad part.
  static Result<RecurrenceRule> parse(std::string_view text);
};

// Occurrences of a rule from a start, in increasing wall-clock order. Keeps its position, so
// walking forward is cheap; a schedule asks for "the next one after t" over and over.
class RecurrenceSet {
 public:
  // `dtstart_local`: the start on the wall clock of `tz`. `zero_unset_times`: see rrule.h's
  // header comment (true when the rule text has no DTSTART).
  RecurrenceSet(RecurrenceRule rule, TimeZone tz, int64_t dtstart_local, bool zero_unset_times);

  // The first occurrence instant (sys seconds) strictly after `sys`, or nullopt when the rule
  // has ended (COUNT, UNTIL) or produces nothing within its search limit.
  std::optional<int64_t> next_after(int64_t sys);

 private:
  void reset();
  // Moves to the period containing `local` (rules without COUNT only).
  void seek(int64_t local);
  // Fills pending_ with the next non-empty period's occurrences; false when exhausted.
  bool fill();
  std::vector<int64_t> expand_period();
  void advance_period();
  int period_year() const;
  bool day_ok(int y, unsigned m, unsigned d, unsigned wd, unsigned yd) const;

  RecurrenceRule rule_;
  TimeZone tz_;
  int64_t dtstart_;  // local
  Civil start_;
  std::vector<int> hours_, minutes_, seconds_;  // effective time parts
  // Period position: year/month for YEARLY/MONTHLY, day number for WEEKLY/DAILY, local seconds
  // for the sub-daily frequencies.
  int64_t period_ = 0;
  int64_t base_period_ = 0;  // the first period (DTSTART's)
  int64_t emitted_ = 0;
  std::vector<int64_t> pending_;
  size_t pending_pos_ = 0;
  bool done_ = false;
  int64_t last_query_ = kMinSeconds;
};

}  // namespace attune::sensor
