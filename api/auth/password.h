// Password hashing for local identities: Argon2id via libsodium, self-describing encoded hashes.
#pragma once

#include <string>
#include <string_view>

namespace attune::auth {

// Returns an encoded Argon2id hash ("$argon2id$v=19$m=...") with a random salt, using libsodium's
// INTERACTIVE limits (~64 MiB, ~0.1 s). Aborts with a logged reason only if the hash cannot be
// computed at all (out of memory), which a server cannot recover from anyway.
std::string hash_password(std::string_view password);

// True iff `hash` is an encoded hash produced by hash_password() (or any libsodium/argon2
// "$argon2id$"/"$argon2i$" string) for exactly `password`. Malformed hashes verify false.
bool verify_password(std::string_view hash, std::string_view password);

}  // namespace attune::auth
