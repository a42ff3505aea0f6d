// Unit tests of the executor's decisions: the transition table for every (status, input) pair,
// requests (dispatch, disabled rules, missing actions), results (stale, duplicate) and cancels.
#include <gtest/gtest.h>

#include <map>

#include "processors/executor/decisions.h"

namespace attune::executor {
namespace {

using S = ExecutionStatus;
using I = ExecutionInput;

TEST(TransitionTable, EveryStatusAndInput) {
  // Every applicable pair; all others must be rejected (nullopt).
  const std::map<std::pair<S, I>, S> expected = {
      {{S::kRequested, I::kSchedule}, S::kScheduling},
      {{S::kRequested, I::kCancel}, S::kCancelled},
      {{S::kScheduling, I::kHandOff}, S::kScheduled},
      {{S::kScheduling, I::kDispatchFailed}, S::kFailed},
      {{S::kScheduling, I::kCancel}, S::kCancelled},
      {{S::kScheduled, I::kRunning}, S::kRunning},
      {{S::kScheduled, I::kCompleted}, S::kCompleted},
      {{S::kScheduled, I::kFailed}, S::kFailed},
      {{S::kScheduled, I::kTimeout}, S::kTimeout},
      {{S::kScheduled, I::kCancelled}, S::kCancelled},
      {{S::kScheduled, I::kAbandoned}, S::kAbandoned},
      {{S::kScheduled, I::kCancel}, S::kCanceling},
      {{S::kRunning, I::kCompleted}, S::kCompleted},
      {{S::kRunning, I::kFailed}, S::kFailed},
      {{S::kRunning, I::kTimeout}, S::kTimeout},
      {{S::kRunning, I::kCancelled}, S::kCancelled},
      {{S::kRunning, I::kAbandoned}, S::kAbandoned},
      {{S::kRunning, I::kCancel}, S::kCanceling},
      {{S::kCanceling, I::kRunning}, S::kCanceling},
      {{S::kCanceling, I::kCompleted}, S::kCancelled},
      {{S::kCanceling, I::kFailed}, S::kCancelled},
      {{S::kCanceling, I::kTimeout}, S::kCancelled},
      {{S::kCanceling, I::kCancelled}, S::kCancelled},
      {{S::kCanceling, I::kAbandoned}, S::kCancelled},
      {{S::kScheduled, I::kRetry}, S::kScheduled},
      {{S::kRunning, I::kRetry}, S::kScheduled},
  };
  int checked = 0;
  for (S s : kAllStatuses) {
    for (I in : kAllInputs) {
      const auto got = transition(s, in);
      auto it = expected.find({s, in});
      if (it == expected.end()) {
        EXPECT_FALSE(got.has_value())
            << to_string(s) << " + " << to_string(in) << " → " << to_string(*got);
      } else {
        ASSERT_TRUE(got.has_value()) << to_string(s) << " + " << to_string(in);
        EXPECT_EQ(*got, it->second) << to_string(s) << " + " << to_string(in);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 110);
  for (S s : kAllStatuses) {
    EXPECT_EQ(parse_status(to_string(s)), s);
    if (is_terminal(s)) {
      for (I in : kAllInputs) EXPECT_FALSE(transition(s, in).has_value()) << to_string(s);
    }
  }
}

constexpr int64_t kNow = 1767225600000;

struct Defs {
  std::map<std::string, JsonPtr> objects;
  void put(const std::string& kind, Json o) {
    const std::string key = kind + ":" + o["ref"].get<std::string>();
    objects[key] = std::make_shared<const Json>(std::move(o));
  }
  DefinitionLookup lookup() const {
    return [this](std::string_view kind, std::string_view ref) -> JsonPtr {
      auto it = objects.find(std::string(kind) + ":" + std::string(ref));
      return it == objects.end() ? nullptr : it->second;
    };
  }
};

Json request(int64_t id, bool for_rule = true) {
  Json r = {{"id", id},
            {"action", 2},
            {"action_ref", "p.act"},
            {"config", {{"x", 1}}},
            {"env_vars", Json::object()},
            {"parent", nullptr},
            {"status", "requested"},
            {"created", "2026-01-01T00:00:00.000Z"}};
  if (for_rule) {
    r["enforcement"] = 50;
    r["rule"] = 4;
    r["rule_ref"] = "p.rule";
    r["trigger_ref"] = "p.trig";
  }
  return r;
}

std::vector<Envelope> parse(const std::vector<OutRecord>& records) {
  std::vector<Envelope> out;
  for (const auto& r : records) {
    Envelope e;
    std::string err;
    EXPECT_TRUE(Envelope::parse(r.value, e, err)) << err;
    out.push_back(std::move(e));
  }
  return out;
}

class ExecutorDecisions : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_.put("rule", {{"ref", "p.rule"}, {"id", 4}, {"enabled", true}});
    defs_.put("action", {{"ref", "p.act"}, {"id", 2}, {"enabled", true}, {"entrypoint", "true"}});
  }
  ExecutionState scheduled() {
    auto out = on_requested(std::nullopt, request(7), 7, defs_.lookup(), kNow);
    EXPECT_TRUE(out.ok());
    return *out->state;
  }
  Defs defs_;
};

TEST_F(ExecutorDecisions, RequestIsScheduledAndDispatched) {
  auto out = on_requested(std::nullopt, request(7), 7, defs_.lookup(), kNow);
  ASSERT_TRUE(out.ok());
  auto recs = parse(out->records);
  ASSERT_EQ(recs.size(), 5u);
  const std::vector<std::pair<std::string, Json>> steps = {
      {"requested", nullptr}, {"scheduling", "requested"}, {"scheduled", "scheduling"}};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out->records[i].topic, topics::kExecutions);
    EXPECT_EQ(out->records[i].key, "7");
    EXPECT_EQ(recs[i].type, "execution.updated");
    EXPECT_EQ(recs[i].payload["status"], steps[i].first);
    EXPECT_EQ(recs[i].payload["old_status"], steps[i].second);
    EXPECT_EQ(recs[i].payload["pack_ref"], "p");
    EXPECT_EQ(recs[i].payload["attempt"], 1);
  }
  EXPECT_EQ(out->records[3].topic, topics::kDispatch);
  EXPECT_EQ(recs[3].type, "execution.dispatch");
  EXPECT_EQ(recs[3].payload["attempt"], 1);
  EXPECT_EQ(recs[3].payload["action"]["entrypoint"], "true");
  EXPECT_EQ(out->records[4].topic, topics::kEnforcements);
  EXPECT_EQ(out->records[4].key, "p.rule");
  EXPECT_EQ(recs[4].type, "enforcement.updated");
  EXPECT_EQ(recs[4].payload["status"], "processed");
  EXPECT_EQ(recs[4].payload["id"], 50);
  EXPECT_TRUE(recs[4].payload["resolved_at"].is_string());
  EXPECT_EQ(out->state->status(), S::kScheduled);
  EXPECT_TRUE(out->terminal.empty());

