// Pistache adapter: converts Pistache requests to HttpRequest, runs the Router, writes the
// HttpResponse back. The only translation unit in the project that includes Pistache.
#include "api/rest/server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/http_header.h>
#include <pistache/net.h>
#include <pistache/peer.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <exception>
#include <mutex>
#include <shared_mutex>
#include <sstream>

namespace attune::rest {
namespace {

using namespace Pistache;  // NOLINT(google-build-using-namespace): confined to this file

// Extra room over max_body_bytes, so that bodies up to 16 MiB over the limit still reach us and
// get the JSON 400 of API.md §3 rather than Pistache's plain-text 413 (only far larger requests
// are cut off by Pistache itself).
constexpr size_t kHeadRoomBytes = 16 * 1024 * 1024;

// A response header with a name chosen at run time. Pistache 0.0.5 silently drops
// headers().addRaw() on responses, but serialises any Header subclass by name() + write().
class RawHeader final : public Http::Header::Header {
 public:
  RawHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_;
  std::string value_;
};

bool header_safe(std::string_view text) {
  return text.find_first_of("\r\n") == std::string_view::npos;
}

// Collects request headers in a uniform (name, value) form: Pistache parses the headers it knows
// into typed objects (re-serialised with write()) and keeps the rest raw.
std::vector<std::pair<std::string, std::string>> collect_headers(const Http::Request& request) {
  std::vector<std::pair<std::string, std::string>> out;
  // One stream per thread: constructing an ostringstream per header costs more than parsing it.
  thread_local std::ostringstream value;
  for (const auto& typed : request.headers().list()) {
    value.str(std::string());
    value.clear();
    typed->write(value);
    out.emplace_back(typed->name(), value.str());
  }
  for (const auto& [name, raw] : request.headers().rawList()) {
    out.emplace_back(raw.name(), raw.value());
  }
  return out;
}

// Builds an HttpRequest; an Error (400) for undecodable paths or query strings.
Result<HttpRequest> convert(const Http::Request& request) {
  HttpRequest req;
  req.method = Http::methodString(request.method());
  auto path = percent_decode(request.resource(), /*plus_as_space=*/false);
  if (!path) return make_error(Errc::kBadRequest, "Malformed percent-encoding in request path");
  req.path = std::move(*path);
  // Pistache splits the query but neither decodes it nor keeps repeated keys (first one wins).
  const Http::Uri::Query& query = request.query();
  for (auto it = query.parameters_begin(); it != query.parameters_end(); ++it) {
    auto key = percent_decode(it->first, true);
    if (!key) {
      return make_error(Errc::kBadRequest,
                        "Malformed percent-encoding in query parameter name '" + it->first + "'");
    }
    auto value = percent_decode(it->second, true);
    if (!value) {
      return make_error(Errc::kBadRequest,
                        "Malformed percent-encoding in query parameter '" + *key + "'");
    }
    req.query.emplace(std::move(*key), std::move(*value));
  }
  req.headers = collect_headers(request);
  req.body = request.body();
  req.remote_ip = request.address().host();
  return req;
}

// Closed by HttpServer::stop() before the endpoint goes away: a deferred response completed
// after that is dropped instead of touching a dead transport.
struct Gate {
  std::shared_mutex mu;
  bool open = true;
};

class RequestHandler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(RequestHandler)

  RequestHandler(const Router& router, const ServerOptions& options, std::shared_ptr<Gate> gate)
      : router_(&router),
        max_body_bytes_(options.max_body_bytes),
        large_body_paths_(options.large_body_paths),
        observer_(options.on_response),
        before_(options.before),
        decorate_(options.decorate),
        gate_(std::move(gate)) {}

  void onRequest(const Http::Request& request, Http::ResponseWriter writer) override {
    HttpResponse response;
    try {
      response = handle(request);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {} {} failed: {}", Http::methodString(request.method()),
                    request.resource(), e.what());
      response = HttpResponse::error(500, "INTERNAL_ERROR", "Internal server error");
    }
    // HTTP/1.1 semantics: persistent unless the client says close (Pistache closes unless the
    // request asked for keep-alive explicitly).
    const auto connection = request.headers().tryGet<Http::Header::Connection>();
    const bool keep_alive = connection
                                ? connection->control() == Http::ConnectionControl::KeepAlive
                                : request.version() == Http::Version::Http11;
    const char* method = Http::methodString(request.method());
    if (response.deferred) {
      // Answered later from another thread: the request thread moves on to other connections.
      auto held = std::make_shared<Http::ResponseWriter>(std::move(writer));
      auto deferred = std::move(response.deferred);
      deferred->on_complete([observer = observer_, decorate = decorate_, gate = gate_, held,
                             keep_alive, method](HttpResponse r) {
        std::shared_lock lock(gate->mu);
        if (!gate->open) return;
        if (decorate) decorate(r);
        if (observer) observer(method, r.status);
        try {
          send(keep_alive, std::move(*held), r);
        } catch (const std::exception& e) {
          spdlog::debug("HTTP deferred response not sent: {}", e.what());
        }
      });
      return;
    }
    if (decorate_) decorate_(response);
    if (observer_) observer_(method, response.status);
    send(keep_alive, std::move(writer), response);
  }

