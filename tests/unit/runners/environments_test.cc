// PackEnvironments: virtualenvs from requirements.txt with local wheels, node_modules from
// package.json with local packages; cache by content hash (also across instances), failure
// messages from pip, one build for concurrent requests, build timeouts, atomic results.
#include "runners/environments.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "env_fixtures.h"
#include "harness.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(PackEnvironments, PackWithoutDependencyFilesNeedsNothing) {
  TempDir tmp;
  PackEnvironments envs(env_options(tmp.path() + "/envs"));
  fs::create_directories(tmp.path() + "/pack/actions");
  EXPECT_EQ(build_and_wait(envs, "plain", tmp.path() + "/pack").status, "none");
  EXPECT_TRUE(ready_and_wait(envs, "plain", tmp.path() + "/pack", "core.python").ok());
  auto py = envs.resolve("plain", tmp.path() + "/pack", "core.python");
  ASSERT_TRUE(py.ok());
  EXPECT_EQ(py->python, "/usr/bin/python3");
  EXPECT_EQ(py->dir, "");
  EXPECT_FALSE(fs::exists(tmp.path() + "/envs/plain"));
  EXPECT_TRUE(EnvironmentState{}.to_json().is_null());
}

TEST(PackEnvironments, SweepKeepsOnlyWhatInstalledContentUses) {
  TempDir tmp;
  const EnvironmentOptions options = env_options(tmp.path() + "/envs");
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "six\n");
  auto current = environment_name(options, pack, "core.python");
  ASSERT_TRUE(current.ok());
  // The current environment, an older one of the same pack, and one of a pack gone since.
  for (const std::string& dir :
       {"/envs/live/" + *current, std::string("/envs/live/python-old"),
        std::string("/envs/live/node-old"), std::string("/envs/gone/python-x")}) {
    fs::create_directories(tmp.path() + dir);
  }
  auto removed = sweep_environments(options, {{"live", pack}});
  EXPECT_EQ(removed.size(), 3u);
  EXPECT_EQ(entries(tmp.path() + "/envs"), std::vector<std::string>{"live"});
  EXPECT_EQ(entries(tmp.path() + "/envs/live"), std::vector<std::string>{*current});
  EXPECT_TRUE(sweep_environments(env_options(tmp.path() + "/none"), {}).empty());
}

TEST(PackEnvironments, VirtualenvFromRequirementsIsCachedByContent) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "# deps\nattunedep_a==1.0\nattunedep_b\n");
  const std::string envs_dir = tmp.path() + "/envs";
  {
    PackEnvironments envs(env_options(envs_dir));
    EXPECT_FALSE(envs.resolve("pya", pack, "core.python").ok());  // not built yet
    EnvironmentState st = build_and_wait(envs, "pya", pack);
    ASSERT_EQ(st.status, "ready") << st.message;
    auto env = envs.resolve("pya", pack, "core.python");
    ASSERT_TRUE(env.ok()) << env.error().message;
    EXPECT_EQ(env->python, env->dir + "/bin/python");
    EXPECT_EQ(fs::path(env->dir).parent_path(), fs::path(envs_dir + "/pya"));
    EXPECT_EQ(
        capture(env->python + " -c 'import attunedep_a, attunedep_b; print(attunedep_a.VERSION, "
                              "attunedep_b.VERSION)'"),
        "1.0 1.0\n");
    // System packages are not visible inside the virtualenv.
    EXPECT_NE(std::system((env->python + " -c 'import requests' 2>/dev/null").c_str()), 0);
    write_text(env->dir + "/marker", "kept");
  }
  // A new instance (a restart) with the same content reuses the directory without building.
  PackEnvironments again(env_options(envs_dir));
  auto env = again.resolve("pya", pack, "core.python");
  ASSERT_TRUE(env.ok()) << "a ready environment must be found after a restart";
  EXPECT_EQ(build_and_wait(again, "pya", pack).status, "ready");
  EXPECT_EQ(read_file(env->dir + "/marker"), "kept");
  EXPECT_EQ(entries(envs_dir + "/pya").size(), 1u);

  // Changed content ⇒ a new environment next to the old one, with the new version.
  write_text(pack + "/requirements.txt", "attunedep_a==2.0\n");
  ASSERT_EQ(build_and_wait(again, "pya", pack).status, "ready");
  auto env2 = again.resolve("pya", pack, "core.python");
  ASSERT_TRUE(env2.ok());
  EXPECT_NE(env2->dir, env->dir);
  EXPECT_EQ(capture(env2->python + " -c 'import attunedep_a; print(attunedep_a.VERSION)'"),
            "2.0\n");
  EXPECT_EQ(entries(envs_dir + "/pya").size(), 2u);
}

TEST(PackEnvironments, MissingDependencyFailsWithPipsMessageAndLeavesNothing) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "attunedep_a\nattunedep_missing==9.9\n");
  PackEnvironments envs(env_options(tmp.path() + "/envs"));
  EnvironmentState st = build_and_wait(envs, "pyb", pack);
  EXPECT_EQ(st.status, "failed");
  EXPECT_NE(st.message.find("pip install exited with code 1"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("attunedep_missing"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("pack 'pyb'"), std::string::npos) << st.message;
  EXPECT_EQ(st.to_json()["status"], "failed");
  // Nothing that looks ready, no temp directory left.
  EXPECT_TRUE(entries(tmp.path() + "/envs/pyb").empty());
  // Executions get the same message without building again.
  Status ready = ready_and_wait(envs, "pyb", pack, "core.python");
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().message, st.message);
  auto resolved = envs.resolve("pyb", pack, "core.python");
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.error().message, st.message);
  // Other runtimes of the pack are not held up by it.
  EXPECT_TRUE(ready_and_wait(envs, "pyb", pack, "core.shell").ok());
}

