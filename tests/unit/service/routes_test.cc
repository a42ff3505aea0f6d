// The route table (api/service/routes.h): every route of the API declares its access, and the
// declarations are what a reader audits — so the whole table is checked here against the one in
// API.md §4 and §16.1, and RouteTable's enforcement of each kind of declaration is exercised
// through the real router over an embedded log.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <random>
#include <set>

#include "api/auth/jwt.h"
#include "api/projections/projections.h"
#include "api/rest/router.h"
#include "api/service/service.h"
#include "topology/embedded_log.h"
#include "topology/runtime.h"

namespace attune::service {
namespace {

const std::string kPassword = "routes-test-password";

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-routes-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    auto db = state::Db::open((dir_ / "db").string());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    defs_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(defs_->start().ok());
    RuntimeOptions ro;
    ro.ids = &ids_;
    ro.clock = &SystemClock::instance();
    runtime_ = std::make_unique<Runtime>(*log_, topology_, ro);
    auto stage = projections::make_projection_stage(*log_, runtime_->applied());
    ASSERT_TRUE(stage.ok()) << stage.error().message;
    topology_.add(std::move(stage->spec));
    views_ = stage->projections;
    ServiceOptions options;
    options.packs_root = (dir_ / "packs").string();
    api_ = std::make_unique<ApiService>(*log_, *defs_, *views_, jwt_, ids_,
                                        SystemClock::instance(), metrics_, options);
    BootstrapOptions bootstrap;
    bootstrap.admin = "admin:" + kPassword;
    bootstrap.data_dir = dir_.string();
    ASSERT_TRUE(api_->bootstrap(bootstrap).ok());
    routes_ = api_->register_routes(router_);
    ASSERT_TRUE(runtime_->start().ok());
  }

