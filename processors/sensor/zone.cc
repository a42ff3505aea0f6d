// IANA time zones through date/tz (USE_OS_TZDB: the system's zoneinfo files).
#include "processors/sensor/zone.h"

#include <date/tz.h>

namespace attune::sensor {

namespace {

using SysSeconds = date::sys_time<std::chrono::seconds>;

int64_t clamp_sys(SysSeconds t) {
  const int64_t v = t.time_since_epoch().count();
  return std::clamp(v, kMinSeconds, kMaxSeconds);
}

}  // namespace

int64_t days_from_civil(int year, unsigned month, unsigned day) {
  const date::year_month_day ymd{date::year{year}, date::month{month}, date::day{day}};
  return date::sys_days{ymd}.time_since_epoch().count();
}

int64_t local_from_civil(int year, unsigned month, unsigned day, unsigned hour, unsigned minute,
                         unsigned second) {
  return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

Civil civil_from_local(int64_t local) {
  int64_t days = local / 86400;
  int64_t secs = local % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  const date::sys_days d{date::days{days}};
  const date::year_month_day ymd{d};
  Civil c;
  c.year = static_cast<int>(ymd.year());
  c.month = static_cast<unsigned>(ymd.month());
  c.day = static_cast<unsigned>(ymd.day());
  c.hour = static_cast<unsigned>(secs / 3600);
  c.minute = static_cast<unsigned>(secs / 60 % 60);
  c.second = static_cast<unsigned>(secs % 60);
  c.weekday = date::weekday{d}.c_encoding();
  const date::sys_days jan1{date::year_month_day{ymd.year(), date::January, date::day{1}}};
  c.yearday = static_cast<unsigned>((d - jan1).count() + 1);
  return c;
}

bool is_leap_year(int year) { return date::year{year}.is_leap(); }

unsigned days_in_month(int year, unsigned month) {
  return static_cast<unsigned>(
      date::year_month_day_last{date::year{year}, date::month_day_last{date::month{month}}}
          .day());
}

Result<TimeZone> TimeZone::locate(std::string_view name) {
  TimeZone tz;
  if (name.empty() || name == "UTC" || name == "Etc/UTC" || name == "Z" || name == "utc") {
    return tz;
  }
  try {
    tz.zone_ = date::locate_zone(name);
    tz.name_ = std::string(name);
  } catch (const std::exception&) {
    return make_error(Errc::kValidation, "unknown time zone '" + std::string(name) + "'");
  }
  return tz;
}

TimeZone::Span TimeZone::span_at(int64_t sys) const {
  if (zone_ == nullptr) return Span{};
  const auto info = zone_->get_info(SysSeconds{std::chrono::seconds{sys}});
  return Span{clamp_sys(info.begin), clamp_sys(info.end), info.offset.count()};
}

int64_t TimeZone::to_sys(int64_t local) const {
  if (zone_ == nullptr) return local;
  const auto info =
      zone_->get_info(date::local_time<std::chrono::seconds>{std::chrono::seconds{local}});
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:
      return local - info.first.offset.count();
    case date::local_info::nonexistent:
      // Interpreted with the offset before the gap: lands as far past the gap's end as the
      // wall time was past its start.
      return local - info.first.offset.count();
  }
  return local - info.first.offset.count();
}

}  // namespace attune::sensor
