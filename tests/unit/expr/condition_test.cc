// Rule conditions: always forms, expression form (with and without {{ }}), and every array-form
// operator, including time-based ones with an injected clock.
#include "processors/expr/condition.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "topology/core/time.h"

namespace attune::expr {
namespace {

constexpr int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z

class ConditionTest : public ::testing::Test {
 protected:
  ConditionTest() : clock_(kNow) {
    event_ = Json::parse(R"({"id": 1, "trigger": "core.webhook", "payload": {
        "level": "info", "Name": "Web-Server-01", "count": 5, "ratio": 2.5,
        "tags": ["prod", "eu"], "meta": {"owner": "ops", "list": [{"k": 1}]},
        "n": null, "obj": {"x": 1},
        "seen": "2025-12-31T23:59:30Z", "old": "2025-12-31T00:00:00Z"}})");
    scope_.bind("event", &event_);
    scope_.bind("trigger", &event_);
    scope_.set_clock(&clock_);
  }

  // Match result for a single array-form criterion.
  Result<bool> one(const std::string& field, const std::string& op, const Json& value) {
    Json c = Json::array({{{"field", field}, {"operator", op}, {"value", value}}});
    auto cond = Condition::compile(c);
    if (!cond.ok()) return cond.error();
    return cond->matches(scope_);
  }

  ManualClock clock_;
  Json event_;
  Scope scope_;
};

TEST_F(ConditionTest, AlwaysForms) {
  for (const char* c : {"null", "{}", "[]", R"({"expression": ""})", R"({"expression": "  "})"}) {
    auto cond = Condition::compile(Json::parse(c));
    ASSERT_TRUE(cond.ok()) << c;
    EXPECT_TRUE(cond->matches(scope_).value()) << c;
  }
  EXPECT_TRUE(Condition::compile(Json()).value().always());
  EXPECT_FALSE(Condition::compile(Json::parse(R"({"expression": "true"})")).value().always());
}

TEST_F(ConditionTest, ExpressionForm) {
  struct Case {
    const char* expr;
    bool match;
  };
  const std::vector<Case> cases = {
      {"event.payload.level == 'info'", true},
      {"{{ trigger.payload.level == 'info' }}", true},
      {"{{ event.payload.count > 10 }}", false},
      {"event.payload.count >= 5 and 'prod' in event.payload.tags", true},
      {"event.payload.missing", false},
      {"event.payload.meta.owner", true},
  };
  for (const auto& c : cases) {
    auto cond = Condition::compile(Json{{"expression", c.expr}});
    ASSERT_TRUE(cond.ok()) << c.expr;
    auto r = cond->matches(scope_);
    ASSERT_TRUE(r.ok()) << c.expr;
    EXPECT_EQ(*r, c.match) << c.expr;
  }
  // An evaluation error is an error (the rules stage counts it as no match).
  auto bad = Condition::compile(Json{{"expression", "event.payload.level > 3"}});
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->matches(scope_).ok());
}

TEST_F(ConditionTest, ArrayFormOperators) {
  struct Case {
    const char* field;
    const char* op;
    Json value;
    bool match;
  };
  const std::vector<Case> cases = {
      {"level", "equals", "info", true},
      {"level", "equals", "warn", false},
      {"count", "equals", 5.0, true},
      {"meta.owner", "equals", "ops", true},
      {"meta.list.0.k", "equals", 1, true},
      {"missing", "equals", nullptr, false},
      {"n", "equals", nullptr, true},
      {"level", "not_equals", "warn", true},
      {"level", "not_equals", "info", false},
      {"missing", "not_equals", "x", true},
      {"Name", "iequals", "web-server-01", true},
      {"Name", "iequals", "web", false},
      {"Name", "contains", "Server", true},
      {"Name", "contains", "server", false},
      {"tags", "contains", "eu", true},
      {"tags", "contains", "us", false},
      {"obj", "contains", "x", true},
      {"missing", "contains", "x", false},
      {"Name", "ncontains", "xyz", true},
      {"tags", "ncontains", "eu", false},
      {"missing", "ncontains", "x", true},
      {"Name", "icontains", "SERVER", true},
      {"tags", "icontains", "PROD", true},
      {"Name", "icontains", "nope", false},
      {"Name", "startswith", "Web-", true},
      {"Name", "startswith", "Server", false},
      {"Name", "endswith", "-01", true},
      {"Name", "endswith", "Web", false},
      {"Name", "regex", "Web-\\w+-\\d+", true},
      {"Name", "regex", "Server", false},  // anchored at the start, like re.match
      {"Name", "regex", ".*Server", true},
      {"count", "lt", 6, true},
      {"count", "lt", 5, false},
      {"count", "lte", 5, true},
      {"ratio", "gt", 2, true},
      {"ratio", "gt", 2.5, false},
      {"ratio", "gte", 2.5, true},
      {"level", "gt", "a", true},
      {"level", "in", Json::array({"info", "warn"}), true},
      {"level", "in", Json::array({"error"}), false},
      {"level", "in", "info,warn", true},
      {"count", "in", Json::array({1, 5}), true},
      {"missing", "in", Json::array({"x"}), false},
      {"level", "nin", Json::array({"error"}), true},
      {"level", "nin", Json::array({"info"}), false},
      {"missing", "nin", Json::array({"x"}), true},
      {"level", "exists", nullptr, true},
      {"n", "exists", nullptr, true},
      {"missing", "exists", nullptr, false},
      {"level", "nexists", nullptr, false},
      {"missing", "nexists", nullptr, true},
      {"seen", "timediff_lt", 60, true},   // 30 s ago
      {"seen", "timediff_gt", 60, false},
      {"old", "timediff_gt", 3600, true},  // a day ago
      {"old", "timediff_lt", 3600, false},
      {"missing", "timediff_lt", 60, false},
  };
  for (const auto& c : cases) {
    auto r = one(c.field, c.op, c.value);
    ASSERT_TRUE(r.ok()) << c.field << " " << c.op << " " << c.value.dump() << ": "
                        << r.error().message;
    EXPECT_EQ(*r, c.match) << c.field << " " << c.op << " " << c.value.dump();
  }
}

