// Slot bookkeeping (workflow.h, "Slots"): the engine with a SlotStore keeps only counters in the
// State, so its size does not grow with with_items; it behaves exactly as with the slots inline;
// a State stored by an earlier build (inline slots, no counters) resumes with the same counters.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <set>
#include <string>

#include "processors/workflow/workflow.h"

namespace attune::workflow {
namespace {

constexpr int64_t kNow = 1767225600000;

Definition def_of(const std::string& text) {
  auto r = parse(Json::parse(text));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return std::move(r).value();
}

std::string items_def(int64_t concurrency, const std::string& extra = "") {
  return R"({"version": 1, "tasks": [{"name": "each", "action": "x.y", "with_items":
      "{{ parameters.items }}", "concurrency": )" +
         std::to_string(concurrency) + extra +
         R"(, "input": {"n": "{{ item }}"}, "next": [{"when": "{{ succeeded() }}", "publish":
      [{"all": "{{ task.each.result }}"}]}]}], "output_map": {"all": "{{ workflow.all }}"}})";
}

State without_slots(State s) {
  for (auto& [name, ts] : s.tasks) ts.slots.clear();
  return s;
}

Json commands_json(const std::vector<Command>& cs) {
  Json out = Json::array();
  for (const Command& c : cs) out.push_back(c.to_json());
  return out;
}

// Drives one workflow twice in lockstep — slots in a MemorySlotStore and inline — and checks that
// both give the same commands and the same State (apart from the inline slots), that the
// store-backed State round-trips through JSON, and that stripping an inline State down to the
// layout of earlier builds gives the same counters.
struct Lockstep {
  explicit Lockstep(const std::string& def) : def_(def_of(def)) {}

  std::vector<Command> apply(const Event& e) {
    auto a = advance(def_, stored_, e, Inputs{}, kNow, slots_);
    auto b = advance(def_, inline_, e, Inputs{}, kNow);
    EXPECT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(commands_json(a->commands), commands_json(b->commands));
    EXPECT_EQ(a->ignored, b->ignored);
    EXPECT_EQ(a->state, without_slots(b->state));
    auto back = State::parse(a->state.dump());
    EXPECT_TRUE(back.ok());
    EXPECT_EQ(*back, a->state);
    // An earlier build stored the inline slots without counters.
    Json legacy = b->state.to_json();
    for (auto& [name, tj] : legacy["tasks"].items()) {
      for (const char* k : {"slot_count", "released", "busy", "first_bad", "first_bad_status",
                            "any_cancelled"}) {
        tj.erase(k);
      }
    }
    auto old = State::from_json(legacy);
    EXPECT_TRUE(old.ok());
    if (old.ok()) {
      for (auto& [name, ts] : old->tasks) {
        const TaskState& want = b->state.tasks.at(name);
        if (want.slots.empty()) continue;  // a never-run or parallel task: nothing to derive from
        EXPECT_EQ(ts.slot_count, want.slot_count) << name;
        EXPECT_EQ(ts.released, want.released) << name;
        EXPECT_EQ(ts.busy, want.busy) << name;
        EXPECT_EQ(ts.first_bad, want.first_bad) << name;
        EXPECT_EQ(ts.any_cancelled, want.any_cancelled) << name;
      }
    }
    max_state_bytes_ = std::max(max_state_bytes_, a->state.dump().size());
    stored_ = a->state;
    inline_ = b->state;
    return a->commands;
  }

  Definition def_;
  MemorySlotStore slots_;
  State stored_, inline_;
  size_t max_state_bytes_ = 0;
};

// Runs a with_items task to its end: the child to finish next is picked by `pick` among the
// running ones, its outcome by `outcome(index)`. Returns the finish command (or null).
struct RunResult {
  std::vector<int64_t> created, released, cancelled;
  size_t max_running = 0;
  std::optional<Command> finish;
  size_t max_state_bytes = 0;
};

RunResult run_items(Lockstep& l, int64_t n,
                    const std::function<size_t(const std::vector<int64_t>&)>& pick,
                    const std::function<ChildStatus(int64_t)>& outcome) {
  RunResult r;
  Json items = Json::array();
  for (int64_t i = 0; i < n; ++i) items.push_back(i);
  std::vector<int64_t> running;
  auto take = [&](const std::vector<Command>& cs) {
    for (const Command& c : cs) {
      switch (c.kind) {
        case CommandKind::kCreateChild:
          r.created.push_back(c.child.index);
          if (!c.held) running.push_back(c.child.index);
          break;
        case CommandKind::kReleaseChild:
          r.released.push_back(c.child.index);
          running.push_back(c.child.index);
          break;
        case CommandKind::kCancelChildren:
          for (const ChildKey& k : c.children) r.cancelled.push_back(k.index);
          break;
        case CommandKind::kFinishWorkflow:
          r.finish = c;
          break;
        case CommandKind::kStartTimer:
        case CommandKind::kAwaitInquiry:
          break;
      }
    }
    r.max_running = std::max(r.max_running, running.size());
  };
  take(l.apply(Event::start(Json{{"items", items}})));
  while (!running.empty() && !r.finish) {
    const size_t k = pick(running);
    const int64_t i = running[k];
    running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
    const ChildStatus st = outcome(i);
    Json result = st == ChildStatus::kCompleted ? Json{{"i", i}} : Json{{"error", i}};
    take(l.apply(Event::child_finished(ChildKey{"each", 1, i, 1}, st, std::move(result))));
  }
  r.max_state_bytes = l.max_state_bytes_;
  return r;
}

