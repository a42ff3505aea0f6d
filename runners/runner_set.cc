// make_runner_set (see runner_set.h).
#include "runners/runner_set.h"

#include "runners/nodejs_runner.h"
#include "runners/python_runner.h"
#include "runners/shell_runner.h"

namespace attune::runners {

std::shared_ptr<const RunnerSet> make_runner_set(const RunnerConfig& config,
                                                 std::shared_ptr<PackEnvironments> environments) {
  auto set = std::make_shared<RunnerSet>();
  set->add("core.shell", std::make_shared<ShellRunner>(config.temp_dir));
  set->add("core.python", std::make_shared<PythonRunner>(
                              environments, PythonRunnerOptions{config.temp_dir, config.python_warm}));
  set->add("core.nodejs",
           std::make_shared<NodeRunner>(environments, NodeRunnerOptions{config.temp_dir}));
  return set;
}

}  // namespace attune::runners
