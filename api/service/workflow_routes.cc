// Workflows (API.md §12.1): CRUD of workflow definitions. Each workflow has a companion action with
// the same ref whose `workflow_def` holds the definition: running the action (POST
// /executions/execute or a rule) runs the workflow in the executor.
#include <algorithm>

#include "api/authz/authz.h"
#include "api/rest/pagination.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/service.h"
#include "api/service/workflow_defs.h"
#include "processors/workflow/workflow.h"

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

std::optional<std::string> check_workflow_definition(
    const Json& definition,
    const std::function<std::optional<std::string>(const std::string&)>& refuse_action) {
  if (!definition.is_object()) return "definition must be an object";
  auto parsed = workflow::parse(definition);
  if (!parsed.ok()) return parsed.error().message;
  for (const workflow::Task& t : parsed->tasks()) {
    if (t.type == workflow::TaskType::kParallel || t.action.empty()) continue;
    if (auto why = refuse_action(t.action)) return "task '" + t.name + "': action: " + *why;
  }
  return std::nullopt;
}

std::optional<std::string> workflow_action_refusal(const JsonPtr& target, const std::string& ref,
                                                   const std::string& pack) {
  const bool own = target && detail::pack_ref_of(*target) == pack;
  if (!target || (!own && target->value("reference_visibility", "public") == "private")) {
    return "unknown action '" + ref + "'";
  }
  if (!authz::may_reference(*target, pack)) {
    return "pack '" + pack + "' may not reference action '" + ref + "'";
  }
  return std::nullopt;
}

Json workflow_action(const Json& wf) {
  Json action = {{"label", wf.value("label", "")},
                 {"description", wf.value("description", Json(""))},
                 {"entrypoint", ""},
                 {"runtime_version_constraint", nullptr},
                 {"enabled", wf.value("enabled", true)},
                 {"param_schema", wf.value("param_schema", Json::object())},
                 {"out_schema", wf.value("out_schema", Json::object())},
                 {"is_adhoc", false},
                 {"default_execution_permission_set_refs", Json::array()},
                 {"reference_visibility", "public"},
                 {"reference_allowed_pack_refs", Json::array()},
                 {"timeout_seconds", nullptr},
                 {"parameter_delivery", "stdin"},
                 {"parameter_format", "json"},
                 {"output_format", "json"},
                 {"max_output_bytes", 1048576},
                 {"max_retries", 0},
                 {"image", nullptr},
                 {"command", nullptr},
                 {"network", nullptr},
                 {"runtime", nullptr},
                 {"runtime_ref", nullptr},
                 {"tags", wf.value("tags", Json::array())},
                 {"workflow_def", wf.value("definition", Json::object())}};
  return action;
}

