// Policies (processors/admission/policy.h, API.md §15): which policy applies to an action, per
// aspect; the retry object and its backoff; admission groups; the Resolver's cache over a real
// DefinitionsTable.
#include "processors/admission/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "topology/definitions_table.h"
#include "topology/embedded_log.h"

namespace attune::admission {
namespace {

// A stored policy object (API.md §7 shape) with the given scope; `extra` sets the aspects.
Json policy(const std::string& ref, const std::string& scope_type, const std::string& scope_ref,
            int64_t priority, Json extra, bool enabled = true) {
  const std::string pack = ref.substr(0, ref.find('.'));
  Json scope = {{"type", scope_type}};
  if (scope_type == "pack") scope["pack_ref"] = scope_ref;
  if (scope_type == "action") {
    scope["action_ref"] = scope_ref;
    scope["pack_ref"] = scope_ref.substr(0, scope_ref.find('.'));
  }
  Json p = {{"id", 1},
            {"ref", ref},
            {"pack_ref", pack},
            {"name", ref.substr(ref.find('.') + 1)},
            {"description", ""},
            {"enabled", enabled},
            {"priority", priority},
            {"scope", std::move(scope)},
            {"concurrency", nullptr},
            {"rate_limit", nullptr},
            {"quotas", Json::array()},
            {"retry", nullptr},
            {"tags", Json::array()}};
  p.update(extra);
  return p;
}

Json concurrency(int64_t limit, const std::string& method = "enqueue",
                 Json parameters = Json::array()) {
  return {{"concurrency", {{"limit", limit}, {"method", method}, {"parameters", parameters}}}};
}
Json rate(int64_t max, int64_t window) {
  return {{"rate_limit", {{"max_executions", max}, {"window_seconds", window}}}};
}
Json quotas(Json list) { return {{"quotas", std::move(list)}}; }
Json quota(const std::string& type, int64_t limit) {
  return {{"quota_type", type}, {"limit", limit}};
}
Json merge(Json a, const Json& b) {
  a.update(b);
  return a;
}

std::vector<JsonPtr> ptrs(const std::vector<Json>& v) {
  std::vector<JsonPtr> out;
  for (const Json& j : v) out.push_back(std::make_shared<const Json>(j));
  return out;
}

// --- resolve(): per aspect, the most specific enabled policy ---------------------------------

struct Want {
  std::optional<int64_t> limit;  // concurrency limit (nullopt: no concurrency)
  bool cancel = false;
  std::vector<std::string> parameters;
  std::optional<std::pair<int64_t, int64_t>> rate;  // max_executions, window_seconds
  std::optional<int64_t> retries;                   // retry.max_retries
  std::optional<Effective::Total> total;
  std::vector<std::string> refs;  // policy_refs, as a set (nullopt-like: empty = not checked)
  bool admits = false;
};

struct ResolveCase {
  const char* name;
  std::vector<Json> policies;
  Want want;
};

TEST(PolicyResolve, Table) {
  const std::string A = "p.a";  // the action resolved in every case, in pack "p"
  // clang-format off
  const std::vector<ResolveCase> cases = {
      {"nothing applies", {}, {}},
      {"global only",
       {policy("g.one", "global", "", 0, concurrency(4))},
       {.limit = 4, .refs = {"g.one"}, .admits = true}},
      {"action beats pack beats global",
       {policy("g.one", "global", "", 100, concurrency(5)),
        policy("p.pk", "pack", "p", 50, concurrency(3)),
        policy("p.ac", "action", A, 0, concurrency(1))},
       {.limit = 1, .refs = {"p.ac"}, .admits = true}},
      {"pack beats global whatever the priority",
       {policy("g.one", "global", "", 100, concurrency(5)),
        policy("p.pk", "pack", "p", -5, concurrency(3))},
       {.limit = 3, .refs = {"p.pk"}, .admits = true}},
      {"action beats pack whatever the priority",
       {policy("p.pk", "pack", "p", 1000, concurrency(3)),
        policy("p.ac", "action", A, -1000, concurrency(9))},
       {.limit = 9, .refs = {"p.ac"}, .admits = true}},
      {"higher priority wins within the action scope",
       {policy("p.low", "action", A, 1, concurrency(2)),
        policy("p.high", "action", A, 5, concurrency(7))},
       {.limit = 7, .refs = {"p.high"}, .admits = true}},
      {"higher priority wins within the pack scope (either order)",
       {policy("p.high", "pack", "p", 5, concurrency(7)),
        policy("p.low", "pack", "p", 1, concurrency(2))},
       {.limit = 7, .refs = {"p.high"}, .admits = true}},
      {"higher priority wins within the global scope",
       {policy("g.low", "global", "", 1, concurrency(2)),
        policy("g.high", "global", "", 2, concurrency(8))},
       {.limit = 8, .refs = {"g.high"}, .admits = true}},
      {"equal priority: the smaller ref",
       {policy("p.zz", "action", A, 3, concurrency(2)),
        policy("p.aa", "action", A, 3, concurrency(6))},
       {.limit = 6, .refs = {"p.aa"}, .admits = true}},
      {"a disabled action policy is ignored",
       {policy("p.ac", "action", A, 0, concurrency(1), /*enabled=*/false),
        policy("g.one", "global", "", 0, concurrency(4))},
       {.limit = 4, .refs = {"g.one"}, .admits = true}},
      {"a disabled higher-priority policy is ignored",
       {policy("p.high", "action", A, 9, concurrency(1), false),
        policy("p.low", "action", A, 1, concurrency(3))},
       {.limit = 3, .refs = {"p.low"}, .admits = true}},
      {"only disabled policies: nothing",
       {policy("g.one", "global", "", 0, merge(concurrency(1), rate(1, 1)), false)},
       {}},
      {"another action's policy is ignored",
       {policy("p.other", "action", "p.b", 0, concurrency(1))},
       {}},
      {"another pack's policy is ignored",
       {policy("q.pk", "pack", "q", 0, concurrency(1))},
       {}},
      {"an action of another pack with the same name is another action",
       {policy("q.ac", "action", "q.a", 0, concurrency(1))},
       {}},
      {"a pack named like the action's prefix only is another pack",
       {policy("pp.pk", "pack", "pp", 0, concurrency(1))},
       {}},
      {"per aspect: a global rate limit and an action concurrency both apply",
       {policy("g.rate", "global", "", 0, rate(10, 60)),
        policy("p.conc", "action", A, 0, concurrency(2))},
       {.limit = 2, .rate = std::pair<int64_t, int64_t>{10, 60}, .refs = {"g.rate", "p.conc"},
        .admits = true}},
      {"per aspect: a more specific policy without the aspect leaves it to others",
       {policy("g.both", "global", "", 0, merge(concurrency(4), rate(5, 30))),
        policy("p.pk", "pack", "p", 0, rate(1, 10))},
       {.limit = 4, .rate = std::pair<int64_t, int64_t>{1, 10}, .refs = {"g.both", "p.pk"},
        .admits = true}},
      {"per aspect: retry from the action, concurrency from the pack",
       {policy("p.pk", "pack", "p", 0, merge(concurrency(3), {{"retry", {{"max_retries", 1}}}})),
        policy("p.ac", "action", A, 0, {{"retry", {{"max_retries", 4}}}})},
       {.limit = 3, .retries = 4, .refs = {"p.pk", "p.ac"}, .admits = true}},
      {"concurrency method and parameters",
       {policy("p.ac", "action", A, 0, concurrency(2, "cancel", {"host", "port"}))},
       {.limit = 2, .cancel = true, .parameters = {"host", "port"}, .refs = {"p.ac"},
        .admits = true}},
      {"rate limit alone admits",
       {policy("g.rate", "global", "", 0, rate(3, 1))},
       {.rate = std::pair<int64_t, int64_t>{3, 1}, .refs = {"g.rate"}, .admits = true}},
      {"retry alone does not admit",
       {policy("g.retry", "global", "", 0, {{"retry", {{"max_retries", 2}}}})},
       {.retries = 2, .refs = {"g.retry"}}},
      {"running_executions quota alone becomes a concurrency limit (enqueue)",
       {policy("p.q", "pack", "p", 0, quotas({quota("running_executions", 3)}))},
       {.limit = 3, .refs = {"p.q"}, .admits = true}},
      {"running_executions quota below the concurrency limit: the quota",
       {policy("p.c", "action", A, 0, concurrency(5)),
        policy("g.q", "global", "", 0, quotas({quota("running_executions", 2)}))},
       {.limit = 2, .refs = {"p.c", "g.q"}, .admits = true}},
      {"running_executions quota above the concurrency limit: the concurrency",
       {policy("g.c", "global", "", 0, concurrency(2)),
        policy("p.q", "action", A, 0, quotas({quota("running_executions", 5)}))},
       {.limit = 2, .refs = {"g.c", "p.q"}, .admits = true}},
      {"running_executions quota keeps the concurrency's grouping",
       {policy("p.c", "action", A, 0,
               merge(concurrency(5, "enqueue", {"host"}),
                     quotas({quota("running_executions", 1)})))},
       {.limit = 1, .parameters = {"host"}, .refs = {"p.c"}, .admits = true}},
      {"running_executions quotas resolve like an aspect: the action's wins",
       {policy("g.q", "global", "", 0, quotas({quota("running_executions", 1)})),
        policy("p.q", "action", A, 0, quotas({quota("running_executions", 6)}))},
       {.limit = 6, .refs = {"p.q"}, .admits = true}},
      {"executions_total of a pack policy: scope pack/p",
       {policy("p.t", "pack", "p", 0, quotas({quota("executions_total", 10)}))},
       {.total = Effective::Total{10, "pack", "p"}, .refs = {"p.t"}}},
      {"executions_total of a global policy: scope global/\"\"",
       {policy("g.t", "global", "", 0, quotas({quota("executions_total", 7)}))},
       {.total = Effective::Total{7, "global", ""}, .refs = {"g.t"}}},
      {"executions_total of an action policy beats the global one; limit 0 allowed",
       {policy("g.t", "global", "", 9, quotas({quota("executions_total", 7)})),
        policy("p.t", "action", A, 0, quotas({quota("executions_total", 0)}))},
       {.total = Effective::Total{0, "action", A}, .refs = {"p.t"}}},
      {"both quota types in one policy",
       {policy("p.t", "pack", "p", 0,
               quotas({quota("executions_total", 100), quota("running_executions", 4)}))},
       {.limit = 4, .total = Effective::Total{100, "pack", "p"}, .refs = {"p.t"}, .admits = true}},
  };
  // clang-format on
  for (const ResolveCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Effective e = resolve(ptrs(c.policies), A, "p");
    const Want& w = c.want;
    ASSERT_EQ(e.concurrency.has_value(), w.limit.has_value());
    if (w.limit) {
      EXPECT_EQ(e.concurrency->limit, *w.limit);
      EXPECT_EQ(e.concurrency->cancel, w.cancel);
      EXPECT_EQ(e.concurrency->parameters, w.parameters);
    }
    ASSERT_EQ(e.rate_limit.has_value(), w.rate.has_value());
    if (w.rate) {
      EXPECT_EQ(e.rate_limit->max_executions, w.rate->first);
      EXPECT_EQ(e.rate_limit->window_seconds, w.rate->second);
    }
    ASSERT_EQ(e.retry.has_value(), w.retries.has_value());
    if (w.retries) {
      EXPECT_EQ(e.retry->max_retries, *w.retries);
    }
    ASSERT_EQ(e.executions_total.has_value(), w.total.has_value());
    if (w.total) {
      EXPECT_EQ(e.executions_total->limit, w.total->limit);
      EXPECT_EQ(e.executions_total->scope_type, w.total->scope_type);
      EXPECT_EQ(e.executions_total->scope_ref, w.total->scope_ref);
    }
    std::vector<std::string> got = e.policy_refs, want = w.refs;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
    EXPECT_EQ(e.admits(), w.admits);
  }
}

// The result does not depend on the order the policies are listed in.
TEST(PolicyResolve, OrderOfTheListDoesNotMatter) {
  std::vector<Json> ps = {policy("g.c", "global", "", 3, concurrency(9)),
                          policy("p.c1", "pack", "p", 1, concurrency(5)),
                          policy("p.c2", "pack", "p", 2, concurrency(4)),
                          policy("p.r", "action", "p.a", 0, rate(2, 5)),
                          policy("p.z", "action", "p.a", 0, concurrency(8), false),
                          policy("p.q", "global", "", 0, quotas({quota("running_executions", 6)}))};
  std::mt19937 rng(20261207);
  for (int i = 0; i < 50; ++i) {
    std::shuffle(ps.begin(), ps.end(), rng);
    const Effective e = resolve(ptrs(ps), "p.a", "p");
    ASSERT_TRUE(e.concurrency);
    EXPECT_EQ(e.concurrency->limit, 4);
    ASSERT_TRUE(e.rate_limit);
    EXPECT_EQ(e.rate_limit->max_executions, 2);
  }
}

// Stored objects that are not in the normalised shape (an older build's, a hand-written record)
// are skipped aspect by aspect, never fatal.
TEST(PolicyResolve, MalformedStoredPoliciesAreSkipped) {
  const std::vector<std::pair<const char*, Json>> bad = {
      {"not an object", Json::array({1, 2})},
      {"concurrency limit 0", policy("p.c0", "action", "p.a", 0, concurrency(0))},
      {"concurrency limit negative", policy("p.cn", "action", "p.a", 0, concurrency(-3))},
      {"concurrency limit a string",
       policy("p.cs", "action", "p.a", 0, {{"concurrency", {{"limit", "2"}}}})},
      {"concurrency not an object", policy("p.cx", "action", "p.a", 0, {{"concurrency", 3}})},
      {"rate without window",
       policy("p.r", "action", "p.a", 0, {{"rate_limit", {{"max_executions", 1}}}})},
      {"rate window 0", policy("p.r0", "action", "p.a", 0, rate(1, 0))},
      {"quotas not an array", policy("p.q", "action", "p.a", 0, {{"quotas", {{"limit", 1}}}})},
      {"quota without limit",
       policy("p.q2", "action", "p.a", 0, quotas({{{"quota_type", "running_executions"}}}))},
      {"running quota 0",
       policy("p.q0", "action", "p.a", 0, quotas({quota("running_executions", 0)}))},
      {"executions_total negative",
       policy("p.qt", "action", "p.a", 0, quotas({quota("executions_total", -1)}))},
      {"retry invalid", policy("p.rt", "action", "p.a", 0, {{"retry", {{"backoff", "never"}}}})},
      {"scope not an object (global)",
       merge(policy("g.s", "global", "", 0, Json::object()), {{"scope", "x"}})},
  };
  for (const auto& [name, p] : bad) {
    SCOPED_TRACE(name);
    std::vector<JsonPtr> list = ptrs({p, policy("g.ok", "global", "", 0, concurrency(7))});
    list.push_back(nullptr);
    Effective e;
    ASSERT_NO_THROW(e = resolve(list, "p.a", "p"));
    ASSERT_TRUE(e.concurrency);
    EXPECT_EQ(e.concurrency->limit, 7);  // the global one: the broken aspect was skipped
    EXPECT_FALSE(e.rate_limit);
    EXPECT_FALSE(e.retry);
    EXPECT_FALSE(e.executions_total);
  }
}

// Wrongly typed scalar fields of a stored object: not fatal either.
TEST(PolicyResolve, WronglyTypedFieldsAreNotFatal) {
  const std::vector<std::pair<const char*, Json>> odd = {
      {"enabled null",
       merge(policy("p.e", "action", "p.a", 0, concurrency(2)), {{"enabled", nullptr}})},
      {"enabled a string",
       merge(policy("p.e", "action", "p.a", 0, concurrency(2)), {{"enabled", "yes"}})},
      {"priority a string",
       merge(policy("p.p", "action", "p.a", 0, concurrency(2)), {{"priority", "9"}})},
      {"ref missing",
       [] {
         Json p = policy("p.r", "action", "p.a", 0, concurrency(2));
         p.erase("ref");
         return p;
       }()},
  };
  for (const auto& [name, p] : odd) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW((void)resolve(ptrs({p}), "p.a", "p"));
  }
}

// --- parse_retry -----------------------------------------------------------------------------

TEST(ParseRetry, DefaultsForAnEmptyObject) {
  auto r = parse_retry(Json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->max_retries, 0);
  EXPECT_TRUE(r->on_failed);
  EXPECT_TRUE(r->on_timeout);
  EXPECT_EQ(r->backoff, Backoff::kExponential);
  EXPECT_DOUBLE_EQ(r->delay_seconds, 1);
  EXPECT_DOUBLE_EQ(r->max_delay_seconds, 300);
  EXPECT_EQ(r->to_json(), (Json{{"max_retries", 0},
                                {"on", {"failed", "timeout"}},
                                {"backoff", "exponential"},
                                {"delay_seconds", 1.0},
                                {"max_delay_seconds", 300.0}}));
}

TEST(ParseRetry, ValidValues) {
  struct Case {
    Json in;
    int64_t max_retries;
    bool on_failed, on_timeout;
    Backoff backoff;
    double delay, max_delay;
  };
  // clang-format off
  const std::vector<Case> cases = {
      {{{"max_retries", 0}}, 0, true, true, Backoff::kExponential, 1, 300},
      {{{"max_retries", 100}}, 100, true, true, Backoff::kExponential, 1, 300},
      {{{"max_retries", 3}, {"on", Json::array()}}, 3, false, false, Backoff::kExponential, 1, 300},
      {{{"on", {"failed"}}}, 0, true, false, Backoff::kExponential, 1, 300},
      {{{"on", {"timeout"}}}, 0, false, true, Backoff::kExponential, 1, 300},
      {{{"on", {"timeout", "failed"}}}, 0, true, true, Backoff::kExponential, 1, 300},
      {{{"on", {"failed", "failed"}}}, 0, true, false, Backoff::kExponential, 1, 300},
      {{{"backoff", "constant"}}, 0, true, true, Backoff::kConstant, 1, 300},
      {{{"backoff", "linear"}}, 0, true, true, Backoff::kLinear, 1, 300},
      {{{"backoff", "exponential"}}, 0, true, true, Backoff::kExponential, 1, 300},
      {{{"delay_seconds", 0}}, 0, true, true, Backoff::kExponential, 0, 300},
      {{{"delay_seconds", 0.25}, {"max_delay_seconds", 2.5}}, 0, true, true,
       Backoff::kExponential, 0.25, 2.5},
      {{{"max_delay_seconds", 0}}, 0, true, true, Backoff::kExponential, 1, 0},
      {{{"delay_seconds", 604800}, {"max_delay_seconds", 604800}}, 0, true, true,
       Backoff::kExponential, 604800, 604800},
      {{{"max_retries", 5},
        {"on", {"failed"}},
        {"backoff", "linear"},
        {"delay_seconds", 2},
        {"max_delay_seconds", 60}},
       5, true, false, Backoff::kLinear, 2, 60},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in.dump());
    auto r = parse_retry(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->max_retries, c.max_retries);
    EXPECT_EQ(r->on_failed, c.on_failed);
    EXPECT_EQ(r->on_timeout, c.on_timeout);
    EXPECT_EQ(r->backoff, c.backoff);
    EXPECT_DOUBLE_EQ(r->delay_seconds, c.delay);
    EXPECT_DOUBLE_EQ(r->max_delay_seconds, c.max_delay);
    // to_json() is the normalised object: it parses back to the same spec.
    auto again = parse_retry(r->to_json());
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->to_json(), r->to_json());
  }
}

