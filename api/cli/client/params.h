// `key=value` arguments → a JSON parameter object, typed by a flat or JSON-Schema parameter schema
// (API.md §7 "Schemas"). Pure functions: tested in tests/unit/cli/params_test.cc.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace attune::cli::client {

// One parameter of a schema, as the CLI uses it.
struct ParamSpec {
  std::string name;
  std::string type;  // "" when the schema says nothing
  bool required = false;
  bool secret = false;
  nlohmann::json default_value;  // null when none
  std::string description;
};

// Flat `{"name": {"type", "required", ...}}` or `{"type":"object","properties":…,"required":[…]}`
// → specs in schema order. Anything else (null, not an object) → empty.
std::vector<ParamSpec> schema_params(const nlohmann::json& schema);

// `raw` coerced for `spec` (nullptr: unknown parameter). string ⇒ text as is; integer, number,
// boolean, object, array ⇒ parsed as a JSON or YAML value of that type; unknown type or parameter
// ⇒ JSON if `raw` parses as JSON, else the text. Returns nullopt and sets *error (naming the
// parameter) when the value does not fit the type.
std::optional<nlohmann::json> coerce_value(const std::string& name, const std::string& raw,
                                           const ParamSpec* spec, std::string* error);

// `key=value...` → object, each value coerced by `schema`; later keys win. Throws CliError(kUsage)
// for an argument without '=', an empty key or a value that does not fit.
nlohmann::json parse_key_values(const std::vector<std::string>& args, const nlohmann::json& schema);

// A .json, .yaml or .yml file holding one object. Throws CliError(kUsage) when unreadable/invalid.
nlohmann::json load_params_file(const std::string& path);

// YAML text → JSON (scalars typed as YAML 1.2 core: null, booleans, numbers, strings).
// nullopt on a YAML syntax error (sets *error).
std::optional<nlohmann::json> yaml_to_json(const std::string& text, std::string* error);

}  // namespace attune::cli::client
