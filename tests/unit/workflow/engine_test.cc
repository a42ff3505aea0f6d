// workflow::advance: the engine driven event by event. Every step is also replayed from the state
// after a JSON round trip and must give the identical step (the executor stores State as JSON).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "processors/workflow/workflow.h"

namespace attune::workflow {
namespace {

constexpr int64_t kNow = 1767225600000;

Definition def_of(const char* text) {
  auto r = parse(Json::parse(text));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return std::move(r).value();
}

Json commands_json(const std::vector<Command>& cs) {
  Json out = Json::array();
  for (const Command& c : cs) out.push_back(c.to_json());
  return out;
}

// Drives one workflow; checks the replay property on every step.
class Driver {
 public:
  explicit Driver(const char* def) : def_(def_of(def)) {}

  const std::vector<Command>& apply(const Event& e) {
    auto r = advance(def_, state_, e, inputs_, now_);
    EXPECT_TRUE(r.ok()) << r.error().message;
    // Replay from the serialized state: identical state and commands.
    auto restored = State::parse(state_.dump());
    EXPECT_TRUE(restored.ok());
    EXPECT_EQ(*restored, state_);
    auto again = advance(def_, *restored, e, inputs_, now_);
    EXPECT_TRUE(again.ok());
    EXPECT_EQ(again->state, r->state);
    EXPECT_EQ(commands_json(again->commands), commands_json(r->commands));
    auto after = State::parse(r->state.dump());
    EXPECT_TRUE(after.ok());
    EXPECT_EQ(*after, r->state);
    state_ = r->state;
    last_ = r->commands;
    ignored_ = r->ignored;
    return last_;
  }

  const std::vector<Command>& start(Json params = Json::object()) {
    return apply(Event::start(std::move(params)));
  }
  // Finishes the single running child of `task` (no with_items), attempt and run from the state.
  const std::vector<Command>& finish(const std::string& task, ChildStatus status,
                                     Json result = Json::object(), int64_t index = -1) {
    const TaskState& ts = state_.tasks.at(task);
    size_t i = index < 0 ? 0 : static_cast<size_t>(index);
    ChildKey key{task, ts.run, index, ts.slots.at(i).attempt};
    return apply(Event::child_finished(key, status, std::move(result)));
  }
  const std::vector<Command>& ok(const std::string& task, Json result = Json::object()) {
    return finish(task, ChildStatus::kCompleted, std::move(result));
  }

  State state_;
  Definition def_;
  Inputs inputs_;
  int64_t now_ = kNow;
  std::vector<Command> last_;
  std::string ignored_;
};

std::vector<const Command*> of_kind(const std::vector<Command>& cs, CommandKind k) {
  std::vector<const Command*> out;
  for (const Command& c : cs) {
    if (c.kind == k) out.push_back(&c);
  }
  return out;
}

std::vector<std::string> created_tasks(const std::vector<Command>& cs) {
  std::vector<std::string> out;
  for (const Command* c : of_kind(cs, CommandKind::kCreateChild)) out.push_back(c->child.task);
  return out;
}

const Command* finished(const std::vector<Command>& cs) {
  auto f = of_kind(cs, CommandKind::kFinishWorkflow);
  return f.empty() ? nullptr : f.front();
}

using Names = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------

TEST(WorkflowEngine, SequentialTasksPassResultsAlong) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "a", "action": "core.echo", "input": {"msg": "{{ parameters.who }}"},
       "next": [{"when": "{{ succeeded() }}", "do": "b"}]},
      {"name": "b", "action": "core.echo", "input": {"n": "{{ task.a.result.n + 1 }}",
       "direct": "{{ task.a.n }}"}, "timeout": 5, "on_success": "c"},
      {"name": "c", "action": "core.noop"}],
      "output_map": {"b": "{{ tasks.b.result }}"}})");
  auto cs = d.start({{"who", "world"}});
  ASSERT_EQ(created_tasks(cs), Names{"a"});
  EXPECT_EQ(cs[0].input, (Json{{"msg", "world"}}));
  EXPECT_EQ(cs[0].action_ref, "core.echo");
  EXPECT_EQ(cs[0].workflow_task["task_name"], "a");
  EXPECT_EQ(cs[0].workflow_task["retry_count"], 0);

  cs = d.ok("a", {{"n", 41}});
  ASSERT_EQ(created_tasks(cs), Names{"b"});
  EXPECT_EQ(cs[0].input, (Json{{"n", 42}, {"direct", 41}}));
  EXPECT_EQ(cs[0].timeout, 5.0);
  EXPECT_EQ(cs[0].workflow_task["triggered_by"], "a");

  cs = d.ok("b", {{"x", true}});
  ASSERT_EQ(created_tasks(cs), Names{"c"});
  EXPECT_EQ(finished(cs), nullptr);

  cs = d.ok("c");
  ASSERT_NE(finished(cs), nullptr);
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kCompleted);
  EXPECT_EQ(finished(cs)->result, (Json{{"b", {{"x", true}}}}));
  EXPECT_EQ(d.state_.status, WorkflowStatus::kCompleted);

  d.ok("c");  // a redelivered result changes nothing
  EXPECT_EQ(d.ignored_, "workflow already finished");
  EXPECT_TRUE(d.last_.empty());
}