size_t first(const std::vector<int64_t>&) { return 0; }
size_t last(const std::vector<int64_t>& v) { return v.size() - 1; }
size_t middle(const std::vector<int64_t>& v) { return v.size() / 2; }

TEST(WorkflowSlots, WithItemsTable) {
  struct Case {
    int64_t n, concurrency;
    size_t (*pick)(const std::vector<int64_t>&);
    int64_t fail_at;  // -1: every child completes
  };
  const Case cases[] = {
      {1, 1, first, -1},   {5, 1, last, -1},   {10, 3, first, -1}, {10, 3, last, -1},
      {10, 3, middle, -1}, {7, 50, last, -1},  {10, 3, first, 4},  {10, 3, last, 0},
      {10, 10, middle, 9}, {200, 7, last, -1}, {200, 7, middle, 150},
  };
  for (size_t c = 0; c < std::size(cases); ++c) {
    const Case& k = cases[c];
    SCOPED_TRACE("case " + std::to_string(c));
    Lockstep l(items_def(k.concurrency));
    RunResult r = run_items(l, k.n, k.pick, [&](int64_t i) {
      return i == k.fail_at ? ChildStatus::kFailed : ChildStatus::kCompleted;
    });
    // Every row exists up front, once, in item order; at most `concurrency` run at once;
    // held ones are released in item order.
    std::vector<int64_t> all(static_cast<size_t>(k.n));
    for (int64_t i = 0; i < k.n; ++i) all[static_cast<size_t>(i)] = i;
    EXPECT_EQ(r.created, all);
    EXPECT_LE(r.max_running, static_cast<size_t>(std::min(k.n, k.concurrency)));
    EXPECT_TRUE(std::is_sorted(r.released.begin(), r.released.end()));
    ASSERT_TRUE(r.finish.has_value());
    if (k.fail_at < 0) {
      EXPECT_TRUE(r.cancelled.empty());
      EXPECT_EQ(r.released.size(), static_cast<size_t>(std::max<int64_t>(0, k.n - k.concurrency)));
      EXPECT_EQ(r.finish->status, WorkflowStatus::kCompleted);
      Json want = Json::array();
      for (int64_t i = 0; i < k.n; ++i) want.push_back(Json{{"i", i}});
      EXPECT_EQ(r.finish->result, (Json{{"all", want}}));
    } else {
      EXPECT_EQ(r.finish->status, WorkflowStatus::kFailed);
      // Held children never released are cancelled, each exactly once.
      std::set<int64_t> seen(r.released.begin(), r.released.end());
      for (int64_t i : r.cancelled) EXPECT_FALSE(seen.contains(i)) << i;
      EXPECT_EQ(r.released.size() + r.cancelled.size() +
                    static_cast<size_t>(std::min(k.n, k.concurrency)),
                static_cast<size_t>(k.n));
    }
  }
}

// The stored State does not grow with the number of items (it did: one slot per item).
TEST(WorkflowSlots, StateSizeIndependentOfItems) {
  size_t sizes[2] = {0, 0};
  const int64_t ns[2] = {100, 2000};
  for (int k = 0; k < 2; ++k) {
    // The result is not published, so the finished task's result is the only item-sized value.
    Lockstep l(R"({"version": 1, "tasks": [{"name": "each", "action": "x.y", "with_items":
        "{{ parameters.items }}", "concurrency": 5, "input": {"n": "{{ item }}"}},
        {"name": "other", "action": "x.z"}]})");
    Json items = Json::array();
    for (int64_t i = 0; i < ns[k]; ++i) items.push_back(i);
    l.apply(Event::start(Json{{"items", items}}));
    std::deque<int64_t> running = {0, 1, 2, 3, 4};
    size_t biggest = 0;
    while (!running.empty()) {
      const int64_t i = running.front();
      running.pop_front();
      for (const Command& c :
           l.apply(Event::child_finished(ChildKey{"each", 1, i, 1}, ChildStatus::kCompleted,
                                         Json{{"i", i}}))) {
        if (c.kind == CommandKind::kReleaseChild) running.push_back(c.child.index);
      }
      if (l.stored_.tasks.at("each").status == TaskStatus::kRunning) {
        Json j = l.stored_.to_json();
        j.erase("parameters");  // the executor keeps them apart, written once
        biggest = std::max(biggest, j.dump().size());
      }
    }
    EXPECT_EQ(l.stored_.tasks.at("each").status, TaskStatus::kSucceeded);
    EXPECT_EQ(l.stored_.tasks.at("each").result.size(), static_cast<size_t>(ns[k]));
    EXPECT_EQ(l.slots_.size(), static_cast<size_t>(ns[k]) + 1);  // + the slot of "other"
    sizes[k] = biggest;
  }
  // Only the digits of the indices grow.
  EXPECT_LE(sizes[1], sizes[0] + 64) << sizes[0] << " vs " << sizes[1];
}

