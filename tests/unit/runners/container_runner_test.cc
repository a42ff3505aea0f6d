// ContainerRunner (core.container): the engine argv (pure), the missing-engine error, and the
// container-run guard against a fake engine that records the removals it is asked for.
#include "runners/container_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "harness.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT
namespace fs = std::filesystem;

class ContainerRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(pack_dir() + "/actions");
    std::ofstream(pack_dir() + "/actions/run.sh") << "#!/bin/sh\ncat\n";
    fs::permissions(pack_dir() + "/actions/run.sh", fs::perms::owner_all);
    std::ofstream(pack_dir() + "/actions/plain.sh") << "cat\n";
  }
  std::string pack_dir() const { return tmp_.file("pack"); }
  ActionInvocation invocation(Json action) {
    ActionInvocation inv;
    inv.execution_id = 123;
    inv.attempt = 2;
    inv.action_ref = "demo.boxed";
    inv.pack_ref = "demo";
    inv.runtime_ref = "core.container";
    inv.pack_dir = pack_dir();
    inv.entrypoint = "run.sh";
    inv.api_url = "http://127.0.0.1:8080/api/v1";
    inv.api_token = "exec-token-secret";
    inv.parameters = Json{{"msg", "hi"}, {"password", "pw-secret-1"}};
    inv.secret_values = {"pw-secret-1"};
    inv.env_vars = {{"COLOR", "blue"}, {"ATTUNE_ACTION", "spoofed"}};
    inv.action = std::move(action);
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }
  static std::vector<std::string> env_flags(const std::vector<std::string>& argv) {
    std::vector<std::string> out;
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "-e") out.push_back(argv[i + 1]);
    }
    return out;
  }

  TempDir tmp_;
  ContainerRunner runner_{ContainerOptions{"podman", {"--runtime", "runc"}, ATTUNE_RUNNER_TOOL}};
};

TEST_F(ContainerRunnerTest, RunArgvWithTheEntryPointFromTheMountedPack) {
  auto argv = runner_.run_argv(invocation(Json{{"image", "localhost/box:1"}}));
  ASSERT_TRUE(argv.ok()) << argv.error().message;
  const std::string pack = fs::absolute(pack_dir()).lexically_normal().string();
  // clang-format off
  const std::vector<std::string> expected = {
      "podman", "run", "--rm", "-i", "--init", "--name", "attune-exec-123-2", "--label",
      "attune.execution=123", "--network=none", "--runtime", "runc",
      "-v", pack + ":/pack:ro", "-w", "/pack/actions",
      "-e", "ATTUNE_ACTION=demo.boxed", "-e", "ATTUNE_API_URL=http://127.0.0.1:8080",
      "-e", "ATTUNE_EXEC_ID=123", "-e", "ATTUNE_PACK_REF=demo",
      "-e", "ATTUNE_PARAMETER_DELIVERY=stdin", "-e", "ATTUNE_PARAMETER_FORMAT=json",
      "-e", "ATTUNE_RULE=", "-e", "ATTUNE_TRIGGER=", "-e", "COLOR=blue",
      "localhost/box:1", "/pack/actions/run.sh"};
  // clang-format on
  EXPECT_EQ(*argv, expected);
}

TEST_F(ContainerRunnerTest, SecretsNeverReachArgvOrEnvironment) {
  auto inv = invocation(Json{{"image", "box"}});
  auto spec = runner_.prepare(inv);
  if (!spec.ok()) {
    // No podman here: the argv check above covers the run arguments; prepare must say why.
    EXPECT_NE(spec.error().message.find("not found on PATH"), std::string::npos);
    return;
  }
  for (const auto& a : spec->argv) {
    EXPECT_EQ(a.find("pw-secret-1"), std::string::npos) << a;
    EXPECT_EQ(a.find("exec-token-secret"), std::string::npos) << a;
  }
  for (const auto& e : spec->env) {
    EXPECT_EQ(e.find("ATTUNE_"), std::string::npos) << e;
    EXPECT_EQ(e.find("pw-secret-1"), std::string::npos) << e;
  }
  EXPECT_EQ(Json::parse(spec->stdin_data), inv.parameters);
}

