// ForkServer: a warm python interpreter that starts each python action as a fresh forked process
// (ProcessSpec::launch), so an execution costs a fork instead of an interpreter start-up.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "runners/process_supervisor.h"
#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners {

// What the forked child runs (python semantics of `python FILE` / inline code).
struct ForkRequest {
  std::string script;  // absolute path of the file to run as __main__, or ""
  std::string code;    // inline code when script is ""
  std::string cwd;     // "" = the server's
  std::vector<std::string> env;  // the complete environment, "K=V"
};

// One server process per interpreter (a virtualenv's bin/python), started on first use:
//   <python> -c <server code>   with a SOCK_SEQPACKET socket on fd 3
// It imports common modules once, then for each request receives the child's stdin, stdout,
// stderr (and fd 3) over the socket and clones itself with CLONE_PARENT, so the new process is
// a child of THIS process (reaped by the ProcessSupervisor like a spawned one) and shares
// nothing with other executions but the pre-initialised, copy-on-write memory. The child makes
// itself a process-group leader, takes the received descriptors as 0-3, closes everything of
// the server, replaces os.environ and the cwd, reseeds what Python reseeds after fork(), runs
// the file (or the code) in a fresh __main__ module as `python FILE` does, runs atexit handlers and exits with
// Python's exit status (an uncaught exception → traceback, 1; SIGINT's KeyboardInterrupt → dies
// of SIGINT). Differences from a cold start: PYTHON* variables of the execution's environment
// do not reconfigure the interpreter (the runner starts cold when there are any), hash
// randomisation uses the server's seed, and /proc/<pid>/environ shows the server's start-up
// environment (PATH, LANG, HOME) while os.environ — and what the action starts — has the
// execution's.
//
// The server exits when the socket closes (this process exited or crashed) and lives in its own
// process group, so cancels and timeouts of actions never reach it. A server that dies or stops
// answering within `reply_timeout` is killed, reaped and restarted on the next request.
//
// Thread-safe: requests are serialised (a request costs about one fork).
class ForkServer {
 public:
  explicit ForkServer(std::string python,
                      std::chrono::milliseconds reply_timeout = std::chrono::seconds(10));
  ~ForkServer();  // closes the socket, kills and reaps the server

  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  // Starts the child; returns its pid (a child of this process). Starts the server if needed.
  Result<int> launch(const ForkRequest& request, const LaunchFds& fds);

  const std::string& python() const { return python_; }
  int server_pid() const;  // 0 when not running (tests)

 private:
  Status start_locked();
  void stop_locked();

  const std::string python_;
  const std::chrono::milliseconds reply_timeout_;
  mutable std::mutex mu_;
  int socket_ = -1;
  int pid_ = 0;
};

}  // namespace attune::runners
