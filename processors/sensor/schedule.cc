// The four timer schedules.
#include "processors/sensor/schedule.h"

#include "processors/sensor/cron.h"
#include "processors/sensor/rrule.h"
#include "topology/core/time.h"

namespace attune::sensor {

namespace {

Error field(const std::string& name, const std::string& message) {
  return make_error(Errc::kValidation, name + ": " + message);
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

Result<CatchUp> parse_catch_up(const Json& params) {
  auto it = params.find("catch_up");
  if (it == params.end() || it->is_null()) return CatchUp::kLast;
  if (it->is_string()) {
    const auto v = it->get<std::string>();
    if (v == "none") return CatchUp::kNone;
    if (v == "last") return CatchUp::kLast;
    if (v == "all") return CatchUp::kAll;
  }
  return field("catch_up", "must be one of \"none\", \"last\", \"all\"");
}

Result<TimeZone> parse_zone(const Json& params) {
  auto it = params.find("timezone");
  if (it == params.end() || it->is_null()) return TimeZone();
  if (!it->is_string()) return field("timezone", "must be a string");
  auto tz = TimeZone::locate(it->get<std::string>());
  if (!tz.ok()) return field("timezone", tz.error().message);
  return tz;
}

Result<std::string> required_string(const Json& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end() || it->is_null()) return field(name, "is required");
  if (!it->is_string() || it->get<std::string>().empty()) {
    return field(name, "must be a non-empty string");
  }
  return it->get<std::string>();
}

class IntervalSchedule final : public Schedule {
 public:
  IntervalSchedule(CatchUp c, int64_t period_ms, int64_t anchor_ms)
      : Schedule(TimerKind::kInterval, c), period_(period_ms), anchor_(anchor_ms) {}
  // Ticks at anchor + k·period, k ≥ 1: absolute times, so no drift however late a tick fires.
  std::optional<int64_t> next_after(int64_t after) override {
    if (after < anchor_) return anchor_ + period_;
    return anchor_ + (floor_div(after - anchor_, period_) + 1) * period_;
  }

 private:
  const int64_t period_, anchor_;
};

class CronSchedule final : public Schedule {
 public:
  CronSchedule(CatchUp c, CronExpression expr, TimeZone tz)
      : Schedule(TimerKind::kCron, c), expr_(std::move(expr)), tz_(std::move(tz)) {}
  std::optional<int64_t> next_after(int64_t after) override {
    auto s = expr_.next_after(floor_div(after, 1000), tz_);
    if (!s) return std::nullopt;
    return *s * 1000;
  }

 private:
  const CronExpression expr_;
  const TimeZone tz_;
};

class DateSchedule final : public Schedule {
 public:
  DateSchedule(CatchUp c, int64_t fire_at) : Schedule(TimerKind::kDate, c), fire_at_(fire_at) {}
  std::optional<int64_t> first(int64_t since) override {
    if (fire_at_ < since - kDatePastWindowMs) return std::nullopt;  // too old: never
    return fire_at_;
  }
  std::optional<int64_t> next_after(int64_t after) override {
    if (fire_at_ > after) return fire_at_;
    return std::nullopt;
  }

 private:
  const int64_t fire_at_;
};

class RruleSchedule final : public Schedule {
 public:
  RruleSchedule(CatchUp c, RecurrenceSet set)
      : Schedule(TimerKind::kRrule, c), set_(std::move(set)) {}
  std::optional<int64_t> next_after(int64_t after) override {
    auto s = set_.next_after(floor_div(after, 1000));
    if (!s) return std::nullopt;
    return *s * 1000;
  }

