// Execution status names and the transition table.
#include "processors/executor/execution_status.h"

namespace attune::executor {

std::string_view to_string(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kRequested:
      return "requested";
    case ExecutionStatus::kScheduling:
      return "scheduling";
    case ExecutionStatus::kScheduled:
      return "scheduled";
    case ExecutionStatus::kRunning:
      return "running";
    case ExecutionStatus::kCanceling:
      return "canceling";
    case ExecutionStatus::kCompleted:
      return "completed";
    case ExecutionStatus::kFailed:
      return "failed";
    case ExecutionStatus::kTimeout:
      return "timeout";
    case ExecutionStatus::kCancelled:
      return "cancelled";
    case ExecutionStatus::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

std::string_view to_string(ExecutionInput i) {
  switch (i) {
    case ExecutionInput::kSchedule:
      return "schedule";
    case ExecutionInput::kHandOff:
      return "hand_off";
    case ExecutionInput::kDispatchFailed:
      return "dispatch_failed";
    case ExecutionInput::kRunning:
      return "running";
    case ExecutionInput::kCompleted:
      return "completed";
    case ExecutionInput::kFailed:
      return "failed";
    case ExecutionInput::kTimeout:
      return "timeout";
    case ExecutionInput::kCancelled:
      return "cancelled";
    case ExecutionInput::kAbandoned:
      return "abandoned";
    case ExecutionInput::kCancel:
      return "cancel";
    case ExecutionInput::kRetry:
      return "retry";
  }
  return "unknown";
}

std::optional<ExecutionStatus> parse_status(std::string_view s) {
  for (ExecutionStatus status : kAllStatuses) {
    if (to_string(status) == s) return status;
  }
  return std::nullopt;
}

std::optional<ExecutionInput> parse_finished_status(std::string_view s) {
  if (s == "completed") return ExecutionInput::kCompleted;
  if (s == "failed") return ExecutionInput::kFailed;
  if (s == "timeout") return ExecutionInput::kTimeout;
  if (s == "cancelled") return ExecutionInput::kCancelled;
  if (s == "abandoned") return ExecutionInput::kAbandoned;
  return std::nullopt;
}

bool is_terminal(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kRequested:
    case ExecutionStatus::kScheduling:
    case ExecutionStatus::kScheduled:
    case ExecutionStatus::kRunning:
    case ExecutionStatus::kCanceling:
      return false;
    case ExecutionStatus::kCompleted:
    case ExecutionStatus::kFailed:
    case ExecutionStatus::kTimeout:
    case ExecutionStatus::kCancelled:
    case ExecutionStatus::kAbandoned:
      return true;
  }
  return false;
}

bool is_handed_off(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kScheduled:
    case ExecutionStatus::kRunning:
    case ExecutionStatus::kCanceling:
      return true;
    case ExecutionStatus::kRequested:
    case ExecutionStatus::kScheduling:
    case ExecutionStatus::kCompleted:
    case ExecutionStatus::kFailed:
    case ExecutionStatus::kTimeout:
    case ExecutionStatus::kCancelled:
    case ExecutionStatus::kAbandoned:
      return false;
  }
  return false;
}

namespace {

// The status a worker's finished report sets, for an execution that was handed off.
std::optional<ExecutionStatus> finished(ExecutionStatus status, ExecutionStatus reported) {
  switch (status) {
    case ExecutionStatus::kScheduled:
    case ExecutionStatus::kRunning:
      return reported;
    case ExecutionStatus::kCanceling:
      return ExecutionStatus::kCancelled;
    case ExecutionStatus::kRequested:
    case ExecutionStatus::kScheduling:
    case ExecutionStatus::kCompleted:
    case ExecutionStatus::kFailed:
    case ExecutionStatus::kTimeout:
    case ExecutionStatus::kCancelled:
    case ExecutionStatus::kAbandoned:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ExecutionStatus> transition(ExecutionStatus status, ExecutionInput input) {
  using S = ExecutionStatus;
  switch (input) {
    case ExecutionInput::kSchedule:
      if (status == S::kRequested) return S::kScheduling;
      return std::nullopt;
    case ExecutionInput::kHandOff:
      if (status == S::kScheduling) return S::kScheduled;
      return std::nullopt;
    case ExecutionInput::kDispatchFailed:
      if (status == S::kScheduling) return S::kFailed;
      return std::nullopt;
    case ExecutionInput::kRunning:
      if (status == S::kScheduled) return S::kRunning;
      if (status == S::kCanceling) return S::kCanceling;  // records started_at, stays canceling
      return std::nullopt;
    case ExecutionInput::kCompleted:
      return finished(status, S::kCompleted);
    case ExecutionInput::kFailed:
      return finished(status, S::kFailed);
    case ExecutionInput::kTimeout:
      return finished(status, S::kTimeout);
    case ExecutionInput::kCancelled:
      return finished(status, S::kCancelled);
    case ExecutionInput::kAbandoned:
      return finished(status, S::kAbandoned);
    case ExecutionInput::kRetry:
      if (status == S::kScheduled || status == S::kRunning) return S::kScheduled;
      return std::nullopt;
    case ExecutionInput::kCancel:
      switch (status) {
        case S::kRequested:
        case S::kScheduling:
          return S::kCancelled;
        case S::kScheduled:
        case S::kRunning:
          return S::kCanceling;
        case S::kCanceling:
        case S::kCompleted:
        case S::kFailed:
        case S::kTimeout:
        case S::kCancelled:
        case S::kAbandoned:
          return std::nullopt;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace attune::executor
