// ApiService: owns the shared context, bootstraps, and registers every routes unit.
#include "api/service/service.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "api/auth/password.h"
#include "api/auth/secrets.h"
#include "api/service/pack_installer.h"
#include "processors/keystore/expiry.h"
#include "topology/core/time.h"

namespace attune::service {

ApiService::ApiService(Log& log, DefinitionsTable& defs, projections::Projections& views,
                       const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock,
                       Metrics& metrics, ServiceOptions options)
    : ctx_(std::make_unique<ServiceContext>(log, defs, views, jwt, ids, clock, metrics,
                                            std::move(options))),
      installer_(std::make_unique<PackInstaller>(*ctx_)),
      key_expiry_(std::make_unique<keystore::KeyExpiry>(
          log, defs, clock, std::chrono::milliseconds(1000),
          [ctx = ctx_.get()](std::string_view ref) { return ctx->key_holds.hold(ref); })) {
  ctx_->key_expiry = key_expiry_.get();
}

ApiService::~ApiService() { key_expiry_->stop(); }

void ApiService::start_background() { key_expiry_->start(); }

Status ApiService::bootstrap(const BootstrapOptions& options) {
  ServiceContext& s = *ctx_;
  installer_->sweep_pack_dirs();
  installer_->sweep_environments();
  if (auto st = installer_->install_core_pack(); !st.ok()) return st;
  std::lock_guard lock(s.write_mu);
  std::vector<OutRecord> records = builtin_permission_set_records(s);
  const int64_t ts = s.now_ms();

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
  } else if (s.defs.list("identity").empty()) {
    login = "admin";
    password = auth::random_urlsafe(24);
    generated = true;
  }
  if (!login.empty()) {
    auto existing = s.defs.get("identity", login);
    if (!existing) {
      Json identity = {{"id", s.ids.next()},
                       {"ref", login},
                       {"login", login},
                       {"display_name", login},
                       {"password_hash", auth::hash_password(password)},
                       {"attributes", Json::object()},
                       {"frozen", false},
                       {"roles", Json::array()},
                       {"permission_set_refs", Json::array({"core.admin"})},
                       {"created", s.now_str()},
                       {"updated", s.now_str()}};
      records.push_back(definition_record("identity", identity, ts, "api"));
    } else {
      // The variable creates a missing identity; it never changes an existing password. Say so
      // when they differ, or the operator's next login fails with no hint why (issue 18).
      if (options.admin &&
          !auth::verify_password(existing->value("password_hash", std::string()), password)) {
        const std::string file = options.data_dir + "/admin-password";
        const bool has_file = ::access(file.c_str(), R_OK) == 0;
        spdlog::warn("ATTUNE_BOOTSTRAP_ADMIN: identity '{}' already exists with another password; "
                     "its password was not changed",
                     login);
        std::fprintf(stderr,
                     "attune: warning: ATTUNE_BOOTSTRAP_ADMIN is ignored for the password: identity "
                     "'%s' already exists in %s with another password (the variable only creates "
                     "a missing identity). Log in with the existing password%s%s, or start on a "
                     "new --data-dir.\n",
                     login.c_str(), options.data_dir.c_str(), has_file ? " (in " : "",
                     has_file ? (file + ")").c_str() : "");
      }
      Json identity = *existing;
      auto& sets = identity["permission_set_refs"];
      if (!sets.is_array()) sets = Json::array();
      bool has = false;
      for (const auto& s : sets) has = has || s == "core.admin";
      if (!has) {
        sets.push_back("core.admin");
        identity["updated"] = s.now_str();
        records.push_back(definition_record("identity", identity, ts, "api"));
      }
    }
  }
  auto st = s.write_definitions(std::move(records));
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

std::vector<RouteDecl> ApiService::register_routes(rest::Router& router,
                                                   const std::function<void(RouteTable&)>& more) {
  RouteTable t(router, *ctx_);
  ServiceContext& s = *ctx_;
  register_health_routes(t, s);
  register_console_routes(t, s);
  register_auth_routes(t, s);
  register_pack_routes(t, s, *installer_);
  register_permission_routes(t, s);
  register_identity_routes(t, s);
  register_action_routes(t, s);
  register_trigger_routes(t, s);
  register_rule_routes(t, s);
  register_sensor_routes(t, s);
  register_runtime_routes(t, s);
  register_event_routes(t, s);
  register_enforcement_routes(t, s);
  register_execution_routes(t, s);
  register_inquiry_routes(t, s);
  register_key_routes(t, s);
  register_workflow_routes(t, s);
  register_policy_routes(t, s);
  if (more) more(t);
  return t.routes();
}

std::optional<std::string> websocket_url(const ServiceOptions& options,
                                         const std::optional<std::string>& host_header) {
  if (!options.public_ws_url.empty()) return options.public_ws_url;
  const int port = options.notifier_port ? options.notifier_port->load() : 0;
  if (port <= 0) return std::nullopt;
  // The host the client reached us by, without its port: "[::1]:8080" → "[::1]".
  std::string host = host_header.value_or("");
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (const auto colon = host.find(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  const bool plain = !host.empty() && host.find_first_of(" /\\\"'<>@") == std::string::npos;
  if (!plain) host = "127.0.0.1";
  return "ws://" + host + ":" + std::to_string(port) + "/ws";
}

void register_health_routes(RouteTable& t, ServiceContext& s) {
  using rest::HttpResponse;
  t.add("GET", "/health", Access::open(),
        [](Call&) { return HttpResponse::json(200, Json{{"status", "ok"}}); });
  t.add("GET", "/health/live", Access::open(),
        [](Call&) { return HttpResponse::json(200, Json{{"status", "ok"}}); });
  t.add("GET", "/health/ready", Access::open(), [&s](Call&) {
    auto probe = s.log.db().store("__meta");
    if (!probe.ok() || !(*probe)->get("probe").ok()) {
      return HttpResponse::json(503, Json{{"status", "unavailable"}});
    }
    return HttpResponse::json(200, Json{{"status", "ok"}});
  });
  t.add("GET", "/health/detailed", Access::open(), [&s](Call& c) {
    auto probe = s.log.db().store("__meta");
    const bool db_ok = probe.ok() && (*probe)->get("probe").ok();
    Json ws = nullptr;
    if (auto url = websocket_url(s.options, c.req.header("Host"))) ws = *url;
    return HttpResponse::json(200, Json{{"status", db_ok ? "ok" : "degraded"},
                                        {"version", s.options.version},
                                        {"database", db_ok ? "ok" : "error"},
                                        {"websocket_url", ws}});
  });
  t.add("GET", "/metrics", Access::open(), [&s](Call&) {
    HttpResponse resp;
    resp.status = 200;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = s.metrics.serialize();
    return resp;
  });
}

}  // namespace attune::service
