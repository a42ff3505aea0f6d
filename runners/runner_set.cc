// make_runner_set (see runner_set.h).
#include "runners/runner_set.h"

#include "runners/shell_runner.h"

namespace attune::runners {

std::shared_ptr<const RunnerSet> make_runner_set(const RunnerConfig& config,
                                                 std::shared_ptr<PackEnvironments> environments) {
  (void)environments;
  auto set = std::make_shared<RunnerSet>();
  set->add("core.shell", std::make_shared<ShellRunner>(config.temp_dir));
  return set;
}

}  // namespace attune::runners
