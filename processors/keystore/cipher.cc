// XChaCha20-Poly1305 sealing of datastore values.
#include "processors/keystore/cipher.h"

#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <vector>

namespace attune::keystore {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr std::string_view kContext = "attune.keystore.v1";

void ensure_sodium() {
  static const bool ok = [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "attune: libsodium failed to initialise\n");
      std::abort();  // no CSPRNG: no nonce can be trusted
    }
    return true;
  }();
  (void)ok;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Table-driven base64 (standard alphabet, padded). libsodium's codec is constant-time and an
// order of magnitude slower; ciphertext is not secret, so timing does not matter here.
constexpr char kB64Chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void b64_encode(const unsigned char* in, size_t n, std::string& out) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out += kB64Chars[v >> 18];
    out += kB64Chars[(v >> 12) & 63];
    out += kB64Chars[(v >> 6) & 63];
    out += kB64Chars[v & 63];
  }
  if (i + 1 == n) {
    const uint32_t v = uint32_t{in[i]} << 16;
    out += kB64Chars[v >> 18];
    out += kB64Chars[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == n) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    out += kB64Chars[v >> 18];
    out += kB64Chars[(v >> 12) & 63];
    out += kB64Chars[(v >> 6) & 63];
    out += '=';
  }
}

// False on a character outside the alphabet, bad padding or a length not a multiple of 4.
bool b64_decode(std::string_view in, std::vector<unsigned char>& out) {
  static const auto kTable = [] {
    std::array<uint32_t, 256> t{};
    t.fill(0xffffffffu);
    for (uint32_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64Chars[i])] = i;
    return t;
  }();
  if (in.empty()) {
    out.clear();
    return true;
  }
  if (in.size() % 4 != 0) return false;
  const size_t pad = in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
  out.resize(in.size() / 4 * 3 - pad);
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  unsigned char* dst = out.data();
  const size_t groups = in.size() / 4 - 1;  // every group but the last, which may be padded
  uint32_t bad = 0;
  for (size_t g = 0; g < groups; ++g, src += 4, dst += 3) {
    const uint32_t a = kTable[src[0]], b = kTable[src[1]], c = kTable[src[2]], d = kTable[src[3]];
    bad |= a | b | c | d;
    const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    dst[0] = static_cast<unsigned char>(v >> 16);
    dst[1] = static_cast<unsigned char>(v >> 8);
    dst[2] = static_cast<unsigned char>(v);
  }
  if (bad & ~63u) return false;
  const uint32_t a = kTable[src[0]], b = kTable[src[1]];
  const uint32_t c = pad >= 2 ? 0 : kTable[src[2]], d = pad >= 1 ? 0 : kTable[src[3]];
  if ((a | b | c | d) & ~63u) return false;
  const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
  dst[0] = static_cast<unsigned char>(v >> 16);
  if (pad < 2) dst[1] = static_cast<unsigned char>(v >> 8);
  if (pad < 1) dst[2] = static_cast<unsigned char>(v);
  return true;
}

}  // namespace

Cipher::Cipher(std::string_view secret) {
  ensure_sodium();
  crypto_generichash_state st;
  crypto_generichash_init(&st, bytes(kContext), kContext.size(), key_.size());
  crypto_generichash_update(&st, bytes(secret), secret.size());
  crypto_generichash_final(&st, key_.data(), key_.size());
}

bool Cipher::looks_sealed(std::string_view text) { return text.rfind(kPrefix, 0) == 0; }

std::string Cipher::seal(std::string_view plaintext, std::string_view aad) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  std::vector<unsigned char> buf(kNonce + plaintext.size() + kTag);
  randombytes_buf(buf.data(), kNonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(buf.data() + kNonce, &clen, bytes(plaintext),
                                             plaintext.size(), bytes(aad), aad.size(), nullptr,
                                             buf.data(), key_.data());
  const size_t raw = kNonce + static_cast<size_t>(clen);
  std::string out(kPrefix);
  out.reserve(kPrefix.size() + (raw + 2) / 3 * 4);
  b64_encode(buf.data(), raw, out);
  return out;
}

Result<std::string> Cipher::open(std::string_view sealed, std::string_view aad) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (!looks_sealed(sealed)) return make_error(Errc::kValidation, "not a sealed value");
  const std::string_view b64 = sealed.substr(kPrefix.size());
  std::vector<unsigned char> raw;
  if (!b64_decode(b64, raw) || raw.size() < kNonce + kTag) {
    return make_error(Errc::kValidation, "malformed sealed value");
  }
  const size_t raw_len = raw.size();
  std::string plain(raw_len - kNonce - kTag, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr, raw.data() + kNonce,
          raw_len - kNonce, bytes(aad), aad.size(), raw.data(), key_.data()) != 0) {
    return make_error(Errc::kUnauthorized,
                      "sealed value does not authenticate (wrong encryption key or tampered)");
  }
  plain.resize(static_cast<size_t>(plen));
  return plain;
}

}  // namespace attune::keystore
