// Pure helpers of the worker stage: the ActionInvocation of a dispatch, the in-flight attempt
// record kept in the worker's store, and the result records it reports (processors/RECORDS.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runners/runner.h"
#include "topology/core/record.h"

namespace attune::worker {

inline constexpr int64_t kDefaultTimeoutSeconds = 300;

// The core.shell runtime and its aliases (API.md §11.4).
bool is_shell_runtime(std::string_view runtime_ref);

// A validated `execution.dispatch` payload.
struct Dispatch {
  int64_t id = 0;
  int64_t attempt = 0;
  int64_t root = 0;
  Json execution;
  Json action;
};
Result<Dispatch> parse_dispatch(const Json& payload, int64_t fallback_id);

// The invocation of one attempt: entrypoint, runtime, parameter delivery/format, output format,
// timeout (request → action → 300 s) and max_output_bytes from the action; parameters
// (config), env_vars, rule and trigger refs from the execution. runtime_ref is the action's as
// given (empty ⇒ core.shell).
// `default_timeout_seconds`: when neither the execution nor the action sets timeout_seconds
// (API.md §11.5: request → workflow task → action → server default).
runners::ActionInvocation build_invocation(const Dispatch& d, const std::string& api_url,
                                           int64_t default_timeout_seconds = kDefaultTimeoutSeconds);

// One attempt handed to this worker and not yet reported finished. Kept in the worker's store
// so that a restart reports it `abandoned` instead of leaving it running forever.
struct InFlight {
  int64_t id = 0;
  int64_t attempt = 0;
  int64_t root = 0;
  int64_t started_at_ms = 0;
  int pid = 0;  // 0 until the process is started
  bool cancel_requested = false;

  std::string dump() const;
  static std::optional<InFlight> parse(std::string_view text);
};

std::string attempt_key(int64_t id, int64_t attempt);

// `result.running` {id, attempt, worker, started_at, pid}.
OutRecord running_record(const InFlight& f, const std::string& worker, int64_t now_ms);
// `result.finished` {id, attempt, worker, status, result, finished_at}.
OutRecord finished_record(int64_t id, int64_t attempt, int64_t root, const std::string& worker,
                          std::string_view status, Json result, int64_t now_ms);

}  // namespace attune::worker
