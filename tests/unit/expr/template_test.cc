// Template typing rules (API.md §10.2) and CompiledParams: recursive rendering and error paths.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "processors/expr/expr.h"

namespace attune::expr {
namespace {

class TemplateTest : public ::testing::Test {
 protected:
  TemplateTest() {
    event_ = Json::parse(R"({"id": 7, "trigger": "core.webhook", "payload": {
        "host": "web1", "port": 8080, "ok": true, "ratio": 0.5, "n": null,
        "obj": {"a": [1, 2]}, "list": ["x", "y"]}})");
    system_ = Json::parse(R"({"timestamp": "2026-01-01T00:00:00.000Z", "rule": {"ref": "p.r"}})");
    scope_.bind("event", &event_);
    scope_.bind("trigger", &event_);
    scope_.bind("system", &system_);
  }

  Json render(const std::string& text) {
    auto t = Template::compile(text);
    EXPECT_TRUE(t.ok()) << text << ": " << (t.ok() ? "" : t.error().message);
    if (!t.ok()) return Json("<compile error>");
    auto r = t->render(scope_);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : Json("<render error>");
  }

  Json event_;
  Json system_;
  Scope scope_;
};

TEST_F(TemplateTest, TypingRules) {
  struct Case {
    const char* text;
    const char* expected;  // JSON
  };
  const std::vector<Case> cases = {
      // exactly one template keeps the JSON type
      {"{{ event.payload.port }}", "8080"},
      {"{{event.payload.ok}}", "true"},
      {"{{ event.payload.ratio }}", "0.5"},
      {"{{ event.payload.obj }}", R"({"a": [1, 2]})"},
      {"{{ event.payload.list }}", R"(["x", "y"])"},
      {"{{ event.payload.host }}", R"("web1")"},
      {"{{ event.payload.n }}", "null"},
      {"{{ event.payload.missing }}", "null"},  // pure template, missing ⇒ null
      {"{{ event.payload.missing.deep }}", "null"},
      // mixed text ⇒ string
      {"host={{ event.payload.host }}:{{ event.payload.port }}", R"("host=web1:8080")"},
      {"obj={{ event.payload.obj }}", R"("obj={\"a\":[1,2]}")"},
      {"list={{ event.payload.list }}", R"("list=[\"x\",\"y\"]")"},
      {"[{{ event.payload.missing }}]", R"("[]")"},  // missing inside text ⇒ empty
      {"[{{ event.payload.n }}]", R"("[]")"},
      {"ok={{ event.payload.ok }}", R"("ok=true")"},
      {" {{ event.payload.port }}", R"(" 8080")"},  // any surrounding text makes a string
      {"{{ 1 }}{{ 2 }}", R"("12")"},
      {"no templates here", R"("no templates here")"},
      {"", R"("")"},
      {"braces } and }} alone", R"("braces } and }} alone")"},
      {"{{ '}}' }}", R"("}}")"},
      {"{{ {'k': {'v': 1}} }}", R"({"k": {"v": 1}})"},
      {"{{ system.rule.ref }}/{{ event.id }}", R"("p.r/7")"},
  };
  for (const auto& c : cases) {
    Json got = render(c.text);
    EXPECT_EQ(got, Json::parse(c.expected)) << c.text << " gave " << got.dump();
  }
}

TEST_F(TemplateTest, IsTemplate) {
  EXPECT_FALSE(Template::compile("plain").value().is_template());
  EXPECT_FALSE(Template::compile("a } b }}").value().is_template());
  EXPECT_TRUE(Template::compile("{{ 1 }}").value().is_template());
  EXPECT_TRUE(Template::compile("x {{ 1 }} y").value().is_template());
}

TEST_F(TemplateTest, CompileErrorsPointIntoTheText) {
  struct Case {
    const char* text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"hello {{ event.id ) }}", "unexpected ')' (expected '}}') at column 19"},
      {"x {{ 'abc }}", "unterminated string starting at column 6"},
      {"{{ event.id | uper }}", "unknown filter 'uper' at column 15; did you mean 'upper'?"},
      {"a {{ 1 ", "expected '}}' to close '{{' before end of text at column 8"},
      {"{{ }}", "unexpected '}}' at column 4"},
  };
  for (const auto& c : cases) {
    auto t = Template::compile(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.error().message, c.message) << c.text;
  }
}

TEST_F(TemplateTest, RenderErrors) {
  auto t = Template::compile("n={{ event.payload.host > 1 }}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "'>' not supported between string and number at column 25");
}

TEST_F(TemplateTest, CompiledParamsRenderRecursively) {
  Json params = Json::parse(R"({
    "host": "{{ event.payload.host }}",
    "port": "{{ event.payload.port }}",
    "url": "http://{{ event.payload.host }}:{{ event.payload.port }}/x",
    "literal": "unchanged",
    "number": 5,
    "flags": [true, null],
    "nested": {"obj": "{{ event.payload.obj }}", "list": ["{{ event.payload.list[1] }}", 3,
               {"deep": "{{ event.payload.missing }}"}]},
    "static": {"a": [1, {"b": "c"}]}
  })");
  auto p = CompiledParams::compile(params);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto r = p->render(scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Json want = Json::parse(R"({
    "host": "web1", "port": 8080, "url": "http://web1:8080/x", "literal": "unchanged",
    "number": 5, "flags": [true, null],
    "nested": {"obj": {"a": [1, 2]}, "list": ["y", 3, {"deep": null}]},
    "static": {"a": [1, {"b": "c"}]}
  })");
  EXPECT_EQ(*r, want) << r->dump();
  // Rendering again gives the same result (the compiled form is not consumed).
  EXPECT_EQ(*p->render(scope_), want);
}

TEST_F(TemplateTest, CompiledParamsScalarsAndNull) {
  EXPECT_EQ(*CompiledParams::compile(Json()).value().render(scope_), Json());
  EXPECT_EQ(*CompiledParams::compile(Json("{{ event.id }}")).value().render(scope_), 7);
  EXPECT_EQ(*CompiledParams::compile(Json::array()).value().render(scope_), Json::array());
}

TEST_F(TemplateTest, CompiledParamsErrorsNameTheJsonPath) {
  struct Case {
    const char* params;
    const char* message;
  };
  const std::vector<Case> cases = {
      {R"({"foo": [1, 2, "{{ x ) }}"]})",
       "action_params.foo[2]: unexpected ')' (expected '}}') at column 6"},
      {R"({"a": {"b c": "{{ 'x }}"}})",
       "action_params.a[\"b c\"]: unterminated string starting at column 4"},
      {R"(["{{ | }}"])", "action_params[0]: unexpected '|' at column 4"},
  };
  for (const auto& c : cases) {
    auto p = CompiledParams::compile(Json::parse(c.params));
    ASSERT_FALSE(p.ok()) << c.params;
    EXPECT_EQ(p.error().message, c.message);
  }
  auto named = CompiledParams::compile(Json::parse(R"({"x": "{{ ( }}"})"), "input");
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.error().message.rfind("input.x: ", 0), 0u) << named.error().message;

  auto p = CompiledParams::compile(Json::parse(R"({"a": {"b": ["ok", "{{ 1 / 0 }}"]}})"));
  ASSERT_TRUE(p.ok());
  auto r = p->render(scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "action_params.a.b[1]: division by zero at column 6");
}

TEST_F(TemplateTest, CompiledParamsDepthIsLimited) {
  Json deep = "x";
  for (int i = 0; i < 150; ++i) deep = Json::array({deep});
  auto p = CompiledParams::compile(deep);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("nested too deeply"), std::string::npos);
}

}  // namespace
}  // namespace attune::expr
