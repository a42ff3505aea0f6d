// websocket_url(): the notifier URL GET /health/detailed tells clients (issue 18).
#include <gtest/gtest.h>

#include "api/service/service.h"

namespace attune::service {
namespace {

TEST(WebsocketUrlTest, ConfiguredPublicUrlWinsWhateverTheHost) {
  ServiceOptions o;
  o.public_ws_url = "wss://attune.example.com/ws";
  o.notifier_port->store(8081);
  EXPECT_EQ(websocket_url(o, std::string("10.0.0.1:8080")), "wss://attune.example.com/ws");
  EXPECT_EQ(websocket_url(o, std::nullopt), "wss://attune.example.com/ws");
}

TEST(WebsocketUrlTest, NoneBeforeTheNotifierListens) {
  ServiceOptions o;
  EXPECT_EQ(websocket_url(o, std::string("localhost:8080")), std::nullopt);
}

TEST(WebsocketUrlTest, TheHostTheClientUsedWithTheNotifierPort) {
  ServiceOptions o;
  o.notifier_port->store(40123);
  const std::vector<std::pair<std::optional<std::string>, std::string>> cases = {
      {std::string("localhost:8080"), "ws://localhost:40123/ws"},
      {std::string("attune.internal"), "ws://attune.internal:40123/ws"},
      {std::string("[::1]:8080"), "ws://[::1]:40123/ws"},
      {std::string("10.1.2.3:80"), "ws://10.1.2.3:40123/ws"},
      // Missing or odd Host headers never make a URL of their text.
      {std::nullopt, "ws://127.0.0.1:40123/ws"},
      {std::string(""), "ws://127.0.0.1:40123/ws"},
      {std::string("evil.com/path"), "ws://127.0.0.1:40123/ws"},
      {std::string("user@evil.com"), "ws://127.0.0.1:40123/ws"},
      {std::string("a b"), "ws://127.0.0.1:40123/ws"},
  };
  for (const auto& [host, want] : cases) {
    EXPECT_EQ(websocket_url(o, host), want) << host.value_or("<none>");
  }
}

}  // namespace
}  // namespace attune::service
