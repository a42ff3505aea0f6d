// workflow::parse: validation errors name the task and field; legacy keys become transitions.
#include <gtest/gtest.h>

#include "processors/workflow/workflow.h"

namespace attune::workflow {
namespace {

Json j(const char* text) { return Json::parse(text); }

struct BadCase {
  const char* name;
  const char* def;
  const char* error;  // substring of the message
};

class ParseErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseErrors, NamesTaskAndField) {
  auto r = parse(j(GetParam().def));
  ASSERT_FALSE(r.ok()) << GetParam().name;
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_NE(r.error().message.find(GetParam().error), std::string::npos)
      << GetParam().name << ": " << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Workflow, ParseErrors,
    ::testing::Values(
        BadCase{"not_object", R"([1])", "definition: must be an object"},
        BadCase{"no_version", R"({"tasks": [{"name": "a", "action": "core.echo"}]})",
                "version: required"},
        BadCase{"no_tasks", R"({"version": "1.0", "tasks": []})", "tasks: at least one task"},
        BadCase{"task_no_name", R"({"version": 1, "tasks": [{"action": "core.echo"}]})",
                "tasks[0]: name: required"},
        BadCase{"duplicate", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y"},
                 {"name": "a", "action": "x.y"}]})",
                "duplicate task name 'a'"},
        BadCase{"bad_type", R"({"version": 1, "tasks": [{"name": "a", "type": "foo"}]})",
                "task 'a': type: must be action, parallel or workflow"},
        BadCase{"type_not_string", R"({"version": 1, "tasks": [{"name": "a", "type": 3}]})",
                "task 'a': type: must be a string"},
        BadCase{"no_action", R"({"version": 1, "tasks": [{"name": "a"}]})",
                "task 'a': action: required"},
        BadCase{"unknown_do", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y"},
                 {"name": "b", "action": "x.y", "next": [{"do": ["x"]}]}]})",
                "task 'b': next[0].do: unknown task 'x'"},
        BadCase{"unknown_on_success", R"({"version": 1, "tasks": [
                 {"name": "a", "action": "x.y", "on_success": "nope"}]})",
                "task 'a': on_success: unknown task 'nope'"},
        BadCase{"bad_input_template", R"({"version": 1, "tasks": [
                 {"name": "a", "action": "x.y", "input": {"x": "{{ 1 + }}"}}]})",
                "task 'a': input.x:"},
        BadCase{"bad_when", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "next": [{"when": "{{ succeeded( }}", "do": "a"}]}]})",
                "task 'a': next[0].when:"},
        BadCase{"bad_publish", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "next": [{"publish": [{"v": "{{ ) }}"}]}]}]})",
                "task 'a': next[0].publish: v:"},
        BadCase{"retry_zero", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "retry": {"count": 0}}]})",
                "task 'a': retry.count: must be between 1 and 100"},
        BadCase{"retry_101", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "retry": {"count": 101}}]})",
                "retry.count: must be between 1 and 100"},
        BadCase{"retry_backoff", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "retry": {"count": 2, "backoff": "random"}}]})",
                "task 'a': retry.backoff: must be constant, linear or exponential"},
        BadCase{"unknown_field", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "colour": "red"}]})",
                "task 'a': unknown field 'colour'"},
        BadCase{"batch_without_items", R"({"version": 1, "tasks": [{"name": "a",
                 "action": "x.y", "batch_size": 2}]})",
                "task 'a': batch_size: needs with_items"},
        BadCase{"concurrency_zero", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "with_items": "{{ parameters.xs }}", "concurrency": 0}]})",
                "task 'a': concurrency: must be between"},
        BadCase{"with_items_type", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "with_items": 3}]})",
                "task 'a': with_items: must be a template or a list"},
        BadCase{"negative_timeout", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "timeout": 0}]})",
                "task 'a': timeout: must be > 0"},
        BadCase{"join_zero", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "join": 0}]})",
                "task 'a': join: must be between"},
        BadCase{"wait_for_missing", R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
                 "wait_for": {}}]})",
                "task 'a': wait_for.inquiry: required"},
        BadCase{"parallel_empty", R"({"version": 1, "tasks": [{"name": "p", "type": "parallel"}]})",
                "task 'p': tasks: a parallel task needs"},
        BadCase{"parallel_escape", R"({"version": 1, "tasks": [{"name": "p", "type": "parallel",
                 "tasks": [{"name": "n", "action": "x.y", "on_success": "after"}]},
                 {"name": "after", "action": "x.y"}]})",
                "task 'n': on_success: task 'after' is not in parallel task 'p'"},
        BadCase{"nested_duplicate", R"({"version": 1, "tasks": [{"name": "p", "type": "parallel",
                 "tasks": [{"name": "p", "action": "x.y"}]}]})",
                "duplicate task name 'p'"},
        BadCase{"decision_without_when", R"({"version": 1, "tasks": [{"name": "a",
                 "action": "x.y", "decision": [{"do": "a"}]}]})",
                "task 'a': decision[0].when: required"},
        BadCase{"policy", R"({"version": 1, "cancellation_policy": "later",
                 "tasks": [{"name": "a", "action": "x.y"}]})",
                "cancellation_policy: must be allow_finish or cancel_running"},
        BadCase{"output_map", R"({"version": 1, "output_map": {"x": "{{ ( }}"},
                 "tasks": [{"name": "a", "action": "x.y"}]})",
                "output_map.x:"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(WorkflowParse, IgnoresDoubleUnderscoreKeys) {
  auto r = parse(j(R"({"version": "1", "__meta": {"x": 1}, "tasks": [
      {"name": "a", "action": "core.echo", "__comment": "anything {{ ( }}"}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tasks().size(), 1u);
}

TEST(WorkflowParse, EntryTasksAreTheUntargetedOnes) {
  auto r = parse(j(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"do": ["c"]}]},
      {"name": "b", "action": "x.y", "next": [{"do": "c"}]},
      {"name": "c", "action": "x.y", "join": "all"}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->entry_tasks(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->find("c")->join, 2);  // "all" = every inbound transition
}