TEST(WorkflowEngine, ParallelBranchesMeetAtAJoin) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"do": ["b", "c"]}]},
      {"name": "b", "action": "x.y", "next": [{"do": "d"}]},
      {"name": "c", "action": "x.y", "next": [{"do": "d"}]},
      {"name": "d", "action": "x.y", "join": 2,
       "input": {"b": "{{ task.b.result.v }}", "c": "{{ task.c.result.v }}"}}]})");
  d.start();
  EXPECT_EQ(created_tasks(d.ok("a")), (Names{"b", "c"}));
  EXPECT_TRUE(created_tasks(d.ok("c", {{"v", 2}})).empty());  // d waits for its second inbound
  auto cs = d.ok("b", {{"v", 1}});
  ASSERT_EQ(created_tasks(cs), Names{"d"});
  EXPECT_EQ(cs[0].input, (Json{{"b", 1}, {"c", 2}}));
  EXPECT_EQ(finished(d.ok("d"))->status, WorkflowStatus::kCompleted);
}

TEST(WorkflowEngine, WithoutJoinATaskRunsOncePerTransition) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "b", "action": "x.y", "next": [{"do": "d"}]},
      {"name": "c", "action": "x.y", "next": [{"do": "d"}]},
      {"name": "d", "action": "x.y"}]})");
  EXPECT_EQ(created_tasks(d.start()), (Names{"b", "c"}));
  EXPECT_EQ(created_tasks(d.ok("b")), Names{"d"});
  EXPECT_TRUE(created_tasks(d.ok("c")).empty());  // d is running: its second run waits
  auto cs = d.ok("d");
  ASSERT_EQ(created_tasks(cs), Names{"d"});
  EXPECT_EQ(cs[0].child.run, 2);
  EXPECT_EQ(cs[0].workflow_task["triggered_by"], "c");
  EXPECT_EQ(finished(d.ok("d"))->status, WorkflowStatus::kCompleted);
}

TEST(WorkflowEngine, DecisionAndLegacyKeys) {
  struct Case {
    const char* name;
    ChildStatus status;
    Json result;
    Names next;
  };
  const char* def = R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "on_success": "ok", "on_failure": "bad",
       "on_timeout": "slow", "on_complete": "always",
       "decision": [{"when": "{{ result().route == 'left' }}", "do": "left"},
                    {"when": "{{ result().route == 'right' }}", "next": "right"},
                    {"default": "other"}]},
      {"name": "ok", "action": "x.y"}, {"name": "bad", "action": "x.y"},
      {"name": "slow", "action": "x.y"}, {"name": "always", "action": "x.y"},
      {"name": "left", "action": "x.y"}, {"name": "right", "action": "x.y"},
      {"name": "other", "action": "x.y"}]})";
  const Case cases[] = {
      {"left", ChildStatus::kCompleted, {{"route", "left"}}, {"ok", "always", "left"}},
      {"right", ChildStatus::kCompleted, {{"route", "right"}}, {"ok", "always", "right"}},
      {"default", ChildStatus::kCompleted, {{"route", "up"}}, {"ok", "always", "other"}},
      {"failed", ChildStatus::kFailed, {{"route", "left"}}, {"bad", "always", "left"}},
      {"abandoned", ChildStatus::kAbandoned, Json(), {"bad", "always", "other"}},
      {"timeout", ChildStatus::kTimeout, Json(), {"slow", "always", "other"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Driver d(def);
    d.start();
    EXPECT_EQ(created_tasks(d.finish("a", c.status, c.result)), c.next);
    EXPECT_EQ(d.state_.status, WorkflowStatus::kRunning);
  }
}

TEST(WorkflowEngine, PublishSetsVariables) {
  Driver d(R"({"version": 1, "vars": {"count": "{{ parameters.start }}", "label": "fixed"},
      "tasks": [
      {"name": "a", "action": "x.y", "next": [
         {"when": "{{ succeeded() }}", "publish": [{"count": "{{ vars.count + result().add }}"},
                                                   "raw"], "do": "b"},
         {"when": "{{ failed() }}", "publish": [{"never": 1}]}]},
      {"name": "b", "action": "x.y", "input": {"c": "{{ workflow.count }}",
       "raw": "{{ variables.raw }}", "label": "{{ vars.label }}"},
       "publish": {"last": "{{ result() }}"}}],
      "output_map": {"count": "{{ vars.count }}", "last": "{{ vars.last }}"}})");
  d.start({{"start", 10}});
  EXPECT_EQ(d.state_.vars, (Json{{"count", 10}, {"label", "fixed"}}));
  auto cs = d.ok("a", {{"add", 5}});
  ASSERT_EQ(created_tasks(cs), Names{"b"});
  EXPECT_EQ(cs[0].input, (Json{{"c", 15}, {"raw", {{"add", 5}}}, {"label", "fixed"}}));
  EXPECT_FALSE(d.state_.vars.contains("never"));
  cs = d.ok("b", "done");
  EXPECT_EQ(finished(cs)->result, (Json{{"count", 15}, {"last", "done"}}));
}

TEST(WorkflowEngine, WithoutOutputMapTheResultIsTheVariables) {
  Driver d(R"({"version": 1, "vars": {"x": 1}, "tasks": [{"name": "a", "action": "x.y",
      "publish": ["out"]}]})");
  d.start();
  EXPECT_EQ(finished(d.ok("a", {{"v", 2}}))->result, (Json{{"x", 1}, {"out", {{"v", 2}}}}));
}

