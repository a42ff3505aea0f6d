// /auth/* handlers (API.md §4): register, login, refresh, me.
#include <spdlog/spdlog.h>

#include "api/auth/password.h"
#include "api/authz/authz.h"
#include "api/service/fields.h"
#include "api/service/service.h"

namespace attune::service {

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

Json ApiService::token_response(const Json& identity) const {
  const int64_t now_s = now_ms() / 1000;
  auth::Claims c;
  c.sub = std::to_string(identity.value("id", int64_t{0}));
  c.login = identity.value("login", "");
  c.iat = now_s;
  c.token_type = std::string(auth::kAccessToken);
  c.exp = now_s + options_.access_ttl_s;
  const std::string access = jwt_.sign(c);
  c.token_type = std::string(auth::kRefreshToken);
  c.exp = now_s + options_.refresh_ttl_s;
  const std::string refresh = jwt_.sign(c);
  return Json{{"access_token", access},
              {"refresh_token", refresh},
              {"token_type", "Bearer"},
              {"expires_in", options_.access_ttl_s},
              {"user", public_user(identity)}};
}

rest::HttpResponse ApiService::register_identity(Req& req) {
  if (!options_.allow_self_registration) {
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
    std::lock_guard lock(write_mu_);
    const std::string taken = "Login '" + *login + "' is already taken";
    if (defs_.get("identity", *login)) return error(Errc::kConflict, taken);
    auto claimant = claim("identity", *login, true);
    if (!claimant.ok()) return claim_failed(claimant.error(), taken);
    identity = {{"id", ids_.next()},
                {"ref", *login},
                {"login", *login},
                {"display_name", display && display->is_string() ? *display : Json(*login)},
                {"password_hash", auth::hash_password(*password)},
                {"attributes", Json::object()},
                {"frozen", false},
                {"roles", Json::array()},
                {"permission_set_refs", Json::array()},
                {"created", now_str()},
                {"updated", now_str()}};
    std::vector<OutRecord> records{definition_record("identity", identity, now_ms(), "api")};
    claim_release(records, "identity", *login, *claimant);
    auto st = write_definitions(std::move(records));
    if (!st.ok()) return Resp::error(st.error());
  }
  // API.md §4.1: 200, not 201 (Attune's generated client parses only 200).
  return data(200, token_response(identity));
}

rest::HttpResponse ApiService::login(Req& req) {
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto login = f.str("login", true);
  auto password = f.str("password", true);
  if (!f.ok()) return validation(f.errors());
  auto identity = defs_.get("identity", *login);
  // Same answer for unknown logins and wrong passwords; verify anyway to keep timing similar.
  const std::string hash = identity ? identity->value("password_hash", "") : "";
  const bool ok = !hash.empty() && auth::verify_password(hash, *password);
  if (!identity || !ok) {
    spdlog::info("auth: failed login for '{}'", *login);
    return error(Errc::kUnauthorized, "Invalid login or password");
  }
  if (identity->value("frozen", false)) return error(Errc::kUnauthorized, "Identity is frozen");
  return data(200, token_response(*identity));
}

rest::HttpResponse ApiService::refresh(Req& req) {
  auto body = rest::parse_json_body(req);
  if (!body.ok()) return Resp::error(body.error());
  FieldReader f(*body);
  auto token = f.str("refresh_token", true);
  if (!f.ok()) return validation(f.errors());
  auto claims = jwt_.verify(*token, {auth::kRefreshToken}, now_ms() / 1000);
  if (!claims.ok()) return Resp::error(claims.error());
  if (!detail::all_digits(claims->sub)) return error(Errc::kUnauthorized, "Invalid token subject");
  auto identity = defs_.get_by_id("identity", std::stoll(claims->sub));
  if (!identity || identity->value("frozen", false)) {
    return error(Errc::kUnauthorized, "Identity no longer exists or is frozen");
  }
  return data(200, token_response(*identity));
}

rest::HttpResponse ApiService::me(Req& req) {
  auto p = authenticate(req);
  if (!p.ok()) return Resp::error(p.error());
  const Json& id = *p->identity;
  const Json perms = authz::effective_permissions(grants_of(id));
  Json assigned = id.value("permission_set_refs", Json::array());
  for (const auto& a :
       defs_.list_prefix("permission_assignment", std::to_string(p->id) + ":")) {
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

}  // namespace attune::service
