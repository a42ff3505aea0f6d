// ProcessSupervisor: posix_spawn + one epoll thread over pipes, pidfds and an eventfd.
#include "runners/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <utility>

#include "runners/utf8.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace attune::runners {
namespace {

// Stream slots of a child; also the low 3 bits of an epoll tag (tag = id << 3 | slot).
enum Slot : int { kStdout = 0, kStderr = 1, kStdin = 2, kFd3 = 3, kPidfd = 4, kSlots = 5 };
constexpr uint64_t kEventFdTag = 0;  // child ids start at 1, so their tags are >= 8
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 16;  // fairness between children; epoll is level-triggered

std::string errno_text(int err) { return std::strerror(err); }

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

// Moves fd above the standard descriptors and fd 3, so that the dup2 actions of posix_spawn
// never have a source equal to a target (which would leave FD_CLOEXEC set).
int raise_fd(int fd) {
  if (fd < 0 || fd > 3) return fd;
  const int raised = ::fcntl(fd, F_DUPFD_CLOEXEC, 4);
  ::close(fd);
  return raised;
}

bool make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  fds[0] = raise_fd(fds[0]);
  fds[1] = raise_fd(fds[1]);
  return fds[0] >= 0 && fds[1] >= 0;
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] as given if it contains a '/', else the first executable match in the PATH of `env`.
Result<std::string> resolve_program(const std::string& program,
                                    const std::vector<std::string>& env) {
  if (program.empty()) return make_error(Errc::kBadRequest, "empty program name");
  if (program.find('/') != std::string::npos) return program;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  }
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    const std::string dir = path.substr(begin, end - begin);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + program;
      if (is_executable_file(candidate)) return candidate;
    }
    begin = end + 1;
  }
  return make_error(Errc::kBadRequest, "program '" + program + "' not found in PATH");
}

void remove_paths(const std::vector<std::string>& paths) {
  for (const auto& p : paths) ::unlink(p.c_str());
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Clears the thread-directed SIGPIPE a write to a closed pipe left pending (SIGPIPE is blocked
// on the supervisor thread, so the write fails with EPIPE instead of killing the process).
void consume_sigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  const struct timespec zero {};
  while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
  }
}

// posix_spawn of spec.argv with the given descriptors as 0, 1, 2 (and 3 when spec.fd3_data),
// leading its own process group with default signal dispositions.
Result<int> posix_spawn_child(ProcessSpec& spec, int in_fd, int out_fd, int err_fd,
                              int fd3_fd) {
  auto program = resolve_program(spec.argv[0], spec.env);
  if (!program.ok()) return program.error();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  if (spec.fd3_data) posix_spawn_file_actions_adddup2(&actions, fd3_fd, 3);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&default_signals, sig);
  posix_spawnattr_setsigdefault(&attr, &default_signals);

  std::vector<char*> argv = c_strings(spec.argv);
  std::vector<char*> envp = c_strings(spec.env);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, program->c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::string what = "cannot start '" + spec.argv[0] + "': " + errno_text(rc);
    if (rc == ENOENT && !spec.working_dir.empty()) {
      what += " (program or working_dir '" + spec.working_dir + "')";
    }
    return make_error(rc == EAGAIN || rc == ENOMEM ? Errc::kUnavailable : Errc::kBadRequest,
                      std::move(what));
  }
  return static_cast<int>(pid);
}

}  // namespace

struct ProcessSupervisor::Child {
  uint64_t id = 0;
  int pid = 0;
  std::array<int, kSlots> fds{-1, -1, -1, -1, -1};
  std::array<std::string, 2> output;  // stdout, stderr (raw bytes, at most max + 4)
  std::array<bool, 2> truncated{false, false};
  std::array<std::string, 2> input;  // stdin data, fd 3 data
  std::array<size_t, 2> written{0, 0};
  size_t max_output_bytes = 0;
  std::function<void(int stream, std::string_view chunk)> on_output;
  std::vector<std::string> cleanup_paths;
  OnExit on_exit;

  int64_t started_ms = 0;  // injected clock
  std::optional<SteadyTime> deadline;
  int next_signal = 0;  // escalation: the signal to send at next_signal_at, 0 = none
  SteadyTime next_signal_at{};
  bool timed_out = false;
  bool cancelled = false;

  bool reaped = false;
  SteadyTime exited_at{};
  std::optional<int> exit_code;
  int term_signal = 0;

  ~Child() {
    for (int& fd : fds) close_fd(fd);
  }
};

