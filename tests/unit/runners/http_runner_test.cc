// core.http: parameter validation (pure), requests against a local server (libcurl in-process),
// and the HttpRunner end to end through the `http-request` child on a real ProcessSupervisor.
#include "runners/http_runner.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "harness.h"
#include "http_server.h"
#include "runners/http/http_request.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT

Json params(const std::string& text) { return Json::parse(text); }

// ---- parse_request (pure) ----

struct BadCase {
  const char* parameters;
  const char* error_part;
};

TEST(HttpParseRequest, RejectsBadParametersWithTheParameterNamed) {
  const BadCase cases[] = {
      {R"({})", "'url' is required"},
      {R"({"url": 5})", "'url' is required"},
      {R"({"url": "ftp://example.com/x"})", "http:// or https://"},
      {R"({"url": "example.com"})", "http:// or https://"},
      {R"({"url": "http://a/b c"})", "spaces or line breaks"},
      {R"({"url": "http://a/", "method": "FETCH"})", "'method' must be one of"},
      {R"({"url": "http://a/", "headers": ["x"]})", "'headers' must be an object"},
      {R"({"url": "http://a/", "headers": {"X-A": "1\r\nX-B: 2"}})", "line breaks"},
      {R"({"url": "http://a/", "headers": {"Bad:Name": "1"}})", "header name"},
      {R"({"url": "http://a/", "body": "x", "json_body": {}})", "exclude each other"},
      {R"({"url": "http://a/", "body": {"a": 1}})", "'body' must be a string"},
      {R"({"url": "http://a/", "query_params": {"a": {"b": 1}}})", "query parameter 'a'"},
      {R"({"url": "http://a/", "timeout": 0})", "'timeout'"},
      {R"({"url": "http://a/", "verify_ssl": "no"})", "'verify_ssl'"},
      {R"({"url": "http://a/", "max_redirects": -1})", "'max_redirects'"},
      {R"({"url": "http://a/", "auth_type": "digest"})", "none, basic or bearer"},
      {R"({"url": "http://a/", "auth_type": "basic"})", "needs parameter 'auth_username'"},
      {R"({"url": "http://a/", "auth_type": "bearer"})", "needs parameter 'auth_token'"},
  };
  for (const auto& c : cases) {
    auto r = http::parse_request(params(c.parameters));
    ASSERT_FALSE(r.ok()) << c.parameters;
    EXPECT_NE(r.error().message.find(c.error_part), std::string::npos)
        << c.parameters << " → " << r.error().message;
  }
}

TEST(HttpParseRequest, ErrorsNeverQuoteCredentials) {
  auto r = http::parse_request(
      params(R"({"url": "http://a/", "auth_type": "weird", "auth_password": "hunter22secret"})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("hunter22secret"), std::string::npos);
}

TEST(HttpParseRequest, DefaultsAndQueryEncoding) {
  auto r = http::parse_request(params(
      R"({"url": "http://a/p?x=1#frag", "method": "post", "query_params": {"q": "a b&c=d/é",
          "n": 3, "tag": ["x", "y"], "skip": null}, "json_body": {"k": [1]}})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->url, "http://a/p?x=1&n=3&q=a%20b%26c%3Dd%2F%C3%A9&tag=x&tag=y#frag");
  EXPECT_EQ(r->body, std::optional<std::string>(R"({"k":[1]})"));
  EXPECT_TRUE(r->json_body);
  EXPECT_TRUE(r->verify_ssl);
  EXPECT_TRUE(r->follow_redirects);
  EXPECT_EQ(r->max_redirects, 10);
  EXPECT_FALSE(r->timeout_ms.has_value());
  EXPECT_EQ(r->auth, http::AuthType::kNone);
}

TEST(HttpParseRequest, CredentialsIncludeTheBasicAuthEncoding) {
  const auto c = http::credentials_of(params(
      R"({"auth_username": "alice", "auth_password": "s3cret-pw", "auth_token": "tok-123"})"));
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], "s3cret-pw");
  EXPECT_EQ(c[1], "tok-123");
  EXPECT_EQ(c[2], "YWxpY2U6czNjcmV0LXB3");  // base64("alice:s3cret-pw")
}

// ---- perform (libcurl against the local server) ----

class HttpPerformTest : public ::testing::Test {
 protected:
  Json perform(const std::string& parameters, size_t max_body = 1 << 20) {
    auto r = http::parse_request(params(parameters));
    if (!r.ok()) {
      ADD_FAILURE() << r.error().message;
      return Json::object();
    }
    return http::perform(*r, max_body);
  }
  TestHttpServer server_;
};

TEST_F(HttpPerformTest, GetWithQueryParams) {
  Json out = perform(
      Json{{"url", server_.url("/echo")}, {"query_params", {{"q", "a b"}, {"n", 2}}}}.dump());
  EXPECT_EQ(out["status_code"], 200);
  EXPECT_EQ(out["success"], true);
  EXPECT_TRUE(out["error"].is_null());
  EXPECT_EQ(out["json"]["method"], "GET");
  EXPECT_EQ(out["json"]["query"], "n=2&q=a%20b");
  EXPECT_EQ(out["url"], server_.url("/echo?n=2&q=a%20b"));
  EXPECT_EQ(out["headers"]["X-Test"], "one, two");
  EXPECT_EQ(out["headers"]["Content-Type"], "application/json");
  EXPECT_TRUE(out["elapsed_ms"].is_number_integer());
  EXPECT_EQ(Json::parse(out["body"].get<std::string>()), out["json"]);
}

TEST_F(HttpPerformTest, PostJsonBodySetsContentType) {
  Json out = perform(Json{{"url", server_.url("/echo")},
                          {"method", "POST"},
                          {"headers", {{"X-Custom", "v1"}, {"X-Num", 7}}},
                          {"json_body", {{"name", "attune"}, {"n", 1}}}}
                         .dump());
  EXPECT_EQ(out["status_code"], 200);
  const Json& seen = out["json"];
  EXPECT_EQ(seen["method"], "POST");
  EXPECT_EQ(seen["headers"]["content-type"], "application/json");
  EXPECT_EQ(seen["headers"]["x-custom"], "v1");
  EXPECT_EQ(seen["headers"]["x-num"], "7");
  EXPECT_EQ(Json::parse(seen["body"].get<std::string>()), (Json{{"name", "attune"}, {"n", 1}}));
}

TEST_F(HttpPerformTest, RawBodyWithOtherMethodsAndExplicitContentType) {
  Json out = perform(Json{
      {"url", server_.url("/echo")},
      {"method", "PUT"},
      {"headers", {{"Content-Type", "text/csv"}}},
      {"body",
       "a,b\n1,2\n"}}.dump());
  EXPECT_EQ(out["json"]["method"], "PUT");
  EXPECT_EQ(out["json"]["headers"]["content-type"], "text/csv");
  EXPECT_EQ(out["json"]["body"], "a,b\n1,2\n");
  Json del = perform(Json{{"url", server_.url("/echo")}, {"method", "DELETE"}}.dump());
  EXPECT_EQ(del["json"]["method"], "DELETE");
  EXPECT_EQ(del["json"]["body"], "");
}

TEST_F(HttpPerformTest, BasicAndBearerAuth) {
  Json basic = perform(Json{
      {"url", server_.url("/echo")},
      {"auth_type", "basic"},
      {"auth_username", "alice"},
      {"auth_password",
       "s3cret-pw"}}.dump());
  EXPECT_EQ(basic["json"]["headers"]["authorization"], "Basic YWxpY2U6czNjcmV0LXB3");
  Json bearer = perform(
      Json{{"url", server_.url("/echo")}, {"auth_type", "bearer"}, {"auth_token", "tok-123"}}
          .dump());
  EXPECT_EQ(bearer["json"]["headers"]["authorization"], "Bearer tok-123");
  Json none = perform(Json{{"url", server_.url("/echo")}, {"auth_token", "tok-123"}}.dump());
  EXPECT_FALSE(none["json"]["headers"].contains("authorization"));
}

TEST_F(HttpPerformTest, ErrorStatusIsNotSuccess) {
  Json out = perform(Json{{"url", server_.url("/status/404")}}.dump());
  EXPECT_EQ(out["status_code"], 404);
  EXPECT_EQ(out["success"], false);
  EXPECT_EQ(out["error"], "HTTP 404 Not Found");
  EXPECT_EQ(out["body"], "status 404");
  EXPECT_FALSE(out.contains("json"));  // "status 404" is not JSON
  Json ok = perform(Json{{"url", server_.url("/status/204")}}.dump());
  EXPECT_EQ(ok["success"], true);
}

TEST_F(HttpPerformTest, RedirectsFollowedOrNot) {
  Json followed = perform(Json{{"url", server_.url("/redirect")}}.dump());
  EXPECT_EQ(followed["status_code"], 200);
  EXPECT_EQ(followed["url"], server_.url("/echo?from=redirect"));
  EXPECT_EQ(followed["json"]["query"], "from=redirect");
  EXPECT_FALSE(followed["headers"].contains("Location"));  // headers of the last answer only
  Json kept = perform(Json{{"url", server_.url("/redirect")}, {"follow_redirects", false}}.dump());
  EXPECT_EQ(kept["status_code"], 302);
  EXPECT_EQ(kept["success"], true);
  EXPECT_EQ(kept["headers"]["Location"], "/echo?from=redirect");
  Json limited = perform(Json{{"url", server_.url("/redirect")}, {"max_redirects", 0}}.dump());
  EXPECT_EQ(limited["success"], false);
  EXPECT_NE(limited["error"].get<std::string>().find("request failed"), std::string::npos);
}

TEST_F(HttpPerformTest, RequestTimeoutFailsWithoutTheExecutionTimeoutPhrase) {
  Json out = perform(Json{{"url", server_.url("/hang")}, {"timeout", 0.3}}.dump());
  EXPECT_EQ(out["success"], false);
  EXPECT_EQ(out["status_code"], 0);
  const std::string error = out["error"];
  EXPECT_NE(error.find("request timeout of 300 ms"), std::string::npos) << error;
  EXPECT_EQ(error.find("timed out"), std::string::npos) << error;
}

TEST_F(HttpPerformTest, ConnectionRefused) {
  // A port that was just free: bound, never listened on.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  Json out = perform(Json{{"url", url}}.dump());
  ::close(fd);
  EXPECT_EQ(out["success"], false);
  EXPECT_EQ(out["status_code"], 0);
  EXPECT_NE(out["error"].get<std::string>().find("request failed"), std::string::npos);
  EXPECT_NE(out["error"].get<std::string>().find("onnect"), std::string::npos) << out["error"];
}

TEST_F(HttpPerformTest, LongBodyIsCutAndNotParsed) {
  Json out = perform(Json{{"url", server_.url("/big")}}.dump(), 100);
  EXPECT_EQ(out["success"], true);
  EXPECT_EQ(out["body"], std::string(100, 'x'));
  EXPECT_EQ(out["body_truncated"], true);
  Json head = perform(Json{{"url", server_.url("/big")}, {"method", "HEAD"}}.dump());
  EXPECT_EQ(head["status_code"], 200);
  EXPECT_EQ(head["body"], "");
}

// ---- HttpRunner through the child process ----

class HttpRunnerTest : public ::testing::Test {
 protected:
  ActionInvocation invocation(Json parameters) {
    ActionInvocation inv;
    inv.execution_id = 42;
    inv.action_ref = "core.http_request";
    inv.runtime_ref = "core.http";
    inv.parameters = std::move(parameters);
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }
  Outcome run(const ActionInvocation& inv) {
    auto spec = runner_.prepare(inv);
    if (!spec.ok()) {
      ADD_FAILURE() << "prepare: " << spec.error().message;
      return {};
    }
    return runner_.finish(inv, run_to_end(sup_, std::move(*spec)));
  }

  TestHttpServer server_;
  HttpRunner runner_{ATTUNE_RUNNER_TOOL};
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

TEST_F(HttpRunnerTest, SpecKeepsParametersOffArgvAndEnvironment) {
  auto inv = invocation(
      Json{{"url", server_.url("/echo")}, {"auth_type", "bearer"}, {"auth_token", "tok-secret-1"}});
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->argv, (std::vector<std::string>{ATTUNE_RUNNER_TOOL, "http-request",
                                                  "--max-body-bytes", "1048576"}));
  for (const auto& e : spec->env) EXPECT_EQ(e.find("tok-secret-1"), std::string::npos) << e;
  EXPECT_NE(spec->stdin_data.find("tok-secret-1"), std::string::npos);
  EXPECT_EQ(spec->timeout, std::chrono::seconds(60));
}

TEST_F(HttpRunnerTest, GetCompletesWithTheResponseAtTopLevel) {
  Outcome o = run(invocation(Json{{"url", server_.url("/echo")}, {"query_params", {{"a", 1}}}}));
  EXPECT_EQ(o.status, "completed") << o.result.dump();
  EXPECT_EQ(o.result["status_code"], 200);
  EXPECT_EQ(o.result["json"]["query"], "a=1");
  EXPECT_EQ(o.result["success"], true);
  EXPECT_TRUE(o.result["error"].is_null());
  EXPECT_TRUE(o.result["duration_ms"].is_number_integer());
  EXPECT_FALSE(o.result.contains("stdout"));
}

TEST_F(HttpRunnerTest, ErrorStatusFailsTheExecutionWithTheStatus) {
  Outcome o = run(invocation(Json{{"url", server_.url("/status/500")}}));
  EXPECT_EQ(o.status, "failed");
  EXPECT_EQ(o.result["status_code"], 500);
  EXPECT_EQ(o.result["error"], "HTTP 500 Internal Server Error");
}

TEST_F(HttpRunnerTest, BadParametersFailWithTheReason) {
  Outcome o = run(invocation(Json{{"url", "file:///etc/passwd"}}));
  EXPECT_EQ(o.status, "failed");
  EXPECT_NE(o.result["error"].get<std::string>().find("http:// or https://"), std::string::npos);
}

TEST_F(HttpRunnerTest, CredentialsAndSecretsAreRedactedFromTheResult) {
  // The echo server returns the Authorization header and the body: both carry credentials.
  auto inv = invocation(Json{{"url", server_.url("/echo?key=api-key-777")},
                             {"method", "POST"},
                             {"auth_type", "basic"},
                             {"auth_username", "alice"},
                             {"auth_password", "s3cret-pw"},
                             {"json_body", {{"token", "tok-in-body"}, {"pw", "s3cret-pw"}}}});
  inv.secret_values = {"api-key-777", "tok-in-body"};
  Outcome o = run(inv);
  EXPECT_EQ(o.status, "completed") << o.result.dump();
  const std::string text = o.result.dump();
  for (const char* secret : {"s3cret-pw", "YWxpY2U6czNjcmV0LXB3", "api-key-777", "tok-in-body"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
  }
  EXPECT_EQ(o.result["json"]["headers"]["authorization"], "Basic ***");
  EXPECT_EQ(o.result["url"], server_.url("/echo?key=***"));
}

TEST_F(HttpRunnerTest, ExecutionTimeoutKillsTheRequest) {
  auto inv = invocation(Json{{"url", server_.url("/hang")}});
  inv.timeout = std::chrono::milliseconds(300);
  Outcome o = run(inv);
  EXPECT_EQ(o.status, "timeout");
  EXPECT_NE(o.result["error"].get<std::string>().find("timed out"), std::string::npos);
  EXPECT_EQ(o.result["success"], false);
}

TEST_F(HttpRunnerTest, CancelStopsTheRequest) {
  auto inv = invocation(Json{{"url", server_.url("/hang")}});
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  PendingRun pending = start(sup_, std::move(*spec));
  // The request is in flight once the server saw it.
  ASSERT_TRUE(server_.wait_for_requests(1, kWait));
  sup_.cancel(pending.pid);
  Outcome o = runner_.finish(inv, pending.get());
  EXPECT_EQ(o.status, "cancelled");
  EXPECT_EQ(o.result["error"], "Execution was cancelled");
}

TEST_F(HttpRunnerTest, LaunchErrorsFailWithTheReason) {
  ProcessResult pr;
  pr.launch_error = "no such program";
  Outcome o = runner_.finish(invocation(Json::object()), pr);
  EXPECT_EQ(o.status, "failed");
  EXPECT_EQ(o.result["error"], "no such program");
  EXPECT_EQ(o.result["success"], false);
}

}  // namespace
}  // namespace attune::runners
