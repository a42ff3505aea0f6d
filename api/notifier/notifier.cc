// Notifier WebSocket server on websocketpp + standalone asio (API.md §17). The only translation
// unit that includes websocketpp: it does not compile as C++20, so this target is C++17.
#include "api/notifier/notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include "api/auth/jwt.h"
#include "topology/core/time.h"

namespace attune::notifier {
namespace {

constexpr std::string_view kPath = "/ws";
constexpr std::string_view kProtocol = "attune.v1";
constexpr std::string_view kJwtProtocolPrefix = "attune.jwt.";
constexpr std::array<std::string_view, 6> kEntityTypes = {
    "execution", "workflow_execution", "event", "enforcement", "inquiry", "rule"};
constexpr size_t kMaxFiltersPerConnection = 256;
constexpr long kCloseHandshakeMs = 1000;  // per connection, after we send a close frame
constexpr long kStopGraceMs = 500;        // stop(): wait this long for clients to answer close
constexpr uint16_t kCloseTokenExpired = 4401;
// A subscriber that does not read its notifications in time (RFC 6455 1008, policy violation).
constexpr uint16_t kCloseTooSlow = 1008;
// Every subscriber, when the notifier itself falls too far behind (RFC 6455 1013, try again later).
constexpr uint16_t kCloseOverloaded = 1013;
// How long a subscriber closed as too slow has to read what was queued before the close frame.
constexpr long kTooSlowCloseMs = 10000;
constexpr size_t kDrainChunk = 64;  // notifications delivered per loop turn

// One subscription (§17.3). Equality is on the parsed form, so "entity:rule:07" == "entity:rule:7".
struct Filter {
  enum class Kind { kAll, kEntityType, kEntity, kNotificationType, kTriggerRef, kUser };
  Kind kind = Kind::kAll;
  std::string value;  // entity type, channel or trigger ref
  int64_t id = 0;     // entity id or identity id

  bool operator==(const Filter& o) const {
    return kind == o.kind && value == o.value && id == o.id;
  }

  bool matches(const Notification& n) const {
    switch (kind) {
      case Kind::kAll:
        return true;
      case Kind::kEntityType:
        return n.entity_type == value;
      case Kind::kEntity:
        return n.entity_type == value && n.entity_id == id;
      case Kind::kNotificationType:
        return n.notification_type == value;
      case Kind::kTriggerRef:
        return !n.trigger_ref.empty() && n.trigger_ref == value;
      case Kind::kUser:
        return n.user_id.has_value() && *n.user_id == id;
    }
    return false;
  }
};

bool is_entity_type(std::string_view t) {
  return std::find(kEntityTypes.begin(), kEntityTypes.end(), t) != kEntityTypes.end();
}

std::optional<int64_t> parse_id(std::string_view s) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || ptr != end || v <= 0) return std::nullopt;
  return v;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Parses a filter string; the error is the full client-facing message of §17.2.
Result<Filter> parse_filter(std::string_view text) {
  auto invalid = [&](const std::string& reason) {
    return make_error(Errc::kBadRequest, "Invalid filter '" + std::string(text) + "': " + reason);
  };
  Filter f;
  if (text == "all") return f;
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return invalid(
        "expected all, entity_type:<type>, entity:<type>:<id>, notification_type:<channel>, "
        "trigger_ref:<ref> or user:<id>");
  }
  const std::string_view kind = text.substr(0, colon);
  const std::string_view rest = text.substr(colon + 1);
  if (kind == "entity_type") {
    if (!is_entity_type(rest)) return invalid("unknown entity type '" + std::string(rest) + "'");
    f.kind = Filter::Kind::kEntityType;
    f.value = std::string(rest);
    return f;
  }
  if (kind == "entity") {
    const size_t sep = rest.find(':');
    if (sep == std::string_view::npos) return invalid("expected entity:<type>:<id>");
    const std::string_view type = rest.substr(0, sep);
    const std::string_view id = rest.substr(sep + 1);
    if (!is_entity_type(type)) return invalid("unknown entity type '" + std::string(type) + "'");
    auto parsed = parse_id(id);
    if (!parsed) return invalid("invalid id '" + std::string(id) + "'");
    f.kind = Filter::Kind::kEntity;
    f.value = std::string(type);
    f.id = *parsed;
    return f;
  }
  if (kind == "notification_type") {
    if (rest.empty()) return invalid("empty notification type");
    f.kind = Filter::Kind::kNotificationType;
    f.value = std::string(rest);
    return f;
  }
  if (kind == "trigger_ref") {
    if (rest.empty()) return invalid("empty trigger ref");
    f.kind = Filter::Kind::kTriggerRef;
    f.value = std::string(rest);
    return f;
  }
  if (kind == "user") {
    auto parsed = parse_id(rest);
    if (!parsed) return invalid("invalid identity id '" + std::string(rest) + "'");
    f.kind = Filter::Kind::kUser;
    f.id = *parsed;
    return f;
  }
  return invalid("unknown filter kind '" + std::string(kind) + "'");
}

