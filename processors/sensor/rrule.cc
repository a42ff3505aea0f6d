// RFC 5545 recurrence rules: parsing and expansion period by period (like python-dateutil).
#include "processors/sensor/rrule.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace attune::sensor {

namespace {

constexpr std::array<std::string_view, 7> kDays = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};
constexpr int kMaxPeriodsPerFill = 2'000'000;

Error bad(const std::string& message) { return make_error(Errc::kValidation, message); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t pos = s.find(sep, start);
    const size_t end = pos == std::string_view::npos ? s.size() : pos;
    if (end > start) out.push_back(s.substr(start, end - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Result<int> parse_int(std::string_view part, std::string_view v, int lo, int hi, bool allow_neg) {
  std::string_view digits = v;
  bool neg = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    neg = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad(std::string(part) + ": '" + std::string(v) + "' is not a number");
  }
  int n = std::stoi(std::string(digits));
  if (neg) {
    if (!allow_neg) return bad(std::string(part) + ": negative values are not allowed");
    n = -n;
  }
  if (std::abs(n) < lo || std::abs(n) > hi || (n == 0 && lo > 0)) {
    return bad(std::string(part) + ": " + std::to_string(n) + " out of range");
  }
  return n;
}

Result<std::vector<int>> int_list(std::string_view part, std::string_view v, int lo, int hi,
                                  bool allow_neg) {
  std::vector<int> out;
  for (auto item : split(v, ',')) {
    auto n = parse_int(part, item, lo, hi, allow_neg);
    if (!n.ok()) return n.error();
    out.push_back(*n);
  }
  if (out.empty()) return bad(std::string(part) + ": empty list");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<int> weekday(std::string_view v) {
  const std::string u = upper(v);
  for (size_t i = 0; i < kDays.size(); ++i) {
    if (kDays[i] == u) return static_cast<int>(i);
  }
  return bad("unknown weekday '" + std::string(v) + "'");
}

// YYYYMMDD[THHMMSS[Z]] → wall seconds; `utc` set when it ends in Z.
Result<int64_t> parse_datetime(std::string_view v, bool& utc) {
  utc = false;
  auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (v.size() < 8 || !digits(v.substr(0, 8))) return bad("bad date-time '" + std::string(v) + "'");
  const int y = std::stoi(std::string(v.substr(0, 4)));
  const unsigned mo = static_cast<unsigned>(std::stoi(std::string(v.substr(4, 2))));
  const unsigned d = static_cast<unsigned>(std::stoi(std::string(v.substr(6, 2))));
  unsigned h = 0, mi = 0, s = 0;
  if (v.size() > 8) {
    if (v[8] != 'T' || v.size() < 15 || !digits(v.substr(9, 6))) {
      return bad("bad date-time '" + std::string(v) + "'");
    }
    h = static_cast<unsigned>(std::stoi(std::string(v.substr(9, 2))));
    mi = static_cast<unsigned>(std::stoi(std::string(v.substr(11, 2))));
    s = static_cast<unsigned>(std::stoi(std::string(v.substr(13, 2))));
    if (v.size() == 16 && (v[15] == 'Z' || v[15] == 'z')) {
      utc = true;
    } else if (v.size() != 15) {
      return bad("bad date-time '" + std::string(v) + "'");
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60) {
    return bad("bad date-time '" + std::string(v) + "'");
  }
  return local_from_civil(y, mo, d, h, mi, std::min(s, 59u));
}

int days_in_year(int y) { return is_leap_year(y) ? 366 : 365; }

// RFC 5545 week number of day-of-year `yd` (1-based) in year y, weeks starting on `wkst`;
// 0 when the day belongs to the previous year's last week. `weeks` gets the year's week count.
int week_number(int y, unsigned yd, int wkst, int& weeks) {
  const unsigned jan1_wd =
      static_cast<unsigned>(((days_from_civil(y, 1, 1) % 7) + 11) % 7);
  const int offset = (static_cast<int>(jan1_wd) - wkst + 7) % 7;  // week start → Jan 1
  const int week1 = offset <= 3 ? -offset : 7 - offset;           // 0-based day of week 1
  const int ndays = days_in_year(y);
  weeks = (ndays - week1) / 7 + ((ndays - week1) % 7 >= 4 ? 1 : 0);
  const int idx = static_cast<int>(yd) - 1 - week1;
  if (idx < 0) return 0;
  const int w = idx / 7 + 1;
  return w > weeks ? weeks + 1 : w;  // weeks+1: week 1 of the next year
}

}  // namespace

Result<RecurrenceRule> RecurrenceRule::parse(std::string_view input) {
  RecurrenceRule r;
  r.text = std::string(input);
  std::string normalized(input);
  for (auto& c : normalized) {
    if (c == '\r') c = '\n';
  }
  bool have_freq = false;
  std::string rule_line;
  for (auto line : split(normalized, '\n')) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    const std::string head = upper(line.substr(0, std::min<size_t>(line.size(), 7)));
    if (head.rfind("DTSTART", 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) return bad("DTSTART needs ':'");
      for (auto param : split(line.substr(7, colon - 7), ';')) {
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && upper(param.substr(0, eq)) == "TZID") {
          r.dtstart_zone = std::string(param.substr(eq + 1));
          auto tz = TimeZone::locate(r.dtstart_zone);
          if (!tz.ok()) return bad("DTSTART: " + tz.error().message);
        }
      }
      bool utc = false;
      auto t = parse_datetime(line.substr(colon + 1), utc);
      if (!t.ok()) return bad("DTSTART: " + t.error().message);
      r.dtstart = *t;
      r.dtstart_utc = utc;
      continue;
    }
    if (head.rfind("RRULE:", 0) == 0) line.remove_prefix(6);
    if (!rule_line.empty()) return bad("more than one RRULE");
    rule_line = std::string(line);
  }
  if (rule_line.empty()) return bad("rrule needs FREQ=...");
  std::set<std::string> seen;
  for (auto part : split(rule_line, ';')) {
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) return bad("'" + std::string(part) + "' is not NAME=VALUE");
    const std::string name = upper(part.substr(0, eq));
    const std::string_view value = part.substr(eq + 1);
    if (!seen.insert(name).second) return bad(name + " given twice");
    if (name == "FREQ") {
      static const std::array<std::pair<std::string_view, Freq>, 7> kFreqs = {{
          {"SECONDLY", Freq::kSecondly},
          {"MINUTELY", Freq::kMinutely},
          {"HOURLY", Freq::kHourly},
          {"DAILY", Freq::kDaily},
          {"WEEKLY", Freq::kWeekly},
          {"MONTHLY", Freq::kMonthly},
          {"YEARLY", Freq::kYearly},
      }};
      const std::string v = upper(value);
      have_freq = false;
      for (const auto& [n, f] : kFreqs) {
        if (n == v) {
          r.freq = f;
          have_freq = true;
        }
      }
      if (!have_freq) return bad("FREQ: unknown frequency '" + std::string(value) + "'");
    } else if (name == "INTERVAL") {
      auto n = parse_int("INTERVAL", value, 1, 1'000'000, false);
      if (!n.ok()) return n.error();
      r.interval = *n;
    } else if (name == "COUNT") {
      auto n = parse_int("COUNT", value, 1, 1'000'000'000, false);
      if (!n.ok()) return n.error();
      r.count = *n;
    } else if (name == "UNTIL") {
      bool utc = false;
      auto t = parse_datetime(value, utc);
      if (!t.ok()) return bad("UNTIL: " + t.error().message);
      // A date-only UNTIL includes that whole day.
      r.until = value.size() == 8 ? *t + 86399 : *t;
      r.until_utc = utc;
    } else if (name == "BYSECOND") {
      auto v = int_list(name, value, 0, 59, false);
      if (!v.ok()) return v.error();
      r.by_second = *v;
    } else if (name == "BYMINUTE") {
      auto v = int_list(name, value, 0, 59, false);
      if (!v.ok()) return v.error();
      r.by_minute = *v;
    } else if (name == "BYHOUR") {
      auto v = int_list(name, value, 0, 23, false);
      if (!v.ok()) return v.error();
      r.by_hour = *v;
    } else if (name == "BYMONTHDAY") {
      auto v = int_list(name, value, 1, 31, true);
      if (!v.ok()) return v.error();
      r.by_month_day = *v;
    } else if (name == "BYYEARDAY") {
      auto v = int_list(name, value, 1, 366, true);
      if (!v.ok()) return v.error();
      r.by_year_day = *v;
    } else if (name == "BYWEEKNO") {
      auto v = int_list(name, value, 1, 53, true);
      if (!v.ok()) return v.error();
      r.by_week_no = *v;
    } else if (name == "BYMONTH") {
      auto v = int_list(name, value, 1, 12, false);
      if (!v.ok()) return v.error();
      r.by_month = *v;
    } else if (name == "BYSETPOS") {
      auto v = int_list(name, value, 1, 366, true);
      if (!v.ok()) return v.error();
      r.by_set_pos = *v;
    } else if (name == "WKST") {
      auto d = weekday(value);
      if (!d.ok()) return bad("WKST: " + d.error().message);
      r.wkst = *d;
    } else if (name == "BYDAY") {
      for (auto item : split(value, ',')) {
        if (item.size() < 2) return bad("BYDAY: bad day '" + std::string(item) + "'");
        auto d = weekday(item.substr(item.size() - 2));
        if (!d.ok()) return bad("BYDAY: " + d.error().message);
        int ordinal = 0;
        if (item.size() > 2) {
          auto n = parse_int("BYDAY", item.substr(0, item.size() - 2), 1, 53, true);
          if (!n.ok()) return n.error();
          ordinal = *n;
        }
        r.by_day.emplace_back(ordinal, *d);
      }
    } else {
      return bad("unsupported rrule part '" + name + "'");
    }
  }
  if (!seen.count("FREQ")) return bad("rrule needs FREQ=...");
  if (r.count && r.until) return bad("COUNT and UNTIL cannot both be given");
  const bool ordinals =
      std::any_of(r.by_day.begin(), r.by_day.end(), [](auto& d) { return d.first != 0; });
  if (ordinals && r.freq != Freq::kMonthly && r.freq != Freq::kYearly) {
    return bad("BYDAY ordinals (e.g. 1MO) need FREQ=MONTHLY or FREQ=YEARLY");
  }
  if (ordinals && r.freq == Freq::kYearly && !r.by_week_no.empty()) {
    return bad("BYDAY ordinals cannot be combined with BYWEEKNO");
  }
  if (!r.by_week_no.empty() && r.freq != Freq::kYearly) return bad("BYWEEKNO needs FREQ=YEARLY");
  if (!r.by_year_day.empty() &&
      (r.freq == Freq::kDaily || r.freq == Freq::kWeekly || r.freq == Freq::kMonthly)) {
    return bad("BYYEARDAY is not allowed with FREQ=DAILY, WEEKLY or MONTHLY");
  }
  if (!r.by_month_day.empty() && r.freq == Freq::kWeekly) {
    return bad("BYMONTHDAY is not allowed with FREQ=WEEKLY");
  }
  return r;
}

RecurrenceSet::RecurrenceSet(RecurrenceRule rule, TimeZone tz, int64_t dtstart_local,
                             bool zero_unset_times)
    : rule_(std::move(rule)), tz_(std::move(tz)), dtstart_(dtstart_local) {
  start_ = civil_from_local(dtstart_);
  auto& r = rule_;
  // RFC 5545 defaults: the day parts a rule leaves open come from DTSTART.
  const bool no_days = r.by_week_no.empty() && r.by_year_day.empty() && r.by_month_day.empty() &&
                       r.by_day.empty();
  if (r.freq == Freq::kYearly && no_days) {
    if (r.by_month.empty()) r.by_month = {static_cast<int>(start_.month)};
    r.by_month_day = {static_cast<int>(start_.day)};
  } else if (r.freq == Freq::kYearly && !r.by_week_no.empty() && r.by_day.empty() &&
             r.by_month_day.empty() && r.by_year_day.empty()) {
    r.by_day = {{0, static_cast<int>(start_.weekday)}};
  } else if (r.freq == Freq::kMonthly && r.by_month_day.empty() && r.by_day.empty() &&
             r.by_year_day.empty()) {
    r.by_month_day = {static_cast<int>(start_.day)};
  } else if (r.freq == Freq::kWeekly && r.by_day.empty()) {
    r.by_day = {{0, static_cast<int>(start_.weekday)}};
  }
  auto part = [&](const std::vector<int>& by, unsigned from_start, bool finer_than_freq) {
    if (!by.empty()) return by;
    return std::vector<int>{finer_than_freq && zero_unset_times ? 0 : static_cast<int>(from_start)};
  };
  hours_ = part(r.by_hour, start_.hour, true);
  minutes_ = part(r.by_minute, start_.minute, true);
  seconds_ = part(r.by_second, start_.second, true);
  reset();
}

void RecurrenceSet::reset() {
  switch (rule_.freq) {
    case Freq::kYearly:
      period_ = start_.year;
      break;
    case Freq::kMonthly:
      period_ = int64_t{start_.year} * 12 + (start_.month - 1);
      break;
    case Freq::kWeekly: {
      const int64_t day = days_from_civil(start_.year, start_.month, start_.day);
      period_ = day - ((static_cast<int>(start_.weekday) - rule_.wkst + 7) % 7);
      break;
    }
    case Freq::kDaily:
      period_ = days_from_civil(start_.year, start_.month, start_.day);
      break;
    case Freq::kHourly:
      period_ = dtstart_ - dtstart_ % 3600;
      break;
    case Freq::kMinutely:
      period_ = dtstart_ - dtstart_ % 60;
      break;
    case Freq::kSecondly:
      period_ = dtstart_;
      break;
  }
  base_period_ = period_;
  emitted_ = 0;
  pending_.clear();
  pending_pos_ = 0;
  done_ = false;
  last_query_ = kMinSeconds;
}

void RecurrenceSet::advance_period() {
  const int64_t n = rule_.interval;
  switch (rule_.freq) {
    case Freq::kYearly:
    case Freq::kMonthly:
    case Freq::kDaily:
      period_ += n;
      break;
    case Freq::kWeekly:
      period_ += 7 * n;
      break;
    case Freq::kHourly:
      period_ += 3600 * n;
      break;
    case Freq::kMinutely:
      period_ += 60 * n;
      break;
    case Freq::kSecondly:
      period_ += n;
      break;
  }
}

void RecurrenceSet::seek(int64_t local) {
  const Civil c = civil_from_local(local);
  const int64_t n = rule_.interval;
  int64_t target = period_;
  switch (rule_.freq) {
    case Freq::kYearly:
      target = start_.year + (c.year - start_.year) / n * n;
      break;
    case Freq::kMonthly: {
      const int64_t base = int64_t{start_.year} * 12 + (start_.month - 1);
      const int64_t want = int64_t{c.year} * 12 + (c.month - 1);
      target = base + (want - base) / n * n;
      break;
    }
    case Freq::kWeekly:
    case Freq::kDaily: {
      const int64_t unit = rule_.freq == Freq::kWeekly ? 7 * n : n;
      const int64_t want = days_from_civil(c.year, c.month, c.day);
      target = base_period_ + (want - base_period_) / unit * unit;
      break;
    }
    case Freq::kHourly:
    case Freq::kMinutely:
    case Freq::kSecondly: {
      const int64_t len = rule_.freq == Freq::kHourly ? 3600 : rule_.freq == Freq::kMinutely ? 60 : 1;
      target = base_period_ + (local - base_period_) / (len * n) * (len * n);
      break;
    }
  }
  if (target > period_) {
    period_ = target;
    pending_.clear();
    pending_pos_ = 0;
  }
}

int RecurrenceSet::period_year() const {
  switch (rule_.freq) {
    case Freq::kYearly:
      return static_cast<int>(std::min<int64_t>(period_, 1'000'000));
    case Freq::kMonthly:
      return static_cast<int>(std::min<int64_t>(period_ / 12, 1'000'000));
    case Freq::kWeekly:
    case Freq::kDaily:
      return civil_from_local(period_ * 86400).year;
    case Freq::kHourly:
    case Freq::kMinutely:
    case Freq::kSecondly:
      return civil_from_local(period_).year;
  }
  return start_.year;
}

bool RecurrenceSet::day_ok(int y, unsigned m, unsigned d, unsigned wd, unsigned yd) const {
  const auto& r = rule_;
  if (!r.by_month.empty() &&
      !std::binary_search(r.by_month.begin(), r.by_month.end(), static_cast<int>(m))) {
    return false;
  }
  if (!r.by_week_no.empty()) {
    int weeks = 0;
    const int w = week_number(y, yd, r.wkst, weeks);
    bool ok = false;
    for (int n : r.by_week_no) ok = ok || n == w || (n < 0 && weeks + 1 + n == w);
    if (!ok) return false;
  }
  const int ndays = days_in_year(y);
  if (!r.by_year_day.empty()) {
    bool ok = false;
    for (int n : r.by_year_day) {
      ok = ok || n == static_cast<int>(yd) || (n < 0 && ndays + 1 + n == static_cast<int>(yd));
    }
    if (!ok) return false;
  }
  const int dim = static_cast<int>(days_in_month(y, m));
  if (!r.by_month_day.empty()) {
    bool ok = false;
    for (int n : r.by_month_day) {
      ok = ok || n == static_cast<int>(d) || (n < 0 && dim + 1 + n == static_cast<int>(d));
    }
    if (!ok) return false;
  }
  if (!r.by_day.empty()) {
    const bool in_month = r.freq == Freq::kMonthly || !r.by_month.empty();
    const int nth = in_month ? (static_cast<int>(d) - 1) / 7 + 1 : (static_cast<int>(yd) - 1) / 7 + 1;
    const int nth_last =
        in_month ? -((dim - static_cast<int>(d)) / 7 + 1) : -((ndays - static_cast<int>(yd)) / 7 + 1);
    bool ok = false;
    for (const auto& [ordinal, day] : r.by_day) {
      if (day != static_cast<int>(wd)) continue;
      ok = ok || ordinal == 0 || ordinal == nth || ordinal == nth_last;
    }
    if (!ok) return false;
  }
  return true;
}

std::vector<int64_t> RecurrenceSet::expand_period() {
  std::vector<int64_t> days;  // day numbers
  switch (rule_.freq) {
    case Freq::kYearly: {
      const int y = static_cast<int>(period_);
      const int64_t first = days_from_civil(y, 1, 1);
      for (int i = 0; i < days_in_year(y); ++i) days.push_back(first + i);
      break;
    }
    case Freq::kMonthly: {
      const int y = static_cast<int>(period_ / 12);
      const unsigned m = static_cast<unsigned>(period_ % 12 + 1);
      const int64_t first = days_from_civil(y, m, 1);
      for (unsigned i = 0; i < days_in_month(y, m); ++i) days.push_back(first + i);
      break;
    }
    case Freq::kWeekly:
      for (int i = 0; i < 7; ++i) days.push_back(period_ + i);
      break;
    case Freq::kDaily:
      days.push_back(period_);
      break;
    case Freq::kHourly:
    case Freq::kMinutely:
    case Freq::kSecondly:
      days.push_back(period_ >= 0 ? period_ / 86400 : (period_ - 86399) / 86400);
      break;
  }
  std::vector<int64_t> out;
  for (int64_t day : days) {
    const Civil c = civil_from_local(day * 86400);
    if (!day_ok(c.year, c.month, c.day, c.weekday, c.yearday)) continue;
    const int64_t base = day * 86400;
    if (rule_.freq == Freq::kHourly || rule_.freq == Freq::kMinutely ||
        rule_.freq == Freq::kSecondly) {
      const Civil p = civil_from_local(period_);
      auto in = [](const std::vector<int>& by, unsigned v) {
        return by.empty() || std::binary_search(by.begin(), by.end(), static_cast<int>(v));
      };
      if (!in(rule_.by_hour, p.hour)) continue;
      if (rule_.freq == Freq::kHourly) {
        for (int mi : minutes_) {
          for (int s : seconds_) out.push_back(base + p.hour * 3600 + mi * 60 + s);
        }
        continue;
      }
      if (!in(rule_.by_minute, p.minute)) continue;
      if (rule_.freq == Freq::kMinutely) {
        for (int s : seconds_) out.push_back(base + p.hour * 3600 + p.minute * 60 + s);
        continue;
      }
      if (!in(rule_.by_second, p.second)) continue;
      out.push_back(period_);
      continue;
    }
    for (int h : hours_) {
      for (int mi : minutes_) {
        for (int s : seconds_) out.push_back(base + h * 3600 + mi * 60 + s);
      }
    }
  }
  std::sort(out.begin(), out.end());
  if (!rule_.by_set_pos.empty() && !out.empty()) {
    std::vector<int64_t> picked;
    const int n = static_cast<int>(out.size());
    for (int pos : rule_.by_set_pos) {
      const int idx = pos > 0 ? pos - 1 : n + pos;
      if (idx >= 0 && idx < n) picked.push_back(out[static_cast<size_t>(idx)]);
    }
    std::sort(picked.begin(), picked.end());
    picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
    out = std::move(picked);
  }
  std::erase_if(out, [this](int64_t t) { return t < dtstart_; });
  return out;
}

bool RecurrenceSet::fill() {
  for (int i = 0; i < kMaxPeriodsPerFill; ++i) {
    if (rule_.until && !rule_.until_utc && period_ > *rule_.until &&
        (rule_.freq == Freq::kHourly || rule_.freq == Freq::kMinutely ||
         rule_.freq == Freq::kSecondly)) {
      return false;
    }
    if (period_year() > start_.year + 1000) return false;
    // Sub-daily periods on days the day parts exclude: jump to the next day.
    if (rule_.freq == Freq::kHourly || rule_.freq == Freq::kMinutely ||
        rule_.freq == Freq::kSecondly) {
      const Civil c = civil_from_local(period_);
      if (!day_ok(c.year, c.month, c.day, c.weekday, c.yearday)) {
        const int64_t len =
            (rule_.freq == Freq::kHourly ? 3600 : rule_.freq == Freq::kMinutely ? 60 : 1) *
            int64_t{rule_.interval};
        const int64_t next_day = (period_ / 86400 + 1) * 86400;
        period_ += (next_day - period_ + len - 1) / len * len;
        continue;
      }
    }
    pending_ = expand_period();
    pending_pos_ = 0;
    advance_period();
    if (!pending_.empty()) return true;
  }
  return false;
}

std::optional<int64_t> RecurrenceSet::next_after(int64_t sys) {
  if (sys < last_query_) reset();
  last_query_ = sys;
  if (!rule_.count && !done_) seek(tz_.to_local(sys) - 2 * 86400);
  while (!done_) {
    if (pending_pos_ >= pending_.size() && !fill()) {
      done_ = true;
      break;
    }
    if (rule_.count && emitted_ >= *rule_.count) {
      done_ = true;
      break;
    }
    const int64_t local = pending_[pending_pos_];
    const int64_t inst = tz_.to_sys(local);
    if (rule_.until && (rule_.until_utc ? inst > *rule_.until : local > *rule_.until)) {
      done_ = true;
      break;
    }
    if (inst > sys) return inst;
    ++pending_pos_;
    ++emitted_;
  }
  return std::nullopt;
}

}  // namespace attune::sensor