TEST(ParseRetry, ErrorsNameTheField) {
  struct Case {
    Json in;
    std::string prefix;  // the message starts with this
  };
  // clang-format off
  const std::vector<Case> cases = {
      {{{"max_retries", -1}}, "retry.max_retries: "},
      {{{"max_retries", 101}}, "retry.max_retries: "},
      {{{"max_retries", 1.5}}, "retry.max_retries: "},
      {{{"max_retries", "3"}}, "retry.max_retries: "},
      {{{"max_retries", nullptr}}, "retry.max_retries: "},
      {{{"on", "failed"}}, "retry.on: "},
      {{{"on", {"failed", "succeeded"}}}, "retry.on: "},
      {{{"on", {1}}}, "retry.on: "},
      {{{"backoff", "quadratic"}}, "retry.backoff: "},
      {{{"backoff", 2}}, "retry.backoff: "},
      {{{"backoff", "Linear"}}, "retry.backoff: "},
      {{{"delay_seconds", -1}}, "retry.delay_seconds: "},
      {{{"delay_seconds", "1"}}, "retry.delay_seconds: "},
      {{{"delay_seconds", 604801}}, "retry.delay_seconds: "},
      {{{"max_delay_seconds", -0.5}}, "retry.max_delay_seconds: "},
      {{{"max_delay_seconds", true}}, "retry.max_delay_seconds: "},
      // The first bad field is named even when others are fine.
      {{{"max_retries", 2}, {"backoff", "never"}}, "retry.backoff: "},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in.dump());
    auto r = parse_retry(c.in);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kValidation);
    EXPECT_EQ(r.error().message.rfind(c.prefix, 0), 0u) << r.error().message;
  }
  // The documented message of a bad backoff.
  auto b = parse_retry({{"backoff", "x"}});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "retry.backoff: must be one of constant, linear, exponential");
}