// with_items: all children created up front; `concurrency` run at once; results in item order.
TEST(WorkflowEngine, WithItems) {
  struct Case {
    const char* name;
    Json items;
    int concurrency;
    int batch_size;
  };
  const Case cases[] = {
      {"zero", Json::array(), 1, 0},
      {"one", Json::array({"a"}), 1, 0},
      {"three_mixed_types", Json::array({1, "two", Json{{"three", 3}}}), 1, 0},
      {"ten", Json::array({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 1, 0},
      {"ten_concurrency_2", Json::array({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 2, 0},
      {"ten_unbounded", Json::array({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 10, 0},
      {"ten_batches_of_3", Json::array({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 2, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json def = Json::parse(R"({"version": 1, "tasks": [
        {"name": "each", "action": "core.echo", "with_items": "{{ parameters.items }}",
         "input": {"value": "{{ item }}", "at": "{{ index }}"}, "next": [{"do": "after"}]},
        {"name": "after", "action": "x.y", "input": {"all": "{{ task.each.result }}"}}]})");
    def["tasks"][0]["concurrency"] = c.concurrency;
    if (c.batch_size > 0) def["tasks"][0]["batch_size"] = c.batch_size;
    Driver d(def.dump().c_str());
    auto cs = d.start({{"items", c.items}});
    size_t n =
        c.batch_size > 0 ? (c.items.size() + c.batch_size - 1) / c.batch_size : c.items.size();
    if (n == 0) {  // no children: the task succeeds at once with []
      ASSERT_EQ(created_tasks(cs), Names{"after"});
      EXPECT_EQ(cs[0].input, (Json{{"all", Json::array()}}));
      continue;
    }
    auto creates = of_kind(cs, CommandKind::kCreateChild);
    ASSERT_EQ(creates.size(), n);
    Json expected = Json::array();
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(creates[i]->child.index, static_cast<int64_t>(i));
      EXPECT_EQ(creates[i]->held, static_cast<int>(i) >= c.concurrency);
      Json item = c.items[i];
      if (c.batch_size > 0) {
        item = Json::array();
        for (size_t k = i * c.batch_size; k < std::min(c.items.size(), (i + 1) * c.batch_size);
             ++k) {
          item.push_back(c.items[k]);
        }
        EXPECT_EQ(creates[i]->workflow_task["task_batch"], i);
      }
      EXPECT_EQ(creates[i]->input, (Json{{"value", item}, {"at", i}}));
      expected.push_back(Json{{"i", i}});
    }
    // Finish the running children in reverse order; held ones are released one per finish.
    std::vector<int64_t> running;
    for (size_t i = 0; i < n && static_cast<int>(i) < c.concurrency; ++i) running.push_back(i);
    size_t done = 0;
    while (!running.empty()) {
      int64_t i = running.back();
      running.pop_back();
      cs = d.finish("each", ChildStatus::kCompleted, Json{{"i", i}}, i);
      ++done;
      for (const Command* r : of_kind(cs, CommandKind::kReleaseChild)) {
        running.insert(running.begin(), r->child.index);
      }
      int64_t busy = 0;
      for (const Slot& s : d.state_.tasks["each"].slots) busy += s.status == SlotStatus::kRunning;
      EXPECT_LE(busy, c.concurrency);
    }
    EXPECT_EQ(done, n);
    ASSERT_EQ(created_tasks(cs), Names{"after"});
    EXPECT_EQ(cs.back().input, (Json{{"all", expected}}));
  }
}

TEST(WorkflowEngine, WithItemsFailureStopsReleasingAndFailsTheTask) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "each", "action": "x.y", "with_items": [1, 2, 3, 4], "concurrency": 2,
       "on_failure": "cleanup"},
      {"name": "cleanup", "action": "x.y", "input": {"r": "{{ task.each.result }}"}}]})");
  d.start();
  auto cs = d.finish("each", ChildStatus::kFailed, "boom", 0);
  EXPECT_TRUE(cs.empty());  // item 1 still runs; nothing new is released
  cs = d.finish("each", ChildStatus::kCompleted, "fine", 1);
  auto cancel = of_kind(cs, CommandKind::kCancelChildren);
  ASSERT_EQ(cancel.size(), 1u);
  EXPECT_EQ(cancel[0]->children.size(), 2u);  // the held rows of items 2 and 3
  ASSERT_EQ(created_tasks(cs), Names{"cleanup"});
  EXPECT_EQ(of_kind(cs, CommandKind::kCreateChild)[0]->input,
            (Json{{"r", Json::array({"boom", "fine", nullptr, nullptr})}}));
  EXPECT_EQ(d.state_.tasks["each"].status, TaskStatus::kFailed);
}

TEST(WorkflowEngine, WithItemsMustRenderAList) {
  Driver d(R"({"version": 1, "tasks": [{"name": "each", "action": "x.y",
      "with_items": "{{ parameters.items }}"}]})");
  auto cs = d.start({{"items", "not a list"}});
  ASSERT_NE(finished(cs), nullptr);
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kFailed);
  EXPECT_EQ(finished(cs)->result["result"]["error"], "with_items: expected a list, got string");
}

