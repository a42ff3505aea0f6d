// Exit codes of the `attune` client commands and the one error type they end with.
//
// A client command is a one-shot process: every failure ends the command with a message and an exit
// code. Commands therefore raise CliError at the point of failure and the dispatcher (commands.cc)
// catches it, prints it and returns its exit code — the module edge of the client. Nothing else in
// the client throws, and no CliError escapes `run()`.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace attune::cli::client {

// Documented in `attune --help` (kExitCodesHelp) and in the README.
enum class ExitCode : int {
  kOk = 0,               // success; execution completed
  kExecutionFailed = 1,  // execution failed or abandoned
  kUsage = 2,            // bad command line, bad key=value, unreadable file
  kApiRefused = 3,       // the API answered 4xx/5xx (other than 401)
  kNotLoggedIn = 4,      // no credentials, or 401 after a refresh
  kUnreachable = 5,      // cannot connect to the server
  kTimedOut = 6,         // execution ended with status timeout
  kCancelled = 7,        // execution ended with status cancelled
  kWaitGaveUp = 8,       // --wait/--follow gave up after --timeout
  kInterrupted = 130,    // Ctrl-C during --wait/--follow
};

inline constexpr std::string_view kExitCodesHelp =
    "Exit codes: 0 success (execution completed), 1 execution failed or abandoned, 2 usage error,\n"
    "3 the API refused the request, 4 not logged in (run `attune login`), 5 cannot reach the "
    "server,\n6 execution timed out, 7 execution cancelled, 8 --wait gave up after --timeout, "
    "130 interrupted.";

class CliError : public std::runtime_error {
 public:
  CliError(ExitCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  // An error answer of the API (§3): status, `code`, `details` kept for printing.
  CliError(ExitCode code, std::string message, int http_status, std::string api_code,
           nlohmann::json details)
      : std::runtime_error(std::move(message)),
        code_(code),
        http_status_(http_status),
        api_code_(std::move(api_code)),
        details_(std::move(details)) {}

  ExitCode code() const { return code_; }
  int http_status() const { return http_status_; }  // 0 when not an API answer
  const std::string& api_code() const { return api_code_; }
  const nlohmann::json& details() const { return details_; }

 private:
  ExitCode code_;
  int http_status_ = 0;
  std::string api_code_;
  nlohmann::json details_;
};

[[noreturn]] inline void usage_error(std::string message) {
  throw CliError(ExitCode::kUsage, std::move(message));
}

// 401 ⇒ kNotLoggedIn; any other non-2xx ⇒ kApiRefused; 2xx ⇒ kOk.
ExitCode exit_code_for_http_status(int status);

// completed ⇒ 0; failed/abandoned ⇒ 1; timeout ⇒ 6; cancelled ⇒ 7. Non-terminal or unknown
// statuses return nullopt-like kOk with `terminal` false.
struct ExecutionOutcome {
  bool terminal = false;
  ExitCode code = ExitCode::kOk;
};
ExecutionOutcome outcome_for_execution_status(std::string_view status);

}  // namespace attune::cli::client
