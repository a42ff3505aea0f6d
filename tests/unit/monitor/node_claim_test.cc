// Node-id claims (issue 13): a second live process with the same node id refuses to start; a
// released or silent claim is free; a worker inactive for long is forgotten.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "processors/monitor/node_claim.h"
#include "processors/monitor/workers.h"
#include "topology/embedded_log.h"

namespace attune::monitor {
namespace {

using namespace std::chrono_literals;

Envelope claim(std::string type, unsigned node, std::string instance, int64_t ts,
               std::string host = "h", int64_t pid = 1) {
  return Envelope{std::move(type), 0, "node:" + std::to_string(node), ts, "node",
                  Json{{"node", node}, {"instance", instance}, {"host", host}, {"pid", pid}}};
}

TEST(NodeClaimHolderTest, TheLastClaimOfAnotherInstanceHoldsUntilItIsReleased) {
  std::vector<Envelope> log = {claim("node.claim", 3, "a", 10), claim("node.claim", 4, "b", 11),
                               claim("node.claim", 3, "me", 12)};
  auto h = holder_before(log, 3, "me");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->instance, "a");
  EXPECT_EQ(h->ts, 10);
  EXPECT_FALSE(holder_before(log, 5, "me").has_value());
  log.push_back(claim("node.released", 3, "a", 13));
  EXPECT_FALSE(holder_before(log, 3, "me").has_value());
  log.push_back(claim("node.released", 4, "x", 14));  // another instance's release: no effect
  EXPECT_EQ(holder_before(log, 4, "me")->instance, "b");
}

class NodeClaimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-nodeclaim-" + std::to_string(std::random_device{}()));
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
  }
  void TearDown() override {
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  NodeClaimOptions options(std::string instance, std::string host = "host-a") {
    NodeClaimOptions o;
    o.node = 7;
    o.instance = std::move(instance);
    o.host = std::move(host);
    o.roles = "executor";
    o.interval = 50ms;
    o.timeout = 400ms;
    return o;
  }
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
};

TEST_F(NodeClaimTest, ASecondLiveProcessWithTheSameNodeIdRefusesToStart) {
  NodeClaim first(*log_, options("one"));
  ASSERT_TRUE(first.start().ok());
  // Same node id on another host while the first keeps beating: refused, naming the holder.
  NodeClaim second(*log_, options("two", "host-b"));
  const auto t0 = std::chrono::steady_clock::now();
  auto st = second.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kConflict);
  EXPECT_NE(st.error().message.find("node id 7 is in use"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("host-a"), std::string::npos);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 400ms);  // it waited for the holder first
  // Another node id is free; after a clean stop, so is this one.
  NodeClaimOptions other = options("three", "host-b");
  other.node = 8;
  NodeClaim third(*log_, other);
  EXPECT_TRUE(third.start().ok());
  first.stop();
  NodeClaim fourth(*log_, options("four", "host-b"));
  EXPECT_TRUE(fourth.start().ok());
}

TEST_F(NodeClaimTest, TwoProcessesStartingAtOnceWithOneNodeIdOneStarts) {
  NodeClaim a(*log_, options("a", "host-a")), b(*log_, options("b", "host-b"));
  Status sa, sb;
  std::thread ta([&] { sa = a.start(); }), tb([&] { sb = b.start(); });
  ta.join();
  tb.join();
  EXPECT_NE(sa.ok(), sb.ok()) << (sa.ok() ? "" : sa.error().message) << " / "
                              << (sb.ok() ? "" : sb.error().message);
  const Status& refused = sa.ok() ? sb : sa;
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kConflict);
}

