// Hidden subcommands of the attune binary that runners start as child processes (not part of the
// user-facing CLI): `http-request` (core.http) and `container-run` (core.container).
#pragma once

#include <optional>

namespace attune::runners {

// If argv[1] names a hidden subcommand, runs it and returns its exit code; else nullopt.
std::optional<int> run_hidden_subcommand(int argc, char** argv);

}  // namespace attune::runners
