// Argon2id password hashing over libsodium's crypto_pwhash_str API.
#include "api/auth/password.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "api/auth/sodium.h"

namespace attune::auth {

std::string hash_password(std::string_view password) {
  detail::ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    spdlog::critical("crypto_pwhash_str_alg failed (out of memory?); cannot hash passwords");
    std::abort();
  }
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  detail::ensure_sodium();
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES ||
      hash.find('\0') != std::string_view::npos) {
    return false;
  }
  const std::string terminated(hash);  // crypto_pwhash_str_verify needs a C string
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

}  // namespace attune::auth
