// bench_spawn: the ceiling for shell actions — raw posix_spawn + waitpid of a trivial program.
//
// Usage: bench_spawn [seconds_per_case=3] [program=/bin/true] [args...]
// Runs the spawn+wait loop on 1 thread, then on 2 threads, each for the given wall time, and prints
// one line per case:  threads=<n> spawns=<count> seconds=<s> spawns_per_s=<rate> mean_us=<per spawn>
// (mean_us is wall time per spawn on one thread). Also used by foundation_bench.py, which parses it.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

struct Case {
  long spawns = 0;
  double seconds = 0;
};

Case run(int threads, double seconds, const std::vector<char*>& argv) {
  std::atomic<long> total{0};
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      long n = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        pid_t pid = 0;
        const int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
        if (rc != 0) {
          std::fprintf(stderr, "posix_spawn(%s): %s\n", argv[0], std::strerror(rc));
          failed = true;
          return;
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0) {
          if (errno != EINTR) {
            std::perror("waitpid");
            failed = true;
            return;
          }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          std::fprintf(stderr, "%s exited abnormally (status %d)\n", argv[0], status);
          failed = true;
          return;
        }
        ++n;
      }
      total += n;
    });
  }
  for (auto& th : pool) th.join();
  if (failed) std::exit(1);
  Case c;
  c.spawns = total.load();
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  if (!(seconds > 0 && seconds <= 600)) {
    std::fprintf(stderr, "usage: bench_spawn [seconds_per_case (0,600]] [program [args...]]\n");
    return 2;
  }
  std::vector<std::string> words;
  if (argc > 2) {
    for (int i = 2; i < argc; ++i) words.emplace_back(argv[i]);
  } else {
    words.emplace_back("/bin/true");
  }
  std::vector<char*> child_argv;
  for (auto& w : words) child_argv.push_back(w.data());
  child_argv.push_back(nullptr);

  std::string cmd;
  for (const auto& w : words) cmd += (cmd.empty() ? "" : " ") + w;
  for (int threads : {1, 2}) {
    const Case c = run(threads, seconds, child_argv);
    const double rate = c.spawns / c.seconds;
    std::printf("program='%s' threads=%d spawns=%ld seconds=%.3f spawns_per_s=%.1f mean_us=%.1f\n",
                cmd.c_str(), threads, c.spawns, c.seconds, rate, 1e6 * c.seconds * threads / c.spawns);
    std::fflush(stdout);
  }
  return 0;
}