TEST(ParseRetry, TheCallerNamesTheField) {
  auto r = parse_retry({{"backoff", "x"}}, "body.retry");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("body.retry.backoff: ", 0), 0u) << r.error().message;
  auto n = parse_retry(Json::array(), "body.retry");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("body.retry"), std::string::npos) << n.error().message;
  for (const Json& not_object : {Json(nullptr), Json(3), Json("x"), Json::array()}) {
    EXPECT_FALSE(parse_retry(not_object).ok()) << not_object.dump();
  }
}

// --- backoff_delay_ms ------------------------------------------------------------------------

TEST(BackoffDelay, Table) {
  auto spec = [](Backoff b, double d, double max = 300) {
    RetrySpec r;
    r.backoff = b;
    r.delay_seconds = d;
    r.max_delay_seconds = max;
    return r;
  };
  struct Case {
    const char* name;
    RetrySpec r;
    int64_t n;
    int64_t want_ms;
  };
  const Backoff C = Backoff::kConstant, L = Backoff::kLinear, E = Backoff::kExponential;
  // clang-format off
  const std::vector<Case> cases = {
      {"constant n=1", spec(C, 2), 1, 2000},
      {"constant n=2", spec(C, 2), 2, 2000},
      {"constant n=50", spec(C, 2), 50, 2000},
      {"constant capped", spec(C, 10, 4), 1, 4000},
      {"linear n=1", spec(L, 2), 1, 2000},
      {"linear n=2", spec(L, 2), 2, 4000},
      {"linear n=3", spec(L, 2), 3, 6000},
      {"linear n=100", spec(L, 2), 100, 200000},
      {"linear capped", spec(L, 100), 4, 300000},
      {"linear exactly at the cap", spec(L, 100), 3, 300000},
      {"exponential n=1", spec(E, 1), 1, 1000},
      {"exponential n=2", spec(E, 1), 2, 2000},
      {"exponential n=3", spec(E, 1), 3, 4000},
      {"exponential n=9", spec(E, 1), 9, 256000},
      {"exponential n=10 capped", spec(E, 1), 10, 300000},
      {"exponential d=3 n=4", spec(E, 3), 4, 24000},
      {"exponential huge n stays capped", spec(E, 1), 100, 300000},
      {"exponential n=1000 stays capped", spec(E, 1), 1000, 300000},
      {"fractional constant", spec(C, 1.5), 3, 1500},
      {"fractional linear", spec(L, 0.25), 3, 750},
      {"fractional exponential n=1", spec(E, 0.5), 1, 500},
      {"fractional exponential n=3", spec(E, 0.5), 3, 2000},
      {"milliseconds", spec(C, 0.001), 1, 1},
      {"fractional cap", spec(E, 1, 2.5), 5, 2500},
      {"zero delay", spec(E, 0), 7, 0},
      {"zero cap", spec(L, 5, 0), 2, 0},
      {"one week", spec(C, 604800, 604800), 1, 604800000},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(backoff_delay_ms(c.r, c.n), c.want_ms);
  }
}

