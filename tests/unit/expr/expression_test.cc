// Table-driven tests of the expression language: literals, paths, operators, filters, tests, type
// rules, truthiness, function calls and error messages with columns.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "processors/expr/expr.h"

namespace attune::expr {
namespace {

const Json& data() {
  static const Json d = Json::parse(R"({
    "event": {"id": 42, "trigger": "core.webhook", "payload": {
      "priority": 8, "env": "prod", "name": "Web-01", "tags": ["a", "b"], "f": 1.5,
      "nested": {"x": {"y": 3}}, "n": null, "empty": "", "list": [3, 1, 2], "obj": {"k": "v"},
      "zero": 0, "big": 9223372036854775807, "u": 18446744073709551615, "text": "  hi  ",
      "dup": [1, 2, 1, "a", "a"], "words": ["b", "a", "c"], "mixed": [1, "a"], "t": true}},
    "config": {"threshold": 7, "name": "ops"}
  })");
  return d;
}

// The JSON type, with unsigned folded into integer (the parser makes positive literals unsigned).
Json::value_t kind(const Json& j) {
  return j.is_number_unsigned() ? Json::value_t::number_integer : j.type();
}

class ExprTest : public ::testing::Test {
 protected:
  ExprTest() {
    scope_.bind("event", &data()["event"]);
    scope_.bind("trigger", &data()["event"]);
    scope_.bind("config", &data()["config"]);
    scope_.bind("gone", nullptr);
    scope_.bind_function("succeeded", [](std::span<const Json>) -> Result<Json> { return Json(true); });
    scope_.bind_function("add", [](std::span<const Json> args) -> Result<Json> {
      int64_t sum = 0;
      for (const auto& a : args) {
        if (!a.is_number_integer()) return make_error(Errc::kValidation, "add wants integers");
        sum += a.get<int64_t>();
      }
      return Json(sum);
    });
  }

  struct Case {
    const char* expr;
    const char* expected;  // JSON
  };

  // Evaluates each case and checks value and JSON type (1 is not 1.0).
  void check(const std::vector<Case>& cases) {
    for (const auto& c : cases) {
      auto r = eval(c.expr);
      ASSERT_TRUE(r.ok()) << c.expr << " → " << r.error().message;
      Json want = Json::parse(c.expected);
      EXPECT_EQ(*r, want) << c.expr << " gave " << r->dump() << ", want " << want.dump();
      EXPECT_EQ(kind(*r), kind(want)) << c.expr << " gave " << r->dump();
    }
  }

  Result<Json> eval(const std::string& src) {
    auto e = Expression::compile(src);
    if (!e.ok()) return e.error();
    return e->evaluate(scope_);
  }

