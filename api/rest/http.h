// Transport-neutral HTTP request/response model and the JSON/query helpers every handler uses.
// Nothing here depends on Pistache; handlers and their tests see only these types.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::rest {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded path without the query
  std::multimap<std::string, std::string> query;  // percent-decoded ('+' → space)
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  std::string remote_ip;
  std::map<std::string, std::string> params;  // path parameters, filled by the Router
  // Set only by in-process callers that may process the same input twice (the Kafka ingress,
  // API.md §18), never from the network: the id of the entity the request creates, derived from
  // the input's position so that a replay recreates the same entity instead of a second one.
  std::optional<int64_t> derived_id;

  // First header with this name, compared case-insensitively.
  std::optional<std::string> header(std::string_view name) const;
  // First value of a query parameter.
  std::optional<std::string> query_param(std::string_view name) const;
};

class DeferredResponse;

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Retry-After
  // Set when the handler answers later (e.g. once a log write is durable); the fields above are
  // then unused. See later().
  std::shared_ptr<DeferredResponse> deferred;

  // A response the handler completes later, from any thread, through `d` — or `d`'s response
  // itself when it was completed already (e.g. a write made durable on the calling thread): the
  // server then sends it like any other.
  static HttpResponse later(std::shared_ptr<DeferredResponse> d);
  // This response, waiting for a deferred one to be completed (for in-process callers).
  HttpResponse resolve() &&;

  static HttpResponse json(int status, const Json& body);
  // API.md §3 error body {"error": message, "code": errc_name, "details"?}; status from
  // errc_http_status(). `details` is omitted when null.
  static HttpResponse error(const Error& e, Json details = nullptr);
  static HttpResponse error(int status, std::string code, std::string message,
                            Json details = nullptr);
};

// The answer to a request that a handler gives after returning: the server sends it as soon as
// complete() is called, without holding a request thread meanwhile. Thread-safe; complete() must be
// called exactly once (a DeferredResponse dropped without it answers 500).
class DeferredResponse {
 public:
  ~DeferredResponse();
  void complete(HttpResponse response);
  // Runs `fn` once with the response: now if it is complete, else on the completing thread.
  void on_complete(std::function<void(HttpResponse)> fn);
  HttpResponse wait();
  // The response, if complete() was called and nothing took it yet (it is then taken).
  std::optional<HttpResponse> take_if_complete();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<HttpResponse> response_;
  std::function<void(HttpResponse)> fn_;
  bool delivered_ = false;
};

// Handlers may be called concurrently from several server threads.
using Handler = std::function<HttpResponse(HttpRequest&)>;

// Parses the request body as JSON. Errors (kBadRequest): "Invalid JSON: <detail>" for syntax
// errors or an empty body; "Request body must be a JSON object" if `require_object` and the
// document is anything else.
Result<Json> parse_json_body(const HttpRequest& req, bool require_object = true);

// Decodes %XX escapes (and '+' as space when `plus_as_space`). nullopt for a truncated or
// non-hex escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space);

// Parses "a=1&b=x%20y&flag" (no leading '?') into decoded pairs; a key without '=' has an empty
// value. kBadRequest naming the parameter for malformed escapes.
Result<std::multimap<std::string, std::string>> parse_query_string(std::string_view query);

// Query booleans (API.md §2.7): true|false|1|0, case-insensitive; nullopt otherwise.
std::optional<bool> parse_bool(std::string_view text);

// nlohmann exception texts start with "[json.exception.<kind>.<id>] "; this strips that prefix
// so messages shown to clients read naturally.
std::string json_error_detail(const char* what);

}  // namespace attune::rest
