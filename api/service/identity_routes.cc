// Identities and roles (API.md §16.1, §7): `identity` definitions managed over REST (never any
// password material in answers), roles on identities and on permission sets (an identity holds
// the sets bound to its roles), freeze/unfreeze through `frozen` (a frozen identity's tokens stop
// working at once: authenticate() reads the identity on every request).
#include <algorithm>

#include "api/auth/password.h"
#include "api/authz/authz.h"
#include "api/rest/pagination.h"
#include "api/service/fields.h"
#include "api/service/service.h"

namespace attune::service {

using detail::data;
using detail::deleted;
using detail::error;
using detail::validation;
using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;

namespace {

// The identity as answers show it: no password hash, no internal fields.
Json public_identity(const Json& identity) {
  Json out = identity;
  out.erase("password_hash");
  out.erase("ref");
  return out;
}

bool valid_role(const std::string& role) {
  return !role.empty() && role.size() <= 128 && std::all_of(role.begin(), role.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

JsonPtr ServiceContext::find_identity(const std::string& id_or_login) const {
  if (detail::all_digits(id_or_login)) return defs.get_by_id("identity", std::stoll(id_or_login));
  return defs.get("identity", id_or_login);
}

namespace {

rest::HttpResponse list_identities(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!c.can().may_some("identities", "read")) {
    return error(Errc::kForbidden, "Permission denied: needs identities:read");
  }
  auto page = rest::parse_page_request(req);
  if (!page.ok()) return Resp::error(page.error());
  std::vector<JsonPtr> rows;
  for (auto& i : s.defs.list("identity")) {
    if (!i->value("is_sensor", false)) rows.push_back(std::move(i));
  }
  std::sort(rows.begin(), rows.end(),
            [](const JsonPtr& a, const JsonPtr& b) { return (*a)["id"] < (*b)["id"]; });
  return Resp::json(200, detail::page_envelope(rows, *page, public_identity));
}

rest::HttpResponse get_identity(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!c.can().may_some("identities", "read")) {
    return error(Errc::kForbidden, "Permission denied: needs identities:read");
  }
  JsonPtr identity = s.find_identity(req.params["id"]);
  if (!identity) return error(Errc::kNotFound, "Identity '" + req.params["id"] + "' not found");
  return data(200, public_identity(*identity));
}

rest::HttpResponse create_identity(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto login = f.str("login", true, 3, 255);
  auto password = f.str("password", false, 8, 128);
  auto display = f.str_or_null("display_name");
  auto attributes = f.object("attributes");
  if (!f.ok()) return validation(f.errors());
  std::lock_guard lock(s.write_mu);
  const std::string taken = "Login '" + *login + "' is already taken";
  if (s.defs.get("identity", *login)) return error(Errc::kConflict, taken);
  auto claimant = s.claim("identity", *login, true);
  if (!claimant.ok()) return s.claim_failed(claimant.error(), taken);
  const std::string now = s.now_str();
  Json identity = {{"id", s.ids.next()},
                   {"ref", *login},
                   {"login", *login},
                   {"display_name", display && display->is_string() ? *display : Json(*login)},
                   {"attributes", attributes ? *attributes : Json::object()},
                   {"frozen", false},
                   {"roles", Json::array()},
                   {"permission_set_refs", Json::array()},
                   {"created", now},
                   {"updated", now}};
  // Without a password the identity cannot log in until one is set (PUT).
  if (password) identity["password_hash"] = auth::hash_password(*password);
  std::vector<OutRecord> records{definition_record("identity", identity, s.now_ms(), "api")};
  s.claim_release(records, "identity", *login, *claimant);
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return data(201, public_identity(identity), "Identity created");
}

rest::HttpResponse update_identity(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto display = f.str_or_null("display_name");
  auto attributes = f.object("attributes");
  auto frozen = f.has("frozen") ? f.boolean("frozen") : std::nullopt;
  auto password = f.str("password", false, 8, 128);
  if (!f.ok()) return validation(f.errors());
  std::lock_guard lock(s.write_mu);
  JsonPtr existing = s.find_identity(req.params["id"]);
  if (!existing || existing->value("is_sensor", false)) {
    return error(Errc::kNotFound, "Identity '" + req.params["id"] + "' not found");
  }
  Json identity = *existing;
  if (f.has("display_name")) identity["display_name"] = display ? *display : Json(nullptr);
  if (attributes) identity["attributes"] = *attributes;
  if (frozen) identity["frozen"] = *frozen;
  if (password) identity["password_hash"] = auth::hash_password(*password);
  identity["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("identity", identity, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, public_identity(identity), "Identity updated");
}

rest::HttpResponse delete_identity(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  auto caller = s.authenticate(req);
  std::lock_guard lock(s.write_mu);
  JsonPtr existing = s.find_identity(req.params["id"]);
  if (!existing || existing->value("is_sensor", false)) {
    return error(Errc::kNotFound, "Identity '" + req.params["id"] + "' not found");
  }
  const int64_t id = (*existing)["id"];
  if (caller.ok() && caller->id == id) {
    return error(Errc::kBadRequest, "An identity cannot delete itself");
  }
  const int64_t ts = s.now_ms();
  std::vector<OutRecord> records;
  for (const auto& a : s.defs.list_prefix("permission_assignment", std::to_string(id) + ":")) {
    records.push_back(
        definition_tombstone("permission_assignment", a->value("ref", ""), (*a)["id"], ts, "api"));
  }
  records.push_back(definition_tombstone("identity", existing->value("ref", ""), id, ts, "api"));
  auto st = s.write_definitions(std::move(records));
  if (!st.ok()) return Resp::error(st.error());
  return deleted("Identity " + std::to_string(id) + " deleted");
}

rest::HttpResponse set_identity_role(ServiceContext& s, Call& c, bool add) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  std::string role = req.params.count("role") ? req.params["role"] : "";
  if (add) {
    auto body = rest::parse_json_body(req);
    if (!body.ok()) return Resp::error(body.error());
    FieldReader f(*body);
    auto r = f.str("role", true, 1, 128);
    if (!f.ok()) return validation(f.errors());
    role = *r;
  }
  if (!valid_role(role)) return validation(Json{{"role", "letters, digits, '_', '-' or '.'"}});
  std::lock_guard lock(s.write_mu);
  JsonPtr existing = s.find_identity(req.params["id"]);
  if (!existing || existing->value("is_sensor", false)) {
    return error(Errc::kNotFound, "Identity '" + req.params["id"] + "' not found");
  }
  Json identity = *existing;
  Json roles = identity.value("roles", Json::array());
  auto it = std::find(roles.begin(), roles.end(), Json(role));
  if (add && it == roles.end()) roles.push_back(role);
  if (!add) {
    if (it == roles.end()) {
      return error(Errc::kNotFound, "Identity does not hold role '" + role + "'");
    }
    roles.erase(it);
  }
  identity["roles"] = roles;
  identity["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("identity", identity, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, public_identity(identity));
}

rest::HttpResponse add_set_role(ServiceContext& s, Call& c) {
  if (auto refused = c.require_grant()) return *refused;
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto role = f.str("role", true, 1, 128);
  if (!f.ok()) return validation(f.errors());
  if (!valid_role(*role)) return validation(Json{{"role", "letters, digits, '_', '-' or '.'"}});
  std::lock_guard lock(s.write_mu);
  auto existing = s.defs.resolve("permission_set", req.params["id"]);
  if (!existing)
    return error(Errc::kNotFound, "Permission set '" + req.params["id"] + "' not found");
  Json set = *existing;
  Json roles = set.value("roles", Json::array());
  if (std::find(roles.begin(), roles.end(), Json(*role)) == roles.end()) roles.push_back(*role);
  set["roles"] = roles;
  set["updated"] = s.now_str();
  auto st = s.write_definitions({definition_record("permission_set", set, s.now_ms(), "api")});
  if (!st.ok()) return Resp::error(st.error());
  return data(200, set);
}

}  // namespace

void register_identity_routes(RouteTable& t, ServiceContext& s) {
  const std::string v1 = "/api/v1/identities";
  t.add("GET", v1, Access::to("identities", "read"), bound(s, list_identities));
  t.add("POST", v1, Access::to("identities", "create"), bound(s, create_identity));
  t.add("GET", v1 + "/{id}", Access::to("identities", "read"), bound(s, get_identity));
  t.add("PUT", v1 + "/{id}", Access::to("identities", "update"), bound(s, update_identity));
  t.add("DELETE", v1 + "/{id}", Access::to("identities", "delete"), bound(s, delete_identity));
  // Roles grant the sets bound to them: managing them is managing permissions (API.md §16.1).
  t.add("POST", v1 + "/{id}/roles", Access::to("permissions", "manage"),
        [&s](Call& c) { return set_identity_role(s, c, true); });
  t.add("DELETE", v1 + "/{id}/roles/{role}", Access::to("permissions", "manage"),
        [&s](Call& c) { return set_identity_role(s, c, false); });
  t.add("POST", "/api/v1/permissions/sets/{id}/roles", Access::to("permissions", "manage"),
        bound(s, add_set_role));
}

}  // namespace attune::service
