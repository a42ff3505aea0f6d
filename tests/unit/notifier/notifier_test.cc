// Notifier (API.md §17) over real sockets on an ephemeral port: upgrade auth, frames, filters,
// visibility, errors, token expiry, /health, fan-out, slow consumers and shutdown.
#include "api/notifier/notifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/auth/jwt.h"
#include "tests/unit/notifier/ws_client.h"
#include "topology/core/time.h"

namespace attune::notifier {
namespace {

using testing::WsClient;
using namespace std::chrono_literals;

constexpr int64_t kStartMs = 1767225600000;  // 2026-01-01T00:00:00.000Z
constexpr int64_t kShortExpS = 1767229200;   // exp of "short-<id>" tokens
constexpr int64_t kHiddenEntity = 13;        // identity 7 may not see entity 13

// Tokens: "tok-<id>" → identity <id>, no expiry; "short-<id>" → expires at kShortExpS;
// "exec-<execution>" → identity 7 scoped to that execution (an execution token), refused once the
// execution is in `finished`. Other tokens are refused.
class TestTokens {
 public:
  Result<TokenIdentity> operator()(std::string_view token) {
    auto id_after = [&](std::string_view prefix) -> int64_t {
      return std::stoll(std::string(token.substr(prefix.size())));
    };
    if (token.substr(0, 4) == "tok-") return TokenIdentity{id_after("tok-"), 0, 0};
    if (token.substr(0, 6) == "short-") return TokenIdentity{id_after("short-"), kShortExpS, 0};
    if (token.substr(0, 5) == "exec-") {
      const int64_t execution = id_after("exec-");
      std::lock_guard<std::mutex> lock(mu_);
      ++checks_[execution];
      const auto after = finish_after_checks_.find(execution);
      if (finished_.count(execution) > 0 ||
          (after != finish_after_checks_.end() && checks_[execution] > after->second)) {
        return make_error(Errc::kUnauthorized, "execution token expired");
      }
      return TokenIdentity{7, 0, execution};
    }
    return make_error(Errc::kUnauthorized, "unknown test token");
  }
  void finish(int64_t execution) {
    std::lock_guard<std::mutex> lock(mu_);
    finished_.insert(execution);
  }
  // The execution finishes right after the `n`th check of its token (by default never).
  void finish_after(int64_t execution, int n) {
    std::lock_guard<std::mutex> lock(mu_);
    finish_after_checks_[execution] = n;
  }

 private:
  std::mutex mu_;
  std::set<int64_t> finished_;
  std::map<int64_t, int> checks_;
  std::map<int64_t, int> finish_after_checks_;
};

bool test_visibility(int64_t identity_id, const Notification& n) {
  return !(identity_id == 7 && n.entity_id == kHiddenEntity);
}

Notification execution_status(int64_t id, const std::string& status) {
  Notification n;
  n.notification_type = "execution_status_changed";
  n.entity_type = "execution";
  n.entity_id = id;
  n.payload = Json{{"id", id}, {"status", status}};
  return n;
}

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(start_with({}).ok()); }

  Status start_with(NotifierOptions options) {
    options.port = 0;
    notifier_ = std::make_unique<Notifier>(
        options, [this](std::string_view t) { return tokens_(t); }, test_visibility, clock_);
    notifier_->on_connections_changed([this](size_t n) {
      std::lock_guard<std::mutex> lock(mu_);
      counts_.push_back(n);
      cv_.notify_all();
    });
    return notifier_->start();
  }

  // Connects with `Authorization: Bearer <token>` and consumes the welcome frame.
  std::unique_ptr<WsClient> connect(const std::string& token, int rcvbuf = 0) {
    auto c = WsClient::open(notifier_->port(), rcvbuf);
    if (!c) return nullptr;
    auto r = c->upgrade({"Authorization: Bearer " + token});
    if (!r || r->status != 101) return nullptr;
    Json welcome = c->read_json();
    if (welcome.value("type", "") != "welcome") return nullptr;
    return c;
  }

