// ForkServer (see fork_server.h): the python side is the server code below, run with -c.
#include "runners/fork_server.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace attune::runners {
namespace {

// The server. Protocol on fd 3 (SOCK_SEQPACKET): request = one JSON message {script, code, cwd,
// env} with the child's descriptors (stdin, stdout, stderr[, fd 3]) as SCM_RIGHTS; reply = one
// JSON message {pid} or {error}. EOF ⇒ exit.
constexpr std::string_view kServerCode = R"PY(
import atexit, ctypes, gc, io, json, os, platform, signal, socket, sys, traceback, types
import base64, collections, datetime, functools, itertools, re, time
# warm imports (above): small modules actions commonly use; big ones would make every fork dearer

_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())
_CLONE_PARENT = 0x00008000
_py = ctypes.pythonapi  # PyDLL: the GIL stays held across these calls
_syscall = ctypes.PyDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long] * 6
for _f in (_py.PyOS_BeforeFork, _py.PyOS_AfterFork_Parent, _py.PyOS_AfterFork_Child):
    _f.restype = None
    _f.argtypes = []

def _exit_code(e):
    c = e.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 0xff
    try:
        print(c, file=sys.stderr)
    except Exception:
        pass
    return 1

def _child(sock, req, fds):
    code = 1
    try:
        os.setpgid(0, 0)
        sock.close()
        high = [os.dup(fd) for fd in fds]  # above anything the targets could clobber
        for fd in fds:
            os.close(fd)
        for target, fd in enumerate(high):
            os.dup2(fd, target, inheritable=True)
        for fd in high:
            os.close(fd)
        if len(high) < 4:
            try:
                os.close(3)
            except OSError:
                pass
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.environ.clear()
        for kv in req.get("env", []):
            k, _, v = kv.partition("=")
            if k:
                os.environ[k] = v
        sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", closefd=False)
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace",
                                           closefd=False, buffering=1)
        script = req.get("script") or ""
        try:
            # As `python FILE` / `python -c CODE`: a fresh __main__ module runs the code.
            main = types.ModuleType("__main__")
            main.__builtins__ = __builtins__
            sys.modules["__main__"] = main
            if script:
                sys.argv = [script]
                sys.path[0] = os.path.dirname(script)
                main.__file__ = script
                with io.open_code(script) as f:
                    source = f.read()
                code_obj = compile(source, script, "exec")
            else:
                sys.argv = ["-c"]
                sys.path[0] = ""
                code_obj = compile(req.get("code", ""), "<string>", "exec")
            exec(code_obj, main.__dict__)
            code = 0
        except SystemExit as e:
            code = _exit_code(e)
        except KeyboardInterrupt:
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            traceback.print_exc()
            code = 1
        try:
            if "threading" in sys.modules:
                sys.modules["threading"]._shutdown()
            atexit._run_exitfuncs()
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException:
            traceback.print_exc()
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except BrokenPipeError:
                code = code or 120
            except Exception:
                pass
    finally:
        os._exit(code)

def _spawn(sock, req, fds):
    if _SYS_CLONE is None:
        raise OSError("clone is not supported on " + platform.machine())
    _py.PyOS_BeforeFork()
    pid = _syscall(_SYS_CLONE, _CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        _py.PyOS_AfterFork_Child()
        _child(sock, req, fds)  # never returns
    err = ctypes.get_errno()
    _py.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return pid

def _main():
    sock = socket.socket(fileno=os.dup(3))
    os.close(3)
    # Everything imported so far is shared copy-on-write with the children: keep the collector
    # from touching (and so copying) it in each of them.
    gc.collect()
    gc.freeze()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except InterruptedError:
            continue
        except OSError:
            return
        if not msg:
            return
        try:
            reply = {"pid": _spawn(sock, json.loads(msg), fds)}
        except Exception as e:
            reply = {"error": "fork server: " + str(e)}
        finally:
            for fd in fds:
                os.close(fd)
        sock.send(json.dumps(reply).encode())

_main()
)PY";

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

