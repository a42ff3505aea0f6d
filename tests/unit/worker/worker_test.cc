// Worker stage tests with real /bin/sh actions through the Runtime on a temp EmbeddedLog:
// completed with stdout, failed with exit code, unsupported runtime, repeated dispatch, cancel,
// abandoned after a restart with a leftover in-flight record; and the invocation builder.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "processors/keystore/keys.h"
#include "processors/keystore/sealed.h"
#include "processors/worker/worker_processor.h"
#include "topology/embedded_log.h"
#include "topology/runtime.h"

namespace attune::worker {
namespace {

using namespace std::chrono_literals;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-worker-" + std::to_string(std::random_device{}()));
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(2));
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    auto reader = log_->reader({std::string(topics::kResults)});
    ASSERT_TRUE(reader.ok());
    reader_ = std::move(*reader);
  }
  void TearDown() override {
    runtime_.reset();
    reader_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(const std::function<void(WorkerOptions&)>& tweak = {}) {
    topology_ = Topology();
    WorkerOptions options;
    options.name = "w1";
    options.api_url = "http://api.test";
    options.supervisor.cancel_step = 200ms;
    if (tweak) tweak(options);
    topology_.add({"worker",
                   {std::string(topics::kDispatch)},
                   {std::string(kInFlightStore), std::string(kSeenStore)},
                   1,
                   64,
                   [options](int) { return std::make_unique<WorkerProcessor>(options); }});
    RuntimeOptions ro;
    ro.ids = &ids_;
    runtime_ = std::make_unique<Runtime>(*log_, topology_, ro);
    ASSERT_TRUE(runtime_->start().ok());
  }
  void dispatch(int64_t id, Json action, Json execution = Json::object(), int64_t attempt = 1) {
    execution["id"] = id;
    execution["action_ref"] = "p.act";
    Envelope e{"execution.dispatch",
               id,
               "",
               0,
               "executor",
               {{"execution", execution}, {"attempt", attempt}, {"action", action}}};
    ASSERT_TRUE(
        log_->produce({{std::string(topics::kDispatch), std::to_string(id), e.dump()}}).ok());
  }
  void cancel(int64_t id, int64_t attempt = 1) {
    Envelope e{"execution.cancel", id, "", 0, "executor", {{"id", id}, {"attempt", attempt}}};
    ASSERT_TRUE(
        log_->produce({{std::string(topics::kDispatch), std::to_string(id), e.dump()}}).ok());
  }
  // Next result records until `n` arrived (or `wait` passed).
  std::vector<Envelope> results(size_t n, std::chrono::milliseconds wait = 10s) {
    std::vector<Envelope> out;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      for (const Record& r : reader_->poll(n - out.size(), 200ms)) {
        Envelope e;
        std::string err;
        EXPECT_TRUE(Envelope::parse(r.value, e, err));
        out.push_back(std::move(e));
      }
    }
    return out;
  }
  static Json shell(const std::string& script) {
    return {{"ref", "p.act"}, {"runtime_ref", "core.shell"}, {"entrypoint", script}};
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
  std::unique_ptr<Consumer> reader_;
  IdGenerator ids_{0, SystemClock::instance()};
  Topology topology_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(WorkerTest, CompletedWithStdout) {
  start();
  dispatch(11, shell("echo \"hello $who\"; echo \"$ATTUNE_EXEC_ID $ATTUNE_API_URL\""),
           {{"config", {{"who", "world"}}}});
  auto r = results(2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, "result.running");
  EXPECT_EQ(r[0].payload["id"], 11);
  EXPECT_EQ(r[0].payload["attempt"], 1);
  EXPECT_EQ(r[0].payload["worker"], "w1");
  EXPECT_TRUE(r[0].payload["started_at"].is_string());
  EXPECT_EQ(r[1].type, "result.finished");
  EXPECT_EQ(r[1].payload["status"], "completed");
  EXPECT_EQ(r[1].payload["result"]["stdout"], "hello world\n11 http://api.test\n");
  EXPECT_EQ(r[1].payload["result"]["exit_code"], 0);
}

TEST_F(WorkerTest, SecretsAreInjectedOnStdinAndRedactedFromTheResult) {
  auto cipher = std::make_shared<const keystore::Cipher>("worker-test-secret-0123456789abcdef");
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  auto put_key = [&](const std::string& ref, const std::string& local, const Json& value) {
    Json key = {{"ref", ref}, {"local_ref", local}, {"expires_at", nullptr}};
    keystore::set_value(key, value, true, *cipher);
    auto pos = log_->produce({definition_record(keystore::kKind, key, 0, "test")});
    ASSERT_TRUE(pos.ok());
    ASSERT_TRUE(table.wait_applied(pos->back().offset, 5s));
  };
  put_key("pack.p.api_key", "api_key", "sk-live-12345");
  put_key("pack.p.message", "message", "from-the-key");  // a same-named parameter wins
  put_key("pack.other.leak", "leak", "not-for-p");
  start([&](WorkerOptions& o) {
    o.definitions = &table;
    o.cipher = cipher;
    o.mint_token = [](const Json& ex, const Json&) {
      return std::optional<std::string>("tok-for-" + ex["id"].dump());
    };
  });
  auto sealed = keystore::seal_config(Json{{"message", "hi"}, {"password", "pw-98765"}},
                                      {"password"}, {}, *cipher,
                                      keystore::sealed_aad("execution", 21));
  ASSERT_TRUE(sealed.sealed.has_value());
  dispatch(21,
           shell("echo \"$message $password $api_key [$leak]\"; printenv ATTUNE_API_TOKEN; "
                 "printenv | grep -c -e pw-98765 -e sk-live || true; cat"),
           {{"pack_ref", "p"},
            {"config", sealed.config},
            {keystore::kSecretConfigField, *sealed.sealed}});
  // A seal that does not open (bound to another execution) fails the attempt, runs nothing.
  dispatch(22, shell("echo ran"),
           {{"pack_ref", "p"}, {"config", sealed.config}, {keystore::kSecretConfigField, *sealed.sealed}});
  std::map<int64_t, Envelope> finished;
  for (auto& e : results(3)) {
    if (e.type == "result.finished") finished[e.id] = e;
  }
  ASSERT_EQ(finished.count(21), 1u);
  const Json& result = finished[21].payload["result"];
  EXPECT_EQ(finished[21].payload["status"], "completed") << result.dump();
  const std::string out = result["stdout"];
  EXPECT_EQ(out.substr(0, out.find('\n')), "hi *** *** []");
  EXPECT_NE(out.find("\ntok-for-21\n0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\"api_key\":\"***\""), std::string::npos) << out;  // on stdin, redacted
  EXPECT_NE(out.find("\"password\":\"***\""), std::string::npos) << out;
  EXPECT_EQ(result.dump().find("pw-98765"), std::string::npos);
  EXPECT_EQ(result.dump().find("sk-live"), std::string::npos);
  ASSERT_EQ(finished.count(22), 1u);
  EXPECT_EQ(finished[22].payload["status"], "failed");
  EXPECT_NE(finished[22].payload["result"]["error"].get<std::string>().find(
                "cannot open the execution's secret parameters"),
            std::string::npos);
  runtime_.reset();
  table.stop();
}

TEST_F(WorkerTest, FailedWithExitCodeAndRepeatedDispatchIgnored) {
  start();
  dispatch(12, shell("echo oops >&2; exit 3"));
  dispatch(12, shell("echo oops >&2; exit 3"));  // redelivered: ignored
  dispatch(13, {{"ref", "p.py"}, {"runtime_ref", "core.python"}, {"entrypoint", "x.py"}});
  auto r = results(3);
  ASSERT_EQ(r.size(), 3u);
  std::map<int64_t, Envelope> finished;
  for (auto& e : r) {
    if (e.type == "result.finished") finished[e.id] = e;
  }
  ASSERT_EQ(finished.count(12), 1u);
  EXPECT_EQ(finished[12].payload["status"], "failed");
  EXPECT_EQ(finished[12].payload["result"]["exit_code"], 3);
  EXPECT_EQ(finished[12].payload["result"]["stderr"], "oops\n");
  EXPECT_EQ(finished[12].payload["result"]["error"], "Process exited with code 3");
  ASSERT_EQ(finished.count(13), 1u);
  EXPECT_EQ(finished[13].payload["status"], "failed");
  EXPECT_NE(finished[13].payload["result"]["error"].get<std::string>().find(
                "runtime core.python is not supported"),
            std::string::npos);
  EXPECT_TRUE(results(1, 300ms).empty());  // nothing more: the repeated dispatch did not run again
}

TEST_F(WorkerTest, AtMostMaxRunningProcessesAtOnceTheRestWaitTheirTurn) {
  // Each action counts the markers of those running beside it. With two slots and a queue of
  // two, six dispatches run two at a time; the worker stops reading dispatches while the queue
  // is full and every one of them still completes.
  const auto marks = dir_ / "running";
  std::filesystem::create_directories(marks);
  start([](WorkerOptions& o) {
    o.max_running = 2;
    o.max_waiting = 2;
  });
  for (int64_t id = 21; id <= 26; ++id) {
    dispatch(id, shell("touch " + marks.string() + "/$ATTUNE_EXEC_ID; ls " + marks.string() +
                       " | wc -l; sleep 0.2; rm " + marks.string() + "/$ATTUNE_EXEC_ID"));
  }
  auto r = results(12, 20s);
  ASSERT_EQ(r.size(), 12u);
  std::set<int64_t> finished;
  for (const auto& e : r) {
    if (e.type != "result.finished") continue;
    EXPECT_EQ(e.payload["status"], "completed") << e.payload.dump();
    const int beside = std::stoi(e.payload["result"]["stdout"].get<std::string>());
    EXPECT_GE(beside, 1);
    EXPECT_LE(beside, 2) << "more than max_running processes at once";
    finished.insert(e.payload["id"].get<int64_t>());
  }
  EXPECT_EQ(finished.size(), 6u);
}

TEST_F(WorkerTest, ACancelledWaitingAttemptEndsAtOnceWithoutRunning) {
  start([](WorkerOptions& o) { o.max_running = 1; });
  // One after the other: dispatches of different keys may be taken in either order.
  dispatch(31, shell("sleep 30"));
  auto r = results(1);  // 31 recorded in flight and admitted (it runs)
  ASSERT_EQ(r.size(), 1u);
  dispatch(32, shell("echo should-not-run"));
  r = results(1);  // 32 recorded in flight, waiting for 31's slot
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].payload["id"], 32);
  cancel(32);
  r = results(1, 5s);  // long before 31's 30 s are up
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, "result.finished");
  EXPECT_EQ(r[0].payload["id"], 32);
  EXPECT_EQ(r[0].payload["status"], "cancelled") << r[0].payload.dump();
  cancel(31);
  r = results(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].payload["id"], 31);
  EXPECT_EQ(r[0].payload["status"], "cancelled");
  EXPECT_TRUE(results(1, 300ms).empty());  // 32 never ran
}

