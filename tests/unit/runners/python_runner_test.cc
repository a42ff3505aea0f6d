// PythonRunner (core.python) end to end on a real ProcessSupervisor, cold and warm (fork
// server): parameters, environment and secrets, inline code, failures, timeout, cancel, no
// processes left behind, isolation between forked executions, server restart.
#include "runners/python_runner.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "harness.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT

// Whether process `pid` (any process, not only a child) ends within `wait`.
bool ends_within(int pid, std::chrono::milliseconds wait) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
  ::close(fd);
  return ended;
}

class PythonRunnerTest : public ::testing::TestWithParam<bool> {
 protected:
  PythonRunnerTest() {
    std::filesystem::create_directories(tmp_.path() + "/pack/actions");
  }

  void write(const std::string& rel, const std::string& text) {
    std::ofstream(tmp_.path() + "/pack/" + rel) << text;
  }

  ActionInvocation action(std::string entrypoint, Json params = Json::object()) {
    ActionInvocation inv;
    inv.execution_id = 91;
    inv.action_ref = "pyt.act";
    inv.pack_ref = "pyt";
    inv.runtime_ref = "core.python";
    inv.api_url = "http://127.0.0.1:8080/api/v1";
    inv.entrypoint = std::move(entrypoint);
    inv.pack_dir = tmp_.path() + "/pack";
    inv.parameters = std::move(params);
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }

  ProcessResult run(const ActionInvocation& inv) {
    auto spec = runner_.prepare(inv);
    if (!spec.ok()) {
      ADD_FAILURE() << "prepare: " << spec.error().message;
      return {};
    }
    return run_to_end(sup_, std::move(*spec));
  }

  TempDir tmp_;
  PythonRunner runner_{nullptr, PythonRunnerOptions{tmp_.path(), GetParam()}};
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

INSTANTIATE_TEST_SUITE_P(ColdAndWarm, PythonRunnerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "warm" : "cold"; });

TEST_P(PythonRunnerTest, PackFileReadsParametersFromStdinAndSeesAttuneEnvironment) {
  write("actions/echo.py", R"(import json, os, sys
p = json.load(sys.stdin)
print(json.dumps({"msg": p["message"], "n": p["n"] + 1, "exec": os.environ["ATTUNE_EXEC_ID"],
                  "url": os.environ["ATTUNE_API_URL"], "argv0": sys.argv[0], "cwd": os.getcwd(),
                  "name": __name__, "ppid_is_worker": os.getppid() == int(os.environ["WORKER_PID"])}))
)");
  ActionInvocation inv = action("echo.py", Json{{"message", "hi"}, {"n", 41}});
  inv.env_vars = {{"WORKER_PID", std::to_string(::getpid())}, {"ATTUNE_EXEC_ID", "spoofed"}};
  inv.output_format = "json";
  ProcessResult pr = run(inv);
  ASSERT_EQ(pr.exit_code, 0) << pr.stderr_text;
  Json r = make_result(inv, pr);
  EXPECT_EQ(r["data"]["msg"], "hi");
  EXPECT_EQ(r["data"]["n"], 42);
  EXPECT_EQ(r["data"]["exec"], "91");
  EXPECT_EQ(r["data"]["url"], "http://127.0.0.1:8080");
  EXPECT_EQ(r["data"]["name"], "__main__");
  EXPECT_EQ(r["data"]["ppid_is_worker"], true);  // warm children are children of the worker too
  EXPECT_EQ(r["data"]["cwd"], std::filesystem::canonical(tmp_.path() + "/pack/actions").string());
  EXPECT_EQ(r["data"]["argv0"],
            std::filesystem::canonical(tmp_.path() + "/pack/actions/echo.py").string());
  if (GetParam()) {
    EXPECT_GT(runner_.fork_server("/usr/bin/python3")->server_pid(), 0);
  }
}

TEST_P(PythonRunnerTest, EnvironmentAddedAfterPrepareReachesTheAction) {
  // The worker adds ATTUNE_PACK_CONFIG_FILE to a prepared spec: a warm start must see it too.
  write("actions/env.py", "import os\nprint(os.environ.get('ATTUNE_PACK_CONFIG_FILE'), os.getcwd())\n");
  auto spec = runner_.prepare(action("env.py"));
  ASSERT_TRUE(spec.ok());
  spec->env.push_back("ATTUNE_PACK_CONFIG_FILE=/tmp/cfg-1");
  spec->working_dir = tmp_.path();
  ProcessResult pr = run_to_end(sup_, std::move(*spec));
  EXPECT_EQ(pr.stdout_text,
            "/tmp/cfg-1 " + std::filesystem::canonical(tmp_.path()).string() + "\n")
      << pr.stderr_text;
}