// nlohmann throws on invalid UTF-8 when dumping; caller-supplied strings are replaced instead.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string error_frame(const std::string& message) {
  return dump(Json{{"type", "error"}, {"message", message}});
}

// Per-connection state. websocketpp mixes `connection_base` into its connection object, so this
// lives exactly as long as the connection. Touched only on the loop thread.
struct ClientState {
  int64_t identity_id = 0;
  int64_t exp = 0;           // epoch seconds, 0 = never
  int64_t execution_id = 0;  // an execution token's execution: the only entity delivered
  std::string token;         // an execution token, kept from upgrade to open for its re-check
  std::string client_id;
  std::vector<Filter> filters;
  std::shared_ptr<asio::steady_timer> expiry_timer;
};

// A deliberately unusual member name: websocketpp code inside `connection` looks up names such as
// `session` and `client` that a plainer member would shadow.
struct ConnectionBase {
  ClientState attune_client;
};

struct Config : websocketpp::config::asio {
  typedef Config type;
  typedef websocketpp::config::asio base;
  typedef ConnectionBase connection_base;
};

using Server = websocketpp::server<Config>;
using ConnectionPtr = Server::connection_ptr;
using Hdl = websocketpp::connection_hdl;

std::string http_error_body(Errc code, const std::string& message) {
  return dump(Json{{"error", message}, {"code", errc_name(code)}});
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A published notification waiting for the loop thread; its frame is built there, once, and only
// if some connection wants it.
struct Pending {
  Notification n;
  std::string timestamp;  // publish time per the injected Clock
  // Non-zero: not a frame but expire_execution(id), closing the connections scoped to it.
  int64_t expire_execution = 0;
};

// Whether a connection scoped to execution `id` may receive `n`: only frames about that
// execution itself (API.md §16.2: an execution token reads its own execution and nothing else).
bool about_execution(const Notification& n, int64_t id) {
  return n.entity_id == id &&
         (n.entity_type == "execution" || n.entity_type == "workflow_execution");
}

}  // namespace

struct Notifier::Impl {
  Impl(NotifierOptions o, Authenticator a, Visibility v, const Clock& c)
      : options(std::move(o)), authenticate(std::move(a)), visible(std::move(v)), clock(c) {}

  const NotifierOptions options;
  const Authenticator authenticate;
  const Visibility visible;
  const Clock& clock;

  // Owned by the controlling thread (start/stop); the loop thread uses *server while it runs.
  std::unique_ptr<Server> server;
  std::thread loop;

  std::atomic<uint16_t> bound_port{0};
  std::atomic<size_t> open_count{0};

  std::mutex callback_mu;
  std::function<void(size_t)> on_count;  // guarded by callback_mu

  // Publish queue: producers append under queue_mu; one drain task at a time is posted.
  std::mutex queue_mu;
  std::deque<Pending> queue;  // guarded by queue_mu
  bool accepting = false;     // guarded by queue_mu; true while the loop runs
  bool drain_posted = false;  // guarded by queue_mu

