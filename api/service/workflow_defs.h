// Workflow definitions shared by the workflow routes and the pack installer (API.md §12.1).
#pragma once

#include <optional>
#include <string>

#include "topology/core/record.h"

namespace attune::service {

// Why `definition` cannot be stored (the engine's message naming task and field), nullopt when
// it is valid.
std::optional<std::string> check_workflow_definition(const Json& definition);

// The companion action of a workflow record (label, description, schemas, tags, enabled,
// definition): every writable action field with `workflow_def` = the definition. The caller adds
// id, ref, pack, pack_ref, created, updated.
Json workflow_action(const Json& workflow);

}  // namespace attune::service
