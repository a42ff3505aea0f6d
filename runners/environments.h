// PackEnvironments: the per-pack environments python and node.js actions run in (a virtualenv
// from requirements.txt, node_modules from package.json), built under <envs_dir> keyed by pack
// and content hash, so an unchanged re-install reuses them (API.md §8, issue 14).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners {

struct EnvironmentOptions {
  std::string envs_dir;  // <data dir>/envs
  std::string pip_index_url;
  std::vector<std::string> pip_find_links, pip_extra_args;
  std::vector<std::string> npm_extra_args;
};

// The environment state shown on a pack: {status: building|ready|failed, message}; status
// "none" when the pack needs no environment (shown as null).
struct EnvironmentState {
  std::string status = "none";
  std::string message;
  Json to_json() const;
};

// Thread-safe. build() returns at once; builds run on background threads.
class PackEnvironments {
 public:
  explicit PackEnvironments(EnvironmentOptions options);
  ~PackEnvironments();

  // Starts building what `pack_dir` needs (no-op for what is already built for the same content).
  // `done` is called once, on any thread, with the final state.
  void build(const std::string& pack_ref, const std::string& pack_dir,
             std::function<void(EnvironmentState)> done);
  // Calls `ready` once (any thread, possibly at once) when the environments of `pack_dir` for
  // `runtime_ref` are ready (building them if nobody has), or with the build's error.
  void when_ready(const std::string& pack_ref, const std::string& pack_dir,
                  const std::string& runtime_ref, std::function<void(Status)> ready);

  const EnvironmentOptions& options() const { return options_; }

 private:
  const EnvironmentOptions options_;
};

}  // namespace attune::runners
