// The executor's decisions (API.md §10, §11): pure functions (state, input, now) → (new state,
// records). executor_processor.h is the I/O shell that loads and stores the state.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/executor/execution_status.h"
#include "topology/definitions_table.h"

namespace attune::executor {

using DefinitionLookup = std::function<JsonPtr(std::string_view kind, std::string_view ref)>;

// What the executor keeps per execution id: the Execution (API shape plus `attempt`, `pack_ref`,
// ...) and the root execution id that keys its records. `skipped`: a request that created no
// execution (its rule was disabled or deleted), kept so a redelivery is ignored too.
struct ExecutionState {
  Json execution;
  int64_t root = 0;
  bool skipped = false;

  std::string dump() const;
  static std::optional<ExecutionState> parse(std::string_view text);
  ExecutionStatus status() const;
  int64_t attempt() const;
};

struct Outcome {
  std::optional<ExecutionState> state;  // set: store it
  std::vector<OutRecord> records;
  std::vector<ExecutionStatus> terminal;  // terminal statuses reached (for counters)
  std::string ignored;                    // non-empty: why the input changed nothing
};

// `execution.requested`: `request` is the payload's Execution, `root` the record key's id.
// Existing state (or a skip marker) ⇒ ignored. A rule execution whose rule is disabled or
// deleted ⇒ `enforcement.updated` disabled, no execution. Otherwise requested → scheduling →
// scheduled with `execution.dispatch` (attempt 1), or → failed when the action is missing or
// disabled; rule executions also get `enforcement.updated` processed. Throws nothing; a
// malformed request is reported as Result error.
// `refuse` non-empty: the execution is created and fails at once with {"error": refuse} (a
// workflow child whose rendered parameters do not satisfy its action's param_schema).
Result<Outcome> on_requested(const std::optional<ExecutionState>& state, const Json& request,
                             int64_t root, const DefinitionLookup& lookup, int64_t now_ms,
                             std::string_view refuse = {});

// `result.running` {id, attempt, worker, started_at, pid}.
Result<Outcome> on_running(const std::optional<ExecutionState>& state, const Json& report,
                           int64_t now_ms);

// `result.finished` {id, attempt, worker, status, result, finished_at}. Stale attempts and
// reports for executions already terminal are ignored. An `abandoned` attempt (its worker was
// lost: reported by the monitor, or by the restarted worker itself) of an execution with
// retries left (`retry_count` < `max_retries`, copied from the action when requested) whose
// action still exists and is enabled is retried instead: the same execution goes back to
// `scheduled` with attempt + 1, retry_count + 1, `retry_reason` set, and is dispatched again
// (reports of the old attempt are then stale). Otherwise it ends `abandoned`.
Result<Outcome> on_finished(const std::optional<ExecutionState>& state, const Json& report,
                            const DefinitionLookup& lookup, int64_t now_ms);

// The action's retry policy: its `max_retries` (API.md §7 Execution.max_retries; an action
// field of ours), clamped to 0..kMaxRetries; 0 when absent or not an integer.
inline constexpr int64_t kMaxRetries = 100;
int64_t max_retries_of(const Json& action);

// `execution.cancel` {id}: before hand-off ⇒ cancelled; after ⇒ canceling and an
// `execution.cancel` {id, attempt} to the worker on attune.dispatch.
Result<Outcome> on_cancel(const std::optional<ExecutionState>& state, int64_t id, int64_t now_ms);

// The pack ref of an action ref ("core.echo" → "core").
std::string pack_of(std::string_view action_ref);

}  // namespace attune::executor
