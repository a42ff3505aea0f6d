// Policies (API.md §6, §7, §15, §16): CRUD of policy definitions (kind admission::kPolicyKind on
// attune.definitions), the policies of a pack and those that apply to an action, and an action's
// queue statistics. A policy belongs to a pack (its `pack_ref`, which RBAC constraints and
// visibility follow, like every pack's content); what it governs is its `scope`, and setting a
// scope needs the same right on the governed pack as on the owning one: an action or pack scope
// names that pack, a global scope needs an unconstrained grant.
#include <algorithm>

#include "api/projections/projections.h"
#include "api/rest/pagination.h"
#include "api/service/definition_fields.h"
#include "api/service/fields.h"
#include "api/service/service.h"
#include "processors/admission/policy.h"
#include "processors/admission/policy_def.h"

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

const std::string kKind(admission::kPolicyKind);

// Where a scope sits in resolution order: action 2, pack 1, global 0 (API.md §15).
int scope_rank(const Json& policy) {
  const std::string type = policy.value("scope", Json::object()).value("type", "global");
  return type == "action" ? 2 : type == "pack" ? 1 : 0;
}

// Checks the policy's scope for the caller doing `act` and links it: an action scope's action
// must exist and the caller may `act` policies of its pack (404 when the action is invisible,
// 403 without the grant); the same for a pack scope's pack; a global scope needs the grant
// unconstrained. Sets the link pair `action`/`action_ref` (null unless action-scoped).
std::optional<Resp> check_scope(ServiceContext& s, const Call& c, Json& policy,
                                std::string_view act) {
  const Json scope = policy["scope"];
  const std::string type = scope.value("type", "global");
  policy["action"] = nullptr;
  policy["action_ref"] = nullptr;
  if (type == "action") {
    const std::string ref = scope.value("action_ref", "");
    JsonPtr action = s.defs.get("action", ref);
    const std::string label = "Action '" + ref + "'";
    if (!action) return error(Errc::kNotFound, label + " not found");
    authz::Object o{"policies", detail::pack_ref_of(*action)};
    o.ref = ref;
    if (auto refused = c.check(label, o, action->value("reference_visibility", "public"), act)) {
      return refused;
    }
    policy["action"] = (*action)["id"];
    policy["action_ref"] = ref;
  } else if (type == "pack") {
    const std::string ref = scope.value("pack_ref", "");
    const std::string label = "Pack '" + ref + "'";
    if (!s.defs.get("pack", ref)) return error(Errc::kNotFound, label + " not found");
    if (auto refused = c.check(label, authz::Object{"policies", ref}, "public", act)) {
      return refused;
    }
  } else if (auto refused = refuse_global_policy(c, act)) {
    return refused;
  }
  return std::nullopt;
}

// A create body's `pack_ref` and `ref` as resolve_scoped reads them: `ref` (or `name`), and the
// owning pack from `pack_ref`, else a qualified ref's pack, else the scope's action's pack.
Json scoped_body(const Json& body) {
  Json b = body;
  if (!b.contains("ref") && b.value("name", Json()).is_string()) b["ref"] = b["name"];
  if (b.value("pack_ref", Json()).is_string()) return b;
  std::string from;
  if (b.value("ref", Json()).is_string()) from = b["ref"].get<std::string>();
  if (admission::pack_of_ref(from).empty()) {
    const Json scope = b.value("scope", Json::object());
    const Json action = scope.is_object() && scope.contains("action_ref")
                            ? scope["action_ref"]
                            : b.value("action_ref", Json());
    if (action.is_string()) from = action.get<std::string>();
  }
  if (!admission::pack_of_ref(from).empty())
    b["pack_ref"] = std::string(admission::pack_of_ref(from));
  return b;
}

