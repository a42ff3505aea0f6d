// Test fixtures for pack environments: local wheels (no PyPI) and local npm packages, built
// once per test binary into a temp directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "harness.h"
#include "runners/environments.h"

namespace attune::runners::testing {

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

inline int sh_run(const std::string& command) { return std::system(command.c_str()); }

// Wheels attunedep_a 1.0 and 2.0 and attunedep_b 1.0 (module attunedep_x exposes VERSION),
// built offline with Debian's setuptools.
inline const std::string& wheel_dir() {
  static TempDir* dir = new TempDir();  // lives for the whole test binary
  static bool built = [] {
    for (const auto& [name, version] : std::vector<std::pair<std::string, std::string>>{
             {"attunedep_a", "1.0"}, {"attunedep_a", "2.0"}, {"attunedep_b", "1.0"}}) {
      const std::string src = dir->path() + "/src-" + name + "-" + version;
      write_text(src + "/setup.py", "from setuptools import setup\nsetup(name='" + name +
                                        "', version='" + version + "', py_modules=['" + name +
                                        "'])\n");
      write_text(src + "/" + name + ".py", "VERSION = '" + version + "'\n");
      const int rc = sh_run("cd " + dir->path() +
                            " && /usr/bin/python3 -m pip wheel -q --no-index --no-build-isolation "
                            "--no-deps -w wheels " + src + " >/dev/null 2>&1");
      if (rc != 0) ADD_FAILURE() << "building wheel " << name << " " << version << " failed";
    }
    return true;
  }();
  (void)built;
  static const std::string path = dir->path() + "/wheels";
  return path;
}

inline EnvironmentOptions env_options(const std::string& envs_dir) {
  EnvironmentOptions o;
  o.envs_dir = envs_dir;
  o.pip_find_links = {wheel_dir()};
  o.pip_extra_args = {"--no-index"};
  o.build_timeout = std::chrono::seconds(300);
  return o;
}

inline EnvironmentState build_and_wait(PackEnvironments& envs, const std::string& pack,
                                       const std::string& dir) {
  std::promise<EnvironmentState> p;
  auto f = p.get_future();
  envs.build(pack, dir, [&p](EnvironmentState s) { p.set_value(std::move(s)); });
  if (f.wait_for(std::chrono::seconds(600)) != std::future_status::ready) {
    ADD_FAILURE() << "build of " << pack << " did not finish";
    return EnvironmentState{"failed", "test: no answer"};
  }
  return f.get();
}

inline Status ready_and_wait(PackEnvironments& envs, const std::string& pack,
                             const std::string& dir, const std::string& runtime) {
  std::promise<Status> p;
  auto f = p.get_future();
  envs.when_ready(pack, dir, runtime, [&p](Status s) { p.set_value(std::move(s)); });
  if (f.wait_for(std::chrono::seconds(600)) != std::future_status::ready) {
    ADD_FAILURE() << "when_ready of " << pack << " did not answer";
    return make_error(Errc::kInternal, "test: no answer");
  }
  return f.get();
}

// A node package `name` (index.js exporting `body`) packed with npm into `into_dir`; returns the
// tarball's file name.
inline std::string npm_tarball(const std::string& into_dir, const std::string& name,
                               const std::string& version, const std::string& body) {
  TempDir src;
  write_text(src.path() + "/" + name + "/package.json",
             "{\"name\":\"" + name + "\",\"version\":\"" + version + "\",\"main\":\"index.js\"}");
  write_text(src.path() + "/" + name + "/index.js", body);
  std::filesystem::create_directories(into_dir);
  const int rc = sh_run("cd " + into_dir + " && npm pack --silent " + src.path() + "/" + name +
                        " >/dev/null 2>&1");
  if (rc != 0) ADD_FAILURE() << "npm pack " << name << " failed";
  return name + "-" + version + ".tgz";
}

}  // namespace attune::runners::testing