  // Client messages are not acknowledged; an unknown type is, with an error, and the server handles
  // one connection's messages in order, so its error proves everything before it was applied.
  static void sync(WsClient& c) {
    ASSERT_TRUE(c.send_text(R"({"type":"sync"})"));
    Json e = c.read_json();
    ASSERT_EQ(e, (Json{{"type", "error"}, {"message", "Unknown message type 'sync'"}}));
  }

  static void subscribe(WsClient& c, const std::string& filter) {
    ASSERT_TRUE(c.send_text(Json{{"type", "subscribe"}, {"filter", filter}}.dump()));
    sync(c);
  }

  bool wait_for_count(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return !counts_.empty() && counts_.back() == n; });
  }

  ManualClock clock_{kStartMs};
  TestTokens tokens_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> counts_;  // guarded by mu_
  // Declared last: its callback touches the members above until it is destroyed.
  std::unique_ptr<Notifier> notifier_;
};

TEST_F(NotifierTest, UpgradeWithoutTokenIs401) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(Json::parse(r->body).value("code", ""), "UNAUTHORIZED");
}

TEST_F(NotifierTest, UpgradeWithBadTokenIs401) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({"Authorization: Bearer nope"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(NotifierTest, QueryStringTokenIsIgnored) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({}, "/ws?token=tok-7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(NotifierTest, OtherPathsAre404) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({"Authorization: Bearer tok-7"}, "/socket");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(NotifierTest, BearerHeaderAuthenticatesAndWelcomes) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({"Authorization: Bearer tok-7"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->headers.count("sec-websocket-protocol"), 0u);
  EXPECT_EQ(c->read_json(), (Json{{"type", "welcome"},
                                  {"client_id", "client_1"},
                                  {"message", "Connected to Attune Notifier"}}));
  ASSERT_TRUE(wait_for_count(1));
  EXPECT_EQ(notifier_->connections(), 1u);

  auto second = WsClient::open(notifier_->port());
  ASSERT_TRUE(second->upgrade({"authorization: bearer tok-8"}));
  EXPECT_EQ(second->read_json().value("client_id", ""), "client_2");
}

TEST_F(NotifierTest, SubprotocolAuthenticatesAndSelectsV1) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({"Sec-WebSocket-Protocol: attune.v1, attune.jwt.tok-7"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->headers["sec-websocket-protocol"], "attune.v1");
  EXPECT_EQ(c->read_json().value("type", ""), "welcome");

  auto bad = WsClient::open(notifier_->port());
  auto rejected = bad->upgrade({"Sec-WebSocket-Protocol: attune.v1, attune.jwt.forged"});
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 401);
}

TEST_F(NotifierTest, SubscribeThenPublishDeliversInOrder) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  subscribe(*c, "entity:execution:5");
  const std::vector<std::string> statuses = {"requested", "scheduling", "scheduled", "running",
                                             "completed"};
  for (const std::string& s : statuses) notifier_->publish(execution_status(5, s));
  for (const std::string& s : statuses) {
    Json f = c->read_json();
    EXPECT_EQ(f, (Json{{"type", "notification"},
                       {"notification_type", "execution_status_changed"},
                       {"entity_type", "execution"},
                       {"entity_id", 5},
                       {"user_id", nullptr},
                       {"payload", {{"id", 5}, {"status", s}}},
                       {"timestamp", "2026-01-01T00:00:00.000Z"}}));
  }
}

// A burst spans several loop turns (the drain is chunked); order must hold across them.
TEST_F(NotifierTest, BurstKeepsPerEntityOrder) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  subscribe(*c, "entity_type:execution");
  constexpr int kBurst = 1000;
  for (int i = 0; i < kBurst; ++i) {
    notifier_->publish(execution_status(1 + i % 3, "step-" + std::to_string(i)));
  }
  for (int i = 0; i < kBurst; ++i) {
    Json f = c->read_json();
    ASSERT_EQ(f["payload"].value("status", ""), "step-" + std::to_string(i));
    ASSERT_EQ(f.value("entity_id", 0), 1 + i % 3);
  }
}