TEST(BackoffDelay, DefaultsAreExponentialFromOneSecond) {
  const RetrySpec r;
  EXPECT_EQ(backoff_delay_ms(r, 1), 1000);
  EXPECT_EQ(backoff_delay_ms(r, 2), 2000);
  EXPECT_EQ(backoff_delay_ms(r, 8), 128000);
  EXPECT_EQ(backoff_delay_ms(r, 9), 256000);
  EXPECT_EQ(backoff_delay_ms(r, 10), 300000);
  // Never decreasing in n (for every backoff).
  for (Backoff b : {Backoff::kConstant, Backoff::kLinear, Backoff::kExponential}) {
    RetrySpec s;
    s.backoff = b;
    s.delay_seconds = 0.7;
    int64_t last = 0;
    for (int64_t n = 1; n <= 100; ++n) {
      const int64_t d = backoff_delay_ms(s, n);
      EXPECT_GE(d, last) << n;
      EXPECT_LE(d, 300000) << n;
      last = d;
    }
  }
}

// --- retries_on -------------------------------------------------------------------------------

TEST(RetriesOn, Table) {
  struct Case {
    Json on;  // null: default
    const char* status;
    bool want;
  };
  // clang-format off
  const std::vector<Case> cases = {
      {nullptr, "failed", true},           {nullptr, "timeout", true},
      {nullptr, "completed", false},       {nullptr, "succeeded", false},
      {nullptr, "cancelled", false},       {nullptr, "abandoned", false},
      {nullptr, "", false},                {Json::array({"failed"}), "failed", true},
      {Json::array({"failed"}), "timeout", false}, {Json::array({"timeout"}), "failed", false},
      {Json::array({"timeout"}), "timeout", true}, {Json::array(), "failed", false},
      {Json::array(), "timeout", false},   {Json::array({"failed", "timeout"}), "timeout", true},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.on.dump() + " " + c.status);
    Json in = Json::object();
    if (!c.on.is_null()) in["on"] = c.on;
    auto r = parse_retry(in);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(retries_on(*r, c.status), c.want);
  }
}