namespace {

// The writable fields of a workflow besides `definition`.
void read_fields(FieldReader& f, const Json& body, Json& wf, bool creating) {
  if (auto v = f.str("label", creating, 1)) wf["label"] = *v;
  if (body.contains("description")) {
    if (auto v = f.str_or_null("description")) wf["description"] = *v;
  } else if (creating) {
    wf["description"] = "";
  }
  if (auto v = f.str("version", false)) {
    wf["version"] = *v;
  } else if (creating) {
    wf["version"] = "1.0.0";
  }
  for (const char* o : {"param_schema", "out_schema"}) {
    if (auto v = f.object(o)) {
      wf[o] = *v;
    } else if (creating) {
      wf[o] = Json::object();
    }
  }
  if (auto v = f.string_array("tags")) {
    wf["tags"] = *v;
  } else if (creating) {
    wf["tags"] = Json::array();
  }
  if (auto v = f.boolean("enabled")) {
    wf["enabled"] = *v;
  } else if (creating) {
    wf["enabled"] = true;
  }
  if (creating && !body.contains("definition")) f.fail("definition", "is required");
  if (body.contains("definition")) {
    if (auto v = f.object("definition")) wf["definition"] = *v;
  }
}

Resp list_workflows(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  const std::set<std::string> tags = detail::csv_set(req.query_param("tags"));
  auto rows = s.visible_definitions(c, "workflow", [&](const Json& w) {
    if (pack_ref && detail::pack_ref_of(w) != *pack_ref) return false;
    if (tags.empty()) return true;
    const Json& t = w.contains("tags") ? w["tags"] : Json();
    if (!t.is_array()) return false;
    return std::any_of(t.begin(), t.end(),
                       [&](const Json& x) { return x.is_string() && tags.count(x.get<std::string>()); });
  });
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

Resp get_workflow(ServiceContext& s, Call& c) {
  return s.get_definition(c, "workflow", "Workflow");
}

Resp create_workflow(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  Scoped scoped;
  if (auto err = resolve_scoped(c, s.defs, *body, scoped)) return *err;
  Json wf = Json::object();
  FieldReader f(*body);
  read_fields(f, *body, wf, true);
  if (!f.ok()) return validation(f.errors());
  const std::string& ref = scoped.ref;
  const std::string pack = scoped.pack ? scoped.pack->value("ref", "") : "";
  if (auto why = check_workflow_definition(
          wf["definition"], [&](const std::string& a) -> std::optional<std::string> {
            if (a == ref) return std::nullopt;  // itself
            return workflow_action_refusal(s.defs.get("action", a), a, pack);
          })) {
    return error(Errc::kBadRequest, "Invalid workflow definition: " + *why);
  }
  std::lock_guard lock(s.write_mu);
  const std::string exists = "Workflow '" + ref + "' already exists";
  if (s.defs.get("workflow", ref) || s.defs.get("action", ref)) {
    return error(Errc::kConflict, exists);
  }
  auto claim_wf = s.claim("workflow", ref, true);
  if (!claim_wf.ok()) return ServiceContext::claim_failed(claim_wf.error(), exists);
  auto claim_action = s.claim("action", ref, true);
  if (!claim_action.ok()) return ServiceContext::claim_failed(claim_action.error(), exists);
  const std::string now = s.now_str();
  const Json common = {{"ref", ref},
                       {"pack", (*scoped.pack)["id"]},
                       {"pack_ref", (*scoped.pack)["ref"]},
                       {"created", now},
                       {"updated", now}};
  wf.update(common);
  wf["id"] = s.ids.next();
  Json action = workflow_action(wf);
  action.update(common);
  action["id"] = s.ids.next();
  wf["action"] = action["id"];
  std::vector<OutRecord> records{definition_record("workflow", wf, s.now_ms(), "api"),
                                 definition_record("action", action, s.now_ms(), "api")};
  s.claim_release(records, "workflow", ref, *claim_wf);
  s.claim_release(records, "action", ref, *claim_action);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, wf, "Workflow created");
}

Resp update_workflow(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto existing = s.find_checked(c, "workflow", "Workflow", refused);
  if (!existing) return *refused;
  Json wf = *existing;
  FieldReader f(*body);
  read_fields(f, *body, wf, false);
  if (!f.ok()) return validation(f.errors());
  const std::string pack = detail::pack_ref_of(wf);
  if (auto why = check_workflow_definition(wf["definition"], [&](const std::string& a) {
        return workflow_action_refusal(s.defs.get("action", a), a, pack);
      })) {
    return error(Errc::kBadRequest, "Invalid workflow definition: " + *why);
  }
  wf["updated"] = s.now_str();
  std::vector<OutRecord> records{definition_record("workflow", wf, s.now_ms(), "api")};
  const std::string ref = wf.value("ref", "");
  if (JsonPtr a = s.defs.get("action", ref)) {
    Json action = *a;
    for (const char* k : {"label", "description", "param_schema", "out_schema", "tags"}) {
      if (wf.contains(k)) action[k] = wf[k];
    }
    action["enabled"] = wf.value("enabled", true);
    action["workflow_def"] = wf["definition"];
    action["updated"] = wf["updated"];
    records.push_back(definition_record("action", action, s.now_ms(), "api"));
  }
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(200, wf, "Workflow updated");
}

Resp delete_workflow(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto wf = s.find_checked(c, "workflow", "Workflow", refused);
  if (!wf) return *refused;
  const std::string ref = (*wf)["ref"];
  Json users = Json::array();
  for (const auto& rule : s.defs.list("rule")) {
    if (rule->value("action_ref", "") == ref) users.push_back((*rule)["ref"]);
  }
  if (!users.empty()) {
    return error(Errc::kConflict, "Workflow '" + ref + "' is used by rules " + users.dump(),
                 Json{{"rules", users}});
  }
  std::vector<OutRecord> records;
  if (JsonPtr a = s.defs.get("action", ref); a && a->contains("workflow_def") &&
                                             (*a)["workflow_def"].is_object()) {
    records.push_back(definition_tombstone("action", ref, (*a)["id"], s.now_ms(), "api"));
    delete_action_policies(s, ref, records);
  }
  records.push_back(definition_tombstone("workflow", ref, (*wf)["id"], s.now_ms(), "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Workflow '" + ref + "' deleted");
}

}  // namespace

void register_workflow_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/workflows";
  t.add("GET", v1, Access::to("workflows", "read"), bound(s, list_workflows));
  t.add("POST", v1, Access::to("workflows", "create").on_object(), bound(s, create_workflow));
  t.add("GET", v1 + "/{ref}", Access::to("workflows", "read"), bound(s, get_workflow));
  t.add("PUT", v1 + "/{ref}", Access::to("workflows", "update"), bound(s, update_workflow));
  t.add("DELETE", v1 + "/{ref}", Access::to("workflows", "delete"), bound(s, delete_workflow));
}

}  // namespace attune::service
