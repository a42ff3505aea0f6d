// ContainerRunner: the `core.container` runtime — an action run in a fresh container of its
// `image` by a container engine (podman; docker-compatible CLI), with the pack mounted read-only,
// no network unless asked, parameters on stdin, and the container removed however the run ends.
#pragma once

#include <string>
#include <vector>

#include "runners/runner.h"

namespace attune::runners {

struct ContainerOptions {
  std::string engine = "podman";        // program name (looked up in PATH) or path
  std::vector<std::string> extra_args;  // added to every `run` after Attune's own options
  std::string self_exe;                 // this binary: runs the `container-run` guard
  std::string temp_dir;                 // pack config files; empty = the system temp directory
};

// prepare() builds (action fields: image (required), command (array of strings, or a string run
// by /bin/sh -c), network (false|true|"none"|"bridge", default none)):
//
//   <self_exe> container-run --engine E --name N --
//     E run --rm -i --init --name N --label attune.execution=<id> --network=none|bridge
//       <extra_args...> [-v <pack_dir>:/pack:ro -w /pack/actions] -e ATTUNE_...=... -e K=V...
//       IMAGE <command | /pack/actions/<entrypoint> | /bin/sh /pack/actions/<entrypoint>>
//
// with N = attune-exec-<execution id>-<attempt>. With a pack config (inv.pack_config), prepare()
// writes it to a 0400 file in temp_dir (in cleanup_paths) mounted read-only at
// /run/attune/pack_config.json, named by -e ATTUNE_PACK_CONFIG_FILE (as for other runners). The
// entry point (used without `command`) must resolve inside <pack_dir>/actions; it runs directly
// when executable, else under /bin/sh. The container's environment is exactly the non-secret
// ATTUNE_* variables (no ATTUNE_API_TOKEN) and the caller's env_vars; parameters (secrets included)
// only ever travel on stdin, so parameter_delivery must be stdin. The engine client itself gets
// PATH, HOME, LANG and the worker's CONTAINERS_*/XDG_*/TMPDIR/DOCKER_* variables.
//
// Errors at once (the execution fails without starting anything): no image, bad command/network,
// parameter_delivery file, no self_exe, and an engine that is not installed:
// "container engine 'podman' not found on PATH (install podman, or set --container-engine)".
class ContainerRunner final : public Runner {
 public:
  explicit ContainerRunner(ContainerOptions options);

  Result<ProcessSpec> prepare(const ActionInvocation& inv) const override;

  // The container name of an attempt: attune-exec-<id>-<attempt>.
  static std::string container_name(const ActionInvocation& inv);
  // The engine's `run` argv (from the engine program to the container command), without the
  // guard. Checks the action fields and the entry point, not the engine's presence. Pure but for
  // reading the entry point's metadata.
  // `pack_config_file`: host path of the pack config file to mount, or "".
  Result<std::vector<std::string>> run_argv(const ActionInvocation& inv,
                                            const std::string& pack_config_file = "") const;
  // The engine's path if it can be run (a path with '/' must be executable; a bare name is looked
  // up in `path_env`), else the clear error above.
  static Result<std::string> find_engine(const std::string& engine, const std::string& path_env);

 private:
  ContainerOptions options_;
};

// `attune container-run --engine E --name N -- ARGV...`: the guard every container action runs
// under. It starts a reaper in a session of its own that holds the read end of a pipe only the
// guard writes to, then runs ARGV (the engine client) as its child in the guard's process group,
// so the supervisor's SIGINT/SIGTERM reach the client, which forwards them into the container.
// The guard survives those signals and exits with the client's status. When the guard ends for
// any reason — including SIGKILL after a timeout or cancel, or the worker dying — the pipe closes
// and the reaper runs `E kill N` and `E rm -f N`; only a client that ended by itself with a status
// below 125 (the container ran, and --rm removed it) is told to skip that. The reaper keeps no
// descriptor of the action's pipes, so it never delays the result.
int container_run_main(int argc, char** argv);

}  // namespace attune::runners
