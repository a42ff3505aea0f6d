// HttpRequest/HttpResponse helpers, JSON body parsing, query decoding, booleans.
#include <thread>
#include "api/rest/http.h"

#include <gtest/gtest.h>

namespace attune::rest {
namespace {

TEST(HttpRequestTest, HeaderLookupIsCaseInsensitiveFirstWins) {
  HttpRequest req;
  req.headers = {{"Content-Type", "application/json"}, {"X-Thing", "1"}, {"x-thing", "2"}};
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_EQ(req.header("X-THING"), "1");
  EXPECT_FALSE(req.header("Authorization").has_value());
}

TEST(HttpRequestTest, QueryParamReturnsFirstValue) {
  HttpRequest req;
  req.query = {{"a", "1"}, {"a", "2"}, {"b", ""}};
  EXPECT_EQ(req.query_param("a"), "1");
  EXPECT_EQ(req.query_param("b"), "");
  EXPECT_FALSE(req.query_param("c").has_value());
}

TEST(HttpResponseTest, ErrorBodies) {
  HttpResponse r = HttpResponse::error(make_error(Errc::kNotFound, "Action 'x.y' not found"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Json::parse(r.body), (Json{{"error", "Action 'x.y' not found"}, {"code", "NOT_FOUND"}}));

  r = HttpResponse::error(make_error(Errc::kValidation, "Invalid fields"),
                          Json{{"fields", {{"name", "required"}}}});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Json::parse(r.body)["code"], "VALIDATION_ERROR");
  EXPECT_EQ(Json::parse(r.body)["details"]["fields"]["name"], "required");

  r = HttpResponse::error(429, "TOO_MANY_REQUESTS", "slow down");
  EXPECT_EQ(r.status, 429);
  EXPECT_FALSE(Json::parse(r.body).contains("details"));
}

TEST(HttpResponseTest, JsonNeverThrowsOnInvalidUtf8) {
  HttpResponse r = HttpResponse::json(200, Json{{"s", std::string("a\xff" "b")}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Json::accept(r.body));
}

TEST(ParseJsonBodyTest, Cases) {
  HttpRequest req;
  req.body = R"({"a": 1})";
  auto r = parse_json_body(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["a"], 1);

  req.body = "[1, 2]";
  r = parse_json_body(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().message, "Request body must be a JSON object");
  EXPECT_TRUE(parse_json_body(req, /*require_object=*/false).ok());

  req.body = "{\"a\": ";
  r = parse_json_body(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_EQ(r.error().message.rfind("Invalid JSON: parse error", 0), 0u) << r.error().message;
  EXPECT_EQ(r.error().message.find("[json.exception"), std::string::npos);

  req.body = "  \n";
  r = parse_json_body(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid JSON: request body is empty");
}

TEST(PercentDecodeTest, Table) {
  struct Case {
    const char* in;
    bool plus;
    std::optional<std::string> out;
  };
  const Case cases[] = {
      {"plain", true, "plain"},
      {"a+b", true, "a b"},
      {"a+b", false, "a+b"},
      {"a%20b", false, "a b"},
      {"%2Fx%2f", false, "/x/"},
      {"%2520", true, "%20"},  // decoded exactly once
      {"%E2%9C%93", true, "\xE2\x9C\x93"},
      {"%", true, std::nullopt},
      {"%2", true, std::nullopt},
      {"x%zz", true, std::nullopt},
      {"", true, ""},
  };
  for (const Case& c : cases) EXPECT_EQ(percent_decode(c.in, c.plus), c.out) << c.in;
}

TEST(ParseQueryStringTest, DecodesAndKeepsRepeats) {
  auto r = parse_query_string("a=1&b=x+y%21&a=2&flag&&c=");
  ASSERT_TRUE(r.ok());
  const std::multimap<std::string, std::string> expected = {
      {"a", "1"}, {"a", "2"}, {"b", "x y!"}, {"flag", ""}, {"c", ""}};
  EXPECT_EQ(*r, expected);

  auto bad = parse_query_string("ok=1&q=%G1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kBadRequest);
  EXPECT_EQ(bad.error().message, "Malformed percent-encoding in query parameter 'q'");
  EXPECT_TRUE(parse_query_string("").ok());
}

TEST(ParseBoolTest, Table) {
  EXPECT_EQ(parse_bool("true"), true);
  EXPECT_EQ(parse_bool("True"), true);
  EXPECT_EQ(parse_bool("1"), true);
  EXPECT_EQ(parse_bool("false"), false);
  EXPECT_EQ(parse_bool("FALSE"), false);
  EXPECT_EQ(parse_bool("0"), false);
  EXPECT_EQ(parse_bool(""), std::nullopt);
  EXPECT_EQ(parse_bool("yes"), std::nullopt);
  EXPECT_EQ(parse_bool("10"), std::nullopt);
}

TEST(DeferredResponseTest, AnAnswerCompleteBeforeLaterIsSentAsIs) {
  auto d = std::make_shared<DeferredResponse>();
  d->complete(HttpResponse::json(201, Json{{"now", true}}));
  HttpResponse r = HttpResponse::later(d);
  EXPECT_FALSE(r.deferred);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(Json::parse(r.body)["now"], true);
  EXPECT_FALSE(d->take_if_complete());  // taken once
  d->complete(HttpResponse::json(500, Json{}));  // ignored: answered already
  EXPECT_FALSE(d->take_if_complete());
}

}  // namespace
}  // namespace attune::rest

namespace attune::rest {
namespace {

TEST(DeferredResponseTest, CompletedBeforeOrAfterTheServerAsksIsDeliveredOnce) {
  {
    auto d = std::make_shared<DeferredResponse>();
    d->complete(HttpResponse::json(201, Json{{"a", 1}}));
    int calls = 0;
    d->on_complete([&](HttpResponse r) {
      ++calls;
      EXPECT_EQ(r.status, 201);
    });
    d->complete(HttpResponse::json(500, Json{}));  // ignored: answered already
    EXPECT_EQ(calls, 1);
  }
  {
    auto d = std::make_shared<DeferredResponse>();
    int calls = 0;
    d->on_complete([&](HttpResponse r) {
      ++calls;
      EXPECT_EQ(r.status, 202);
    });
    EXPECT_EQ(calls, 0);
    std::thread([d] { d->complete(HttpResponse::json(202, Json{})); }).join();
    EXPECT_EQ(calls, 1);
  }
}

TEST(DeferredResponseTest, DroppedWithoutAnAnswerIs500AndResolveWaits) {
  int status = 0;
  {
    auto d = std::make_shared<DeferredResponse>();
    d->on_complete([&](HttpResponse r) { status = r.status; });
  }
  EXPECT_EQ(status, 500);

  auto d = std::make_shared<DeferredResponse>();
  std::thread later([d] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    d->complete(HttpResponse::json(200, Json{{"late", true}}));
  });
  HttpResponse r = HttpResponse::later(d).resolve();
  later.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["late"], true);
  EXPECT_FALSE(r.deferred);
}

}  // namespace
}  // namespace attune::rest
