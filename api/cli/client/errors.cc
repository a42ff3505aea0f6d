#include "api/cli/client/errors.h"

namespace attune::cli::client {

ExitCode exit_code_for_http_status(int status) {
  if (status >= 200 && status < 300) return ExitCode::kOk;
  if (status == 401) return ExitCode::kNotLoggedIn;
  return ExitCode::kApiRefused;
}

ExecutionOutcome outcome_for_execution_status(std::string_view s) {
  if (s == "completed") return {true, ExitCode::kOk};
  if (s == "failed" || s == "abandoned") return {true, ExitCode::kExecutionFailed};
  if (s == "timeout") return {true, ExitCode::kTimedOut};
  if (s == "cancelled") return {true, ExitCode::kCancelled};
  return {false, ExitCode::kOk};
}

}  // namespace attune::cli::client