TEST_F(NotifierTest, TimestampComesFromTheClock) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  subscribe(*c, "all");
  clock_.set_ms(kStartMs + 90'125);
  notifier_->publish(execution_status(1, "running"));
  EXPECT_EQ(c->read_json().value("timestamp", ""), format_rfc3339_ms(kStartMs + 90'125));
}

// Each filter kind: a notification it must not match is published before one it must match; the
// first frame received must be the matching one (delivery is in publish order).
TEST_F(NotifierTest, EachFilterKindSelectsItsNotifications) {
  Notification exec = execution_status(21, "running");
  Notification other_exec = execution_status(22, "running");
  Notification event;
  event.notification_type = "event_created";
  event.entity_type = "event";
  event.entity_id = 31;
  event.trigger_ref = "core.webhook";
  event.payload = Json{{"id", 31}, {"trigger_ref", "core.webhook"}};
  Notification other_event = event;
  other_event.entity_id = 32;
  other_event.trigger_ref = "core.timer";
  Notification inquiry;
  inquiry.notification_type = "inquiry_created";
  inquiry.entity_type = "inquiry";
  inquiry.entity_id = 41;
  inquiry.user_id = 7;
  Notification rule;
  rule.notification_type = "rule_lifecycle_changed";
  rule.entity_type = "rule";
  rule.entity_id = 51;

  struct Case {
    std::string filter;
    Notification skipped;
    Notification delivered;
  };
  const std::vector<Case> cases = {
      {"all", exec, exec},  // `all` delivers both; checked separately below
      {"entity_type:event", exec, event},
      {"entity_type:rule", event, rule},
      {"entity:execution:21", other_exec, exec},
      {"notification_type:inquiry_created", event, inquiry},
      {"trigger_ref:core.webhook", other_event, event},
      {"user:7", exec, inquiry},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.filter);
    auto c = connect("tok-7");
    ASSERT_TRUE(c);
    subscribe(*c, k.filter);
    notifier_->publish(k.skipped);
    notifier_->publish(k.delivered);
    Json first = c->read_json();
    if (k.filter == "all") {
      EXPECT_EQ(first.value("entity_id", 0), k.skipped.entity_id);
      first = c->read_json();
    }
    EXPECT_EQ(first.value("notification_type", ""), k.delivered.notification_type);
    EXPECT_EQ(first.value("entity_id", 0), k.delivered.entity_id);
    EXPECT_EQ(first["user_id"], k.delivered.user_id ? Json(*k.delivered.user_id) : Json());
  }
}

TEST_F(NotifierTest, FiltersAreOredAndUnsubscribeStopsDelivery) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  subscribe(*c, "entity:execution:1");
  subscribe(*c, "entity:execution:2");
  subscribe(*c, "entity_type:execution");  // overlaps: still one frame per notification
  notifier_->publish(execution_status(1, "running"));
  notifier_->publish(execution_status(2, "running"));
  EXPECT_EQ(c->read_json().value("entity_id", 0), 1);
  EXPECT_EQ(c->read_json().value("entity_id", 0), 2);

  ASSERT_TRUE(c->send_text(R"({"type":"unsubscribe","filter":"entity_type:execution"})"));
  ASSERT_TRUE(c->send_text(R"({"type":"unsubscribe","filter":"entity:execution:1"})"));
  sync(*c);
  notifier_->publish(execution_status(1, "completed"));
  notifier_->publish(execution_status(3, "completed"));
  notifier_->publish(execution_status(2, "completed"));
  Json f = c->read_json();
  EXPECT_EQ(f.value("entity_id", 0), 2);
  EXPECT_EQ(f["payload"].value("status", ""), "completed");
}

