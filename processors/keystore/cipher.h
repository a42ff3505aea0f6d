// Cipher: authenticated encryption of datastore values and sealed parameters with one master
// key (API.md §14): libsodium XChaCha20-Poly1305 (IETF AEAD), a random 192-bit nonce per value,
// the caller's associated data (a key ref, an execution id) bound to the ciphertext.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "topology/core/result.h"

namespace attune::keystore {

// Immutable after construction: one instance may be shared by any number of threads.
class Cipher {
 public:
  static constexpr size_t kKeyBytes = 32;

  // Derives the 256-bit key from the configured secret with crypto_generichash (BLAKE2b) under
  // a fixed context, so a human-chosen secret of any length becomes a uniform key.
  explicit Cipher(std::string_view secret);

  // "v1:" + base64(nonce || ciphertext || tag). Never fails (libsodium is initialised here).
  std::string seal(std::string_view plaintext, std::string_view aad) const;
  // The plaintext, or kValidation when the text is not a sealed value, or kUnauthorized when it
  // does not authenticate under this key and `aad` (wrong master key, tampering, moved value).
  Result<std::string> open(std::string_view sealed, std::string_view aad) const;

  // True when `text` has the shape seal() produces (cheap prefix check).
  static bool looks_sealed(std::string_view text);

 private:
  std::array<unsigned char, kKeyBytes> key_{};
};

}  // namespace attune::keystore