TEST(PackEnvironments, ConcurrentRequestsShareOneBuild) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "attunedep_a==1.0\n");
  // An interpreter that counts how often a virtualenv is created.
  const std::string counter = tmp.path() + "/venvs";
  const std::string python = tmp.path() + "/python3";
  write_text(python, "#!/bin/sh\necho x >> " + counter + "\nexec /usr/bin/python3 \"$@\"\n");
  fs::permissions(python, fs::perms::owner_all);
  EnvironmentOptions o = env_options(tmp.path() + "/envs");
  o.python = python;
  PackEnvironments envs(o);
  std::vector<std::future<std::string>> answers;
  for (int i = 0; i < 6; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      if (i % 2 == 0) return build_and_wait(envs, "pyc", pack).status;
      Status s = ready_and_wait(envs, "pyc", pack, "core.python");
      return std::string(s.ok() ? "ready" : s.error().message);
    }));
  }
  for (auto& a : answers) EXPECT_EQ(a.get(), "ready");
  EXPECT_EQ(read_file(counter), "x\n") << "one build for all concurrent requests";
}

TEST(PackEnvironments, BuildStepTimesOut) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "attunedep_a\n");
  const std::string python = tmp.path() + "/python3";
  write_text(python, "#!/bin/sh\necho creating venv\nexec sleep 60\n");
  fs::permissions(python, fs::perms::owner_all);
  EnvironmentOptions o = env_options(tmp.path() + "/envs");
  o.python = python;
  o.build_timeout = std::chrono::seconds(1);
  PackEnvironments envs(o);
  const auto t0 = std::chrono::steady_clock::now();
  EnvironmentState st = build_and_wait(envs, "pyd", pack);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  EXPECT_EQ(st.status, "failed");
  EXPECT_NE(st.message.find("timed out after 1 s"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("creating venv"), std::string::npos) << st.message;
  EXPECT_TRUE(entries(tmp.path() + "/envs/pyd").empty());
}

TEST(PackEnvironments, CrashLeftoversDoNotLookReadyAndAreReplaced) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/requirements.txt", "attunedep_b\n");
  EnvironmentOptions o = env_options(tmp.path() + "/envs");
  auto name = environment_name(o, pack, "core.python");
  ASSERT_TRUE(name.ok());
  ASSERT_EQ(name->rfind("python-", 0), 0u);
  // What a build killed half-way leaves behind.
  write_text(o.envs_dir + "/pye/." + *name + ".tmp/half-written", "x");
  PackEnvironments envs(o);
  EXPECT_FALSE(envs.resolve("pye", pack, "core.python").ok());
  ASSERT_EQ(build_and_wait(envs, "pye", pack).status, "ready");
  EXPECT_EQ(entries(o.envs_dir + "/pye"), std::vector<std::string>{*name});
}

TEST(PackEnvironments, NodeModulesFromLocalPackagesCachedByContent) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  npm_tarball(pack + "/vendor", "shout-lite", "2.0.0",
              "module.exports = (s) => s.toUpperCase() + '!';\n");
  write_text(pack + "/vendor/wrap/package.json",
             R"({"name":"wrap-lite","version":"1.0.0","main":"index.js"})");
  write_text(pack + "/vendor/wrap/index.js", "module.exports = (s) => '[' + s + ']';\n");
  write_text(pack + "/package.json", R"({"name":"nodepack","version":"1.0.0","dependencies":{
      "shout-lite":"file:vendor/shout-lite-2.0.0.tgz","wrap-lite":"file:vendor/wrap"}})");
  const std::string envs_dir = tmp.path() + "/envs";
  PackEnvironments envs(env_options(envs_dir));
  EnvironmentState st = build_and_wait(envs, "nodea", pack);
  ASSERT_EQ(st.status, "ready") << st.message;
  auto env = envs.resolve("nodea", pack, "core.nodejs");
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->node_modules, env->dir + "/node_modules");
  EXPECT_EQ(fs::path(env->dir).filename().string().rfind("node-", 0), 0u);
  EXPECT_EQ(
      capture("NODE_PATH=" + env->node_modules +
              " node -e 'console.log(require(\"wrap-lite\")(require(\"shout-lite\")(\"hi\")))'"),
      "[HI!]\n");
  // Same content: reused. A changed local package (same package.json): rebuilt.
  EXPECT_EQ(build_and_wait(envs, "nodea", pack).status, "ready");
  EXPECT_EQ(entries(envs_dir + "/nodea").size(), 1u);
  write_text(pack + "/vendor/wrap/index.js", "module.exports = (s) => '{' + s + '}';\n");
  ASSERT_EQ(build_and_wait(envs, "nodea", pack).status, "ready");
  EXPECT_EQ(entries(envs_dir + "/nodea").size(), 2u);
  auto env2 = envs.resolve("nodea", pack, "core.nodejs");
  ASSERT_TRUE(env2.ok());
  EXPECT_EQ(capture("NODE_PATH=" + env2->node_modules +
                    " node -e 'console.log(require(\"wrap-lite\")(\"x\"))'"),
            "{x}\n");
}

TEST(PackEnvironments, NodeDependencyOutsideThePackIsRefused) {
  TempDir tmp;
  const std::string pack = tmp.path() + "/pack";
  write_text(pack + "/package.json",
             R"({"name":"evil","version":"1.0.0","dependencies":{"x":"file:../../etc"}})");
  PackEnvironments envs(env_options(tmp.path() + "/envs"));
  EnvironmentState st = build_and_wait(envs, "evil", pack);
  EXPECT_EQ(st.status, "failed");
  EXPECT_NE(st.message.find("not a path inside the pack"), std::string::npos) << st.message;
}

}  // namespace
}  // namespace attune::runners