  // Loop-thread only.
  std::unordered_map<const void*, ConnectionPtr> open;
  uint64_t next_client = 0;
  bool stopping = false;

  void notify_count() {
    std::function<void(size_t)> cb;
    {
      std::lock_guard<std::mutex> lock(callback_mu);
      cb = on_count;
    }
    if (cb) cb(open_count.load());
  }

  // Queues `msg` on `con` unless its backlog is already over the bound, in which case the
  // connection is closed as too slow (a slow consumer must not grow memory or delay anyone else).
  // One prepared message may be queued on many connections (server frames are unmasked).
  void send(const ConnectionPtr& con, const Server::message_ptr& msg) {
    const size_t backlog = con->get_buffered_amount();
    if (backlog + msg->get_payload().size() > options.max_queued_bytes) {
      drop_too_slow(con, backlog);
      return;
    }
    if (const websocketpp::lib::error_code ec = con->send(msg)) {
      spdlog::debug("notifier: send to {} failed: {}", con->attune_client.client_id, ec.message());
    }
  }

  void send(const ConnectionPtr& con, const std::string& text) {
    send(con, make_message(con, text));
  }

  static Server::message_ptr make_message(const ConnectionPtr& con, const std::string& text) {
    Server::message_ptr msg = con->get_message(websocketpp::frame::opcode::text, text.size());
    msg->set_payload(text);
    return msg;
  }

  bool on_validate(Hdl hdl) {
    ConnectionPtr con = server->get_con_from_hdl(hdl);
    auto reject = [&](websocketpp::http::status_code::value status, Errc code,
                      const std::string& message) {
      con->set_status(status);
      con->replace_header("Content-Type", "application/json");
      con->set_body(http_error_body(code, message));
      return false;
    };
    std::string_view resource = con->get_resource();
    resource = resource.substr(0, resource.find('?'));  // query-string tokens are ignored
    if (resource != kPath) {
      return reject(websocketpp::http::status_code::not_found, Errc::kNotFound, "Not found");
    }

    std::string token;
    const std::string_view authorization = trim(con->get_request_header("Authorization"));
    if (iequals_prefix(authorization, "Bearer ")) {
      token = std::string(trim(authorization.substr(7)));
    }
    bool offers_v1 = false;
    for (const std::string& p : con->get_requested_subprotocols()) {
      if (p == kProtocol) offers_v1 = true;
      if (token.empty() && starts_with(p, kJwtProtocolPrefix)) {
        token = p.substr(kJwtProtocolPrefix.size());
      }
    }
    if (token.empty()) {
      return reject(websocketpp::http::status_code::unauthorized, Errc::kUnauthorized,
                    "Missing token");
    }
    Result<TokenIdentity> who = authenticate(token);
    if (!who.ok()) {
      return reject(websocketpp::http::status_code::unauthorized, Errc::kUnauthorized,
                    "Invalid token: " + who.error().message);
    }
    if (offers_v1) {
      websocketpp::lib::error_code ec;
      con->select_subprotocol(std::string(kProtocol), ec);
    }
    con->attune_client.identity_id = who->identity_id;
    con->attune_client.exp = who->exp;
    con->attune_client.execution_id = who->execution_id;
    if (who->execution_id != 0) con->attune_client.token = std::move(token);
    return true;
  }

  void on_open(Hdl hdl) {
    ConnectionPtr con = server->get_con_from_hdl(hdl);
    ClientState& c = con->attune_client;
    c.client_id = "client_" + std::to_string(++next_client);
    open.emplace(con.get(), con);
    open_count.store(open.size());
    notify_count();
    send(con, dump(Json{{"type", "welcome"},
                        {"client_id", c.client_id},
                        {"message", "Connected to Attune Notifier"}}));
    if (c.exp > 0) {
      const int64_t remaining_ms = c.exp * 1000 - clock.now_ms();
      if (remaining_ms <= 0) {
        close_expired(con);
        return;
      }
      c.expiry_timer = server->set_timer(
          static_cast<long>(remaining_ms), [this, hdl](const websocketpp::lib::error_code& ec) {
            if (ec) return;  // cancelled: closed or stopping
            websocketpp::lib::error_code lookup;
            ConnectionPtr con = server->get_con_from_hdl(hdl, lookup);
            if (!lookup) close_expired(con);
          });
    }
    if (c.execution_id != 0) {
      // The execution may have finished between the upgrade and now, with its expire_execution
      // drained before this connection was open: check again now that it is.
      const bool still_valid = authenticate(c.token).ok();
      c.token.clear();
      if (!still_valid) close_expired(con);
    }
  }

