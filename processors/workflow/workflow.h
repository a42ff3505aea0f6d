// Workflows (API.md §12): parsing a definition and the engine as a pure function
// advance(definition, state, event, inputs, now) → (state, commands). No I/O, no clock, no executor
// types: the executor persists the State and turns Commands into records.
//
// Wiring (DESIGN.md §9 "workflows"). The executor keeps one State per workflow execution in its
// store (State::dump() / State::parse()), the definition the run started with, and one key per
// slot behind a SlotStore (processors/RECORDS.md, "Workflow runs"). It calls advance() with:
//   Event::start(parameters)
//       when the workflow execution is scheduled;
//   Event::child_finished(key, status, result)
//       when a child (an execution whose workflow_task names this workflow) reaches a terminal
//       status; `key` is ChildKey::from_json(child.workflow_task), `status` child_status_from();
//   Event::inquiry_resolved(task, run, outcome, response)
//       when the inquiry named by a kAwaitInquiry leaves `pending`;
//   Event::timer_fired(key)
//       when a kStartTimer's time has passed (timers are stored, so a restart fires what passed);
//   Event::cancel()
//       when the workflow execution is cancelled.
// It stores Step::state together with the records it writes for Step::commands (one commit, so a
// crash replays the input and redoes both), in command order:
//   kCreateChild     a new execution: action = action_ref, config = input, parent = the workflow
//                    execution, timeout_seconds = timeout, permission_set_refs added to the
//                    workflow's, workflow_task = Command::workflow_task ({task_name, run,
//                    task_index, attempt, triggered_by, task_batch, retry_count, max_retries,
//                    timeout_seconds}) plus `workflow_execution`. A `held` child is created
//                    `requested` but not dispatched until a kReleaseChild names it (with_items
//                    rows exist up front, API.md §12.3).
//   kReleaseChild    dispatch that held child.
//   kStartTimer      call back with timer_fired(child) at `at_ms`.
//   kAwaitInquiry    call back with inquiry_resolved(...) once inquiry `inquiry_id` is answered,
//                    times out or is cancelled (at once if it already has).
//   kCancelChildren  cancel these children (held or running), as POST /executions/{id}/cancel.
//   kFinishWorkflow  the workflow execution ends: status completed | failed | cancelled, result.
// Children are named by ChildKey, never by execution id: the executor finds a child's id through
// its workflow_task (an index of (workflow execution, task_name, run, task_index, attempt)).
// Inputs (config, keystore, system) are passed on every call and never stored in the State.
// Events that do not match the state (a stale attempt, a second finish, anything after the workflow
// finished) change nothing and say why in Step::ignored; redelivered records are therefore
// harmless.
//
// Semantics summary (the contract is API.md §12.3):
//  * A task's run: `when` guard (falsy ⇒ skipped, no transitions) → `delay` timer → `wait_for`
//    inquiry → input rendering → children (one, or one per with_items element/batch).
//  * A child failing/timing out is retried per `retry` (delay, backoff, max_delay, on_error) before
//    the task ends. The task then ends succeeded | failed | timed_out | cancelled, and every
//    matching transition fires in order: publish first, then `do` targets start (joins count).
//    Without join a task reached while it is running runs again afterwards (once per transition).
//  * A task ending not succeeded with no matching transition fails the workflow at once
//    (kFinishWorkflow failed); held children are cancelled; running ones are cancelled with
//    cancellation_policy cancel_running and left to finish with allow_finish (their results are
//    then ignored). Inside a `parallel` task such a failure fails the parallel task instead.
//  * cancel: nothing new starts, timers and inquiry waits are dropped, held children cancelled,
//    running ones cancelled (cancel_running) or left to finish (allow_finish); the workflow ends
//    cancelled once no child is running.
//  * Once no task is active the workflow is completed with result = output_map rendered (pure
//    templates keep their JSON type), or the workflow variables when there is no output_map.
//
// Slots (one per child position of a task's run: the only child, or one with_items element/batch)
// live outside the State, behind a SlotStore the caller provides: the executor keeps each slot
// under its own store key, next to the run (processors/RECORDS.md, executor store). The State
// keeps only counters and cursors per task run — slot_count, `released` (slots below it were
// dispatched; held ones are [released, slot_count)), the indices of the busy slots (running or
// waiting to be retried: at most `concurrency`), the first failure in item order — so an event
// costs O(running children), not O(items). Held children are released in item order. When a
// with_items run ends, its slots' results are read once and assembled into the task's result
// (item order). advance() without a SlotStore keeps the slots inline in TaskState::slots (the
// layout of builds before this one, and handy in tests); State::from_json of such a state
// derives the counters from the inline slots, so a stored run of an earlier build resumes.
//
// Limitations: a task's result (with_items: the array of its children's results) stays in the
// State once the task ended, and the State is rewritten whole on every event; with_items renders
// every input and creates every child (held) in the one step that starts the task, so that step's
// commands grow with the item count; a run that keeps ending without waiting (a cycle over empty
// with_items) fails the workflow after 1000 task ends in one step.
//
// Thread-safety: Definition is immutable (copies share compiled templates); advance() is a pure
// function safe to call concurrently on different states.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::workflow {

