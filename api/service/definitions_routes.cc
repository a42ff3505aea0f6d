// Packs, actions, triggers (with webhooks), rules and runtimes (API.md §6–§10). Definitions are
// records on attune.definitions; reads come from the DefinitionsTable.
#include <algorithm>
#include <regex>

#include "api/auth/secrets.h"
#include "api/rest/pagination.h"
#include "api/service/core_pack.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/rule_check.h"
#include "api/service/service.h"
#include "processors/executor/decisions.h"

namespace attune::service {

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

const std::regex& pack_ref_re() {
  static const std::regex re("^[a-z][a-z0-9_-]{0,127}$");
  return re;
}

const std::regex& name_re() {
  static const std::regex re("^[A-Za-z0-9_-]{1,255}$");
  return re;
}


}  // namespace

// --- shared plumbing -------------------------------------------------------------------------

std::optional<rest::HttpResponse> detail::resolve_scoped(const DefinitionsTable& defs,
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
  if (!out.pack) return error(Errc::kNotFound, "Pack '" + *pack_ref + "' not found");
  out.ref = *pack_ref + "." + name;
  out.name = std::move(name);
  return std::nullopt;
}

// --- generic get and update ----------------------------------------------------------------

rest::HttpResponse ApiService::get_definition(Req& req, std::string_view kind,
                                              std::string_view label) {
  auto obj = defs_.resolve(kind, req.params["ref"]);
  if (!obj) return error(Errc::kNotFound, std::string(label) + " '" + req.params["ref"] + "' not found");
  return data(200, *obj);
}

