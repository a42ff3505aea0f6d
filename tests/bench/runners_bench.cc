// Per-execution cost of the python and node.js runners without the platform: N sequential runs of
// a python `pass` action (warm fork server and cold), a node.js action returning {}, the shell
// runner's `true`, and plain `python3 -c pass` / `node -e 0` through the same ProcessSupervisor.
// Prints wall ms and CPU ms (this process + reaped children) per run. Issue 14.
//
//   nice -n 5 build/tests/bench/bench_runners [N]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <future>
#include <string>

#include "runners/nodejs_runner.h"
#include "runners/python_runner.h"
#include "runners/shell_runner.h"

namespace {

using namespace attune;
using namespace attune::runners;

double cpu_ms() {
  rusage self{}, kids{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &kids);
  auto ms = [](const timeval& t) { return t.tv_sec * 1000.0 + t.tv_usec / 1000.0; };
  return ms(self.ru_utime) + ms(self.ru_stime) + ms(kids.ru_utime) + ms(kids.ru_stime);
}

bool run_one(ProcessSupervisor& sup, ProcessSpec spec) {
  std::promise<ProcessResult> p;
  auto f = p.get_future();
  auto pid = sup.spawn(std::move(spec), [&p](ProcessResult r) { p.set_value(std::move(r)); });
  if (!pid.ok()) return false;
  ProcessResult r = f.get();
  return r.exit_code == 0;
}

// utime + stime of a process that is not (yet) reaped, in ms: the fork server's share.
double process_cpu_ms(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  const auto paren = s.rfind(") ");
  if (paren == std::string::npos) return 0;
  std::istringstream fields(s.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);
  }
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

template <class MakeSpec>
void measure(const char* label, int n, ProcessSupervisor& sup, MakeSpec make, int server_pid = 0) {
  for (int i = 0; i < 5; ++i) run_one(sup, make());  // warm-up: servers, page cache
  const double c0 = cpu_ms() + process_cpu_ms(server_pid);
  const auto t0 = std::chrono::steady_clock::now();
  int failed = 0;
  for (int i = 0; i < n; ++i) failed += run_one(sup, make()) ? 0 : 1;
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("| %-44s | %8.2f | %8.2f | %6.0f |%s\n", label, wall / n,
              (cpu_ms() + process_cpu_ms(server_pid) - c0) / n,
              1000.0 * n / wall, failed ? " FAILURES" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("attune-bench-runners-" + std::to_string(::getpid()));
  fs::create_directories(dir / "pack" / "actions");
  std::ofstream(dir / "pack" / "actions" / "pass.py") << "pass\n";
  std::ofstream(dir / "pack" / "actions" / "empty.js") << "module.exports = () => ({});\n";
  std::ofstream(dir / "pack" / "actions" / "true.sh") << "true\n";

  ProcessSupervisor sup(SystemClock::instance());
  PythonRunner warm(nullptr, PythonRunnerOptions{dir.string(), true});
  PythonRunner cold(nullptr, PythonRunnerOptions{dir.string(), false});
  NodeRunner node(nullptr, NodeRunnerOptions{dir.string()});
  ShellRunner shell(dir.string());
  auto inv = [&](const char* entry) {
    ActionInvocation a;
    a.execution_id = 1;
    a.action_ref = "bench.a";
    a.pack_ref = "bench";
    a.entrypoint = entry;
    a.pack_dir = (dir / "pack").string();
    return a;
  };
  auto raw = [](std::vector<std::string> argv) {
    ProcessSpec s;
    s.argv = std::move(argv);
    s.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    return s;
  };
  std::printf("| %-44s | %8s | %8s | %6s |\n", "sequential runs", "wall ms", "CPU ms", "runs/s");
  std::printf("|---|---|---|---|\n");
  measure("shell runner `true` (pack file)", n, sup, [&] { return *shell.prepare(inv("true.sh")); });
  measure("raw `/bin/true`", n, sup, [&] { return raw({"/bin/true"}); });
  run_one(sup, *warm.prepare(inv("pass.py")));  // starts the server
  measure("python runner `pass`, warm (fork server incl.)", n, sup,
          [&] { return *warm.prepare(inv("pass.py")); },
          warm.fork_server("/usr/bin/python3")->server_pid());
  measure("python runner `pass`, cold", n, sup, [&] { return *cold.prepare(inv("pass.py")); });
  measure("raw `python3 -c pass`", n, sup, [&] { return raw({"/usr/bin/python3", "-c", "pass"}); });
  measure("node.js runner `() => ({})`", n, sup, [&] { return *node.prepare(inv("empty.js")); });
  measure("raw `node -e 0`", n, sup, [&] { return raw({"/usr/bin/node", "-e", "0"}); });
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