  void TearDown() override {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    api_.reset();
    views_.reset();
    if (defs_) defs_->stop();
    defs_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  rest::HttpResponse call(const std::string& method, const std::string& path,
                          const std::string& token, const Json& body = nullptr) {
    rest::HttpRequest req;
    req.method = method;
    req.path = path.substr(0, path.find('?'));
    if (path.find('?') != std::string::npos) {
      auto query = rest::parse_query_string(path.substr(path.find('?') + 1));
      EXPECT_TRUE(query.ok()) << path;
      if (query.ok()) req.query = std::move(*query);
    }
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    return router_.dispatch(req).resolve();
  }

  // Produces `payload` as a record of `type` on attune.executions and waits until the
  // projection has applied it (what the executor and the admission stage would write).
  void project(const std::string& key, const std::string& type, int64_t id, const Json& payload) {
    Envelope env{type, id, key, SystemClock::instance().now_ms(), "test", payload};
    auto p = log_->produce({{std::string(topics::kExecutions), key, env.dump()}});
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_TRUE(views_->wait_applied((*p)[0].tp, (*p)[0].offset, std::chrono::seconds(10)));
  }

  std::string admin_token() {
    return token_of(
        call("POST", "/auth/login", "", Json{{"login", "admin"}, {"password", kPassword}}));
  }

  // A pack `p1` with the shell action `p1.a` (admin).
  void make_pack_and_action(const std::string& admin) {
    ASSERT_EQ(call("POST", "/api/v1/packs", admin,
                   Json{{"ref", "p1"}, {"label", "P1"}, {"version", "1.0.0"}})
                  .status,
              201);
    auto a = call("POST", "/api/v1/actions", admin,
                  Json{{"ref", "a"}, {"pack_ref", "p1"}, {"label", "A"}, {"entrypoint", "true"}});
    ASSERT_EQ(a.status, 201) << a.body;
  }

  static std::vector<std::string> refs_of(const rest::HttpResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    const Json body = Json::parse(r.body);
    for (const auto& p : body["items"]) out.push_back(p["ref"]);
    return out;
  }

  std::string token_of(const rest::HttpResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body)["data"]["access_token"];
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> defs_;
  Topology topology_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<projections::Projections> views_;
  IdGenerator ids_{1, SystemClock::instance()};
  auth::JwtCodec jwt_{"routes-test-secret-0123456789abcdef0123"};
  Metrics metrics_;
  std::unique_ptr<ApiService> api_;
  rest::Router router_;
  std::vector<RouteDecl> routes_;
};

// The whole access table: method, pattern, declaration. A route added without a declaration
// does not compile; one added or changed shows up here.
TEST_F(RoutesTest, EveryRouteDeclaresItsAccess) {
  std::set<std::string> table;
  for (const auto& r : routes_) table.insert(r.method + " " + r.pattern + " " + r.access.describe());
  const std::set<std::string> expected = {
      "GET /health open", "GET /health/live open", "GET /health/ready open",
      "GET /health/detailed open", "GET /metrics open",
      // The web console's static files (console_routes.cc).
      "GET / open", "GET /index.html open", "GET /assets/{file} open",
      "POST /auth/register open", "POST /auth/login open", "POST /auth/refresh open",
      "GET /auth/me signed-in",
      "GET /api/v1/packs packs:read", "POST /api/v1/packs packs:create",
      "GET /api/v1/packs/{ref} packs:read", "PUT /api/v1/packs/{ref} packs:configure",
      "DELETE /api/v1/packs/{ref} packs:delete", "POST /api/v1/packs/upload packs:install",
      "POST /api/v1/packs/register packs:install",
      "GET /api/v1/permissions/sets permissions:read",
      "POST /api/v1/permissions/sets permissions:manage",
      "GET /api/v1/permissions/sets/{id} permissions:read",
      "PUT /api/v1/permissions/sets/{id} permissions:manage",
      "DELETE /api/v1/permissions/sets/{id} permissions:manage",
      "POST /api/v1/permissions/sets/{id}/roles permissions:manage",
      "GET /api/v1/permissions/assignments permissions:read",
      "POST /api/v1/permissions/assignments permissions:manage",
      "DELETE /api/v1/permissions/assignments/{id} permissions:manage",
      "GET /api/v1/identities identities:read", "POST /api/v1/identities identities:create",
      "GET /api/v1/identities/{id} identities:read",
      "PUT /api/v1/identities/{id} identities:update",
      "DELETE /api/v1/identities/{id} identities:delete",
      "POST /api/v1/identities/{id}/roles permissions:manage",
      "DELETE /api/v1/identities/{id}/roles/{role} permissions:manage",
      "GET /api/v1/actions actions:read", "GET /api/v1/actions/search actions:read",
      "POST /api/v1/actions actions:create", "GET /api/v1/actions/{ref} actions:read",
      "PUT /api/v1/actions/{ref} actions:update", "DELETE /api/v1/actions/{ref} actions:delete",
      "GET /api/v1/triggers triggers:read", "POST /api/v1/triggers triggers:create",
      "GET /api/v1/triggers/{ref} triggers:read", "PUT /api/v1/triggers/{ref} triggers:update",
      "DELETE /api/v1/triggers/{ref} triggers:delete",
      "POST /api/v1/triggers/{ref}/webhooks/enable triggers:update",
      "POST /api/v1/triggers/{ref}/webhooks/disable triggers:update",
      "POST /api/v1/triggers/{ref}/webhooks/regenerate triggers:update",
      "GET /api/v1/rules rules:read", "POST /api/v1/rules rules:create",
      "GET /api/v1/rules/{ref} rules:read", "PUT /api/v1/rules/{ref} rules:update",
      "DELETE /api/v1/rules/{ref} rules:delete", "POST /api/v1/rules/{ref}/enable rules:update",
      "POST /api/v1/rules/{ref}/disable rules:update",
      "GET /api/v1/sensors sensors:read", "POST /api/v1/sensors sensors:create",
      "GET /api/v1/sensors/{ref} sensors:read", "PUT /api/v1/sensors/{ref} sensors:update",
      "DELETE /api/v1/sensors/{ref} sensors:delete",
      "GET /api/v1/sensors/{ref}/logs/{stream} sensors:read",
      "GET /api/v1/runtimes runtimes:read", "GET /api/v1/runtimes/{ref} runtimes:read",
      "POST /api/v1/webhooks/{key} open", "POST /api/v1/events events:create",
      "GET /api/v1/events events:read", "GET /api/v1/events/{id} events:read",
      "GET /api/v1/enforcements enforcements:read",
      "GET /api/v1/enforcements/{id} enforcements:read",
      "GET /api/v1/enforcements/{id}/executions executions:read",
      "GET /api/v1/executions executions:read",
      "POST /api/v1/executions/execute actions:execute",
      "GET /api/v1/executions/stats executions:read",
      "GET /api/v1/executions/status/{status} executions:read",
      "GET /api/v1/executions/{id} executions:read",
      "POST /api/v1/executions/{id}/cancel executions:cancel",
      "GET /api/v1/executions/{id}/inquiries inquiries:read",
      "GET /api/v1/inquiries inquiries:read",
      "POST /api/v1/inquiries inquiries:create",
      "GET /api/v1/inquiries/status/{status} inquiries:read",
      "GET /api/v1/inquiries/{id} inquiries:read",
      "PUT /api/v1/inquiries/{id} inquiries:update",
      "DELETE /api/v1/inquiries/{id} inquiries:delete",
      "POST /api/v1/inquiries/{id}/respond inquiries:respond",
      "GET /api/v1/keys keys:read", "POST /api/v1/keys keys:create",
      "GET /api/v1/keys/{ref} keys:read", "PUT /api/v1/keys/{ref} keys:update",
      "DELETE /api/v1/keys/{ref} keys:delete",
      "GET /api/v1/workflows workflows:read", "POST /api/v1/workflows workflows:create",
      "GET /api/v1/workflows/{ref} workflows:read",
      "PUT /api/v1/workflows/{ref} workflows:update",
      "DELETE /api/v1/workflows/{ref} workflows:delete",
      "GET /api/v1/policies policies:read", "POST /api/v1/policies policies:create",
      "GET /api/v1/policies/{ref} policies:read", "PUT /api/v1/policies/{ref} policies:update",
      "DELETE /api/v1/policies/{ref} policies:delete",
      "GET /api/v1/packs/{ref}/policies policies:read",
      "GET /api/v1/actions/{ref}/policies policies:read",
      "GET /api/v1/actions/{ref}/queue-stats actions:read",
  };
  EXPECT_EQ(table, expected);
  EXPECT_EQ(table.size(), routes_.size()) << "a route is registered twice";
  // Every resource:action declared is one API.md §16.1 defines.
  for (const auto& r : routes_) {
    if (r.access.kind() != Access::Kind::kGrant) continue;
    auto it = authz::resource_actions().find(r.access.resource());
    ASSERT_NE(it, authz::resource_actions().end()) << r.pattern;
    EXPECT_TRUE(it->second.count(r.access.action())) << r.pattern << " " << r.access.describe();
  }
}

TEST_F(RoutesTest, DeclarationsAreEnforcedBeforeTheHandler) {
  // open: no token needed.
  EXPECT_EQ(call("GET", "/health", "").status, 200);
  // signed-in and granted routes: 401 without a valid token.
  EXPECT_EQ(call("GET", "/auth/me", "").status, 401);
  EXPECT_EQ(call("GET", "/api/v1/packs", "").status, 401);
  EXPECT_EQ(call("GET", "/api/v1/packs", "not-a-token").status, 401);

  const std::string admin = token_of(
      call("POST", "/auth/login", "", Json{{"login", "admin"}, {"password", kPassword}}));
  const std::string nobody = token_of(call(
      "POST", "/auth/register", "", Json{{"login", "nobody"}, {"password", "nobody-password"}}));
  // A collection route without the grant: 403 before any work (even with a bad body).
  auto refused = call("POST", "/api/v1/packs", nobody, Json{{"ref", 42}});
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("packs:create"), std::string::npos) << refused.body;
  // Reads need no grant for visible packs and the core catalogue...
  EXPECT_EQ(call("GET", "/api/v1/packs/core", nobody).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/actions/core.echo", nobody).status, 200);
  // ...but a visible object without the grant is 403, an invisible one 404.
  EXPECT_EQ(call("PUT", "/api/v1/actions/core.echo", nobody, Json::object()).status, 403);
  ASSERT_EQ(call("POST", "/api/v1/packs", admin, Json{{"ref", "adminpack"}, {"label", "Admin pack"}, {"version", "1.0.0"}}).status, 201);
  EXPECT_EQ(call("GET", "/api/v1/packs/adminpack", nobody).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/packs/adminpack", nobody).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/packs/adminpack", admin).status, 200);
  // Routes of objects without visibility need the grant.
  EXPECT_EQ(call("DELETE", "/api/v1/permissions/assignments/1", nobody).status, 403);
}


