// Notifier WebSocket server (API.md §17): authenticated clients subscribe to filters and receive
// notification frames that the platform publishes. websocketpp/asio stay inside notifier.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "topology/core/clock.h"
#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::auth {
class JwtCodec;
}

namespace attune::notifier {

// One notification frame (API.md §17.4).
struct Notification {
  std::string notification_type;  // channel, e.g. "execution_status_changed"
  std::string entity_type;  // execution, workflow_execution, event, enforcement, inquiry, rule
  int64_t entity_id = 0;
  Json payload;                    // already shaped per §17.4 by the caller
  std::string trigger_ref;         // matched by trigger_ref:<ref> filters; "" if none
  std::optional<int64_t> user_id;  // set: addressed to this identity only (user:<id>)
  // Who may read the row (API.md §16.3), for the Visibility check: the record's scope
  // ("p:<pack>" or "i:<identity>", projections::record_scope), or the rule's "p:<pack>".
  std::string scope;
};

struct NotifierOptions {
  std::string host = "127.0.0.1";  // numeric IPv4/IPv6 address to bind
  uint16_t port = 8081;            // 0 = ephemeral (see Notifier::port())
  // A connection whose unsent frames exceed this many bytes is dropped (slow consumer).
  size_t max_queued_bytes = size_t{8} << 20;
  // Notifications published but not yet delivered (the loop thread falls behind the platform).
  // Past this many the backlog is dropped and every connection is closed with 1013 "notifier
  // overloaded" (clients reconnect and re-read over REST) instead of memory growing without bound.
  size_t max_pending = 200'000;
  // Largest client message accepted; larger ones close the connection with 1009.
  size_t max_message_bytes = size_t{64} << 10;
};

// Who a token belongs to, as decided at upgrade.
struct TokenIdentity {
  int64_t identity_id = 0;
  int64_t exp = 0;  // token expiry, epoch seconds (JWT `exp`); 0 = never expires
  // An execution token's execution (API.md §4.2, §16.2), 0 for any other token. Such a
  // connection receives notifications about that execution only (entity `execution` or
  // `workflow_execution` with that id), whatever its filters, and is closed like an expired token
  // when the execution finishes (Notifier::expire_execution).
  int64_t execution_id = 0;
};

// Decides whether an identity may see a notification (RBAC, §16). Called on the notifier thread
// for every candidate delivery, so it must be cheap. Empty = every notification is visible.
using Visibility = std::function<bool(int64_t identity_id, const Notification&)>;

// Returns who a token belongs to, or an error (the upgrade is then answered with 401). Called on
// the notifier thread; required (non-empty).
using Authenticator = std::function<Result<TokenIdentity>(std::string_view token)>;

// An Authenticator for platform JWTs (§4.2/§4.3): access, execution and sensor tokens with a valid
// signature and unexpired `exp` (checked against `clock`), whose `sub` is an identity id that
// `identity_active` accepts (exists and is not frozen). Refresh tokens are refused. An execution
// token must name its execution in `metadata.execution_id` and is accepted only while
// `execution_live` says that execution exists and has not finished — the REST API's rule, so a
// token of a finished execution gets the same 401 on both. `codec` and `clock` must outlive the
// returned function.
Authenticator make_jwt_authenticator(const auth::JwtCodec& codec, const Clock& clock,
                                     std::function<bool(int64_t identity_id)> identity_active,
                                     std::function<bool(int64_t execution_id)> execution_live);

// Serves `ws://host:port/ws` and plain `GET /health` on one port.
//
// Threading: one internal thread runs the asio loop and owns every connection; the Authenticator,
// Visibility and on_connections_changed callbacks run on it. publish(), connections() and port()
// may be called from any thread; start()/stop() from one controlling thread.
//
// Delivery: publish() enqueues and returns; frames go out in publish order (hence in order per
// entity). A frame addressed to a user (user_id set) reaches only that identity's connections.
// A connection whose unsent backlog exceeds max_queued_bytes is closed (1008) so that it cannot
// hold up the others; past max_pending undelivered notifications all are closed (1013); frames
// published while not running are discarded.
class Notifier {
 public:
  // `clock` stamps frames and measures token lifetimes; it must outlive the Notifier.
  Notifier(NotifierOptions options, Authenticator authenticator, Visibility visibility,
           const Clock& clock);
  ~Notifier();  // stop()
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Binds and starts the loop thread. Errc::kUnavailable naming the address if it cannot listen
  // (e.g. port taken); Errc::kBadRequest for an unparseable host; kConflict if already running.
  Status start();
  // The bound port (the ephemeral one when options.port was 0); 0 when not running.
  uint16_t port() const;
  // Closes every connection (1001 "server shutdown"), waits up to 0.5 s for close handshakes,
  // stops the loop and joins it. Idempotent; start() may be called again afterwards.
  void stop();

  // Thread-safe and non-blocking: queues the frame for the loop thread. Timestamped now.
  void publish(Notification n);
  // Thread-safe and non-blocking: the execution has finished, so the tokens scoped to it have
  // expired. Queued behind the frames already published (its last status change is still
  // delivered), then every connection authenticated by such a token is closed with 4401 "token
  // expired". A connection that opens after this is refused or closed by its own check (the
  // Authenticator runs again when the connection opens).
  void expire_execution(int64_t execution_id);

  // Open WebSocket connections: counted from the open handshake (before the welcome frame) until
  // the connection closes.
  size_t connections() const;
  // `cb(count)` runs on the loop thread after every open/close, and once with 0 from stop() for
  // connections that had not finished closing. Replaces any earlier callback.
  void on_connections_changed(std::function<void(size_t)> cb);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attune::notifier