  // Redelivered request: nothing new.
  auto again = on_requested(out->state, request(7), 7, defs_.lookup(), kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->records.empty());
  EXPECT_FALSE(again->state.has_value());
  EXPECT_FALSE(again->ignored.empty());
}

TEST_F(ExecutorDecisions, ManualExecutionHasNoEnforcementUpdate) {
  auto out = on_requested(std::nullopt, request(8, false), 8, defs_.lookup(), kNow);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->records.size(), 4u);
  for (const auto& r : out->records) EXPECT_NE(r.topic, topics::kEnforcements);
}

TEST_F(ExecutorDecisions, DisabledOrDeletedRuleDisablesTheEnforcement) {
  for (bool deleted : {false, true}) {
    Defs defs = defs_;
    if (deleted) {
      defs.objects.erase("rule:p.rule");
    } else {
      defs.put("rule", {{"ref", "p.rule"}, {"id", 4}, {"enabled", false}});
    }
    auto out = on_requested(std::nullopt, request(7), 7, defs.lookup(), kNow);
    ASSERT_TRUE(out.ok());
    auto recs = parse(out->records);
    ASSERT_EQ(recs.size(), 1u) << deleted;
    EXPECT_EQ(recs[0].type, "enforcement.updated");
    EXPECT_EQ(recs[0].payload["status"], "disabled");
    ASSERT_TRUE(out->state.has_value());
    EXPECT_TRUE(out->state->skipped);
    // A redelivery is ignored, and results for it too.
    auto again = on_requested(out->state, request(7), 7, defs.lookup(), kNow);
    EXPECT_TRUE(again->records.empty());
    auto res = on_finished(out->state, {{"id", 7}, {"attempt", 1}, {"status", "completed"}}, defs_.lookup(), kNow);
    EXPECT_TRUE(res->records.empty());
  }
}

