// ShellRunner (core.shell) end to end on a real ProcessSupervisor: inline scripts, pack files,
// parameter delivery and formats, environment rules and secret hygiene (API.md §11.3–§11.5).
#include "runners/shell_runner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "harness.h"
#include "runners/formats.h"

namespace attune::runners {
namespace {

using namespace testing;  // NOLINT

class ShellRunnerTest : public ::testing::Test {
 protected:
  ActionInvocation inline_action(std::string script, Json params = Json::object()) {
    ActionInvocation inv;
    inv.execution_id = 77;
    inv.action_ref = "demo.echo";
    inv.pack_ref = "demo";
    inv.rule_ref = "demo.on_tick";
    inv.trigger_ref = "core.timer";
    inv.api_url = "http://127.0.0.1:8080";
    inv.entrypoint = std::move(script);
    inv.parameters = std::move(params);
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }

  // prepare + spawn + wait; fails the test if prepare fails.
  ProcessResult run(const ActionInvocation& inv) {
    auto spec = runner_.prepare(inv);
    if (!spec.ok()) {
      ADD_FAILURE() << "prepare: " << spec.error().message;
      return {};
    }
    return run_to_end(sup_, std::move(*spec));
  }

  TempDir tmp_;
  ShellRunner runner_{tmp_.path()};
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

TEST_F(ShellRunnerTest, InlineScriptSeesParametersAsShellVariables) {
  ProcessResult r = run(inline_action(
      R"(echo "$message"; echo "${count}"; echo "$obj"; echo "[$nothing]"; echo "$quoted")",
      Json::parse(R"({"message":"hello world","count":3,"obj":{"a":[1,2]},"nothing":null,
                      "quoted":"it's \"fine\" $HOME `x`","not-an-identifier":"skip"})")));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "hello world\n3\n{\"a\":[1,2]}\n[null]\nit's \"fine\" $HOME `x`\n");
}

TEST_F(ShellRunnerTest, InlineVariablesAreNotExportedAndStdinStillHasTheDocument) {
  const Json params = Json::parse(R"({"message":"hello","api_key":"sk-very-secret"})");
  ProcessResult r = run(inline_action(R"(INPUT=$(cat); printenv; echo "INPUT=$INPUT")", params));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  const std::string input_line = "INPUT=" + params.dump() + "\n";
  ASSERT_GE(r.stdout_text.size(), input_line.size());
  const std::string printenv = r.stdout_text.substr(0, r.stdout_text.size() - input_line.size());
  EXPECT_EQ(r.stdout_text.substr(printenv.size()), input_line);  // stdin is the whole document
  EXPECT_EQ(printenv.find("message"), std::string::npos) << printenv;
  EXPECT_EQ(printenv.find("api_key"), std::string::npos) << printenv;
  EXPECT_EQ(printenv.find("sk-very-secret"), std::string::npos) << printenv;
  EXPECT_EQ(printenv.find("hello"), std::string::npos) << printenv;
}

TEST_F(ShellRunnerTest, ScriptChildrenCannotReadTheScriptFromFd3) {
  ProcessResult r = run(inline_action("cat <&3 2>/dev/null; echo rc=$?",
                                      Json::parse(R"({"api_key":"sk-very-secret"})")));
  EXPECT_EQ(r.stdout_text.find("sk-very-secret"), std::string::npos);
  EXPECT_NE(r.stdout_text.find("rc="), std::string::npos);
  EXPECT_EQ(r.stdout_text.find("rc=0"), std::string::npos);
}

TEST_F(ShellRunnerTest, EnvironmentHasAttuneVariablesThatCallersCannotOverride) {
  ActionInvocation inv = inline_action("printenv | sort");
  inv.env_vars = {{"ATTUNE_ACTION", "evil.override"}, {"ATTUNE_EXEC_ID", "1"}, {"FOO", "bar"}};
  inv.api_token = "exec-token";
  ProcessResult r = run(inv);
  const std::string& out = r.stdout_text;
  for (const std::string line :
       {"ATTUNE_ACTION=demo.echo\n", "ATTUNE_EXEC_ID=77\n",
        "ATTUNE_API_URL=http://127.0.0.1:8080\n", "ATTUNE_API_TOKEN=exec-token\n",
        "ATTUNE_PACK_REF=demo\n", "ATTUNE_RULE=demo.on_tick\n", "ATTUNE_TRIGGER=core.timer\n",
        "ATTUNE_PARAMETER_DELIVERY=stdin\n", "ATTUNE_PARAMETER_FORMAT=json\n", "FOO=bar\n",
        "LANG=C.UTF-8\n"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << " missing in\n" << out;
  }
  EXPECT_EQ(out.find("evil.override"), std::string::npos);
  EXPECT_EQ(out.find("ATTUNE_PARAMETER_FILE"), std::string::npos);
}

TEST_F(ShellRunnerTest, ApiUrlNeverEndsWithTheApiPrefix) {
  ActionInvocation inv = inline_action(R"(echo "$ATTUNE_API_URL")");
  inv.api_url = "http://api:8080/api/v1/";
  EXPECT_EQ(run(inv).stdout_text, "http://api:8080\n");
}

TEST_F(ShellRunnerTest, LargeInlineScriptAndParameters) {
  // Prelude + script well beyond a pipe buffer: fd 3 is written as the shell reads it.
  const std::string big(300000, 'z');
  ActionInvocation inv = inline_action(R"(echo "${#big}"; wc -c)", Json{{"big", big}});
  ProcessResult r = run(inv);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text,
            "300000\n" + std::to_string(Json{{"big", big}}.dump().size() + 1) + "\n");
}

TEST_F(ShellRunnerTest, NoTokenVariableWithoutToken) {
  ProcessResult r = run(inline_action("printenv"));
  EXPECT_EQ(r.stdout_text.find("ATTUNE_API_TOKEN"), std::string::npos);
}

TEST_F(ShellRunnerTest, ParameterWithTheNameOfACallerVariableIsNotExported) {
  ActionInvocation inv = inline_action(R"(echo "shell=$message"; printenv message; echo end)",
                                       Json::parse(R"({"message":"from-param"})"));
  inv.env_vars = {{"message", "from-env"}};
  ProcessResult r = run(inv);
  EXPECT_EQ(r.stdout_text, "shell=from-param\nend\n");
}

TEST_F(ShellRunnerTest, ReservedNamesAreNotAssigned) {
  ProcessResult r =
      run(inline_action(R"(echo "$ATTUNE_ACTION"; command -v cat >/dev/null && echo path-ok)",
                        Json::parse(R"({"ATTUNE_ACTION":"forged","PATH":"/nowhere"})")));
  EXPECT_EQ(r.stdout_text, "demo.echo\npath-ok\n");
}

TEST_F(ShellRunnerTest, DotenvAndYamlFormatsOnStdin) {
  const Json params = Json::parse(R"({"b":"it's","a":{"x":1},"n":null,"l":[1,2]})");
  ActionInvocation inv = inline_action("cat", params);
  inv.parameter_format = "dotenv";
  EXPECT_EQ(run(inv).stdout_text, "a.x='1'\nb='it'\\''s'\nl='[1,2]'\nn=''\n");

  inv.parameter_format = "yaml";
  ProcessResult yaml = run(inv);
  auto parsed = parse_yaml(yaml.stdout_text);
  ASSERT_TRUE(parsed.ok()) << yaml.stdout_text;
  EXPECT_EQ(*parsed, params);

  inv.parameter_format = "json";
  EXPECT_EQ(run(inv).stdout_text, params.dump() + "\n");

  inv.parameter_format = "toml";
  EXPECT_FALSE(runner_.prepare(inv).ok());
}

TEST_F(ShellRunnerTest, FileDeliveryUsesA0400FileRemovedAfterwards) {
  ActionInvocation inv = inline_action(
      "f=$ATTUNE_PARAMETER_FILE\n"
      R"(echo "$f"; stat -c %a "$f"; cat "$f"; echo "stdin=[$(cat)]")",
      Json::parse(R"({"k":"v"})"));
  inv.parameter_delivery = "file";
  inv.parameter_format = "dotenv";
  ProcessResult r = run(inv);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  const std::string path = r.stdout_text.substr(0, r.stdout_text.find('\n'));
  EXPECT_EQ(path.rfind(tmp_.path(), 0), 0u) << path;
  EXPECT_EQ(r.stdout_text, path + "\n400\nk='v'\nstdin=[]\n");
  EXPECT_FALSE(std::filesystem::exists(path));

  inv.parameter_delivery = "carrier-pigeon";
  EXPECT_FALSE(runner_.prepare(inv).ok());
}

TEST_F(ShellRunnerTest, PackFileEntrypoints) {
  const std::string pack = tmp_.file("pack");
  std::filesystem::create_directories(pack + "/actions/sub");
  { std::ofstream(pack + "/actions/sub/plain.sh") << "echo plain \"$(cat)\" \"$(pwd)\"\n"; }
  { std::ofstream(pack + "/actions/exec.sh") << "#!/bin/sh\necho direct $0\n"; }
  ::chmod((pack + "/actions/exec.sh").c_str(), 0755);
  { std::ofstream(pack + "/outside.sh") << "echo escaped\n"; }

  ActionInvocation inv = inline_action("sub/plain.sh", Json::parse(R"({"a":1})"));
  inv.pack_dir = pack;
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->argv.size(), 2u);
  EXPECT_EQ(spec->argv[0], "/bin/sh");
  EXPECT_FALSE(spec->fd3_data.has_value());
  const std::string actions = std::filesystem::canonical(pack + "/actions").string();
  EXPECT_EQ(run(inv).stdout_text, "plain {\"a\":1} " + actions + "\n");

  inv.entrypoint = "exec.sh";
  EXPECT_EQ(run(inv).stdout_text, "direct " + actions + "/exec.sh\n");

  inv.entrypoint = "../outside.sh";
  auto escaped = runner_.prepare(inv);
  ASSERT_FALSE(escaped.ok());
  EXPECT_NE(escaped.error().message.find("outside"), std::string::npos);

  inv.entrypoint = "echo not a file";  // no such file: inline text
  EXPECT_EQ(run(inv).stdout_text, "not a file\n");
}

TEST_F(ShellRunnerTest, FailureAndTimeoutResults) {
  ActionInvocation fail = inline_action("echo oops >&2; exit 4");
  ProcessResult pr = run(fail);
  Json r = make_result(fail, pr);
  EXPECT_EQ(execution_status_for(pr), "failed");
  EXPECT_EQ(r["error"], "Process exited with code 4");
  EXPECT_EQ(r["stderr"], "oops\n");

  ActionInvocation slow = inline_action("echo started; sleep 30");
  slow.timeout = std::chrono::milliseconds(200);
  ProcessResult tpr = run(slow);
  Json t = make_result(slow, tpr);
  EXPECT_EQ(execution_status_for(tpr), "timeout");
  EXPECT_NE(t["error"].get<std::string>().find("timed out"), std::string::npos);
  EXPECT_EQ(t["stdout"], "started\n");
}

TEST_F(ShellRunnerTest, JsonOutputAndRedactionEndToEnd) {
  ActionInvocation inv = inline_action(
      R"(printf '{"greeting":"%s","key":"%s"}\n' "$message" "$api_key"; echo "debug $api_key" >&2)",
      Json::parse(R"({"message":"hi","api_key":"sk-0123456789"})"));
  inv.output_format = "json";
  inv.secret_values = {"sk-0123456789"};
  Json r = make_result(inv, run(inv));
  EXPECT_EQ(r["greeting"], "hi");
  EXPECT_EQ(r["data"]["key"], "***");
  EXPECT_EQ(r["stderr"], "debug ***\n");
  EXPECT_EQ(r.dump().find("sk-0123456789"), std::string::npos);
}

TEST_F(ShellRunnerTest, SecretsNeverInArgvEnvironOrCmdlineOfARunningChild) {
  const std::string ready = tmp_.fifo("ready");
  const std::string go = tmp_.fifo("go");
  const std::string secret = "sk-live-5f2b9c0d";
  ActionInvocation inv = inline_action(
      "test -n \"$api_key\" && echo up > " + ready + "; read line < " + go + "; echo ok",
      Json{{"api_key", secret}, {"message", "visible-param"}});
  auto spec = runner_.prepare(inv);
  ASSERT_TRUE(spec.ok());
  for (const auto& a : spec->argv) EXPECT_EQ(a.find(secret), std::string::npos) << a;
  for (const auto& e : spec->env) EXPECT_EQ(e.find(secret), std::string::npos) << e;

  PendingRun running = start(sup_, std::move(*spec));
  ASSERT_EQ(read_fifo(ready), "up");  // the shell has read the prelude and sees the secret
  const std::string proc = "/proc/" + std::to_string(running.pid);
  const std::string environ = read_file(proc + "/environ");
  const std::string cmdline = read_file(proc + "/cmdline");
  EXPECT_NE(environ.find("ATTUNE_EXEC_ID=77"), std::string::npos) << "read the wrong process?";
  EXPECT_EQ(environ.find(secret), std::string::npos);
  EXPECT_EQ(environ.find("visible-param"), std::string::npos);
  EXPECT_EQ(cmdline, std::string("/bin/sh\0/dev/fd/3\0", 18));
  write_fifo(go, "continue");
  EXPECT_EQ(running.get().stdout_text, "ok\n");
}

}  // namespace
}  // namespace attune::runners
