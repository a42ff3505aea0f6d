// Unit tests for DefinitionsTable: upserts, tombstones, id/trigger/webhook indexes, replay at
// start and following new records, wait_applied.
#include <condition_variable>
#include <mutex>

#include "tests/unit/topology/test_util.h"
#include "topology/definitions_table.h"

namespace attune {
namespace {

using testing::BothLogsFixture;
using namespace std::chrono_literals;

class DefinitionsTest : public BothLogsFixture {};
ATTUNE_BOTH_LOGS(DefinitionsTest);

TEST_P(DefinitionsTest, ReplaysThenFollows) {
  ASSERT_TRUE(log_->produce({definition_record("action", {{"id", 1}, {"ref", "p.a"}}, 0, "t")}).ok());
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  ASSERT_NE(table.get("action", "p.a"), nullptr);  // replayed before start() returned
  EXPECT_EQ((*table.resolve("action", "1"))["ref"], "p.a");
  auto pos = log_->produce({definition_record(
      "rule", {{"id", 2}, {"ref", "p.r"}, {"trigger_ref", "core.webhook"}}, 0, "t")});
  ASSERT_TRUE(table.wait_applied((*pos)[0].offset, 5s));
  ASSERT_EQ(table.rules_for_trigger("core.webhook").size(), 1u);
  pos = log_->produce({definition_tombstone("rule", "p.r", 2, 0, "t")});
  ASSERT_TRUE(table.wait_applied((*pos)[0].offset, 5s));
  EXPECT_EQ(table.get("rule", "p.r"), nullptr);
  EXPECT_EQ(table.get_by_id("rule", 2), nullptr);
  EXPECT_TRUE(table.rules_for_trigger("core.webhook").empty());
}

TEST_P(DefinitionsTest, OnTheEmbeddedLogAWriteIsAppliedBeforeItsCommitReturns) {
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  for (int i = 1; i <= 50; ++i) {
    const std::string ref = "p.a" + std::to_string(i);
    auto pos = log_->produce({definition_record("action", {{"id", i}, {"ref", ref}}, 0, "t")});
    ASSERT_TRUE(pos.ok());
    if (GetParam() == testing::LogKind::kEmbedded) {
      // Applied by the committing thread (the log's append listener): no wait needed.
      EXPECT_GT(table.applied(), (*pos)[0].offset);
      EXPECT_NE(table.get("action", ref), nullptr);
    } else {
      ASSERT_TRUE(table.wait_applied((*pos)[0].offset, 5s));  // followed on the table's thread
      EXPECT_NE(table.get("action", ref), nullptr);
    }
  }
}

TEST_P(DefinitionsTest, WhenAppliedCallsBackOnceAppliedOrTimedOutOrStopped) {
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, bool>> calls;
  auto note = [&](std::string what) {
    return [&, what](bool applied) {
      // By the time the callback runs, the record is visible.
      if (applied && what == "before") {
        EXPECT_NE(table.get("action", "p.w"), nullptr);
      }
      std::lock_guard lock(mu);
      calls.emplace_back(what, applied);
      cv.notify_all();
    };
  };
  const int64_t next = log_->end_offset({std::string(topics::kDefinitions), 0});
  table.when_applied(next, 5s, note("before"));  // registered before the record exists
  auto pos = log_->produce({definition_record("action", {{"id", 3}, {"ref", "p.w"}}, 0, "t")});
  ASSERT_TRUE(pos.ok());
  ASSERT_EQ((*pos)[0].offset, next);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return calls.size() == 1; }));
  }
  table.when_applied(next, 5s, note("after"));  // already applied: at once, on this thread
  table.when_applied(next + 100, 10ms, note("never"));  // times out within about a second
  table.when_applied(next + 200, 60s, note("stopped"));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return calls.size() == 3; }));
  }
  table.stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(calls, (std::vector<std::pair<std::string, bool>>{
                       {"before", true}, {"after", true}, {"never", false}, {"stopped", false}}));
}

TEST_P(DefinitionsTest, SharedUpsertsAreAppliedWithoutAParseAndPrefixListsAndConditionalDeletes) {
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  const Json obj = {{"id", 7}, {"ref", "system.a"}, {"rev", 1}};
  JsonPtr hinted;
  OutRecord rec = shared_definition_record("key", obj, 0, "t", &hinted);
  EXPECT_EQ(rec.value, definition_record("key", obj, 0, "t").value);  // the same bytes
  EXPECT_EQ(*hinted, obj);
  auto pos = log_->produce({rec, definition_record("key", {{"id", 8}, {"ref", "system.b"}}, 0, "t"),
                            definition_record("key", {{"id", 9}, {"ref", "pack.p.c"}}, 0, "t")});
  ASSERT_TRUE(pos.ok());
  ASSERT_TRUE(table.wait_applied(pos->back().offset, 5s));
  if (GetParam() == testing::LogKind::kEmbedded) {
    EXPECT_EQ(table.get("key", "system.a").get(), hinted.get());  // the writer's own object
  } else {
    EXPECT_EQ(*table.get("key", "system.a"), obj);  // parsed from what Kafka delivered
  }
  EXPECT_EQ(*table.get("key", "system.b"), (Json{{"id", 8}, {"ref", "system.b"}}));  // parsed
  ASSERT_EQ(table.list_prefix("key", "system.").size(), 2u);
  EXPECT_EQ(table.list_prefix("key", "pack.p.").size(), 1u);
  EXPECT_TRUE(table.list_prefix("key", "pack.q.").empty());
  // A conditional tombstone deletes only while its condition holds.
  auto conditional = [](int64_t rev) {
    OutRecord r = definition_tombstone("key", "system.a", 7, 0, "t");
    Envelope e;
    std::string err;
    EXPECT_TRUE(Envelope::parse(r.value, e, err));
    e.payload["if_match"] = {{"rev", rev}};
    r.value = e.dump();
    return r;
  };
  pos = log_->produce({conditional(0)});
  ASSERT_TRUE(table.wait_applied(pos->back().offset, 5s));
  EXPECT_NE(table.get("key", "system.a"), nullptr);
  pos = log_->produce({conditional(1)});
  ASSERT_TRUE(table.wait_applied(pos->back().offset, 5s));
  EXPECT_EQ(table.get("key", "system.a"), nullptr);
}

