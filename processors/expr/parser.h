// Internal: lexer + recursive-descent parser from expression source to an AST (ast.h).
#pragma once

#include <cstddef>
#include <string_view>

#include "processors/expr/ast.h"
#include "topology/core/result.h"

namespace attune::expr::internal {

// Parses one expression from `source` starting at byte `begin`. Columns in errors are 1-based byte
// offsets into the whole `source`, so a template's errors point into the template text.
//
// With `in_template` the expression must be closed by a top-level `}}` (braces of object literals
// are balanced first, so `{{ {'a': {'b': 1}} }}` works) and `*end` is set to the byte after it;
// otherwise the expression must run to the end of `source`.
Result<NodePtr> parse_expression(std::string_view source, size_t begin, bool in_template,
                                 size_t* end);

}  // namespace attune::expr::internal