TEST(WorkflowEngine, RetryBackoffs) {
  struct Case {
    const char* name;
    const char* retry;
    std::vector<int64_t> delays_ms;  // before each retry; 0 = created at once
  };
  const Case cases[] = {
      {"constant", R"({"count": 3, "delay": 2})", {2000, 2000, 2000}},
      {"linear", R"({"count": 3, "delay": 1, "backoff": "linear"})", {1000, 2000, 3000}},
      {"exponential_capped",
       R"({"count": 4, "delay": 1, "backoff": "exponential",
                                  "max_delay": 5})",
       {1000, 2000, 4000, 5000}},
      {"no_delay", R"({"count": 2})", {0, 0}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json def = Json::parse(R"({"version": 1, "tasks": [{"name": "a", "action": "x.y",
        "input": {"p": 1}}]})");
    def["tasks"][0]["retry"] = Json::parse(c.retry);
    Driver d(def.dump().c_str());
    d.start();
    for (size_t n = 0; n < c.delays_ms.size(); ++n) {
      auto cs = d.finish("a", n % 2 ? ChildStatus::kTimeout : ChildStatus::kFailed, "err");
      ASSERT_EQ(finished(cs), nullptr);
      if (c.delays_ms[n] == 0) {
        ASSERT_EQ(created_tasks(cs), Names{"a"});
      } else {
        auto timers = of_kind(cs, CommandKind::kStartTimer);
        ASSERT_EQ(timers.size(), 1u);
        EXPECT_EQ(timers[0]->at_ms, d.now_ + c.delays_ms[n]);
        d.now_ = timers[0]->at_ms;
        cs = d.apply(Event::timer_fired(timers[0]->child));
        ASSERT_EQ(created_tasks(cs), Names{"a"});
      }
      EXPECT_EQ(cs.back().child.attempt, static_cast<int64_t>(n) + 2);
      EXPECT_EQ(cs.back().workflow_task["retry_count"], n + 1);
      EXPECT_EQ(cs.back().input, (Json{{"p", 1}}));
    }
    // Retries used up: the last failure fails the workflow (no transition handles it).
    auto cs = d.finish("a", ChildStatus::kFailed, "err");
    ASSERT_NE(finished(cs), nullptr);
    EXPECT_EQ(finished(cs)->status, WorkflowStatus::kFailed);
  }
}

TEST(WorkflowEngine, RetryUntilSuccessAndOnError) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "retry": {"count": 5, "on_error": "{{ result().code == 1 }}"},
       "on_failure": "b"},
      {"name": "b", "action": "x.y"}]})");
  d.start();
  auto cs = d.finish("a", ChildStatus::kFailed, {{"code", 1}});
  ASSERT_EQ(created_tasks(cs), Names{"a"});  // retried: on_error holds
  cs = d.finish("a", ChildStatus::kFailed, {{"code", 2}});
  EXPECT_EQ(created_tasks(cs), Names{"b"});  // not retried: on_error is false
  EXPECT_EQ(d.state_.tasks["a"].slots[0].attempt, 2);

  Driver ok(R"({"version": 1, "tasks": [{"name": "a", "action": "x.y", "retry": {"count": 3}}]})");
  ok.start();
  ok.finish("a", ChildStatus::kFailed);
  cs = ok.ok("a", "yes");
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kCompleted);
  cs = ok.apply(Event::child_finished(ChildKey{"a", 1, -1, 1}, ChildStatus::kFailed, Json()));
  EXPECT_FALSE(ok.ignored_.empty());
}

TEST(WorkflowEngine, UnhandledFailureFailsTheWorkflowPromptly) {
  for (const char* policy : {"allow_finish", "cancel_running"}) {
    SCOPED_TRACE(policy);
    Json def = Json::parse(R"({"version": 1, "tasks": [
        {"name": "slow", "action": "x.y", "on_success": "never"},
        {"name": "quick", "action": "x.y", "timeout": 2, "on_success": "never"},
        {"name": "never", "action": "x.y"}]})");
    def["cancellation_policy"] = policy;
    Driver d(def.dump().c_str());
    d.start();
    auto cs = d.finish("quick", ChildStatus::kTimeout, Json());
    ASSERT_NE(finished(cs), nullptr);
    EXPECT_EQ(finished(cs)->status, WorkflowStatus::kFailed);
    EXPECT_EQ(finished(cs)->result["task"], "quick");
    EXPECT_EQ(finished(cs)->result["error"], "task 'quick' timed_out and no transition handles it");
    auto cancel = of_kind(cs, CommandKind::kCancelChildren);
    if (std::string(policy) == "cancel_running") {
      ASSERT_EQ(cancel.size(), 1u);
      EXPECT_EQ(cancel[0]->children, (std::vector<ChildKey>{{"slow", 1, -1, 1}}));
    } else {
      EXPECT_TRUE(cancel.empty());  // slow finishes on its own; nothing new starts
    }
    cs = d.ok("slow");
    EXPECT_TRUE(cs.empty());
  }
}

TEST(WorkflowEngine, FailureWithATransitionContinues) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "next": [{"when": "{{ failed() }}", "do": "recover"}]},
      {"name": "b", "action": "x.y"},
      {"name": "recover", "action": "x.y", "input": {"why": "{{ task.a.result.stderr }}"}}]})");
  d.start();
  auto cs = d.finish("a", ChildStatus::kFailed, {{"stderr", "no disk"}});
  ASSERT_EQ(created_tasks(cs), Names{"recover"});
  EXPECT_EQ(cs[0].input, (Json{{"why", "no disk"}}));
  d.ok("b");
  EXPECT_EQ(finished(d.ok("recover"))->status, WorkflowStatus::kCompleted);
}

TEST(WorkflowEngine, NestedWorkflowTaskIsAChildWithTheWorkflowRef) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "sub", "type": "workflow", "action": "pack.inner_flow",
       "input": {"depth": "{{ parameters.depth - 1 }}"}, "permission_set_refs": ["pack.runner"]}],
      "output_map": {"inner": "{{ task.sub.result.value }}"}})");
  auto cs = d.start({{"depth", 3}});
  ASSERT_EQ(created_tasks(cs), Names{"sub"});
  EXPECT_EQ(cs[0].action_ref, "pack.inner_flow");
  EXPECT_EQ(cs[0].input, (Json{{"depth", 2}}));
  EXPECT_EQ(cs[0].permission_set_refs, (std::vector<std::string>{"pack.runner"}));
  cs = d.ok("sub", {{"value", Json::array({1, 2})}});
  EXPECT_EQ(finished(cs)->result, (Json{{"inner", Json::array({1, 2})}}));
}

