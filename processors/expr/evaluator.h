// Internal: evaluation of a compiled AST against a Scope, plus the value helpers (truthiness, text
// conversion, ordering) shared with templates and array-form conditions.
#pragma once

#include <string>

#include "processors/expr/ast.h"
#include "processors/expr/expr.h"

namespace attune::expr::internal {

// Evaluates `node`. On failure returns false with `*error` set ("... at column N").
bool evaluate(const Node& node, const Scope& scope, Value* out, std::string* error);

bool truthy(const Value& v);
bool truthy(const Json& j);
// Appends the text conversion of `v` (strings as-is, null/undefined as "", others compact JSON).
void append_text(const Value& v, std::string* out);
void append_text(const Json& j, std::string* out);
// Compact JSON that never throws (invalid UTF-8 is replaced).
std::string dump_compact(const Json& j, int indent = -1);
// "undefined", "null", "boolean", "number", "string", "array", "object".
const char* type_name(const Value& v);
const char* type_name(const Json& j);
// Orders two numbers (int/float by value) or two strings; false for any other pair.
bool order(const Json& a, const Json& b, int* cmp);

}  // namespace attune::expr::internal
