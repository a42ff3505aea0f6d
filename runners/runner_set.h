// The runners of this build, by runtime: what `attune serve` gives its workers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runners/environments.h"
#include "runners/runner.h"

namespace attune::runners {

struct RunnerConfig {
  std::string temp_dir;  // parameter files; empty ⇒ the system temp directory
  std::string self_exe;  // this binary (runners that run a subcommand of it)
  std::string container_engine = "podman";
  std::vector<std::string> container_extra_args;
  bool python_warm = true;  // core.python: fork server per interpreter (python_runner.h)
};

// core.shell, core.python, core.nodejs, core.native, core.http, core.container.
std::shared_ptr<const RunnerSet> make_runner_set(const RunnerConfig& config,
                                                 std::shared_ptr<PackEnvironments> environments);

}  // namespace attune::runners