// T2.1: a chain of nested workflows, each level its own execution and State; every level's
// result is its output_map, which becomes the parent's task result.
Json run_nested_level(int64_t depth, int64_t* levels) {
  ++*levels;
  Driver d(R"({"version": 1, "tasks": [
      {"name": "down", "type": "workflow", "action": "tests.nest",
       "when": "{{ parameters.depth > 0 }}", "input": {"depth": "{{ parameters.depth - 1 }}"}}],
      "output_map": {"depth": "{{ parameters.depth }}", "below": "{{ task.down.result }}"}})");
  auto cs = d.start({{"depth", depth}});
  if (depth > 0) {
    EXPECT_EQ(created_tasks(cs), Names{"down"});
    EXPECT_EQ(cs[0].action_ref, "tests.nest");
    EXPECT_EQ(cs[0].input, (Json{{"depth", depth - 1}}));
    cs = d.ok("down", run_nested_level(depth - 1, levels));
  }
  EXPECT_NE(finished(cs), nullptr);
  return finished(cs) ? finished(cs)->result : Json();
}

TEST(WorkflowEngine, NestedChainsPropagateResultsUp) {
  for (int64_t depth : {2, 3}) {  // 3 and 4 levels
    int64_t levels = 0;
    Json r = run_nested_level(depth, &levels);
    EXPECT_EQ(levels, depth + 1);
    Json expected = {{"depth", 0}, {"below", nullptr}};
    for (int64_t d = 1; d <= depth; ++d) expected = {{"depth", d}, {"below", expected}};
    EXPECT_EQ(r, expected);
  }
}

TEST(WorkflowEngine, ParallelTaskRunsNestedTasksTogether) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "both", "type": "parallel", "tasks": [
         {"name": "x", "action": "x.y"},
         {"name": "y", "action": "x.y", "on_success": "y2"},
         {"name": "y2", "action": "x.y"}],
       "on_success": "after", "on_failure": "cleanup"},
      {"name": "after", "action": "x.y", "input": {"r": "{{ task.both.result }}"}},
      {"name": "cleanup", "action": "x.y"}]})");
  EXPECT_EQ(created_tasks(d.start()), (Names{"x", "y"}));
  EXPECT_EQ(created_tasks(d.ok("y", 2)), Names{"y2"});
  EXPECT_TRUE(d.ok("x", 1).empty());
  auto cs = d.ok("y2", 3);
  ASSERT_EQ(created_tasks(cs), Names{"after"});
  EXPECT_EQ(cs[0].input, (Json{{"r", {{"x", 1}, {"y", 2}, {"y2", 3}}}}));

  Driver f(R"({"version": 1, "tasks": [
      {"name": "both", "type": "parallel", "tasks": [
         {"name": "x", "action": "x.y"}, {"name": "y", "action": "x.y"}],
       "on_failure": "cleanup"},
      {"name": "cleanup", "action": "x.y"}]})");
  f.start();
  EXPECT_TRUE(f.finish("x", ChildStatus::kFailed).empty());  // the failure belongs to `both`
  EXPECT_EQ(created_tasks(f.ok("y")), Names{"cleanup"});
  EXPECT_EQ(f.state_.status, WorkflowStatus::kRunning);
}

TEST(WorkflowEngine, CancelPolicies) {
  for (const char* policy : {"allow_finish", "cancel_running"}) {
    SCOPED_TRACE(policy);
    Json def = Json::parse(R"({"version": 1, "tasks": [
        {"name": "a", "action": "x.y", "on_success": "b"},
        {"name": "each", "action": "x.y", "with_items": [1, 2, 3]},
        {"name": "later", "action": "x.y", "delay": 30},
        {"name": "b", "action": "x.y"}]})");
    def["cancellation_policy"] = policy;
    Driver d(def.dump().c_str());
    d.start();
    auto cs = d.apply(Event::cancel());
    EXPECT_EQ(d.state_.status, WorkflowStatus::kCanceling);
    auto cancel = of_kind(cs, CommandKind::kCancelChildren);
    ASSERT_EQ(cancel.size(), 1u);
    std::vector<ChildKey> expected{{"each", 1, 1, 1}, {"each", 1, 2, 1}};  // held rows
    if (std::string(policy) == "cancel_running") {
      expected = {{"a", 1, -1, 1}, {"each", 1, 0, 1}, {"each", 1, 1, 1}, {"each", 1, 2, 1}};
    }
    EXPECT_EQ(cancel[0]->children, expected);
    EXPECT_EQ(d.state_.tasks["later"].status, TaskStatus::kCancelled);
    d.apply(Event::timer_fired(ChildKey{"later", 1, -1, 0}));
    EXPECT_FALSE(d.ignored_.empty());
    // a succeeding does not start b; the workflow ends once no child runs.
    cs = d.ok("a");
    EXPECT_TRUE(created_tasks(cs).empty());
    EXPECT_EQ(finished(cs), nullptr);
    cs = d.finish("each", ChildStatus::kCancelled, Json(), 0);
    ASSERT_NE(finished(cs), nullptr);
    EXPECT_EQ(finished(cs)->status, WorkflowStatus::kCancelled);
  }
}

TEST(WorkflowEngine, CancelBeforeStartAndWhenIdle) {
  Driver d(R"({"version": 1, "tasks": [{"name": "a", "action": "x.y"}]})");
  auto cs = d.apply(Event::cancel());
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kCancelled);
  d.start();
  EXPECT_EQ(d.ignored_, "already started");
}

