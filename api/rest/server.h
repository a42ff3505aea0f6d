// HttpServer: serves a Router over HTTP/1.1 (Pistache underneath; its headers stay in server.cc).
#pragma once

#include <functional>
#include <map>
#include <string_view>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/rest/router.h"
#include "topology/core/result.h"

namespace attune::rest {

// Called for every response (any thread) with the request method and the status: metrics.
using ResponseObserver = std::function<void(std::string_view method, int status)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 = ephemeral; see HttpServer::port()
  size_t threads = 2;    // request-handling threads
  size_t max_body_bytes = 1 << 20;  // larger bodies ⇒ 400 BAD_REQUEST "Payload too large: ..."
  // Paths (exact) with their own body limit, e.g. pack uploads; larger ⇒ 413 PAYLOAD_TOO_LARGE.
  std::map<std::string, size_t> large_body_paths;
  ResponseObserver on_response;      // optional
  // Optional: may answer a request before it is routed (nullopt lets it through), on the
  // request thread — e.g. waiting for a consistency token.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> before;
  // Optional: adjusts every response (immediate or deferred) right before it is sent.
  std::function<void(HttpResponse&)> decorate;
};

// Lifecycle: construct → start() → ... → stop() (or destruction). The Router must outlive the
// server and not change while it runs; handlers run concurrently on `threads` threads.
//
// Behaviour on the wire: HTTP/1.1 connections stay open unless the client sends
// "Connection: close" (HTTP/1.0 only with "Connection: keep-alive"); response headers from
// HttpResponse::headers are sent verbatim; malformed query escapes ⇒ 400 BAD_REQUEST JSON.
// Requests whose head + body exceed max_body_bytes + 64 KiB are refused by the HTTP layer
// (413, connection closed) before reaching the router.
//
// The embedding process should block SIGINT/SIGTERM in all threads before start() and sigwait()
// for them, so the server threads never receive those signals (ENVIRONMENT.md §Pitfalls 2).
class HttpServer {
 public:
  HttpServer(const Router& router, ServerOptions opts);
  ~HttpServer();  // stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on background threads. Errors: kUnavailable "cannot listen on
  // host:port: <reason>" (port taken, bad host); kConflict if already started.
  Status start();
  // The bound port (the kernel's choice when opts.port was 0); 0 before start().
  uint16_t port() const;
  // Stops accepting and joins the server threads. Idempotent; not concurrently with start().
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attune::rest