 private:
  HttpResponse handle(const Http::Request& request) const {
    if (auto large = large_body_paths_.find(request.resource()); large != large_body_paths_.end()) {
      if (request.body().size() > large->second) {
        return HttpResponse::error(413, "PAYLOAD_TOO_LARGE",
                                   "Payload too large: " + std::to_string(request.body().size()) +
                                       " bytes exceeds limit " + std::to_string(large->second));
      }
    } else if (request.body().size() > max_body_bytes_) {
      return HttpResponse::error(400, "BAD_REQUEST",
                                 "Payload too large: " + std::to_string(request.body().size()) +
                                     " bytes exceeds limit " + std::to_string(max_body_bytes_));
    }
    auto req = convert(request);
    if (!req.ok()) return HttpResponse::error(req.error());
    if (before_) {
      if (auto answered = before_(*req)) return std::move(*answered);
    }
    return router_->dispatch(*req);
  }

  static void send(bool keep_alive, Http::ResponseWriter writer, const HttpResponse& response) {
    auto& headers = writer.headers();
    headers.remove<Http::Header::Connection>();
    headers.add<Http::Header::Connection>(keep_alive ? Http::ConnectionControl::KeepAlive
                                                     : Http::ConnectionControl::Close);
    headers.add(std::make_shared<RawHeader>("Content-Type", response.content_type));
    for (const auto& [name, value] : response.headers) {
      if (!header_safe(name) || !header_safe(value) || name.empty()) {
        spdlog::warn("dropping response header with CR/LF or empty name: {}", name);
        continue;
      }
      headers.add(std::make_shared<RawHeader>(name, value));
    }
    const std::shared_ptr<Tcp::Peer> peer = keep_alive ? nullptr : writer.peer();
    auto sent = writer.send(static_cast<Http::Code>(response.status), response.body);
    if (peer) {
      // Pistache 0.0.5 announces "Connection: Close" but keeps the socket open. Once the response
      // is fully written, shut the socket down; the reactor then sees EOF and closes it itself.
      sent.then([peer](ssize_t) { ::shutdown(peer->fd(), SHUT_RDWR); }, Async::IgnoreException);
    }
  }

  const Router* router_;
  size_t max_body_bytes_;
  std::map<std::string, size_t> large_body_paths_;
  ResponseObserver observer_;
  std::function<std::optional<HttpResponse>(const HttpRequest&)> before_;
  std::function<void(HttpResponse&)> decorate_;
  std::shared_ptr<Gate> gate_;
};

}  // namespace

class HttpServer::Impl {
 public:
  size_t largest_body() const {
    size_t largest = opts_.max_body_bytes;
    for (const auto& [path, limit] : opts_.large_body_paths) largest = std::max(largest, limit);
    return largest;
  }

  Impl(const Router& router, ServerOptions opts) : router_(router), opts_(std::move(opts)) {}
  ~Impl() { stop(); }

  Status start() {
    if (endpoint_) return make_error(Errc::kConflict, "HTTP server already started");
    gate_ = std::make_shared<Gate>();
    const std::string where = opts_.host + ":" + std::to_string(opts_.port);
    try {
      auto endpoint = std::make_unique<Http::Endpoint>(Address(opts_.host, Port(opts_.port)));
      auto options = Http::Endpoint::options()
                         .threads(static_cast<int>(std::max<size_t>(opts_.threads, 1)))
                         .flags(Tcp::Options::ReuseAddr)
                         .maxRequestSize(largest_body() + kHeadRoomBytes);
      endpoint->init(options);
      endpoint->setHandler(Http::make_handler<RequestHandler>(router_, opts_, gate_));
      endpoint->serveThreaded();
      port_ = static_cast<uint16_t>(endpoint->getPort());
      endpoint_ = std::move(endpoint);
    } catch (const std::exception& e) {
      return make_error(Errc::kUnavailable, "cannot listen on " + where + ": " + e.what());
    }
    spdlog::info("HTTP server listening on {}:{}", opts_.host, port_);
    return {};
  }

  uint16_t port() const { return port_; }

  void stop() {
    if (!endpoint_) return;
    {
      std::unique_lock lock(gate_->mu);
      gate_->open = false;
    }
    endpoint_->shutdown();
    endpoint_.reset();
    port_ = 0;
  }

 private:
  const Router& router_;
  const ServerOptions opts_;
  std::unique_ptr<Http::Endpoint> endpoint_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  uint16_t port_ = 0;
};

HttpServer::HttpServer(const Router& router, ServerOptions opts)
    : impl_(std::make_unique<Impl>(router, std::move(opts))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::start() { return impl_->start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace attune::rest
