// A small blocking HTTP client over libcurl for the `attune` client commands. Transport failures
// are reported in the response (never thrown) so callers can tell "server down" from an answer.
#pragma once

#include <string>
#include <vector>

namespace attune::cli::client {

struct MultipartPart {
  std::string name;
  std::string data;
  std::string filename;      // non-empty ⇒ a file part
  std::string content_type;  // for file parts
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;      // "Name: value"
  std::string body;                      // sent when non-empty (or for POST/PUT)
  std::vector<MultipartPart> multipart;  // non-empty ⇒ multipart/form-data, `body` ignored
  long timeout_seconds = 60;
};

struct HttpResponse {
  // Transport outcome: ok ⇒ `status` and `body` hold the answer.
  bool ok = false;
  bool connection_refused = false;  // nothing listens (or host unreachable): retry-able at startup
  std::string transport_error;      // human text when !ok
  long status = 0;
  std::string body;
};

// Thread-compatible; one call per request (no connection reuse, the CLI makes few requests).
HttpResponse http_send(const HttpRequest& request);

}  // namespace attune::cli::client
