// Execution status (API.md §11.1) and its ONE transition table. Every switch over a status or an
// input is exhaustive (no default), so a new status cannot be half-handled.
//
//   requested -schedule-> scheduling -hand_off-> scheduled -running-> running -finished-> terminal
//   scheduling -dispatch_failed-> failed
//   requested, scheduling -cancel-> cancelled     scheduled, running -cancel-> canceling
//   canceling -running-> canceling                canceling -finished(any)-> cancelled
//   scheduled, running -retry-> scheduled   (an abandoned attempt the action's max_retries allows
//                                            to run again, as the next attempt)
#pragma once

#include <optional>
#include <string_view>

namespace attune::executor {

enum class ExecutionStatus {
  kRequested,
  kScheduling,
  kScheduled,
  kRunning,
  kCanceling,
  kCompleted,
  kFailed,
  kTimeout,
  kCancelled,
  kAbandoned,
};

inline constexpr ExecutionStatus kAllStatuses[] = {
    ExecutionStatus::kRequested, ExecutionStatus::kScheduling, ExecutionStatus::kScheduled,
    ExecutionStatus::kRunning,   ExecutionStatus::kCanceling,  ExecutionStatus::kCompleted,
    ExecutionStatus::kFailed,    ExecutionStatus::kTimeout,    ExecutionStatus::kCancelled,
    ExecutionStatus::kAbandoned};

// What can happen to an execution.
enum class ExecutionInput {
  kSchedule,        // the executor starts scheduling a request
  kHandOff,         // dispatched to a worker
  kDispatchFailed,  // cannot be dispatched (action missing or disabled)
  kRunning,         // the worker reports the process started
  kCompleted,       // the worker reports the process ended with this status ...
  kFailed,
  kTimeout,
  kCancelled,
  kAbandoned,
  kCancel,  // a cancel request
  kRetry,   // the attempt was abandoned and the retry policy dispatches the next attempt
};

inline constexpr ExecutionInput kAllInputs[] = {
    ExecutionInput::kSchedule, ExecutionInput::kHandOff,   ExecutionInput::kDispatchFailed,
    ExecutionInput::kRunning,  ExecutionInput::kCompleted, ExecutionInput::kFailed,
    ExecutionInput::kTimeout,  ExecutionInput::kCancelled, ExecutionInput::kAbandoned,
    ExecutionInput::kCancel,   ExecutionInput::kRetry};

std::string_view to_string(ExecutionStatus s);
std::string_view to_string(ExecutionInput i);
std::optional<ExecutionStatus> parse_status(std::string_view s);
// The worker-reported end of a process ("completed", "failed", ...) as an input.
std::optional<ExecutionInput> parse_finished_status(std::string_view s);

bool is_terminal(ExecutionStatus s);
// Handed to a worker: a cancel must go through the worker.
bool is_handed_off(ExecutionStatus s);

// THE transition table: the status after `input`, or nullopt when the input does not apply in
// `status` (it is then ignored: a duplicate, stale or late report).
std::optional<ExecutionStatus> transition(ExecutionStatus status, ExecutionInput input);

}  // namespace attune::executor
