// PackEnvironments (see environments.h): builds as supervised child processes, file-system steps
// and callbacks on one internal thread.
#include "runners/environments.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "runners/process_supervisor.h"
#include "topology/core/clock.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTailBytes = 8 * 1024;    // output kept of a build step
constexpr size_t kMessageBytes = 2000;     // output quoted in a failure message
constexpr const char* kRequirements = "requirements.txt";
constexpr const char* kPackageJson = "package.json";
constexpr const char* kPackageLock = "package-lock.json";

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// FNV-1a, 64 bits: a content key for cache directories (not a security boundary: the content
// comes from the pack's installer, which the operator trusts).
class ContentHash {
 public:
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
    // A separator so ("ab","c") and ("a","bc") differ.
    h_ ^= 0xff;
    h_ *= 1099511628211ULL;
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  uint64_t h_ = 14695981039346656037ULL;
};

Result<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::kBadRequest, "cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool inside(const fs::path& root, const fs::path& p) {
  const auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end();
}

// Relative paths of the local `file:` dependencies of a package.json (dependencies,
// optionalDependencies, devDependencies), checked to stay inside the pack directory.
Result<std::vector<std::string>> local_node_dependencies(const fs::path& pack_dir,
                                                         const std::string& package_json) {
  const Json doc = Json::parse(package_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return make_error(Errc::kBadRequest, "package.json is not a JSON object");
  }
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(pack_dir, ec);
  std::set<std::string> out;
  for (const char* section : {"dependencies", "optionalDependencies", "devDependencies"}) {
    const auto it = doc.find(section);
    if (it == doc.end() || !it->is_object()) continue;
    for (const auto& [name, spec] : it->items()) {
      if (!spec.is_string()) continue;
      const std::string s = spec.get<std::string>();
      if (s.rfind("file:", 0) != 0) continue;
      const std::string rel = s.substr(5);
      const fs::path target = fs::weakly_canonical(root / rel, ec);
      if (ec || fs::path(rel).is_absolute() || !inside(root, target) || target == root) {
        return make_error(Errc::kBadRequest, "package.json dependency '" + name + "': '" + s +
                                                 "' is not a path inside the pack");
      }
      out.insert(fs::relative(target, root, ec).string());
    }
  }
  return std::vector<std::string>(out.begin(), out.end());
}

// Adds a file's or a directory tree's content (sorted, node_modules skipped) to `hash`.
void hash_tree(const fs::path& root, const fs::path& rel, ContentHash& hash) {
  std::error_code ec;
  const fs::path p = root / rel;
  if (fs::is_regular_file(p, ec)) {
    hash.add(rel.string());
    auto text = read_text(p);
    hash.add(text.ok() ? *text : std::string("\0unreadable", 11));
    return;
  }
  if (!fs::is_directory(p, ec)) {
    hash.add(rel.string() + std::string("\0missing", 8));
    return;
  }
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(p, ec)) {
    if (e.path().filename() == "node_modules") continue;
    entries.push_back(rel / e.path().filename());
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) hash_tree(root, e, hash);
}

// The tail of a build's output, starting at a line boundary, for failure messages.
std::string output_tail(const std::string& out) {
  std::string text = out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > kMessageBytes) {
    text = text.substr(text.size() - kMessageBytes);
    if (const size_t nl = text.find('\n'); nl != std::string::npos) text = text.substr(nl + 1);
  }
  return text;
}

// One internal thread running posted tasks in order.
class TaskQueue {
 public:
  TaskQueue() : thread_([this] { run(); }) {}
  ~TaskQueue() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

bool valid_pack_ref(const std::string& ref) {
  static const std::regex kRef("^[a-z][a-z0-9_-]{0,127}$");
  return std::regex_match(ref, kRef);
}

enum class Kind { kPython, kNode };

const char* kind_label(Kind k) { return k == Kind::kPython ? "python" : "node.js"; }

}  // namespace