TEST_F(RoutesTest, PoliciesCrudValidationFiltersAndResolutionOrder) {
  const std::string admin = admin_token();
  make_pack_and_action(admin);
  auto created = call("POST", "/api/v1/policies", admin,
                      Json{{"ref", "lim"}, {"pack_ref", "p1"}, {"action_ref", "p1.a"},
                           {"concurrency", {{"limit", 2}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  const Json lim = Json::parse(created.body)["data"];
  EXPECT_EQ(lim["ref"], "p1.lim");
  EXPECT_EQ(lim["name"], "lim");
  EXPECT_EQ(lim["pack_ref"], "p1");
  EXPECT_EQ(lim["scope"], (Json{{"type", "action"}, {"pack_ref", "p1"}, {"action_ref", "p1.a"}}));
  EXPECT_EQ(lim["action_ref"], "p1.a");
  EXPECT_EQ(lim["concurrency"]["method"], "enqueue");
  EXPECT_EQ(lim["enabled"], true);

  struct Refused {
    Json body;
    int status;
    std::vector<std::string> fields;
  };
  for (const Refused& r : std::vector<Refused>{
           {Json{{"ref", "lim"}, {"pack_ref", "p1"}}, 409, {}},
           {Json{{"ref", "x"}, {"pack_ref", "nopack"}}, 404, {}},
           {Json{{"ref", "x"}, {"pack_ref", "p1"}, {"action_ref", "p1.nope"}}, 404, {}},
           {Json{{"ref", "x"},
                 {"pack_ref", "p1"},
                 {"scope", {{"type", "pack"}, {"pack_ref", "zz"}}}},
            404, {}},
           {Json{{"pack_ref", "p1"}}, 422, {"ref"}},
           {Json{{"ref", "x"},
                 {"pack_ref", "p1"},
                 {"concurrency", {{"limit", 0}}},
                 {"quotas", {{{"quota_type", "daily"}, {"limit", 1}}}}},
            422, {"concurrency.limit", "quotas[0].quota_type"}},
       }) {
    auto resp = call("POST", "/api/v1/policies", admin, r.body);
    EXPECT_EQ(resp.status, r.status) << r.body.dump() << " → " << resp.body;
    if (r.status != 422) continue;
    const Json details = Json::parse(resp.body)["details"]["fields"];
    for (const auto& f : r.fields) EXPECT_TRUE(details.contains(f)) << f << " " << resp.body;
  }

  ASSERT_EQ(call("POST", "/api/v1/policies", admin,
                 Json{{"ref", "packwide"}, {"pack_ref", "p1"}, {"priority", 5},
                      {"rate_limit", {{"max_executions", 3}, {"window_seconds", 60}}}})
                .status,
            201);
  // The owning pack from a qualified ref; an explicit global scope.
  auto global = call("POST", "/api/v1/policies", admin,
                     Json{{"ref", "p1.everything"}, {"scope", {{"type", "global"}}}});
  ASSERT_EQ(global.status, 201) << global.body;
  EXPECT_EQ(Json::parse(global.body)["data"]["pack_ref"], "p1");

  EXPECT_EQ(refs_of(call("GET", "/api/v1/actions/p1.a/policies", admin)),
            (std::vector<std::string>{"p1.lim", "p1.packwide", "p1.everything"}));
  EXPECT_EQ(refs_of(call("GET", "/api/v1/policies?action_ref=p1.a", admin)),
            (std::vector<std::string>{"p1.lim"}));
  EXPECT_EQ(refs_of(call("GET", "/api/v1/policies?pack_ref=p1&order=asc", admin)),
            (std::vector<std::string>{"p1.lim", "p1.packwide", "p1.everything"}));
  EXPECT_EQ(refs_of(call("GET", "/api/v1/packs/p1/policies?page_size=1", admin)).size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/packs/nopack/policies", admin).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/actions/p1.nope/policies", admin).status, 404);

  // Update: bad fields are 422 and change nothing; disabling takes it out of resolution.
  auto bad = call("PUT", "/api/v1/policies/p1.lim", admin, Json{{"concurrency", {{"limit", 0}}}});
  EXPECT_EQ(bad.status, 422) << bad.body;
  auto off = call("PUT", "/api/v1/policies/" + lim["id"].dump(), admin, Json{{"enabled", false}});
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(Json::parse(off.body)["data"]["concurrency"]["limit"], 2);
  EXPECT_EQ(refs_of(call("GET", "/api/v1/actions/p1.a/policies", admin)),
            (std::vector<std::string>{"p1.packwide", "p1.everything"}));
  EXPECT_EQ(call("DELETE", "/api/v1/policies/p1.lim", admin).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/policies/p1.lim", admin).status, 404);

  // Another identity's pack is invisible (404), even to create in; deleting the pack deletes
  // its policies.
  const std::string nobody = token_of(call(
      "POST", "/auth/register", "", Json{{"login", "nobody"}, {"password", "nobody-password"}}));
  EXPECT_EQ(call("POST", "/api/v1/policies", nobody, Json{{"ref", "x"}, {"pack_ref", "p1"}}).status,
            404);
  EXPECT_EQ(call("GET", "/api/v1/policies/p1.packwide", nobody).status, 404);
  ASSERT_EQ(call("DELETE", "/api/v1/packs/p1", admin).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/policies/p1.packwide", admin).status, 404);
  EXPECT_TRUE(refs_of(call("GET", "/api/v1/policies", admin)).empty());
}

TEST_F(RoutesTest, QueueStatsAnswerFromTheLatestRecordOrTheResolvedLimit) {
  const std::string admin = admin_token();
  make_pack_and_action(admin);
  const int64_t action_id =
      Json::parse(call("GET", "/api/v1/actions/p1.a", admin).body)["data"]["id"];
  auto stats = [&] {
    auto r = call("GET", "/api/v1/actions/p1.a/queue-stats", admin);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body)["data"];
  };
  const Json zeros = {{"action_id", action_id}, {"action_ref", "p1.a"}, {"active_count", 0},
                      {"max_concurrent", nullptr}, {"queue_length", 0}, {"total_enqueued", 0},
                      {"total_completed", 0}, {"oldest_enqueued_at", nullptr},
                      {"last_updated", nullptr}};
  EXPECT_EQ(stats(), zeros);
  ASSERT_EQ(call("POST", "/api/v1/policies", admin,
                 Json{{"ref", "lim"},
                      {"pack_ref", "p1"},
                      {"quotas", {{{"quota_type", "running_executions"}, {"limit", 3}}}}})
                .status,
            201);
  Json limited = zeros;
  limited["max_concurrent"] = 3;
  EXPECT_EQ(stats(), limited);

  const Json record = {{"action_ref", "p1.a"}, {"active_count", 1}, {"max_concurrent", 3},
                       {"queue_length", 2}, {"total_enqueued", 3}, {"total_completed", 0},
                       {"oldest_enqueued_at", "2026-03-01T09:30:00.125Z"},
                       {"last_updated", "2026-03-01T09:30:01.000Z"}};
  project("p1.a", "queue.stats", action_id, record);
  Json expected = record;
  expected["action_id"] = action_id;
  EXPECT_EQ(stats(), expected);
  EXPECT_EQ(call("GET", "/api/v1/actions/p1.nope/queue-stats", admin).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/actions/" + std::to_string(action_id) + "/queue-stats", admin)
                .status,
            200);
}

TEST_F(RoutesTest, ExecuteValidatesRetriesAndRefusesPastAnExecutionsTotalQuota) {
  const std::string admin = admin_token();
  make_pack_and_action(admin);
  for (const auto& [body, field] : std::vector<std::pair<Json, std::string>>{
           {{{"action_ref", "p1.a"}, {"max_retries", 101}}, "max_retries"},
           {{{"action_ref", "p1.a"}, {"max_retries", -1}}, "max_retries"},
           {{{"action_ref", "p1.a"}, {"retry", {{"backoff", "random"}}}}, "retry.backoff"},
           {{{"action_ref", "p1.a"}, {"retry", {{"max_retries", 200}}}}, "retry.max_retries"},
           {{{"action_ref", "p1.a"}, {"retry", "often"}}, "retry"},
       }) {
    auto r = call("POST", "/api/v1/executions/execute", admin, body);
    EXPECT_EQ(r.status, 422) << body.dump() << " → " << r.body;
    EXPECT_TRUE(Json::parse(r.body)["details"]["fields"].contains(field)) << r.body;
  }

  ASSERT_EQ(call("POST", "/api/v1/policies", admin,
                 Json{{"ref", "total"}, {"pack_ref", "p1"}, {"action_ref", "p1.a"},
                      {"quotas", {{{"quota_type", "executions_total"}, {"limit", 1}}}}})
                .status,
            201);
  // One execution of the action exists (as the executor would have projected it).
  const int64_t id = 4242;
  project(std::to_string(id), "execution.updated", id,
          Json{{"id", id}, {"action_ref", "p1.a"}, {"pack_ref", "p1"}, {"status", "completed"},
               {"executor", 1}, {"created", "2026-03-01T09:30:00.000Z"},
               {"updated", "2026-03-01T09:30:01.000Z"}});
  for (int i = 0; i < 2; ++i) {
    auto r = call("POST", "/api/v1/executions/execute", admin, Json{{"action_ref", "p1.a"}});
    ASSERT_EQ(r.status, 429) << r.body;
    const Json err = Json::parse(r.body);
    EXPECT_EQ(err["code"], "TOO_MANY_REQUESTS");
    EXPECT_EQ(err["error"], "Quota exceeded: policy p1.total allows 1 executions of action 'p1.a'");
    bool retry_after = false;
    for (const auto& [k, v] : r.headers) retry_after |= k == "Retry-After" && std::stoi(v) > 0;
    EXPECT_TRUE(retry_after);
  }
}

}  // namespace
}  // namespace attune::service