TEST(WorkflowParse, DoTakesAListOrCommaSeparatedNames) {
  auto r = parse(j(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"do": "b, c"}], "on_failure": ["c"]},
      {"name": "b", "action": "x.y"}, {"name": "c", "action": "x.y"}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("a")->next[0].targets, (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(parse(j(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"do": "a,,"}]}]})"))
                   .ok());
}

TEST(WorkflowParse, EveryTaskTargetedMeansTheFirstIsTheEntry) {
  auto r = parse(j(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"do": "b"}]},
      {"name": "b", "action": "x.y", "next": [{"do": "a"}]}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->entry_tasks(), (std::vector<std::string>{"a"}));
}

TEST(WorkflowParse, LegacyKeysBecomeTransitionsInOrder) {
  auto r = parse(j(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "publish": {"v": "{{ result() }}"},
       "on_success": "b", "on_failure": ["c"], "on_timeout": "c", "on_complete": "d",
       "decision": [{"when": "{{ result().x == 1 }}", "do": "b"}, {"default": "c"}]},
      {"name": "b", "action": "x.y"}, {"name": "c", "action": "x.y"},
      {"name": "d", "action": "x.y"}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Task& a = *r->find("a");
  std::vector<std::string> labels;
  for (const Transition& t : a.next) labels.push_back(t.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"publish", "on_success", "on_failure", "on_timeout",
                                              "on_complete", "decision[0]", "decision[1]"}));
  EXPECT_TRUE(a.next[0].has_when);
  EXPECT_EQ(a.next[0].publish, (std::vector<std::string>{"v"}));
  EXPECT_FALSE(a.next[4].has_when);  // on_complete: unconditional
  EXPECT_TRUE(a.next[6].has_when);   // default: none of the other branches
}

TEST(WorkflowParse, NormalisesTaskFields) {
  auto r = parse(j(R"({"version": 1, "cancellation_policy": "cancel_running", "tasks": [
      {"name": "a", "action": "x.y", "with_items": "{{ parameters.xs }}", "batch_size": 2,
       "concurrency": 3, "retry": {"count": 3, "delay": 1.5, "backoff": "exponential",
       "max_delay": 10, "on_error": "{{ result().code == 2 }}"}, "timeout": 30, "delay": 2,
       "permission_set_refs": "core.reader", "wait_for": {"inquiry": "{{ 7 }}"}},
      {"name": "w", "type": "workflow", "action": "pack.sub"}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Task& a = *r->find("a");
  EXPECT_TRUE(a.has_with_items);
  EXPECT_EQ(a.batch_size, 2);
  EXPECT_EQ(a.concurrency, 3);
  ASSERT_TRUE(a.retry.has_value());
  EXPECT_EQ(a.retry->count, 3);
  EXPECT_EQ(a.retry->backoff, Backoff::kExponential);
  EXPECT_EQ(a.retry->max_delay, 10.0);
  EXPECT_TRUE(a.retry->has_on_error);
  EXPECT_EQ(a.timeout, 30.0);
  EXPECT_EQ(a.delay, 2.0);
  EXPECT_TRUE(a.has_wait_for);
  EXPECT_EQ(r->find("w")->type, TaskType::kWorkflow);
  EXPECT_EQ(r->cancellation_policy(), CancellationPolicy::kCancelRunning);
  EXPECT_EQ(r->entry_tasks(), (std::vector<std::string>{"a", "w"}));
}

}  // namespace
}  // namespace attune::workflow