Json EnvironmentState::to_json() const {
  if (status == "none") return nullptr;
  return Json{{"status", status}, {"message", message}};
}

Result<std::string> environment_name(const EnvironmentOptions& options,
                                     const std::string& pack_dir, const std::string& runtime_ref) {
  std::error_code ec;
  if (pack_dir.empty()) return std::string();
  const fs::path dir(pack_dir);
  if (runtime_ref == "core.python") {
    if (!fs::is_regular_file(dir / kRequirements, ec)) return std::string();
    auto text = read_text(dir / kRequirements);
    if (!text.ok()) return text.error();
    ContentHash h;
    h.add("python-v1");
    h.add(options.python);
    h.add(*text);
    return "python-" + h.hex();
  }
  if (runtime_ref == "core.nodejs") {
    if (!fs::is_regular_file(dir / kPackageJson, ec)) return std::string();
    auto text = read_text(dir / kPackageJson);
    if (!text.ok()) return text.error();
    auto locals = local_node_dependencies(dir, *text);
    if (!locals.ok()) return locals.error();
    ContentHash h;
    h.add("node-v1");
    h.add(*text);
    if (fs::is_regular_file(dir / kPackageLock, ec)) {
      auto lock = read_text(dir / kPackageLock);
      if (!lock.ok()) return lock.error();
      h.add(*lock);
    }
    for (const auto& rel : *locals) hash_tree(dir, rel, h);
    return "node-" + h.hex();
  }
  return std::string();
}

std::vector<std::string> sweep_environments(const EnvironmentOptions& options,
                                            const std::map<std::string, std::string>& live) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (options.envs_dir.empty() || !fs::is_directory(options.envs_dir, ec)) return removed;
  for (const auto& pack : fs::directory_iterator(options.envs_dir, ec)) {
    std::error_code ec2;
    const std::string ref = pack.path().filename().string();
    auto it = live.find(ref);
    std::set<std::string> keep;
    if (it != live.end()) {
      for (const char* runtime : {"core.python", "core.nodejs"}) {
        auto name = environment_name(options, it->second, runtime);
        if (!name.ok()) {
          keep.insert("*");  // cannot tell what it uses: keep everything of this pack
        } else if (!name->empty()) {
          keep.insert(*name);
        }
      }
    }
    if (keep.count("*") > 0) continue;
    if (it == live.end()) {
      fs::remove_all(pack.path(), ec2);
      removed.push_back(pack.path().string());
      continue;
    }
    for (const auto& env : fs::directory_iterator(pack.path(), ec2)) {
      if (keep.count(env.path().filename().string()) > 0) continue;
      std::error_code ec3;
      fs::remove_all(env.path(), ec3);
      removed.push_back(env.path().string());
    }
  }
  return removed;
}

struct PackEnvironments::Impl {
  struct Build {
    enum class State { kBuilding, kReady, kFailed } state = State::kBuilding;
    std::string message;
    std::vector<std::function<void(Status)>> waiters;
  };
  // One build in progress: its steps run one after the other.
  struct Job {
    Kind kind;
    std::string pack_ref, pack_dir, final_dir, tmp_dir;
    std::vector<std::pair<std::string, ProcessSpec>> steps;  // label, spec
    size_t next = 0;
    std::string output;  // tail of the current step's stdout+stderr
  };

  explicit Impl(const EnvironmentOptions& o) : options(o), supervisor(SystemClock::instance()) {}

  const EnvironmentOptions& options;
  TaskQueue queue;               // declared before the supervisor: outlives its callbacks
  ProcessSupervisor supervisor;  // destroyed first: kills running steps, drops their callbacks
  std::mutex mu;
  std::map<std::string, Build> builds;  // by final directory

