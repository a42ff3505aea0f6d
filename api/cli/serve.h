// `attune serve`: opens the data directory, starts every stage, the REST API and the notifier,
// prints the ready line, and shuts down cleanly on SIGTERM/SIGINT.
#pragma once

#include "api/cli/config.h"

namespace attune::cli {

// Returns the process exit code (0 after a clean shutdown, non-zero with a message on stderr).
int run_serve(const ServeConfig& config);

// `attune serve --detach`: runs run_serve() in a child process of its own session writing to
// <data dir>/serve.log, waits until it is ready (or exits, or ready_timeout_s pass), prints its
// "attune:" lines and its pid (also in <data dir>/serve.pid). 0 once ready, 1 otherwise.
int run_serve_detached(ServeConfig config, int ready_timeout_s);

}  // namespace attune::cli
