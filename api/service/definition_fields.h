// The writable fields of packs, actions, triggers and rules (API.md §7), shared by their REST
// routes and the pack installer so that both accept and normalise exactly the same definitions.
#pragma once

#include <optional>
#include <regex>
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

// Valid pack refs: ^[a-z][a-z0-9_-]{0,127}$ (no '.', so a ref's pack is the text before its
// first '.').
const std::regex& pack_ref_re();

class ServiceContext;
class Call;
// API.md §16.5: the 400 when changing `updated` (an action or trigger, `kind`) would take it away
// from a rule of another pack that references it: "Cannot change action '<ref>' visibility:
// referenced by '<rule>'".
std::optional<rest::HttpResponse> referrers_refuse(const ServiceContext& s, std::string_view kind,
                                                   const Json& updated);

// API.md §15, §16: a global policy governs every pack, so setting one (`act`: create, update)
// needs policies:<act> without pack constraints; the 403 otherwise (policy_routes.cc).
std::optional<rest::HttpResponse> refuse_global_policy(const Call& c, std::string_view act);

// Deletes of the policies whose scope is action `action_ref`, appended to `records`: they go
// with the action (policy_routes.cc).
void delete_action_policies(const ServiceContext& s, const std::string& action_ref,
                            std::vector<OutRecord>& records);

// Sensor fields (sensor_routes.cc).
void read_sensor_fields(FieldReader& f, const Json& body, Json& sensor, bool creating);

}  // namespace attune::service