TEST_F(ContainerRunnerTest, CommandAndNetworkFields) {
  auto str = runner_.run_argv(
      invocation(Json{{"image", "box"}, {"command", "echo $X"}, {"network", true}}));
  ASSERT_TRUE(str.ok());
  EXPECT_EQ(std::vector<std::string>(str->end() - 4, str->end()),
            (std::vector<std::string>{"box", "/bin/sh", "-c", "echo $X"}));
  EXPECT_NE(std::find(str->begin(), str->end(), "--network=bridge"), str->end());

  auto arr = runner_.run_argv(
      invocation(Json{{"image", "box"}, {"command", {"cat", "-"}}, {"network", "none"}}));
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(std::vector<std::string>(arr->end() - 3, arr->end()),
            (std::vector<std::string>{"box", "cat", "-"}));

  auto inv = invocation(Json{{"image", "box"}});
  inv.entrypoint = "plain.sh";  // not executable: run by the image's /bin/sh
  auto plain = runner_.run_argv(inv);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(std::vector<std::string>(plain->end() - 2, plain->end()),
            (std::vector<std::string>{"/bin/sh", "/pack/actions/plain.sh"}));

  auto no_pack = invocation(Json{{"image", "box"}, {"command", {"true"}}});
  no_pack.pack_dir.clear();
  auto bare = runner_.run_argv(no_pack);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(std::find(bare->begin(), bare->end(), "-v"), bare->end());
}

TEST_F(ContainerRunnerTest, BadFieldsAreClearErrors) {
  const std::pair<Json, const char*> cases[] = {
      {Json::object(), "has no 'image'"},
      {Json{{"image", ""}}, "has no 'image'"},
      {Json{{"image", "box"}, {"network", "host"}}, "'network' must be"},
      {Json{{"image", "box"}, {"command", {1, 2}}}, "'command' must be"},
      {Json{{"image", "box"}, {"command", 5}}, "'command' must be"},
  };
  for (const auto& [action, part] : cases) {
    auto r = runner_.run_argv(invocation(action));
    ASSERT_FALSE(r.ok()) << action.dump();
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  }
  auto file = invocation(Json{{"image", "box"}});
  file.parameter_delivery = "file";
  EXPECT_NE(runner_.run_argv(file).error().message.find("on stdin"), std::string::npos);
  auto escape = invocation(Json{{"image", "box"}});
  escape.entrypoint = "../../etc/passwd";
  EXPECT_NE(runner_.run_argv(escape).error().message.find("not found"), std::string::npos);
}

TEST_F(ContainerRunnerTest, PackConfigIsMountedReadOnlyAndRemovedWithTheRun) {
  // Any executable stands in for the engine: prepare() only checks that it exists.
  ContainerRunner runner(ContainerOptions{"/bin/true", {}, ATTUNE_RUNNER_TOOL, tmp_.path()});
  auto inv = invocation(Json{{"image", "box"}, {"command", {"true"}}});
  inv.pack_config = Json{{"region", "eu"}};
  auto spec = runner.prepare(inv);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  ASSERT_EQ(spec->cleanup_paths.size(), 1u);
  const std::string file = spec->cleanup_paths[0];
  EXPECT_EQ(file.rfind(tmp_.path() + "/attune-container-config-123-", 0), 0u) << file;
  EXPECT_EQ(Json::parse(read_file(file)), inv.pack_config);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read);
  const auto& argv = spec->argv;
  const auto mount = std::find(argv.begin(), argv.end(), file + ":/run/attune/pack_config.json:ro");
  ASSERT_NE(mount, argv.end());
  EXPECT_EQ(*(mount - 1), "-v");
  const auto image = std::find(argv.begin(), argv.end(), "box");
  EXPECT_LT(mount, image);  // an engine option, not part of the command
  EXPECT_NE(std::find(argv.begin(), image, "ATTUNE_PACK_CONFIG_FILE=/run/attune/pack_config.json"),
            image);
  // Without a pack config nothing is written.
  inv.pack_config = nullptr;
  auto plain = runner.prepare(inv);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->cleanup_paths.empty());
  fs::remove(file);
}