  Scope scope_;
};


TEST_F(ExprTest, Literals) {
  check(
            {
                {"1", "1"},
                {"-7", "-7"},
                {"1.5", "1.5"},
                {"2e3", "2000.0"},
                {"1E-2", "0.01"},
                {"'single'", R"("single")"},
                {"\"double\"", R"("double")"},
                {R"('it\'s')", R"("it's")"},
                {R"("a\"b")", R"("a\"b")"},
                {R"('tab\there')", R"("tab\there")"},
                {R"('line\nbreak')", R"("line\nbreak")"},
                {R"('back\\slash')", R"("back\\slash")"},
                {R"('\u00e9\u20ac')", R"("é€")"},
                {R"('\ud83d\ude00')", R"("😀")"},
                {R"('keep\q')", R"("keep\\q")"},
                {"true", "true"},
                {"True", "true"},
                {"false", "false"},
                {"False", "false"},
                {"null", "null"},
                {"none", "null"},
                {"None", "null"},
                {"[]", "[]"},
                {"[1, 'a', [true], ]", R"([1, "a", [true]])"},
                {"{}", "{}"},
                {"{a: 1, 'b c': [2], \"d\": {e: null}}", R"({"a": 1, "b c": [2], "d": {"e": null}})"},
                {"[event.id, config.name]", R"([42, "ops"])"},
                {"{id: event.id}", R"({"id": 42})"},
                {"{{ 5 }}", "5"},
                {"  {{ {'a': {'b': 1}} }}  ", R"({"a": {"b": 1}})"},
            });
}

TEST_F(ExprTest, Paths) {
  check(
            {
                {"event.id", "42"},
                {"trigger.payload.priority", "8"},
                {"event['payload']['env']", R"("prod")"},
                {"event.payload.nested.x.y", "3"},
                {"event.payload.tags[0]", R"("a")"},
                {"event.payload.tags[-1]", R"("b")"},
                {"event.payload.tags.1", R"("b")"},
                {"event.payload.list.0", "3"},
                {"event.payload.tags[5]", "null"},      // out of range ⇒ undefined ⇒ null
                {"event.payload.tags[-3]", "null"},
                {"event.payload.missing", "null"},
                {"event.payload.missing.deeper.still", "null"},
                {"event.payload.n.x", "null"},          // attribute of null ⇒ undefined
                {"nothing.at.all", "null"},
                {"gone", "null"},
                {"event.payload['e' ~ 'nv']", R"("prod")"},
                {"event.payload.tags[event.payload.zero]", R"("a")"},
                {"event.payload.name[0]", R"("W")"},
                {"event.payload.name[-1]", R"("1")"},
                {"[10, 20, 30][1]", "20"},
                {"{'a': {'b': [1, 2]}}.a.b[-1]", "2"},
                {"{'k': event.id}['k']", "42"},
                {"(event.payload).env", R"("prod")"},
                {"event.payload.obj['missing'] is defined", "false"},
            });
}

TEST_F(ExprTest, Comparisons) {
  check(
            {
                {"1 == 1", "true"},
                {"1 == 1.0", "true"},
                {"1 != 2", "true"},
                {"'a' == 'a'", "true"},
                {"'1' == 1", "false"},  // across types: false, not an error
                {"null == none", "true"},
                {"[1, 2] == [1, 2]", "true"},
                {"{'a': 1} == {'a': 1}", "true"},
                {"true == 1", "false"},
                {"event.payload.missing == null", "false"},  // undefined is not null
                {"event.payload.missing == nothing", "true"},
                {"event.payload.missing != 1", "true"},
                {"1 < 2", "true"},
                {"2 <= 2", "true"},
                {"3 > 2.5", "true"},
                {"2.5 >= 3", "false"},
                {"'abc' < 'abd'", "true"},
                {"'b' > 'a'", "true"},
                {"'Z' < 'a'", "true"},
                {"1 < 2 < 3", "true"},
                {"1 < 3 < 2", "false"},
                {"event.payload.big > 9223372036854775806", "true"},
                {"event.payload.u > event.payload.big", "true"},
                {"trigger.payload.priority >= 7", "true"},
                {"trigger.payload.priority >= config.threshold", "true"},
            });
}

TEST_F(ExprTest, LogicAndMembership) {
  check(
            {
                {"true and false", "false"},
                {"1 and 'x'", "true"},  // booleans, not the operand
                {"0 or ''", "false"},
                {"0 or 'x'", "true"},
                {"not 0", "true"},
                {"not not 'a'", "true"},
                {"false and (1 < 'a')", "false"},  // short-circuit skips the type error
                {"true or (1 / 0)", "true"},
                {"not 1 == 2", "true"},
                {"'b' in ['a', 'b']", "true"},
                {"'c' not in ['a', 'b']", "true"},
                {"1 in [1.0]", "true"},
                {"'ell' in 'hello'", "true"},
                {"'x' not in 'hello'", "true"},
                {"'k' in event.payload.obj", "true"},
                {"'v' in event.payload.obj", "false"},
                {"event.payload.missing in [1]", "false"},
                {"trigger.payload.env in ['prod', 'staging']", "true"},
                {"trigger.payload.priority >= 7 and trigger.payload.env in ['prod','staging']",
                 "true"},
                {"(event.payload.priority > 9 or event.payload.env == 'prod') and not false",
                 "true"},
                {"'yes' if event.payload.t else 'no'", R"("yes")"},
                {"'yes' if event.payload.zero else 'no'", R"("no")"},
                {"'yes' if false", "null"},
                {"1 if false else 2 if false else 3", "3"},
            });
}

TEST_F(ExprTest, Arithmetic) {
  check(
            {
                {"1 + 2", "3"},
                {"1 + 2.5", "3.5"},
                {"'a' + 'b'", R"("ab")"},
                {"[1] + [2, 3]", "[1, 2, 3]"},
                {"event.payload.tags + ['c']", R"(["a", "b", "c"])"},
                {"5 - 7", "-2"},
                {"3 * 4", "12"},
                {"'ab' * 3", R"("ababab")"},
                {"7 / 2", "3.5"},
                {"4 / 2", "2.0"},  // `/` always gives a float
                {"7 // 2", "3"},
                {"-7 // 2", "-4"},
                {"7 % 3", "1"},
                {"-7 % 3", "2"},   // Python semantics: sign of the divisor
                {"7 % -3", "-2"},
                {"7.5 % 2", "1.5"},
                {"-event.payload.priority", "-8"},
                {"+event.payload.f", "1.5"},
                {"- -3", "3"},
                {"2 + 3 * 4", "14"},
                {"(2 + 3) * 4", "20"},
                {"10 - 2 - 3", "5"},
                {"event.payload.big + 1", "9.223372036854776e18"},  // overflow falls back to float
                {"'a' ~ 1 ~ none ~ true ~ [1]", R"("a1true[1]")"},
                {"event.payload.priority ~ '/' ~ event.payload.missing", R"("8/")"},
            });
}

TEST_F(ExprTest, Filters) {
  check(
            {
                {"event.payload.missing | default('x')", R"("x")"},
                {"event.payload.n | default('x')", R"("x")"},
                {"event.payload.zero | default('x')", "0"},
                {"event.payload.zero | default('x', true)", R"("x")"},
                {"event.payload.env | d('x')", R"("prod")"},
                {"event.payload.missing.deep | default(event.id)", "42"},
                {"'aBc' | upper", R"("ABC")"},
                {"'aBc' | lower", R"("abc")"},
                {"'hello world' | capitalize", R"("Hello world")"},
                {"event.payload.text | trim", R"("hi")"},
                {"'héllo' | length", "5"},  // code points
                {"event.payload.tags | length", "2"},
                {"event.payload.obj | count", "1"},
                {"'42' | int", "42"},
                {"' -3 ' | int", "-3"},
                {"'3.9' | int", "3"},
                {"3.9 | int", "3"},
                {"true | int", "1"},
                {"'abc' | int(0)", "0"},
                {"'2.5' | float", "2.5"},
                {"2 | float", "2.0"},
                {"'x' | float(-1.0)", "-1.0"},
                {"5 | string", R"("5")"},
                {"true | string", R"("true")"},
                {"none | string", R"("")"},
                {"[1, 'a'] | string", R"("[1,\"a\"]")"},
                {"{'a': [1, 2]} | json", R"("{\"a\":[1,2]}")"},
                {"'x' | tojson", R"("\"x\"")"},
                {"event.payload.missing | tojson", R"("null")"},
                {"[1] | json(2)", R"("[\n  1\n]")"},
                {"event.payload.tags | join(',')", R"("a,b")"},
                {"[1, 'x', none] | join", R"("1x")"},
                {"event.payload.tags | first", R"("a")"},
                {"event.payload.tags | last", R"("b")"},
                {"[] | first", "null"},
                {"'abc' | last", R"("c")"},
                {"{'b': 1, 'a': 2} | keys", R"(["a", "b"])"},
                {"{'b': 1, 'a': 2} | values", "[2, 1]"},
                {"'a-b-c' | replace('-', '+')", R"("a+b+c")"},
                {"'aaa' | replace('a', 'bb')", R"("bbbbbb")"},
                {"'abc' | replace('', 'x')", R"("abc")"},
                {"2.567 | round", "3.0"},
                {"2.567 | round(2)", "2.57"},
                {"-2.5 | round", "-3.0"},  // half away from zero
                {"7 | round", "7"},
                {"-3 | abs", "3"},
                {"-1.5 | abs", "1.5"},
                {"'yes' | bool", "true"},
                {"'Off' | bool", "false"},
                {"1 | bool", "true"},
                {"[] | bool", "false"},
                {"'ab' | list", R"(["a", "b"])"},
                {"{'k': 1} | list", R"(["k"])"},
                {"event.payload.dup | unique", R"([1, 2, "a"])"},
                {"event.payload.list | sort", "[1, 2, 3]"},
                {"event.payload.words | sort(true)", R"(["c", "b", "a"])"},
                {"[] | sort", "[]"},
                {"event.payload.name | lower | replace('-', '_') | upper", R"("WEB_01")"},
                {"-3 | abs", "3"},  // filters bind to the unary expression: (-3)|abs
                {"event.payload.list | length > 2", "true"},
            });
}

TEST_F(ExprTest, Tests) {
  check(
            {
                {"event.id is defined", "true"},
                {"event.nope is defined", "false"},
                {"event.nope is not defined", "true"},
                {"event.nope is undefined", "true"},
                {"event.payload.n is none", "true"},
                {"event.payload.n is not none", "false"},
                {"event.payload.missing is none", "false"},
                {"event.payload.n is defined", "true"},
                {"'s' is string", "true"},
                {"1 is string", "false"},
                {"1.5 is number", "true"},
                {"true is number", "false"},
                {"3 is integer", "true"},
                {"3.0 is float", "true"},
                {"false is boolean", "true"},
                {"event.payload.obj is mapping", "true"},
                {"event.payload.tags is sequence", "true"},
                {"'abc' is sequence", "false"},
                {"4 is even", "true"},
                {"3 is odd", "true"},
                {"not event.nope is defined", "true"},
                {"event.nope is not defined and event.id is defined", "true"},
            });
}

TEST_F(ExprTest, FunctionCalls) {
  check(
            {
                {"succeeded()", "true"},
                {"add(1, 2, event.id)", "45"},
                {"add() == 0", "true"},
                {"not succeeded()", "false"},
            });
}

TEST_F(ExprTest, Truthiness) {
  struct T {
    const char* expr;
    bool truthy;
  };
  const std::vector<T> cases = {
      {"null", false},      {"false", false}, {"0", false},        {"0.0", false},
      {"''", false},        {"[]", false},    {"{}", false},       {"event.nope", false},
      {"true", true},       {"1", true},      {"-1", true},        {"0.1", true},
      {"'0'", true},        {"' '", true},    {"[0]", true},       {"{'a': none}", true},
      {"'false'", true},    {"event", true},  {"event.payload.u", true},
  };
  for (const auto& c : cases) {
    auto e = Expression::compile(c.expr);
    ASSERT_TRUE(e.ok()) << c.expr;
    auto r = e->test(scope_);
    ASSERT_TRUE(r.ok()) << c.expr;
    EXPECT_EQ(*r, c.truthy) << c.expr;
  }
}

TEST_F(ExprTest, UndefinedIsDistinctFromNull) {
  auto e = Expression::compile("event.nope");
  ASSERT_TRUE(e.ok());
  bool defined = true;
  auto r = e->evaluate(scope_, &defined);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(defined);
  EXPECT_TRUE(r->is_null());
  auto n = Expression::compile("event.payload.n");
  ASSERT_TRUE(n.ok());
  ASSERT_TRUE(n->evaluate(scope_, &defined).ok());
  EXPECT_TRUE(defined);
}

struct ErrorCase {
  const char* expr;
  const char* message;  // exact message
};

TEST_F(ExprTest, CompileErrorsCarryColumns) {
  const std::vector<ErrorCase> cases = {
      {"event.payload.x == (1 + 2))", "unexpected ')' at column 27"},
      {"(1 + 2", "unexpected end of expression (expected ')') at column 7"},
      {"'abc", "unterminated string starting at column 1"},
      {"1 + 'abc", "unterminated string starting at column 5"},
      {"event.x | uper", "unknown filter 'uper' at column 11; did you mean 'upper'?"},
      {"x | frobnicate", "unknown filter 'frobnicate' at column 5"},
      {"x is definedd", "unknown test 'definedd' at column 6; did you mean 'defined'?"},
      {"", "unexpected end of expression at column 1"},
      {"1 +", "unexpected end of expression at column 4"},
      {"a = 1", "unexpected '='; did you mean '=='? at column 3"},
      {"!a", "unexpected '!'; use 'not' for negation at column 1"},
      {"a $ b", "unexpected character '$' at column 3"},
      {"a.", "unexpected end of expression (expected a name after '.') at column 3"},
      {"[1, 2", "unexpected end of expression (expected ',' or ']') at column 6"},
      {"{1: 2}", "unexpected number 1 (expected a string or name as object key) at column 2"},
      {"a.b(1)", "unexpected '(': only plain function names can be called at column 4"},
      {"x | replace('a')", "filter 'replace' takes 2 arguments, got 1 at column 5"},
      {"x | upper(1)", "filter 'upper' takes 0 arguments, got 1 at column 5"},
      {"99999999999999999999", "integer literal too large at column 1"},
      {"12abc", "invalid number literal at column 1"},
      {"1 2", "unexpected number 2 at column 3"},
      {"and", "unexpected 'and' at column 1"},
      {"{{ 1 }} tail", "unexpected text after '}}' at column 8 (an expression holds a single {{ ... }})"},
      {"{{ 1 ", "expected '}}' to close '{{' before end of text at column 6"},
      {"{{ 1 } }}", "unexpected '}' (expected '}}') at column 6"},
  };
  for (const auto& c : cases) {
    auto e = Expression::compile(c.expr);
    ASSERT_FALSE(e.ok()) << c.expr;
    EXPECT_EQ(e.error().code, Errc::kValidation);
    EXPECT_EQ(e.error().message, c.message) << c.expr;
  }
}

TEST_F(ExprTest, EvaluationErrorsAreResults) {
  const std::vector<ErrorCase> cases = {
      {"'a' < 1", "'<' not supported between string and number at column 5"},
      {"event.payload.nope >= 7", "'>=' not supported between undefined and number at column 20"},
      {"[1] < [2]", "'<' not supported between array and array at column 5"},
      {"true > false", "'>' not supported between boolean and boolean at column 6"},
      {"1 / 0", "division by zero at column 3"},
      {"1 // 0", "division by zero at column 3"},
      {"1 % 0", "division by zero at column 3"},
      {"1.5 / 0.0", "division by zero at column 5"},
      {"1 + 'a'", "unsupported operand types for '+': number and string at column 3"},
      {"{} + {}", "unsupported operand types for '+': object and object at column 4"},
      {"'a' - 'b'", "unsupported operand types for '-': string and string at column 5"},
      {"-'a'", "bad operand type for unary '-': string at column 1"},
      {"1 in 'abc'", "'in' not supported between number and string at column 3"},
      {"'a' in 5", "'in' not supported between string and number at column 5"},
      {"'a' in event.nope", "'in' not supported between string and undefined at column 5"},
      {"5 | upper", "filter 'upper' expects a string, got number at column 5"},
      {"event.nope | length", "filter 'length' expects a string, array or object, got undefined at column 14"},
      {"'abc' | int", "filter 'int' cannot convert string \"abc\" at column 9"},
      {"event.payload.mixed | sort", "filter 'sort' cannot order number and string at column 23"},
      {"1 | keys", "filter 'keys' expects an object, got number at column 5"},
      {"nope(1)", "unknown function 'nope' at column 1"},
      {"add('x')", "function 'add': add wants integers at column 1"},
      {"1.5 | round(99)", "filter 'round' digits must be an integer from 0 to 15 at column 7"},
  };
  for (const auto& c : cases) {
    auto e = Expression::compile(c.expr);
    ASSERT_TRUE(e.ok()) << c.expr << ": " << e.error().message;
    auto r = e->evaluate(scope_);
    ASSERT_FALSE(r.ok()) << c.expr << " gave " << r->dump();
    EXPECT_EQ(r.error().code, Errc::kValidation);
    EXPECT_EQ(r.error().message, c.message) << c.expr;
    EXPECT_FALSE(e->test(scope_).ok()) << c.expr;
  }
}

TEST_F(ExprTest, DepthIsLimited) {
  std::string deep(500, '(');
  deep += "1";
  deep += std::string(500, ')');
  auto e = Expression::compile(deep);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("nested too deeply (limit 200)"), std::string::npos);

  std::string chain = "1";
  for (int i = 0; i < 1000; ++i) chain += " + 1";
  e = Expression::compile(chain);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("nested too deeply"), std::string::npos);

  std::string filters = "'a'";
  for (int i = 0; i < 1000; ++i) filters += " | upper";
  EXPECT_FALSE(Expression::compile(filters).ok());

  std::string nots;
  for (int i = 0; i < 1000; ++i) nots += "not ";
  EXPECT_FALSE(Expression::compile(nots + "1").ok());

  std::string ok = "1";
  for (int i = 0; i < 150; ++i) ok += " + 1";
  auto fine = Expression::compile(ok);
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine->evaluate(scope_), 151);
}

TEST_F(ExprTest, HugeResultsAreErrors) {
  auto e = Expression::compile(
      "'aaaaaaaa' | replace('a', 'aaaaaaaa') | replace('a', 'aaaaaaaa') | replace('a', "
      "'aaaaaaaa') | replace('a', 'aaaaaaaa') | replace('a', 'aaaaaaaa') | replace('a', "
      "'aaaaaaaa') | replace('a', 'aaaaaaaa') | replace('a', 'aaaaaaaa') | replace('a', 'aaaaaaaa')");
  ASSERT_TRUE(e.ok());
  auto r = e->evaluate(scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("too large"), std::string::npos);
  EXPECT_FALSE(Expression::compile("'ab' * 100000000").value().evaluate(scope_).ok());
}

TEST_F(ExprTest, ScopeParentsAndRebinding) {
  Json item = {{"name", "x"}};
  Scope child(&scope_);
  child.bind("item", &item);
  auto e = Expression::compile("item.name ~ '@' ~ config.name");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e->evaluate(child), "x@ops");
  Json other = {{"name", "y"}};
  child.bind("item", &other);
  EXPECT_EQ(*e->evaluate(child), "y@ops");
  EXPECT_EQ(*e->evaluate(scope_), "@ops");  // parent does not see the child's bindings
}

TEST_F(ExprTest, CompiledExpressionIsReusableAndCopyable) {
  auto e = Expression::compile("event.payload.priority * 2");
  ASSERT_TRUE(e.ok());
  Expression copy = *e;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*copy.evaluate(scope_), 16);
    EXPECT_EQ(*e->evaluate(scope_), 16);
  }
}

}  // namespace
}  // namespace attune::expr