  // Makes sure the environment of `kind` for the pack is ready, then calls `cb` on the queue.
  void ensure(Kind kind, const std::string& pack_ref, const std::string& pack_dir, bool retry,
              std::function<void(Status)> cb) {
    auto name = environment_name(options, pack_dir,
                                 kind == Kind::kPython ? "core.python" : "core.nodejs");
    if (!name.ok()) {
      const Error err = make_error(name.error().code, std::string(kind_label(kind)) +
                                                          " environment: " + name.error().message);
      queue.post([cb = std::move(cb), err] { cb(err); });
      return;
    }
    if (name->empty()) {
      queue.post([cb = std::move(cb)] { cb(Status{}); });
      return;
    }
    if (!valid_pack_ref(pack_ref)) {
      queue.post([cb = std::move(cb), pack_ref] {
        cb(make_error(Errc::kBadRequest, "invalid pack ref '" + pack_ref + "'"));
      });
      return;
    }
    const std::string final_dir = options.envs_dir + "/" + pack_ref + "/" + *name;
    std::unique_lock lock(mu);
    auto it = builds.find(final_dir);
    if (it == builds.end()) {
      std::error_code ec;
      if (fs::is_directory(final_dir, ec)) {
        builds[final_dir].state = Build::State::kReady;
        lock.unlock();
        queue.post([cb = std::move(cb)] { cb(Status{}); });
        return;
      }
      it = builds.emplace(final_dir, Build{}).first;
    } else {
      switch (it->second.state) {
        case Build::State::kReady:
          lock.unlock();
          queue.post([cb = std::move(cb)] { cb(Status{}); });
          return;
        case Build::State::kBuilding:
          it->second.waiters.push_back(std::move(cb));
          return;
        case Build::State::kFailed:
          if (!retry) {
            const Error err = make_error(Errc::kUnavailable, it->second.message);
            lock.unlock();
            queue.post([cb = std::move(cb), err] { cb(err); });
            return;
          }
          it->second = Build{};
          break;
      }
    }
    it->second.waiters.push_back(std::move(cb));
    lock.unlock();
    auto job = std::make_shared<Job>();
    job->kind = kind;
    job->pack_ref = pack_ref;
    job->pack_dir = pack_dir;
    job->final_dir = final_dir;
    job->tmp_dir = options.envs_dir + "/" + pack_ref + "/." + *name + ".tmp";
    queue.post([this, job] { start(job); });
  }