// ---------------------------------------------------------------------------------------------
// Definition

enum class TaskType { kAction, kParallel, kWorkflow };
enum class Backoff { kConstant, kLinear, kExponential };
enum class CancellationPolicy { kAllowFinish, kCancelRunning };

struct Compiled;  // compiled templates of one definition (internal)

struct Retry {
  int64_t count = 0;  // retries after the first attempt, 1..100
  double delay = 0;   // seconds before the first retry
  Backoff backoff = Backoff::kConstant;
  std::optional<double> max_delay;  // cap, seconds
  bool has_on_error = false;        // retry only if the `on_error` expression is truthy
};

struct Transition {
  std::string label;  // "next[0]", "on_success", "decision[1]"... (for errors)
  bool has_when = false;
  std::vector<std::string> publish;  // variable names, in order (values compiled internally)
  std::vector<std::string> targets;  // `do`
};

struct Task {
  std::string name;
  TaskType type = TaskType::kAction;
  std::string action;            // action ref (kAction, kWorkflow)
  std::vector<Transition> next;  // legacy keys already converted
  bool has_when = false;         // legacy guard
  bool has_with_items = false;
  int64_t batch_size = 0;  // 0: one item per child
  int64_t concurrency = 1;
  std::optional<Retry> retry;
  std::optional<double> timeout;  // child timeout, seconds
  double delay = 0;               // seconds before dispatch
  int64_t join = 0;               // 0: no join; "all"/true: every inbound transition
  bool has_wait_for = false;
  std::vector<std::string> subtasks;     // kParallel: nested task names
  std::vector<std::string> sub_entries;  // kParallel: the nested tasks started with it (those no
                                         // sibling transition targets; else the first)
  std::string group;                     // the parallel task this one is nested in ("" = top level)
};

// A parsed, validated, normalised definition. Immutable; cheap to copy.
class Definition {
 public:
  const std::vector<Task>& tasks() const { return tasks_; }
  const Task* find(std::string_view name) const;
  const std::vector<std::string>& entry_tasks() const { return entries_; }
  CancellationPolicy cancellation_policy() const { return policy_; }
  const Json& version() const { return version_; }
  const Compiled& compiled() const { return *compiled_; }

 private:
  friend Result<Definition> parse(const Json& def);
  std::vector<Task> tasks_;  // top-level tasks in definition order, then nested ones
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::string> entries_;
  CancellationPolicy policy_ = CancellationPolicy::kAllowFinish;
  Json version_;
  std::shared_ptr<const Compiled> compiled_;
};

// Validates and normalises a definition (API.md §12.2). Errors are kBadRequest with a message
// naming the task and field: "task 'b': next[0].do: unknown task 'x'", "duplicate task name 'a'",
// "task 'a': input.x: unexpected ')' at column 4".
Result<Definition> parse(const Json& def);