// --- group_key --------------------------------------------------------------------------------

TEST(GroupKey, Table) {
  struct Case {
    const char* name;
    std::vector<std::string> parameters;
    Json config;
    std::string want;
  };
  // clang-format off
  const std::vector<Case> cases = {
      {"no parameters", {}, {{"host", "a"}}, ""},
      {"no parameters, no config", {}, nullptr, ""},
      {"one value", {"host"}, {{"host", "a"}, {"port", 1}}, R"(["a"])"},
      {"values in the parameters' order", {"port", "host"}, {{"host", "a"}, {"port", 1}},
       R"([1,"a"])"},
      {"absent ⇒ null", {"host", "user"}, {{"host", "a"}}, R"(["a",null])"},
      {"explicit null", {"host"}, {{"host", nullptr}}, R"([null])"},
      {"config not an object", {"host"}, nullptr, R"([null])"},
      {"config an array", {"host"}, Json::array({1}), R"([null])"},
      {"structured value", {"target"}, {{"target", {{"b", 2}, {"a", 1}}}},
       R"([{"a":1,"b":2}])"},
      {"string vs number differ", {"x"}, {{"x", "1"}}, R"(["1"])"},
      {"number", {"x"}, {{"x", 1}}, R"([1])"},
  };
  // clang-format on
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ConcurrencySpec spec;
    spec.parameters = c.parameters;
    EXPECT_EQ(group_key(spec, c.config), c.want);
  }
  // Parameters that are not grouped by do not split groups.
  ConcurrencySpec host;
  host.parameters = {"host"};
  EXPECT_EQ(group_key(host, {{"host", "a"}, {"n", 1}}), group_key(host, {{"n", 2}, {"host", "a"}}));
  EXPECT_NE(group_key(host, {{"host", "a"}}), group_key(host, {{"host", "b"}}));
  EXPECT_NE(group_key(host, {{"host", "a"}}), group_key(ConcurrencySpec{}, {{"host", "a"}}));
}

