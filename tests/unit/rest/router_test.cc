// Router: literal-over-parameter precedence, parameters, 404/405, exception mapping.
#include "api/rest/router.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace attune::rest {
namespace {

Handler tag(std::string name) {
  return [name](HttpRequest& req) {
    Json params = Json::object();
    for (const auto& [k, v] : req.params) params[k] = v;
    return HttpResponse::json(200, Json{{"route", name}, {"params", params}});
  };
}

HttpResponse call(const Router& router, std::string method, std::string path) {
  HttpRequest req;
  req.method = std::move(method);
  req.path = std::move(path);
  return router.dispatch(req);
}

Json body(const HttpResponse& r) { return Json::parse(r.body); }

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/health", tag("health"));
    router_.add("GET", "/api/v1/actions", tag("list"));
    router_.add("POST", "/api/v1/actions", tag("create"));
    router_.add("GET", "/api/v1/actions/search", tag("search"));
    router_.add("GET", "/api/v1/actions/{ref}", tag("get"));
    router_.add("DELETE", "/api/v1/actions/{ref}", tag("delete"));
    router_.add("GET", "/api/v1/actions/{ref}/queue-stats", tag("queue"));
    router_.add("GET", "/api/v1/executions/status/{status}", tag("by_status"));
    router_.add("GET", "/api/v1/executions/{id}", tag("execution"));
    router_.add("POST", "/api/v1/triggers/{ref}/webhooks/{op}", tag("webhook_op"));
    router_.add("DELETE", "/api/v1/identities/{id}/roles/{role}", tag("role"));
  }
  Router router_;
};

TEST_F(RouterTest, LiteralBeatsParameter) {
  EXPECT_EQ(body(call(router_, "GET", "/api/v1/actions/search"))["route"], "search");
  EXPECT_EQ(body(call(router_, "GET", "/api/v1/actions/core.echo"))["route"], "get");
  EXPECT_EQ(body(call(router_, "GET", "/api/v1/executions/status/running"))["route"], "by_status");
  EXPECT_EQ(body(call(router_, "GET", "/api/v1/executions/42"))["route"], "execution");
}

TEST_F(RouterTest, FallsBackToParameterRouteForOtherMethods) {
  // "search" is a literal only for GET; DELETE /actions/search means the action named search.
  const Json b = body(call(router_, "DELETE", "/api/v1/actions/search"));
  EXPECT_EQ(b["route"], "delete");
  EXPECT_EQ(b["params"]["ref"], "search");
}

TEST_F(RouterTest, CapturesParameters) {
  Json b = body(call(router_, "POST", "/api/v1/triggers/core.hook/webhooks/enable"));
  EXPECT_EQ(b["route"], "webhook_op");
  EXPECT_EQ(b["params"], (Json{{"ref", "core.hook"}, {"op", "enable"}}));
  b = body(call(router_, "DELETE", "/api/v1/identities/7/roles/ops team"));
  EXPECT_EQ(b["params"], (Json{{"id", "7"}, {"role", "ops team"}}));
  b = body(call(router_, "GET", "/api/v1/actions/pack.a/queue-stats"));
  EXPECT_EQ(b["route"], "queue");
  EXPECT_EQ(b["params"]["ref"], "pack.a");
}

TEST_F(RouterTest, TrailingAndDoubleSlashesAreIgnored) {
  EXPECT_EQ(body(call(router_, "GET", "/api/v1/actions/"))["route"], "list");
  EXPECT_EQ(body(call(router_, "GET", "//health"))["route"], "health");
}

TEST_F(RouterTest, UnknownPathIs404) {
  for (const char* path : {"/", "/nope", "/api/v1", "/api/v1/actions/a/b", "/health/x"}) {
    const HttpResponse r = call(router_, "GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(body(r)["code"], "NOT_FOUND") << path;
  }
}

TEST_F(RouterTest, KnownPathOtherMethodIs405WithAllow) {
  const HttpResponse r = call(router_, "PUT", "/api/v1/actions");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(body(r)["code"], "METHOD_NOT_ALLOWED");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "GET, POST"}));

  // Union over every matching pattern: the literal "search" and the {ref} route.
  const HttpResponse s = call(router_, "POST", "/api/v1/actions/search");
  EXPECT_EQ(s.status, 405);
  EXPECT_EQ(s.headers[0].second, "DELETE, GET");
}

TEST(RouterExceptionTest, StdExceptionIs500WithoutInternals) {
  Router router;
  router.add("GET", "/boom", [](HttpRequest&) -> HttpResponse {
    throw std::runtime_error("secret internal detail at /var/lib/attune");
  });
  router.add("GET", "/int", [](HttpRequest&) -> HttpResponse { throw 42; });
  for (const char* path : {"/boom", "/int"}) {
    const HttpResponse r = call(router, "GET", path);
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(body(r), (Json{{"error", "Internal server error"}, {"code", "INTERNAL_ERROR"}}));
  }
}

TEST(RouterExceptionTest, JsonExceptionIs400) {
  Router router;
  router.add("POST", "/typed", [](HttpRequest& req) {
    const Json doc = Json::parse(req.body);
    return HttpResponse::json(200, Json{{"n", doc.at("name").get<std::string>()}});
  });
  HttpRequest req;
  req.method = "POST";
  req.path = "/typed";
  req.body = R"({"name": 5})";
  HttpResponse r = router.dispatch(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body(r)["code"], "BAD_REQUEST");
  EXPECT_EQ(body(r)["error"], "Invalid request: type must be string, but is number");

  req.body = R"({})";
  r = router.dispatch(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body(r)["error"], "Invalid request: key 'name' not found");
}

TEST(RouterRegistrationTest, ReRegisteringReplacesHandler) {
  Router router;
  router.add("GET", "/x", tag("old"));
  router.add("GET", "/x", tag("new"));
  EXPECT_EQ(body(call(router, "GET", "/x"))["route"], "new");
  Router moved = std::move(router);
  EXPECT_EQ(body(call(moved, "GET", "/x"))["route"], "new");
}

}  // namespace
}  // namespace attune::rest
