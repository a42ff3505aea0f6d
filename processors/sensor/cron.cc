// Cron expression parsing and next-fire computation on a zone's wall clock.
#include "processors/sensor/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace attune::sensor {

namespace {

struct FieldDef {
  const char* name;
  int min, max;
  std::vector<std::string_view> names;  // index 0 names value `min`
};

const FieldDef kSecond{"second", 0, 59, {}};
const FieldDef kMinute{"minute", 0, 59, {}};
const FieldDef kHour{"hour", 0, 23, {}};
const FieldDef kDay{"day of month", 1, 31, {}};
const FieldDef kMonth{"month", 1, 12, {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG",
                                        "SEP", "OCT", "NOV", "DEC"}};
// 7 is Sunday too; it is folded onto 0 after parsing.
const FieldDef kWeekday{"day of week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Error field_error(const FieldDef& f, const std::string& message) {
  return make_error(Errc::kValidation, std::string(f.name) + " field: " + message);
}

Result<int> parse_value(const FieldDef& f, std::string_view v) {
  if (v.empty()) return field_error(f, "empty value");
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 4) return field_error(f, "value '" + std::string(v) + "' out of range");
    const int n = std::stoi(std::string(v));
    if (n < f.min || n > f.max) {
      return field_error(f, "value " + std::to_string(n) + " out of range " +
                                std::to_string(f.min) + "-" + std::to_string(f.max));
    }
    return n;
  }
  std::string upper(v);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (f.names[i] == upper) return f.min + static_cast<int>(i);
  }
  return field_error(f, "unknown value '" + std::string(v) + "'");
}

// Parses one field into a bit mask of the values it allows; `star` is set when it starts with
// `*` or is `?` (unrestricted, for the day-of-month/day-of-week rule).
Result<uint64_t> parse_field(const FieldDef& f, std::string_view text, bool allow_question,
                             bool& star) {
  star = false;
  if (text.empty()) return field_error(f, "empty");
  if (text == "?") {
    if (!allow_question) return field_error(f, "'?' is only allowed in day fields");
    text = "*";
  }
  star = text[0] == '*';
  uint64_t mask = 0;
  for (std::string_view item : split(text, ',')) {
    if (item.empty()) return field_error(f, "empty list item in '" + std::string(text) + "'");
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      const std::string_view s = item.substr(slash + 1);
      if (s.empty() || s.size() > 4 ||
          !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return field_error(f, "bad step in '" + std::string(item) + "'");
      }
      step = std::stoi(std::string(s));
      if (step < 1) return field_error(f, "step must be at least 1 in '" + std::string(item) + "'");
      item = item.substr(0, slash);
      stepped = true;
    }
    int lo = f.min, hi = f.max;
    if (item == "*") {
      // whole range
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
      auto a = parse_value(f, item.substr(0, dash));
      if (!a.ok()) return a.error();
      auto b = parse_value(f, item.substr(dash + 1));
      if (!b.ok()) return b.error();
      lo = *a;
      hi = *b;
    } else {
      auto a = parse_value(f, item);
      if (!a.ok()) return a.error();
      lo = *a;
      hi = stepped ? f.max : *a;  // "A/S": from A to the maximum
    }
    // A range whose end is below its start wraps around the field (e.g. FRI-MON, 22-2).
    const int span = f.max - f.min + 1;
    const int count = hi >= lo ? hi - lo + 1 : (f.max - lo + 1) + (hi - f.min + 1);
    for (int i = 0; i < count; i += step) {
      int v = lo + i;
      if (v > f.max) v -= span;
      mask |= uint64_t{1} << v;
    }
  }
  return mask;
}