// Retries and cancellation go through the store too: a slot waiting for its retry is busy (it
// holds a concurrency place), cancelling the workflow drops it and the held ones.
TEST(WorkflowSlots, RetryWaitAndCancel) {
  Lockstep l(items_def(2, R"(, "retry": {"count": 2, "delay": 5})"));
  Json items = Json::array({"a", "b", "c", "d"});
  l.apply(Event::start(Json{{"items", items}}));
  auto cs = l.apply(Event::child_finished(ChildKey{"each", 1, 1, 1}, ChildStatus::kFailed, Json()));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].kind, CommandKind::kStartTimer);
  EXPECT_EQ(l.stored_.tasks.at("each").busy, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(l.slots_.get("each", 1, 1)->status, SlotStatus::kRetryWait);
  EXPECT_EQ(l.slots_.get("each", 1, 1)->attempt, 2);
  // Child 0 completes: child 2 is released (1 still holds its place).
  cs = l.apply(Event::child_finished(ChildKey{"each", 1, 0, 1}, ChildStatus::kCompleted, Json()));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].kind, CommandKind::kReleaseChild);
  EXPECT_EQ(cs[0].child.index, 2);
  // The retry timer re-creates child 1 (attempt 2) with the stored input.
  cs = l.apply(Event::timer_fired(ChildKey{"each", 1, 1, 2}));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].kind, CommandKind::kCreateChild);
  EXPECT_EQ(cs[0].input, (Json{{"n", "b"}}));
  EXPECT_EQ(cs[0].workflow_task["retry_count"], 1);
  // Fails again: waits for its second retry; then the workflow is cancelled.
  l.apply(Event::child_finished(ChildKey{"each", 1, 1, 2}, ChildStatus::kFailed, Json()));
  cs = l.apply(Event::cancel());
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].kind, CommandKind::kCancelChildren);
  ASSERT_EQ(cs[0].children.size(), 1u);  // allow_finish: only held child 3
  EXPECT_EQ(cs[0].children[0].index, 3);
  EXPECT_EQ(l.slots_.get("each", 1, 1)->status, SlotStatus::kCancelled);
  EXPECT_EQ(l.stored_.tasks.at("each").busy, (std::vector<int64_t>{2}));
  EXPECT_EQ(l.stored_.status, WorkflowStatus::kCanceling);
  cs = l.apply(Event::child_finished(ChildKey{"each", 1, 2, 1}, ChildStatus::kCompleted, Json()));
  ASSERT_FALSE(cs.empty());
  EXPECT_EQ(cs.back().kind, CommandKind::kFinishWorkflow);
  EXPECT_EQ(cs.back().status, WorkflowStatus::kCancelled);
  // Stale and redelivered events are ignored through the store as well.
  auto again = advance(l.def_, l.stored_,
                       Event::child_finished(ChildKey{"each", 1, 2, 1}, ChildStatus::kCompleted,
                                             Json()),
                       Inputs{}, kNow, l.slots_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->commands.empty());
}

// A run that starts again (a cycle) gets fresh slots under its new run number; the old run's slots
// are never read again.
TEST(WorkflowSlots, SecondRunHasItsOwnSlots) {
  Lockstep l(R"({"version": 1, "tasks": [
      {"name": "a", "action": "x.y", "with_items": "{{ [1, 2] }}", "concurrency": 2,
       "next": [{"when": "{{ vars.n < 2 }}", "publish": [{"n": "{{ vars.n + 1 }}"}],
                 "do": ["a"]}]}],
      "vars": {"n": 0}})");
  l.apply(Event::start(Json::object()));
  for (int64_t run = 1; run <= 3; ++run) {
    l.apply(Event::child_finished(ChildKey{"a", run, 0, 1}, ChildStatus::kCompleted, run));
    auto cs = l.apply(Event::child_finished(ChildKey{"a", run, 1, 1}, ChildStatus::kCompleted,
                                            run * 10));
    if (run < 3) {
      EXPECT_EQ(l.stored_.tasks.at("a").run, run + 1);
      EXPECT_EQ(l.stored_.tasks.at("a").busy, (std::vector<int64_t>{0, 1}));
    } else {
      ASSERT_FALSE(cs.empty());
      EXPECT_EQ(cs.back().kind, CommandKind::kFinishWorkflow);
    }
  }
  EXPECT_EQ(l.slots_.size(), 6u);
  EXPECT_EQ(l.stored_.tasks.at("a").result, Json::array({3, 30}));
}

}  // namespace
}  // namespace attune::workflow
