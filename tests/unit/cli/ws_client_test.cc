// The client's notifier WebSocket (api/cli/client/ws_client.h) against the real attune::notifier on
// an ephemeral port: upgrade auth, welcome frame, subscribe barrier, delivery and close.
#include "api/cli/client/ws_client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/cli/client/follow.h"
#include "api/notifier/notifier.h"
#include "topology/core/clock.h"

namespace attune::cli::client {
namespace {

using namespace std::chrono_literals;

class CliWsClient : public ::testing::Test {
 protected:
  void SetUp() override {
    notifier::NotifierOptions options;
    options.port = 0;
    notifier_ = std::make_unique<notifier::Notifier>(
        options,
        [](std::string_view token) -> Result<notifier::TokenIdentity> {
          if (token == "good") return notifier::TokenIdentity{1, 0, 0};
          return make_error(Errc::kUnauthorized, "bad token");
        },
        nullptr, clock_);
    ASSERT_TRUE(notifier_->start().ok());
    url_ = "ws://127.0.0.1:" + std::to_string(notifier_->port()) + "/ws";
  }

  static notifier::Notification status_change(int64_t id, const std::string& status) {
    notifier::Notification n;
    n.notification_type = "execution_status_changed";
    n.entity_type = "execution";
    n.entity_id = id;
    n.payload = nlohmann::json{{"id", id}, {"status", status}};
    return n;
  }

  SystemClock clock_;
  std::unique_ptr<notifier::Notifier> notifier_;
  std::string url_;
};

TEST_F(CliWsClient, RefusedTokenAndClosedPortAreErrors) {
  std::string error;
  EXPECT_EQ(connect_notifier(url_, "bad", 3000ms, &error), nullptr);
  EXPECT_NE(error.find("401"), std::string::npos) << error;
  error.clear();
  notifier_->stop();
  EXPECT_EQ(connect_notifier(url_, "good", 3000ms, &error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(connect_notifier("not a url", "good", 3000ms, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

TEST_F(CliWsClient, WelcomeSubscribeDeliverAndClose) {
  std::string error;
  auto conn = connect_notifier(url_, "good", 3000ms, &error);
  ASSERT_NE(conn, nullptr) << error;
  const auto welcome = conn->next(3000ms);
  ASSERT_EQ(welcome.kind, WsEvent::Kind::kMessage);
  EXPECT_EQ(nlohmann::json::parse(welcome.text)["type"], "welcome");

  ASSERT_TRUE(subscribe_synced(*conn, "entity:execution:5", 3000ms));
  notifier_->publish(status_change(6, "running"));  // not subscribed: never delivered
  notifier_->publish(status_change(5, "completed"));
  const auto ev = conn->next(3000ms);
  ASSERT_EQ(ev.kind, WsEvent::Kind::kMessage);
  const auto frame = nlohmann::json::parse(ev.text);
  EXPECT_EQ(frame["entity_id"], 5);
  EXPECT_EQ(frame["payload"]["status"], "completed");
  EXPECT_EQ(conn->next(100ms).kind, WsEvent::Kind::kTimeout);

  notifier_->stop();  // server shutdown: the client sees the close, never hangs
  const auto closed = conn->next(3000ms);
  EXPECT_EQ(closed.kind, WsEvent::Kind::kClosed);
  EXPECT_FALSE(conn->send("{}"));
}

}  // namespace
}  // namespace attune::cli::client