TEST_F(NotifierTest, VisibilityPredicateIsRespected) {
  auto seven = connect("tok-7");
  auto eight = connect("tok-8");
  ASSERT_TRUE(seven && eight);
  subscribe(*seven, "all");
  subscribe(*eight, "all");
  notifier_->publish(execution_status(kHiddenEntity, "running"));
  notifier_->publish(execution_status(14, "running"));
  EXPECT_EQ(seven->read_json().value("entity_id", 0), 14);
  EXPECT_EQ(eight->read_json().value("entity_id", 0), kHiddenEntity);
  EXPECT_EQ(eight->read_json().value("entity_id", 0), 14);
}

TEST_F(NotifierTest, AddressedFramesReachOnlyTheirUser) {
  auto seven = connect("tok-7");
  auto eight = connect("tok-8");
  ASSERT_TRUE(seven && eight);
  subscribe(*seven, "all");
  subscribe(*eight, "all");
  Notification for_eight = execution_status(60, "running");
  for_eight.user_id = 8;
  notifier_->publish(for_eight);
  notifier_->publish(execution_status(61, "running"));
  EXPECT_EQ(seven->read_json().value("entity_id", 0), 61);
  Json f = eight->read_json();
  EXPECT_EQ(f.value("entity_id", 0), 60);
  EXPECT_EQ(f["user_id"], 8);
}

TEST_F(NotifierTest, UserFilterForSomeoneElseIsRefused) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send_text(R"({"type":"subscribe","filter":"user:8"})"));
  EXPECT_EQ(c->read_json(), (Json{{"type", "error"},
                                  {"message", "Unauthorized to subscribe to requested filter"}}));
  subscribe(*c, "user:7");  // one's own is fine
}

TEST_F(NotifierTest, BadMessagesAnswerErrorsAndKeepTheConnection) {
  auto c = connect("tok-7");
  ASSERT_TRUE(c);
  auto error_for = [&](std::string_view msg) {
    EXPECT_TRUE(c->send_text(msg));
    Json e = c->read_json();
    EXPECT_EQ(e.value("type", ""), "error");
    return e.value("message", "");
  };
  EXPECT_EQ(error_for("{not json").rfind("Invalid message: ", 0), 0u);
  EXPECT_EQ(error_for("[1,2]"), "Invalid message: expected a JSON object");
  EXPECT_EQ(error_for(R"({"filter":"all"})"), "Invalid message: missing string field 'type'");
  EXPECT_EQ(error_for(R"({"type":"subscribe"})"), "Invalid message: missing string field 'filter'");
  EXPECT_EQ(error_for(R"({"type":"bogus"})"), "Unknown message type 'bogus'");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"entity_type:widget"})"),
            "Invalid filter 'entity_type:widget': unknown entity type 'widget'");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"entity:execution:abc"})"),
            "Invalid filter 'entity:execution:abc': invalid id 'abc'");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"user:x"})"),
            "Invalid filter 'user:x': invalid identity id 'x'");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"trigger_ref:"})"),
            "Invalid filter 'trigger_ref:': empty trigger ref");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"colour:red"})"),
            "Invalid filter 'colour:red': unknown filter kind 'colour'");
  EXPECT_EQ(error_for(R"({"type":"subscribe","filter":"everything"})")
                .rfind("Invalid filter 'everything': expected all, ", 0),
            0u);
  ASSERT_TRUE(c->send_binary("\x01\x02"));
  EXPECT_EQ(c->read_json().value("message", ""), "Invalid message: expected a text frame");

  // ping is not acknowledged; the connection still works.
  ASSERT_TRUE(c->send_text(R"({"type":"ping"})"));
  subscribe(*c, "entity_type:execution");
  notifier_->publish(execution_status(70, "running"));
  EXPECT_EQ(c->read_json().value("entity_id", 0), 70);
}