ForkServer::ForkServer(std::string python, std::chrono::milliseconds reply_timeout)
    : python_(std::move(python)), reply_timeout_(reply_timeout) {}

ForkServer::~ForkServer() {
  std::lock_guard lock(mu_);
  stop_locked();
}

int ForkServer::server_pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

void ForkServer::stop_locked() {
  if (socket_ >= 0) ::close(socket_);
  socket_ = -1;
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = 0;
}

Status ForkServer::start_locked() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return make_error(Errc::kUnavailable, "fork server: socketpair: " + errno_text(errno));
  }
  const timeval tv{static_cast<time_t>(reply_timeout_.count() / 1000),
                   static_cast<suseconds_t>(reply_timeout_.count() % 1000 * 1000)};
  ::setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, null_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group: terminal signals and action group kills never reach it.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::string code(kServerCode);
  std::array<std::string, 3> args = {python_, "-c", code};
  std::array<char*, 4> argv = {args[0].data(), args[1].data(), args[2].data(), nullptr};
  // What a cold start's interpreter configuration also depends on (HOME: the user site).
  const char* home = std::getenv("HOME");
  std::string path = "PATH=/usr/local/bin:/usr/bin:/bin";
  std::string lang = "LANG=C.UTF-8";
  std::string home_kv = std::string("HOME=") + (home != nullptr && *home != '\0' ? home : "/");
  std::array<char*, 4> envp = {path.data(), lang.data(), home_kv.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, python_.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(sv[1]);
  if (null_fd >= 0) ::close(null_fd);
  if (rc != 0) {
    ::close(sv[0]);
    return make_error(Errc::kUnavailable,
                      "fork server: cannot start " + python_ + ": " + errno_text(rc));
  }
  socket_ = sv[0];
  pid_ = pid;
  return Status{};
}

Result<int> ForkServer::launch(const ForkRequest& request, const LaunchFds& fds) {
  const std::string message = Json{{"script", request.script},
                                   {"code", request.code},
                                   {"cwd", request.cwd},
                                   {"env", request.env}}
                                  .dump(-1, ' ', false, Json::error_handler_t::replace);
  std::array<int, 4> passed{};
  size_t count = 0;
  for (int fd : {fds.stdin_fd, fds.stdout_fd, fds.stderr_fd, fds.fd3}) {
    if (fd >= 0) passed[count++] = fd;
  }
  std::lock_guard lock(mu_);
  // One retry: a server that died since the last request is restarted once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (socket_ < 0) {
      if (auto st = start_locked(); !st.ok()) return st.error();
    }
    iovec iov{const_cast<char*>(message.data()), message.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(cm), passed.data(), sizeof(int) * count);
    ssize_t n;
    do {
      n = ::sendmsg(socket_, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      const int err = errno;
      stop_locked();
      if (err == EMSGSIZE) return make_error(Errc::kBadRequest, "fork server: request too large");
      continue;
    }
    std::array<char, 512> reply{};
    do {
      n = ::recv(socket_, reply.data(), reply.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      // Dead (EOF, or ECONNRESET when it died with our request unread: retried once with a new
      // server), or no answer in time (an error). A child it may have made without telling us
      // is a child of this process in its own group: killing the server does not orphan it; it
      // ends on its own (its stdin closes with our pipe ends) and stays an unreaped zombie.
      const bool timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      stop_locked();
      if (timed_out) {
        return make_error(Errc::kUnavailable, "fork server: no answer within " +
                                                  std::to_string(reply_timeout_.count()) + " ms");
      }
      continue;
    }
    const Json answer = Json::parse(std::string_view(reply.data(), static_cast<size_t>(n)),
                                    nullptr, false);
    if (answer.is_object() && answer.value("pid", Json()).is_number_integer()) {
      return answer["pid"].get<int>();
    }
    return make_error(Errc::kUnavailable, answer.is_object() && answer.contains("error")
                                              ? answer["error"].dump()
                                              : "fork server: bad answer");
  }
  return make_error(Errc::kUnavailable, "fork server for " + python_ + " exited at start");
}

}  // namespace attune::runners