// --- Resolver over a real DefinitionsTable ---------------------------------------------------

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-policy-" + std::to_string(std::random_device{}()));
    state::DbOptions o;
    o.append_stores = {std::string(EmbeddedLog::kLogStore)};
    auto db = state::Db::open(dir_.string(), o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    table_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(table_->start().ok());
  }
  void TearDown() override {
    if (table_) table_->stop();
    table_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void put(Json p) {
    p["id"] = ++id_;
    const uint64_t before = table_->version();
    ASSERT_TRUE(log_->produce({definition_record(kPolicyKind, p, 0, "test")}).ok());
    ASSERT_GT(table_->version(), before);  // the embedded log applies it before answering
  }
  void remove(const std::string& ref) {
    const uint64_t before = table_->version();
    ASSERT_TRUE(log_->produce({definition_tombstone(kPolicyKind, ref, 0, 0, "test")}).ok());
    ASSERT_GT(table_->version(), before);
  }
  std::optional<int64_t> limit(Resolver& r, const std::string& action) {
    const Effective& e = r.of(action);
    return e.concurrency ? std::optional<int64_t>(e.concurrency->limit) : std::nullopt;
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> table_;
  int64_t id_ = 0;
};

TEST_F(ResolverTest, FollowsTheTable) {
  Resolver r(*table_);
  EXPECT_EQ(limit(r, "p.a"), std::nullopt);
  EXPECT_FALSE(r.of("p.a").admits());

  put(policy("p.lim", "action", "p.a", 0, concurrency(2)));
  EXPECT_EQ(limit(r, "p.a"), 2);
  EXPECT_EQ(limit(r, "p.b"), std::nullopt);
  const Effective* cached = &r.of("p.a");
  EXPECT_EQ(&r.of("p.a"), cached);  // unchanged table: the cached answer

  put(policy("p.lim", "action", "p.a", 0, concurrency(5)));  // updated
  EXPECT_EQ(limit(r, "p.a"), 5);

  // A change of an unrelated definition kind also moves the version: still right.
  ASSERT_TRUE(
      log_->produce({definition_record("action", {{"id", 99}, {"ref", "p.a"}}, 0, "t")}).ok());
  EXPECT_EQ(limit(r, "p.a"), 5);

  put(policy("p.lim", "action", "p.a", 0, concurrency(5), /*enabled=*/false));  // disabled
  EXPECT_EQ(limit(r, "p.a"), std::nullopt);

  put(policy("p.lim", "action", "p.a", 0, concurrency(3)));
  EXPECT_EQ(limit(r, "p.a"), 3);
  remove("p.lim");
  EXPECT_EQ(limit(r, "p.a"), std::nullopt);
}

TEST_F(ResolverTest, PackOfTheActionFromItsRef) {
  put(policy("p.pk", "pack", "p", 0, concurrency(4)));
  put(policy("g.rate", "global", "", 0, rate(1, 60)));
  Resolver r(*table_);
  EXPECT_EQ(limit(r, "p.a"), 4);
  EXPECT_EQ(limit(r, "p.b"), 4);
  EXPECT_EQ(limit(r, "q.a"), std::nullopt);
  EXPECT_EQ(limit(r, "pp.a"), std::nullopt);
  EXPECT_TRUE(r.of("q.a").rate_limit.has_value());
  EXPECT_TRUE(r.of("q.a").admits());
  // A new action policy for one action of the pack only.
  put(policy("p.one", "action", "p.b", 0, concurrency(1)));
  EXPECT_EQ(limit(r, "p.a"), 4);
  EXPECT_EQ(limit(r, "p.b"), 1);
}

// Many actions: the cache keeps answering right past its size bound.
TEST_F(ResolverTest, ManyActions) {
  put(policy("p.pk", "pack", "p", 0, concurrency(4)));
  Resolver r(*table_);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 10000; ++i) {
      ASSERT_EQ(limit(r, "p.a" + std::to_string(i)), 4) << i;
      ASSERT_EQ(limit(r, "q.a" + std::to_string(i)), std::nullopt) << i;
    }
  }
}

}  // namespace
}  // namespace attune::admission
