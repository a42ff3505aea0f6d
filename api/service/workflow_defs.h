// Workflow definitions shared by the workflow routes and the pack installer (API.md §12.1).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "topology/core/record.h"

namespace attune::service {

// Why `definition` cannot be stored (the engine's message naming task and field, or a task's
// action that does not exist: "task 'b': action: unknown action 'p.x'"), nullopt when it is
// valid. `action_exists` answers for action refs (a workflow may run itself, or actions and
// workflows installed with it in one pack).
std::optional<std::string> check_workflow_definition(
    const Json& definition, const std::function<bool(const std::string&)>& action_exists);

// The companion action of a workflow record (label, description, schemas, tags, enabled,
// definition): every writable action field with `workflow_def` = the definition. The caller adds
// id, ref, pack, pack_ref, created, updated.
Json workflow_action(const Json& workflow);

}  // namespace attune::service