Resp list_policies(ServiceContext& s, Call& c) {
  auto page = rest::parse_page_request(c.req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = c.req.query_param("pack_ref");
  const auto action_ref = c.req.query_param("action_ref");
  auto rows = s.visible_definitions(c, kKind, [&](const Json& p) {
    return (!pack_ref || detail::pack_ref_of(p) == *pack_ref) &&
           (!action_ref || p.value("action_ref", Json()) == Json(*action_ref));
  });
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

Resp get_policy(ServiceContext& s, Call& c) { return s.get_definition(c, kKind, "Policy"); }

Resp create_policy(ServiceContext& s, Call& c) {
  auto body = rest::parse_json_body(c.req);
  if (!body.ok()) return Resp::error(body.error());
  if (!body->is_object()) return validation(Json{{"body", "must be an object"}});
  Scoped scoped;
  if (auto err = resolve_scoped(c, s.defs, scoped_body(*body), scoped)) return *err;
  Json fields;
  auto policy = admission::normalize_policy(*body, Json::object(), true, fields);
  if (!policy.ok()) return validation(fields);
  if (auto refused = check_scope(s, c, *policy, "create")) return *refused;
  (*policy)["name"] = scoped.name;
  return s.insert_scoped(kKind, "Policy", *scoped.pack, scoped.ref, std::move(*policy));
}

Resp update_policy(ServiceContext& s, Call& c) {
  static const std::vector<FieldSpec> kNoFields;
  return s.update_definition(
      c, kKind, "Policy", kNoFields,
      [&s, &c](FieldReader&, const Json& body, Json& policy) -> std::optional<Resp> {
        Json fields;
        auto updated = admission::normalize_policy(body, policy, false, fields);
        if (!updated.ok()) return validation(fields);
        if (auto refused = check_scope(s, c, *updated, "update")) return refused;
        policy = std::move(*updated);
        return std::nullopt;
      });
}

Resp delete_policy(ServiceContext& s, Call& c) {
  std::lock_guard lock(s.write_mu);
  std::optional<Resp> refused;
  auto p = s.find_checked(c, kKind, "Policy", refused);
  if (!p) return *refused;
  const std::string ref = (*p)["ref"];
  auto st = s.write_definitions({definition_tombstone(kKind, ref, (*p)["id"], s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Policy '" + ref + "' deleted");
}

// GET /packs/{ref}/policies: the policies the pack owns.
Resp pack_policies(ServiceContext& s, Call& c) {
  auto page = rest::parse_page_request(c.req);
  if (!page.ok()) return Resp::error(page.error());
  const std::string& segment = c.req.params["ref"];
  JsonPtr pack = s.defs.resolve("pack", segment);
  if (!pack || !c.can().sees_pack(pack->value("ref", ""))) {
    return error(Errc::kNotFound, "Pack '" + segment + "' not found");
  }
  const std::string ref = (*pack)["ref"];
  auto rows =
      s.visible_definitions(c, kKind, [&](const Json& p) { return detail::pack_ref_of(p) == ref; });
  return Resp::json(200, sorted_page(std::move(rows), *page));
}

// The action a `{ref}` segment names, if the caller may read it (else the 404/403).
JsonPtr readable_action(ServiceContext& s, Call& c, std::optional<Resp>& refused) {
  const std::string& segment = c.req.params["ref"];
  JsonPtr action = s.defs.resolve("action", segment);
  if (!action) {
    refused = error(Errc::kNotFound, "Action '" + segment + "' not found");
    return nullptr;
  }
  authz::Object o{"actions", detail::pack_ref_of(*action)};
  o.ref = action->value("ref", "");
  refused =
      c.check("Action '" + o.ref + "'", o, action->value("reference_visibility", "public"), "read");
  return refused ? nullptr : action;
}

// GET /actions/{ref}/policies: the enabled policies that apply to the action — its own, its
// pack's, global ones — in resolution order (most specific first, then priority, then ref).
Resp action_policies(ServiceContext& s, Call& c) {
  auto page = rest::parse_page_request(c.req);
  if (!page.ok()) return Resp::error(page.error());
  std::optional<Resp> refused;
  JsonPtr action = readable_action(s, c, refused);
  if (!action) return *refused;
  const std::string ref = (*action)["ref"];
  const std::string pack = detail::pack_ref_of(*action);
  auto rows = s.visible_definitions(c, kKind, [&](const Json& p) {
    if (!p.value("enabled", true)) return false;
    const Json& scope = p.value("scope", Json::object());
    switch (scope_rank(p)) {
      case 2:
        return scope.value("action_ref", "") == ref;
      case 1:
        return scope.value("pack_ref", "") == pack;
      default:
        return true;
    }
  });
  std::sort(rows.begin(), rows.end(), [](const JsonPtr& a, const JsonPtr& b) {
    const int ra = scope_rank(*a), rb = scope_rank(*b);
    if (ra != rb) return ra > rb;
    const int64_t pa = a->value("priority", int64_t{0}), pb = b->value("priority", int64_t{0});
    if (pa != pb) return pa > pb;
    return a->value("ref", "") < b->value("ref", "");
  });
  return Resp::json(200, detail::page_envelope(rows, *page));
}

// GET /actions/{ref}/queue-stats (API.md §15): the admission stage's latest statistics of the
// action; before its first one, zeros and the limit policies would set.
Resp queue_stats(ServiceContext& s, Call& c) {
  std::optional<Resp> refused;
  JsonPtr action = readable_action(s, c, refused);
  if (!action) return *refused;
  const std::string ref = (*action)["ref"];
  auto stats = s.views.queue_stats(ref);
  if (!stats.ok()) return Resp::error(stats.error());
  Json out = {{"action_id", (*action)["id"]},
              {"action_ref", ref},
              {"active_count", 0},
              {"max_concurrent", nullptr},
              {"queue_length", 0},
              {"total_enqueued", 0},
              {"total_completed", 0},
              {"oldest_enqueued_at", nullptr},
              {"last_updated", nullptr}};
  if (stats->has_value()) {
    for (auto& [k, v] : out.items()) {
      if (k != "action_id" && k != "action_ref" && (**stats).contains(k)) v = (**stats)[k];
    }
  } else {
    const admission::Effective e =
        admission::resolve(s.defs.list(kKind), ref, detail::pack_ref_of(*action));
    if (e.concurrency) out["max_concurrent"] = e.concurrency->limit;
  }
  return data(200, out);
}

}  // namespace

std::optional<Resp> refuse_global_policy(const Call& c, std::string_view act) {
  if (c.can().may(act, authz::Object{"policies", ""})) return std::nullopt;
  return error(Errc::kForbidden, "Permission denied: a global policy needs policies:" +
                                     std::string(act) + " without pack constraints");
}

void delete_action_policies(const ServiceContext& s, const std::string& action_ref,
                            std::vector<OutRecord>& records) {
  for (const auto& p : s.defs.list(kKind)) {
    if (p->value("action_ref", Json()) != Json(action_ref)) continue;
    records.push_back(
        definition_tombstone(kKind, p->value("ref", ""), (*p)["id"], s.now_ms(), "api"));
  }
}

void register_policy_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1";
  t.add("GET", v1 + "/policies", Access::to("policies", "read"), bound(s, list_policies));
  t.add("POST", v1 + "/policies", Access::to("policies", "create").on_object(),
        bound(s, create_policy));
  t.add("GET", v1 + "/policies/{ref}", Access::to("policies", "read"), bound(s, get_policy));
  t.add("PUT", v1 + "/policies/{ref}", Access::to("policies", "update"), bound(s, update_policy));
  t.add("DELETE", v1 + "/policies/{ref}", Access::to("policies", "delete"),
        bound(s, delete_policy));
  t.add("GET", v1 + "/packs/{ref}/policies", Access::to("policies", "read"),
        bound(s, pack_policies));
  t.add("GET", v1 + "/actions/{ref}/policies", Access::to("policies", "read"),
        bound(s, action_policies));
  t.add("GET", v1 + "/actions/{ref}/queue-stats", Access::to("actions", "read"),
        bound(s, queue_stats));
}

}  // namespace attune::service
