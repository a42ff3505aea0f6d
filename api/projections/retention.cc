// History retention decisions.
#include "api/projections/retention.h"

#include <algorithm>
#include <charconv>

#include "api/projections/schema.h"

namespace attune::projections {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 40;
constexpr int64_t kMaxAgeMs = int64_t{100} * 366 * 24 * 3600 * 1000;

Error invalid(std::string_view text, std::string_view why) {
  return make_error(Errc::kBadRequest,
                    "invalid history keep '" + std::string(text) + "': " + std::string(why) +
                        " (use all, a count of newest terminal executions like 1000, or an age "
                        "like 30s, 15m, 12h, 7d)");
}

}  // namespace

std::string HistoryKeep::describe() const {
  switch (mode) {
    case Mode::kAll:
      return "all";
    case Mode::kCount:
      return std::to_string(count) + " newest";
    case Mode::kAge: {
      const int64_t s = age.count() / 1000;
      if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
      if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
      if (s % 60 == 0) return std::to_string(s / 60) + "m";
      return std::to_string(s) + "s";
    }
  }
  return "all";
}

Result<HistoryKeep> parse_history_keep(std::string_view text) {
  if (text.empty()) return invalid(text, "empty");
  if (text == "all") return HistoryKeep{};
  std::string_view digits = text;
  int64_t unit_ms = 0;
  switch (text.back()) {
    case 's':
      unit_ms = 1000;
      break;
    case 'm':
      unit_ms = 60 * 1000;
      break;
    case 'h':
      unit_ms = 3600 * 1000;
      break;
    case 'd':
      unit_ms = 24 * 3600 * 1000;
      break;
    default:
      break;
  }
  if (unit_ms > 0) digits.remove_suffix(1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                     [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid(text, unit_ms > 0 ? "the age is not a whole number"
                                     : "not a count or an age with unit s, m, h or d");
  }
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size()) return invalid(text, "too large");
  if (n <= 0) return invalid(text, "must be at least 1");
  HistoryKeep keep;
  if (unit_ms == 0) {
    if (n > kMaxCount) return invalid(text, "count too large");
    keep.mode = HistoryKeep::Mode::kCount;
    keep.count = n;
    return keep;
  }
  if (n > kMaxAgeMs / unit_ms) return invalid(text, "age too large");
  keep.mode = HistoryKeep::Mode::kAge;
  keep.age = std::chrono::milliseconds(n * unit_ms);
  return keep;
}

int64_t excess_over(int64_t total, const HistoryKeep& keep) {
  if (keep.mode != HistoryKeep::Mode::kCount) return 0;
  return std::max<int64_t>(0, total - keep.count);
}

std::optional<int64_t> age_cutoff_ms(const HistoryKeep& keep, int64_t now_ms) {
  if (keep.mode != HistoryKeep::Mode::kAge) return std::nullopt;
  return now_ms - keep.age.count();
}

bool execution_prunable(std::string_view status) { return is_terminal_execution_status(status); }

bool enforcement_prunable(std::string_view status, bool executions_left, int64_t created_ms,
                          int64_t now_ms, std::chrono::milliseconds settle) {
  const bool resolved = status == "processed" || status == "disabled";
  return resolved && !executions_left && created_ms <= now_ms - settle.count();
}

bool event_prunable(bool enforcements_left, int64_t created_ms, int64_t now_ms,
                    std::chrono::milliseconds settle) {
  return !enforcements_left && created_ms <= now_ms - settle.count();
}

}  // namespace attune::projections