TEST_F(NotifierTest, TokenExpiryClosesWith4401) {
  clock_.set_ms(kShortExpS * 1000 - 150);  // 150 ms of token lifetime left
  auto c = connect("short-7");
  ASSERT_TRUE(c);
  auto f = c->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 4401);
  EXPECT_EQ(f->close_reason(), "token expired");
}

TEST_F(NotifierTest, UnexpiredTokenStaysOpen) {
  auto c = connect("short-7");  // an hour left on the clock
  ASSERT_TRUE(c);
  subscribe(*c, "all");
  notifier_->publish(execution_status(1, "running"));
  EXPECT_EQ(c->read_json().value("entity_id", 0), 1);
}

// An execution token (API.md §16.2) receives notifications about its own execution only — not
// other executions, not events or inquiries, not frames addressed to its identity — whatever its
// filters; an access token of the same identity with the same filters receives them all.
TEST_F(NotifierTest, ExecutionTokenReceivesOnlyItsOwnExecution) {
  auto scoped = connect("exec-100");
  auto access = connect("tok-7");
  ASSERT_TRUE(scoped && access);
  for (auto* c : {scoped.get(), access.get()}) {
    subscribe(*c, "all");
    subscribe(*c, "entity_type:execution");
    subscribe(*c, "entity:execution:200");
    subscribe(*c, "user:7");
  }
  Notification event;
  event.notification_type = "event_created";
  event.entity_type = "event";
  event.entity_id = 100;  // same number, another entity
  Notification inquiry = event;
  inquiry.notification_type = "inquiry_created";
  inquiry.entity_type = "inquiry";
  Notification workflow = execution_status(100, "running");
  workflow.notification_type = "workflow_execution_status_changed";
  workflow.entity_type = "workflow_execution";
  Notification addressed = execution_status(300, "running");
  addressed.user_id = 7;
  notifier_->publish(execution_status(200, "running"));
  notifier_->publish(event);
  notifier_->publish(execution_status(100, "running"));
  notifier_->publish(inquiry);
  notifier_->publish(addressed);
  notifier_->publish(workflow);
  notifier_->publish(execution_status(100, "completed"));  // the last frame: read up to it

  auto read_until_last = [](WsClient& c) {
    std::vector<std::string> seen;
    for (;;) {
      Json f = c.read_json();
      if (f.is_null()) return seen;  // timed out: the test fails on the comparison
      seen.push_back(f.value("entity_type", "") + ":" + std::to_string(f.value("entity_id", 0)) +
                     ":" + f["payload"].value("status", ""));
      if (seen.back() == "execution:100:completed") return seen;
    }
  };
  EXPECT_EQ(read_until_last(*scoped),
            (std::vector<std::string>{"execution:100:running", "workflow_execution:100:running",
                                      "execution:100:completed"}));
  EXPECT_EQ(
      read_until_last(*access),
      (std::vector<std::string>{"execution:200:running", "event:100:", "execution:100:running",
                                "inquiry:100:", "execution:300:running",
                                "workflow_execution:100:running", "execution:100:completed"}));
}

// When the execution finishes its token expires: frames published before are delivered, then the
// connections scoped to it (and only those) close with 4401; a new upgrade is refused with 401.
TEST_F(NotifierTest, FinishedExecutionClosesItsConnectionsAndRefusesNewOnes) {
  auto a = connect("exec-100");
  auto b = connect("exec-100");
  auto other = connect("exec-101");
  auto access = connect("tok-7");
  ASSERT_TRUE(a && b && other && access);
  for (auto* c : {a.get(), b.get(), other.get(), access.get()}) subscribe(*c, "all");
  notifier_->publish(execution_status(100, "completed"));
  tokens_.finish(100);
  notifier_->expire_execution(100);
  for (auto* c : {a.get(), b.get()}) {
    EXPECT_EQ(c->read_json().value("entity_id", 0), 100);
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->close_code(), 4401);
    EXPECT_EQ(f->close_reason(), "token expired");
  }
  EXPECT_EQ(access->read_json().value("entity_id", 0), 100);
  // The others are still served.
  notifier_->publish(execution_status(101, "running"));
  EXPECT_EQ(other->read_json().value("entity_id", 0), 101);
  EXPECT_EQ(access->read_json().value("entity_id", 0), 101);

  auto again = WsClient::open(notifier_->port());
  auto r = again->upgrade({"Authorization: Bearer exec-100"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("UNAUTHORIZED"), std::string::npos) << r->body;
}

