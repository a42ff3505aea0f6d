// Policy definitions (API.md §7 "Policy", §15): an API body or a pack file (`policies/*.yaml`,
// API field names) → the stored policy object documented in policy.h. Pure: what needs the
// definitions (the scope's action or pack exists, may be used; the ref is free) is the caller's.
#pragma once

#include <string_view>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::admission {

// Validates `body` over `current` and returns the policy with every writable field normalised:
//   label, description ("" for null), enabled (default true), priority (integer, default 0),
//   scope {type, pack_ref?, action_ref?}, concurrency {limit ≥ 1, method enqueue|cancel
//   (default enqueue), parameters [strings] (default [])} | null, rate_limit {max_executions ≥ 1,
//   window_seconds ≥ 1} | null, quotas [{quota_type running_executions|executions_total,
//   limit ≥ 0}] (default []), retry (parse_retry → RetrySpec::to_json()) | null, tags [strings].
// `creating`: absent fields take their defaults, and the scope comes from `scope`, else a
// top-level `action_ref` (scope action), else a top-level `pack_ref` (scope pack), else global
// (API.md §15). On update (`current` = the stored policy) only the fields present change; a
// top-level `action_ref` or a `scope` changes the scope, `pack_ref` (not writable) is ignored.
// An action scope's pack_ref is the action ref's pack (the text before its first '.').
// Identity fields (id, ref, name, pack, pack_ref, created, updated) are left as in `current`.
//
// On failure: kValidation whose message names the first bad field, and `fields` (field →
// message, e.g. "concurrency.limit", "quotas[1].quota_type", "retry.backoff") names them all.
Result<Json> normalize_policy(const Json& body, const Json& current, bool creating, Json& fields);

// The pack an action ref belongs to ("" when it has no '.').
std::string_view pack_of_ref(std::string_view ref);

}  // namespace attune::admission
