// NodeRunner (core.nodejs) end to end: plain CommonJS scripts, exported (async) functions in
// CommonJS and ES modules, "type": "module", inline code, the pack's node_modules for require
// and import, failures, secrets and timeouts.
#include "runners/nodejs_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "env_fixtures.h"
#include "harness.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT

class NodeRunnerTest : public ::testing::Test {
 protected:
  std::string pack() const { return tmp_.path() + "/pack"; }
  void write(const std::string& rel, const std::string& text) {
    write_text(pack() + "/" + rel, text);
  }
  ActionInvocation action(std::string entrypoint, Json params = Json::object()) {
    ActionInvocation inv;
    inv.execution_id = 5;
    inv.action_ref = "nodep.act";
    inv.pack_ref = "nodep";
    inv.runtime_ref = "core.nodejs";
    inv.entrypoint = std::move(entrypoint);
    inv.pack_dir = pack();
    inv.parameters = std::move(params);
    inv.timeout = std::chrono::seconds(60);
    return inv;
  }
  ProcessResult run(const ActionInvocation& inv) {
    auto spec = runner_->prepare(inv);
    if (!spec.ok()) {
      ADD_FAILURE() << "prepare: " << spec.error().message;
      return {};
    }
    return run_to_end(sup_, std::move(*spec));
  }

  TempDir tmp_;
  std::shared_ptr<PackEnvironments> envs_ =
      std::make_shared<PackEnvironments>(env_options(tmp_.path() + "/envs"));
  std::unique_ptr<NodeRunner> runner_ =
      std::make_unique<NodeRunner>(envs_, NodeRunnerOptions{tmp_.path()});
  ProcessSupervisor sup_{SystemClock::instance(), fast_options()};
};

TEST_F(NodeRunnerTest, PlainCommonJsScriptReadsStdin) {
  write("actions/plain.js", R"(let data = '';
process.stdin.on('data', (c) => (data += c));
process.stdin.on('end', () => {
  const p = JSON.parse(data);
  console.log(`hello ${p.name} main=${require.main === module} exec=${process.env.ATTUNE_EXEC_ID}`);
});
)");
  ProcessResult pr = run(action("plain.js", Json{{"name", "node"}}));
  EXPECT_EQ(pr.exit_code, 0) << pr.stderr_text;
  EXPECT_EQ(pr.stdout_text, "hello node main=true exec=5\n");
}

TEST_F(NodeRunnerTest, CommonJsExportedFunctionResultIsPrintedAsJson) {
  write("actions/fn.js", "module.exports = (p) => ({ doubled: p.n * 2, argv1: process.argv[1] });\n");
  ActionInvocation inv = action("fn.js", Json{{"n", 21}});
  inv.output_format = "json";
  ProcessResult pr = run(inv);
  ASSERT_EQ(pr.exit_code, 0) << pr.stderr_text;
  Json r = make_result(inv, pr);
  EXPECT_EQ(r["doubled"], 42);
  EXPECT_EQ(r["argv1"], fs::canonical(pack() + "/actions/fn.js").string());
}

TEST_F(NodeRunnerTest, EsModuleAsyncDefaultExport) {
  write("actions/wait.mjs", R"(import { setTimeout as sleep } from 'node:timers/promises';
export default async function (params) {
  await sleep(20);
  return { greeting: `hi ${params.who}`, esm: typeof require === 'undefined' };
}
)");
  ProcessResult pr = run(action("wait.mjs", Json{{"who", "esm"}}));
  EXPECT_EQ(pr.exit_code, 0) << pr.stderr_text;
  EXPECT_EQ(pr.stdout_text, "{\"greeting\":\"hi esm\",\"esm\":true}\n");
}

TEST_F(NodeRunnerTest, TypeModuleJsWithNamedRunExport) {
  write("actions/package.json", R"({"type":"module"})");
  write("actions/named.js", "export async function run(p) { return [p.a, import.meta.url.startsWith('file:')]; }\n");
  ProcessResult pr = run(action("named.js", Json{{"a", 1}}));
  EXPECT_EQ(pr.exit_code, 0) << pr.stderr_text;
  EXPECT_EQ(pr.stdout_text, "[1,true]\n");
}

TEST_F(NodeRunnerTest, InlineCodeAndNothingPrintedForUndefined) {
  ActionInvocation inv =
      action("module.exports = async (p) => { console.log('side', p.x); };", Json{{"x", 7}});
  inv.pack_dir.clear();
  ProcessResult pr = run(inv);
  EXPECT_EQ(pr.exit_code, 0) << pr.stderr_text;
  EXPECT_EQ(pr.stdout_text, "side 7\n");
}

TEST_F(NodeRunnerTest, RejectionFailsWithStackAndSecretsStayOutOfTheEnvironment) {
  write("actions/fail.mjs", R"(export default async (p) => {
  const env = JSON.stringify(process.env) + process.argv.join(' ');
  throw new Error('bad ' + (env.includes(p.token) ? 'leaked' : 'clean') + ' ' + (p.token.length));
};
)");
  ActionInvocation inv = action("fail.mjs", Json{{"token", "tok-123456789"}});
  ProcessResult pr = run(inv);
  EXPECT_EQ(pr.exit_code, 1);
  EXPECT_NE(pr.stderr_text.find("Error: bad clean 13"), std::string::npos) << pr.stderr_text;
  EXPECT_NE(pr.stderr_text.find("fail.mjs"), std::string::npos) << pr.stderr_text;
}

TEST_F(NodeRunnerTest, TimeoutKillsNode) {
  write("actions/hang.js", "console.log('up'); setInterval(() => {}, 1000);\n");
  ActionInvocation inv = action("hang.js");
  inv.timeout = std::chrono::milliseconds(800);
  ProcessResult pr = run(inv);
  EXPECT_EQ(execution_status_for(pr), "timeout");
  EXPECT_EQ(pr.stdout_text, "up\n");
}

TEST_F(NodeRunnerTest, PackNodeModulesForRequireAndImport) {
  npm_tarball(pack() + "/vendor", "shout-lite", "2.0.0",
              "module.exports = (s) => s.toUpperCase() + '!';\n");
  write("package.json", R"({"name":"nodep","version":"1.0.0","dependencies":{
      "shout-lite":"file:vendor/shout-lite-2.0.0.tgz"}})");
  write("actions/cjs.js", "const shout = require('shout-lite');\nmodule.exports = (p) => shout(p.s);\n");
  write("actions/esm.mjs", "import shout from 'shout-lite';\nexport default async (p) => shout(p.s);\n");
  // Before the environment is built, prepare() says so instead of running without modules.
  auto early = runner_->prepare(action("cjs.js"));
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("not built yet"), std::string::npos);

  std::promise<Status> ready;
  runner_->when_ready(action("cjs.js"), [&](Status s) { ready.set_value(std::move(s)); });
  Status st = ready.get_future().get();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(run(action("cjs.js", Json{{"s", "cjs"}})).stdout_text, "\"CJS!\"\n");
  ProcessResult esm = run(action("esm.mjs", Json{{"s", "esm"}}));
  EXPECT_EQ(esm.stdout_text, "\"ESM!\"\n") << esm.stderr_text;
}

TEST_F(NodeRunnerTest, MissingModuleIsAClearFailure) {
  write("actions/need.mjs", "import x from 'not-installed-anywhere';\nexport default () => x;\n");
  ProcessResult pr = run(action("need.mjs"));
  EXPECT_EQ(pr.exit_code, 1);
  EXPECT_NE(pr.stderr_text.find("not-installed-anywhere"), std::string::npos) << pr.stderr_text;
}

}  // namespace
}  // namespace attune::runners