// The execution finishes between the upgrade (token accepted) and the open, and its
// expire_execution found no connection yet: the check at open closes it with 4401.
TEST_F(NotifierTest, ExecutionFinishingDuringTheUpgradeIsCaughtAtOpen) {
  tokens_.finish_after(100, 1);  // valid at the upgrade, finished by the time it is open
  auto c = WsClient::open(notifier_->port());
  auto r = c->upgrade({"Authorization: Bearer exec-100"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 101);
  EXPECT_EQ(c->read_json().value("type", ""), "welcome");
  auto f = c->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 4401);
}

TEST_F(NotifierTest, HealthOnTheSamePort) {
  auto c = WsClient::open(notifier_->port());
  auto r = c->http_get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body), (Json{{"status", "ok"}}));

  auto other = WsClient::open(notifier_->port());
  auto missing = other->http_get("/metrics");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(NotifierTest, FiftyClientsAtOnce) {
  constexpr int kClients = 50;
  constexpr int kFrames = 10;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect("tok-" + std::to_string(100 + i)));
    ASSERT_TRUE(clients.back()) << i;
    subscribe(*clients.back(), "entity_type:execution");
  }
  ASSERT_TRUE(wait_for_count(kClients));
  EXPECT_EQ(notifier_->connections(), static_cast<size_t>(kClients));
  for (int k = 1; k <= kFrames; ++k) notifier_->publish(execution_status(k, "running"));
  for (int i = 0; i < kClients; ++i) {
    for (int k = 1; k <= kFrames; ++k) {
      ASSERT_EQ(clients[i]->read_json().value("entity_id", 0), k) << "client " << i;
    }
  }
  clients.clear();  // abrupt disconnects are noticed
  EXPECT_TRUE(wait_for_count(0));
  EXPECT_EQ(notifier_->connections(), 0u);
}

TEST_F(NotifierTest, SlowClientIsClosedWithAReasonWithoutHoldingUpOthers) {
  notifier_.reset();
  NotifierOptions options;
  options.max_queued_bytes = 256 << 10;
  ASSERT_TRUE(start_with(options).ok());
  auto slow = connect("tok-7", /*rcvbuf=*/4096);  // never reads after this
  auto fast = connect("tok-8");
  ASSERT_TRUE(slow && fast);
  subscribe(*slow, "all");
  subscribe(*fast, "all");
  ASSERT_TRUE(wait_for_count(2));

  // Paced so that the fast client's backlog stays at one frame; the slow one's grows until the
  // kernel buffers are full and then past the bound.
  const std::string filler(64 << 10, 'x');
  int sent = 0;
  while (notifier_->connections() == 2) {
    ASSERT_LT(sent, 2000) << "slow client never dropped";
    Notification n = execution_status(++sent, "running");
    n.payload["filler"] = filler;
    notifier_->publish(n);
    ASSERT_EQ(fast->read_json().value("entity_id", 0), sent);
  }
  EXPECT_TRUE(wait_for_count(1));
  notifier_->publish(execution_status(++sent, "completed"));
  EXPECT_EQ(fast->read_json().value("entity_id", 0), sent);

  // The slow client, reading at last, gets the frames queued before it was closed, in order,
  // then a close frame that says why — never the frames published after.
  std::optional<testing::Frame> f;
  int last = 0;
  for (int frames = 0; frames <= sent; ++frames) {
    f = slow->read_frame();
    ASSERT_TRUE(f) << "no close frame after " << frames << " frames";
    if (f->opcode != 1) break;
    const int id = Json::parse(f->payload).value("entity_id", 0);
    if (id == 0) continue;                                           // the welcome frame
    EXPECT_EQ(id, last + 1 == kHiddenEntity ? last + 2 : last + 1);  // identity 7 sees no 13
    last = id;
  }
  ASSERT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 1008);
  EXPECT_NE(f->close_reason().find("too slow"), std::string::npos) << f->close_reason();
  EXPECT_LT(last, sent - 1);
  EXPECT_TRUE(slow->wait_closed());
}

