// Following executions: wait for one to end (notifier first, polling as a safety net and fallback),
// print its outcome, and `execution tail --follow` (one line per execution change until Ctrl-C).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/cli/client/errors.h"
#include "api/cli/client/session.h"

namespace attune::cli::client {

// SIGINT/SIGTERM set a flag that the follow loops check (then exit 130). Idempotent.
void install_interrupt_handler();
bool interrupted();

// Subscribes to `filter`, then sends a message of an unknown type: the notifier handles one
// connection's messages in order and answers only problems (API.md §17.2), so the error frame that
// answers it proves the subscription is active. Frames received meanwhile are dropped (callers read
// the current state afterwards). False when no answer came within `timeout`.
bool subscribe_synced(NotifierConnection& conn, const std::string& filter,
                      std::chrono::milliseconds timeout);

struct WaitOptions {
  double timeout_seconds = 0;  // 0 = no limit
};

// Waits until execution `id` is terminal and returns it (GET /executions/{id}). `conn` may be an
// already subscribed notifier connection (subscribed before the execution was created), else one
// is opened and subscribed to entity:execution:<id> before the current status is read. Throws
// CliError kWaitGaveUp after the timeout, kInterrupted on Ctrl-C.
nlohmann::json wait_for_execution(Session& s, int64_t id, const WaitOptions& options,
                                  std::unique_ptr<NotifierConnection> conn);

// Prints a finished execution (stdout/stderr of the action, else its result JSON; --json: the
// execution) and returns the exit code for its status.
int report_execution(Session& s, const nlohmann::json& execution);

// One line per change of any execution the caller may read, until Ctrl-C (returns 130) or, with
// timeout_seconds > 0, until that many seconds have passed (returns 0). `subscribed` runs once
// the subscription is in place (or polling is chosen), so what it prints (the latest
// executions) and the changes that follow leave no gap between them.
int follow_all_executions(Session& s, double timeout_seconds,
                          const std::function<void()>& subscribed);

// A line of `execution tail`: time, id, action_ref, old → new status.
std::string change_line(const std::string& time, int64_t id, const std::string& action_ref,
                        const std::string& old_status, const std::string& status, bool color);

}  // namespace attune::cli::client
