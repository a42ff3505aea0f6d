// Pack action files for runners that need one (native, container): the entry point resolved
// strictly inside <pack_dir>/actions.
#pragma once

#include <string>

#include "runners/runner.h"

namespace attune::runners {

struct ActionFile {
  std::string path;      // absolute, symlinks resolved
  std::string relative;  // relative to <pack_dir>/actions (resolved), '/'-separated
};

// The regular file inv.entrypoint names relative to <pack_dir>/actions. Errors (kBadRequest,
// with a message fit for the execution's result): no pack directory, empty entry point, no such
// file, not a regular file, or a path (`..`, symlinks) leading outside the actions directory.
Result<ActionFile> resolve_action_file(const ActionInvocation& inv);

}  // namespace attune::runners
