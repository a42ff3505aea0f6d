// Internal: one-time libsodium initialisation shared by every auth entry point.
#pragma once

namespace attune::auth::detail {

// Initialises libsodium exactly once (thread-safe, idempotent). Aborts with a logged reason if
// libsodium cannot initialise: without a working CSPRNG no secret or token can be trusted.
void ensure_sodium();

}  // namespace attune::auth::detail
