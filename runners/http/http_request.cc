// HTTP requests of the core.http runtime with libcurl, and the `attune http-request` subcommand.
#include "runners/http/http_request.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <string_view>

#include "runners/utf8.h"

namespace attune::runners::http {
namespace {

constexpr std::array<std::string_view, 7> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                      "DELETE", "HEAD", "OPTIONS"};
constexpr int64_t kMaxRedirectsLimit = 100;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos || s.find('\0') != s.npos;
}

// Header and query values may be given as any scalar; strings stay raw, others as JSON text.
std::string scalar_text(const Json& v) {
  return v.is_string() ? v.get<std::string>()
                       : v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Reads an optional parameter (null = absent).
const Json* param(const Json& p, const char* name) {
  auto it = p.find(name);
  return it == p.end() || it->is_null() ? nullptr : &*it;
}

Error bad(const std::string& message) { return make_error(Errc::kBadRequest, message); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// What libcurl hands the callbacks of one transfer.
struct Transfer {
  size_t max_body_bytes = 0;
  std::string body;
  bool truncated = false;
  std::vector<std::pair<std::string, std::string>> headers;  // of the last response only
  std::string reason;                                        // its reason phrase
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const size_t room = t->max_body_bytes - std::min(t->max_body_bytes, t->body.size());
  if (n > room) {
    t->body.append(data, room);
    t->truncated = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR, recognised by `truncated`)
  }
  t->body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirect, 100 Continue): start over
    t->headers.clear();
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == line.npos ? line.npos : line.find(' ', sp1 + 1);
    t->reason = sp2 == line.npos ? "" : trim(line.substr(sp2 + 1));
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == line.npos || colon == 0) return n;  // the blank line ending the block
  t->headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  return n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::string url_encode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<HttpRequest> parse_request(const Json& p) {
  if (!p.is_object()) return bad("the parameters must be an object");
  HttpRequest r;

  const Json* url = param(p, "url");
  if (url == nullptr || !url->is_string() || url->get<std::string>().empty()) {
    return bad("parameter 'url' is required (a string)");
  }
  r.url = url->get<std::string>();
  const std::string scheme = lower(r.url.substr(0, r.url.find(':')));
  if (r.url.find("://") == std::string::npos || (scheme != "http" && scheme != "https")) {
    return bad("parameter 'url' must be an http:// or https:// URL");
  }
  if (has_line_break(r.url) || r.url.find(' ') != std::string::npos) {
    return bad("parameter 'url' must not contain spaces or line breaks");
  }

  if (const Json* m = param(p, "method")) {
    if (!m->is_string()) return bad("parameter 'method' must be a string");
    std::string method = m->get<std::string>();
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (std::find(kMethods.begin(), kMethods.end(), method) == kMethods.end()) {
      return bad("parameter 'method' must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    }
    r.method = method;
  }

  if (const Json* h = param(p, "headers")) {
    if (!h->is_object()) return bad("parameter 'headers' must be an object");
    for (const auto& [name, value] : h->items()) {
      if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos ||
          name.find('\0') != std::string::npos) {
        return bad("header name '" + name + "' is not valid");
      }
      if (value.is_null()) continue;
      if (value.is_object() || value.is_array()) {
        return bad("header '" + name + "' must be a string, number or boolean");
      }
      std::string text = scalar_text(value);
      if (has_line_break(text)) return bad("header '" + name + "' must not contain line breaks");
      r.headers.emplace_back(name, std::move(text));
    }
  }

  const Json* body = param(p, "body");
  const Json* json_body = param(p, "json_body");
  if (body != nullptr && json_body != nullptr) {
    return bad("parameters 'body' and 'json_body' exclude each other");
  }
  if (body != nullptr) {
    if (!body->is_string())
      return bad("parameter 'body' must be a string (use json_body for JSON)");
    r.body = body->get<std::string>();
  } else if (json_body != nullptr) {
    r.body = json_body->dump(-1, ' ', false, Json::error_handler_t::replace);
    r.json_body = true;
  }

  if (const Json* q = param(p, "query_params")) {
    if (!q->is_object()) return bad("parameter 'query_params' must be an object");
    std::string query;
    for (const auto& [name, value] : q->items()) {
      if (value.is_null()) continue;
      const auto add = [&](const Json& v) {
        if (!query.empty()) query += '&';
        query += url_encode(name) + "=" + url_encode(scalar_text(v));
      };
      if (value.is_array()) {  // a list repeats the name: ?tag=a&tag=b
        for (const auto& item : value) add(item);
      } else if (value.is_object()) {
        return bad("query parameter '" + name + "' must be a scalar or a list");
      } else {
        add(value);
      }
    }
    if (!query.empty()) {
      const size_t hash = r.url.find('#');
      const std::string fragment = hash == std::string::npos ? "" : r.url.substr(hash);
      if (hash != std::string::npos) r.url.resize(hash);
      r.url += (r.url.find('?') == std::string::npos ? "?" : "&") + query + fragment;
    }
  }

  if (const Json* t = param(p, "timeout")) {
    if (!t->is_number() || t->get<double>() <= 0 || t->get<double>() > 86400 * 7) {
      return bad("parameter 'timeout' must be a number of seconds > 0");
    }
    r.timeout_ms = std::max<int64_t>(1, static_cast<int64_t>(t->get<double>() * 1000));
  }
  if (const Json* v = param(p, "verify_ssl")) {
    if (!v->is_boolean()) return bad("parameter 'verify_ssl' must be a boolean");
    r.verify_ssl = v->get<bool>();
  }
  if (const Json* v = param(p, "follow_redirects")) {
    if (!v->is_boolean()) return bad("parameter 'follow_redirects' must be a boolean");
    r.follow_redirects = v->get<bool>();
  }
  if (const Json* v = param(p, "max_redirects")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 0 ||
        v->get<int64_t>() > kMaxRedirectsLimit) {
      return bad("parameter 'max_redirects' must be an integer from 0 to 100");
    }
    r.max_redirects = v->get<int64_t>();
  }

  const auto credential = [&](const char* name, std::string& out) -> Status {
    if (const Json* v = param(p, name)) {
      if (!v->is_string()) return bad(std::string("parameter '") + name + "' must be a string");
      out = v->get<std::string>();
    }
    return {};
  };
  if (auto st = credential("auth_username", r.auth_username); !st.ok()) return st.error();
  if (auto st = credential("auth_password", r.auth_password); !st.ok()) return st.error();
  if (auto st = credential("auth_token", r.auth_token); !st.ok()) return st.error();
  std::string auth_type = "none";
  if (const Json* a = param(p, "auth_type")) {
    if (!a->is_string()) return bad("parameter 'auth_type' must be none, basic or bearer");
    auth_type = lower(a->get<std::string>());
  }
  if (auth_type == "none") {
    r.auth = AuthType::kNone;
  } else if (auth_type == "basic") {
    if (r.auth_username.empty()) return bad("auth_type basic needs parameter 'auth_username'");
    if (r.auth_username.find(':') != std::string::npos) {
      return bad("parameter 'auth_username' must not contain ':'");
    }
    r.auth = AuthType::kBasic;
  } else if (auth_type == "bearer") {
    if (r.auth_token.empty()) return bad("auth_type bearer needs parameter 'auth_token'");
    if (has_line_break(r.auth_token))
      return bad("parameter 'auth_token' must not contain line breaks");
    r.auth = AuthType::kBearer;
  } else {
    return bad("parameter 'auth_type' must be none, basic or bearer");
  }
  return r;
}

