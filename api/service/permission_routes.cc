// Permission sets and assignments (API.md §16.1): `permission_set` and `permission_assignment`
// definitions, the built-in core.* sets, and the effective grants of an identity. Reading needs
// `permissions:read`, changing `permissions:manage` (authz::allowed over the caller's grants).
#include <algorithm>

#include "api/authz/authz.h"
#include "api/rest/pagination.h"
#include "api/service/fields.h"
#include "api/service/service.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::validation;

namespace {

using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

constexpr std::string_view kSet = "permission_set";
constexpr std::string_view kAssignment = "permission_assignment";

bool is_builtin_set(const Json& set) { return set.value("builtin", false); }

// Built-in sets first, then by creation (API.md §6: "the built-in core.* sets come first").
void sort_sets(std::vector<JsonPtr>& rows) {
  std::sort(rows.begin(), rows.end(), [](const JsonPtr& a, const JsonPtr& b) {
    if (is_builtin_set(*a) != is_builtin_set(*b)) return is_builtin_set(*a);
    if (is_builtin_set(*a)) return (*a)["ref"] < (*b)["ref"];
    return (*a)["id"] < (*b)["id"];
  });
}

// A permission set shares its pack's visibility (API.md §16.3); ownerless ones are seen by
// holders of permissions:read.
bool set_visible(const Call& c, const Json& set) {
  const std::string pack = detail::pack_ref_of(set);
  return pack.empty() || c.can().sees_pack(pack);
}

}  // namespace

std::set<std::string> ServiceContext::set_refs_of(const Json& identity) const {
  std::set<std::string> refs;
  for (const auto& r : identity.value("permission_set_refs", Json::array())) {
    if (r.is_string()) refs.insert(r.get<std::string>());
  }
  const int64_t id = identity.value("id", int64_t{0});
  for (const auto& a : defs.list_prefix(kAssignment, std::to_string(id) + ":")) {
    refs.insert(a->value("permission_set_ref", ""));
  }
  // Sets bound to one of the identity's roles.
  const Json roles = identity.value("roles", Json::array());
  if (roles.is_array() && !roles.empty()) {
    for (const auto& set : defs.list(kSet)) {
      for (const auto& r : set->value("roles", Json::array())) {
        if (std::find(roles.begin(), roles.end(), r) != roles.end()) {
          refs.insert(set->value("ref", ""));
        }
      }
    }
  }
  return refs;
}

std::vector<authz::Grant> ServiceContext::grants_of(const Json& identity) const {
  const std::set<std::string> refs = set_refs_of(identity);
  std::vector<authz::Grant> grants;
  for (const auto& ref : refs) {
    std::vector<authz::Grant> g;
    if (JsonPtr set = defs.get(kSet, ref)) {
      auto parsed = authz::parse_grants(set->value("grants", Json::array()));
      if (parsed.ok()) g = std::move(*parsed);
    } else if (auto it = authz::builtin_sets().find(ref); it != authz::builtin_sets().end()) {
      g = it->second;  // before bootstrap wrote the built-in definitions
    }
    grants.insert(grants.end(), g.begin(), g.end());
  }
  return grants;
}

std::optional<rest::HttpResponse> ServiceContext::check_set_refs(const Call& c,
                                                                const Json& refs) const {
  if (!refs.is_array() || refs.empty()) return std::nullopt;
  for (const auto& r : refs) {
    const std::string ref = r.is_string() ? r.get<std::string>() : r.dump();
    if (!defs.get(kSet, ref) && !authz::builtin_sets().count(ref)) {
      return error(Errc::kBadRequest, "Unknown permission set '" + ref + "'");
    }
  }
  if (c.can().may_some("permissions", "manage")) return std::nullopt;
  const std::set<std::string> held =
      c.who().identity && c.who().execution_id == 0 ? set_refs_of(*c.who().identity)
                                                    : std::set<std::string>();
  for (const auto& r : refs) {
    const std::string ref = r.is_string() ? r.get<std::string>() : r.dump();
    if (!held.count(ref)) {
      return error(Errc::kForbidden,
                   "Permission denied: permission set '" + ref + "' is not held by the caller");
    }
  }
  return std::nullopt;
}

