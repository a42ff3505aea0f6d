// The executor stage (DESIGN.md §3): consumes attune.commands and attune.results, keeps the
// state machine of every execution in its store, and is the only writer of attune.executions.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "processors/executor/decisions.h"
#include "processors/keystore/cipher.h"
#include "processors/workflow/workflow.h"
#include "topology/store_expiry.h"
#include "topology/topology.h"

namespace attune::executor {

inline constexpr std::string_view kExecutionsStore = "executions";

struct ExecutorOptions {
  // Called once per execution that reaches a terminal status, after the change is durable
  // (for `attune_executions_total{status}`). Runs on the stage thread; may be empty.
  std::function<void(std::string_view status)> on_terminal;
  // Bounded store (issue 13). The state of a terminal execution (and the marker of a request that
  // created none) matters only against a repeat of its `execution.requested`, which would
  // otherwise start it again: a record redelivered after a crash (Kafka; the embedded log never
  // redelivers a committed record). Late results and cancels of an unknown execution are
  // ignored just as they are for a terminal one. So the entry is deleted this long after the
  // execution ended (or the request was skipped), by instance 0's punctuate() in its own
  // transaction. Non-terminal executions are never pruned.
  std::chrono::milliseconds terminal_retention{std::chrono::hours(1)};
  expiry::PruneSchedule prune;
  // Datastore encryption: `keystore.*` in workflow templates, a workflow's secret parameters, and
  // sealing the secrets of its children's parameters (as the API and rules do). May be null: then
  // `keystore` is empty and children's parameters are passed as rendered.
  std::shared_ptr<const keystore::Cipher> cipher;
};

// The due time of an entry written by a build without expiry entries (see ExecutorOptions):
// nullopt while the execution is not terminal.
std::optional<int64_t> legacy_state_due(std::string_view key, std::string_view value,
                                        std::chrono::milliseconds retention);

// Inquiry deadlines: "~inq/<BE64 due ms><BE64 inquiry id>" → root (decimal), next to the state
// "q:<id>" {inquiry, root} and the creator index "qe:<created_by_execution>:<id>". Written in the
// transaction that stores the inquiry, so a restart finds every deadline, and one that passed
// while the server was down fires at the first punctuation (every stage instance punctuates as
// it starts).
inline constexpr std::string_view kInquiryDeadlines = "~inq/";
// How long an ended inquiry stays in the store (at least): an identical repeat from its execution
// is answered with it for that long.
inline constexpr std::chrono::milliseconds kInquiryRetention{std::chrono::hours(24)};

// Thin I/O shell around decisions.h: loads the execution state, applies the decision, stores
// the new state and forwards its records. `table` is shared, must outlive the processor and be
// started. Unknown record types are ignored; malformed records are dead-lettered.
class ExecutorProcessor final : public Processor {
 public:
  ExecutorProcessor(const DefinitionsTable& table, ExecutorOptions options = {});

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;

 private:
  std::optional<ExecutionState> load(ProcessorContext& ctx, int64_t id);
  void apply(ProcessorContext& ctx, int64_t id, Result<Outcome> outcome);
  // The stored inquiry ("q:<id>"), nullopt when this store does not hold it.
  std::optional<Json> load_inquiry(ProcessorContext& ctx, int64_t id);
  // Inquiries (inquiry.h): one command of attune.commands; `root` is the record key's id.
  void process_inquiry(const Envelope& e, int64_t root, ProcessorContext& ctx);
  // Stores the inquiry and moves its deadline entry; emits inquiry.updated.
  void store_inquiry(ProcessorContext& ctx, const std::optional<Json>& old, const Json& inquiry,
                     int64_t root, const std::string& change, const Json& request, int code);
  // Fires the due deadlines as `inquiry.timeout` commands to their owner (the instance of the
  // root's partition decides, so attune.executions keeps one writer per inquiry). Returns the
  // next deadline left.
  std::optional<int64_t> fire_deadlines(ProcessorContext& ctx, int64_t now_ms);
  // wait_for (API.md §12.4): task `task` run `run` of workflow `wf` waits for inquiry `inquiry`.
  // A pending inquiry gets a waiter "wq:<inquiry>:<wf>:<n>" {workflow, task, run}, resolved by
  // store_inquiry when it leaves pending (or by its deletion); an inquiry that has ended already
  // resolves at once; one this store does not hold (unknown, deleted, or not created within this
  // workflow's tree) resolves as cancelled, so the task takes its timed_out() path, never waits
  // forever.
  void await_inquiry(ProcessorContext& ctx, int64_t wf, const std::string& task, int64_t run,
                     const Json& inquiry);
  void wake_waiters(ProcessorContext& ctx, int64_t inquiry, const Json* ended);

