// The executor's decisions (API.md §10, §11): pure functions (state, input, now) → (new state,
// records). executor_processor.h is the I/O shell that loads and stores the state.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/admission/policy.h"
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
  // Held by the admission stage (an admission policy applied when it was requested):
  // {action, group, granted}; null otherwise. A held execution that ends sends
  // `admission.release`, so its slot (or its place in the queue) goes to the next in line.
  Json admission;

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
// `policy`: what applies to the action (admission/policy.h); when it admits (a concurrency or
// rate policy), the execution stays `scheduling` and an `admission.request` goes to
// attune.admission (keyed by action ref) instead of the dispatch. Its `max_retries` is the
// request's `retry` (or `max_retries`), else the policy's retry, else the action's max_retries.
// A request's `retry_count` (a retry attempt) is kept.
Result<Outcome> on_requested(const std::optional<ExecutionState>& state, const Json& request,
                             int64_t root, const DefinitionLookup& lookup, int64_t now_ms,
                             std::string_view refuse = {},
                             const admission::Effective* policy = nullptr);

// `admission.granted` {id}: a held execution is dispatched (or fails when its action is gone or
// disabled). `admission.rejected` {id, error}: it ends `cancelled` with that error. Anything
// else (not held, granted already, ended) is ignored.
Result<Outcome> on_admission(const std::optional<ExecutionState>& state, bool granted,
                             const Json& payload, const DefinitionLookup& lookup, int64_t now_ms);

// The `admission.release` record of a held execution that ended; nullopt when it was not held.
std::optional<OutRecord> admission_release(const ExecutionState& st, int64_t now_ms);

// Retries (API.md §15): the next attempt of a top-level execution that ended with `status`,
// when its retry policy (`retry` of the execution itself, else the action's policy) allows
// one: {delay_ms, request} where request is the new execution (original_execution,
// retry_count, retry_reason = status; the caller gives it its id). nullopt otherwise.
struct RetryPlan {
  int64_t delay_ms = 0;
  Json request;
};
std::optional<RetryPlan> plan_retry(const ExecutionState& ended, std::string_view status,
                                    const admission::Effective* policy);

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