std::vector<OutRecord> builtin_permission_set_records(ServiceContext& s) {
  std::vector<OutRecord> records;
  const std::string now = s.now_str();
  for (const auto& [ref, grants] : authz::builtin_sets()) {
    Json g = Json::array();
    for (const auto& grant : grants) g.push_back(grant.to_json());
    JsonPtr existing = s.defs.get(kSet, ref);
    if (existing && (*existing)["grants"] == g) continue;
    Json set = existing ? *existing : Json{{"id", s.ids.next()}, {"ref", ref}, {"created", now}};
    const std::string name = ref.substr(ref.find('.') + 1);
    set.update(Json{
        {"pack_ref", "core"},
        {"pack", s.defs.get("pack", "core") ? (*s.defs.get("pack", "core"))["id"] : Json(nullptr)},
        {"label", std::string(1, static_cast<char>(std::toupper(name[0]))) + name.substr(1)},
        {"description", "Built-in permission set " + ref},
        {"grants", g},
        {"roles", existing ? existing->value("roles", Json::array()) : Json::array()},
        {"builtin", true},
        {"updated", now}});
    records.push_back(definition_record(kSet, set, s.now_ms(), "api"));
  }
  return records;
}


namespace {

rest::HttpResponse list_permission_sets(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!c.can().may_some("permissions", "read")) {
    return error(Errc::kForbidden, "Permission denied: needs permissions:read");
  }
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto pack_ref = req.query_param("pack_ref");
  std::vector<JsonPtr> rows;
  for (auto& set : s.defs.list(kSet)) {
    if (pack_ref && detail::pack_ref_of(*set) != *pack_ref) continue;
    if (!set_visible(c, *set)) continue;
    rows.push_back(std::move(set));
  }
  sort_sets(rows);
  return Resp::json(200, detail::page_envelope(rows, *page));
}

rest::HttpResponse get_permission_set(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!c.can().may_some("permissions", "read")) {
    return error(Errc::kForbidden, "Permission denied: needs permissions:read");
  }
  auto set = s.defs.resolve(kSet, req.params["id"]);
  if (!set || !set_visible(c, *set)) {
    return error(Errc::kNotFound, "Permission set '" + req.params["id"] + "' not found");
  }
  return data(200, *set);
}

rest::HttpResponse create_permission_set(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto ref = f.str("ref", true, 1, 255);
  auto label = f.str("label", false, 1, 255);
  auto description = f.str_or_null("description");
  auto pack_ref = f.str("pack_ref", false, 1);
  if (!f.ok()) return validation(f.errors());
  auto grants = authz::parse_grants(body->value("grants", Json::array()));
  if (!grants.ok()) return validation(Json{{"grants", grants.error().message}});
  JsonPtr pack;
  std::string full = *ref;
  if (pack_ref) {
    pack = s.defs.get("pack", *pack_ref);
    if (!pack || !c.can().sees_pack(*pack_ref)) {
      return error(Errc::kNotFound, "Pack '" + *pack_ref + "' not found");
    }
    if (full.find('.') == std::string::npos) full = *pack_ref + "." + full;
  }
  if (full.rfind("core.", 0) == 0) {
    return validation(Json{{"ref", "the core.* sets are built in"}});
  }
  std::lock_guard lock(s.write_mu);
  if (s.defs.get(kSet, full)) {
    return error(Errc::kConflict, "Permission set '" + full + "' already exists");
  }
  auto claimant = s.claim(kSet, full, true);
  if (!claimant.ok()) {
    return s.claim_failed(claimant.error(), "Permission set '" + full + "' already exists");
  }
  const std::string now = s.now_str();
  Json g = Json::array();
  for (const auto& grant : *grants) g.push_back(grant.to_json());
  Json set = {{"id", s.ids.next()},
              {"ref", full},
              {"pack", pack ? (*pack)["id"] : Json(nullptr)},
              {"pack_ref", pack ? (*pack)["ref"] : Json(nullptr)},
              {"label", label ? Json(*label) : Json(full)},
              {"description", description ? *description : Json("")},
              {"grants", g},
              {"roles", Json::array()},
              {"created", now},
              {"updated", now}};
  std::vector<OutRecord> records{definition_record(kSet, set, s.now_ms(), "api")};
  s.claim_release(records, kSet, full, *claimant);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, set, "Permission set created");
}