  // Closes a subscriber whose unsent frames exceed the bound: no frame is queued for it any more
  // and it stops counting as open at once; the close frame (1008, with the reason) follows the
  // frames already queued, so a client that reads them all learns why it was disconnected. One
  // that does not read within kTooSlowCloseMs is cut off.
  void drop_too_slow(const ConnectionPtr& con, size_t backlog) {
    ClientState& c = con->attune_client;
    spdlog::warn(
        "notifier: closing {} (identity {}) as too slow: {} bytes unsent exceed the {} "
        "byte bound",
        c.client_id, c.identity_id, backlog, options.max_queued_bytes);
    if (c.expiry_timer) c.expiry_timer->cancel();
    websocketpp::lib::error_code ec;
    con->set_close_handshake_timeout(kTooSlowCloseMs);
    con->close(kCloseTooSlow,
               "subscriber too slow: more than " + std::to_string(options.max_queued_bytes) +
                   " bytes of notifications unread",
               ec);
    if (ec) con->terminate(ec);
    if (open.erase(con.get()) == 0) return;
    open_count.store(open.size());
    notify_count();
  }

  // Loop thread: the publish queue overflowed and was dropped (enqueue). Every subscriber has
  // missed notifications, so each is closed with the reason; their clients reconnect and re-read.
  void close_all_overloaded(size_t dropped) {
    spdlog::warn(
        "notifier: {} undelivered notifications dropped (more than {} pending); closing "
        "{} connections with 1013",
        dropped, options.max_pending, open.size());
    std::vector<ConnectionPtr> all;
    for (const auto& [key, con] : open) all.push_back(con);
    for (const ConnectionPtr& con : all) {
      if (con->attune_client.expiry_timer) con->attune_client.expiry_timer->cancel();
      websocketpp::lib::error_code ec;
      con->close(kCloseOverloaded, "notifier overloaded: notifications were dropped; reconnect",
                 ec);
      open.erase(con.get());
    }
    open_count.store(open.size());
    notify_count();
  }

  void close_expired(const ConnectionPtr& con) {
    if (con->get_state() != websocketpp::session::state::open) return;
    websocketpp::lib::error_code ec;
    con->close(kCloseTokenExpired, "token expired", ec);
  }

  void on_close(Hdl hdl) {
    websocketpp::lib::error_code ec;
    ConnectionPtr con = server->get_con_from_hdl(hdl, ec);
    if (ec) return;
    if (con->attune_client.expiry_timer) con->attune_client.expiry_timer->cancel();
    if (open.erase(con.get()) == 0) return;
    open_count.store(open.size());
    notify_count();
    if (stopping && open.empty()) server->stop();  // nothing left to wait for
  }

