// PythonRunner: the `core.python` runtime — pack .py files and inline code run by the pack's
// virtualenv interpreter, started by a warm fork server when possible (API.md §11, issue 14).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runners/environments.h"
#include "runners/fork_server.h"
#include "runners/runner.h"

namespace attune::runners {

struct PythonRunnerOptions {
  std::string temp_dir;  // parameter files; empty = std::filesystem::temp_directory_path
  bool warm = true;      // fork server per interpreter; false = every execution starts cold
};

// when_ready() waits for the pack's python environment (PackEnvironments::when_ready), so an
// execution of a pack whose environment is building waits, and one whose build failed fails
// with the build's message. prepare() builds:
//  * a pack file: entrypoint names a regular file inside <pack_dir>/actions (the checks of
//    resolve_pack_file); a missing *.py file is an error. argv = {python, file}, working
//    directory <pack_dir>/actions.
//  * inline code otherwise (actions created over the API): argv = {python, "/dev/fd/3"} with the
//    code on fd 3; working directory pack_dir when set.
// `python` is the pack's virtualenv interpreter (<env>/bin/python, its bin/ first in PATH and
// VIRTUAL_ENV set) or the base interpreter for packs without requirements.txt. Parameters are
// delivered exactly as by ShellRunner (stdin or a 0400 file, json/dotenv/yaml) and the
// environment is ShellRunner::build_environment's (ATTUNE_*; secrets only in the document).
//
// Warm start: the spec also carries a ProcessSpec::launch that asks the interpreter's
// ForkServer to fork the process (see fork_server.h); argv stays the cold fallback. Not used
// when the caller's env_vars set PYTHON* variables (they configure a starting interpreter).
// Thread-safe.
class PythonRunner final : public Runner {
 public:
  // `environments` may be null (then every pack runs with /usr/bin/python3).
  PythonRunner(std::shared_ptr<PackEnvironments> environments, PythonRunnerOptions options);
  ~PythonRunner() override;

  void when_ready(const ActionInvocation& inv, ReadyFn ready) const override;
  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;

  // The fork server of an interpreter, created on first use. At most kMaxServers are kept: the
  // least recently used one beyond that is dropped (its server stops once no launch uses it;
  // the processes it forked are the worker's children and are not affected) — e.g. servers of
  // virtualenvs replaced by a re-install.
  std::shared_ptr<ForkServer> fork_server(const std::string& python) const;

  static constexpr size_t kMaxServers = 16;

 private:
  struct Server {
    std::shared_ptr<ForkServer> server;
    uint64_t last_used = 0;
  };
  std::shared_ptr<PackEnvironments> environments_;
  PythonRunnerOptions options_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Server> servers_;
  mutable uint64_t uses_ = 0;
};

}  // namespace attune::runners