TEST_F(ContainerRunnerTest, MissingEngineIsNamed) {
  ContainerRunner missing(ContainerOptions{"/nonexistent/podman", {}, ATTUNE_RUNNER_TOOL});
  auto spec = missing.prepare(invocation(Json{{"image", "box"}}));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().message,
            "container engine '/nonexistent/podman' not found (install podman, or set "
            "--container-engine)");
  auto on_path = ContainerRunner::find_engine("no-such-engine-xyz", "/usr/bin:/bin");
  ASSERT_FALSE(on_path.ok());
  EXPECT_EQ(on_path.error().message,
            "container engine 'no-such-engine-xyz' not found on PATH (install podman, or set "
            "--container-engine)");
  EXPECT_EQ(*ContainerRunner::find_engine("sh", "/nonexistent:/bin"), "/bin/sh");
}

// The guard with a fake engine: `run` plays the container (reads stdin, echoes it, or hangs
// ignoring SIGTERM/SIGINT like a stubborn action), `kill` logs to a file and `rm` reports its
// arguments on a FIFO.
class ContainerGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    removals_ = tmp_.fifo("removals");
    ready_ = tmp_.fifo("ready");
    engine_ = tmp_.file("fake-engine");
    kills_ = tmp_.file("kills");
    const std::string script =
        "#!/bin/sh\n"
        "if [ \"$1\" = kill ]; then echo \"$*\" >> " +
        kills_ +
        "; exit 0; fi\n"
        "if [ \"$1\" = rm ]; then echo \"$*\" > " +
        removals_ +
        "; exit 0; fi\n"
        "last=\"\"; for a in \"$@\"; do last=\"$a\"; done\n"
        "if [ \"$last\" = hang ]; then trap '' TERM INT; echo started; echo started > " +
        ready_ +
        "; while :; do sleep 1; done; fi\n"
        "cat; echo; echo \"last=$last\"; exit 3\n";
    std::ofstream(engine_) << script;
    fs::permissions(engine_, fs::perms::owner_all);
  }
  ProcessSpec guard(const std::string& last_arg) {
    ProcessSpec spec;
    spec.argv = {ATTUNE_RUNNER_TOOL,
                 "container-run",
                 "--engine",
                 engine_,
                 "--name",
                 "attune-exec-1-1",
                 "--",
                 engine_,
                 "run",
                 "--rm",
                 "-i",
                 last_arg};
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.stdin_data = "{\"a\":1}";
    return spec;
  }

  TempDir tmp_;
  std::string removals_, ready_, kills_, engine_;
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

TEST_F(ContainerGuardTest, PassesStdioAndExitCodeThrough) {
  ProcessResult pr = run_to_end(sup_, guard("box"));
  EXPECT_EQ(pr.exit_code, 3);
  EXPECT_EQ(pr.stdout_text, "{\"a\":1}\nlast=box\n");
}

TEST_F(ContainerGuardTest, TimeoutKillRemovesTheContainer) {
  ProcessSpec spec = guard("hang");
  spec.timeout = std::chrono::milliseconds(1000);
  ProcessResult pr = run_to_end(sup_, std::move(spec));
  EXPECT_TRUE(pr.timed_out);
  EXPECT_EQ(pr.stdout_text, "started\n");
  // The guard survived SIGTERM and died by SIGKILL; its reaper asks the engine to remove it.
  EXPECT_EQ(read_fifo(removals_), "rm -f attune-exec-1-1");
  EXPECT_EQ(read_file(kills_), "kill attune-exec-1-1\n");  // killed first, without a stop timeout
}

TEST_F(ContainerGuardTest, CancelRemovesTheContainer) {
  PendingRun pending = start(sup_, guard("hang"));
  ASSERT_EQ(read_fifo(ready_), "started");  // the "container" runs
  sup_.cancel(pending.pid);
  ProcessResult pr = pending.get();
  EXPECT_TRUE(pr.cancelled);
  EXPECT_EQ(read_fifo(removals_), "rm -f attune-exec-1-1");
  EXPECT_EQ(read_file(kills_), "kill attune-exec-1-1\n");  // killed first, without a stop timeout
}

TEST_F(ContainerGuardTest, UsageErrors) {
  ProcessSpec spec;
  spec.argv = {
      ATTUNE_RUNNER_TOOL, "container-run", "--engine", "podman", "--name", "x", "--", "true"};
  ProcessResult pr = run_to_end(sup_, std::move(spec));
  EXPECT_EQ(pr.exit_code, 2);  // the engine must be a resolved path
}

}  // namespace
}  // namespace attune::runners
