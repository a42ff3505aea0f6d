// PackEnvironments: the per-pack environments python and node.js actions run in (a virtualenv
// from requirements.txt, node_modules from package.json), built under <envs_dir> keyed by pack
// and content hash, so an unchanged re-install reuses them (API.md §8, issue 14).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners {

class ProcessSupervisor;

struct EnvironmentOptions {
  std::string envs_dir;  // <data dir>/envs
  std::string pip_index_url;
  std::vector<std::string> pip_find_links, pip_extra_args;
  std::vector<std::string> npm_extra_args;
  std::string python = "/usr/bin/python3";  // base interpreter of every virtualenv
  std::string npm = "npm";                  // looked up in the worker's PATH
  std::chrono::seconds build_timeout{900};  // per step (venv, pip, npm); then the build fails
};

// The environment state shown on a pack: {status: building|ready|failed, message}; status
// "none" when the pack needs no environment (shown as null).
struct EnvironmentState {
  std::string status = "none";
  std::string message;
  Json to_json() const;
};

// What an action of a runtime runs with once its environment is ready.
struct ResolvedEnvironment {
  std::string dir;           // the environment's directory; "" when the pack needs none
  std::string python;        // core.python: <dir>/bin/python, or options.python without one
  std::string node_modules;  // core.nodejs: <dir>/node_modules, "" without one
};

// Layout, per pack and per content hash of its dependency files:
//   <envs_dir>/<pack>/python-<hash>/   virtualenv (python3 -m venv, pip install -r
//                                      requirements.txt run in the pack directory)
//   <envs_dir>/<pack>/node-<hash>/     package.json (+ package-lock.json, + local file:
//                                      dependencies) and node_modules (npm ci when a lock exists,
//                                      else npm install)
// The python hash covers requirements.txt and the base interpreter; the node hash covers
// package.json, package-lock.json and the content of the local `file:` dependencies it names.
// A pack without requirements.txt runs with the base interpreter (options.python, no venv), one
// without package.json with no node_modules: nothing is built for them.
//
// Builds run as child processes of an internal ProcessSupervisor; file-system steps and every
// callback run on one internal thread, never on the caller's. A build writes into
// `.<kind>-<hash>.tmp` and renames it to its final name only when complete, so a crash leaves
// nothing that looks ready (leftovers are removed by the next build of the same content). A
// build in progress is shared: concurrent build()/when_ready() for the same content wait for
// one build. Results are cached: a ready directory is reused (also across restarts); a failure
// is remembered in memory, reported to when_ready(), and retried by the next build() (a
// re-install). Each step has options.build_timeout; a failure's message ends with the tail of
// pip's/npm's output.
//
// Thread-safe. The destructor kills running builds; callbacks still pending are dropped.
class PackEnvironments {
 public:
  // Throws std::system_error if the build supervisor cannot start (startup only).
  explicit PackEnvironments(EnvironmentOptions options);
  ~PackEnvironments();

  PackEnvironments(const PackEnvironments&) = delete;
  PackEnvironments& operator=(const PackEnvironments&) = delete;

  // Starts building what `pack_dir` needs (no-op for what is already built for the same content).
  // `done` is called once, on the internal thread, with the final state: "none" (nothing to
  // build), "ready", or "failed" with the message(s).
  void build(const std::string& pack_ref, const std::string& pack_dir,
             std::function<void(EnvironmentState)> done);
  // Calls `ready` once (on the internal thread) when the environment of `pack_dir` for
  // `runtime_ref` (canonical: core.python, core.nodejs; others need none) is ready — building it
  // if nobody has — or with the build's error.
  void when_ready(const std::string& pack_ref, const std::string& pack_dir,
                  const std::string& runtime_ref, std::function<void(Status)> ready);
  // The environment `runtime_ref` uses for `pack_dir` now, without building: an error if it is
  // needed and not ready — kNotFound when not built (yet, or building), kUnavailable with the
  // build's message when it failed. Reads the pack's dependency files.
  Result<ResolvedEnvironment> resolve(const std::string& pack_ref, const std::string& pack_dir,
                                      const std::string& runtime_ref) const;

  const EnvironmentOptions& options() const { return options_; }

 private:
  struct Impl;
  const EnvironmentOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The directory name of the environment `runtime_ref` needs for `pack_dir`: "python-<hash>",
// "node-<hash>", or "" when none is needed (no requirements.txt / package.json, or another
// runtime). Pure apart from reading the pack's files; exposed for tests.
Result<std::string> environment_name(const EnvironmentOptions& options,
                                     const std::string& pack_dir, const std::string& runtime_ref);

// Removes environments no installed pack uses: the directories of packs not in `live` (pack ref
// → its installed directory) and, for the others, every environment but the ones their current
// content names (environment_name). Call only while no build runs and no action uses an older
// environment (at start). Returns the removed paths.
std::vector<std::string> sweep_environments(const EnvironmentOptions& options,
                                            const std::map<std::string, std::string>& live);

}  // namespace attune::runners