ProcessSupervisor::ProcessSupervisor(const Clock& clock, SupervisorOptions options)
    : clock_(clock), options_(options) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    const int err = errno;
    ::close(epoll_fd_);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventFdTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
  thread_ = std::thread([this] { run(); });
}

ProcessSupervisor::~ProcessSupervisor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
  thread_.join();

  // The thread has stopped: children not yet registered are still in commands_.
  for (auto& command : commands_) {
    if (command.spawned) {
      const uint64_t id = command.spawned->id;
      children_.emplace(id, std::move(command.spawned));
    }
  }
  commands_.clear();
  for (auto& [id, child] : children_) {
    ::kill(-child->pid, SIGKILL);
    if (!child->reaped) {
      siginfo_t info{};
      while (::waitid(static_cast<idtype_t>(P_PIDFD), child->fds[kPidfd], &info, WEXITED) != 0 &&
             errno == EINTR) {
      }
    }
    remove_paths(child->cleanup_paths);
  }
  children_.clear();  // ~Child closes the fds
  ::close(event_fd_);
  ::close(epoll_fd_);
}

Result<int> ProcessSupervisor::spawn(ProcessSpec spec, OnExit on_exit) {
  if (spec.argv.empty() && !spec.launch) {
    remove_paths(spec.cleanup_paths);
    return make_error(Errc::kBadRequest, "empty argv");
  }

  // Pipes: [0] read end, [1] write end. The child gets out/err write ends, in/fd3 read ends.
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1};
  int fd3_pipe[2] = {-1, -1};
  const auto close_all = [&] {
    for (int* p : {out_pipe, err_pipe, in_pipe, fd3_pipe}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  if (!make_pipe(out_pipe) || !make_pipe(err_pipe) || !make_pipe(in_pipe) ||
      (spec.fd3_data && !make_pipe(fd3_pipe))) {
    const int err = errno;
    close_all();
    remove_paths(spec.cleanup_paths);
    return make_error(Errc::kUnavailable, "cannot create pipes: " + errno_text(err));
  }

  pid_t pid = 0;
  const int64_t started_ms = clock_.now_ms();
  const auto started = std::chrono::steady_clock::now();
  bool launched = false;
  if (spec.launch) {
    auto launched_pid = spec.launch(
        spec, LaunchFds{in_pipe[0], out_pipe[1], err_pipe[1], spec.fd3_data ? fd3_pipe[0] : -1});
    if (launched_pid.ok()) {
      pid = *launched_pid;
      ::setpgid(pid, pid);  // the child does the same; whichever runs first wins the race
      launched = true;
    } else if (spec.argv.empty()) {
      close_all();
      remove_paths(spec.cleanup_paths);
      return launched_pid.error();
    }
  }
  if (!launched) {
    auto spawned = posix_spawn_child(spec, in_pipe[0], out_pipe[1], err_pipe[1], fd3_pipe[0]);
    if (!spawned.ok()) {
      close_all();
      remove_paths(spec.cleanup_paths);
      return spawned.error();
    }
    pid = *spawned;
  }

  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int err = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    close_all();
    remove_paths(spec.cleanup_paths);
    return make_error(Errc::kUnavailable, "pidfd_open failed: " + errno_text(err));
  }

  auto child = std::make_unique<Child>();
  child->id = next_id_.fetch_add(1);
  child->pid = pid;
  child->fds[kStdout] = std::exchange(out_pipe[0], -1);
  child->fds[kStderr] = std::exchange(err_pipe[0], -1);
  child->fds[kStdin] = std::exchange(in_pipe[1], -1);
  child->fds[kFd3] = std::exchange(fd3_pipe[1], -1);
  child->fds[kPidfd] = pidfd;
  close_all();  // the child's ends
  for (int slot : {kStdout, kStderr, kStdin, kFd3}) {
    if (child->fds[slot] >= 0) set_nonblocking(child->fds[slot]);
  }
  child->input[0] = std::move(spec.stdin_data);
  child->input[1] = spec.fd3_data ? std::move(*spec.fd3_data) : std::string();
  if (child->input[0].empty()) close_fd(child->fds[kStdin]);
  if (child->input[1].empty()) close_fd(child->fds[kFd3]);
  child->max_output_bytes = spec.max_output_bytes;
  child->cleanup_paths = std::move(spec.cleanup_paths);
  child->on_output = std::move(spec.on_output);
  child->on_exit = std::move(on_exit);
  child->started_ms = started_ms;
  if (spec.timeout.count() > 0) child->deadline = started + spec.timeout;

  running_.fetch_add(1);
  post(Command{std::move(child), 0});
  return static_cast<int>(pid);
}

