// NodeRunner: the `core.nodejs` runtime — pack .js/.mjs/.cjs files and inline code run by
// `node` through Attune's bootstrap, with the pack's node_modules resolvable (issue 14).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "runners/environments.h"
#include "runners/runner.h"

namespace attune::runners {

struct NodeRunnerOptions {
  std::string temp_dir;        // parameter files; empty = std::filesystem::temp_directory_path
  std::string node = "node";   // looked up in the worker's PATH
  std::string runtime_dir;     // where the bootstrap files are written; empty = <envs_dir>/.runtime
                               // (or <temp_dir>/attune-runtime without environments)
};

// when_ready() waits for the pack's node_modules (PackEnvironments::when_ready). prepare():
//   argv = {node, <runtime_dir>/attune-node-bootstrap-<hash>.cjs, <pack file>}, cwd
//   <pack_dir>/actions; inline code (no such pack file): {node, bootstrap, "--inline"} with the
//   code on fd 3, compiled as CommonJS, cwd pack_dir when set.
// The bootstrap loads the action as the main module: CommonJS through the CJS loader
// (require.main === module holds), ES modules (.mjs, or .js under "type": "module") through
// import(). If the module exports a function — module.exports = fn, `export default fn`, or an
// export named `run` — it is called with the parameter document (parsed JSON for
// parameter_format json, the raw text otherwise; from stdin or ATTUNE_PARAMETER_FILE), awaited,
// and a result other than undefined is printed as one JSON line. Otherwise the module is a plain
// script that ran on load and reads stdin itself. A rejection/exception prints its stack and
// exits 1.
// Modules: NODE_PATH=<env>/node_modules for require(); for import, a resolve hook
// (module.register) retries bare specifiers the default resolution cannot find from <env>, so
// a pack's own node_modules still wins. Parameters and environment as ShellRunner. Thread-safe.
class NodeRunner final : public Runner {
 public:
  NodeRunner(std::shared_ptr<PackEnvironments> environments, NodeRunnerOptions options);

  void when_ready(const ActionInvocation& inv, ReadyFn ready) const override;
  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;

 private:
  // The bootstrap's path, writing it (and the resolve hook) on first use.
  Result<std::string> bootstrap() const;

  std::shared_ptr<PackEnvironments> environments_;
  NodeRunnerOptions options_;
  mutable std::mutex mu_;
  mutable std::string bootstrap_path_;
};

}  // namespace attune::runners
