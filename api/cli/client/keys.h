// Key refs (API.md §14) → the owner fields of POST /api/v1/keys, for `attune key set`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace attune::cli::client {

// "x" and "system.x" ⇒ {local_ref x, owner_type system}; "pack.<p>.x", "action.<p>.<a>.x",
// "sensor.<p>.<s>.x", "identity.<login>.x" ⇒ that owner (a local ref never holds a '.', so the
// owner is everything between the first and the last '.'). Throws CliError(kUsage) otherwise.
nlohmann::json key_create_body(const std::string& ref);

}  // namespace attune::cli::client
