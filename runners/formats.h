// Document formats shared by runners: parameter documents written to actions (API.md §11.3) and
// YAML output parsed back into JSON (§11.5).
#pragma once

#include <string>
#include <string_view>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners {

// Renders a parameter document (must be a JSON object) as `format`:
//   json   — one compact line + "\n";
//   dotenv — `key='value'` lines sorted by key, nested object keys joined by '.', arrays as
//            compact JSON, null as '', strings raw, `'` written as `'\''`;
//   yaml   — one YAML mapping (strings double-quoted, so types survive a round trip).
// Errors: unknown format, or a document that is not an object.
Result<std::string> render_parameters(const Json& document, std::string_view format);

// `raw` in single quotes for sh and dotenv: `'` becomes `'\''`.
std::string shell_quote(std::string_view raw);

// Parses one YAML document into JSON. Plain scalars resolve per the YAML 1.2 core schema
// (null, bool, int, float, else string); quoted scalars stay strings. An empty document is null.
// On a parse error, `error_line` (if given) receives its 1-based line (0 when unknown).
Result<Json> parse_yaml(std::string_view text, int* error_line = nullptr);

}  // namespace attune::runners
