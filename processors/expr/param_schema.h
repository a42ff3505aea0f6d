// Parameter schemas (API.md §7): the flat style {name: {type, required, default, enum, minimum,
// maximum, secret}} or the JSON-Schema style {type: object, properties, required}. One checker for
// every place values meet a schema: execute and rule parameters, pack config, workflow children
// (their defaults are filled in by the executor), inquiry responses. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "topology/core/record.h"

namespace attune::expr {

// "null", "boolean", "integer", "number", "string", "array", "object".
const char* json_type_name(const Json& v);
// Whether `v` is of the schema type `type` (an integral float counts as an integer; unknown types
// and "any" do not constrain).
bool matches_type(const Json& v, std::string_view type);

// The flat form of a flat or JSON-Schema-style schema; {} for anything that is not an object.
Json flat_schema(const Json& schema);

// Why the present, non-null value `v` does not satisfy the field `spec` (type, enum, minimum,
// maximum), e.g. "must be of type integer, got string"; nullopt when it does.
std::optional<std::string> check_value(const Json& spec, const Json& v);

// Checks `params` (an object; anything else counts as {}) against `schema` and fills defaults of
// absent or null fields. On failure returns nullopt and puts field → message into `errors` (one
// per field: "is required", or check_value's message). Extra parameters pass through.
std::optional<Json> validate_parameters(const Json& schema, const Json& params, Json& errors);

}  // namespace attune::expr