rest::HttpResponse update_permission_set(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  std::lock_guard lock(s.write_mu);
  auto existing = s.defs.resolve(kSet, req.params["id"]);
  if (!existing || !set_visible(c, *existing))
    return error(Errc::kNotFound, "Permission set '" + req.params["id"] + "' not found");
  if (is_builtin_set(*existing))
    return error(Errc::kBadRequest, "Built-in permission sets cannot be changed");
  Json set = *existing;
  FieldReader f(*body);
  if (auto label = f.str("label", false, 1, 255)) set["label"] = *label;
  if (f.has("description")) set["description"] = f.str_or_null("description").value_or(Json(""));
  if (!f.ok()) return validation(f.errors());
  if (body->contains("grants")) {
    auto grants = authz::parse_grants((*body)["grants"]);
    if (!grants.ok()) return validation(Json{{"grants", grants.error().message}});
      Json g = Json::array();
    for (const auto& grant : *grants) g.push_back(grant.to_json());
    set["grants"] = g;
  }
  set["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record(kSet, set, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, set, "Permission set updated");
}

rest::HttpResponse delete_permission_set(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  std::lock_guard lock(s.write_mu);
  auto existing = s.defs.resolve(kSet, req.params["id"]);
  if (!existing || !set_visible(c, *existing))
    return error(Errc::kNotFound, "Permission set '" + req.params["id"] + "' not found");
  if (is_builtin_set(*existing))
    return error(Errc::kBadRequest, "Built-in permission sets cannot be deleted");
  const std::string ref = (*existing)["ref"];
  const int64_t ts = s.now_ms();
  std::vector<OutRecord> records;
  for (const auto& a : s.defs.list(kAssignment)) {  // its assignments go with it
    if (a->value("permission_set_ref", "") == ref) {
      records.push_back(
          definition_tombstone(kAssignment, a->value("ref", ""), (*a)["id"], ts, "api"));
    }
  }
  records.push_back(definition_tombstone(kSet, ref, (*existing)["id"], ts, "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Permission set '" + ref + "' deleted");
}

rest::HttpResponse list_assignments(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!c.can().may_some("permissions", "read")) {
    return error(Errc::kForbidden, "Permission denied: needs permissions:read");
  }
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  const auto identity = req.query_param("identity_id");
  std::vector<JsonPtr> rows =
      identity ? s.defs.list_prefix(kAssignment, *identity + ":") : s.defs.list(kAssignment);
  std::sort(rows.begin(), rows.end(),
            [](const JsonPtr& a, const JsonPtr& b) { return (*a)["id"] < (*b)["id"]; });
  return Resp::json(200, detail::page_envelope(rows, *page));
}

rest::HttpResponse create_assignment(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto identity_id = f.integer("identity_id", 1, int64_t{1} << 53);
  auto set_ref = f.str("permission_set_ref", true, 1);
  if (!identity_id && !f.has("identity_id")) f.fail("identity_id", "is required");
  if (!f.ok()) return validation(f.errors());
  JsonPtr identity = s.defs.get_by_id("identity", *identity_id);
  if (!identity)
    return error(Errc::kNotFound, "Identity " + std::to_string(*identity_id) + " not found");
  JsonPtr set = s.defs.get(kSet, *set_ref);
  if (!set || !set_visible(c, *set)) {
    return error(Errc::kNotFound, "Permission set '" + *set_ref + "' not found");
  }
  const std::string ref = std::to_string(*identity_id) + ":" + *set_ref;
  std::lock_guard lock(s.write_mu);
  if (s.defs.get(kAssignment, ref)) {
    return error(Errc::kConflict, "Identity " + std::to_string(*identity_id) +
                                      " already holds permission set '" + *set_ref + "'");
  }
  const std::string now = s.now_str();
  Json a = {{"id", s.ids.next()},
            {"ref", ref},
            {"identity_id", *identity_id},
            {"identity", *identity_id},
            {"permission_set_ref", *set_ref},
            {"permission_set", (*set)["id"]},
            {"created", now},
            {"updated", now}};
  auto st = s.write_definitions({definition_record(kAssignment, a, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(201, a, "Permission set assigned");
}

rest::HttpResponse delete_assignment(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  std::lock_guard lock(s.write_mu);
  const std::string id = req.params["id"];
  JsonPtr a = detail::all_digits(id) ? s.defs.get_by_id(kAssignment, std::stoll(id)) : nullptr;
  if (!a) return error(Errc::kNotFound, "Permission assignment '" + id + "' not found");
  auto st = s.write_definitions(
      {definition_tombstone(kAssignment, a->value("ref", ""), (*a)["id"], s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Permission assignment " + id + " deleted");
}

}  // namespace

void register_permission_routes(RouteTable& t, ServiceContext& s) {
  const std::string sets = "/api/v1/permissions/sets";
  const std::string assignments = "/api/v1/permissions/assignments";
  t.add("GET", sets, Access::to("permissions", "read"), bound(s, list_permission_sets));
  t.add("POST", sets, Access::to("permissions", "manage"), bound(s, create_permission_set));
  t.add("GET", sets + "/{id}", Access::to("permissions", "read"), bound(s, get_permission_set));
  t.add("PUT", sets + "/{id}", Access::to("permissions", "manage"), bound(s, update_permission_set));
  t.add("DELETE", sets + "/{id}", Access::to("permissions", "manage"),
        bound(s, delete_permission_set));
  t.add("GET", assignments, Access::to("permissions", "read"), bound(s, list_assignments));
  t.add("POST", assignments, Access::to("permissions", "manage"), bound(s, create_assignment));
  t.add("DELETE", assignments + "/{id}", Access::to("permissions", "manage"),
        bound(s, delete_assignment));
}

}  // namespace attune::service
