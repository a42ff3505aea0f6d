// The core.native runtime: pack executables run directly.
#include "runners/native_runner.h"

#include <unistd.h>

#include "runners/action_files.h"

namespace attune::runners {

NativeRunner::NativeRunner(std::string temp_dir) : shell_(std::move(temp_dir)) {}

Result<ProcessSpec> NativeRunner::prepare(const ActionInvocation& inv) const {
  auto file = resolve_action_file(inv);
  if (!file.ok()) return file.error();
  if (::access(file->path.c_str(), X_OK) != 0) {
    return make_error(Errc::kBadRequest, "entrypoint '" + inv.entrypoint +
                                             "' is not executable (core.native runs the file "
                                             "itself: chmod +x it, or use runner_type shell)");
  }
  // ShellRunner runs an executable pack file directly; it supplies the environment and the
  // parameter delivery. The argv is pinned to the file resolved above.
  auto spec = shell_.prepare(inv);
  if (!spec.ok()) return spec.error();
  spec->argv = {file->path};
  return spec;
}

}  // namespace attune::runners