  void on_message(Hdl hdl, Server::message_ptr msg) {
    websocketpp::lib::error_code lookup;
    ConnectionPtr con = server->get_con_from_hdl(hdl, lookup);
    if (lookup) return;
    if (msg->get_opcode() != websocketpp::frame::opcode::text) {
      send(con, error_frame("Invalid message: expected a text frame"));
      return;
    }
    Json j;
    try {
      j = Json::parse(msg->get_payload());
    } catch (const Json::parse_error& e) {
      std::string detail = e.what();
      if (const size_t p = detail.find("] "); detail.front() == '[' && p != std::string::npos) {
        detail = detail.substr(p + 2);  // drop nlohmann's "[json.exception.parse_error.101] "
      }
      send(con, error_frame("Invalid message: " + detail));
      return;
    }
    if (!j.is_object()) {
      send(con, error_frame("Invalid message: expected a JSON object"));
      return;
    }
    auto type = j.find("type");
    if (type == j.end() || !type->is_string()) {
      send(con, error_frame("Invalid message: missing string field 'type'"));
      return;
    }
    const std::string& t = type->get_ref<const std::string&>();
    if (t == "ping") return;
    if (t != "subscribe" && t != "unsubscribe") {
      send(con, error_frame("Unknown message type '" + t + "'"));
      return;
    }
    auto filter_field = j.find("filter");
    if (filter_field == j.end() || !filter_field->is_string()) {
      send(con, error_frame("Invalid message: missing string field 'filter'"));
      return;
    }
    const std::string& text = filter_field->get_ref<const std::string&>();
    Result<Filter> filter = parse_filter(text);
    if (!filter.ok()) {
      send(con, error_frame(filter.error().message));
      return;
    }
    ClientState& c = con->attune_client;
    auto existing = std::find(c.filters.begin(), c.filters.end(), *filter);
    if (t == "unsubscribe") {
      if (existing != c.filters.end()) c.filters.erase(existing);
      return;
    }
    if (filter->kind == Filter::Kind::kUser && filter->id != c.identity_id) {
      send(con, error_frame("Unauthorized to subscribe to requested filter"));
      return;
    }
    if (existing != c.filters.end()) return;
    if (c.filters.size() >= kMaxFiltersPerConnection) {
      send(con, error_frame("Invalid filter '" + text + "': too many subscriptions (max " +
                            std::to_string(kMaxFiltersPerConnection) + ")"));
      return;
    }
    c.filters.push_back(std::move(*filter));
  }

  void on_http(Hdl hdl) {
    ConnectionPtr con = server->get_con_from_hdl(hdl);
    std::string_view resource = con->get_resource();
    resource = resource.substr(0, resource.find('?'));
    con->replace_header("Content-Type", "application/json");
    if (resource == "/health" && con->get_request().get_method() == "GET") {
      con->set_status(websocketpp::http::status_code::ok);
      con->set_body(R"({"status":"ok"})");
      return;
    }
    con->set_status(websocketpp::http::status_code::not_found);
    con->set_body(http_error_body(Errc::kNotFound, "Not found"));
  }

  // Runs on the loop thread: delivers up to kDrainChunk queued notifications in publish order,
  // then re-posts itself if more are waiting, so that socket writes, client messages and accepts
  // interleave with a long burst (and a burst alone does not push fast clients over the bound).
  void drain() {
    std::vector<Pending> batch;
    {
      std::lock_guard<std::mutex> lock(queue_mu);
      const size_t n = std::min(queue.size(), kDrainChunk);
      batch.assign(std::make_move_iterator(queue.begin()),
                   std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(n)));
      queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
      drain_posted = !queue.empty();
      if (drain_posted) asio::post(server->get_io_service(), [this] { drain(); });
    }
    std::vector<ConnectionPtr> targets;
    for (Pending& p : batch) {
      targets.clear();
      if (p.expire_execution != 0) {
        for (const auto& [key, con] : open) {
          if (con->attune_client.execution_id == p.expire_execution) targets.push_back(con);
        }
        for (const ConnectionPtr& con : targets) close_expired(con);
        continue;
      }
      for (const auto& [key, con] : open) {
        const ClientState& c = con->attune_client;
        if (c.execution_id != 0 && !about_execution(p.n, c.execution_id)) continue;
        if (p.n.user_id && *p.n.user_id != c.identity_id) continue;  // addressed to someone else
        const bool wanted = std::any_of(c.filters.begin(), c.filters.end(),
                                        [&](const Filter& f) { return f.matches(p.n); });
        if (wanted && (!visible || visible(c.identity_id, p.n))) targets.push_back(con);
      }
      if (targets.empty()) continue;
      const std::string frame = dump(Json{
          {"type", "notification"},
          {"notification_type", p.n.notification_type},
          {"entity_type", p.n.entity_type},
          {"entity_id", p.n.entity_id},
          {"user_id", p.n.user_id ? Json(*p.n.user_id) : Json(nullptr)},
          {"payload", p.n.payload.is_null() ? Json::object() : std::move(p.n.payload)},
          {"timestamp", p.timestamp},
      });
      const Server::message_ptr msg = make_message(targets.front(), frame);
      for (const ConnectionPtr& con : targets) send(con, msg);
    }
  }

  // Runs on the loop thread: begins shutdown; the loop ends when every client has closed or
  // after kStopGraceMs, whichever comes first.
  void begin_stop() {
    stopping = true;
    websocketpp::lib::error_code ec;
    server->stop_listening(ec);
    for (const auto& [key, con] : open) {
      if (con->attune_client.expiry_timer) con->attune_client.expiry_timer->cancel();
      con->close(websocketpp::close::status::going_away, "server shutdown", ec);
    }
    if (open.empty()) {
      server->stop();
      return;
    }
    server->set_timer(kStopGraceMs,
                      [this](const websocketpp::lib::error_code&) { server->stop(); });
  }
};