TEST_F(NodeClaimTest, AClaimOfAProcessGoneFromThisHostIsFreeAtOnce) {
  // A claim as a process killed with -9 leaves it: this host, a pid that no longer exists.
  const pid_t gone = [] {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, nullptr, 0);
    return p;
  }();
  Envelope e = claim("node.claim", 7, "killed", SystemClock::instance().now_ms(), "host-a", gone);
  ASSERT_TRUE(log_->produce({OutRecord{std::string(topics::kWorkers), "node:7", e.dump()}}).ok());
  NodeClaim restarted(*log_, options("restarted"));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(restarted.start().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  // On another host the same claim is only free once it is older than the timeout.
  Envelope remote = claim("node.claim", 7, "elsewhere", SystemClock::instance().now_ms(), "host-z",
                          gone);
  restarted.stop();
  ASSERT_TRUE(
      log_->produce({OutRecord{std::string(topics::kWorkers), "node:7", remote.dump()}}).ok());
  NodeClaim next(*log_, options("next"));
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(next.start().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t1, 350ms);
}

TEST_F(NodeClaimTest, WorkersInactiveForLongAreForgottenAndClaimsAreNotWorkers) {
  WorkersView view(*log_, 100ms, SystemClock::instance());
  ASSERT_TRUE(view.start().ok());
  NodeClaim claim_(*log_, options("c"));
  ASSERT_TRUE(claim_.start().ok());
  Heartbeat w(*log_, HeartbeatOptions{"w1-abc", 50ms, "action", &SystemClock::instance(),
                                      Json{{"node_id", 3}}});
  ASSERT_TRUE(w.start().ok());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (view.list().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(view.list().size(), 1u);  // the node claim is not a worker
  EXPECT_EQ(view.list()[0]["meta"]["node_id"], 3);
  EXPECT_TRUE(view.forgettable(200ms).empty());
  w.stop();
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(view.forgettable(200ms), std::vector<std::string>{"w1-abc"});
  Envelope f{std::string(kForgotten), worker_id("w1-abc"), "w1-abc", 0, "monitor",
             Json{{"name", "w1-abc"}}};
  ASSERT_TRUE(log_->produce({OutRecord{std::string(topics::kWorkers), "w1-abc", f.dump()}}).ok());
  deadline = std::chrono::steady_clock::now() + 5s;
  while (!view.list().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(view.list().empty());
  view.stop();
}

// A worker restarted under the same name (SIGTERM, start again) reports a retry due at start as
// running before its first heartbeat reaches the view: the stop record of its previous run must
// not make the monitor abandon that attempt (a CI run saw exactly this).
TEST_F(NodeClaimTest, AWorkerRestartedUnderItsNameIsNotDeadForItsNewerReports) {
  ManualClock clock(1'000'000);
  WorkersView view(*log_, 1000ms, clock);
  ASSERT_TRUE(view.start().ok());
  Envelope stopped{std::string(kStopped), worker_id("w9"), "w9", 1'000'000, "worker",
                   Json{{"name", "w9"}}};
  ASSERT_TRUE(log_->produce({OutRecord{std::string(topics::kWorkers), "w9", stopped.dump()}}).ok());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (view.list().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(view.list().size(), 1u);
  clock.set_ms(1'000'500);
  EXPECT_TRUE(view.dead("w9"));              // no report time: the stop decides
  EXPECT_TRUE(view.dead("w9", 999'000));     // reported running before it stopped
  EXPECT_FALSE(view.dead("w9", 1'000'200));  // reported after: a new run of the worker
  clock.set_ms(1'001'300);
  EXPECT_TRUE(view.dead("w9", 1'000'200));   // and silent since for longer than the timeout
  // Unknown workers: gone once nothing was heard for the timeout, the report included.
  EXPECT_FALSE(view.dead("nobody", 1'001'000));
  EXPECT_TRUE(view.dead("nobody", 1'000'000));
  view.stop();
}

TEST(InstanceSuffixTest, EightBase36CharactersThatDiffer) {
  const std::string a = new_instance_suffix(), b = new_instance_suffix();
  EXPECT_EQ(a.size(), 8u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz"), std::string::npos);
}

}  // namespace
}  // namespace attune::monitor