TEST_P(DefinitionsTest, WebhookIndexFollowsKeyChanges) {
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  Json t = {{"id", 5}, {"ref", "p.t"}, {"webhook_key", "old"}};
  auto pos = log_->produce({definition_record("trigger", t, 0, "t")});
  ASSERT_TRUE(table.wait_applied((*pos)[0].offset, 5s));
  EXPECT_NE(table.trigger_for_webhook("old"), nullptr);
  t["webhook_key"] = "new";
  pos = log_->produce({definition_record("trigger", t, 0, "t")});
  ASSERT_TRUE(table.wait_applied((*pos)[0].offset, 5s));
  EXPECT_EQ(table.trigger_for_webhook("old"), nullptr);
  EXPECT_NE(table.trigger_for_webhook("new"), nullptr);
}

TEST_P(DefinitionsTest, MalformedRecordsAreSkipped) {
  DefinitionsTable table(*log_);
  Record r{std::string(topics::kDefinitions), 0, 0, 0, "action:x", "garbage"};
  EXPECT_FALSE(table.apply(r));
  EXPECT_EQ(table.applied(), 1);
  EXPECT_EQ(table.get("action", "x"), nullptr);
}

TEST_P(DefinitionsTest, ResolveRejectsHugeIds) {
  DefinitionsTable table(*log_);
  EXPECT_EQ(table.resolve("action", "99999999999999999999999"), nullptr);
}

}  // namespace
}  // namespace attune

namespace attune {
namespace {

// Claims decide create races between API instances by the topic's order (issue 13).
class ClaimsTest : public testing::BothLogsFixture {
 protected:
  // Writes the records and returns once the table has applied them.
  void write(DefinitionsTable& table, std::vector<OutRecord> records) {
    auto pos = log_->produce(std::move(records));
    ASSERT_TRUE(pos.ok());
    ASSERT_TRUE(table.wait_applied(pos->back().offset, std::chrono::seconds(5)));
  }
};
ATTUNE_BOTH_LOGS(ClaimsTest);

TEST_P(ClaimsTest, TheFirstClaimInTheLogWinsAndOnlyItsReleaseEndsIt) {
  DefinitionsTable table(*log_);
  ASSERT_TRUE(table.start().ok());
  const int64_t t = 1'000'000;
  // Two instances claim pack "p" at once: both records land, the first one decides.
  write(table, {claim_record("pack", "p", "a/1", true, t, "api"),
                claim_record("pack", "p", "b/1", true, t + 1, "api")});
  EXPECT_EQ(table.claim_holder("pack", "p"), "a/1");
  // The loser's release changes nothing; the winner writes the pack with its release.
  write(table, {release_record("pack", "p", "b/1", t + 2, "api")});
  EXPECT_EQ(table.claim_holder("pack", "p"), "a/1");
  write(table, {definition_record("pack", {{"id", 7}, {"ref", "p"}}, t + 3, "api"),
                release_record("pack", "p", "a/1", t + 3, "api")});
  EXPECT_EQ(table.claim_holder("pack", "p"), "");
  EXPECT_NE(table.get("pack", "p"), nullptr);
  EXPECT_EQ(table.get("claim", "pack:p"), nullptr);  // claims are not definitions
  // A late create claim of an existing ref loses; a claim without `absent` (a change) wins.
  write(table, {claim_record("pack", "p", "b/2", true, t + 4, "api")});
  EXPECT_EQ(table.claim_holder("pack", "p"), "");
  write(table, {claim_record("pack", "p", "b/3", false, t + 5, "api")});
  EXPECT_EQ(table.claim_holder("pack", "p"), "b/3");
}

TEST_P(ClaimsTest, AnAbandonedClaimExpiresByTheRecordsOwnTimes) {
  {
    DefinitionsTable table(*log_);
    ASSERT_TRUE(table.start().ok());
    const int64_t t = 5'000'000;
    write(table, {claim_record("rule", "p.r", "dead/1", true, t, "api")});
    write(table, {claim_record("rule", "p.r", "live/1", true, t + kClaimTtlMs, "api")});
    EXPECT_EQ(table.claim_holder("rule", "p.r"), "dead/1");  // still within the TTL
    write(table, {claim_record("rule", "p.r", "live/2", true, t + kClaimTtlMs + 1, "api")});
    EXPECT_EQ(table.claim_holder("rule", "p.r"), "live/2");
  }
  // Every reader decides alike: a table replaying the topic reaches the same holder.
  DefinitionsTable replayed(*log_);
  ASSERT_TRUE(replayed.start().ok());
  EXPECT_EQ(replayed.claim_holder("rule", "p.r"), "live/2");
}

}  // namespace
}  // namespace attune