Notifier::Notifier(NotifierOptions options, Authenticator authenticator, Visibility visibility,
                   const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(authenticator),
                                   std::move(visibility), clock)) {}

Notifier::~Notifier() { stop(); }

Status Notifier::start() {
  Impl& im = *impl_;
  if (im.server) return make_error(Errc::kConflict, "notifier: already running");

  asio::error_code aec;
  const asio::ip::address address = asio::ip::make_address(im.options.host, aec);
  if (aec) {
    return make_error(Errc::kBadRequest,
                      "notifier: invalid host '" + im.options.host + "': " + aec.message());
  }

  auto server = std::make_unique<Server>();
  server->clear_access_channels(websocketpp::log::alevel::all);
  server->clear_error_channels(websocketpp::log::elevel::all);
  websocketpp::lib::error_code ec;
  server->init_asio(ec);
  if (ec) return make_error(Errc::kInternal, "notifier: asio init failed: " + ec.message());
  server->set_reuse_addr(true);
  server->set_max_message_size(im.options.max_message_bytes);
  server->set_close_handshake_timeout(kCloseHandshakeMs);
  // Frames are small and latency matters more than packet count: no Nagle delay.
  // (Set once the socket is accepted: the socket-init hook runs before it is open.)
  server->set_tcp_post_init_handler([&im](Hdl h) {
    websocketpp::lib::error_code lookup;
    ConnectionPtr con = im.server->get_con_from_hdl(h, lookup);
    asio::error_code ignored;
    if (!lookup) con->get_socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  });
  server->set_validate_handler([&im](Hdl h) { return im.on_validate(std::move(h)); });
  server->set_open_handler([&im](Hdl h) { im.on_open(std::move(h)); });
  server->set_close_handler([&im](Hdl h) { im.on_close(std::move(h)); });
  server->set_message_handler(
      [&im](Hdl h, Server::message_ptr m) { im.on_message(std::move(h), std::move(m)); });
  server->set_http_handler([&im](Hdl h) { im.on_http(std::move(h)); });

  const std::string where = im.options.host + ":" + std::to_string(im.options.port);
  server->listen(asio::ip::tcp::endpoint(address, im.options.port), ec);
  if (ec) {
    return make_error(Errc::kUnavailable,
                      "notifier: cannot listen on " + where + ": " + ec.message());
  }
  server->start_accept(ec);
  if (ec) {
    return make_error(Errc::kUnavailable,
                      "notifier: cannot accept on " + where + ": " + ec.message());
  }
  const uint16_t port = server->get_local_endpoint(aec).port();

  im.server = std::move(server);
  im.stopping = false;
  im.bound_port.store(port);
  {
    std::lock_guard<std::mutex> lock(im.queue_mu);
    im.accepting = true;
  }
  Server* srv = im.server.get();
  im.loop = std::thread([srv] {
    // Handlers do not throw by design; an escaped exception is logged and the loop resumes
    // rather than taking the process down.
    for (;;) {
      try {
        srv->run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("notifier: handler threw: {}", e.what());
      }
    }
  });
  spdlog::info("notifier: listening on {}:{}{}", im.options.host, port, kPath);
  return {};
}