TEST_F(NotifierTest, APublishBacklogPastTheBoundClosesEveryoneWithAReason) {
  // The loop thread cannot keep up (here: a tiny bound and a publisher in a tight loop): the
  // backlog is dropped rather than kept, and subscribers learn that they missed notifications.
  notifier_.reset();
  NotifierOptions options;
  options.max_pending = 4;
  ASSERT_TRUE(start_with(options).ok());
  auto client = connect("tok-7");
  ASSERT_TRUE(client);
  subscribe(*client, "all");
  ASSERT_TRUE(wait_for_count(1));
  for (int i = 1; i <= 1'000'000 && notifier_->connections() == 1; ++i) {
    notifier_->publish(execution_status(i, "running"));
  }
  ASSERT_TRUE(wait_for_count(0));
  std::optional<testing::Frame> f;
  for (int frames = 0; frames < 1'000'000; ++frames) {
    f = client->read_frame();
    if (!f || f->opcode != 1) break;
  }
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 1013);
  EXPECT_NE(f->close_reason().find("overloaded"), std::string::npos) << f->close_reason();
  // The notifier goes on serving new subscribers.
  auto later = connect("tok-8");
  ASSERT_TRUE(later);
  subscribe(*later, "all");
  notifier_->publish(execution_status(42, "completed"));
  EXPECT_EQ(later->read_json().value("entity_id", 0), 42);
}

TEST_F(NotifierTest, StopWithClientsConnectedReturnsPromptly) {
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(connect("tok-7"));
  for (auto& c : clients) ASSERT_TRUE(c);
  ASSERT_TRUE(wait_for_count(5));

  const auto t0 = std::chrono::steady_clock::now();
  notifier_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(notifier_->connections(), 0u);
  EXPECT_EQ(notifier_->port(), 0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(counts_.back(), 0u);
  }
  auto f = clients[0]->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 1001);
  for (auto& c : clients) EXPECT_TRUE(c->wait_closed());
  notifier_->publish(execution_status(1, "running"));  // dropped, not crashing

  ASSERT_TRUE(notifier_->start().ok());  // restartable
  auto again = connect("tok-7");
  EXPECT_TRUE(again);
}

TEST_F(NotifierTest, PortInUseIsAClearError) {
  NotifierOptions options;
  options.port = notifier_->port();
  Notifier second(
      options, [this](std::string_view t) { return tokens_(t); }, test_visibility, clock_);
  Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kUnavailable);
  EXPECT_NE(s.error().message.find("127.0.0.1:" + std::to_string(options.port)), std::string::npos);
  EXPECT_NE(s.error().message.find("in use"), std::string::npos) << s.error().message;
  EXPECT_EQ(notifier_->start().error().code, Errc::kConflict);
}

TEST_F(NotifierTest, BadHostIsRejected) {
  NotifierOptions options;
  options.host = "not-an-address";
  Notifier other(
      options, [this](std::string_view t) { return tokens_(t); }, test_visibility, clock_);
  EXPECT_EQ(other.start().error().code, Errc::kBadRequest);
}

