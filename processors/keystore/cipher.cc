// XChaCha20-Poly1305 sealing of datastore values.
#include "processors/keystore/cipher.h"

#include <sodium.h>

#include <cstdlib>
#include <cstdio>
#include <vector>

namespace attune::keystore {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr std::string_view kContext = "attune.keystore.v1";
constexpr int kB64 = sodium_base64_VARIANT_ORIGINAL;

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
  const size_t b64_len = sodium_base64_encoded_len(raw, kB64);
  const size_t at = out.size();
  out.resize(at + b64_len);
  sodium_bin2base64(out.data() + at, b64_len, buf.data(), raw, kB64);
  out.resize(out.size() - 1);  // the terminating NUL sodium writes
  return out;
}

Result<std::string> Cipher::open(std::string_view sealed, std::string_view aad) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (!looks_sealed(sealed)) return make_error(Errc::kValidation, "not a sealed value");
  const std::string_view b64 = sealed.substr(kPrefix.size());
  std::vector<unsigned char> raw(b64.size() / 4 * 3 + 3);
  size_t raw_len = 0;
  if (sodium_base642bin(raw.data(), raw.size(), b64.data(), b64.size(), nullptr, &raw_len,
                        nullptr, kB64) != 0 ||
      raw_len < kNonce + kTag) {
    return make_error(Errc::kValidation, "malformed sealed value");
  }
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
