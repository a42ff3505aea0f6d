// One-time libsodium initialisation.
#include "api/auth/sodium.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace attune::auth::detail {

void ensure_sodium() {
  static const bool initialised = [] {
    if (sodium_init() < 0) {
      spdlog::critical("libsodium failed to initialise; refusing to continue without a CSPRNG");
      std::abort();
    }
    return true;
  }();
  (void)initialised;
}

}  // namespace attune::auth::detail