TEST_F(WorkerTest, CancelEndsTheProcess) {
  start();
  dispatch(14, shell("sleep 30"));
  auto r = results(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, "result.running");
  cancel(14);
  r = results(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, "result.finished");
  EXPECT_EQ(r[0].payload["status"], "cancelled");
}

// The pid goes into the in-flight record once the process has run for a while (a restart kills
// its process group).
TEST_F(WorkerTest, ThePidOfAProcessThatKeepsRunningIsStored) {
  start();
  dispatch(17, shell("sleep 30"));
  auto r = results(1);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].type, "result.running");
  auto store = db_->store("worker.inflight");
  ASSERT_TRUE(store.ok());
  std::optional<InFlight> f;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto v = (*store)->get(attempt_key(17, 1));
    ASSERT_TRUE(v.ok());
    if (v->has_value()) f = InFlight::parse(**v);
    if (f && f->pid > 0) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(f.has_value());
  ASSERT_GT(f->pid, 0);
  EXPECT_EQ(::kill(f->pid, 0), 0);  // the running sleep's
  cancel(17);
  r = results(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].payload["status"], "cancelled");
}

TEST_F(WorkerTest, LeftoverInFlightAttemptIsReportedAbandoned) {
  start();
  dispatch(15, shell("sleep 30"));
  auto r = results(1);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].type, "result.running");
  runtime_->stop();  // close(): kills the child, keeps the in-flight record
  runtime_.reset();
  auto store = db_->store("worker.inflight");
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->get(attempt_key(15, 1))->has_value());
  // A leftover of an older crash, with a pid that is long gone.
  state::WriteBatch b;
  b.put(**store, attempt_key(16, 2), InFlight{16, 2, 16, 1, 0, false}.dump());
  ASSERT_TRUE(db_->write(b).ok());

  start();
  r = results(2);
  ASSERT_EQ(r.size(), 2u);
  std::set<int64_t> ids;
  for (const auto& e : r) {
    EXPECT_EQ(e.type, "result.finished");
    EXPECT_EQ(e.payload["status"], "abandoned");
    EXPECT_EQ(e.payload["result"]["error"], "worker restarted while the action was running");
    ids.insert(e.id);
  }
  EXPECT_EQ(ids, (std::set<int64_t>{15, 16}));
  runtime_->stop();
  EXPECT_FALSE((*store)->get(attempt_key(15, 1))->has_value());
  EXPECT_FALSE((*store)->get(attempt_key(16, 2))->has_value());
}

