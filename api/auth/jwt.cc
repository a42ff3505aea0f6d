// HS256 JWT signing and verification over libsodium's HMAC-SHA256.
#include "api/auth/jwt.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "api/auth/sodium.h"

namespace attune::auth {
namespace {

constexpr int kB64Variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
using Mac = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

std::string b64url_encode(std::string_view bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), kB64Variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(), kB64Variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> b64url_decode(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, kB64Variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

// HMAC-SHA256 with a key of any length (the init/update/final API follows RFC 2104 for long
// keys, unlike the fixed-size crypto_auth_hmacsha256()).
Mac hmac(std::string_view key, std::string_view message) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  Mac mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  return mac;
}

Error unauthorized(std::string message) {
  return make_error(Errc::kUnauthorized, std::move(message));
}

// Reads a NumericDate claim (RFC 7519 §2: integer or fractional seconds).
std::optional<int64_t> numeric_date(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 9.0e15) return std::nullopt;
    return static_cast<int64_t>(std::floor(d));
  }
  return std::nullopt;
}

}  // namespace

JwtCodec::JwtCodec(std::string secret) : secret_(std::move(secret)) { detail::ensure_sodium(); }

std::string JwtCodec::sign(const Claims& claims) const {
  Json payload = claims.extra.is_object() ? claims.extra : Json::object();
  payload["sub"] = claims.sub;
  payload["login"] = claims.login;
  payload["token_type"] = claims.token_type;
  payload["iat"] = claims.iat;
  payload["exp"] = claims.exp;
  if (claims.scope) {
    payload["scope"] = *claims.scope;
  } else {
    payload.erase("scope");
  }
  if (!claims.metadata.is_null()) {
    payload["metadata"] = claims.metadata;
  } else {
    payload.erase("metadata");
  }
  static const std::string kHeader = b64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  std::string signing_input = kHeader + "." + b64url_encode(payload.dump());
  const Mac mac = hmac(secret_, signing_input);
  signing_input += '.';
  signing_input += b64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()),
                                                  mac.size()));
  return signing_input;
}

Result<Claims> JwtCodec::verify(std::string_view token,
                                std::initializer_list<std::string_view> accepted_types,
                                int64_t now_s) const {
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return unauthorized("Invalid token: malformed (expected three dot-separated parts)");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  const auto header_text = b64url_decode(header_b64);
  if (!header_text) return unauthorized("Invalid token: malformed header encoding");
  const Json header = Json::parse(*header_text, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return unauthorized("Invalid token: header is not a JSON object");
  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get<std::string>() != "HS256") {
    return unauthorized("Invalid token: unsupported algorithm (only HS256 is accepted)");
  }

  const auto signature = b64url_decode(signature_b64);
  if (!signature || signature->size() != crypto_auth_hmacsha256_BYTES) {
    return unauthorized("Invalid token: bad signature");
  }
  const Mac expected = hmac(secret_, token.substr(0, dot2));
  if (crypto_verify_32(expected.data(), reinterpret_cast<const unsigned char*>(signature->data())) !=
      0) {
    return unauthorized("Invalid token: bad signature");
  }

  const auto payload_text = b64url_decode(payload_b64);
  if (!payload_text) return unauthorized("Invalid token: malformed payload encoding");
  Json payload = Json::parse(*payload_text, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object()) return unauthorized("Invalid token: payload is not a JSON object");

  Claims claims;
  const auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty()) {
    return unauthorized("Invalid token: 'sub' must be a non-empty string");
  }
  claims.sub = sub->get<std::string>();

  const auto exp = payload.find("exp");
  if (exp == payload.end()) return unauthorized("Invalid token: missing 'exp'");
  const auto exp_value = numeric_date(*exp);
  if (!exp_value) return unauthorized("Invalid token: 'exp' must be a number");
  claims.exp = *exp_value;
  if (now_s >= claims.exp) return unauthorized("Token expired");

  if (const auto iat = payload.find("iat"); iat != payload.end()) {
    const auto iat_value = numeric_date(*iat);
    if (!iat_value) return unauthorized("Invalid token: 'iat' must be a number");
    claims.iat = *iat_value;
  }

  const auto type = payload.find("token_type");
  if (type == payload.end() || !type->is_string()) {
    return unauthorized("Invalid token: missing 'token_type'");
  }
  claims.token_type = type->get<std::string>();
  if (accepted_types.size() != 0 &&
      std::find(accepted_types.begin(), accepted_types.end(), claims.token_type) ==
          accepted_types.end()) {
    return unauthorized("Invalid token type '" + claims.token_type + "' for this endpoint");
  }

  if (const auto login = payload.find("login"); login != payload.end()) {
    if (!login->is_string()) return unauthorized("Invalid token: 'login' must be a string");
    claims.login = login->get<std::string>();
  }
  if (const auto scope = payload.find("scope"); scope != payload.end() && !scope->is_null()) {
    if (!scope->is_string()) return unauthorized("Invalid token: 'scope' must be a string");
    claims.scope = scope->get<std::string>();
  }
  if (const auto metadata = payload.find("metadata"); metadata != payload.end()) {
    claims.metadata = *metadata;
  }

  for (const char* known : {"sub", "login", "token_type", "iat", "exp", "scope", "metadata"}) {
    payload.erase(known);
  }
  claims.extra = std::move(payload);
  return claims;
}

}  // namespace attune::auth