TEST_F(ExecutorDecisions, MissingOrDisabledActionFails) {
  for (bool missing : {true, false}) {
    Defs defs = defs_;
    if (missing) {
      defs.objects.erase("action:p.act");
    } else {
      defs.put("action", {{"ref", "p.act"}, {"id", 2}, {"enabled", false}});
    }
    auto out = on_requested(std::nullopt, request(7), 7, defs.lookup(), kNow);
    ASSERT_TRUE(out.ok());
    auto recs = parse(out->records);
    ASSERT_EQ(recs.size(), 4u);
    EXPECT_EQ(recs[2].payload["status"], "failed");
    EXPECT_EQ(recs[2].payload["old_status"], "scheduling");
    EXPECT_NE(recs[2].payload["result"]["error"].get<std::string>().find("p.act"),
              std::string::npos);
    EXPECT_EQ(recs[3].payload["status"], "processed");
    ASSERT_EQ(out->terminal.size(), 1u);
    EXPECT_EQ(out->terminal[0], S::kFailed);
  }
}

TEST_F(ExecutorDecisions, MalformedRequestsAreErrors) {
  EXPECT_FALSE(on_requested(std::nullopt, Json("x"), 1, defs_.lookup(), kNow).ok());
  EXPECT_FALSE(
      on_requested(std::nullopt, {{"id", 0}, {"action_ref", "a.b"}}, 1, defs_.lookup(), kNow).ok());
  EXPECT_FALSE(on_requested(std::nullopt, {{"id", 3}}, 1, defs_.lookup(), kNow).ok());
  EXPECT_FALSE(
      on_finished(scheduled(), {{"id", 7}, {"attempt", 1}, {"status", "weird"}}, defs_.lookup(), kNow).ok());
  EXPECT_FALSE(on_running(scheduled(), Json::array(), kNow).ok());
}

TEST_F(ExecutorDecisions, ResultsRunningThenFinished) {
  auto st = scheduled();
  auto running = on_running(
      st, {{"id", 7}, {"attempt", 1}, {"worker", "w1"}, {"started_at", "2026-01-01T00:00:01.000Z"}},
      kNow + 1000);
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->records.size(), 1u);
  EXPECT_EQ(running->state->status(), S::kRunning);
  EXPECT_EQ(running->state->execution["started_at"], "2026-01-01T00:00:01.000Z");
  EXPECT_EQ(running->state->execution["worker"], "w1");

  // A duplicate running report and a stale attempt change nothing.
  EXPECT_TRUE(on_running(*running->state, {{"id", 7}, {"attempt", 1}}, kNow)->records.empty());
  EXPECT_TRUE(on_running(st, {{"id", 7}, {"attempt", 2}}, kNow)->records.empty());

  const Json finished = {{"id", 7},
                         {"attempt", 1},
                         {"status", "completed"},
                         {"result", {{"stdout", "hi\n"}, {"exit_code", 0}}}};
  auto done = on_finished(*running->state, finished, defs_.lookup(), kNow + 2000);
  ASSERT_TRUE(done.ok());
  auto recs = parse(done->records);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].payload["status"], "completed");
  EXPECT_EQ(recs[0].payload["old_status"], "running");
  EXPECT_EQ(recs[0].payload["result"]["stdout"], "hi\n");
  EXPECT_EQ(recs[0].payload["updated"], "2026-01-01T00:00:02.000Z");
  ASSERT_EQ(done->terminal.size(), 1u);

  // Duplicate finished, and finished of a stale attempt: ignored.
  auto dup = on_finished(*done->state, finished, defs_.lookup(), kNow + 3000);
  EXPECT_TRUE(dup->records.empty());
  EXPECT_FALSE(dup->ignored.empty());
  Json stale = finished;
  stale["attempt"] = 0;
  EXPECT_TRUE(on_finished(*running->state, stale, defs_.lookup(), kNow)->records.empty());
  EXPECT_TRUE(on_finished(std::nullopt, finished, defs_.lookup(), kNow)->records.empty());
}

