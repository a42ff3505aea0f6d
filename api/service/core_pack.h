// The built-in `core` pack (API.md §9.4, §11.4): runtimes, the standard actions and the
// webhook/timer trigger types, visible to every identity.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "topology/core/ids.h"
#include "topology/core/record.h"

namespace attune::service {

// (kind, object) pairs, packs first. Ids are fresh; callers keep existing objects' ids.
std::vector<std::pair<std::string, Json>> core_pack_objects(IdGenerator& ids,
                                                            const std::string& now);

// Runtime ref for a runtime name or alias (API.md §11.4), or "" if unknown.
std::string canonical_runtime(std::string_view name);

}  // namespace attune::service
