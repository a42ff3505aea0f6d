// Unit tests of the create/update-time rule checks: every condition form and template is compiled,
// and what does not compile is reported per field with its position.
#include "api/service/rule_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace attune::service {
namespace {

struct Case {
  std::string name;
  Json conditions;
  Json action_params;
  // Expected fragment of errors["conditions"] / errors["action_params"]; empty: no error.
  std::string conditions_error;
  std::string params_error;
};

TEST(CheckRule, TableOfConditionsAndTemplates) {
  const Json trigger = {{"ref", "p.hook"}, {"param_schema", Json::object()}};
  const std::vector<Case> cases = {
      {"null conditions, no params", nullptr, nullptr, "", ""},
      {"empty object and array", Json::object(), Json::object(), "", ""},
      {"empty array", Json::array(), Json::object(), "", ""},
      {"expression", {{"expression", "event.payload.n > 5 and trigger.payload.env in ['a', 'b']"}},
       Json::object(), "", ""},
      {"expression in braces", {{"expression", "{{ event.payload.level == 'info' }}"}},
       Json::object(), "", ""},
      {"unbalanced parenthesis",
       {{"expression", "event.payload.n)"}},
       Json::object(),
       "unexpected ')' at column 16",
       ""},
      {"dangling operator", {{"expression", "event.payload.n >"}}, Json::object(), "at column", ""},
      {"unknown key", {{"expr", "true"}}, Json::object(), "unknown key 'expr'", ""},
      {"expression not a string", {{"expression", 5}}, Json::object(), "must be a string", ""},
      {"array form with several operators",
       Json::array({{{"field", "a"}, {"operator", "equals"}, {"value", 1}},
                    {{"field", "b.c"}, {"operator", "in"}, {"value", {"x", "y"}}},
                    {{"field", "d"}, {"operator", "exists"}},
                    {{"field", "e"}, {"operator", "regex"}, {"value", "^ab+"}}}),
       Json::object(),
       "",
       ""},
      {"unknown operator",
       Json::array({{{"field", "a"}, {"operator", "equals"}, {"value", 1}},
                    {{"field", "a"}, {"operator", "equal"}, {"value", 1}}}),
       Json::object(),
       "conditions[1].operator: unknown operator 'equal'",
       ""},
      {"criterion without field", Json::array({{{"operator", "equals"}, {"value", 1}}}),
       Json::object(), "conditions[0].field", ""},
      {"bad regex", Json::array({{{"field", "a"}, {"operator", "regex"}, {"value", "("}}}),
       Json::object(), "conditions[0].value: invalid regex", ""},
      {"not a condition", "event.payload.a", Json::object(), "must be null", ""},
      {"templates compile",
       nullptr,
       {{"a", "{{ event.payload.a | default('x') | upper }}"},
        {"b", {{"c", Json::array({"x {{ system.rule.ref }} y", 3})}}},
        {"plain", "no template"}},
       "",
       ""},
      {"bad template with its path and column",
       nullptr,
       {{"ok", "{{ event.id }}"}, {"b", {{"c", Json::array({1, "{{ event.payload.a) }}"})}}}},
       "",
       "action_params.b.c[1]: unexpected ')' (expected '}}') at column 19"},
      {"unterminated template", nullptr, {{"a", "{{ event.payload.a"}}, "", "action_params.a"},
      {"both bad",
       {{"expression", "("}},
       {{"a", "{{ ) }}"}},
       "at column",
       "at column"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json rule = {{"conditions", c.conditions}, {"action_params", c.action_params}};
    Json errors = Json::object();
    const bool ok = check_rule(rule, trigger, errors);
    EXPECT_EQ(ok, c.conditions_error.empty() && c.params_error.empty()) << errors.dump();
    for (const auto& [field, want] : {std::pair{"conditions", c.conditions_error},
                                      std::pair{"action_params", c.params_error}}) {
      if (want.empty()) {
        EXPECT_FALSE(errors.contains(field)) << errors.dump();
        continue;
      }
      ASSERT_TRUE(errors.contains(field)) << errors.dump();
      ASSERT_TRUE(errors[field].is_string()) << errors.dump();
      EXPECT_NE(errors[field].get<std::string>().find(want), std::string::npos) << errors.dump();
    }
  }
}

TEST(CheckRule, TriggerParamsStillCheckedAndDefaulted) {
  const Json trigger = {
      {"ref", "p.hook"},
      {"param_schema", {{"unit", {{"type", "string"}, {"default", "seconds"}}},
                        {"interval", {{"type", "integer"}, {"required", true}}}}}};
  Json rule = {{"conditions", nullptr}, {"trigger_params", {{"interval", 5}}}};
  Json errors = Json::object();
  ASSERT_TRUE(check_rule(rule, trigger, errors)) << errors.dump();
  EXPECT_EQ(rule["trigger_params"], (Json{{"unit", "seconds"}, {"interval", 5}}));

  Json missing = {{"conditions", {{"expression", "true"}}}, {"trigger_params", Json::object()}};
  errors = Json::object();
  EXPECT_FALSE(check_rule(missing, trigger, errors));
  EXPECT_TRUE(errors.contains("trigger_params.interval")) << errors.dump();
  EXPECT_FALSE(errors.contains("conditions")) << errors.dump();
}

}  // namespace
}  // namespace attune::service
