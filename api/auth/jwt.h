// JSON Web Tokens signed with HS256 (API.md §4.3). Stateless: verification checks the signature,
// the algorithm, `exp` and the token type; whether `sub` names a live identity is the caller's job.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::auth {

// Token types of API.md §4.2.
inline constexpr std::string_view kAccessToken = "access";
inline constexpr std::string_view kRefreshToken = "refresh";
inline constexpr std::string_view kExecutionToken = "execution";
inline constexpr std::string_view kSensorToken = "sensor";

struct Claims {
  std::string sub;         // identity id, always a JSON string on the wire
  std::string login;       // "" if absent
  std::string token_type;  // access | refresh | execution | sensor
  int64_t iat = 0;         // epoch seconds; 0 if absent
  int64_t exp = 0;         // epoch seconds; required on verify
  std::optional<std::string> scope;
  Json metadata;  // null if absent
  Json extra;     // object of every other claim (e.g. trigger_types); null or {} if none
};

// Signs and verifies HS256 tokens with one shared secret. Immutable after construction, so one
// instance may be used from any number of threads.
class JwtCodec {
 public:
  explicit JwtCodec(std::string secret);

  // Header {"alg":"HS256","typ":"JWT"}; payload = `extra` overlaid with the named claims
  // (named claims win; `scope`/`metadata` omitted when unset/null).
  std::string sign(const Claims& claims) const;

  // Errc::kUnauthorized with a message naming the reason: malformed token, unsupported algorithm
  // (anything but HS256, including "none"), bad signature, missing/expired `exp` (expired when
  // now_s >= exp), or a token_type not in `accepted_types`. An empty list accepts every type.
  Result<Claims> verify(std::string_view token,
                        std::initializer_list<std::string_view> accepted_types,
                        int64_t now_s) const;

 private:
  std::string secret_;
};

}  // namespace attune::auth
