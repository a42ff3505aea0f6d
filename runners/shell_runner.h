// ShellRunner: the `core.shell` runtime — pack script files and inline script text run by /bin/sh
// with the parameter document on stdin or in a file (API.md §11.3, §11.4).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "runners/runner.h"

namespace attune::runners {

// prepare() builds:
//  * a pack file (entrypoint names a regular file inside <pack_dir>/actions; symlinks and `..`
//    may not lead outside it): argv = {file} if executable, else {"/bin/sh", file}; the working
//    directory is <pack_dir>/actions.
//  * inline script text otherwise: argv = {"/bin/sh", "/dev/fd/3"} and fd 3 carries a prelude
//    that assigns each top-level parameter whose key is a shell identifier as a NON-exported
//    variable (strings raw, other values as compact JSON), then the script. The working
//    directory is pack_dir when set, else inherited.
// The environment is PATH and HOME (from the worker's environment, with defaults), LANG=C.UTF-8,
// then the caller's env_vars, then the ATTUNE_* variables, which env_vars cannot override.
// Parameter values never appear in argv or the environment. With parameter_delivery "file" the
// document is written to a 0400 file in `temp_dir` (listed in cleanup_paths); otherwise it is
// the process's stdin. Thread-safe (const after construction).
// Shared by the runners of pack files (shell, python, node.js):
// The pack file the entrypoint names (canonical path), "" if it names none (⇒ inline code: no
// pack_dir, not a regular file under <pack_dir>/actions). Errors: an empty entrypoint; an
// existing file outside <pack_dir>/actions (through `..` or symlinks); with a pack_dir, a
// one-line entrypoint ending in one of `script_suffixes` (".py") that names no file.
Result<std::string> resolve_pack_file(const ActionInvocation& inv,
                                      std::initializer_list<std::string_view> script_suffixes = {});
// Writes `content` to a new 0400 file in `dir` (the caller removes it); for
// parameter_delivery "file".
Result<std::string> write_parameter_file(const std::string& dir, int64_t execution_id,
                                         const std::string& content);

class ShellRunner final : public Runner {
 public:
  // `temp_dir`: where parameter files are created; empty = std::filesystem::temp_directory_path.
  explicit ShellRunner(std::string temp_dir = "");

  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;

  // The parameter document of `inv` rendered in its parameter_format (API.md §11.3). Errors: an
  // unknown parameter_delivery or format. Shared by the runners that spawn a process.
  static Result<std::string> parameter_document(const ActionInvocation& inv);
  // Delivers `document` per inv.parameter_delivery — spec.stdin_data, or a 0400 file in
  // `temp_dir` (listed in spec.cleanup_paths, named by ATTUNE_PARAMETER_FILE) — and sets
  // spec.env to build_environment's.
  static Status deliver_parameters(const ActionInvocation& inv, std::string document,
                                   const std::string& temp_dir, ProcessSpec& spec);
  // The environment prepare() gives the process (exposed for tests and other runners).
  static std::vector<std::string> build_environment(const ActionInvocation& inv,
                                                    const std::string& parameter_file);
  // The fd 3 prelude for inline scripts: one assignment per eligible top-level key.
  static std::string inline_prelude(const Json& parameters,
                                    const std::map<std::string, std::string>& env_vars);

 private:
  std::string temp_dir_;
};

}  // namespace attune::runners
