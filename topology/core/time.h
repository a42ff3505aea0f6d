// RFC 3339 timestamps (API.md §2.5): emitted as UTC with milliseconds and 'Z'; any RFC 3339
// value accepted on input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace attune {

std::string format_rfc3339_ms(int64_t epoch_ms);  // 2026-03-01T09:30:00.125Z
std::optional<int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace attune