TEST(WorkflowEngine, WaitForInquiry) {
  const char* def = R"({"version": 1, "tasks": [
      {"name": "ask", "action": "core.ask", "next": [{"do": "deploy"}]},
      {"name": "deploy", "action": "x.y", "wait_for": {"inquiry": "{{ task.ask.inquiry_id }}"},
       "input": {"approved": "{{ inquiry.deploy.response.approved }}"},
       "next": [{"when": "{{ succeeded() }}", "do": "done"},
                {"when": "{{ timed_out() }}", "do": "expired"}]},
      {"name": "done", "action": "x.y"}, {"name": "expired", "action": "x.y"}]})";
  {
    SCOPED_TRACE("responded");
    Driver d(def);
    d.start();
    auto cs = d.ok("ask", {{"inquiry_id", 77}});
    EXPECT_TRUE(created_tasks(cs).empty());  // no child row while waiting
    auto await = of_kind(cs, CommandKind::kAwaitInquiry);
    ASSERT_EQ(await.size(), 1u);
    EXPECT_EQ(await[0]->inquiry_id, 77);
    cs = d.apply(
        Event::inquiry_resolved("deploy", 1, InquiryOutcome::kResponded, {{"approved", true}}));
    ASSERT_EQ(created_tasks(cs), Names{"deploy"});
    EXPECT_EQ(cs[0].input, (Json{{"approved", true}}));
    EXPECT_EQ(created_tasks(d.ok("deploy")), Names{"done"});
  }
  for (InquiryOutcome o : {InquiryOutcome::kTimeout, InquiryOutcome::kCancelled}) {
    SCOPED_TRACE("timed out");
    Driver d(def);
    d.start();
    d.ok("ask", {{"inquiry_id", 77}});
    auto cs = d.apply(Event::inquiry_resolved("deploy", 1, o, Json()));
    EXPECT_EQ(created_tasks(cs), Names{"expired"});  // deploy never gets a child
    EXPECT_EQ(d.state_.tasks["deploy"].status, TaskStatus::kTimedOut);
    EXPECT_TRUE(d.state_.tasks["deploy"].slots.empty());
    d.apply(Event::inquiry_resolved("deploy", 1, InquiryOutcome::kResponded, Json()));
    EXPECT_FALSE(d.ignored_.empty());
  }
}

TEST(WorkflowEngine, OutputMapPureTemplatesKeepTheirTypes) {
  Driver d(R"({"version": 1, "tasks": [{"name": "a", "action": "x.y"}],
      "output_map": {"count": "{{ task.a.result.count }}", "ratio": "{{ task.a.result.count / 4 }}",
                     "flag": "{{ task.a.result.ok }}", "list": "{{ task.a.result.list }}",
                     "obj": "{{ task.a.result }}", "missing": "{{ task.a.result.nope }}",
                     "text": "n={{ task.a.result.count }}", "nested": {"l": ["{{ parameters.p }}"]},
                     "config": "{{ config.region }}", "secret": "{{ keystore.k }}"}})");
  d.inputs_.config = {{"region", "eu"}};
  d.inputs_.keystore = {{"k", "v"}};
  d.start({{"p", 1.5}});
  Json r = Json{{"count", 3}, {"ok", false}, {"list", Json::array({1, "a"})}};
  auto cs = d.ok("a", r);
  ASSERT_NE(finished(cs), nullptr);
  EXPECT_EQ(finished(cs)->result, (Json{{"count", 3},
                                        {"ratio", 0.75},
                                        {"flag", false},
                                        {"list", Json::array({1, "a"})},
                                        {"obj", r},
                                        {"missing", nullptr},
                                        {"text", "n=3"},
                                        {"nested", {{"l", Json::array({1.5})}}},
                                        {"config", "eu"},
                                        {"secret", "v"}}));
  EXPECT_EQ(d.state_.result, finished(cs)->result);
}

TEST(WorkflowEngine, DelayWhenGuardAndCycles) {
  Driver d(R"({"version": 1, "vars": {"n": 0}, "tasks": [
      {"name": "loop", "action": "x.y", "delay": 1.5,
       "next": [{"publish": [{"n": "{{ vars.n + 1 }}"}]},
                {"when": "{{ vars.n < 3 }}", "do": "loop"},
                {"when": "{{ vars.n >= 3 }}", "do": "maybe"}]},
      {"name": "maybe", "action": "x.y", "when": "{{ parameters.go }}"}]})");
  auto cs = d.start({{"go", false}});
  for (int run = 1; run <= 3; ++run) {
    auto timers = of_kind(cs, CommandKind::kStartTimer);
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_EQ(timers[0]->at_ms, d.now_ + 1500);
    EXPECT_EQ(timers[0]->child, (ChildKey{"loop", run, -1, 0}));
    d.now_ += 1500;
    cs = d.apply(Event::timer_fired(timers[0]->child));
    ASSERT_EQ(created_tasks(cs), Names{"loop"});
    cs = d.ok("loop");
  }
  EXPECT_EQ(d.state_.vars["n"], 3);
  EXPECT_EQ(d.state_.tasks["maybe"].status, TaskStatus::kSkipped);
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kCompleted);
}

TEST(WorkflowEngine, ACycleThatNeverWaitsFailsInsteadOfSpinning) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "with_items": [], "next": [{"do": "a"}]}]})");
  auto cs = d.start();
  ASSERT_NE(finished(cs), nullptr);
  EXPECT_EQ(finished(cs)->status, WorkflowStatus::kFailed);
}

