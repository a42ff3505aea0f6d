// ProcessSupervisor: exit codes, capture, stdin/fd 3, big I/O, truncation, concurrency, timeouts,
// cancel, launch failures, cleanup and shutdown — all with real processes and no sleeps.
#include "runners/process_supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "harness.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT

class ProcessSupervisorTest : public ::testing::Test {
 protected:
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

TEST_F(ProcessSupervisorTest, ReportsExitCodes) {
  ProcessResult ok = run_to_end(sup_, sh("exit 0"));
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.term_signal, 0);
  EXPECT_GT(ok.pid, 0);
  ProcessResult three = run_to_end(sup_, sh("exit 3"));
  EXPECT_EQ(three.exit_code, 3);
  EXPECT_FALSE(three.timed_out);
  EXPECT_FALSE(three.cancelled);
  EXPECT_TRUE(three.launch_error.empty());
  EXPECT_EQ(sup_.running(), 0u);
}

TEST_F(ProcessSupervisorTest, ReportsKillingSignal) {
  ProcessResult r = run_to_end(sup_, sh("kill -9 $$"));
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_EQ(r.term_signal, SIGKILL);
}

TEST_F(ProcessSupervisorTest, CapturesStdoutAndStderrSeparately) {
  ProcessResult r = run_to_end(sup_, sh("echo out; echo err >&2; printf 'no newline'"));
  EXPECT_EQ(r.stdout_text, "out\nno newline");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_FALSE(r.stderr_truncated);
}

TEST_F(ProcessSupervisorTest, WritesStdinThenClosesIt) {
  ProcessSpec spec = sh("cat; echo; echo done");
  spec.stdin_data = R"({"message":"hello"})";
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.stdout_text, "{\"message\":\"hello\"}\ndone\n");
}

TEST_F(ProcessSupervisorTest, EmptyStdinIsEof) {
  ProcessResult r = run_to_end(sup_, sh("wc -c"));
  EXPECT_EQ(r.stdout_text, "0\n");
}

TEST_F(ProcessSupervisorTest, WritesLargeStdinWithoutBlocking) {
  ProcessSpec spec = sh("wc -c");
  spec.stdin_data.assign(1 << 20, 'x');
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "1048576\n");
}

TEST_F(ProcessSupervisorTest, SurvivesChildThatNeverReadsLargeStdin) {
  ProcessSpec spec = sh("exit 0");
  spec.stdin_data.assign(1 << 20, 'x');  // EPIPE on the supervisor side, not SIGPIPE death
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(run_to_end(sup_, sh("echo still alive")).stdout_text, "still alive\n");
}

TEST_F(ProcessSupervisorTest, Fd3CarriesDataSeparateFromStdin) {
  ProcessSpec spec = sh("cat <&3; echo '|'; cat");
  spec.fd3_data = std::string("from fd3");
  spec.stdin_data = "from stdin";
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.stdout_text, "from fd3|\nfrom stdin");
}

TEST_F(ProcessSupervisorTest, LargeFd3Data) {
  ProcessSpec spec = sh("wc -c <&3");
  spec.fd3_data = std::string(300000, 'y');
  EXPECT_EQ(run_to_end(sup_, std::move(spec)).stdout_text, "300000\n");
}

TEST_F(ProcessSupervisorTest, TruncatesLargeOutputOnUtf8BoundaryAndKeepsDraining) {
  // 5 MiB of "é\n" (3 bytes each); a cap of 1000 falls just after a lead byte.
  ProcessSpec spec = sh("yes 'é' | head -c 5242880; echo tail >&2");
  spec.max_output_bytes = 1000;
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_text.size(), 999u);
  EXPECT_EQ(r.stdout_text.find("\xEF\xBF\xBD"), std::string::npos) << "cut inside a character";
  EXPECT_EQ(r.stdout_text.substr(0, 6), "é\né\n");
  EXPECT_FALSE(r.stderr_truncated);
  EXPECT_EQ(r.stderr_text, "tail\n");
}

