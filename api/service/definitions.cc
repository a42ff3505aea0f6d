// What the definition routes units (packs, actions, triggers, rules, runtimes, sensors) share:
// the writable field specs, pack-scoped create bodies, and get/update/insert of a definition
// with the route's access check (API.md §6–§10, §16). Definitions are records on
// attune.definitions; reads come from the DefinitionsTable.
#include <algorithm>
#include <regex>

#include "api/auth/secrets.h"
#include "api/rest/pagination.h"
#include "api/service/core_pack.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/rule_check.h"
#include "api/service/context.h"
#include "processors/executor/decisions.h"
#include "processors/workflow/workflow.h"

namespace attune::service {

using Resp = rest::HttpResponse;

using detail::data;
using detail::deleted;
using detail::error;
using detail::validation;
using detail::resolve_scoped;
using detail::Scoped;
using detail::sorted_page;

namespace {
const std::vector<std::string> kVisibility = {"public", "private", "restricted"};
}  // namespace

const std::vector<FieldSpec>& pack_fields() {
  static const std::vector<FieldSpec> f = {
      {"label", F::kStr, nullptr},          {"description", F::kStrOrNull, ""},
      {"version", F::kStr, nullptr},        {"conf_schema", F::kObj, Json::object()},
      {"config", F::kObj, Json::object()},  {"meta", F::kObj, Json::object()},
      {"tags", F::kStrArr, Json::array()},  {"runtime_deps", F::kArr, Json::array()},
      {"dependencies", F::kArr, Json::array()}, {"is_standard", F::kBool, false},
  };
  return f;
}

const std::vector<FieldSpec>& action_fields() {
  static const std::vector<FieldSpec> f = {
      {"label", F::kStr, nullptr},
      {"description", F::kStrOrNull, ""},
      {"entrypoint", F::kStr, ""},
      {"runtime_version_constraint", F::kStrOrNull, nullptr},
      {"enabled", F::kBool, true},
      {"param_schema", F::kObj, Json::object()},
      {"out_schema", F::kObj, Json::object()},
      {"is_adhoc", F::kBool, false},
      {"default_execution_permission_set_refs", F::kStrArr, Json::array()},
      {"reference_visibility", F::kEnum, "public", kVisibility},
      {"reference_allowed_pack_refs", F::kStrArr, Json::array()},
      {"timeout_seconds", F::kIntOrNull, nullptr},
      {"parameter_delivery", F::kEnum, "stdin", {"stdin", "file"}},
      {"parameter_format", F::kEnum, "json", {"json", "dotenv", "yaml"}},
      {"output_format", F::kEnum, "text", {"text", "json", "yaml", "jsonl"}},
      {"max_output_bytes", F::kPosInt, 1048576},
      {"max_retries", F::kRetries, 0},
      // core.container (README "Runners"): the image, an optional command, network access.
      {"image", F::kStrOrNull, nullptr},
      {"command", F::kCommand, nullptr},
      {"network", F::kNetwork, nullptr},
  };
  return f;
}

const std::vector<FieldSpec>& trigger_fields() {
  static const std::vector<FieldSpec> f = {
      {"label", F::kStr, nullptr},
      {"description", F::kStrOrNull, ""},
      {"enabled", F::kBool, true},
      {"param_schema", F::kObj, Json::object()},
      {"out_schema", F::kObj, Json::object()},
      {"webhook_config", F::kObj, Json::object()},
      {"is_adhoc", F::kBool, false},
      {"reference_visibility", F::kEnum, "public", kVisibility},
      {"reference_allowed_pack_refs", F::kStrArr, Json::array()},
  };
  return f;
}

const std::vector<FieldSpec>& rule_fields() {
  static const std::vector<FieldSpec> f = {
      {"label", F::kStr, nullptr},
      {"description", F::kStrOrNull, ""},
      {"conditions", F::kAny, nullptr},
      {"action_params", F::kObj, Json::object()},
      {"trigger_params", F::kObj, Json::object()},
      {"enabled", F::kBool, true},
      {"permission_set_refs", F::kStrArr, Json::array()},
      {"is_adhoc", F::kBool, false},
  };
  return f;
}

// Copies the writable fields present in `body` into `obj` (type-checked); on create, absent
// fields take their defaults.
void apply_fields(FieldReader& f, const Json& body, const std::vector<FieldSpec>& specs, Json& obj,
                  bool creating) {
  for (const auto& s : specs) {
    if (!body.contains(s.name) && creating && s.def.is_null() && s.type == F::kStr) {
      f.fail(s.name, "is required");  // required string fields have no default
      continue;
    }
    if (!body.contains(s.name)) {
      if (creating && !obj.contains(s.name)) obj[s.name] = s.def;
      continue;
    }
    std::optional<Json> v;
    switch (s.type) {
      case F::kStr:
        if (auto x = f.str(s.name, true, 1)) v = *x;
        break;
      case F::kStrOrNull:
        v = f.str_or_null(s.name);
        break;
      case F::kBool:
        if (auto x = f.boolean(s.name)) v = *x;
        if (body[s.name].is_null()) v = s.def;
        break;
      case F::kObj:
        v = body[s.name].is_null() ? std::optional<Json>(s.def) : f.object(s.name);
        break;
      case F::kArr:
        v = body[s.name].is_null() ? std::optional<Json>(s.def) : f.array(s.name);
        break;
      case F::kStrArr:
        v = body[s.name].is_null() ? std::optional<Json>(s.def) : f.string_array(s.name);
        break;
      case F::kIntOrNull:
        if (body[s.name].is_null()) {
          v = Json(nullptr);
        } else if (auto x = f.integer(s.name, 1, 7 * 24 * 3600)) {
          v = *x;
        }
        break;
      case F::kPosInt:
        if (auto x = f.integer(s.name, 1, int64_t{1} << 40)) v = *x;
        break;
      case F::kRetries:
        if (auto x = f.integer(s.name, 0, executor::kMaxRetries)) v = *x;
        break;
      case F::kAny:
        v = body[s.name];
        break;
      case F::kCommand: {
        const Json& c = body[s.name];
        const bool strings = c.is_array() && !c.empty() &&
                             std::all_of(c.begin(), c.end(), [](const Json& x) { return x.is_string(); });
        if (c.is_null() || (c.is_string() && !c.get<std::string>().empty()) || strings) {
          v = c;
        } else {
          f.fail(s.name, "must be a non-empty string or a non-empty array of strings");
        }
        break;
      }
      case F::kNetwork: {
        const Json& n = body[s.name];
        if (n.is_null() || n.is_boolean() || n == "none" || n == "bridge") {
          v = n;
        } else {
          f.fail(s.name, "must be true, false, \"none\" or \"bridge\"");
        }
        break;
      }
      case F::kEnum:
        if (auto x = f.str(s.name, true)) {
          if (std::find(s.allowed.begin(), s.allowed.end(), *x) == s.allowed.end()) {
            Json allowed = s.allowed;
            f.fail(s.name, "must be one of " + allowed.dump());
          } else {
            v = *x;
          }
        }
        break;
    }
    if (v) obj[s.name] = std::move(*v);
  }
}

namespace {


const std::regex& name_re() {
  static const std::regex re("^[A-Za-z0-9_-]{1,255}$");
  return re;
}


}  // namespace

const std::regex& pack_ref_re() {
  static const std::regex re("^[a-z][a-z0-9_-]{0,127}$");
  return re;
}

// --- shared plumbing -------------------------------------------------------------------------

std::optional<rest::HttpResponse> detail::resolve_scoped(const Call& c,
                                                         const DefinitionsTable& defs,
                                                         const Json& body, Scoped& out) {
  FieldReader f(body);
  auto pack_ref = f.str("pack_ref", true, 1);
  auto ref = f.str("ref", true, 1);
  if (!f.ok()) return validation(f.errors());
  std::string name = *ref;
  if (ref->find('.') != std::string::npos) {
    if (ref->rfind(*pack_ref + ".", 0) != 0) {
      return validation(Json{{"ref", "must start with the pack ref '" + *pack_ref + ".'"}});
    }
    name = ref->substr(pack_ref->size() + 1);
  }
  if (!std::regex_match(name, name_re()) || detail::all_digits(name)) {
    return validation(
        Json{{"ref", "name must use letters, digits, '_' or '-' and not be all digits"}});
  }
  out.pack = defs.get("pack", *pack_ref);
  const std::string missing = "Pack '" + *pack_ref + "'";
  if (!out.pack) return error(Errc::kNotFound, missing + " not found");
  // Creating in a pack: the pack must be visible (404) and the grant admit it (403).
  if (auto refused = c.check(missing, authz::Object{c.access.resource(), *pack_ref})) {
    return refused;
  }
  out.ref = *pack_ref + "." + name;
  out.name = std::move(name);
  return std::nullopt;
}

// --- generic get and update ----------------------------------------------------------------

JsonPtr ServiceContext::find_checked(Call& c, std::string_view kind, std::string_view label,
                                     std::optional<rest::HttpResponse>& refused,
                                     std::string_view action) {
  const std::string& segment = c.req.params["ref"];
  auto obj = defs.resolve(kind, segment);
  if (!obj) {
    refused = error(Errc::kNotFound, std::string(label) + " '" + segment + "' not found");
    return nullptr;
  }
  refused = c.check_definition(label, *obj, action);
  return refused ? nullptr : obj;
}

rest::HttpResponse ServiceContext::get_definition(Call& c, std::string_view kind,
                                                  std::string_view label) {
  std::optional<rest::HttpResponse> refused;
  auto obj = find_checked(c, kind, label, refused);
  if (!obj) return *refused;
  return data(200, *obj);
}

std::vector<JsonPtr> ServiceContext::visible_definitions(
    const Call& c, std::string_view kind, const std::function<bool(const Json&)>& keep) const {
  std::vector<JsonPtr> rows;
  for (auto& obj : defs.list(kind)) {
    if (c.lists(*obj) && (!keep || keep(*obj))) rows.push_back(std::move(obj));
  }
  return rows;
}

rest::HttpResponse ServiceContext::update_definition(Call& c, std::string_view kind,
                                                     std::string_view label,
                                                     const std::vector<FieldSpec>& fields,
                                                     const UpdateCheck& check) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(write_mu);
  std::optional<rest::HttpResponse> refused;
  auto existing = find_checked(c, kind, label, refused);
  if (!existing) return *refused;
  Json obj = *existing;
  FieldReader f(*body);
  apply_fields(f, *body, fields, obj, false);
  if (check) {
    if (auto err = check(f, *body, obj)) return *err;
  }
  if (!f.ok()) return validation(f.errors());
  obj["updated"] = now_str();
  auto st = write_definitions({definition_record(kind, obj, now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, obj, std::string(label) + " updated");
}

rest::HttpResponse ServiceContext::insert_scoped(std::string_view kind, std::string_view label,
                                             const Json& pack, const std::string& ref, Json obj) {
  std::lock_guard lock(write_mu);
  const std::string exists = std::string(label) + " '" + ref + "' already exists";
  if (defs.get(kind, ref)) return error(Errc::kConflict, exists);
  auto claimant = claim(kind, ref, true);
  if (!claimant.ok()) return claim_failed(claimant.error(), exists);
  const std::string now = now_str();
  obj.update(Json{{"id", ids.next()},
                  {"ref", ref},
                  {"pack", pack["id"]},
                  {"pack_ref", pack["ref"]},
                  {"created", now},
                  {"updated", now}});
  std::vector<OutRecord> records{definition_record(kind, obj, now_ms(), "api")};
  claim_release(records, kind, ref, *claimant);
  auto st = write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, obj, std::string(label) + " created");
}

// Sets runtime/runtime_ref from `runtime` (id) or `runtime_ref` (name or alias).
std::optional<rest::HttpResponse> resolve_runtime(const DefinitionsTable& defs, const Json& body,
                                                  Json& action, bool creating) {
  JsonPtr rt;
  if (body.contains("runtime_ref") && !body["runtime_ref"].is_null()) {
    if (!body["runtime_ref"].is_string()) {
      return validation(Json{{"runtime_ref", "must be a string"}});
    }
    const std::string name = body["runtime_ref"];
    rt = defs.get("runtime", canonical_runtime(name).empty() ? name : canonical_runtime(name));
    if (!rt) return error(Errc::kNotFound, "Runtime '" + name + "' not found");
  } else if (body.contains("runtime") && !body["runtime"].is_null()) {
    if (!body["runtime"].is_number_integer()) {
      return validation(Json{{"runtime", "must be a runtime id (integer)"}});
    }
    rt = defs.get_by_id("runtime", body["runtime"].get<int64_t>());
    if (!rt) return error(Errc::kNotFound, "Runtime " + body["runtime"].dump() + " not found");
  } else if (creating) {
    rt = defs.get("runtime", "core.shell");
  }
  if (rt) {
    action["runtime"] = (*rt)["id"];
    action["runtime_ref"] = (*rt)["ref"];
  }
  return std::nullopt;
}


std::optional<rest::HttpResponse> referrers_refuse(const ServiceContext& s, std::string_view kind,
                                                   const Json& updated) {
  const std::string ref = updated.value("ref", "");
  const std::string field = kind == "action" ? "action_ref" : "trigger_ref";
  for (const auto& rule : s.defs.list("rule")) {
    if (rule->value(field, "") != ref) continue;
    const std::string from = detail::pack_ref_of(*rule);
    if (authz::may_reference(updated, from)) continue;
    return error(Errc::kBadRequest, std::string("Cannot change ") + std::string(kind) + " '" +
                                        ref + "' visibility: referenced by '" +
                                        rule->value("ref", "") + "'");
  }
  if (kind != "action") return std::nullopt;
  // Workflows of other packs running it (their tasks' actions; API.md §16.5).
  for (const auto& wf : s.defs.list("workflow")) {
    const std::string from = detail::pack_ref_of(*wf);
    if (authz::may_reference(updated, from)) continue;
    auto parsed = workflow::parse(wf->value("definition", Json::object()));
    if (!parsed.ok()) continue;
    for (const workflow::Task& t : parsed->tasks()) {
      if (t.action != ref || t.type == workflow::TaskType::kParallel) continue;
      return error(Errc::kBadRequest, "Cannot change action '" + ref +
                                          "' visibility: referenced by '" +
                                          wf->value("ref", "") + "'");
    }
  }
  return std::nullopt;
}

}  // namespace attune::service