int next_bit(uint64_t mask, int from, int max) {
  for (int v = from; v <= max; ++v) {
    if ((mask >> v) & 1) return v;
  }
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<CronExpression> CronExpression::parse(std::string_view input) {
  std::string_view text = trim(input);
  if (text.empty()) return make_error(Errc::kValidation, "empty cron expression");
  std::string expanded;
  if (text[0] == '@') {
    static const std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
        {"@yearly", "0 0 0 1 1 *"},
        {"@annually", "0 0 0 1 1 *"},
        {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"},
        {"@daily", "0 0 0 * * *"},
        {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"},
    }};
    for (const auto& [name, value] : kMacros) {
      if (text == name) expanded = value;
    }
    if (expanded.empty()) {
      return make_error(Errc::kValidation, "unknown cron macro '" + std::string(text) + "'");
    }
  }
  std::vector<std::string_view> fields;
  {
    std::string_view rest = expanded.empty() ? text : std::string_view(expanded);
    while (!rest.empty()) {
      rest = trim(rest);
      size_t end = 0;
      while (end < rest.size() && !std::isspace(static_cast<unsigned char>(rest[end]))) ++end;
      if (end > 0) fields.push_back(rest.substr(0, end));
      rest.remove_prefix(end);
    }
  }
  if (fields.size() == 5) {
    fields.insert(fields.begin(), "0");
  } else if (fields.size() != 6) {
    return make_error(Errc::kValidation, "cron expression needs 5 or 6 fields, got " +
                                             std::to_string(fields.size()));
  }
  CronExpression c;
  c.text_ = std::string(text);
  bool star = false;
  auto s = parse_field(kSecond, fields[0], false, star);
  if (!s.ok()) return s.error();
  c.seconds_ = *s;
  auto m = parse_field(kMinute, fields[1], false, star);
  if (!m.ok()) return m.error();
  c.minutes_ = *m;
  auto h = parse_field(kHour, fields[2], false, star);
  if (!h.ok()) return h.error();
  c.hours_ = static_cast<uint32_t>(*h);
  c.hour_star_ = star;
  auto d = parse_field(kDay, fields[3], true, star);
  if (!d.ok()) return d.error();
  c.days_ = static_cast<uint32_t>(*d);
  c.dom_star_ = star;
  auto mo = parse_field(kMonth, fields[4], false, star);
  if (!mo.ok()) return mo.error();
  c.months_ = static_cast<uint16_t>(*mo);
  auto w = parse_field(kWeekday, fields[5], true, star);
  if (!w.ok()) return w.error();
  uint64_t wd = *w;
  if (wd & (uint64_t{1} << 7)) wd = (wd | 1) & 0x7F;  // 7 = Sunday
  c.weekdays_ = static_cast<uint8_t>(wd);
  c.dow_star_ = star;
  return c;
}

bool CronExpression::day_matches(const Civil& c) const {
  const bool dom = (days_ >> c.day) & 1;
  const bool dow = (weekdays_ >> c.weekday) & 1;
  if (!dom_star_ && !dow_star_) return dom || dow;  // Vixie cron: either
  if (!dom_star_) return dom;
  if (!dow_star_) return dow;
  return true;
}

bool CronExpression::matches_local(int64_t local) const {
  const Civil c = civil_from_local(local);
  return ((months_ >> c.month) & 1) && day_matches(c) && ((hours_ >> c.hour) & 1) &&
         ((minutes_ >> c.minute) & 1) && ((seconds_ >> c.second) & 1);
}

std::optional<int64_t> CronExpression::next_local(int64_t local, int horizon_years) const {
  const Civil start = civil_from_local(local);
  int y = start.year;
  int mo = static_cast<int>(start.month), d = static_cast<int>(start.day);
  int h = static_cast<int>(start.hour), mi = static_cast<int>(start.minute),
      s = static_cast<int>(start.second);
  const int last_year = start.year + horizon_years;
  auto next_day = [&] {
    ++d;
    h = mi = s = 0;
  };
  auto next_month = [&] {
    if (++mo > 12) {
      mo = 1;
      ++y;
    }
    d = 1;
    h = mi = s = 0;
  };
  while (y <= last_year) {
    if (!((months_ >> mo) & 1) ||
        d > static_cast<int>(days_in_month(y, static_cast<unsigned>(mo)))) {
      next_month();
      continue;
    }
    Civil c;
    c.day = static_cast<unsigned>(d);
    c.weekday = static_cast<unsigned>(
        ((days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) % 7) + 11) % 7);
    if (!day_matches(c)) {
      next_day();
      continue;
    }
    const int nh = next_bit(hours_, h, 23);
    if (nh < 0) {
      next_day();
      continue;
    }
    if (nh != h) {
      h = nh;
      mi = s = 0;
    }
    const int nm = next_bit(minutes_, mi, 59);
    if (nm < 0) {
      ++h;
      mi = s = 0;
      if (h > 23) next_day();
      continue;
    }
    if (nm != mi) {
      mi = nm;
      s = 0;
    }
    const int ns = next_bit(seconds_, s, 59);
    if (ns < 0) {
      ++mi;
      s = 0;
      if (mi > 59) {
        mi = 0;
        ++h;
        if (h > 23) next_day();
      }
      continue;
    }
    return local_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d),
                            static_cast<unsigned>(h), static_cast<unsigned>(mi),
                            static_cast<unsigned>(ns));
  }
  return std::nullopt;
}

std::optional<int64_t> CronExpression::next_after(int64_t sys, const TimeZone& tz) const {
  // Walk the zone's constant-offset spans: within one, wall time and instants map one to one.
  int64_t s = sys + 1;
  for (int guard = 0; guard < 4096; ++guard) {
    const TimeZone::Span span = tz.span_at(s);
    int64_t local = s + span.offset;
    if (!hour_star_ && span.begin > kMinSeconds) {
      // After a fall back, wall times below the old offset's end already occurred: skip them.
      const TimeZone::Span prev = tz.span_at(span.begin - 1);
      if (prev.offset > span.offset) local = std::max(local, span.begin + prev.offset);
    }
    const auto c = next_local(local);
    if (!c) return std::nullopt;
    if (span.end >= kMaxSeconds || *c - span.offset < span.end) return *c - span.offset;
    // Past this span. A wall time in the gap of a spring forward fires when the gap ends.
    const TimeZone::Span next = tz.span_at(span.end);
    if (next.offset > span.offset) {
      const auto g = next_local(span.end + span.offset);
      if (g && *g < span.end + next.offset) return span.end;
    }
    s = span.end;
  }
  return std::nullopt;
}

}  // namespace attune::sensor
