// One HTTP request of the core.http runtime, made with libcurl (the only place that includes it):
// the parameter document is validated into an HttpRequest, performed, and answered as the
// result document the http runner reports (README "Runners").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::runners::http {

enum class AuthType { kNone, kBasic, kBearer };

struct HttpRequest {
  std::string url;  // http:// or https://, query_params already appended
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // as given, in name order
  std::optional<std::string> body;    // from `body`, or `json_body` serialised
  bool json_body = false;             // body came from json_body: Content-Type application/json
  std::optional<int64_t> timeout_ms;  // whole request; nullopt = none (the execution's applies)
  bool verify_ssl = true;
  AuthType auth = AuthType::kNone;
  std::string auth_username, auth_password, auth_token;
  bool follow_redirects = true;
  int64_t max_redirects = 10;
};

// Validates the parameter document (API parameter names: url, method, headers, body, json_body,
// query_params, timeout, verify_ssl, auth_type, auth_username, auth_password, auth_token,
// follow_redirects, max_redirects; null counts as absent; other keys are ignored). Errors name
// the parameter and never contain a credential. Pure.
Result<HttpRequest> parse_request(const Json& parameters);

// `value` percent-encoded for a URL query (RFC 3986 unreserved characters kept). Pure.
std::string url_encode(std::string_view value);

// The credentials of `parameters` that must never appear in a result or a log: auth_password,
// auth_token and the base64 "user:password" of basic auth (as echoed in an Authorization header).
std::vector<std::string> credentials_of(const Json& parameters);

// Performs the request and returns the result document:
//   status_code (int, 0 without an answer), headers (object; repeated names joined by ", "),
//   body (text, invalid UTF-8 replaced, at most max_body_bytes with body_truncated: true when
//   cut), json (the body parsed, when it is complete valid JSON), elapsed_ms, url (final, after
//   redirects), success (no transport error and status < 400), error (null on success; the
//   transport error, or "HTTP <status> <reason>").
// Only http and https are allowed, also for redirects. Blocking; thread-safe.
Json perform(const HttpRequest& request, size_t max_body_bytes);

// `attune http-request [--max-body-bytes N]`: reads the parameter document (JSON) on stdin,
// writes the result document as one JSON line on stdout. Exit code 0 when success, 1 when the
// request failed or the parameters are invalid (the result says why), 2 on a usage error.
int http_request_main(int argc, char** argv);

}  // namespace attune::runners::http
