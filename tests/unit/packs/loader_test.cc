// Pack layout + YAML → definition bodies, and the refusals that name file, line and field.
#include "api/packs/loader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "api/packs/core_files.h"

namespace attune::packs {
namespace {

namespace fs = std::filesystem;

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("attune-loader-" + std::to_string(std::random_device{}()));
    fs::create_directories(root_);
    write("pack.yaml", "ref: demo\nlabel: Demo\nversion: 1.2.0\n__private: x\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& rel, const std::string& text, bool exec = false) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
    if (exec) ::chmod((root_ / rel).c_str(), 0755);
  }

  Result<PackContent> load() { return load_pack(root_, error_); }

  const Component* find(const PackContent& c, const std::string& kind, const std::string& name) {
    for (const auto& comp : c.components) {
      if (comp.kind == kind && comp.body["ref"] == name) return &comp;
    }
    return nullptr;
  }

  fs::path root_;
  PackError error_;
};

TEST_F(LoaderTest, MapsTheLayoutToApiFieldNames) {
  write("actions/hello.yaml",
        "name: hello\nrunner_type: python\nentry_point: hello.py\nparameters:\n  who: {type: "
        "string, required: true}\noutput:\n  greeting: {type: string}\ntimeout: 30\n__x: 1\n");
  write("actions/hello.py", "print('hi')\n");
  write("actions/inline.yaml", "name: inline\nrunner_type: shell\nentry_point: echo \"$who\"\n");
  write("triggers/ping.yaml", "name: ping\nparameters:\n  level: {type: string}\n");
  write("sensors/watch.yaml",
        "name: watch\nrunner_type: python\nentry_point: watch.py\ntrigger_types: [ping, "
        "core.webhook]\n");
  write("sensors/watch.py", "pass\n");
  write("rules/on_ping.yaml",
        "name: on_ping\ntrigger: {type: ping, parameters: {}}\naction: {ref: hello, parameters: "
        "{who: '{{ trigger.payload.who }}'}}\ncriteria: {}\n");
  write("requirements.txt", "six\n");
  auto c = load();
  ASSERT_TRUE(c.ok()) << error_.text();
  EXPECT_EQ(c->pack["ref"], "demo");
  EXPECT_EQ(c->pack["version"], "1.2.0");
  EXPECT_FALSE(c->pack.contains("__private"));
  EXPECT_TRUE(c->python_requirements);
  EXPECT_FALSE(c->node_package);

  const auto* hello = find(*c, "action", "hello");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->file, "actions/hello.yaml");
  EXPECT_EQ(hello->body["runtime_ref"], "core.python");
  EXPECT_EQ(hello->body["entrypoint"], "hello.py");
  EXPECT_EQ(hello->body["param_schema"]["who"]["required"], true);
  EXPECT_EQ(hello->body["out_schema"]["greeting"]["type"], "string");
  EXPECT_EQ(hello->body["timeout_seconds"], 30);
  EXPECT_FALSE(hello->body.contains("__x"));
  EXPECT_EQ(find(*c, "action", "inline")->body["runtime_ref"], "core.shell");

  const auto* watch = find(*c, "sensor", "watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_EQ(watch->body["trigger_types"], Json({"demo.ping", "core.webhook"}));
  const auto* rule = find(*c, "rule", "on_ping");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->body["trigger_ref"], "demo.ping");
  EXPECT_EQ(rule->body["action_ref"], "demo.hello");
  EXPECT_EQ(rule->body["action_params"]["who"], "{{ trigger.payload.who }}");
}

TEST_F(LoaderTest, WorkflowsPermissionSetsAndPoliciesAreLoaded) {
  write("actions/flow.yaml", "name: flow\nworkflow_file: workflows/flow.workflow.yaml\n");
  write("actions/workflows/flow.workflow.yaml", "version: 1\ntasks: {}\n");
  write("policies/limit.yaml", "name: limit\naction_ref: flow\nconcurrency: {limit: 1}\n");
  write("policies/scoped.yaml",
        "scope: {type: action, action_ref: other.run}\nquotas: [{quota_type: executions_total, "
        "limit: 3}]\n");
  write("permission_sets/ops.yaml", "ref: ops\ngrants: []\n");
  write("notes.txt", "ignored\n");
  auto c = load();
  ASSERT_TRUE(c.ok()) << error_.text();
  ASSERT_EQ(c->components.size(), 4u);  // the workflow, the permission set, two policies
  const auto* flow = find(*c, "workflow", "flow");
  ASSERT_NE(flow, nullptr);
  EXPECT_EQ(flow->body["definition"]["version"], 1);
  EXPECT_EQ(flow->body["definition"]["tasks"], Json::object());
  const auto* ops = find(*c, "permission_set", "ops");
  ASSERT_NE(ops, nullptr);
  // Policies keep their API fields; unqualified action refs become the pack's, the file name
  // names a policy without `name`.
  const auto* limit = find(*c, "policy", "limit");
  ASSERT_NE(limit, nullptr);
  EXPECT_EQ(limit->file, "policies/limit.yaml");
  EXPECT_EQ(limit->body["action_ref"], "demo.flow");
  EXPECT_EQ(limit->body["concurrency"]["limit"], 1);
  const auto* scoped = find(*c, "policy", "scoped");
  ASSERT_NE(scoped, nullptr);
  EXPECT_EQ(scoped->body["scope"]["action_ref"], "other.run");
  EXPECT_EQ(scoped->body["quotas"][0]["limit"], 3);

  write("policies/bad.yaml", "name: [unclosed\n");
  EXPECT_FALSE(load().ok());
  EXPECT_EQ(error_.file, "policies/bad.yaml");
  EXPECT_GT(error_.line, 0);
  write("policies/bad.yaml", "name: 'a b'\n");
  EXPECT_FALSE(load().ok());
  EXPECT_EQ(error_.field, "name");
  fs::remove(root_ / "policies/bad.yaml");
  write("permission_sets/bad.yaml", "ref: bad\ngrants: {a: 1}\n");
  EXPECT_FALSE(load().ok());
  EXPECT_EQ(error_.field, "grants");
  fs::remove(root_ / "permission_sets/bad.yaml");
  write("actions/workflows/bad.workflow.yaml", "version: 1\n");
  EXPECT_FALSE(load().ok());
  EXPECT_EQ(error_.field, "tasks");
}