  std::vector<std::string> base_env() const {
    return {"PATH=" + env_or("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME=" + env_or("HOME", "/"),
            "LANG=C.UTF-8",
            "PIP_DISABLE_PIP_VERSION_CHECK=1",
            "PIP_NO_INPUT=1",
            "PIP_CACHE_DIR=" + options.envs_dir + "/.cache/pip",
            "npm_config_cache=" + options.envs_dir + "/.cache/npm",
            "npm_config_update_notifier=false",
            "npm_config_fund=false",
            "npm_config_audit=false"};
  }

  ProcessSpec step_spec(std::vector<std::string> argv, std::string cwd) const {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = base_env();
    spec.working_dir = std::move(cwd);
    spec.timeout = options.build_timeout;
    return spec;
  }

  // Queue thread: prepares the temporary directory and the steps, then runs them.
  void start(const std::shared_ptr<Job>& job) {
    std::error_code ec;
    fs::remove_all(job->tmp_dir, ec);  // a leftover of a crashed build of the same content
    fs::create_directories(fs::path(job->tmp_dir).parent_path(), ec);
    if (ec) return finish(job, "cannot create " + fs::path(job->tmp_dir).parent_path().string() +
                                   ": " + ec.message());
    const fs::path pack(job->pack_dir);
    if (job->kind == Kind::kPython) {
      job->steps.emplace_back("python3 -m venv",
                              step_spec({options.python, "-m", "venv", job->tmp_dir}, ""));
      std::vector<std::string> pip = {job->tmp_dir + "/bin/python", "-m", "pip", "install",
                                      "--disable-pip-version-check", "--no-input"};
      if (!options.pip_index_url.empty()) {
        pip.push_back("--index-url");
        pip.push_back(options.pip_index_url);
      }
      for (const auto& l : options.pip_find_links) {
        pip.push_back("--find-links");
        pip.push_back(l);
      }
      pip.insert(pip.end(), options.pip_extra_args.begin(), options.pip_extra_args.end());
      pip.push_back("-r");
      pip.push_back((pack / kRequirements).string());
      // Empty requirements (blank or comments only) are a plain virtualenv: pip would refuse.
      auto text = read_text(pack / kRequirements);
      if (!text.ok()) return finish(job, text.error().message);
      if (std::regex_search(*text, std::regex("(^|\n)[ \t]*[^#\\s]"))) {
        job->steps.emplace_back("pip install", step_spec(std::move(pip), job->pack_dir));
      }
    } else {
      fs::create_directories(job->tmp_dir, ec);
      if (ec) return finish(job, "cannot create " + job->tmp_dir + ": " + ec.message());
      auto text = read_text(pack / kPackageJson);
      if (!text.ok()) return finish(job, text.error().message);
      auto locals = local_node_dependencies(pack, *text);
      if (!locals.ok()) return finish(job, locals.error().message);
      const bool lock = fs::is_regular_file(pack / kPackageLock, ec);
      std::vector<std::string> files = {kPackageJson};
      if (lock) files.push_back(kPackageLock);
      files.insert(files.end(), locals->begin(), locals->end());
      for (const auto& rel : files) {
        const fs::path to = fs::path(job->tmp_dir) / rel;
        fs::create_directories(to.parent_path(), ec);
        fs::copy(pack / rel, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks,
                 ec);
        if (ec) return finish(job, "cannot copy " + rel + " from the pack: " + ec.message());
      }
      std::vector<std::string> npm = {options.npm, lock ? "ci" : "install", "--no-audit",
                                      "--no-fund", "--loglevel=error"};
      npm.insert(npm.end(), options.npm_extra_args.begin(), options.npm_extra_args.end());
      job->steps.emplace_back(lock ? "npm ci" : "npm install",
                              step_spec(std::move(npm), job->tmp_dir));
    }
    run_next(job);
  }

  // Queue thread: runs the next step, or completes the build.
  void run_next(const std::shared_ptr<Job>& job) {
    if (job->next == job->steps.size()) {
      std::error_code ec;
      fs::rename(job->tmp_dir, job->final_dir, ec);
      if (ec && fs::is_directory(job->final_dir)) ec.clear();  // built meanwhile elsewhere
      if (ec) return finish(job, "cannot rename " + job->tmp_dir + ": " + ec.message());
      return finish(job, "");
    }
    auto& [label, spec_template] = job->steps[job->next];
    ProcessSpec spec = spec_template;
    job->output.clear();
    spec.on_output = [job](int, std::string_view chunk) {
      job->output.append(chunk);
      if (job->output.size() > 2 * kTailBytes) job->output.erase(0, job->output.size() - kTailBytes);
    };
    const std::string step = label;
    auto pid = supervisor.spawn(std::move(spec), [this, job, step](ProcessResult pr) {
      queue.post([this, job, step, pr = std::move(pr)] {
        if (pr.timed_out) {
          return finish(job, step + " timed out after " +
                                 std::to_string(options.build_timeout.count()) + " s: " +
                                 output_tail(job->output));
        }
        if (pr.exit_code != 0) {
          const std::string how = pr.exit_code ? "exited with code " + std::to_string(*pr.exit_code)
                                               : "was killed by signal " +
                                                     std::to_string(pr.term_signal);
          return finish(job, step + " " + how + ": " + output_tail(job->output));
        }
        ++job->next;
        run_next(job);
      });
    });
    if (!pid.ok()) finish(job, "cannot start " + step + ": " + pid.error().message);
  }

  // Queue thread: records the outcome ("" = ready) and calls the waiters.
  void finish(const std::shared_ptr<Job>& job, const std::string& error) {
    std::string message;
    if (!error.empty()) {
      std::error_code ec;
      fs::remove_all(job->tmp_dir, ec);
      message = std::string(kind_label(job->kind)) + " environment of pack '" + job->pack_ref +
                "' failed: " + error;
    }
    std::vector<std::function<void(Status)>> waiters;
    {
      std::lock_guard lock(mu);
      Build& b = builds[job->final_dir];
      b.state = error.empty() ? Build::State::kReady : Build::State::kFailed;
      b.message = message;
      waiters.swap(b.waiters);
    }
    for (auto& w : waiters) {
      w(error.empty() ? Status{} : Status(make_error(Errc::kUnavailable, message)));
    }
  }
};

PackEnvironments::PackEnvironments(EnvironmentOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}

PackEnvironments::~PackEnvironments() = default;

void PackEnvironments::build(const std::string& pack_ref, const std::string& pack_dir,
                             std::function<void(EnvironmentState)> done) {
  // Both kinds build concurrently; `done` runs after the second answer.
  struct Join {
    std::mutex mu;
    int pending = 2;
    bool any = false;
    std::vector<std::string> errors;
    std::function<void(EnvironmentState)> done;
  };
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  for (Kind kind : {Kind::kPython, Kind::kNode}) {
    std::error_code ec;
    const bool needed =
        !pack_dir.empty() &&
        fs::is_regular_file(fs::path(pack_dir) / (kind == Kind::kPython ? kRequirements
                                                                        : kPackageJson),
                            ec);
    impl_->ensure(kind, pack_ref, pack_dir, /*retry=*/true, [join, needed](Status st) {
      std::unique_lock lock(join->mu);
      join->any = join->any || needed;
      if (!st.ok()) join->errors.push_back(st.error().message);
      if (--join->pending > 0) return;
      EnvironmentState state;
      if (!join->errors.empty()) {
        state.status = "failed";
        for (const auto& e : join->errors) {
          state.message += (state.message.empty() ? "" : "\n") + e;
        }
      } else if (join->any) {
        state.status = "ready";
      }
      lock.unlock();
      join->done(std::move(state));
    });
  }
}

void PackEnvironments::when_ready(const std::string& pack_ref, const std::string& pack_dir,
                                  const std::string& runtime_ref,
                                  std::function<void(Status)> ready) {
  if (runtime_ref != "core.python" && runtime_ref != "core.nodejs") {
    impl_->queue.post([ready = std::move(ready)] { ready(Status{}); });
    return;
  }
  impl_->ensure(runtime_ref == "core.python" ? Kind::kPython : Kind::kNode, pack_ref, pack_dir,
                /*retry=*/false, std::move(ready));
}

Result<ResolvedEnvironment> PackEnvironments::resolve(const std::string& pack_ref,
                                                      const std::string& pack_dir,
                                                      const std::string& runtime_ref) const {
  ResolvedEnvironment env;
  if (runtime_ref == "core.python") env.python = options_.python;
  auto name = environment_name(options_, pack_dir, runtime_ref);
  if (!name.ok()) return name.error();
  if (name->empty()) return env;
  if (!valid_pack_ref(pack_ref)) {
    return make_error(Errc::kBadRequest, "invalid pack ref '" + pack_ref + "'");
  }
  const std::string dir = options_.envs_dir + "/" + pack_ref + "/" + *name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::lock_guard lock(impl_->mu);
    const auto it = impl_->builds.find(dir);
    if (it != impl_->builds.end() && it->second.state == Impl::Build::State::kFailed) {
      return make_error(Errc::kUnavailable, it->second.message);
    }
    return make_error(Errc::kNotFound,
                      "the environment of pack '" + pack_ref + "' is not built yet (" + dir + ")");
  }
  env.dir = dir;
  if (runtime_ref == "core.python") env.python = dir + "/bin/python";
  if (runtime_ref == "core.nodejs") env.node_modules = dir + "/node_modules";
  return env;
}

}  // namespace attune::runners
