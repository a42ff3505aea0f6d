// The core.python runtime: pack files and inline code under the pack's virtualenv interpreter.
#include "runners/python_runner.h"

#include <filesystem>

#include "runners/formats.h"
#include "runners/shell_runner.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBasePython = "/usr/bin/python3";

}  // namespace

PythonRunner::PythonRunner(std::shared_ptr<PackEnvironments> environments,
                           PythonRunnerOptions options)
    : environments_(std::move(environments)), options_(std::move(options)) {
  if (options_.temp_dir.empty()) options_.temp_dir = fs::temp_directory_path().string();
}

PythonRunner::~PythonRunner() = default;

void PythonRunner::when_ready(const ActionInvocation& inv, ReadyFn ready) const {
  if (!environments_) return ready(Status{});
  environments_->when_ready(inv.pack_ref, inv.pack_dir, "core.python", std::move(ready));
}

std::shared_ptr<ForkServer> PythonRunner::fork_server(const std::string& python) const {
  std::lock_guard lock(mu_);
  Server& entry = servers_[python];
  entry.last_used = ++uses_;
  if (!entry.server) {
    entry.server = std::make_shared<ForkServer>(python);
    if (servers_.size() > kMaxServers) {
      auto lru = servers_.begin();
      for (auto it = servers_.begin(); it != servers_.end(); ++it) {
        if (it->second.last_used < lru->second.last_used) lru = it;
      }
      servers_.erase(lru);
    }
  }
  return entry.server;
}

Result<ProcessSpec> PythonRunner::prepare(const ActionInvocation& inv) const {
  auto document = ShellRunner::parameter_document(inv);
  if (!document.ok()) return document.error();
  auto pack_file = resolve_pack_file(inv, {".py"});
  if (!pack_file.ok()) return pack_file.error();

  ResolvedEnvironment env;
  env.python = kBasePython;
  if (environments_) {
    auto resolved = environments_->resolve(inv.pack_ref, inv.pack_dir, "core.python");
    if (!resolved.ok()) return resolved.error();
    env = std::move(*resolved);
  }

  ProcessSpec spec;
  spec.timeout = inv.timeout;
  spec.max_output_bytes = inv.max_output_bytes;
  ForkRequest request;
  if (!pack_file->empty()) {
    spec.argv = {env.python, *pack_file};
    spec.working_dir = (fs::path(inv.pack_dir) / "actions").string();
    request.script = *pack_file;
  } else {
    spec.argv = {env.python, "/dev/fd/3"};
    spec.fd3_data = inv.entrypoint;
    spec.working_dir = inv.pack_dir;
    request.code = inv.entrypoint;
  }

  if (auto st = ShellRunner::deliver_parameters(inv, std::move(*document), options_.temp_dir, spec);
      !st.ok()) {
    return st.error();
  }
  if (!env.dir.empty()) {
    for (auto& kv : spec.env) {
      if (kv.rfind("PATH=", 0) == 0) kv = "PATH=" + env.dir + "/bin:" + kv.substr(5);
    }
    spec.env.push_back("VIRTUAL_ENV=" + env.dir);
  }

  bool warm = options_.warm;
  for (const auto& [k, v] : inv.env_vars) {
    if (k.rfind("PYTHON", 0) == 0) warm = false;
  }
  if (warm) {
    // The request is completed at launch from the spec as it is then (the worker may add to its
    // environment after prepare). Inline code travels in the request, not on fd 3.
    std::shared_ptr<ForkServer> server = fork_server(env.python);
    spec.launch = [server, request = std::move(request)](const ProcessSpec& launched,
                                                         const LaunchFds& fds) {
      ForkRequest r = request;
      r.env = launched.env;
      r.cwd = launched.working_dir;
      LaunchFds passed = fds;
      passed.fd3 = -1;
      return server->launch(r, passed);
    };
  }
  return spec;
}

}  // namespace attune::runners