uint16_t Notifier::port() const { return impl_->bound_port.load(); }

void Notifier::stop() {
  Impl& im = *impl_;
  if (!im.server) return;
  {
    std::lock_guard<std::mutex> lock(im.queue_mu);
    im.accepting = false;
    im.queue.clear();
  }
  asio::post(im.server->get_io_service(), [&im] { im.begin_stop(); });
  im.loop.join();
  // The loop has ended: connections that never finished closing are released here, before the
  // endpoint (and its io_service) goes away.
  const bool had_open = !im.open.empty();
  im.open.clear();
  im.server.reset();
  im.bound_port.store(0);
  im.open_count.store(0);
  if (had_open) im.notify_count();
}

namespace {

// Queues `p` for the server thread, posting one drain for however many are queued.
template <class ImplT, class PendingT>
void enqueue(ImplT& im, PendingT p) {
  std::lock_guard<std::mutex> lock(im.queue_mu);
  if (!im.accepting) return;
  if (im.queue.size() >= im.options.max_pending) {
    // Dropped whole, expiry markers included: every connection is closed below, and one that
    // opens later checks its token itself.
    const size_t dropped = im.queue.size() + 1;
    im.queue.clear();
    asio::post(im.server->get_io_service(), [&im, dropped] { im.close_all_overloaded(dropped); });
    return;
  }
  im.queue.push_back(std::move(p));
  if (!im.drain_posted) {
    im.drain_posted = true;
    asio::post(im.server->get_io_service(), [&im] { im.drain(); });
  }
}

}  // namespace

void Notifier::publish(Notification n) {
  Impl& im = *impl_;
  enqueue(im, Pending{std::move(n), format_rfc3339_ms(im.clock.now_ms())});
}

void Notifier::expire_execution(int64_t execution_id) {
  enqueue(*impl_, Pending{Notification{}, std::string(), execution_id});
}

size_t Notifier::connections() const { return impl_->open_count.load(); }

void Notifier::on_connections_changed(std::function<void(size_t)> cb) {
  std::lock_guard<std::mutex> lock(impl_->callback_mu);
  impl_->on_count = std::move(cb);
}

Authenticator make_jwt_authenticator(const auth::JwtCodec& codec, const Clock& clock,
                                     std::function<bool(int64_t identity_id)> identity_active,
                                     std::function<bool(int64_t execution_id)> execution_live) {
  return [&codec, &clock, active = std::move(identity_active),
          live = std::move(execution_live)](std::string_view token) -> Result<TokenIdentity> {
    Result<auth::Claims> claims =
        codec.verify(token, {auth::kAccessToken, auth::kExecutionToken, auth::kSensorToken},
                     clock.now_ms() / 1000);
    if (!claims.ok()) return claims.error();
    std::optional<int64_t> id = parse_id(claims->sub);
    if (!id) return make_error(Errc::kUnauthorized, "token subject is not an identity id");
    if (active && !active(*id)) {
      return make_error(Errc::kUnauthorized, "identity does not exist or is frozen");
    }
    TokenIdentity who{*id, claims->exp, 0};
    if (claims->token_type == auth::kExecutionToken) {
      const Json& meta = claims->metadata;
      const Json exec = meta.is_object() ? meta.value("execution_id", Json()) : Json();
      if (!exec.is_number_integer() || exec.get<int64_t>() <= 0) {
        return make_error(Errc::kUnauthorized, "Execution token has no execution_id");
      }
      who.execution_id = exec.get<int64_t>();
      if (!live || !live(who.execution_id)) {
        return make_error(Errc::kUnauthorized,
                          "Execution token expired: the execution is finished or unknown");
      }
    }
    return who;
  };
}

}  // namespace attune::notifier
