// Runtime names (API.md §11.4). The built-in `core` pack itself is a pack directory,
// api/packs/core/, installed at start (pack_routes.cc).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "topology/core/ids.h"
#include "topology/core/record.h"

namespace attune::service {

// Runtime ref for a runtime name or alias (API.md §11.4), or "" if unknown.
std::string canonical_runtime(std::string_view name);

}  // namespace attune::service