TEST(Invocation, TimeoutPrecedenceAndFields) {
  struct Case {
    Json exec_timeout, action_timeout;
    int64_t want_ms;
  };
  for (const Case& c : std::vector<Case>{{nullptr, nullptr, 300000},
                                         {nullptr, 20, 20000},
                                         {5, 20, 5000},
                                         {0, 7, 7000},
                                         {1.5, nullptr, 1500}}) {
    Dispatch d;
    d.id = 9;
    d.attempt = 1;
    d.execution = {{"id", 9},
                   {"action_ref", "p.act"},
                   {"timeout_seconds", c.exec_timeout},
                   {"config", {{"a", 1}}},
                   {"env_vars", {{"X", "y"}, {"N", 2}}},
                   {"rule_ref", "p.r"},
                   {"trigger_ref", "p.t"}};
    d.action = {{"ref", "p.act"},
                {"entrypoint", "true"},
                {"timeout_seconds", c.action_timeout},
                {"output_format", "json"},
                {"parameter_format", "dotenv"},
                {"max_output_bytes", 1000}};
    auto inv = build_invocation(d, "http://x");
    EXPECT_EQ(inv.timeout.count(), c.want_ms);
    EXPECT_EQ(inv.runtime_ref, "core.shell");
    EXPECT_EQ(inv.parameters, (Json{{"a", 1}}));
    EXPECT_EQ(inv.env_vars.at("N"), "2");
    EXPECT_EQ(inv.rule_ref, "p.r");
    EXPECT_EQ(inv.trigger_ref, "p.t");
    EXPECT_EQ(inv.output_format, "json");
    EXPECT_EQ(inv.parameter_format, "dotenv");
    EXPECT_EQ(inv.parameter_delivery, "stdin");
    EXPECT_EQ(inv.max_output_bytes, 1000u);
    EXPECT_EQ(inv.api_url, "http://x");
  }
  EXPECT_TRUE(is_shell_runtime("shell"));
  EXPECT_TRUE(is_shell_runtime("core.action.shell"));
  EXPECT_FALSE(is_shell_runtime("core.python"));
  EXPECT_FALSE(parse_dispatch({{"execution", {{"id", 1}}}, {"action", Json::object()}}, 0).ok());
  EXPECT_FALSE(parse_dispatch({{"attempt", 1}}, 0).ok());
}

}  // namespace
}  // namespace attune::worker
