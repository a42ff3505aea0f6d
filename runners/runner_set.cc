// make_runner_set (see runner_set.h).
#include "runners/runner_set.h"

#include "runners/container_runner.h"
#include "runners/http_runner.h"
#include "runners/native_runner.h"
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
  set->add("core.native", std::make_shared<NativeRunner>(config.temp_dir));
  set->add("core.http", std::make_shared<HttpRunner>(config.self_exe));
  set->add("core.container", std::make_shared<ContainerRunner>(ContainerOptions{
                                 config.container_engine, config.container_extra_args,
                                 config.self_exe, config.temp_dir}));
  return set;
}

}  // namespace attune::runners