TEST_F(ExecutorDecisions, CancelBeforeHandOffIsImmediate) {
  ExecutionState st;
  st.root = 7;
  st.execution = request(7);
  st.execution["status"] = "requested";
  st.execution["attempt"] = 1;
  auto out = on_cancel(st, 7, kNow);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->records.size(), 1u);
  EXPECT_EQ(out->records[0].topic, topics::kExecutions);
  EXPECT_EQ(out->state->status(), S::kCancelled);
  ASSERT_EQ(out->terminal.size(), 1u);
  // A late worker report cannot revive it; a second cancel is ignored.
  EXPECT_TRUE(on_finished(*out->state, {{"id", 7}, {"attempt", 1}, {"status", "completed"}}, defs_.lookup(), kNow)
                  ->records.empty());
  EXPECT_TRUE(on_cancel(*out->state, 7, kNow)->records.empty());
}

TEST_F(ExecutorDecisions, CancelAfterHandOffGoesThroughTheWorker) {
  auto out = on_cancel(scheduled(), 7, kNow);
  ASSERT_TRUE(out.ok());
  auto recs = parse(out->records);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].payload["status"], "canceling");
  EXPECT_EQ(out->records[1].topic, topics::kDispatch);
  EXPECT_EQ(out->records[1].key, "7");
  EXPECT_EQ(recs[1].type, "execution.cancel");
  EXPECT_EQ(recs[1].payload, (Json{{"id", 7}, {"attempt", 1}}));
  EXPECT_TRUE(out->terminal.empty());

  // The process started anyway, then ended: the execution ends cancelled.
  auto running = on_running(*out->state, {{"id", 7}, {"attempt", 1}, {"worker", "w"}}, kNow);
  EXPECT_EQ(running->state->status(), S::kCanceling);
  auto done = on_finished(
      *running->state, {{"id", 7}, {"attempt", 1}, {"status", "completed"}, {"result", {}}}, defs_.lookup(), kNow);
  EXPECT_EQ(done->state->status(), S::kCancelled);
  ASSERT_EQ(done->terminal.size(), 1u);
  EXPECT_EQ(done->terminal[0], S::kCancelled);
}

