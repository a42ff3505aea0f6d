// Benchmarks for attune::expr (issue 3): compiled-criteria evaluations per second on one core,
// plus templates, parameter rendering, array-form conditions and compile cost.
#include <benchmark/benchmark.h>

#include "processors/expr/condition.h"
#include "processors/expr/expr.h"

namespace attune::expr {
namespace {

Json make_event() {
  return Json::parse(R"({"id": 123456789, "trigger": "core.webhook", "trigger_ref": "core.webhook",
    "created": "2026-01-01T00:00:00.000Z",
    "payload": {"priority": 8, "env": "staging", "host": "web-01", "service": "checkout",
                "tags": ["a", "b", "c"], "labels": {"team": "ops", "tier": "1"},
                "message": "disk usage above threshold on /var", "value": 91.5}})");
}

void BM_TypicalCondition(benchmark::State& state) {
  Json event = make_event();
  Scope scope;
  scope.bind("event", &event);
  scope.bind("trigger", &event);
  auto e = Expression::compile(
      "trigger.payload.priority >= 7 and trigger.payload.env in ['prod','staging']");
  if (!e.ok()) return state.SkipWithError(e.error().message.c_str());
  for (auto _ : state) {
    auto r = e->test(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypicalCondition);

// The same condition with a fresh Scope per evaluation, as a rules stage builds it per event.
void BM_TypicalConditionFreshScope(benchmark::State& state) {
  Json event = make_event();
  auto e = Expression::compile(
      "{{ trigger.payload.priority >= 7 and trigger.payload.env in ['prod','staging'] }}");
  if (!e.ok()) return state.SkipWithError(e.error().message.c_str());
  for (auto _ : state) {
    Scope scope;
    scope.bind("event", &event);
    scope.bind("trigger", &event);
    auto r = e->test(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypicalConditionFreshScope);

void BM_NonMatchingCondition(benchmark::State& state) {
  Json event = make_event();
  Scope scope;
  scope.bind("event", &event);
  scope.bind("trigger", &event);
  auto e = Expression::compile("trigger.payload.service == 'billing' and trigger.payload.value > 95");
  if (!e.ok()) return state.SkipWithError(e.error().message.c_str());
  for (auto _ : state) {
    auto r = e->test(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NonMatchingCondition);

void BM_ArrayFormCondition(benchmark::State& state) {
  Json event = make_event();
  Scope scope;
  scope.bind("event", &event);
  auto c = Condition::compile(Json::parse(R"([
      {"field": "priority", "operator": "gte", "value": 7},
      {"field": "env", "operator": "in", "value": ["prod", "staging"]},
      {"field": "labels.team", "operator": "equals", "value": "ops"}])"));
  if (!c.ok()) return state.SkipWithError(c.error().message.c_str());
  for (auto _ : state) {
    auto r = c->matches(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ArrayFormCondition);

void BM_FilterChain(benchmark::State& state) {
  Json event = make_event();
  Scope scope;
  scope.bind("event", &event);
  auto e = Expression::compile(
      "event.payload.host | upper | replace('-', '_') ~ ':' ~ (event.payload.tags | join(','))");
  if (!e.ok()) return state.SkipWithError(e.error().message.c_str());
  for (auto _ : state) {
    auto r = e->evaluate(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FilterChain);

void BM_RenderActionParams(benchmark::State& state) {
  Json event = make_event();
  Json system = {{"timestamp", "2026-01-01T00:00:00.000Z"}, {"rule", {{"ref", "ops.disk"}}}};
  Scope scope;
  scope.bind("event", &event);
  scope.bind("trigger", &event);
  scope.bind("system", &system);
  auto p = CompiledParams::compile(Json::parse(R"({
      "host": "{{ event.payload.host }}",
      "cmd": "echo {{ event.payload.message }} on {{ event.payload.host }}",
      "priority": "{{ event.payload.priority }}",
      "labels": "{{ event.payload.labels }}",
      "static": {"retries": 3, "notify": ["ops@example.com"]},
      "rule": "{{ system.rule.ref }}"})"));
  if (!p.ok()) return state.SkipWithError(p.error().message.c_str());
  for (auto _ : state) {
    auto r = p->render(scope);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RenderActionParams);

void BM_Compile(benchmark::State& state) {
  for (auto _ : state) {
    auto e = Expression::compile(
        "trigger.payload.priority >= 7 and trigger.payload.env in ['prod','staging']");
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Compile);

}  // namespace
}  // namespace attune::expr

BENCHMARK_MAIN();
