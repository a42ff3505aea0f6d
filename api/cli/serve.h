// `attune serve`: opens the data directory, starts every stage, the REST API and the notifier,
// prints the ready line, and shuts down cleanly on SIGTERM/SIGINT.
#pragma once

#include "api/cli/config.h"

namespace attune::cli {

// Returns the process exit code (0 after a clean shutdown, non-zero with a message on stderr).
int run_serve(const ServeConfig& config);

}  // namespace attune::cli