TEST_F(ExecutorDecisions, AbandonedAttemptIsRetriedWhileTheActionAllowsIt) {
  defs_.put("action",
            {{"ref", "p.act"}, {"id", 2}, {"enabled", true}, {"entrypoint", "true"},
             {"max_retries", 1}});
  auto st = scheduled();
  EXPECT_EQ(st.execution["max_retries"], 1);
  EXPECT_EQ(st.execution["retry_count"], 0);
  auto running = on_running(st, {{"id", 7}, {"attempt", 1}, {"worker", "w1"}}, kNow);
  const Json lost = {{"id", 7},
                     {"attempt", 1},
                     {"worker", "w1"},
                     {"status", "abandoned"},
                     {"result", {{"error", "worker 'w1' stopped heartbeating"}}}};
  auto retried = on_finished(*running->state, lost, defs_.lookup(), kNow + 1000);
  ASSERT_TRUE(retried.ok());
  EXPECT_TRUE(retried->terminal.empty());
  EXPECT_EQ(retried->state->status(), S::kScheduled);
  EXPECT_EQ(retried->state->attempt(), 2);
  auto recs = parse(retried->records);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].payload["status"], "scheduled");
  EXPECT_EQ(recs[0].payload["old_status"], "running");
  EXPECT_EQ(recs[0].payload["retry_count"], 1);
  EXPECT_EQ(recs[0].payload["retry_reason"],
            "attempt 1 abandoned: worker 'w1' stopped heartbeating");
  EXPECT_TRUE(recs[0].payload["worker"].is_null());
  EXPECT_EQ(retried->records[1].topic, topics::kDispatch);
  EXPECT_EQ(recs[1].type, "execution.dispatch");
  EXPECT_EQ(recs[1].key, "dispatch:7:2");
  EXPECT_EQ(recs[1].payload["attempt"], 2);
  EXPECT_EQ(recs[1].payload["action"]["ref"], "p.act");

  // The lost attempt's own late reports are stale now; a repeat of the abandonment too.
  EXPECT_TRUE(on_finished(*retried->state, lost, defs_.lookup(), kNow)->records.empty());
  EXPECT_TRUE(on_running(*retried->state, {{"id", 7}, {"attempt", 1}}, kNow)->records.empty());

  // Retries used up: the second lost attempt ends abandoned.
  auto again = on_running(*retried->state, {{"id", 7}, {"attempt", 2}, {"worker", "w2"}}, kNow);
  Json lost2 = lost;
  lost2["attempt"] = 2;
  lost2["worker"] = "w2";
  auto ended = on_finished(*again->state, lost2, defs_.lookup(), kNow + 2000);
  EXPECT_EQ(ended->state->status(), S::kAbandoned);
  ASSERT_EQ(ended->terminal.size(), 1u);
  EXPECT_EQ(ended->state->execution["retry_count"], 1);
  ASSERT_EQ(ended->records.size(), 1u);
}

TEST_F(ExecutorDecisions, AbandonedWithoutRetriesOrOnlyFailedIsNotRetried) {
  // Default policy (no max_retries): abandoned.
  auto running = on_running(scheduled(), {{"id", 7}, {"attempt", 1}, {"worker", "w1"}}, kNow);
  const Json lost = {{"id", 7}, {"attempt", 1}, {"status", "abandoned"}, {"result", nullptr}};
  EXPECT_EQ(on_finished(*running->state, lost, defs_.lookup(), kNow)->state->status(),
            S::kAbandoned);

  defs_.put("action",
            {{"ref", "p.act"}, {"id", 2}, {"enabled", true}, {"max_retries", 3}});
  running = on_running(scheduled(), {{"id", 7}, {"attempt", 1}, {"worker", "w1"}}, kNow);
  // Only a lost worker is retried: a failed process is the action's own outcome.
  Json failed = lost;
  failed["status"] = "failed";
  EXPECT_EQ(on_finished(*running->state, failed, defs_.lookup(), kNow)->state->status(),
            S::kFailed);
  // A cancel in progress is not retried.
  auto canceling = on_cancel(*running->state, 7, kNow);
  EXPECT_EQ(on_finished(*canceling->state, lost, defs_.lookup(), kNow)->state->status(),
            S::kCancelled);
  // The action was disabled (or deleted) meanwhile: abandoned.
  defs_.put("action",
            {{"ref", "p.act"}, {"id", 2}, {"enabled", false}, {"max_retries", 3}});
  EXPECT_EQ(on_finished(*running->state, lost, defs_.lookup(), kNow)->state->status(),
            S::kAbandoned);
  // The policy is clamped and type-checked.
  EXPECT_EQ(max_retries_of({{"max_retries", 1000}}), kMaxRetries);
  EXPECT_EQ(max_retries_of({{"max_retries", -2}}), 0);
  EXPECT_EQ(max_retries_of({{"max_retries", "3"}}), 0);
  EXPECT_EQ(max_retries_of(Json::object()), 0);
}

TEST_F(ExecutorDecisions, StateRoundTrips) {
  auto st = scheduled();
  auto back = ExecutionState::parse(st.dump());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->execution, st.execution);
  EXPECT_EQ(back->root, 7);
  EXPECT_EQ(pack_of("core.echo"), "core");
  EXPECT_EQ(pack_of("bare"), "bare");
}

}  // namespace
}  // namespace attune::executor