  // Workflows (workflows.cc). A workflow action's execution is not dispatched: the executor keeps
  // its run (engine State, definition, slots, ChildKey → child id) under "w:<id>" and "w:<id>/…"
  // (processors/RECORDS.md) and turns the engine's
  // commands into child executions, timers ("t:<at>:<workflow>:<n>") and its own end. Events for
  // runs are queued and drained at the end of each input, so nested effects stay in one commit.
  struct WorkflowEvent {
    int64_t workflow = 0;
    workflow::Event event;
  };
  // apply() plus: a child of a workflow reaching a terminal status queues child_finished.
  void apply_hooked(ProcessorContext& ctx, int64_t id, Result<Outcome> outcome);
  // execution.requested: a workflow action starts a run, anything else goes through on_requested.
  // `fresh`: ignore existing state (releasing a held child).
  // A workflow's child (fresh, with workflow_task) has its parameters checked against the
  // action's param_schema when dispatched: defaults filled in, or it fails with the fields named.
  void request(ProcessorContext& ctx, const Json& request, int64_t root, bool fresh);
  void start_workflow(ProcessorContext& ctx, const Json& request, int64_t root, const Json& def);
  // The run of a workflow execution whose request (or admission grant) produced `o`: it starts
  // when `o` left it scheduled; otherwise (failed, held by a policy) `o` is applied as it is.
  void run_workflow(ProcessorContext& ctx, int64_t id, int64_t root, const Json& def,
                    Result<Outcome> o);
  // admission.granted / admission.rejected: a held execution is dispatched (a workflow's run
  // starts) or ends cancelled.
  void on_admission_answer(ProcessorContext& ctx, const Envelope& e);
  // execution.cancel of a running workflow: canceling, then the engine's cancel. False: not one.
  bool cancel_workflow(ProcessorContext& ctx, int64_t id);
  void advance_workflow(ProcessorContext& ctx, const WorkflowEvent& ev);
  void drain_workflows(ProcessorContext& ctx);
  // Stores timer `timer` ({workflow, root, child | deadline}) due at `at_ms`.
  void start_timer(ProcessorContext& ctx, int64_t at_ms, const Json& timer);
  // Due timers → `workflow.timer` records; processing one → timer_fired.
  std::optional<SystemTime> fire_timers(SystemTime now, ProcessorContext& ctx);
  // A due timer: the engine's timer_fired, or a workflow execution's own deadline
  // (`timeout_seconds`): it ends `timeout` at once and its children are cancelled.
  void on_workflow_timer(ProcessorContext& ctx, const Json& payload);
  DefinitionLookup lookup() const;
  // Policies by action (admission/policy.h), cached until the definitions change.
  admission::Resolver resolver_;
  // A policy appeared, changed or was enabled: the executions of its actions already handed to a
  // worker, not held (requested before), count against its limits from now on — each goes to the
  // admission stage as `admission.adopt`, and its end sends `admission.release` like a held one.
  // Checked before each request (so the adoptions precede it in the action's partition) and at
  // each punctuation; a scan of this store, only when the set of policies changed.
  void adopt_running(ProcessorContext& ctx);
  uint64_t policies_version_ = 0;
  std::vector<JsonPtr> policies_seen_;

  std::deque<WorkflowEvent> wf_queue_;
  // What never changes in a run, parsed, by workflow execution id: the definition ("w:<id>/d")
  // and the parameters ("w:<id>/p"). Derived from the store; bounded: cleared when full.
  struct RunConstants {
    workflow::Definition definition;
    Json parameters;
    // The workflow execution's state as the run started: what advance_workflow reads of it
    // (action_ref, config, permission_set_refs, executor, rule_ref) does not change during the run.
    std::optional<ExecutionState> execution;
  };
  static constexpr size_t kRunCacheSize = 4096;
  std::unordered_map<int64_t, RunConstants> wf_runs_;
  uint64_t timer_seq_ = 0;

  const DefinitionsTable& table_;
  const ExecutorOptions options_;
  state::Store* store_ = nullptr;
  expiry::Pruner pruner_;
};

}  // namespace attune::executor