// ---------------------------------------------------------------------------------------------
// State

enum class WorkflowStatus { kPending, kRunning, kCanceling, kCompleted, kFailed, kCancelled };
// A task's current run.
enum class TaskStatus {
  kIdle,     // never started (or waiting for its join)
  kDelayed,  // `delay` timer pending
  kWaiting,  // waiting for its inquiry
  kRunning,  // children created (or nested tasks running)
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kSkipped,  // `when` guard was falsy
};
// One child position of a run: the task's only child, or one with_items element/batch.
enum class SlotStatus { kHeld, kRunning, kRetryWait, kCompleted, kFailed, kTimedOut, kCancelled };
// A child's terminal execution status (API.md §11.1).
enum class ChildStatus { kCompleted, kFailed, kTimeout, kCancelled, kAbandoned };

const char* name_of(WorkflowStatus s);
const char* name_of(TaskStatus s);
const char* name_of(SlotStatus s);
const char* name_of(ChildStatus s);
std::optional<ChildStatus> child_status_from(std::string_view s);

// Identifies one child execution (one attempt of one slot of one run of a task). Travels in the
// child's workflow_task as {task_name, run, task_index (null without with_items), attempt}.
struct ChildKey {
  std::string task;
  int64_t run = 0;
  int64_t index = -1;  // -1: no with_items
  int64_t attempt = 1;

  Json to_json() const;
  static std::optional<ChildKey> from_json(const Json& j);
  bool operator==(const ChildKey&) const = default;
};

struct Slot {
  SlotStatus status = SlotStatus::kHeld;
  int64_t attempt = 1;
  Json input;  // rendered once, reused by retries
  Json item;   // the element (or batch array)
  Json result;

  Json to_json() const;
  static std::optional<Slot> from_json(const Json& j);  // nullopt: not a slot
  bool operator==(const Slot&) const = default;
};

// Where the engine keeps the slots of task runs (see the header comment). Slots of a run are
// numbered 0..slot_count-1 (index 0 is the only slot of a task without with_items). get() of a
// slot never put returns nullopt. Implementations may throw on I/O failure (the caller's whole
// step is then void); advance() does nothing else with them.
class SlotStore {
 public:
  virtual ~SlotStore() = default;
  virtual std::optional<Slot> get(const std::string& task, int64_t run, int64_t index) = 0;
  virtual void put(const std::string& task, int64_t run, int64_t index, const Slot& slot) = 0;
};

// A SlotStore in memory (tests, tools).
class MemorySlotStore final : public SlotStore {
 public:
  std::optional<Slot> get(const std::string& task, int64_t run, int64_t index) override;
  void put(const std::string& task, int64_t run, int64_t index, const Slot& slot) override;
  size_t size() const { return slots_.size(); }

 private:
  std::map<std::tuple<std::string, int64_t, int64_t>, Slot> slots_;
};

struct TaskState {
  TaskStatus status = TaskStatus::kIdle;
  int64_t run = 0;                  // runs started so far; the current run's number
  std::vector<std::string> queued;  // further runs requested while this one was active: the
                                    // task whose transition requested each ("" = start)
  int64_t inbound = 0;              // transitions counted towards `join`
  std::string triggered_by;
  // The current run's slots (see the header comment). `busy` is sorted; first_bad is the lowest
  // index of a slot that failed or timed out (-1: none), first_bad_status its status.
  int64_t slot_count = 0;
  int64_t released = 0;
  std::vector<int64_t> busy;
  int64_t first_bad = -1;
  SlotStatus first_bad_status = SlotStatus::kFailed;
  bool any_cancelled = false;
  std::vector<Slot> slots;  // inline slots: only when advance() runs without a SlotStore
  bool group_failed = false;  // kParallel: a nested task failed unhandled
  Json inquiry_response;      // wait_for: the response once responded
  Json permission_set_refs;   // rendered when the run's children are created (reused by retries)
  Json result;                // the run's result (with_items: array in item order)

  bool operator==(const TaskState&) const = default;
};