TEST_F(ConditionTest, ArrayFormTypeErrorsAreEvaluationErrors) {
  auto r = one("obj", "lt", 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "condition on 'obj': operator 'lt' not supported for object field");
  EXPECT_FALSE(one("count", "startswith", "5").ok());
  EXPECT_FALSE(one("count", "regex", "5").ok());
  EXPECT_FALSE(one("level", "timediff_lt", 5).ok());
  EXPECT_FALSE(one("level", "lt", 5).ok());  // string vs number
  // Subjects longer than 8 KiB are refused: std::regex recurses per character.
  Json big = event_;
  big["payload"]["long"] = std::string(10000, 'a');
  Scope s;
  s.bind("event", &big);
  auto cond = Condition::compile(
      Json::parse(R"([{"field": "long", "operator": "regex", "value": "a+"}])"));
  ASSERT_TRUE(cond.ok());
  EXPECT_FALSE(cond->matches(s).ok());
}

TEST_F(ConditionTest, AllCriteriaMustHold) {
  auto both = Condition::compile(Json::parse(R"([
      {"field": "level", "operator": "equals", "value": "info"},
      {"field": "count", "operator": "gt", "value": 3}])"));
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->matches(scope_).value());
  auto one_fails = Condition::compile(Json::parse(R"([
      {"field": "level", "operator": "equals", "value": "info"},
      {"field": "count", "operator": "gt", "value": 30}])"));
  ASSERT_TRUE(one_fails.ok());
  EXPECT_FALSE(one_fails->matches(scope_).value());
}

TEST_F(ConditionTest, NullPayloadMatches) {
  Json ev = Json::parse(R"({"id": 2, "payload": null})");
  Scope s;
  s.bind("event", &ev);
  auto cond = Condition::compile(
      Json::parse(R"([{"field": "level", "operator": "equals", "value": "info"}])"));
  ASSERT_TRUE(cond.ok());
  EXPECT_TRUE(cond->matches(s).value());
  // Only "trigger" bound works too.
  Scope t;
  t.bind("trigger", &event_);
  EXPECT_TRUE(cond->matches(t).value());
}

TEST_F(ConditionTest, TimediffUsesSystemTimestampWhenBound) {
  Json system = {{"timestamp", kNow + 3600 * 1000}};  // an hour later than the clock
  scope_.bind("system", &system);
  EXPECT_FALSE(one("seen", "timediff_lt", 60).value());
  system["timestamp"] = format_rfc3339_ms(kNow);
  EXPECT_TRUE(one("seen", "timediff_lt", 60).value());
}

TEST_F(ConditionTest, CompileErrors) {
  struct Case {
    const char* json;
    const char* message;
  };
  const std::vector<Case> cases = {
      {R"([{"field": "a", "operator": "equal", "value": 1}])",
       "conditions[0].operator: unknown operator 'equal' (known: equals, not_equals, iequals, "
       "contains, ncontains, icontains, startswith, endswith, regex, lt, lte, gt, gte, in, nin, "
       "exists, nexists, timediff_lt, timediff_gt)"},
      {R"([{"field": "a", "operator": "equals", "value": 1}, {"operator": "equals"}])",
       "conditions[1].field: must be a non-empty string (a dotted path in the payload)"},
      {R"([{"field": "a..b", "operator": "equals", "value": 1}])",
       "conditions[0].field: empty path segment in 'a..b'"},
      {R"([{"field": "a", "operator": "equals"}])",
       "conditions[0].value: required for operator 'equals'"},
      {R"([{"field": "a", "operator": "regex", "value": "(unclosed"}])", nullptr},
      {R"([{"field": "a", "operator": "lt", "value": [1]}])",
       "conditions[0].value: must be a number or string for 'lt'"},
      {R"([{"field": "a", "operator": "in", "value": 3}])",
       "conditions[0].value: must be an array or string for 'in'"},
      {R"([{"field": "a", "operator": "timediff_lt", "value": "60"}])",
       "conditions[0].value: must be a number of seconds"},
      {R"([{"field": "a", "operator": "iequals", "value": 1}])",
       "conditions[0].value: must be a string for 'iequals'"},
      {R"([1])", "conditions[0]: must be an object with field, operator and value"},
      {R"({"expression": "a == (1"})",
       "conditions.expression: unexpected end of expression (expected ')') at column 8"},
      {R"({"expression": 5})", "conditions.expression: must be a string"},
      {R"({"expr": "a"})", "conditions: unknown key 'expr' (expected 'expression')"},
      {R"("a == 1")",
       "conditions: must be null, an object with 'expression', or an array of criteria; got "
       "string"},
  };
  for (const auto& c : cases) {
    auto cond = Condition::compile(Json::parse(c.json));
    ASSERT_FALSE(cond.ok()) << c.json;
    EXPECT_EQ(cond.error().code, Errc::kValidation);
    if (c.message != nullptr) {
      EXPECT_EQ(cond.error().message, c.message);
    } else {
      EXPECT_EQ(cond.error().message.rfind("conditions[0].value: invalid regex '(unclosed'", 0),
                0u)
          << cond.error().message;
    }
  }
}

}  // namespace
}  // namespace attune::expr