TEST(WorkflowEngine, StaleAndForeignEvents) {
  Driver d(R"({"version": 1, "tasks": [{"name": "a", "action": "x.y"}]})");
  d.start();
  d.apply(Event::child_finished(ChildKey{"a", 1, -1, 2}, ChildStatus::kCompleted, Json()));
  EXPECT_EQ(d.ignored_, "stale attempt of task 'a'");
  d.apply(Event::child_finished(ChildKey{"a", 2, -1, 1}, ChildStatus::kCompleted, Json()));
  EXPECT_EQ(d.ignored_, "stale run of task 'a'");
  d.apply(Event::child_finished(ChildKey{"a", 1, 0, 1}, ChildStatus::kCompleted, Json()));
  EXPECT_EQ(d.ignored_, "no such child of task 'a'");
  auto bad =
      advance(d.def_, d.state_,
              Event::child_finished(ChildKey{"zzz", 1, -1, 1}, ChildStatus::kCompleted, Json()),
              d.inputs_, d.now_);
  EXPECT_FALSE(bad.ok());
}

TEST(WorkflowState, RoundTripsThroughJson) {
  Driver d(R"({"version": 1, "tasks": [
      {"name": "each", "action": "x.y", "with_items": [1, "b", null], "concurrency": 2,
       "retry": {"count": 2, "delay": 1}, "permission_set_refs": "p.s"}]})");
  d.start();
  d.finish("each", ChildStatus::kFailed, {{"e", 1}}, 1);
  State s = d.state_;
  auto back = State::parse(s.dump());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, s);
  EXPECT_EQ(back->tasks["each"].slots[1].status, SlotStatus::kRetryWait);
  EXPECT_EQ(back->tasks["each"].permission_set_refs, Json::array({"p.s"}));
  EXPECT_FALSE(State::parse("{").ok());
  EXPECT_FALSE(State::parse(R"({"status": "dancing", "tasks": {}})").ok());
  EXPECT_FALSE(
      State::parse(R"({"status": "running", "tasks": {"a": {"status": "idle", "run": "x"}}})")
          .ok());
  auto key = ChildKey::from_json(of_kind(d.last_, CommandKind::kStartTimer)[0]->child.to_json());
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, (ChildKey{"each", 1, 1, 2}));
}

// T3.7-style orchestration (branches, a join, publish/vars, a nested workflow, with_items, retry)
// run by a small simulator that completes running children in a random order (seed printed). For
// every order: the result is the same, every event delivered twice changes nothing the second time,
// and replaying the event log from any serialized intermediate state gives the same final state.
namespace sim {

const char* kComplex = R"({"version": "2", "vars": {"hosts": []}, "tasks": [
    {"name": "init", "action": "core.echo", "input": {"env": "{{ parameters.env }}"},
     "publish": [{"hosts": "{{ result().hosts }}"}], "on_success": ["build", "test"]},
    {"name": "build", "type": "workflow", "action": "pack.build_flow",
     "input": {"env": "{{ parameters.env }}"},
     "next": [{"when": "{{ succeeded() }}", "publish": [{"artifact": "{{ result().artifact }}"}],
               "do": ["deploy"]}]},
    {"name": "test", "action": "pack.test", "with_items": "{{ vars.hosts }}", "concurrency": 2,
     "input": {"host": "{{ item }}", "n": "{{ index }}"}, "next": [{"do": "deploy"}]},
    {"name": "deploy", "action": "pack.deploy", "join": "all", "retry": {"count": 1, "delay": 3},
     "input": {"artifact": "{{ vars.artifact }}", "tests": "{{ task.test.result | length }}"},
     "on_success": "notify", "on_failure": "rollback"},
    {"name": "notify", "action": "core.noop", "delay": 1},
    {"name": "rollback", "action": "core.noop"}],
    "output_map": {"artifact": "{{ vars.artifact }}", "tested": "{{ task.test.result }}",
                   "notified": "{{ task.notify.status }}"}})";

struct Outcome {
  Json result;
  std::vector<Event> log;
  std::vector<State> states;  // states[i]: before log[i]
  State final_state;
};

Outcome run(const Definition& def, uint32_t seed) {
  std::mt19937 rng(seed);
  Outcome out;
  State state;
  std::vector<ChildKey> running;
  std::vector<Command> timers;
  int64_t now = kNow;
  std::map<std::string, int> deploy_attempts;
  auto step = [&](const Event& e) {
    out.states.push_back(state);
    out.log.push_back(e);
    auto r = advance(def, state, e, Inputs{}, now);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r->ignored.empty()) << r->ignored;
    // Delivered again: nothing happens.
    auto again = advance(def, r->state, e, Inputs{}, now);
    EXPECT_TRUE(again.ok());
    EXPECT_TRUE(again->commands.empty());
    EXPECT_FALSE(again->ignored.empty());
    EXPECT_EQ(again->state, r->state);
    state = r->state;
    for (const Command& c : r->commands) {
      switch (c.kind) {
        case CommandKind::kCreateChild:
          if (!c.held) running.push_back(c.child);
          break;
        case CommandKind::kReleaseChild:
          running.push_back(c.child);
          break;
        case CommandKind::kStartTimer:
          timers.push_back(c);
          break;
        case CommandKind::kFinishWorkflow:
          out.result = c.result;
          break;
        case CommandKind::kAwaitInquiry:
        case CommandKind::kCancelChildren:
          ADD_FAILURE() << "unexpected " << c.to_json().dump();
          break;
      }
    }
  };
  step(Event::start({{"env", "prod"}}));
  while (!running.empty() || !timers.empty()) {
    if (running.empty()) {  // only timers left: fire the earliest
      auto it =
          std::min_element(timers.begin(), timers.end(),
                           [](const Command& a, const Command& b) { return a.at_ms < b.at_ms; });
      Command t = *it;
      timers.erase(it);
      now = std::max(now, t.at_ms);
      step(Event::timer_fired(t.child));
      continue;
    }
    size_t pick = std::uniform_int_distribution<size_t>(0, running.size() - 1)(rng);
    ChildKey k = running[pick];
    running.erase(running.begin() + static_cast<std::ptrdiff_t>(pick));
    Json result = Json::object();
    ChildStatus status = ChildStatus::kCompleted;
    if (k.task == "init") result = {{"hosts", Json::array({"h1", "h2", "h3"})}};
    if (k.task == "build") result = {{"artifact", "app-1.tgz"}};
    if (k.task == "test") result = {{"host_index", k.index}};
    if (k.task == "deploy" && k.attempt == 1) status = ChildStatus::kFailed;  // retried once
    step(Event::child_finished(k, status, result));
  }
  out.final_state = state;
  return out;
}

}  // namespace sim

