// The core.container runtime: engine argv, and the `container-run` guard that removes the
// container however the run ends.
#include "runners/container_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "runners/action_files.h"
#include "runners/formats.h"
#include "runners/shell_runner.h"

extern char** environ;

namespace attune::runners {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPackMount = "/pack";
constexpr std::string_view kPackConfigMount = "/run/attune/pack_config.json";
constexpr char kCleanExit = 'k';  // guard → reaper: the container is gone, nothing to remove

bool valid_env_name(std::string_view name) {
  return !name.empty() && name.find('=') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool engine_client_variable(std::string_view name) {
  for (std::string_view prefix : {"CONTAINERS_", "XDG_", "DOCKER_"}) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return name == "PATH" || name == "HOME" || name == "TMPDIR";
}

Result<std::string> network_mode(const Json& action) {
  auto it = action.find("network");
  if (it == action.end() || it->is_null()) return std::string("none");
  if (it->is_boolean()) return std::string(it->get<bool>() ? "bridge" : "none");
  if (it->is_string() && (*it == "none" || *it == "bridge")) return it->get<std::string>();
  return make_error(Errc::kBadRequest,
                    "action field 'network' must be true, false, \"none\" or \"bridge\"");
}

}  // namespace

ContainerRunner::ContainerRunner(ContainerOptions options) : options_(std::move(options)) {
  if (options_.engine.empty()) options_.engine = "podman";
}

std::string ContainerRunner::container_name(const ActionInvocation& inv) {
  return "attune-exec-" + std::to_string(inv.execution_id) + "-" + std::to_string(inv.attempt);
}

Result<std::string> ContainerRunner::find_engine(const std::string& engine,
                                                 const std::string& path_env) {
  const std::string hint = " (install podman, or set --container-engine)";
  if (engine.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(engine.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(engine.c_str(), X_OK) == 0) {
      return engine;
    }
    return make_error(Errc::kUnavailable, "container engine '" + engine + "' not found" + hint);
  }
  size_t begin = 0;
  while (begin <= path_env.size()) {
    size_t end = path_env.find(':', begin);
    if (end == std::string::npos) end = path_env.size();
    const std::string dir = end > begin ? path_env.substr(begin, end - begin) : ".";
    const std::string candidate = dir + "/" + engine;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return make_error(Errc::kUnavailable,
                    "container engine '" + engine + "' not found on PATH" + hint);
}

Result<std::vector<std::string>> ContainerRunner::run_argv(
    const ActionInvocation& inv, const std::string& pack_config_file) const {
  const Json& action = inv.action;
  const auto image = action.find("image");
  if (image == action.end() || !image->is_string() || image->get<std::string>().empty()) {
    return make_error(Errc::kBadRequest, "container action " + inv.action_ref +
                                             " has no 'image' (the image to run it in)");
  }
  auto network = network_mode(action);
  if (!network.ok()) return network.error();
  if (inv.parameter_delivery != "stdin") {
    return make_error(Errc::kBadRequest,
                      "container actions take their parameters on stdin (parameter_delivery '" +
                          inv.parameter_delivery + "' is not supported)");
  }

  std::vector<std::string> command;
  const auto cmd = action.find("command");
  if (cmd != action.end() && cmd->is_string() && !cmd->get<std::string>().empty()) {
    command = {"/bin/sh", "-c", cmd->get<std::string>()};
  } else if (cmd != action.end() && cmd->is_array() && !cmd->empty()) {
    for (const auto& part : *cmd) {
      if (!part.is_string()) {
        return make_error(Errc::kBadRequest,
                          "action field 'command' must be a string or an array of strings");
      }
      command.push_back(part.get<std::string>());
    }
  } else if (cmd != action.end() && !cmd->is_null() && !(cmd->is_string() || cmd->is_array())) {
    return make_error(Errc::kBadRequest,
                      "action field 'command' must be a string or an array of strings");
  } else {
    auto file = resolve_action_file(inv);
    if (!file.ok()) {
      return make_error(Errc::kBadRequest, file.error().message +
                                               " (a container action runs its 'command', or its "
                                               "entry point file from the mounted pack)");
    }
    const std::string inside = std::string(kPackMount) + "/actions/" + file->relative;
    if (::access(file->path.c_str(), X_OK) == 0) {
      command = {inside};
    } else {
      command = {"/bin/sh", inside};
    }
  }

  const std::string name = container_name(inv);
  std::vector<std::string> argv = {options_.engine,
                                   "run",
                                   "--rm",
                                   "-i",
                                   "--init",
                                   "--name",
                                   name,
                                   "--label",
                                   "attune.execution=" + std::to_string(inv.execution_id),
                                   "--network=" + *network};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (!inv.pack_dir.empty()) {
    const std::string pack = fs::absolute(inv.pack_dir).lexically_normal().string();
    if (pack.find(':') != std::string::npos) {
      return make_error(Errc::kBadRequest,
                        "the pack directory '" + pack + "' cannot be mounted (it contains ':')");
    }
    argv.insert(argv.end(), {"-v", pack + ":" + std::string(kPackMount) + ":ro", "-w",
                             std::string(kPackMount) + "/actions"});
  }
  if (!pack_config_file.empty()) {
    argv.insert(argv.end(), {"-v", pack_config_file + ":" + std::string(kPackConfigMount) + ":ro",
                             "-e", "ATTUNE_PACK_CONFIG_FILE=" + std::string(kPackConfigMount)});
  }
  // The container's environment: the ATTUNE_* variables of §11.4 minus the execution token (a
  // credential) and minus the host's PATH/HOME/LANG, which belong to the image; then env_vars.
  for (const auto& kv : ShellRunner::build_environment(inv, "")) {
    if (kv.rfind("ATTUNE_", 0) != 0 || kv.rfind("ATTUNE_API_TOKEN=", 0) == 0) continue;
    argv.insert(argv.end(), {"-e", kv});
  }
  for (const auto& [k, v] : inv.env_vars) {
    if (!valid_env_name(k) || k.rfind("ATTUNE_", 0) == 0) continue;
    argv.insert(argv.end(), {"-e", k + "=" + v.substr(0, v.find('\0'))});
  }
  argv.push_back(image->get<std::string>());
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

Result<ProcessSpec> ContainerRunner::prepare(const ActionInvocation& inv) const {
  if (auto checked = run_argv(inv); !checked.ok()) return checked.error();
  const char* path = std::getenv("PATH");
  auto engine =
      find_engine(options_.engine, path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  if (!engine.ok()) return engine.error();
  if (options_.self_exe.empty()) {
    return make_error(Errc::kUnavailable, "the container runner needs the attune binary's path");
  }
  auto document = render_parameters(inv.parameters, inv.parameter_format);
  if (!document.ok()) return document.error();

  ProcessSpec spec;
  std::string pack_config_file;
  if (inv.pack_config.is_object()) {
    auto file = write_private_file(
        options_.temp_dir.empty() ? fs::temp_directory_path().string() : options_.temp_dir,
        "attune-container-config-" + std::to_string(inv.execution_id),
        inv.pack_config.dump() + "\n");
    if (!file.ok()) return file.error();
    pack_config_file = *file;
    spec.cleanup_paths.push_back(pack_config_file);
  }
  auto run = run_argv(inv, pack_config_file);
  if (!run.ok()) {  // cannot differ from the check above; the file is removed all the same
    if (!pack_config_file.empty()) ::unlink(pack_config_file.c_str());
    return run.error();
  }
  spec.argv = {options_.self_exe, "container-run",     "--engine", *engine,
               "--name",          container_name(inv), "--"};
  (*run)[0] = *engine;
  spec.argv.insert(spec.argv.end(), run->begin(), run->end());
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view kv(*e);
    if (engine_client_variable(kv.substr(0, kv.find('=')))) spec.env.emplace_back(kv);
  }
  spec.env.push_back("LANG=C.UTF-8");
  spec.stdin_data = std::move(*document);
  spec.timeout = inv.timeout;
  spec.max_output_bytes = inv.max_output_bytes;
  return spec;
}

// ---- the container-run guard ----
namespace {

constexpr int kGuardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
volatile sig_atomic_t g_signalled = 0;

void note_signal(int) { g_signalled = 1; }

// Runs `engine verb [flag] name` and waits; true if it exited 0.
bool run_engine(const char* engine, const char* verb, const char* flag, const char* name) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const char* argv[] = {engine, verb, flag != nullptr ? flag : name,
                          flag != nullptr ? name : nullptr, nullptr};
    ::execv(engine, const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0) return false;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The reaper: waits until the guard says "clean" or goes away, then removes the container.
[[noreturn]] void reap(int pipe_fd, const char* engine, const char* name) {
  ::setsid();  // out of the action's process group: group signals do not reach it
  for (int sig : kGuardedSignals) ::signal(sig, SIG_DFL);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
  }
  // Keep nothing of the action's pipes (the supervisor waits for their EOF): only the guard's
  // pipe survives, as fd 3.
  if (pipe_fd != 3) {
    ::dup2(pipe_fd, 3);
    ::close(pipe_fd);
  }
  ::close_range(4, ~0U, 0);
  char byte = 0;
  ssize_t n;
  do {
    n = ::read(3, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && byte == kCleanExit) ::_exit(0);
  // `kill` (SIGKILL, at once) then `rm -f`: both engines understand them, and neither waits for a
  // stop timeout (podman's bare `rm -f` would wait 10 s for an action that ignores SIGTERM). A
  // container that is already gone makes them fail harmlessly. Two tries: the engine may briefly
  // hold its lock while the killed client lets go.
  for (int attempt = 0; attempt < 2; ++attempt) {
    run_engine(engine, "kill", nullptr, name);
    if (run_engine(engine, "rm", "-f", name)) ::_exit(0);
    ::sleep(1);
  }
  ::_exit(1);
}

}  // namespace

int container_run_main(int argc, char** argv) {
  std::string engine, name;
  int i = 0;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--engine" && i + 1 < argc) {
      engine = argv[++i];
    } else if (arg == "--name" && i + 1 < argc) {
      name = argv[++i];
    } else if (arg == "--") {
      ++i;
      break;
    } else {
      break;
    }
  }
  if (engine.empty() || name.empty() || i >= argc || engine.find('/') == std::string::npos) {
    std::fprintf(stderr,
                 "usage: attune container-run --engine /path/to/engine --name NAME -- ARGV...\n"
                 "Runs a container action's engine client and removes the container NAME "
                 "however the run ends (used by the worker).\n");
    return 2;
  }
  // Handlers (not SIG_IGN, which the client would inherit across exec) so the guard outlives the
  // signals the supervisor sends the group; the client forwards them into the container. Set
  // before anything is started, so no signal can end the guard while a container may exist.
  struct sigaction sa {};
  sa.sa_handler = note_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : kGuardedSignals) ::sigaction(sig, &sa, nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "attune container-run: pipe: %s\n", std::strerror(errno));
    return 125;
  }
  const pid_t reaper = ::fork();
  if (reaper < 0) {
    std::fprintf(stderr, "attune container-run: fork: %s\n", std::strerror(errno));
    return 125;
  }
  if (reaper == 0) {
    ::close(fds[1]);
    reap(fds[0], engine.c_str(), name.c_str());
  }
  ::close(fds[0]);

  const pid_t client = ::fork();
  if (client < 0) {
    std::fprintf(stderr, "attune container-run: fork: %s\n", std::strerror(errno));
    return 125;  // the pipe closes with us: the reaper removes whatever exists
  }
  if (client == 0) {
    ::execv(argv[i], argv + i);
    std::fprintf(stderr, "attune container-run: cannot run %s: %s\n", argv[i],
                 std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(client, &status, 0) < 0 && errno == EINTR) {
  }
  // The reaper process itself is not waited for: it outlives the guard on purpose (init reaps it).
  const bool clean = !g_signalled && WIFEXITED(status) && WEXITSTATUS(status) < 125;
  if (clean) {
    ssize_t n;
    do {
      n = ::write(fds[1], &kCleanExit, 1);
    } while (n < 0 && errno == EINTR);
  }
  ::close(fds[1]);
  if (WIFSIGNALED(status)) {
    // Report the client's death as ours (exit_code null), as if the guard were not there.
    ::signal(WTERMSIG(status), SIG_DFL);
    ::kill(::getpid(), WTERMSIG(status));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace attune::runners
