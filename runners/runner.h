// Runner interface: turns an action invocation into a ProcessSpec (one Runner per runtime), and
// turns the ProcessResult back into the execution result of API.md §11.5.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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
  int64_t attempt = 1;  // the dispatch attempt (names per-attempt resources, e.g. containers)
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
  Json action = Json::object();  // the action definition (runner-specific fields: image, ...)
  // The pack's config (API.md §8), given to the action as a 0400 file named by
  // ATTUNE_PACK_CONFIG_FILE (never in the environment or the parameter document); null = none.
  Json pack_config = nullptr;
};

// What a finished attempt reports: the execution status (completed|failed|timeout|cancelled)
// and its result object (API.md §11.5).
struct Outcome {
  std::string status;
  Json result;
};

// One implementation per runtime. prepare() may create files (e.g. a parameter file); they are
// listed in ProcessSpec::cleanup_paths, which ProcessSupervisor removes when the process ends or
// fails to start — a caller that does not spawn the spec must remove them itself.
// Implementations are immutable after construction and thread-safe.
class Runner {
 public:
  using ReadyFn = std::function<void(Status)>;
  virtual ~Runner() = default;
  // Calls `ready` exactly once, on any thread (possibly before returning), when `inv` can be
  // prepared — e.g. once the pack's environment is built — or with the error that keeps it from
  // running (its message becomes the execution's error). Default: at once.
  virtual void when_ready(const ActionInvocation& inv, ReadyFn ready) const {
    (void)inv;
    ready(Status{});
  }
  virtual Result<ProcessSpec> prepare(const ActionInvocation& inv) const = 0;
  // The status and result of an attempt whose process ended, or that never started (then
  // `pr.launch_error` is set and nothing else). Default: execution_status_for + make_result;
  // runners whose process speaks a protocol of its own (http) build their own result.
  virtual Outcome finish(const ActionInvocation& inv, const ProcessResult& pr) const;
};

// The runners of a worker by canonical runtime ref (core.shell, core.python, ...). Immutable
// once built and shared by every worker instance of a process.
class RunnerSet {
 public:
  void add(std::string runtime_ref, std::shared_ptr<const Runner> runner);
  // The runner of a runtime ref or alias (canonical_runtime), or null.
  const Runner* find(std::string_view runtime_ref) const;

 private:
  std::map<std::string, std::shared_ptr<const Runner>, std::less<>> runners_;
};

// Writes `content` to a new file `<dir>/<prefix>-XXXXXX` with mode 0400 and returns its path.
Result<std::string> write_private_file(const std::string& dir, const std::string& prefix,
                                       const std::string& content);

// Runtime ref for a runtime name or alias (API.md §11.4): core.shell, core.python, core.nodejs,
// core.native, core.http, core.container; "" if unknown. An empty name is core.shell.
std::string canonical_runtime(std::string_view name);

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