std::vector<std::string> credentials_of(const Json& p) {
  std::vector<std::string> out;
  if (!p.is_object()) return out;
  for (const char* name : {"auth_password", "auth_token"}) {
    if (const Json* v = param(p, name);
        v != nullptr && v->is_string() && !v->get<std::string>().empty()) {
      out.push_back(v->get<std::string>());
    }
  }
  const Json* user = param(p, "auth_username");
  const Json* pass = param(p, "auth_password");
  if (user != nullptr && pass != nullptr && user->is_string() && pass->is_string() &&
      !pass->get<std::string>().empty()) {
    out.push_back(base64(user->get<std::string>() + ":" + pass->get<std::string>()));
  }
  return out;
}

Json perform(const HttpRequest& request, size_t max_body_bytes) {
  Json out = {{"status_code", 0}, {"headers", Json::object()}, {"body", ""},
              {"elapsed_ms", 0},  {"url", request.url},        {"success", false},
              {"error", nullptr}};
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    out["error"] = "cannot initialise libcurl";
    return out;
  }
  CURL* c = curl.get();
  Transfer t;
  t.max_body_bytes = max_body_bytes;
  std::array<char, CURL_ERROR_SIZE> errbuf{};

  curl_slist* raw_headers = nullptr;
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    if (lower(name) == "content-type") has_content_type = true;
    // "Name;" sends a header with an empty value (curl's "Name:" would remove it).
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    raw_headers = curl_slist_append(raw_headers, line.c_str());
  }
  if (request.json_body && !has_content_type) {
    raw_headers = curl_slist_append(raw_headers, "Content-Type: application/json");
  }
  raw_headers = curl_slist_append(raw_headers, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "attune-http-runner/0.1");
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // any encoding curl can decode
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, request.verify_ssl ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, request.verify_ssl ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(request.max_redirects));
  if (request.timeout_ms)
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(*request.timeout_ms));

  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET" || request.body) {
    if (request.method != "POST")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.body) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body->size()));
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body->data());
    } else if (request.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
  }
  switch (request.auth) {
    case AuthType::kNone:
      break;
    case AuthType::kBasic:
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(c, CURLOPT_USERNAME, request.auth_username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, request.auth_password.c_str());
      break;
    case AuthType::kBearer:
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
      curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, request.auth_token.c_str());
      break;
  }

  const CURLcode rc = curl_easy_perform(c);

  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t total_us = 0;
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);

  Json headers_json = Json::object();
  for (const auto& [name, value] : t.headers) {
    const std::string n = sanitize_utf8(name), v = sanitize_utf8(value);
    if (headers_json.contains(n)) {
      headers_json[n] = headers_json[n].get<std::string>() + ", " + v;
    } else {
      headers_json[n] = v;
    }
  }
  const size_t keep = t.truncated ? utf8_cut(t.body, t.body.size()) : t.body.size();
  out["status_code"] = status;
  out["headers"] = std::move(headers_json);
  out["body"] = sanitize_utf8(std::string_view(t.body).substr(0, keep));
  if (t.truncated) {
    out["body_truncated"] = true;
  } else if (!t.body.empty()) {
    Json parsed = Json::parse(t.body, nullptr, false);
    if (!parsed.is_discarded()) out["json"] = std::move(parsed);
  }
  out["elapsed_ms"] = static_cast<int64_t>(total_us / 1000);
  if (effective != nullptr) out["url"] = sanitize_utf8(effective);

  const bool transport_ok = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.truncated);
  if (!transport_ok) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf.data()) : curl_easy_strerror(rc);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      // Not "timed out": that phrase is reserved for the execution's own timeout (API.md §11.5).
      detail = "no complete answer within the request timeout of " +
               std::to_string(request.timeout_ms.value_or(0)) + " ms";
    }
    out["error"] = sanitize_utf8("request failed: " + detail);
  } else if (status >= 400) {
    out["error"] =
        sanitize_utf8("HTTP " + std::to_string(status) + (t.reason.empty() ? "" : " " + t.reason));
  } else {
    out["success"] = true;
  }
  return out;
}

int http_request_main(int argc, char** argv) {
  size_t max_body_bytes = 1 << 20;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--max-body-bytes" && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || v == 0) {
        std::fprintf(stderr, "attune http-request: --max-body-bytes needs a positive integer\n");
        return 2;
      }
      max_body_bytes = static_cast<size_t>(v);
    } else {
      std::fprintf(stderr,
                   "usage: attune http-request [--max-body-bytes N] < parameters.json\n"
                   "Performs one HTTP request of the core.http runtime (used by the worker).\n");
      return 2;
    }
  }
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  Json result;
  const Json parameters = Json::parse(input, nullptr, false);
  if (parameters.is_discarded()) {
    result = {{"success", false}, {"error", "the parameter document on stdin is not valid JSON"}};
  } else if (auto request = parse_request(parameters); !request.ok()) {
    result = {{"success", false}, {"error", request.error().message}};
  } else {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    result = perform(*request, max_body_bytes);
    curl_global_cleanup();
  }
  std::cout << result.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  std::cout.flush();
  return result.value("success", false) ? 0 : 1;
}

}  // namespace attune::runners::http
