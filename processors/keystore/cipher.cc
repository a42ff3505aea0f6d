// XChaCha20-Poly1305 sealing of datastore values.
#include "processors/keystore/cipher.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "processors/keystore/base64.h"

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

// Random nonces, fetched from the system CSPRNG 64 at a time per thread (one getrandom() call
// instead of one per value sealed). Nonces are public; each is used once.
void random_nonce(unsigned char* out, size_t n) {
  constexpr size_t kBatch = 64 * crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  thread_local std::array<unsigned char, kBatch> pool;
  thread_local size_t used = kBatch;
  if (n > kBatch) {
    randombytes_buf(out, n);
    return;
  }
  if (kBatch - used < n) {
    randombytes_buf(pool.data(), pool.size());
    used = 0;
  }
  std::copy_n(pool.data() + used, n, out);
  sodium_memzero(pool.data() + used, n);  // handed out once only
  used += n;
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
  random_nonce(buf.data(), kNonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(buf.data() + kNonce, &clen, bytes(plaintext),
                                             plaintext.size(), bytes(aad), aad.size(), nullptr,
                                             buf.data(), key_.data());
  const size_t raw = kNonce + static_cast<size_t>(clen);
  std::string out(kPrefix);
  out.reserve(kPrefix.size() + (raw + 2) / 3 * 4);
  base64_encode(buf.data(), raw, out);
  return out;
}

Result<std::string> Cipher::open(std::string_view sealed, std::string_view aad) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  // base64(nonce || ciphertext || tag): the 24-byte nonce is exactly the first 32 characters, so
  // the two parts decode separately — the nonce onto the stack, ciphertext and tag straight into
  // the string that is returned, where they are authenticated and decrypted in place (detached
  // tag). One allocation, one pass over the text, no intermediate copy.
  constexpr size_t kNonceChars = kNonce / 3 * 4;
  static_assert(kNonce % 3 == 0, "the nonce must end on a base64 group boundary");
  if (!looks_sealed(sealed)) return make_error(Errc::kValidation, "not a sealed value");
  const std::string_view b64 = sealed.substr(kPrefix.size());
  auto malformed = [] { return make_error(Errc::kValidation, "malformed sealed value"); };
  if (b64.size() < kNonceChars) return malformed();
  const std::string_view body = b64.substr(kNonceChars);
  const size_t body_len = base64_decoded_size(body);
  if (body_len == std::string_view::npos || body_len < kTag) return malformed();
  std::array<unsigned char, kNonce> nonce{};
  std::string plain(body_len, '\0');
  auto* buf = reinterpret_cast<unsigned char*>(plain.data());
  if (!base64_decode(b64.substr(0, kNonceChars), nonce.data()) || !base64_decode(body, buf)) {
    return malformed();
  }
  const size_t clen = body_len - kTag;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(buf, nullptr, buf, clen, buf + clen,
                                                          bytes(aad), aad.size(), nonce.data(),
                                                          key_.data()) != 0) {
    return make_error(Errc::kUnauthorized,
                      "sealed value does not authenticate (wrong encryption key or tampered)");
  }
  plain.resize(clen);
  return plain;
}

}  // namespace attune::keystore
