// NativeRunner: the `core.native` runtime — a pack's executable file (a compiled program, or a
// script with a #! line) run directly, with the parameters and environment of core.shell.
#pragma once

#include <string>

#include "runners/shell_runner.h"

namespace attune::runners {

// prepare(): the entry point must be a regular, executable file inside <pack_dir>/actions
// (resolve_action_file); argv = {that file}, working directory <pack_dir>/actions, environment
// and parameter delivery (stdin or a 0400 file) exactly as ShellRunner. Clear errors, and no
// fallback to a shell, when the file is missing, outside the pack or not executable.
// Thread-safe (const after construction).
class NativeRunner final : public Runner {
 public:
  explicit NativeRunner(std::string temp_dir = "");

  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;

 private:
  ShellRunner shell_;
};

}  // namespace attune::runners