TEST_F(LoaderTest, RefusalsNameTheFileLineAndField) {
  struct Case {
    const char* file;
    const char* text;
    int status;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"actions/a.yaml", "name: a\nrunner_type: perl\nentry_point: a.pl\n", 422, "runner_type"},
      {"actions/a.yaml", "name: a\nrunner_type: python\nentry_point: missing.py\n", 422,
       "entry_point"},
      {"actions/a.yaml", "name: a\nrunner_type: python\nentry_point: ../pack.yaml\n", 422,
       "entry_point"},
      {"actions/a.yaml", "name: a\nrunner_type: shell\nentry_point: run.sh\n", 422, "entry_point"},
      {"actions/a.yaml", "name: a\nrunner_type: container\n", 422, "image"},
      {"actions/a.yaml", "name: other.a\nentry_point: x\n", 422, "name"},
      {"actions/a.yaml", "name: 'bad name'\nentry_point: x\n", 422, "name"},
      {"actions/a.yaml", "name: a\nparameters: [1]\nentry_point: x\n", 422, "parameters"},
      {"actions/a.yaml", "- just\n- a list\n", 422, ""},
      {"rules/r.yaml", "name: r\naction: x\n", 422, "trigger"},
      {"sensors/s.yaml", "name: s\nentry_point: nope.py\nrunner_type: python\n", 422,
       "entry_point"},
      {"pack.yaml", "ref: Not_Valid\n", 422, "ref"},
      {"pack.yaml", "label: no ref\n", 422, "ref"},
  };
  for (const auto& tc : cases) {
    SetUp();
    write(tc.file, tc.text);
    auto c = load();
    EXPECT_FALSE(c.ok()) << tc.file << ": " << tc.text;
    EXPECT_EQ(error_.status, tc.status) << tc.text;
    EXPECT_EQ(error_.file, tc.file) << tc.text;
    EXPECT_EQ(error_.field, tc.field) << tc.text << " → " << error_.text();
    TearDown();
  }
}

TEST_F(LoaderTest, YamlSyntaxErrorsCarryTheirLine) {
  write("triggers/t.yaml", "name: t\nparameters:\n  a: {type: string\n  b: 1\n");
  ASSERT_FALSE(load().ok());
  EXPECT_EQ(error_.file, "triggers/t.yaml");
  EXPECT_GE(error_.line, 3);
  EXPECT_NE(error_.text().find("triggers/t.yaml:"), std::string::npos);
}

TEST_F(LoaderTest, DuplicateNamesAndAMissingPackFileAreRefused) {
  write("actions/a.yaml", "name: same\nentry_point: 'true'\n");
  write("actions/b.yaml", "name: same\nentry_point: 'true'\n");
  ASSERT_FALSE(load().ok());
  EXPECT_NE(error_.message.find("duplicate"), std::string::npos);
  fs::remove(root_ / "pack.yaml");
  ASSERT_FALSE(load().ok());
  EXPECT_EQ(error_.status, 400);
}

TEST_F(LoaderTest, SymlinkedEntryPointsMayNotLeaveThePack) {
  write("actions/a.yaml", "name: a\nrunner_type: native\nentry_point: run\n");
  fs::create_directories(root_ / "actions");
  fs::create_symlink("/bin/true", root_ / "actions" / "run");
  ASSERT_FALSE(load().ok());
  EXPECT_EQ(error_.field, "entry_point");
}

TEST(CorePackTest, TheEmbeddedCorePackLoads) {
  const fs::path dir =
      fs::temp_directory_path() / ("attune-core-" + std::to_string(std::random_device{}()));
  ASSERT_TRUE(write_core_files(dir, core_files_hash()).ok());
  PackError error;
  auto c = load_pack(dir, error);
  ASSERT_TRUE(c.ok()) << error.text();
  EXPECT_EQ(c->pack["ref"], "core");
  EXPECT_EQ(c->pack["meta"]["content_hash"], core_files_hash());
  std::set<std::string> refs;
  for (const auto& comp : c->components) refs.insert(comp.kind + ":" + comp.body["ref"].get<std::string>());
  for (const char* want : {"action:echo", "action:noop", "action:sleep", "action:local",
                           "action:http_request", "trigger:webhook", "trigger:intervaltimer",
                           "trigger:crontimer", "trigger:datetimetimer", "trigger:rruletimer",
                           "sensor:timer_sensor", "runtime:shell", "runtime:python"}) {
    EXPECT_TRUE(refs.count(want)) << want;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace attune::packs