TEST_P(PythonRunnerTest, SecretsReachStdinOnlyNeverTheEnvironmentOrArgv) {
  const std::string secret = "sk-py-7c1e99ab";
  write("actions/leak.py", R"(import os, sys
doc = sys.stdin.read()
env = "\n".join(f"{k}={v}" for k, v in os.environ.items())
cmd = open("/proc/self/cmdline", "rb").read().decode()
print("stdin-has-secret" if "sk-py-7c1e99ab" in doc else "stdin-missing")
print("env-has-secret" if "sk-py-7c1e99ab" in env else "env-clean")
print("argv-has-secret" if "sk-py-7c1e99ab" in cmd + " ".join(sys.argv) else "argv-clean")
)");
  ActionInvocation inv = action("leak.py", Json{{"api_key", secret}});
  inv.secret_values = {secret};
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  for (const auto& e : spec->env) EXPECT_EQ(e.find(secret), std::string::npos) << e;
  ProcessResult pr = run_to_end(sup_, std::move(*spec));
  EXPECT_EQ(pr.stdout_text, "stdin-has-secret\nenv-clean\nargv-clean\n") << pr.stderr_text;
}

TEST_P(PythonRunnerTest, FileDeliveryAndDotenvFormat) {
  write("actions/file.py", R"(import os
path = os.environ["ATTUNE_PARAMETER_FILE"]
print(oct(os.stat(path).st_mode & 0o777), open(path).read().strip())
)");
  ActionInvocation inv = action("file.py", Json{{"b", "two"}, {"a", 1}});
  inv.parameter_delivery = "file";
  inv.parameter_format = "dotenv";
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  ASSERT_EQ(spec->cleanup_paths.size(), 1u);
  const std::string file = spec->cleanup_paths[0];
  ProcessResult pr = run_to_end(sup_, std::move(*spec));
  EXPECT_EQ(pr.stdout_text, "0o400 a='1'\nb='two'\n") << pr.stderr_text;
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST_P(PythonRunnerTest, InlineCodeWithoutPackDirectory) {
  ActionInvocation inv = action("import sys, json\nprint(json.load(sys.stdin)['x'] * 2)\n",
                                Json{{"x", 21}});
  inv.pack_dir.clear();
  ProcessResult pr = run(inv);
  EXPECT_EQ(pr.exit_code, 0) << pr.stderr_text;
  EXPECT_EQ(pr.stdout_text, "42\n");
}

TEST_P(PythonRunnerTest, ExitCodesExceptionsAndMissingFiles) {
  write("actions/exit3.py", "import sys\nprint('bye')\nsys.exit(3)\n");
  write("actions/boom.py", "raise ValueError('kaboom')\n");
  ProcessResult e = run(action("exit3.py"));
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.stdout_text, "bye\n");
  ProcessResult b = run(action("boom.py"));
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.stderr_text.find("ValueError: kaboom"), std::string::npos) << b.stderr_text;
  EXPECT_NE(b.stderr_text.find("Traceback"), std::string::npos);

  auto missing = runner_.prepare(action("nope.py"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.py"), std::string::npos);
  auto escape = runner_.prepare(action("../../../../etc/hostname"));
  EXPECT_FALSE(escape.ok());
}

TEST_P(PythonRunnerTest, TimeoutKillsTheWholeGroupAndLeavesNoProcess) {
  const std::string pidfile = tmp_.file("grandchild.pid");
  write("actions/slow.py", "import subprocess, time\n"
                           "p = subprocess.Popen(['sleep', '60'])\n"
                           "open('" + pidfile + "', 'w').write(str(p.pid))\n"
                           "print('started', flush=True)\n"
                           "time.sleep(60)\n");
  ActionInvocation inv = action("slow.py");
  inv.timeout = std::chrono::milliseconds(1500);
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  PendingRun running = start(sup_, std::move(*spec));
  ProcessResult pr = running.get();
  EXPECT_EQ(execution_status_for(pr), "timeout");
  EXPECT_EQ(pr.stdout_text, "started\n");
  EXPECT_TRUE(ends_within(running.pid, 5s));
  const int grandchild = std::stoi(read_file(pidfile));
  EXPECT_TRUE(ends_within(grandchild, 5s)) << "grandchild " << grandchild << " survived";
  EXPECT_EQ(sup_.running(), 0u);
}

TEST_P(PythonRunnerTest, CancelInterruptsTheAction) {
  const std::string ready = tmp_.fifo("ready");
  // An explicit close: an exception raised while a file object is finalised implicitly (what
  // `open(...).write(...)` does) is silently dropped by Python, whoever raised it.
  write("actions/wait.py", "import time\nwith open('" + ready + "', 'w') as f:\n  f.write('up\\n')\n"
                           "time.sleep(60)\n");
  // SIGINT first: Python raises KeyboardInterrupt, prints it and dies of SIGINT well before the
  // SIGTERM step (generous on a loaded machine).
  SupervisorOptions slow_escalation = fast_options();
  slow_escalation.cancel_step = 10s;
  ProcessSupervisor sup(SystemClock::instance(), slow_escalation);
  auto spec = runner_.prepare(action("wait.py"));
  ASSERT_TRUE(spec.ok());
  PendingRun running = start(sup, std::move(*spec));
  ASSERT_EQ(read_fifo(ready), "up");
  // Let it get from closing the FIFO into time.sleep() before the SIGINT. Once (warm mode, ctest
  // -j2) a SIGINT sent right after "up" was never seen and the SIGTERM step ended the action; the
  // cause is not established, a SIGINT landing while Python is still closing the file is the
  // suspect. In production the escalation to SIGTERM still ends such an action.
  std::this_thread::sleep_for(300ms);
  const auto t0 = std::chrono::steady_clock::now();
  sup.cancel(running.pid);
  ProcessResult pr = running.get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 9s);
  EXPECT_EQ(execution_status_for(pr), "cancelled");
  EXPECT_NE(pr.stderr_text.find("KeyboardInterrupt"), std::string::npos) << pr.stderr_text;
  EXPECT_EQ(pr.term_signal, SIGINT);  // Python's convention: dies of the signal it got
}

