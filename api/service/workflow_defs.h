// Workflow definitions shared by the workflow routes and the pack installer (API.md §12.1).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "topology/core/record.h"

namespace attune::service {

// Why `definition` cannot be stored (the engine's message naming task and field, or why a task
// may not run its action: "task 'b': action: unknown action 'p.x'"), nullopt when it is valid.
// `refuse_action` says why an action ref may not be used (nullopt: it may).
std::optional<std::string> check_workflow_definition(
    const Json& definition,
    const std::function<std::optional<std::string>(const std::string&)>& refuse_action);

// Why a workflow of pack `pack` may not run `target` (the action `ref` resolves to, or null):
// unknown, or §16.5 — its own pack's actions always, others when `public`, or `restricted` naming
// the pack; another pack's private action is "unknown" (its existence is not revealed).
std::optional<std::string> workflow_action_refusal(const JsonPtr& target, const std::string& ref,
                                                   const std::string& pack);

// The companion action of a workflow record (label, description, schemas, tags, enabled,
// definition): every writable action field with `workflow_def` = the definition. The caller adds
// id, ref, pack, pack_ref, created, updated.
Json workflow_action(const Json& workflow);

}  // namespace attune::service
