// The writable fields of packs, actions, triggers and rules (API.md §7), shared by their REST
// routes and the pack installer so that both accept and normalise exactly the same definitions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/rest/http.h"
#include "api/service/fields.h"
#include "topology/definitions_table.h"

namespace attune::service {

// Field kinds of the writable definition fields (see apply_fields).
enum class F {
  kStr, kStrOrNull, kBool, kObj, kArr, kStrArr, kIntOrNull, kPosInt, kRetries, kAny, kEnum,
  kCommand,  // a container command: null, a non-empty string, or a non-empty array of strings
  kNetwork,  // a container network: null, true, false, "none" or "bridge"
};

struct FieldSpec {
  const char* name;
  F type;
  Json def;
  std::vector<std::string> allowed = {};
};

const std::vector<FieldSpec>& pack_fields();
const std::vector<FieldSpec>& action_fields();
const std::vector<FieldSpec>& trigger_fields();
const std::vector<FieldSpec>& rule_fields();

// Copies the writable fields present in `body` into `obj` (type-checked, errors into `f`); on
// create, absent fields take their defaults.
void apply_fields(FieldReader& f, const Json& body, const std::vector<FieldSpec>& specs, Json& obj,
                  bool creating);

// Sets action runtime/runtime_ref from `runtime` (id) or `runtime_ref` (name or alias); on create
// without either, core.shell. The error answer when the runtime does not exist.
std::optional<rest::HttpResponse> resolve_runtime(const DefinitionsTable& defs, const Json& body,
                                                  Json& action, bool creating);

// Sensor fields (sensor_routes.cc).
void read_sensor_fields(FieldReader& f, const Json& body, Json& sensor, bool creating);

}  // namespace attune::service
