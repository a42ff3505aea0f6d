// ProcessSupervisor: runs many child processes concurrently on one epoll thread, capturing their
// output, feeding their stdin/fd 3, enforcing timeouts and delivering one result per process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "topology/core/clock.h"
#include "topology/core/result.h"

namespace attune::runners {

// The child's ends of its pipes, for ProcessSpec::launch.
struct LaunchFds {
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int fd3 = -1;  // -1 unless ProcessSpec::fd3_data is set
};

// What to run. Nothing here is interpreted by a shell: argv and env go to posix_spawn as they are.
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0]: absolute path, or looked up in the PATH of `env`
  std::vector<std::string> env;   // the complete environment, "K=V"
  std::string stdin_data;         // written to stdin (non-blocking), then stdin is closed
  // If set: the child can read this content from a pipe on fd 3 (inline scripts, so secrets
  // never touch argv, env or files).
  std::optional<std::string> fd3_data;
  std::string working_dir;               // empty = inherit the supervisor's
  std::chrono::milliseconds timeout{0};  // 0 = none; SIGTERM to the group, SIGKILL 2 s later
  size_t max_output_bytes = 1 << 20;     // per stream; the first part is kept
  // Files the supervisor removes once the process has ended (or when spawn fails), e.g. a
  // parameter file written by Runner::prepare.
  std::vector<std::string> cleanup_paths;
  // If set, output is streamed (long-lived processes such as sensors): every chunk read from
  // stdout (stream 0) or stderr (stream 1) is passed here as it arrives, on the supervisor
  // thread, and nothing is kept for ProcessResult. Must not block long and must not throw.
  std::function<void(int stream, std::string_view chunk)> on_output;
  // Optional alternative to posix_spawn (a warm interpreter's fork server). Called once, on the
  // thread calling spawn(), with this spec as it is then (env, working_dir: whatever was changed
  // after the runner's prepare()) and the child's ends of its pipes. It must start a process that is
  // a child of THIS process (so it is reaped here), has the LaunchFds as its fds 0, 1, 2 (and 3),
  // has not exec'd, and return its pid; it must not keep the fds. The supervisor then makes the
  // process its own process-group leader (setpgid from the parent side, so a signal to the group
  // cannot miss it) and supervises it like a spawned one. If it fails, the supervisor falls back
  // to posix_spawn of argv (or returns the error when argv is empty).
  std::function<Result<int>(const ProcessSpec& spec, const LaunchFds& fds)> launch;
};

struct ProcessResult {
  std::optional<int> exit_code;          // nullopt if killed by a signal (or never started)
  int term_signal = 0;                   // the signal that killed the process, 0 otherwise
  std::string stdout_text, stderr_text;  // valid UTF-8 (invalid sequences become U+FFFD)
  bool stdout_truncated = false, stderr_truncated = false;
  int64_t duration_ms = 0;
  bool timed_out = false, cancelled = false;
  std::string launch_error;  // non-empty when the process could not be started
  int pid = 0;
};

// Timings of the supervisor's signal escalations; the defaults are API.md §11.2's.
struct SupervisorOptions {
  std::chrono::milliseconds cancel_step{5000};  // SIGINT → SIGTERM → SIGKILL spacing on cancel
  std::chrono::milliseconds kill_grace{2000};   // SIGTERM → SIGKILL spacing on timeout
  // After the child exited, how long to wait for EOF on its output pipes (a grandchild may hold
  // them open) before delivering the result with what was read so far.
  std::chrono::milliseconds eof_grace{500};
};

// Supervises child processes with a single thread: epoll over every child's stdout/stderr pipes,
// stdin/fd 3 writers and pidfd, plus an eventfd for wake-ups. No polling sleeps, no thread per
// child.
//
// Each child is spawned with posix_spawn as the leader of its own process group; signals for
// timeouts and cancels go to the whole group. A result is delivered exactly once per successful
// spawn(), when the child has been reaped AND both output pipes reached EOF (or `eof_grace` after
// the exit). Output beyond `max_output_bytes` is drained and discarded so the child never blocks.
//
// Time: deadlines use the monotonic steady clock (the kernel wait needs real time); the injected
// Clock stamps start and end for `duration_ms`.
//
// Thread-safety: spawn(), cancel() and running() may be called from any thread. OnExit callbacks
// run on the supervisor thread, one at a time; they must not block long and must not throw.
// They may call spawn() and cancel().
class ProcessSupervisor {
 public:
  using OnExit = std::function<void(ProcessResult)>;

  // `clock` must outlive the supervisor. Throws std::system_error if the epoll/eventfd setup or
  // the thread cannot be created (startup only).
  explicit ProcessSupervisor(const Clock& clock, SupervisorOptions options = {});
  // Sends SIGKILL to every child's process group, reaps them, removes their cleanup paths and
  // joins the thread. Callbacks of children still running are not invoked.
  ~ProcessSupervisor();

  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Starts the process and returns its pid. If it cannot be started (program not found, not
  // executable, bad working_dir, out of fds...), returns an error, removes spec.cleanup_paths and
  // never invokes `on_exit`.
  Result<int> spawn(ProcessSpec spec, OnExit on_exit);

  // Cancels a running child: SIGINT, then SIGTERM, then SIGKILL to its process group,
  // `cancel_step` apart; its result has cancelled = true. Unknown or finished pids are ignored.
  void cancel(int pid);

  // Children spawned whose result has not been delivered yet (a result is no longer counted
  // when its callback starts).
  size_t running() const;

 private:
  struct Child;
  struct Command {
    std::unique_ptr<Child> spawned;  // set: register this child
    int cancel_pid = 0;              // else: cancel this pid
  };
  using SteadyTime = std::chrono::steady_clock::time_point;

  void post(Command command);
  void run();
  void register_child(std::unique_ptr<Child> child);
  void handle_event(uint64_t tag, uint32_t events);
  void read_output(Child& child, int stream);
  void write_input(Child& child, int stream);
  void reap(Child& child);
  void start_cancel(Child& child, SteadyTime now);
  void fire_timers(SteadyTime now);
  int next_wait_ms(SteadyTime now) const;
  void maybe_finish(uint64_t id);
  void close_stream(Child& child, int stream);

  const Clock& clock_;
  const SupervisorOptions options_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<size_t> running_{0};
  std::atomic<uint64_t> next_id_{1};

  std::mutex mu_;  // guards commands_ and stopping_
  std::deque<Command> commands_;
  bool stopping_ = false;

  // Owned by the supervisor thread (and by the destructor after the join).
  std::unordered_map<uint64_t, std::unique_ptr<Child>> children_;
  std::unordered_map<int, uint64_t> id_by_pid_;

  std::thread thread_;
};

}  // namespace attune::runners
