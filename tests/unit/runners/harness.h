// Test helpers for runners: run a spec to completion on a ProcessSupervisor, temp dirs, FIFOs
// for handshakes with running children (no sleeps).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "runners/process_supervisor.h"

namespace attune::runners::testing {

using namespace std::chrono_literals;

inline constexpr auto kWait = std::chrono::seconds(60);  // generous: the machine is shared

// Fast escalations so timeout/cancel tests finish quickly.
inline SupervisorOptions fast_options() {
  SupervisorOptions o;
  o.cancel_step = 200ms;
  o.kill_grace = 300ms;
  o.eof_grace = 200ms;
  return o;
}

inline ProcessSpec sh(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  return spec;
}

// Spawns and waits for the callback. On failure, records a test failure and returns a default
// result with launch_error set.
struct PendingRun {
  int pid = 0;
  std::future<ProcessResult> result;
  ProcessResult get() {
    if (result.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "process " << pid << " did not finish within " << kWait.count() << " s";
      ProcessResult r;
      r.launch_error = "test: no result";
      return r;
    }
    return result.get();
  }
};

inline PendingRun start(ProcessSupervisor& sup, ProcessSpec spec) {
  auto promise = std::make_shared<std::promise<ProcessResult>>();
  PendingRun run;
  run.result = promise->get_future();
  auto pid =
      sup.spawn(std::move(spec), [promise](ProcessResult r) { promise->set_value(std::move(r)); });
  if (!pid.ok()) {
    ADD_FAILURE() << "spawn failed: " << pid.error().message;
    ProcessResult r;
    r.launch_error = pid.error().message;
    promise->set_value(std::move(r));
    return run;
  }
  run.pid = *pid;
  return run;
}

inline ProcessResult run_to_end(ProcessSupervisor& sup, ProcessSpec spec) {
  return start(sup, std::move(spec)).get();
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "attune-runners-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string fifo(const std::string& name) const {
    const std::string p = file(name);
    ::mkfifo(p.c_str(), 0600);
    return p;
  }

 private:
  std::string path_;
};

// Waits (up to kWait) until a writer wrote a line to `fifo`; returns it without the newline.
inline std::string read_fifo(const std::string& fifo) {
  const int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return "";
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      line.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;  // the writer closed without a newline
    }
  }
  ::close(fd);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

inline void write_fifo(const std::string& fifo, const std::string& line) {
  std::ofstream out(fifo);
  out << line << "\n";
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace attune::runners::testing
