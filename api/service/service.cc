#include "api/service/service.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>

#include "api/auth/password.h"
#include "api/auth/secrets.h"
#include "api/projections/projections.h"
#include "api/projections/schema.h"
#include "api/service/core_pack.h"
#include "processors/keystore/expiry.h"
#include "topology/core/time.h"

namespace attune::service {

namespace detail {

rest::HttpResponse data(int status, Json value, std::optional<std::string> message) {
  Json body = Json::object();  // (an initializer list would copy `value`)
  body["data"] = std::move(value);
  if (message) body["message"] = *message;
  return rest::HttpResponse::json(status, body);
}

rest::HttpResponse error(Errc code, std::string message, Json details) {
  return rest::HttpResponse::error(make_error(code, std::move(message)), std::move(details));
}

rest::HttpResponse validation(Json fields) {
  std::string first;
  if (fields.is_object() && !fields.empty()) {
    first = ": " + fields.begin().key() + " " + fields.begin().value().get<std::string>();
  }
  return error(Errc::kValidation, "Validation failed" + first, Json{{"fields", std::move(fields)}});
}

rest::HttpResponse deleted(std::string message) {
  return rest::HttpResponse::json(200, Json{{"success", true}, {"message", std::move(message)}});
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 16 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Json page_envelope(const std::vector<JsonPtr>& rows, const rest::PageRequest& page,
                   const std::function<Json(const Json&)>& present) {
  Json items = Json::array();
  for (size_t i = static_cast<size_t>(page.offset);
       i < rows.size() && items.size() < static_cast<size_t>(page.page_size); ++i) {
    items.push_back(present ? present(*rows[i]) : *rows[i]);
  }
  return rest::list_envelope(std::move(items), page, static_cast<int64_t>(rows.size()));
}

Json sorted_page(std::vector<JsonPtr> rows, const rest::PageRequest& page,
                 const std::function<Json(const Json&)>& present) {
  std::sort(rows.begin(), rows.end(), [](const JsonPtr& a, const JsonPtr& b) {
    const auto& ca = (*a)["created"];
    const auto& cb = (*b)["created"];
    if (ca != cb) return ca > cb;
    return (*a)["id"] > (*b)["id"];
  });
  if (page.order == rest::SortOrder::kAsc) std::reverse(rows.begin(), rows.end());
  return page_envelope(rows, page, present);
}

std::string pack_ref_of(const Json& obj) {
  auto it = obj.find("pack_ref");
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace detail

ApiService::ApiService(Log& log, DefinitionsTable& defs, projections::Projections& views,
                       const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock,
                       Metrics& metrics, ServiceOptions options)
    : log_(log),
      defs_(defs),
      views_(views),
      jwt_(jwt),
      ids_(ids),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      key_expiry_(std::make_unique<keystore::KeyExpiry>(
          log, defs, clock, std::chrono::milliseconds(1000),
          [this](std::string_view ref) { return key_holds_.hold(ref); })),
      life_(std::make_shared<Life>()) {}

ApiService::~ApiService() {
  key_expiry_->stop();
  std::lock_guard lock(life_->mu);
  life_->alive = false;
}

void ApiService::start_background() { key_expiry_->start(); }

std::string ApiService::now_str() const { return format_rfc3339_ms(now_ms()); }

rest::HttpResponse ApiService::write_definitions_then(std::vector<OutRecord> records,
                                                     std::shared_ptr<void> held,
                                                     std::function<rest::HttpResponse()> respond) {
  auto answer = std::make_shared<rest::DeferredResponse>();
  const auto timeout = options_.write_timeout;
  log_.produce_async(
      std::move(records),
      [&defs = defs_, answer, held = std::move(held), respond = std::move(respond),
       timeout](Result<std::vector<RecordPosition>> pos) mutable {
        if (!pos.ok()) {
          answer->complete(Resp::error(pos.error()));
          return;
        }
        if (pos->empty()) {
          answer->complete(respond());
          return;
        }
        defs.when_applied(pos->back().offset, timeout,
                           [answer, held = std::move(held), respond = std::move(respond)](
                               bool applied) mutable {
                             if (!applied) {
                               answer->complete(Resp::error(make_error(
                                   Errc::kUnavailable,
                                   "Database operation temporarily unavailable; please retry")));
                               return;
                             }
                             held.reset();  // the next writer of the key sees this write
                             answer->complete(respond());
                           });
      });
  return Resp::later(std::move(answer));
}

Result<std::string> ApiService::claim(std::string_view kind, std::string_view ref, bool absent) {
  if (!options_.claim_creates) return std::string();
  const std::string claimant =
      options_.instance + "/" + std::to_string(claims_made_.fetch_add(1) + 1);
  auto pos = log_.produce({claim_record(kind, ref, claimant, absent, now_ms(), "api")});
  if (!pos.ok()) return pos.error();
  if (pos->empty() || !defs_.wait_applied(pos->back().offset, options_.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  if (defs_.claim_holder(kind, ref) != claimant) {
    return make_error(Errc::kConflict, "another request holds " + std::string(kind) + " '" +
                                           std::string(ref) + "'");
  }
  return claimant;
}

void ApiService::claim_release(std::vector<OutRecord>& records, std::string_view kind,
                               std::string_view ref, const std::string& claimant) const {
  if (!claimant.empty()) records.push_back(release_record(kind, ref, claimant, now_ms(), "api"));
}

rest::HttpResponse ApiService::claim_failed(const Error& e, std::string conflict) {
  if (e.code == Errc::kConflict) return Resp::error(make_error(Errc::kConflict, std::move(conflict)));
  return Resp::error(e);
}

Status ApiService::write_definitions(std::vector<OutRecord> records) {
  auto pos = log_.produce(std::move(records));
  if (!pos.ok()) return pos.error();
  if (pos->empty()) return {};
  if (!defs_.wait_applied(pos->back().offset, options_.write_timeout)) {
    return make_error(Errc::kUnavailable, "Database operation temporarily unavailable; please retry");
  }
  return {};
}

Result<Principal> ApiService::authenticate(const rest::HttpRequest& req) const {
  auto header = req.header("Authorization");
  if (!header) return make_error(Errc::kUnauthorized, "Missing Authorization header");
  constexpr std::string_view kBearer = "Bearer ";
  if (header->size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), header->begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return make_error(Errc::kUnauthorized, "Authorization header must be 'Bearer <token>'");
  }
  const std::string_view token = std::string_view(*header).substr(kBearer.size());
  const int64_t now_s = clock_.now_ms() / 1000;
  std::shared_ptr<const auth::Claims> claims;
  {
    std::shared_lock lock(token_cache_mu_);
    if (auto it = token_cache_.find(token); it != token_cache_.end()) claims = it->second;
  }
  if (claims) {
    if (now_s >= claims->exp) return make_error(Errc::kUnauthorized, "Token expired");
  } else {
    auto verified = jwt_.verify(
        token, {auth::kAccessToken, auth::kExecutionToken, auth::kSensorToken}, now_s);
    if (!verified.ok()) return verified.error();
    claims = std::make_shared<const auth::Claims>(std::move(*verified));
    constexpr size_t kTokenCacheSize = 4096;
    std::unique_lock lock(token_cache_mu_);
    if (token_cache_.size() >= kTokenCacheSize) token_cache_.clear();
    token_cache_.emplace(std::string(token), claims);
  }
  if (!detail::all_digits(claims->sub)) {
    return make_error(Errc::kUnauthorized, "Invalid token subject");
  }
  Principal p;
  p.id = std::stoll(claims->sub);
  p.token_type = claims->token_type;
  p.identity = defs_.get_by_id("identity", p.id);
  if (!p.identity) return make_error(Errc::kUnauthorized, "Identity no longer exists");
  if (p.identity->value("frozen", false)) {
    return make_error(Errc::kUnauthorized, "Identity is frozen");
  }
  p.login = p.identity->value("login", "");
  if (p.token_type == auth::kExecutionToken) {
    // Scoped to one execution and expiring with it (API.md §4.2): a token whose execution is
    // unknown or finished is refused like an expired one.
    const Json& meta = claims->metadata;
    const Json id = meta.is_object() ? meta.value("execution_id", Json()) : Json();
    if (!id.is_number_integer() || id.get<int64_t>() <= 0) {
      return make_error(Errc::kUnauthorized, "Execution token has no execution_id");
    }
    auto row = token_execution(id.get<int64_t>());
    if (!row.ok()) return row.error();
    p.execution_id = id.get<int64_t>();
    p.execution_action_ref = row->value("action_ref", "");
    p.execution_pack_ref = row->value("pack_ref", "");
    return p;
  }
  if (p.token_type == auth::kSensorToken) {
    const Json types = claims->extra.is_object() ? claims->extra.value("trigger_types", Json())
                                                  : Json();
    if (types.is_array()) p.trigger_types = types;
  }
  if (p.token_type == auth::kAccessToken) {
    if (auto sets = p.identity->find("permission_set_refs");
        sets != p.identity->end() && sets->is_array()) {
      for (const auto& s : *sets) {
        if (s == "core.admin") p.admin = true;
      }
    }
  }
  return p;
}

Result<Json> ApiService::token_execution(int64_t execution_id) const {
  auto row = views_.get_execution(execution_id);
  if (!row.ok()) return row.error();
  if (!row->has_value()) {
    return make_error(Errc::kUnauthorized, "Execution token names an unknown execution");
  }
  const std::string status = (**row).value("status", "");
  if (projections::is_terminal_execution_status(status)) {
    return make_error(Errc::kUnauthorized, "Execution token expired: the execution is " + status);
  }
  return std::move(**row);
}

Status ApiService::bootstrap(const BootstrapOptions& options) {
  sweep_pack_dirs();
  sweep_environments();
  if (auto st = install_core_pack(); !st.ok()) return st;
  std::lock_guard lock(write_mu_);
  std::vector<OutRecord> records = builtin_permission_set_records();
  const int64_t ts = now_ms();

  std::string login, password;
  bool generated = false;
  if (options.admin) {
    const auto colon = options.admin->find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == options.admin->size()) {
      return make_error(Errc::kBadRequest,
                        "ATTUNE_BOOTSTRAP_ADMIN must be 'login:password' with both parts set");
    }
    login = options.admin->substr(0, colon);
    password = options.admin->substr(colon + 1);
  } else if (defs_.list("identity").empty()) {
    login = "admin";
    password = auth::random_urlsafe(24);
    generated = true;
  }
  if (!login.empty()) {
    auto existing = defs_.get("identity", login);
    if (!existing) {
      Json identity = {{"id", ids_.next()},
                       {"ref", login},
                       {"login", login},
                       {"display_name", login},
                       {"password_hash", auth::hash_password(password)},
                       {"attributes", Json::object()},
                       {"frozen", false},
                       {"roles", Json::array()},
                       {"permission_set_refs", Json::array({"core.admin"})},
                       {"created", now_str()},
                       {"updated", now_str()}};
      records.push_back(definition_record("identity", identity, ts, "api"));
    } else {
      Json identity = *existing;
      auto& sets = identity["permission_set_refs"];
      if (!sets.is_array()) sets = Json::array();
      bool has = false;
      for (const auto& s : sets) has = has || s == "core.admin";
      if (!has) {
        sets.push_back("core.admin");
        identity["updated"] = now_str();
        records.push_back(definition_record("identity", identity, ts, "api"));
      }
    }
  }
  auto st = write_definitions(std::move(records));
  if (!st.ok()) return st;
  if (generated) {
    const std::string path = options.data_dir + "/admin-password";
    {
      std::ofstream out(path, std::ios::trunc);
      out << login << ":" << password << "\n";
    }
    ::chmod(path.c_str(), 0600);
    std::printf("attune: created administrator '%s' with password '%s' (also in %s)\n",
                login.c_str(), password.c_str(), path.c_str());
    std::fflush(stdout);
  }
  return {};
}

void ApiService::register_routes(rest::Router& r) {
  using rest::HttpRequest;
  using rest::HttpResponse;
  auto bind = [this](HttpResponse (ApiService::*fn)(HttpRequest&)) {
    return [this, fn](HttpRequest& req) { return (this->*fn)(req); };
  };
  // Authenticated routes check the token first; a failure answers 401 before any handler work.
  auto authed = [this](rest::Handler h) {
    return [this, h = std::move(h)](HttpRequest& req) {
      auto p = authenticate(req);
      if (!p.ok()) return HttpResponse::error(p.error());
      // Execution tokens reach the datastore (own routes) and their own execution, nothing
      // else (API.md §16.2; permission sets will widen this).
      if (p->execution_id != 0) {
        const std::string own = "/api/v1/executions/" + std::to_string(p->execution_id);
        if (req.method == "GET" && req.path == own) return h(req);
        if (req.method == "GET" && req.path.rfind("/api/v1/executions/", 0) == 0) {
          return detail::error(Errc::kNotFound, "Execution not found");
        }
        return detail::error(Errc::kForbidden,
                             "Execution tokens may only use the datastore and read their own "
                             "execution");
      }
      return h(req);
    };
  };
  auto a = [&](HttpResponse (ApiService::*fn)(HttpRequest&)) { return authed(bind(fn)); };

  r.add("GET", "/health", [](HttpRequest&) {
    return HttpResponse::json(200, Json{{"status", "ok"}});
  });
  r.add("GET", "/health/live", [](HttpRequest&) {
    return HttpResponse::json(200, Json{{"status", "ok"}});
  });
  r.add("GET", "/health/ready", [this](HttpRequest&) {
    auto probe = log_.db().store("__meta");
    if (!probe.ok() || !(*probe)->get("probe").ok()) {
      return HttpResponse::json(503, Json{{"status", "unavailable"}});
    }
    return HttpResponse::json(200, Json{{"status", "ok"}});
  });
  r.add("GET", "/health/detailed", [this](HttpRequest&) {
    auto probe = log_.db().store("__meta");
    const bool db_ok = probe.ok() && (*probe)->get("probe").ok();
    return HttpResponse::json(200, Json{{"status", db_ok ? "ok" : "degraded"},
                                        {"version", options_.version},
                                        {"database", db_ok ? "ok" : "error"}});
  });
  r.add("GET", "/metrics", [this](HttpRequest&) {
    HttpResponse resp;
    resp.status = 200;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = metrics_.serialize();
    return resp;
  });

  r.add("POST", "/auth/register", bind(&ApiService::register_identity));
  r.add("POST", "/auth/login", bind(&ApiService::login));
  r.add("POST", "/auth/refresh", bind(&ApiService::refresh));
  r.add("GET", "/auth/me", bind(&ApiService::me));

  const std::string v1 = "/api/v1";
  r.add("GET", v1 + "/packs", a(&ApiService::list_packs));
  r.add("POST", v1 + "/packs", a(&ApiService::create_pack));
  r.add("GET", v1 + "/packs/{ref}", a(&ApiService::get_pack));
  r.add("PUT", v1 + "/packs/{ref}", a(&ApiService::update_pack));
  r.add("DELETE", v1 + "/packs/{ref}", a(&ApiService::delete_pack));
  r.add("POST", v1 + "/packs/upload", a(&ApiService::upload_pack));
  r.add("GET", v1 + "/permissions/sets", a(&ApiService::list_permission_sets));
  r.add("POST", v1 + "/permissions/sets", a(&ApiService::create_permission_set));
  r.add("GET", v1 + "/permissions/sets/{id}", a(&ApiService::get_permission_set));
  r.add("PUT", v1 + "/permissions/sets/{id}", a(&ApiService::update_permission_set));
  r.add("DELETE", v1 + "/permissions/sets/{id}", a(&ApiService::delete_permission_set));
  r.add("POST", v1 + "/permissions/sets/{id}/roles", a(&ApiService::add_set_role));
  r.add("GET", v1 + "/identities", a(&ApiService::list_identities));
  r.add("POST", v1 + "/identities", a(&ApiService::create_identity));
  r.add("GET", v1 + "/identities/{id}", a(&ApiService::get_identity));
  r.add("PUT", v1 + "/identities/{id}", a(&ApiService::update_identity));
  r.add("DELETE", v1 + "/identities/{id}", a(&ApiService::delete_identity));
  r.add("POST", v1 + "/identities/{id}/roles",
        authed([this](HttpRequest& req) { return set_identity_role(req, true); }));
  r.add("DELETE", v1 + "/identities/{id}/roles/{role}",
        authed([this](HttpRequest& req) { return set_identity_role(req, false); }));
  r.add("GET", v1 + "/permissions/assignments", a(&ApiService::list_assignments));
  r.add("POST", v1 + "/permissions/assignments", a(&ApiService::create_assignment));
  r.add("DELETE", v1 + "/permissions/assignments/{id}", a(&ApiService::delete_assignment));
  r.add("POST", v1 + "/packs/register", a(&ApiService::register_pack));

  r.add("GET", v1 + "/actions", a(&ApiService::list_actions));
  r.add("POST", v1 + "/actions", a(&ApiService::create_action));
  r.add("GET", v1 + "/actions/{ref}", a(&ApiService::get_action));
  r.add("PUT", v1 + "/actions/{ref}", a(&ApiService::update_action));
  r.add("DELETE", v1 + "/actions/{ref}", a(&ApiService::delete_action));

  r.add("GET", v1 + "/triggers", a(&ApiService::list_triggers));
  r.add("POST", v1 + "/triggers", a(&ApiService::create_trigger));
  r.add("GET", v1 + "/triggers/{ref}", a(&ApiService::get_trigger));
  r.add("PUT", v1 + "/triggers/{ref}", a(&ApiService::update_trigger));
  r.add("DELETE", v1 + "/triggers/{ref}", a(&ApiService::delete_trigger));
  for (const char* op : {"enable", "disable", "regenerate"}) {
    r.add("POST", v1 + "/triggers/{ref}/webhooks/" + op,
          authed([this, op](HttpRequest& req) { return webhook_toggle(req, op); }));
  }
  r.add("POST", v1 + "/webhooks/{key}", bind(&ApiService::receive_webhook));

  r.add("GET", v1 + "/rules", a(&ApiService::list_rules));
  r.add("POST", v1 + "/rules", a(&ApiService::create_rule));
  r.add("GET", v1 + "/rules/{ref}", a(&ApiService::get_rule));
  r.add("PUT", v1 + "/rules/{ref}", a(&ApiService::update_rule));
  r.add("DELETE", v1 + "/rules/{ref}", a(&ApiService::delete_rule));
  r.add("POST", v1 + "/rules/{ref}/enable",
        authed([this](HttpRequest& req) { return set_rule_enabled(req, true); }));
  r.add("POST", v1 + "/rules/{ref}/disable",
        authed([this](HttpRequest& req) { return set_rule_enabled(req, false); }));

  r.add("GET", v1 + "/sensors", a(&ApiService::list_sensors));
  r.add("POST", v1 + "/sensors", a(&ApiService::create_sensor));
  r.add("GET", v1 + "/sensors/{ref}", a(&ApiService::get_sensor));
  r.add("PUT", v1 + "/sensors/{ref}", a(&ApiService::update_sensor));
  r.add("DELETE", v1 + "/sensors/{ref}", a(&ApiService::delete_sensor));
  r.add("GET", v1 + "/sensors/{ref}/logs/{stream}", a(&ApiService::sensor_logs));

  r.add("GET", v1 + "/runtimes", a(&ApiService::list_runtimes));
  r.add("GET", v1 + "/runtimes/{ref}", a(&ApiService::get_runtime));

  r.add("GET", v1 + "/events", a(&ApiService::list_events));
  r.add("POST", v1 + "/events", a(&ApiService::create_event));
  r.add("GET", v1 + "/events/{id}", a(&ApiService::get_event));
  r.add("GET", v1 + "/enforcements", a(&ApiService::list_enforcements));
  r.add("GET", v1 + "/enforcements/{id}", a(&ApiService::get_enforcement));
  r.add("GET", v1 + "/enforcements/{id}/executions", a(&ApiService::enforcement_executions));
  r.add("GET", v1 + "/executions", authed([this](HttpRequest& req) { return list_executions(req); }));
  r.add("POST", v1 + "/executions/execute", a(&ApiService::execute));
  r.add("GET", v1 + "/executions/stats", a(&ApiService::execution_stats));
  r.add("GET", v1 + "/executions/status/{status}", authed([this](HttpRequest& req) {
          return list_executions(req, req.params["status"]);
        }));
  r.add("GET", v1 + "/executions/{id}", a(&ApiService::get_execution));
  r.add("POST", v1 + "/executions/{id}/cancel", a(&ApiService::cancel_execution));

  register_key_routes(r);
}

}  // namespace attune::service
