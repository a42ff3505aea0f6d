// Runner interface: turns an action invocation into a ProcessSpec (one Runner per runtime), and
// turns the ProcessResult back into the execution result of API.md §11.5.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runners/process_supervisor.h"
#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners {

// Everything a runner needs to start one attempt of an execution.
struct ActionInvocation {
  int64_t execution_id = 0;
  std::string action_ref, pack_ref, rule_ref, trigger_ref;
  std::string runtime_ref = "core.shell";
  std::string entrypoint;            // script text, or a file path relative to <pack_dir>/actions
  std::string pack_dir;              // empty for actions created over the API
  Json parameters = Json::object();  // the parameter document (already merged with secrets)
  std::vector<std::string> secret_values;       // values to redact (>= 4 chars) from stdout/stderr
  std::map<std::string, std::string> env_vars;  // caller env; never overrides ATTUNE_*
  std::string api_url;                          // without /api/v1
  std::optional<std::string> api_token;
  std::string parameter_delivery = "stdin";  // stdin | file
  std::string parameter_format = "json";     // json | dotenv | yaml
  std::string output_format = "text";        // text | json | yaml | jsonl
  std::chrono::milliseconds timeout{300000};
  size_t max_output_bytes = 1 << 20;
};

// One implementation per runtime. prepare() may create files (e.g. a parameter file); they are
// listed in ProcessSpec::cleanup_paths, which ProcessSupervisor removes when the process ends or
// fails to start — a caller that does not spawn the spec must remove them itself.
// Implementations are immutable after construction and thread-safe.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual Result<ProcessSpec> prepare(const ActionInvocation& inv) const = 0;
};

// The execution result object of API.md §11.5: stdout/stderr (secrets redacted), exit_code,
// duration_ms, data/top-level keys/output_parse_error per inv.output_format, error, and the
// *_truncated flags. Pure.
Json make_result(const ActionInvocation& inv, const ProcessResult& pr);

// "completed" (exit 0) | "failed" | "timeout" | "cancelled". A cancel wins over a timeout that
// raced with it; a launch error is "failed".
std::string execution_status_for(const ProcessResult& pr);

// Replaces each secret value of at least 4 characters in `text` with "***" (longest first). If
// `truncated`, a trailing prefix of a secret cut by the truncation is replaced too.
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets,
                           bool truncated = false);

}  // namespace attune::runners