void ProcessSupervisor::cancel(int pid) { post(Command{nullptr, pid}); }

size_t ProcessSupervisor::running() const { return running_.load(); }

void ProcessSupervisor::post(Command command) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(std::move(command));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void ProcessSupervisor::run() {
  // A write to a pipe whose reader is gone must fail with EPIPE, not kill the process.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);

  std::array<epoll_event, 128> events;
  while (true) {
    const int timeout_ms = next_wait_ms(std::chrono::steady_clock::now());
    const int n =
        ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "epoll_wait");  // cannot happen
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 != kEventFdTag) {
        handle_event(events[i].data.u64, events[i].events);
        continue;
      }
      uint64_t count = 0;
      [[maybe_unused]] ssize_t r = ::read(event_fd_, &count, sizeof count);
      std::deque<Command> commands;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        commands.swap(commands_);
      }
      for (auto& command : commands) {
        if (command.spawned) {
          register_child(std::move(command.spawned));
        } else if (auto it = id_by_pid_.find(command.cancel_pid); it != id_by_pid_.end()) {
          start_cancel(*children_.at(it->second), std::chrono::steady_clock::now());
        }
      }
    }
    fire_timers(std::chrono::steady_clock::now());
  }
}

void ProcessSupervisor::register_child(std::unique_ptr<Child> child) {
  const uint64_t id = child->id;
  for (int slot = 0; slot < kSlots; ++slot) {
    if (child->fds[slot] < 0) continue;
    epoll_event ev{};
    ev.events = (slot == kStdin || slot == kFd3) ? EPOLLOUT : EPOLLIN;
    ev.data.u64 = (id << 3) | static_cast<uint64_t>(slot);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, child->fds[slot], &ev) != 0) {
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");  // cannot happen
    }
  }
  id_by_pid_[child->pid] = id;
  children_.emplace(id, std::move(child));
}

void ProcessSupervisor::handle_event(uint64_t tag, uint32_t events) {
  const uint64_t id = tag >> 3;
  const int slot = static_cast<int>(tag & 7);
  auto it = children_.find(id);
  if (it == children_.end()) return;  // finished earlier in this batch
  Child& child = *it->second;
  if (child.fds[slot] < 0) return;
  switch (slot) {
    case kStdout:
    case kStderr:
      read_output(child, slot);
      break;
    case kStdin:
    case kFd3:
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) write_input(child, slot);
      break;
    case kPidfd:
      reap(child);
      break;
  }
  maybe_finish(id);
}

void ProcessSupervisor::read_output(Child& child, int slot) {
  std::array<char, kReadChunk> buf;
  std::string& out = child.output[slot];
  // Four bytes beyond the cap let utf8_cut see the character that straddles the cut.
  const size_t cap = child.max_output_bytes;
  const size_t keep = cap > SIZE_MAX - 4 ? SIZE_MAX : cap + 4;
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    const ssize_t n = ::read(child.fds[slot], buf.data(), buf.size());
    if (n > 0) {
      const size_t got = static_cast<size_t>(n);
      if (child.on_output) {
        child.on_output(slot == kStdout ? 0 : 1, std::string_view(buf.data(), got));
        continue;
      }
      if (out.size() < keep) out.append(buf.data(), std::min(got, keep - out.size()));
      if (out.size() > child.max_output_bytes) child.truncated[slot] = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    close_stream(child, slot);  // EOF or error
    return;
  }
}

void ProcessSupervisor::write_input(Child& child, int slot) {
  const int index = slot == kStdin ? 0 : 1;
  const std::string& data = child.input[index];
  size_t& written = child.written[index];
  while (written < data.size()) {
    const ssize_t n = ::write(child.fds[slot], data.data() + written, data.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0 && errno == EPIPE) consume_sigpipe();
    break;  // the reader is gone: the rest is dropped
  }
  close_stream(child, slot);
  std::string().swap(child.input[index]);
}

void ProcessSupervisor::close_stream(Child& child, int slot) {
  if (child.fds[slot] < 0) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child.fds[slot], nullptr);
  close_fd(child.fds[slot]);
}

