// NativeRunner (core.native): pack executables run directly with core.shell's parameters and
// environment; clear errors for files that are missing, outside the pack or not executable.
#include "runners/native_runner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT
namespace fs = std::filesystem;

class NativeRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(pack_dir() + "/actions/bin"); }
  std::string pack_dir() const { return tmp_.file("pack"); }
  void write(const std::string& rel, const std::string& text, fs::perms perms) {
    const std::string path = pack_dir() + "/" + rel;
    std::ofstream(path) << text;
    fs::permissions(path, perms);
  }
  ActionInvocation invocation(std::string entrypoint) {
    ActionInvocation inv;
    inv.execution_id = 9;
    inv.action_ref = "demo.native";
    inv.pack_ref = "demo";
    inv.runtime_ref = "core.native";
    inv.pack_dir = pack_dir();
    inv.entrypoint = std::move(entrypoint);
    inv.parameters = Json{{"name", "world"}, {"token", "tok-9999"}};
    inv.secret_values = {"tok-9999"};
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }
  std::string error_of(const ActionInvocation& inv) {
    auto spec = runner_.prepare(inv);
    return spec.ok() ? "" : spec.error().message;
  }

  TempDir tmp_;
  NativeRunner runner_{tmp_.path()};
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

constexpr auto kExec = fs::perms::owner_all;
constexpr auto kNoExec = fs::perms::owner_read | fs::perms::owner_write;

TEST_F(NativeRunnerTest, RunsTheExecutableWithParametersOnStdin) {
  write("actions/bin/tool",
        "#!/bin/sh\necho \"argv0=$0 cwd=$(pwd)\"\ncat\nprintenv ATTUNE_ACTION\n", kExec);
  auto inv = invocation("bin/tool");
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  const std::string resolved = fs::canonical(pack_dir() + "/actions/bin/tool").string();
  EXPECT_EQ(spec->argv, std::vector<std::string>{resolved});
  for (const auto& e : spec->env) EXPECT_EQ(e.find("tok-9999"), std::string::npos);
  ProcessResult pr = run_to_end(sup_, std::move(*spec));
  Outcome o = runner_.finish(inv, pr);
  EXPECT_EQ(o.status, "completed") << pr.stderr_text;
  const std::string actions = fs::canonical(pack_dir() + "/actions").string();
  EXPECT_EQ(o.result["stdout"], "argv0=" + resolved + " cwd=" + actions +
                                    "\n{\"name\":\"world\",\"token\":\"***\"}\ndemo.native\n");
}

TEST_F(NativeRunnerTest, ParameterFileDelivery) {
  write("actions/bin/tool", "#!/bin/sh\ncat \"$ATTUNE_PARAMETER_FILE\"\n", kExec);
  auto inv = invocation("bin/tool");
  inv.parameter_delivery = "file";
  inv.parameter_format = "dotenv";
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  ASSERT_EQ(spec->cleanup_paths.size(), 1u);
  const std::string file = spec->cleanup_paths[0];
  ProcessResult pr = run_to_end(sup_, std::move(*spec));
  EXPECT_EQ(pr.stdout_text, "name='world'\ntoken='tok-9999'\n");
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(NativeRunnerTest, NonZeroExitFails) {
  write("actions/fail", "#!/bin/sh\nexit 3\n", kExec);
  auto inv = invocation("fail");
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  Outcome o = runner_.finish(inv, run_to_end(sup_, std::move(*spec)));
  EXPECT_EQ(o.status, "failed");
  EXPECT_EQ(o.result["exit_code"], 3);
}

TEST_F(NativeRunnerTest, ClearErrors) {
  write("actions/plain.sh", "echo hi\n", kNoExec);
  write("outside", "#!/bin/sh\necho escaped\n", kExec);
  fs::create_symlink(pack_dir() + "/outside", pack_dir() + "/actions/link");
  EXPECT_NE(error_of(invocation("plain.sh")).find("'plain.sh' is not executable"),
            std::string::npos);
  EXPECT_NE(error_of(invocation("missing")).find("'missing' not found"), std::string::npos);
  EXPECT_NE(error_of(invocation("bin")).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of(invocation("../outside")).find("outside the pack's actions directory"),
            std::string::npos);
  EXPECT_NE(error_of(invocation("link")).find("outside the pack's actions directory"),
            std::string::npos);
  EXPECT_NE(error_of(invocation("")).find("empty entrypoint"), std::string::npos);
  auto inline_script = invocation("echo hi");
  inline_script.pack_dir.clear();
  EXPECT_NE(error_of(inline_script).find("has no pack directory"), std::string::npos);
}

}  // namespace
}  // namespace attune::runners
