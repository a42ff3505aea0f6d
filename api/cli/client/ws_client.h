// A blocking client for the notifier WebSocket (API.md §17). This narrow header is all the rest of
// the CLI sees: websocketpp/asio stay in ws_client.cc, which builds as C++17 (ENVIRONMENT.md
// pitfall 1).
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace attune::cli::client {

struct WsEvent {
  enum class Kind { kMessage, kTimeout, kClosed };
  Kind kind = Kind::kTimeout;
  std::string text;  // the text frame (kMessage) or the close reason (kClosed)
};

// One connection; frames are queued by a background I/O thread and handed out by next().
// Not thread-safe: one caller thread uses next()/send(). The destructor closes and joins.
class NotifierConnection {
 public:
  virtual ~NotifierConnection() = default;
  // Waits up to `timeout` for the next text frame.
  virtual WsEvent next(std::chrono::milliseconds timeout) = 0;
  // Queues a text frame; false once the connection is closed.
  virtual bool send(const std::string& text) = 0;
};

// Connects to `url` (ws://host:port/path) with `Authorization: Bearer <token>` and waits up to
// `timeout` for the upgrade. Returns nullptr and sets `*error` on failure (refused, 401, timeout).
std::unique_ptr<NotifierConnection> connect_notifier(const std::string& url,
                                                     const std::string& token,
                                                     std::chrono::milliseconds timeout,
                                                     std::string* error);

}  // namespace attune::cli::client