// make_jwt_authenticator with real HS256 tokens (§4.2): access/execution/sensor accepted;
// refresh, expired, forged, non-numeric subjects and inactive identities refused; an execution
// token only with its execution_id and while that execution is live (not finished, not unknown).
TEST(JwtAuthenticatorTest, AcceptsPlatformTokensOnly) {
  ManualClock clock(kStartMs);
  const auth::JwtCodec codec("a-shared-secret-of-reasonable-length");
  constexpr int64_t kRunning = 500, kFinished = 501;
  Authenticator authenticate = make_jwt_authenticator(
      codec, clock, [](int64_t id) { return id != 99; },
      [](int64_t execution) { return execution == kRunning; });
  auto token = [&](std::string type, std::string sub, int64_t exp, Json metadata = nullptr) {
    auth::Claims c;
    c.sub = std::move(sub);
    c.login = "alice";
    c.token_type = std::move(type);
    c.iat = kStartMs / 1000;
    c.exp = exp;
    c.metadata = std::move(metadata);
    return codec.sign(c);
  };
  const int64_t later = kStartMs / 1000 + 3600;
  for (const char* type : {"access", "sensor"}) {
    Result<TokenIdentity> r = authenticate(token(type, "42", later));
    ASSERT_TRUE(r.ok()) << type;
    EXPECT_EQ(r->identity_id, 42);
    EXPECT_EQ(r->exp, later);
    EXPECT_EQ(r->execution_id, 0);
  }
  Result<TokenIdentity> exec =
      authenticate(token("execution", "42", later, {{"execution_id", kRunning}}));
  ASSERT_TRUE(exec.ok()) << exec.error().message;
  EXPECT_EQ(exec->identity_id, 42);
  EXPECT_EQ(exec->execution_id, kRunning);
  for (const Json& meta : {Json{{"execution_id", kFinished}}, Json{{"execution_id", "500"}},
                           Json::object(), Json(nullptr)}) {
    Result<TokenIdentity> r = authenticate(token("execution", "42", later, meta));
    ASSERT_FALSE(r.ok()) << meta;
    EXPECT_EQ(r.error().code, Errc::kUnauthorized);
  }
  EXPECT_FALSE(authenticate(token("refresh", "42", later)).ok());
  EXPECT_FALSE(authenticate(token("refresh", "42", later, {{"execution_id", kRunning}})).ok());
  EXPECT_FALSE(authenticate(token("access", "42", kStartMs / 1000)).ok());  // expired now
  EXPECT_FALSE(authenticate(token("access", "alice", later)).ok());
  EXPECT_FALSE(authenticate(token("access", "99", later)).ok());
  const auth::JwtCodec other("another-secret-of-reasonable-length");
  auth::Claims c;
  c.sub = "42";
  c.token_type = "access";
  c.exp = later;
  EXPECT_FALSE(authenticate(other.sign(c)).ok());
}

// End to end with JWTs: an access token through the subprotocol; a refresh token gets 401.
TEST(JwtAuthenticatorTest, NotifierUpgradeWithJwt) {
  ManualClock clock(kStartMs);
  const auth::JwtCodec codec("a-shared-secret-of-reasonable-length");
  NotifierOptions options;
  options.port = 0;
  Notifier notifier(options, make_jwt_authenticator(codec, clock, nullptr, nullptr), nullptr,
                    clock);
  ASSERT_TRUE(notifier.start().ok());
  auth::Claims c;
  c.sub = "5";
  c.token_type = "access";
  c.exp = kStartMs / 1000 + 3600;
  auto ok = WsClient::open(notifier.port());
  auto r = ok->upgrade({"Sec-WebSocket-Protocol: attune.v1, attune.jwt." + codec.sign(c)});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->headers["sec-websocket-protocol"], "attune.v1");

  c.token_type = "refresh";
  auto refused = WsClient::open(notifier.port());
  auto r2 = refused->upgrade({"Authorization: Bearer " + codec.sign(c)});
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 401);
}

}  // namespace
}  // namespace attune::notifier
