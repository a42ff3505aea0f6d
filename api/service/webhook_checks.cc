#include "api/service/webhook_checks.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <array>
#include <cstring>

namespace attune::service {

namespace {

// Parses an IPv4 or IPv6 address into 16 bytes (IPv4 as ::ffff:a.b.c.d); false if invalid.
bool parse_ip(std::string_view text, std::array<unsigned char, 16>& out, bool& v4) {
  std::string s(text);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    out.fill(0);
    out[10] = out[11] = 0xFF;
    std::memcpy(out.data() + 12, &a4, 4);
    v4 = true;
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(out.data(), &a6, 16);
    v4 = out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 0 && out[4] == 0 && out[5] == 0 &&
         out[6] == 0 && out[7] == 0 && out[8] == 0 && out[9] == 0 && out[10] == 0xFF &&
         out[11] == 0xFF;
    return true;
  }
  return false;
}

bool in_range(const std::array<unsigned char, 16>& ip, const std::array<unsigned char, 16>& net,
              int prefix_bits) {
  for (int i = 0; i < 16 && prefix_bits > 0; ++i, prefix_bits -= 8) {
    const int bits = prefix_bits >= 8 ? 8 : prefix_bits;
    const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - bits));
    if ((ip[i] & mask) != (net[i] & mask)) return false;
  }
  return true;
}

}  // namespace

bool ip_allowed(std::string_view ip, const Json& ips) {
  std::array<unsigned char, 16> addr{};
  bool v4 = false;
  if (!parse_ip(ip, addr, v4) || !ips.is_array()) return false;
  for (const auto& entry : ips) {
    if (!entry.is_string()) continue;
    std::string_view e = entry.get_ref<const std::string&>();
    const auto slash = e.find('/');
    std::array<unsigned char, 16> net{};
    bool net_v4 = false;
    if (!parse_ip(e.substr(0, slash), net, net_v4)) continue;
    int bits = 128;
    if (slash != std::string_view::npos) {
      const std::string len(e.substr(slash + 1));
      if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      bits = std::stoi(len) + (net_v4 ? 96 : 0);
      if (bits > 128) continue;
    }
    if (in_range(addr, net, bits)) return true;
  }
  return false;
}

std::string hmac_hex(std::string_view body, std::string_view secret, std::string_view algorithm) {
  if (sodium_init() < 0) return {};
  std::array<unsigned char, crypto_auth_hmacsha512_BYTES> mac{};
  size_t len = 0;
  const auto* key = reinterpret_cast<const unsigned char*>(secret.data());
  const auto* msg = reinterpret_cast<const unsigned char*>(body.data());
  if (algorithm == "sha512") {
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, key, secret.size());
    crypto_auth_hmacsha512_update(&st, msg, body.size());
    crypto_auth_hmacsha512_final(&st, mac.data());
    len = crypto_auth_hmacsha512_BYTES;
  } else {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, secret.size());
    crypto_auth_hmacsha256_update(&st, msg, body.size());
    crypto_auth_hmacsha256_final(&st, mac.data());
    len = crypto_auth_hmacsha256_BYTES;
  }
  std::string hex(len * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), mac.data(), len);
  hex.resize(len * 2);
  return hex;
}

bool hmac_valid(std::string_view body, std::string_view secret, std::string_view algorithm,
                std::string_view signature) {
  if (const auto eq = signature.find('='); eq != std::string_view::npos) {
    if (signature.substr(0, eq) != algorithm) return false;
    signature = signature.substr(eq + 1);
  }
  const std::string expected = hmac_hex(body, secret, algorithm);
  if (expected.empty() || signature.size() != expected.size()) return false;
  std::string lower(signature);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return sodium_memcmp(lower.data(), expected.data(), expected.size()) == 0;
}

}  // namespace attune::service