TEST_F(ProcessSupervisorTest, LargeOutputUnderTheCapIsComplete) {
  ProcessSpec spec = sh("head -c 5242880 /dev/zero | tr '\\0' 'a'");
  spec.max_output_bytes = 6 << 20;
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.stdout_text.size(), 5242880u);
  EXPECT_FALSE(r.stdout_truncated);
}

TEST_F(ProcessSupervisorTest, ReplacesInvalidUtf8) {
  ProcessResult r = run_to_end(sup_, sh("printf 'a\\377b\\303'"));
  EXPECT_EQ(r.stdout_text,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

TEST_F(ProcessSupervisorTest, Runs200ProcessesConcurrently) {
  constexpr int kCount = 200;
  const auto open_fds = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {});
  };
  const auto fds_before = open_fds();
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, succeeded = 0;
  for (int i = 0; i < kCount; ++i) {
    ProcessSpec spec;
    spec.argv = {"true"};  // PATH lookup in spec.env
    spec.env = {"PATH=/usr/bin:/bin"};
    auto pid = sup_.spawn(std::move(spec), [&](ProcessResult r) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (r.exit_code == 0) ++succeeded;
      cv.notify_all();
    });
    ASSERT_TRUE(pid.ok()) << pid.error().message;
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return done == kCount; })) << done << " finished";
  EXPECT_EQ(succeeded, kCount);
  EXPECT_EQ(sup_.running(), 0u);
  EXPECT_EQ(open_fds(), fds_before) << "pipes or pidfds leaked";  // closed before each callback
}

TEST_F(ProcessSupervisorTest, TimeoutSendsSigtermAndKeepsPartialOutput) {
  ProcessSpec spec = sh("echo partial; exec sleep 30");
  spec.timeout = 200ms;
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.stdout_text, "partial\n");
  EXPECT_LT(r.duration_ms, 10000);
}

TEST_F(ProcessSupervisorTest, TimeoutEscalatesToSigkillWhenSigtermIsIgnored) {
  ProcessSpec spec = sh("trap '' TERM; echo stubborn; sleep 30; echo unreachable");
  spec.timeout = 200ms;
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(r.stdout_text, "stubborn\n");
}

TEST_F(ProcessSupervisorTest, CancelInterruptsTheProcessGroup) {
  TempDir dir;
  const std::string ready = dir.fifo("ready");
  // exec: a shell waiting for a foreground child may swallow SIGINT (then SIGTERM follows a
  // step later, which is also correct); sleep itself dies of SIGINT deterministically.
  PendingRun run = start(sup_, sh("echo up > " + ready + "; exec sleep 30"));
  ASSERT_EQ(read_fifo(ready), "up");
  sup_.cancel(run.pid);
  ProcessResult r = run.get();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGINT);
}

TEST_F(ProcessSupervisorTest, CancelEscalatesThroughSigtermToSigkill) {
  TempDir dir;
  const std::string ready = dir.fifo("ready");
  PendingRun run = start(sup_, sh("trap '' INT TERM; echo up > " + ready + "; sleep 30"));
  ASSERT_EQ(read_fifo(ready), "up");
  sup_.cancel(run.pid);
  ProcessResult r = run.get();
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(r.duration_ms, 400);  // two cancel steps of 200 ms
}

TEST_F(ProcessSupervisorTest, CancelOfUnknownPidIsIgnored) {
  sup_.cancel(999999999);
  EXPECT_EQ(run_to_end(sup_, sh("echo fine")).stdout_text, "fine\n");
}

TEST_F(ProcessSupervisorTest, LaunchFailureReturnsErrorAndNoCallback) {
  TempDir dir;
  const std::string cleanup = dir.file("params");
  { std::ofstream(cleanup) << "x"; }
  bool called = false;
  ProcessSpec spec;
  spec.argv = {"/nonexistent/program"};
  spec.cleanup_paths = {cleanup};
  auto r = sup_.spawn(std::move(spec), [&](ProcessResult) { called = true; });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/program"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cleanup));

  ProcessSpec not_in_path;
  not_in_path.argv = {"no-such-program-attune"};
  not_in_path.env = {"PATH=/usr/bin:/bin"};
  auto r2 = sup_.spawn(std::move(not_in_path), [&](ProcessResult) { called = true; });
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("not found in PATH"), std::string::npos);

  ProcessSpec bad_dir = sh("true");
  bad_dir.working_dir = "/nonexistent/dir";
  EXPECT_FALSE(sup_.spawn(std::move(bad_dir), [&](ProcessResult) { called = true; }).ok());

  ProcessSpec not_executable;
  not_executable.argv = {"/etc/hostname"};
  EXPECT_FALSE(sup_.spawn(std::move(not_executable), [&](ProcessResult) { called = true; }).ok());

  // The supervisor keeps working and never called back for the failures.
  EXPECT_EQ(run_to_end(sup_, sh("echo ok")).stdout_text, "ok\n");
  EXPECT_FALSE(called);
  EXPECT_EQ(sup_.running(), 0u);
}

