// Create/update-time checks of rules (conditions, templates, trigger_params) and trigger webhook
// configuration, so bad definitions are refused with 422 instead of failing at run time.
#pragma once

#include <optional>
#include <string>

#include "topology/core/record.h"

namespace attune::service {

// Validates rule["conditions"], rule["action_params"] and rule["trigger_params"] (against the
// trigger's param_schema, filling defaults into rule["trigger_params"]). Field → message into
// `errors`; false if any.
bool check_rule(Json& rule, const Json& trigger, Json& errors);

// nullopt if `config` is a valid webhook_config (API.md §9.1), else the reason.
std::optional<std::string> check_webhook_config(const Json& config);

}  // namespace attune::service
