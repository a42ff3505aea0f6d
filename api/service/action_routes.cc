// Actions (API.md §6, §7, §16.5): CRUD, search and reference discovery. Every route declares its
// access in register_action_routes; handlers check the object they resolve.
#include <algorithm>

#include "api/rest/pagination.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/service.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::resolve_scoped;
using detail::Scoped;
using detail::sorted_page;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

// GET /actions (visible actions) and GET /actions/search (also the discoverable metadata of
// other packs' public actions, and restricted ones allowing `referencing_pack_ref`).
Resp list_actions(ServiceContext& s, Call& c, bool search) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  const std::set<std::string> packs = detail::csv_set(req.query_param("packs"));
  const std::string referencing = req.query_param("referencing_pack_ref").value_or("");
  std::optional<bool> executable;
  if (auto e = req.query_param("executable_with_current_access")) {
    executable = rest::parse_bool(*e);
    if (!executable) {
      return error(Errc::kBadRequest,
                   "Query parameter 'executable_with_current_access' must be a boolean");
    }
  }
  std::string needle = req.query_param("q").value_or("");
  std::transform(needle.begin(), needle.end(), needle.begin(), ::tolower);
  std::vector<JsonPtr> rows;
  for (auto& a : s.defs.list("action")) {
    const std::string pack = detail::pack_ref_of(*a);
    if (pack_ref && pack != *pack_ref) continue;
    if (!packs.empty() && !packs.count(pack)) continue;
    const bool visible = c.lists(*a);
    if (!visible && !(search && authz::discoverable(c.can(), *a, referencing))) continue;
    if (!referencing.empty() && !authz::may_reference(*a, referencing)) continue;
    if (executable && *executable != (visible && c.can().may("execute", {"actions", pack}))) {
      continue;
    }
    if (!detail::matches_text(*a, needle)) continue;
    rows.push_back(std::move(a));
  }
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

Resp get_action(ServiceContext& s, Call& c) { return s.get_definition(c, "action", "Action"); }

Resp create_action(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(c, s.defs, *body, scoped)) return *err;
  Json action = Json::object();
  FieldReader f(*body);
  apply_fields(f, *body, action_fields(), action, true);
  if (!f.ok()) return validation(f.errors());
  if (auto err = resolve_runtime(s.defs, *body, action, true)) return *err;
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
  return s.insert_scoped("action", "Action", *scoped.pack, scoped.ref, std::move(action));
}

Resp update_action(ServiceContext& s, Call& c) {
  return s.update_definition(c, "action", "Action", action_fields(),
                             [&s](FieldReader&, const Json& body, Json& action) {
                               if (auto err = resolve_runtime(s.defs, body, action, false)) {
                                 return err;
                               }
                               return referrers_refuse(s, "action", action);
                             });
}

Resp delete_action(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto a = s.find_checked(c, "action", "Action", refused);
  if (!a) return *refused;
  const std::string ref = (*a)["ref"];
  if (detail::pack_ref_of(*a) == "core") {
    return error(Errc::kBadRequest, "Actions of the core pack cannot be deleted");
  }
  if (a->contains("workflow_def") && (*a)["workflow_def"].is_object() &&
      s.defs.get("workflow", ref)) {
    return error(Errc::kBadRequest, "Action '" + ref + "' runs workflow '" + ref +
                                        "': delete it with DELETE /api/v1/workflows/" + ref);
  }
  Json users = Json::array();
  for (const auto& rule : s.defs.list("rule")) {
    if (rule->value("action_ref", "") == ref) users.push_back((*rule)["ref"]);
  }
  if (!users.empty()) {
    return error(Errc::kConflict, "Action '" + ref + "' is used by rules " + users.dump(),
                 Json{{"rules", users}});
  }
  std::vector<OutRecord> records;
  // Keys and policies of the action go with it.
  for (const auto& key : s.defs.list_prefix("key", "action." + ref + ".")) {
    records.push_back(definition_tombstone("key", key->value("ref", ""),
                                           key->value("id", int64_t{0}), s.now_ms(), "api"));
  }
  delete_action_policies(s, ref, records);
  records.push_back(definition_tombstone("action", ref, (*a)["id"], s.now_ms(), "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Action '" + ref + "' deleted");
}

}  // namespace

void register_action_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/actions";
  t.add("GET", v1, Access::to("actions", "read"),
        [&s](Call& c) { return list_actions(s, c, false); });
  t.add("GET", v1 + "/search", Access::to("actions", "read"),
        [&s](Call& c) { return list_actions(s, c, true); });
  t.add("POST", v1, Access::to("actions", "create").on_object(), bound(s, create_action));
  t.add("GET", v1 + "/{ref}", Access::to("actions", "read"), bound(s, get_action));
  t.add("PUT", v1 + "/{ref}", Access::to("actions", "update"), bound(s, update_action));
  t.add("DELETE", v1 + "/{ref}", Access::to("actions", "delete"), bound(s, delete_action));
}

}  // namespace attune::service