TEST(WorkflowProperty, ComplexOrchestrationIsOrderIndependentAndReplayable) {
  const Definition def = def_of(sim::kComplex);
  const uint32_t base = static_cast<uint32_t>(std::random_device{}());
  std::printf("workflow property seed base: %u\n", base);
  Json expected = {
      {"artifact", "app-1.tgz"},
      {"tested", Json::array({{{"host_index", 0}}, {{"host_index", 1}}, {{"host_index", 2}}})},
      {"notified", "succeeded"}};
  for (uint32_t i = 0; i < 20; ++i) {
    const uint32_t seed = base + i;
    SCOPED_TRACE("seed " + std::to_string(seed));
    sim::Outcome o = sim::run(def, seed);
    EXPECT_EQ(o.result, expected);
    EXPECT_EQ(o.final_state.status, WorkflowStatus::kCompleted);
    EXPECT_EQ(o.final_state.tasks.at("deploy").slots.at(0).attempt, 2);
    EXPECT_FALSE(o.final_state.tasks.contains("rollback"));  // never reached
    // Replay the rest of the log from every serialized intermediate state.
    for (size_t cut = 0; cut < o.log.size(); cut += 3) {
      auto restored = State::parse(o.states[cut].dump());
      ASSERT_TRUE(restored.ok());
      State s = *restored;
      int64_t now = kNow;
      for (size_t k = cut; k < o.log.size(); ++k) {
        if (o.log[k].kind == EventKind::kTimerFired) now += 10000;  // time only moves forward
        auto r = advance(def, s, o.log[k], Inputs{}, now);
        ASSERT_TRUE(r.ok());
        s = r->state;
      }
      EXPECT_EQ(s, o.final_state) << "replayed from event " << cut;
    }
  }
}

// Arbitrary (mostly meaningless) events never break the engine: every step either changes
// nothing (and says why) or yields a state that round-trips, and children are only created for
// tasks of the definition.
TEST(WorkflowProperty, RandomEventsKeepTheStateConsistent) {
  const Definition def = def_of(sim::kComplex);
  const uint32_t seed = static_cast<uint32_t>(std::random_device{}());
  std::printf("workflow random events seed: %u\n", seed);
  std::mt19937 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const std::vector<std::string> names = {"init", "build", "test", "deploy", "notify", "rollback"};
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    State state;
    std::vector<ChildKey> seen;  // keys from commands, reused to hit real children often
    for (int n = 0; n < 60; ++n) {
      Event e;
      switch (pick(0, 9)) {
        case 0:
          e = Event::start({{"env", "x"}});
          break;
        case 1:
          e = Event::cancel();
          break;
        case 2: {
          ChildKey k{names[pick(0, 5)], pick(0, 2), pick(-1, 3), pick(0, 2)};
          e = Event::timer_fired(k);
          break;
        }
        case 3:
          e = Event::inquiry_resolved(names[pick(0, 5)], pick(0, 2), InquiryOutcome::kResponded,
                                      Json());
          break;
        default: {
          ChildKey k =
              !seen.empty() && pick(0, 3) > 0
                  ? seen[static_cast<size_t>(pick(0, static_cast<int64_t>(seen.size()) - 1))]
                  : ChildKey{names[pick(0, 5)], pick(0, 2), pick(-1, 3), pick(1, 2)};
          static const ChildStatus kAll[] = {ChildStatus::kCompleted, ChildStatus::kFailed,
                                             ChildStatus::kTimeout, ChildStatus::kCancelled,
                                             ChildStatus::kAbandoned};
          Json result =
              pick(0, 1) ? Json{{"hosts", Json::array({"a", "b"})}, {"artifact", "z"}} : Json();
          e = Event::child_finished(k, kAll[pick(0, 4)], result);
          break;
        }
      }
      auto r = advance(def, state, e, Inputs{}, kNow);
      ASSERT_TRUE(r.ok()) << r.error().message;
      if (!r->ignored.empty()) {
        EXPECT_TRUE(r->commands.empty());
        EXPECT_EQ(r->state, state);
      }
      auto back = State::parse(r->state.dump());
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, r->state);
      for (const Command& c : r->commands) {
        if (c.kind == CommandKind::kCreateChild || c.kind == CommandKind::kStartTimer) {
          EXPECT_NE(def.find(c.child.task), nullptr);
          seen.push_back(c.child);
        }
      }
      state = r->state;
    }
  }
}

}  // namespace
}  // namespace attune::workflow