TEST_F(ProcessSupervisorTest, UsesWorkingDirAndExactEnvironment) {
  TempDir dir;
  ProcessSpec spec = sh("pwd; printenv | sort");
  spec.working_dir = dir.path();
  spec.env = {"PATH=/usr/bin:/bin", "ONLY=this"};
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.stdout_text, std::filesystem::canonical(dir.path()).string() +
                               "\nONLY=this\nPATH=/usr/bin:/bin\nPWD=" +
                               std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST_F(ProcessSupervisorTest, RemovesCleanupPathsAfterExit) {
  TempDir dir;
  const std::string path = dir.file("params");
  { std::ofstream(path) << "secret"; }
  ProcessSpec spec = sh("cat " + path);
  spec.cleanup_paths = {path};
  ProcessResult r = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(r.stdout_text, "secret");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(ProcessSupervisorTest, DeliversAfterGraceWhenAGrandchildHoldsThePipes) {
  ProcessResult r = run_to_end(sup_, sh("sleep 30 & echo parent done"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "parent done\n");
  ::kill(-r.pid, SIGKILL);  // the background sleep is still in the child's process group
}

TEST_F(ProcessSupervisorTest, CallbackMaySpawnAgain) {
  std::promise<ProcessResult> second;
  auto pid = sup_.spawn(sh("echo first"), [&](ProcessResult) {
    auto again =
        sup_.spawn(sh("echo second"), [&](ProcessResult r) { second.set_value(std::move(r)); });
    EXPECT_TRUE(again.ok());
  });
  ASSERT_TRUE(pid.ok());
  auto f = second.get_future();
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(f.get().stdout_text, "second\n");
}

TEST(ProcessSupervisorShutdownTest, DestructorKillsAndReapsChildren) {
  TempDir dir;
  const std::string path = dir.file("params");
  { std::ofstream(path) << "x"; }
  const std::string ready = dir.fifo("ready");
  int pid = 0;
  bool called = false;
  {
    ProcessSupervisor sup(SystemClock::instance());
    // exec: no grandchild, so the group is empty once the child is reaped (a grandchild would
    // be reaped by init asynchronously).
    ProcessSpec spec = sh("trap '' INT TERM; echo up > " + ready + "; exec sleep 30");
    spec.cleanup_paths = {path};
    auto r = sup.spawn(std::move(spec), [&](ProcessResult) { called = true; });
    ASSERT_TRUE(r.ok());
    pid = *r;
    ASSERT_EQ(read_fifo(ready), "up");
    EXPECT_EQ(sup.running(), 1u);
  }
  EXPECT_FALSE(called);
  EXPECT_NE(::kill(pid, 0), 0) << "child still exists (not reaped)";
  EXPECT_NE(::kill(-pid, 0), 0) << "process group still has members";
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ProcessSupervisorClockTest, DurationUsesTheInjectedClock) {
  TempDir dir;
  const std::string ready = dir.fifo("ready");
  const std::string go = dir.fifo("go");
  ManualClock clock;
  ProcessSupervisor sup(clock);
  PendingRun run = start(sup, sh("echo up > " + ready + "; read line < " + go));
  ASSERT_EQ(read_fifo(ready), "up");
  clock.advance(1234ms);
  write_fifo(go, "now");
  EXPECT_EQ(run.get().duration_ms, 1234);
}

}  // namespace
}  // namespace attune::runners
