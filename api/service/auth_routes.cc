// /auth/* handlers (API.md §4): register, login, refresh, me.
#include <spdlog/spdlog.h>

#include "api/auth/password.h"
#include "api/authz/authz.h"
#include "api/service/fields.h"
#include "api/service/service.h"

namespace attune::service {

using Req = rest::HttpRequest;
using Resp = rest::HttpResponse;
using detail::data;
using detail::error;
using detail::validation;

namespace {

Json public_user(const Json& identity) {
  return Json{{"id", identity.value("id", int64_t{0})},
              {"login", identity.value("login", "")},
              {"display_name", identity.value("display_name", Json(nullptr))}};
}

}  // namespace

Json ServiceContext::token_response(const Json& identity) const {
  const int64_t now_s = now_ms() / 1000;
  auth::Claims c;
  c.sub = std::to_string(identity.value("id", int64_t{0}));
  c.login = identity.value("login", "");
  c.iat = now_s;
  c.token_type = std::string(auth::kAccessToken);
  c.exp = now_s + options.access_ttl_s;
  const std::string access = jwt.sign(c);
  c.token_type = std::string(auth::kRefreshToken);
  c.exp = now_s + options.refresh_ttl_s;
  const std::string refresh = jwt.sign(c);
  return Json{{"access_token", access},
              {"refresh_token", refresh},
              {"token_type", "Bearer"},
              {"expires_in", options.access_ttl_s},
              {"user", public_user(identity)}};
}

namespace {

rest::HttpResponse register_identity(ServiceContext& s, Call& c) {
  Req& req = c.req;
  if (!s.options.allow_self_registration) {
    return error(Errc::kForbidden, "Self-registration is disabled");
  }
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto login = f.str("login", true, 3, 255);
  auto password = f.str("password", true, 8, 128);
  auto display = f.str_or_null("display_name");
  if (!f.ok()) return validation(f.errors());
  Json identity;
  {
    std::lock_guard lock(s.write_mu);
    const std::string taken = "Login '" + *login + "' is already taken";
    if (s.defs.get("identity", *login)) return error(Errc::kConflict, taken);
    auto claimant = s.claim("identity", *login, true);
    if (!claimant.ok()) return s.claim_failed(claimant.error(), taken);
    identity = {{"id", s.ids.next()},
                {"ref", *login},
                {"login", *login},
                {"display_name", display && display->is_string() ? *display : Json(*login)},
                {"password_hash", auth::hash_password(*password)},
                {"attributes", Json::object()},
                {"frozen", false},
                {"roles", Json::array()},
                {"permission_set_refs", Json::array()},
                {"created", s.now_str()},
                {"updated", s.now_str()}};
    std::vector<OutRecord> records{definition_record("identity", identity, s.now_ms(), "api")};
    s.claim_release(records, "identity", *login, *claimant);
    auto st = s.write_definitions(std::move(records));
    if (!st.ok()) return Resp::error(st.error());
  }
  // API.md §4.1: 200, not 201 (Attune's generated client parses only 200).
  return data(200, s.token_response(identity));
}

rest::HttpResponse login(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto login = f.str("login", true);
  auto password = f.str("password", true);
  if (!f.ok()) return validation(f.errors());
  auto identity = s.defs.get("identity", *login);
  // Same answer for unknown logins and wrong passwords; verify anyway to keep timing similar.
  const std::string hash = identity ? identity->value("password_hash", "") : "";
  const bool ok = !hash.empty() && auth::verify_password(hash, *password);
  if (!identity || !ok) {
    spdlog::info("auth: failed login for '{}'", *login);
    return error(Errc::kUnauthorized, "Invalid login or password");
  }
  if (identity->value("frozen", false)) return error(Errc::kUnauthorized, "Identity is frozen");
  return data(200, s.token_response(*identity));
}

rest::HttpResponse refresh(ServiceContext& s, Call& c) {
  Req& req = c.req;
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto token = f.str("refresh_token", true);
  if (!f.ok()) return validation(f.errors());
  auto claims = s.jwt.verify(*token, {auth::kRefreshToken}, s.now_ms() / 1000);
  if (!claims.ok()) return Resp::error(claims.error());
  if (!detail::all_digits(claims->sub)) return error(Errc::kUnauthorized, "Invalid token subject");
  auto identity = s.defs.get_by_id("identity", std::stoll(claims->sub));
  if (!identity || identity->value("frozen", false)) {
    return error(Errc::kUnauthorized, "Identity no longer exists or is frozen");
  }
  return data(200, s.token_response(*identity));
}

rest::HttpResponse me(ServiceContext& s, Call& c) {
  const Principal* p = &c.who();
  const Json& id = *p->identity;
  const Json perms = authz::effective_permissions(c.can().principal().grants);
  Json assigned = id.value("permission_set_refs", Json::array());
  for (const auto& a :
       s.defs.list_prefix("permission_assignment", std::to_string(p->id) + ":")) {
    assigned.push_back(a->value("permission_set_ref", ""));
  }
  return data(
      200, Json{{"id", p->id},
                {"login", p->login},
                {"display_name", id.value("display_name", Json(nullptr))},
                {"auth_provider", "local"},
                {"is_local", true},
                {"can_change_password", true},
                {"effective_permissions", perms},
                {"assigned_permission_set_refs", assigned}});
}

}  // namespace

void register_auth_routes(RouteTable& t, ServiceContext& s) {
  t.add("POST", "/auth/register", Access::open(), bound(s, register_identity));
  t.add("POST", "/auth/login", Access::open(), bound(s, login));
  t.add("POST", "/auth/refresh", Access::open(), bound(s, refresh));
  t.add("GET", "/auth/me", Access::signed_in(), bound(s, me));
}

}  // namespace attune::service