rest::HttpResponse ApiService::update_definition(Req& req, std::string_view kind,
                                                 std::string_view label,
                                                 const std::vector<FieldSpec>& fields,
                                                 const UpdateCheck& check) {
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(write_mu_);
  auto existing = defs_.resolve(kind, req.params["ref"]);
  if (!existing) {
    return error(Errc::kNotFound, std::string(label) + " '" + req.params["ref"] + "' not found");
  }
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

rest::HttpResponse ApiService::insert_scoped(std::string_view kind, std::string_view label,
                                             const Json& pack, const std::string& ref, Json obj) {
  std::lock_guard lock(write_mu_);
  const std::string exists = std::string(label) + " '" + ref + "' already exists";
  if (defs_.get(kind, ref)) return error(Errc::kConflict, exists);
  auto claimant = claim(kind, ref, true);
  if (!claimant.ok()) return claim_failed(claimant.error(), exists);
  const std::string now = now_str();
  obj.update(Json{{"id", ids_.next()},
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

// --- packs -------------------------------------------------------------------------------------

rest::HttpResponse ApiService::list_packs(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  return Resp::json(200, sorted_page(defs_.list("pack"), *page));
}

rest::HttpResponse ApiService::get_pack(Req& req) { return get_definition(req, "pack", "Pack"); }

rest::HttpResponse ApiService::create_pack(Req& req) {
  auto principal = authenticate(req);
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto ref = f.str("ref", true, 1, 128);
  if (ref && !std::regex_match(*ref, pack_ref_re())) {
    f.fail("ref", "must match ^[a-z][a-z0-9_-]{0,127}$");
  }
  Json pack = Json::object();
  apply_fields(f, *body, pack_fields(), pack, true);
  if (!f.ok()) return validation(f.errors());
  std::lock_guard lock(write_mu_);
  const std::string exists = "Pack '" + *ref + "' already exists";
  if (defs_.get("pack", *ref)) return error(Errc::kConflict, exists);
  auto claimant = claim("pack", *ref, true);
  if (!claimant.ok()) return claim_failed(claimant.error(), exists);
  const std::string now = now_str();
  pack.update(Json{{"id", ids_.next()},
                   {"ref", *ref},
                   {"owner_identity", principal.ok() ? Json(principal->id) : Json(nullptr)},
                   {"installation_method", "api"},
                   {"storage_path", nullptr},
                   {"installed_at", now},
                   {"created", now},
                   {"updated", now}});
  std::vector<OutRecord> records{definition_record("pack", pack, now_ms(), "api")};
  claim_release(records, "pack", *ref, *claimant);
  auto st = write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, pack, "Pack created");
}

rest::HttpResponse ApiService::update_pack(Req& req) {
  return update_definition(req, "pack", "Pack", pack_fields(), {});
}

rest::HttpResponse ApiService::delete_pack(Req& req) {
  std::lock_guard lock(write_mu_);
  auto pack = defs_.resolve("pack", req.params["ref"]);
  if (!pack) return error(Errc::kNotFound, "Pack '" + req.params["ref"] + "' not found");
  const std::string ref = (*pack)["ref"];
  if (ref == "core") return error(Errc::kBadRequest, "The core pack cannot be deleted");
  // Remove every component of the pack, and rules elsewhere that point at its actions or
  // triggers (they could never fire again). One produce call: atomic on the embedded log.
  std::vector<OutRecord> records;
  std::set<std::string> removed_rules;
  const int64_t ts = now_ms();
  auto remove = [&](const char* kind, const JsonPtr& obj) {
    const std::string r = (*obj)["ref"];
    if (std::string_view(kind) == "rule" && !removed_rules.insert(r).second) return;
    records.push_back(definition_tombstone(kind, r, (*obj)["id"], ts, "api"));
  };
  for (const char* kind : {"action", "trigger", "rule", "sensor", "runtime", "permission_set"}) {
    for (const auto& obj : defs_.list(kind)) {
      if (detail::pack_ref_of(*obj) == ref) remove(kind, obj);
    }
  }
  // Assignments of its permission sets go with them.
  for (const auto& a : defs_.list("permission_assignment")) {
    const std::string set = a->value("permission_set_ref", "");
    if (set.rfind(ref + ".", 0) == 0) remove("permission_assignment", a);
  }
  for (const auto& rule : defs_.list("rule")) {
    const std::string a = rule->value("action_ref", ""), t = rule->value("trigger_ref", "");
    if (a.rfind(ref + ".", 0) == 0 || t.rfind(ref + ".", 0) == 0) remove("rule", rule);
  }
  // Its datastore keys (pack-, action- and sensor-owned) go with it.
  for (const auto& key : defs_.list("key")) {
    if (key->value("owner_pack_ref", Json()) == ref) remove("key", key);
  }
  records.push_back(definition_tombstone("pack", ref, (*pack)["id"], ts, "api"));
  auto st = write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  // Its installed files go once nothing refers to them (a crash before this: the start's sweep).
  if (auto sp = pack->value("storage_path", Json(nullptr)); sp.is_string()) {
    remove_pack_files(sp.get<std::string>());
  }
  return deleted("Pack '" + ref + "' deleted");
}

// --- actions -----------------------------------------------------------------------------------

rest::HttpResponse ApiService::list_actions(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  auto q = req.query_param("q");
  std::string needle = q ? *q : "";
  std::transform(needle.begin(), needle.end(), needle.begin(), ::tolower);
  std::vector<JsonPtr> rows;
  for (auto& a : defs_.list("action")) {
    if (pack_ref && detail::pack_ref_of(*a) != *pack_ref) continue;
    if (!needle.empty()) {
      std::string hay = a->value("ref", "") + " " + a->value("label", "") + " " +
                        ((*a)["description"].is_string() ? (*a)["description"].get<std::string>()
                                                         : "");
      std::transform(hay.begin(), hay.end(), hay.begin(), ::tolower);
      if (hay.find(needle) == std::string::npos) continue;
    }
    rows.push_back(std::move(a));
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

rest::HttpResponse ApiService::get_action(Req& req) {
  return get_definition(req, "action", "Action");
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


rest::HttpResponse ApiService::create_action(Req& req) {
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(defs_, *body, scoped)) return *err;
  Json action = Json::object();
  FieldReader f(*body);
  apply_fields(f, *body, action_fields(), action, true);
  if (!f.ok()) return validation(f.errors());
  if (auto err = resolve_runtime(defs_, *body, action, true)) return *err;
  // http actions have no file; container actions run `command` when they have one.
  const std::string runtime = action.value("runtime_ref", "");
  const bool needs_entrypoint =
      runtime != "core.http" && !(runtime == "core.container" && !action["command"].is_null());
  if (needs_entrypoint && action["entrypoint"].get<std::string>().empty()) {
    return validation(Json{{"entrypoint", "is required"}});
  }
  if (runtime == "core.container" &&
      (!action["image"].is_string() || action["image"].get<std::string>().empty())) {
    return validation(Json{{"image", "is required for core.container actions"}});
  }
  action["workflow_def"] = nullptr;
  return insert_scoped("action", "Action", *scoped.pack, scoped.ref, std::move(action));
}

rest::HttpResponse ApiService::update_action(Req& req) {
  return update_definition(req, "action", "Action", action_fields(),
                           [this](FieldReader&, const Json& body, Json& action) {
                             return resolve_runtime(defs_, body, action, false);
                           });
}

rest::HttpResponse ApiService::delete_action(Req& req) {
  std::lock_guard lock(write_mu_);
  auto a = defs_.resolve("action", req.params["ref"]);
  if (!a) return error(Errc::kNotFound, "Action '" + req.params["ref"] + "' not found");
  const std::string ref = (*a)["ref"];
  if (detail::pack_ref_of(*a) == "core") {
    return error(Errc::kBadRequest, "Actions of the core pack cannot be deleted");
  }
  Json users = Json::array();
  for (const auto& rule : defs_.list("rule")) {
    if (rule->value("action_ref", "") == ref) users.push_back((*rule)["ref"]);
  }
  if (!users.empty()) {
    return error(Errc::kConflict, "Action '" + ref + "' is used by rules " + users.dump(),
                 Json{{"rules", users}});
  }
  std::vector<OutRecord> records;
  // Keys the action owns go with it.
  for (const auto& key : defs_.list_prefix("key", "action." + ref + ".")) {
    records.push_back(definition_tombstone("key", key->value("ref", ""), key->value("id", int64_t{0}),
                                           now_ms(), "api"));
  }
  records.push_back(definition_tombstone("action", ref, (*a)["id"], now_ms(), "api"));
  auto st = write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Action '" + ref + "' deleted");
}

// --- triggers and webhooks ---------------------------------------------------------------------

rest::HttpResponse ApiService::list_triggers(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  std::vector<JsonPtr> rows;
  for (auto& t : defs_.list("trigger")) {
    if (pack_ref && detail::pack_ref_of(*t) != *pack_ref) continue;
    rows.push_back(std::move(t));
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

rest::HttpResponse ApiService::get_trigger(Req& req) {
  return get_definition(req, "trigger", "Trigger");
}

rest::HttpResponse ApiService::create_trigger(Req& req) {
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(defs_, *body, scoped)) return *err;
  Json trigger = Json::object();
  FieldReader f(*body);
  apply_fields(f, *body, trigger_fields(), trigger, true);
  if (auto err = check_webhook_config(trigger["webhook_config"])) f.fail("webhook_config", *err);
  if (!f.ok()) return validation(f.errors());
  trigger.update(Json{{"webhook_enabled", false},
                      {"webhook_key", nullptr},
                      {"sensor", nullptr},
                      {"sensor_ref", nullptr}});
  return insert_scoped("trigger", "Trigger", *scoped.pack, scoped.ref, std::move(trigger));
}

rest::HttpResponse ApiService::update_trigger(Req& req) {
  return update_definition(req, "trigger", "Trigger", trigger_fields(),
                           [](FieldReader& f, const Json&, Json& trigger) -> std::optional<Resp> {
                             if (auto err = check_webhook_config(trigger["webhook_config"])) {
                               f.fail("webhook_config", *err);
                             }
                             return std::nullopt;
                           });
}

rest::HttpResponse ApiService::delete_trigger(Req& req) {
  std::lock_guard lock(write_mu_);
  auto t = defs_.resolve("trigger", req.params["ref"]);
  if (!t) return error(Errc::kNotFound, "Trigger '" + req.params["ref"] + "' not found");
  const std::string ref = (*t)["ref"];
  if (detail::pack_ref_of(*t) == "core") {
    return error(Errc::kBadRequest, "Triggers of the core pack cannot be deleted");
  }
  Json users = Json::array();
  for (const auto& rule : defs_.rules_for_trigger(ref)) users.push_back((*rule)["ref"]);
  if (!users.empty()) {
    return error(Errc::kConflict, "Trigger '" + ref + "' is used by rules " + users.dump(),
                 Json{{"rules", users}});
  }
  auto st = write_definitions({definition_tombstone("trigger", ref, (*t)["id"], now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Trigger '" + ref + "' deleted");
}

rest::HttpResponse ApiService::webhook_toggle(Req& req, std::string_view op) {
  std::lock_guard lock(write_mu_);
  auto existing = defs_.resolve("trigger", req.params["ref"]);
  if (!existing) return error(Errc::kNotFound, "Trigger '" + req.params["ref"] + "' not found");
  Json trigger = *existing;
  if (op == "enable") {
    trigger["webhook_enabled"] = true;
    if (!trigger["webhook_key"].is_string()) trigger["webhook_key"] = auth::random_urlsafe(43);
  } else if (op == "disable") {
    trigger["webhook_enabled"] = false;
  } else {
    if (!trigger.value("webhook_enabled", false)) {
      return error(Errc::kBadRequest, "Webhooks are not enabled for trigger '" +
                                          trigger["ref"].get<std::string>() + "'");
    }
    trigger["webhook_key"] = auth::random_urlsafe(43);
  }
  trigger["updated"] = now_str();
  auto st = write_definitions({definition_record("trigger", trigger, now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, trigger);
}

// --- rules -------------------------------------------------------------------------------------

rest::HttpResponse ApiService::list_rules(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  const auto trigger_ref = req.query_param("trigger_ref");
  const auto action_ref = req.query_param("action_ref");
  std::optional<bool> enabled;
  if (auto e = req.query_param("enabled")) {
    enabled = rest::parse_bool(*e);
    if (!enabled) return error(Errc::kBadRequest, "Query parameter 'enabled' must be a boolean");
  }
  std::vector<JsonPtr> rows;
  for (auto& r : defs_.list("rule")) {
    if (pack_ref && detail::pack_ref_of(*r) != *pack_ref) continue;
    if (trigger_ref && r->value("trigger_ref", "") != *trigger_ref) continue;
    if (action_ref && r->value("action_ref", "") != *action_ref) continue;
    if (enabled && r->value("enabled", true) != *enabled) continue;
    rows.push_back(std::move(r));
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

rest::HttpResponse ApiService::get_rule(Req& req) { return get_definition(req, "rule", "Rule"); }

rest::HttpResponse ApiService::create_rule(Req& req) {
  auto principal = authenticate(req);
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(defs_, *body, scoped)) return *err;
  FieldReader f(*body);
  auto trigger_ref = f.str("trigger_ref", true, 1);
  auto action_ref = f.str("action_ref", true, 1);
  Json rule = Json::object();
  apply_fields(f, *body, rule_fields(), rule, true);
  if (!f.ok()) return validation(f.errors());
  auto trigger = defs_.resolve("trigger", *trigger_ref);
  if (!trigger) return error(Errc::kNotFound, "Trigger '" + *trigger_ref + "' not found");
  auto action = defs_.resolve("action", *action_ref);
  if (!action) return error(Errc::kNotFound, "Action '" + *action_ref + "' not found");
  Json errors = Json::object();
  if (!check_rule(rule, *trigger, errors)) return validation(errors);
  rule.update(Json{{"trigger", (*trigger)["id"]},
                   {"trigger_ref", (*trigger)["ref"]},
                   {"action", (*action)["id"]},
                   {"action_ref", (*action)["ref"]},
                   {"owner_identity", principal.ok() ? Json(principal->id) : Json(nullptr)}});
  return insert_scoped("rule", "Rule", *scoped.pack, scoped.ref, std::move(rule));
}

rest::HttpResponse ApiService::update_rule(Req& req) {
  return update_definition(
      req, "rule", "Rule", rule_fields(),
      [this](FieldReader& f, const Json&, Json& rule) -> std::optional<Resp> {
        auto trigger_ref = f.str("trigger_ref", false, 1);
        auto action_ref = f.str("action_ref", false, 1);
        if (!f.ok()) return validation(f.errors());
        if (trigger_ref) {
          auto t = defs_.resolve("trigger", *trigger_ref);
          if (!t) return error(Errc::kNotFound, "Trigger '" + *trigger_ref + "' not found");
          rule["trigger"] = (*t)["id"];
          rule["trigger_ref"] = (*t)["ref"];
        }
        if (action_ref) {
          auto a = defs_.resolve("action", *action_ref);
          if (!a) return error(Errc::kNotFound, "Action '" + *action_ref + "' not found");
          rule["action"] = (*a)["id"];
          rule["action_ref"] = (*a)["ref"];
        }
        Json errors = Json::object();
        auto trigger = defs_.get("trigger", rule["trigger_ref"].get<std::string>());
        if (trigger && !check_rule(rule, *trigger, errors)) return validation(errors);
        return std::nullopt;
      });
}

rest::HttpResponse ApiService::delete_rule(Req& req) {
  std::lock_guard lock(write_mu_);
  auto r = defs_.resolve("rule", req.params["ref"]);
  if (!r) return error(Errc::kNotFound, "Rule '" + req.params["ref"] + "' not found");
  const std::string ref = (*r)["ref"];
  auto st = write_definitions({definition_tombstone("rule", ref, (*r)["id"], now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Rule '" + ref + "' deleted");
}

rest::HttpResponse ApiService::set_rule_enabled(Req& req, bool enabled) {
  std::lock_guard lock(write_mu_);
  auto existing = defs_.resolve("rule", req.params["ref"]);
  if (!existing) return error(Errc::kNotFound, "Rule '" + req.params["ref"] + "' not found");
  Json rule = *existing;
  rule["enabled"] = enabled;
  rule["updated"] = now_str();
  auto st = write_definitions({definition_record("rule", rule, now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, rule);
}

// --- runtimes ----------------------------------------------------------------------------------

rest::HttpResponse ApiService::list_runtimes(Req& req) {
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  return Resp::json(200, sorted_page(defs_.list("runtime"), *page));
}

rest::HttpResponse ApiService::get_runtime(Req& req) {
  return get_definition(req, "runtime", "Runtime");
}

}  // namespace attune::service