 private:
  RecurrenceSet set_;
};

// fire_at: RFC 3339 with an offset, or a wall time without one, read in `tz`.
Result<int64_t> parse_fire_at(const std::string& text, const TimeZone& tz) {
  if (auto ms = parse_rfc3339_ms(text)) return *ms;
  auto wall = parse_rfc3339_ms(text + "Z");
  if (!wall) {
    return field("fire_at", "'" + text + "' is not an RFC 3339 date-time");
  }
  const int64_t local_s = floor_div(*wall, 1000);
  return tz.to_sys(local_s) * 1000 + (*wall - local_s * 1000);
}

}  // namespace

bool is_timer_trigger(std::string_view ref) {
  return ref == kIntervalTimer || ref == kCronTimer || ref == kDateTimer || ref == kRruleTimer;
}

std::string_view timer_type_name(TimerKind kind) {
  switch (kind) {
    case TimerKind::kInterval:
      return "interval";
    case TimerKind::kCron:
      return "cron";
    case TimerKind::kDate:
      return "datetime";
    case TimerKind::kRrule:
      return "rrule";
  }
  return "interval";
}

Result<std::unique_ptr<Schedule>> make_schedule(std::string_view trigger_ref, const Json& params_in,
                                                int64_t since_ms) {
  const Json params = params_in.is_object() ? params_in : Json::object();
  auto catch_up = parse_catch_up(params);
  if (!catch_up.ok()) return catch_up.error();
  auto tz = parse_zone(params);
  if (!tz.ok()) return tz.error();
  if (trigger_ref == kIntervalTimer) {
    const std::string unit = params.value("unit", Json("seconds")).is_string()
                                 ? params.value("unit", std::string("seconds"))
                                 : std::string();
    int64_t unit_ms = 0;
    if (unit == "seconds" || unit == "second") unit_ms = 1000;
    if (unit == "minutes" || unit == "minute") unit_ms = 60'000;
    if (unit == "hours" || unit == "hour") unit_ms = 3'600'000;
    if (unit_ms == 0) return field("unit", "must be one of \"seconds\", \"minutes\", \"hours\"");
    auto it = params.find("interval");
    if (it == params.end() || it->is_null()) return field("interval", "is required");
    if (!it->is_number_integer() && !(it->is_number_float() && it->get<double>() ==
                                                                   static_cast<double>(static_cast<int64_t>(it->get<double>())))) {
      return field("interval", "must be a positive integer");
    }
    const int64_t n = it->is_number_integer() ? it->get<int64_t>()
                                              : static_cast<int64_t>(it->get<double>());
    if (n < 1 || n > 10'000'000) return field("interval", "must be a positive integer");
    return std::unique_ptr<Schedule>(new IntervalSchedule(*catch_up, n * unit_ms, since_ms));
  }
  if (trigger_ref == kCronTimer) {
    auto text = required_string(params, "expression");
    if (!text.ok()) return text.error();
    auto expr = CronExpression::parse(*text);
    if (!expr.ok()) return field("expression", expr.error().message);
    return std::unique_ptr<Schedule>(new CronSchedule(*catch_up, std::move(*expr), *tz));
  }
  if (trigger_ref == kDateTimer) {
    auto text = required_string(params, "fire_at");
    if (!text.ok()) return text.error();
    auto at = parse_fire_at(*text, *tz);
    if (!at.ok()) return at.error();
    return std::unique_ptr<Schedule>(new DateSchedule(*catch_up, *at));
  }
  if (trigger_ref == kRruleTimer) {
    auto text = required_string(params, "rrule");
    if (!text.ok()) return text.error();
    auto rule = RecurrenceRule::parse(*text);
    if (!rule.ok()) return field("rrule", rule.error().message);
    int64_t start_local = 0;
    const bool explicit_start = rule->dtstart.has_value();
    if (explicit_start) {
      if (rule->dtstart_utc) {
        start_local = tz->to_local(*rule->dtstart);
      } else if (!rule->dtstart_zone.empty() && rule->dtstart_zone != tz->name()) {
        auto z = TimeZone::locate(rule->dtstart_zone);
        if (!z.ok()) return field("rrule", z.error().message);
        start_local = tz->to_local(z->to_sys(*rule->dtstart));
      } else {
        start_local = *rule->dtstart;
      }
    } else {
      start_local = tz->to_local(floor_div(since_ms, 1000) + 1);
    }
    return std::unique_ptr<Schedule>(new RruleSchedule(
        *catch_up, RecurrenceSet(std::move(*rule), *tz, start_local, !explicit_start)));
  }
  return make_error(Errc::kValidation, "trigger '" + std::string(trigger_ref) + "' is not a timer");
}

Json validate_timer_params(std::string_view trigger_ref, const Json& params, int64_t now_ms) {
  Json errors = Json::object();
  auto s = make_schedule(trigger_ref, params, now_ms);
  auto split = [&](const std::string& message) {
    const auto colon = message.find(": ");
    if (colon == std::string::npos) {
      errors["trigger_params"] = message;
    } else {
      errors["trigger_params." + message.substr(0, colon)] = message.substr(colon + 2);
    }
  };
  if (!s.ok()) {
    split(s.error().message);
    return errors;
  }
  if (trigger_ref == kCronTimer && !(*s)->next_after(now_ms)) {
    errors["trigger_params.expression"] = "never matches a date (e.g. February 30)";
  }
  return errors;
}

}  // namespace attune::sensor
