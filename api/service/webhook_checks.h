// Pure checks of an incoming webhook against its trigger's webhook_config (API.md §9.1 checks
// 4, 6 and 7): client IP allow-list (IPv4/IPv6 addresses and CIDR ranges), payload size, HMAC.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "topology/core/record.h"

namespace attune::service {

// True if `ip` is allowed by the entries (addresses or CIDRs) in `ips`.
bool ip_allowed(std::string_view ip, const Json& ips);

// Verifies a signature header value ("sha256=<hex>" or "<hex>") over `body` with HMAC-`algorithm`
// (sha256 | sha512) in constant time.
bool hmac_valid(std::string_view body, std::string_view secret, std::string_view algorithm,
                std::string_view signature);

// Lower-case hex HMAC of `body` (for tests and clients).
std::string hmac_hex(std::string_view body, std::string_view secret, std::string_view algorithm);

}  // namespace attune::service
