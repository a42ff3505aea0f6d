// ApiService: the REST API of API.md on top of the log (writes), the DefinitionsTable and the
// projections (reads). It owns the shared ServiceContext and registers every resource's routes
// unit (api/service/*_routes.cc) on a RouteTable, where each route declares its access
// (api/service/routes.h). Every write returns only once the API's own views show it
// (read-your-writes, API.md §2.6). Thread-safe: handlers run on many HTTP threads.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/service/context.h"
#include "api/service/routes.h"

namespace attune::keystore {
class KeyExpiry;
}

namespace attune::service {

class PackInstaller;

// What to do about the first administrator (API.md §1).
struct BootstrapOptions {
  std::optional<std::string> admin;  // "login:password" from ATTUNE_BOOTSTRAP_ADMIN
  std::string data_dir;              // where a generated admin password is written (0600)
};

// The routes units, one per resource (each in its <resource>_routes.cc).
void register_health_routes(RouteTable& t, ServiceContext& s);
void register_console_routes(RouteTable& t, ServiceContext& s);

// The notifier URL GET /health/detailed reports as `websocket_url` (API.md §5, extension): the
// configured public URL, else ws://<host the client used>:<notifier port>/ws; none before the
// notifier listens.
std::optional<std::string> websocket_url(const ServiceOptions& options,
                                         const std::optional<std::string>& host_header);
void register_auth_routes(RouteTable& t, ServiceContext& s);
void register_pack_routes(RouteTable& t, ServiceContext& s, PackInstaller& installer);
void register_action_routes(RouteTable& t, ServiceContext& s);
void register_trigger_routes(RouteTable& t, ServiceContext& s);
void register_rule_routes(RouteTable& t, ServiceContext& s);
void register_runtime_routes(RouteTable& t, ServiceContext& s);
void register_sensor_routes(RouteTable& t, ServiceContext& s);
void register_event_routes(RouteTable& t, ServiceContext& s);
void register_enforcement_routes(RouteTable& t, ServiceContext& s);
void register_execution_routes(RouteTable& t, ServiceContext& s);
void register_inquiry_routes(RouteTable& t, ServiceContext& s);
void register_key_routes(RouteTable& t, ServiceContext& s);
void register_permission_routes(RouteTable& t, ServiceContext& s);
void register_identity_routes(RouteTable& t, ServiceContext& s);
void register_workflow_routes(RouteTable& t, ServiceContext& s);
void register_policy_routes(RouteTable& t, ServiceContext& s);

// Upserts of the built-in core.* sets that are missing or changed (bootstrap).
std::vector<OutRecord> builtin_permission_set_records(ServiceContext& s);

class ApiService {
 public:
  ApiService(Log& log, DefinitionsTable& defs, projections::Projections& views,
             const auth::JwtCodec& jwt, IdGenerator& ids, const Clock& clock, Metrics& metrics,
             ServiceOptions options);
  ~ApiService();

  // Starts background work: the datastore's TTL expiry (stopped by the destructor).
  void start_background();

  // Creates the built-in core pack (actions, triggers, runtimes), the built-in permission sets
  // and the first administrator. Idempotent; prints a generated admin password once to stdout.
  Status bootstrap(const BootstrapOptions& options);
  // Registers every route on `router`, then those `more` adds (routes of other roles, e.g.
  // workers) on the same table; returns the access declarations of all of them.
  std::vector<RouteDecl> register_routes(rest::Router& router,
                                         const std::function<void(RouteTable&)>& more = {});

  ServiceContext& context() { return *ctx_; }
  Result<Principal> authenticate(const rest::HttpRequest& req) const {
    return ctx_->authenticate(req);
  }
  Result<Json> token_execution(int64_t execution_id) const {
    return ctx_->token_execution(execution_id);
  }
  // Where sensor status and logs come from (this process's sensor stage on one machine, the
  // attune.sensors view on Kafka); may stay unset.
  void set_sensor_status(const sensor::SensorStatusSource* sensors) {
    ctx_->set_sensor_status(sensors);
  }

 private:
  std::unique_ptr<ServiceContext> ctx_;
  std::unique_ptr<PackInstaller> installer_;
  std::unique_ptr<keystore::KeyExpiry> key_expiry_;
};

}  // namespace attune::service