// The whole progress of one workflow execution; round-trips through JSON exactly.
struct State {
  WorkflowStatus status = WorkflowStatus::kPending;
  Json parameters = Json::object();
  Json vars = Json::object();
  std::map<std::string, TaskState> tasks;
  Json result;        // set when finished
  std::string error;  // why it failed

  Json to_json() const;
  static Result<State> from_json(const Json& j);
  std::string dump() const { return to_json().dump(); }
  static Result<State> parse(std::string_view text);
  bool operator==(const State&) const = default;

 private:
  static Result<State> from_json_unchecked(const Json& j);  // may throw Json::exception
};

// ---------------------------------------------------------------------------------------------
// Events and commands

enum class EventKind { kStart, kChildFinished, kInquiryResolved, kTimerFired, kCancel };
enum class InquiryOutcome { kResponded, kTimeout, kCancelled };

struct Event {
  EventKind kind = EventKind::kStart;
  Json parameters;  // kStart
  ChildKey child;   // kChildFinished, kTimerFired; kInquiryResolved uses task and run
  ChildStatus status = ChildStatus::kCompleted;
  Json result;  // kChildFinished: the child's result
  InquiryOutcome inquiry = InquiryOutcome::kResponded;
  Json response;             // kInquiryResolved
  bool kill_running = false;  // kCancel: cancel running children whatever cancellation_policy says

  static Event start(Json parameters);
  static Event child_finished(ChildKey key, ChildStatus status, Json result);
  static Event inquiry_resolved(std::string task, int64_t run, InquiryOutcome outcome,
                                Json response);
  static Event timer_fired(ChildKey key);
  // `kill_running`: the workflow timed out — its running children are cancelled too.
  static Event cancel(bool kill_running = false);
};

// Values the caller provides to templates on every call; never stored in the State (secrets).
struct Inputs {
  Json config = Json::object();    // `config.*` (pack config)
  Json keystore = Json::object();  // `keystore.*`
  Json system = Json::object();    // `system.*` (e.g. {"execution": {"id": ...}})
  // `parameters.*` with secret values opened: bound instead of State::parameters (which keep the
  // redaction markers of a sealed config, so no secret is stored in the State).
  std::optional<Json> parameters;
};

enum class CommandKind {
  kCreateChild,
  kReleaseChild,
  kStartTimer,
  kAwaitInquiry,
  kCancelChildren,
  kFinishWorkflow,
};
const char* name_of(CommandKind k);

struct Command {
  CommandKind kind = CommandKind::kCreateChild;
  ChildKey child;                                // create/release/timer; await uses task and run
  std::string action_ref;                        // create
  Json input;                                    // create: rendered parameters
  std::optional<double> timeout;                 // create: seconds
  std::vector<std::string> permission_set_refs;  // create
  bool held = false;                             // create
  Json workflow_task;  // create: {task_name, run, task_index, attempt, retry_count, ...}
  int64_t at_ms = 0;   // timer
  Json inquiry_id;     // await
  std::vector<ChildKey> children;                      // cancel
  WorkflowStatus status = WorkflowStatus::kCompleted;  // finish
  Json result;                                         // finish

  Json to_json() const;  // {"kind": "create_child", ...} — for logs and tests
};

struct Step {
  State state;
  std::vector<Command> commands;
  std::string ignored;  // non-empty: the event changed nothing, and why
};

// The engine. Errors only for an event that can never be valid against this definition (kStart
// twice is merely ignored; an unknown task name is kBadRequest). Template evaluation errors are not
// errors here: they fail the task (input, with_items, wait_for) or the workflow (when, publish,
// output_map) with the message in the result.
Result<Step> advance(const Definition& def, const State& state, const Event& event,
                     const Inputs& inputs, int64_t now_ms, SlotStore& slots);
// The same with the slots inline in the State (TaskState::slots).
Result<Step> advance(const Definition& def, const State& state, const Event& event,
                     const Inputs& inputs, int64_t now_ms);

}  // namespace attune::workflow
