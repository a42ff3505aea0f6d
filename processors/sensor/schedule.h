// Timer schedules of the core timer triggers (API.md §9.4), built from a rule's trigger_params:
// when does the next tick come? Pure: no clock, no I/O — times are epoch milliseconds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::sensor {

inline constexpr std::string_view kIntervalTimer = "core.intervaltimer";
inline constexpr std::string_view kCronTimer = "core.crontimer";
inline constexpr std::string_view kDateTimer = "core.datetimetimer";
inline constexpr std::string_view kRruleTimer = "core.rruletimer";
inline constexpr std::string_view kTimerSensorRef = "core.timer_sensor";

// A date timer registered up to this long after its fire_at still fires (at once).
inline constexpr int64_t kDatePastWindowMs = 60'000;

enum class TimerKind { kInterval, kCron, kDate, kRrule };
// What happens to ticks that came due while the stage was down (our extension, README).
enum class CatchUp { kNone, kLast, kAll };

bool is_timer_trigger(std::string_view trigger_ref);
std::string_view timer_type_name(TimerKind kind);  // payload "type": interval|cron|datetime|rrule

class Schedule {
 public:
  virtual ~Schedule() = default;
  // The first tick of a schedule registered at `since_ms`: the first tick after it — except a
  // date timer, whose fire_at may lie up to kDatePastWindowMs before it (then it fires at once).
  virtual std::optional<int64_t> first(int64_t since_ms) { return next_after(since_ms); }
  // The first tick strictly after `after_ms`; nullopt when there is none (ever again).
  virtual std::optional<int64_t> next_after(int64_t after_ms) = 0;
  TimerKind kind() const { return kind_; }
  CatchUp catch_up() const { return catch_up_; }

 protected:
  Schedule(TimerKind kind, CatchUp catch_up) : kind_(kind), catch_up_(catch_up) {}

 private:
  const TimerKind kind_;
  const CatchUp catch_up_;
};

// Builds the schedule of a rule on `trigger_ref` from its trigger_params. `since_ms`: when this
// version of the rule was registered (interval anchors and rrule starts without DTSTART derive
// from it). Errc::kValidation with "field: message" on bad params.
Result<std::unique_ptr<Schedule>> make_schedule(std::string_view trigger_ref, const Json& params,
                                                int64_t since_ms);

// Create/update-time validation for the API (422): field → message, empty if valid. Also refuses
// a cron expression that can never fire (e.g. Feb 30).
Json validate_timer_params(std::string_view trigger_ref, const Json& params, int64_t now_ms);

}  // namespace attune::sensor