void ProcessSupervisor::reap(Child& child) {
  // The child is a zombie until waitid below, so its pid (= its process group id) cannot have
  // been reused: killing the group here is safe. After a timeout or cancel, nothing of the
  // group may survive the leader.
  if (child.timed_out || child.cancelled) ::kill(-child.pid, SIGKILL);
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), child.fds[kPidfd], &info, WEXITED | WNOHANG);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != ECHILD) return;
  if (rc == 0 && info.si_pid == 0) return;  // spurious wake-up: not exited yet
  child.reaped = true;
  child.exited_at = std::chrono::steady_clock::now();
  if (rc != 0) {
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)); the
    // status is lost, report it as killed by an unknown signal rather than hang.
    child.term_signal = 0;
  } else if (info.si_code == CLD_EXITED) {
    child.exit_code = info.si_status;
  } else {
    child.term_signal = info.si_status;
  }
  child.next_signal = 0;
  close_stream(child, kPidfd);
  close_stream(child, kStdin);
  close_stream(child, kFd3);
}

void ProcessSupervisor::start_cancel(Child& child, SteadyTime now) {
  if (child.reaped || child.cancelled) return;
  child.cancelled = true;
  if (child.next_signal == SIGKILL) return;  // a timeout escalation is already ahead
  ::kill(-child.pid, SIGINT);
  child.next_signal = SIGTERM;
  child.next_signal_at = now + options_.cancel_step;
}

void ProcessSupervisor::fire_timers(SteadyTime now) {
  std::vector<uint64_t> grace_expired;
  for (auto& [id, child_ptr] : children_) {
    Child& child = *child_ptr;
    if (child.reaped) {
      if (now >= child.exited_at + options_.eof_grace) grace_expired.push_back(id);
      continue;
    }
    if (child.deadline && !child.timed_out && now >= *child.deadline) {
      child.timed_out = true;
      ::kill(-child.pid, SIGTERM);
      if (child.next_signal != SIGKILL || child.next_signal_at > now + options_.kill_grace) {
        child.next_signal = SIGKILL;
        child.next_signal_at = now + options_.kill_grace;
      }
    }
    if (child.next_signal != 0 && now >= child.next_signal_at) {
      ::kill(-child.pid, child.next_signal);
      if (child.next_signal == SIGTERM) {
        child.next_signal = SIGKILL;
        child.next_signal_at = now + options_.cancel_step;
      } else {
        child.next_signal = 0;
      }
    }
  }
  for (uint64_t id : grace_expired) {
    Child& child = *children_.at(id);
    close_stream(child, kStdout);
    close_stream(child, kStderr);
    maybe_finish(id);
  }
}

int ProcessSupervisor::next_wait_ms(SteadyTime now) const {
  std::optional<SteadyTime> next;
  const auto consider = [&](SteadyTime t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [id, child] : children_) {
    if (child->reaped) {
      consider(child->exited_at + options_.eof_grace);
      continue;
    }
    if (child->deadline && !child->timed_out) consider(*child->deadline);
    if (child->next_signal != 0) consider(child->next_signal_at);
  }
  if (!next) return -1;
  if (*next <= now) return 0;
  // Round up so the wake-up is never early (an early wake-up would spin until the deadline).
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
  return static_cast<int>(std::min<int64_t>(wait, 24 * 3600 * 1000));
}

void ProcessSupervisor::maybe_finish(uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& child = *it->second;
  if (!child.reaped || child.fds[kStdout] >= 0 || child.fds[kStderr] >= 0) return;

  std::unique_ptr<Child> owned = std::move(it->second);
  children_.erase(it);
  id_by_pid_.erase(owned->pid);
  remove_paths(owned->cleanup_paths);

  ProcessResult result;
  result.pid = owned->pid;
  result.exit_code = owned->exit_code;
  result.term_signal = owned->term_signal;
  result.timed_out = owned->timed_out;
  result.cancelled = owned->cancelled;
  result.duration_ms = std::max<int64_t>(0, clock_.now_ms() - owned->started_ms);
  for (int slot : {kStdout, kStderr}) {
    std::string& raw = owned->output[slot];
    if (owned->truncated[slot]) raw.resize(utf8_cut(raw, owned->max_output_bytes));
    (slot == kStdout ? result.stdout_text : result.stderr_text) = sanitize_utf8(raw);
  }
  result.stdout_truncated = owned->truncated[kStdout];
  result.stderr_truncated = owned->truncated[kStderr];

  running_.fetch_sub(1);
  if (owned->on_exit) owned->on_exit(std::move(result));
}

}  // namespace attune::runners