TEST_P(PythonRunnerTest, ExecutionsDoNotShareInterpreterState) {
  write("actions/mark.py", R"(import json, os, sys, random
before = {"json_mark": hasattr(json, "MARK"), "env": os.environ.get("LEAK"),
          "path": "/leak" in sys.path}
json.MARK = 1
os.environ["LEAK"] = "yes"
sys.path.append("/leak")
print(json.dumps(before), random.random())
)");
  ProcessResult a = run(action("mark.py"));
  ProcessResult b = run(action("mark.py"));
  ASSERT_EQ(a.exit_code, 0) << a.stderr_text;
  const std::string clean = R"({"json_mark": false, "env": null, "path": false})";
  EXPECT_EQ(a.stdout_text.substr(0, clean.size()), clean);
  EXPECT_EQ(b.stdout_text.substr(0, clean.size()), clean);
  EXPECT_NE(a.stdout_text, b.stdout_text) << "random must be reseeded per execution";
}

TEST(PythonForkServer, RestartsAfterTheServerDies) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.path() + "/pack/actions");
  std::ofstream(tmp.path() + "/pack/actions/hi.py") << "print('hi')\n";
  PythonRunner runner(nullptr, PythonRunnerOptions{tmp.path(), true});
  ProcessSupervisor sup(SystemClock::instance(), fast_options());
  ActionInvocation inv;
  inv.pack_ref = "pyt";
  inv.pack_dir = tmp.path() + "/pack";
  inv.entrypoint = "hi.py";
  auto first = runner.prepare(inv);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(run_to_end(sup, std::move(*first)).stdout_text, "hi\n");
  const int server = runner.fork_server("/usr/bin/python3")->server_pid();
  ASSERT_GT(server, 0);
  ::kill(server, SIGKILL);
  // The next request notices and starts a new server (asked directly: through the supervisor
  // a failure would be hidden by the cold fallback).
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ForkRequest req;
  req.code = "print('again')";
  req.env = {"PATH=/usr/bin:/bin"};
  auto pid = runner.fork_server("/usr/bin/python3")->launch(req, LaunchFds{devnull, out[1], devnull, -1});
  ::close(out[1]);
  ::close(devnull);
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  std::string text;
  char buf[64];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  EXPECT_EQ(text, "again\n");
  int status = 0;
  EXPECT_EQ(::waitpid(*pid, &status, 0), *pid) << "the forked process is a child of this process";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const int restarted = runner.fork_server("/usr/bin/python3")->server_pid();
  EXPECT_GT(restarted, 0);
  EXPECT_NE(restarted, server);
}

TEST(PythonForkServer, ServerExitsWhenItsOwnerDiesWithoutCleanup) {
  // A process that crashes (no destructors) must not leave its fork server behind.
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(report[0]);
    auto* fs = new ForkServer("/usr/bin/python3");  // never destroyed: a crash
    int out[2];
    if (::pipe(out) != 0) ::_exit(2);
    ForkRequest req;
    req.code = "print('forked')";
    req.env = {"PATH=/usr/bin:/bin"};
    const int devnull = ::open("/dev/null", O_RDWR);
    auto pid = fs->launch(req, LaunchFds{devnull, out[1], devnull, -1});
    if (!pid.ok()) ::_exit(3);
    const std::string line = std::to_string(fs->server_pid()) + "\n";
    if (::write(report[1], line.data(), line.size()) < 0) ::_exit(4);
    ::_exit(0);
  }
  ::close(report[1]);
  std::string text;
  char buf[64];
  ssize_t n;
  while ((n = ::read(report[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(report[0]);
  int status = 0;
  ::waitpid(owner, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const int server = std::stoi(text);
  ASSERT_GT(server, 0);
  EXPECT_TRUE(ends_within(server, 10s)) << "fork server " << server << " outlived its owner";
}

}  // namespace
}  // namespace attune::runners
