// HttpRequest/HttpResponse helpers, JSON body parsing and query decoding.
#include "api/rest/http.h"

#include <strings.h>

#include <cctype>

namespace attune::rest {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
  const auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

HttpResponse HttpResponse::later(std::shared_ptr<DeferredResponse> d) {
  if (auto done = d->take_if_complete()) return std::move(*done);
  HttpResponse r;
  r.deferred = std::move(d);
  return r;
}

HttpResponse HttpResponse::resolve() && {
  if (!deferred) return std::move(*this);
  auto d = std::move(deferred);
  return d->wait();
}

DeferredResponse::~DeferredResponse() {
  if (fn_ && !delivered_) {
    fn_(HttpResponse::error(500, "INTERNAL_ERROR", "Internal server error"));
  }
}

void DeferredResponse::complete(HttpResponse response) {
  std::function<void(HttpResponse)> fn;
  {
    std::lock_guard lock(mu_);
    if (delivered_ || response_) return;
    if (fn_) {
      fn = std::move(fn_);
      fn_ = nullptr;
      delivered_ = true;
    } else {
      response_ = std::move(response);
    }
  }
  if (fn) {
    fn(std::move(response));
  } else {
    cv_.notify_all();
  }
}

void DeferredResponse::on_complete(std::function<void(HttpResponse)> fn) {
  std::unique_lock lock(mu_);
  if (response_ && !delivered_) {
    HttpResponse r = std::move(*response_);
    delivered_ = true;
    lock.unlock();
    fn(std::move(r));
    return;
  }
  fn_ = std::move(fn);
}

std::optional<HttpResponse> DeferredResponse::take_if_complete() {
  std::lock_guard lock(mu_);
  if (!response_ || delivered_) return std::nullopt;
  delivered_ = true;
  std::optional<HttpResponse> out = std::move(response_);
  response_.reset();
  return out;
}

HttpResponse DeferredResponse::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return response_.has_value(); });
  delivered_ = true;
  return std::move(*response_);
}

HttpResponse HttpResponse::json(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  // Replace invalid UTF-8 instead of throwing: a response must always be producible.
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::error(const Error& e, Json details) {
  return error(errc_http_status(e.code), errc_name(e.code), e.message, std::move(details));
}

HttpResponse HttpResponse::error(int status, std::string code, std::string message,
                                 Json details) {
  Json body = {{"error", std::move(message)}, {"code", std::move(code)}};
  if (!details.is_null()) body["details"] = std::move(details);
  return json(status, body);
}

Result<Json> parse_json_body(const HttpRequest& req, bool require_object) {
  const bool blank = req.body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) return make_error(Errc::kBadRequest, "Invalid JSON: request body is empty");
  Json doc;
  try {
    doc = Json::parse(req.body);
  } catch (const Json::exception& e) {
    return make_error(Errc::kBadRequest, "Invalid JSON: " + json_error_detail(e.what()));
  }
  if (require_object && !doc.is_object()) {
    return make_error(Errc::kBadRequest, "Request body must be a JSON object");
  }
  return doc;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::multimap<std::string, std::string>> parse_query_string(std::string_view query) {
  std::multimap<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(pos, end - pos);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      const std::string_view raw_key = pair.substr(0, eq);
      const std::string_view raw_value =
          eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      auto key = percent_decode(raw_key, true);
      if (!key) {
        return make_error(Errc::kBadRequest,
                          "Malformed percent-encoding in query parameter name '" +
                              std::string(raw_key) + "'");
      }
      auto value = percent_decode(raw_value, true);
      if (!value) {
        return make_error(Errc::kBadRequest,
                          "Malformed percent-encoding in query parameter '" + *key + "'");
      }
      out.emplace(std::move(*key), std::move(*value));
    }
    pos = end + 1;
  }
  return out;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "1" || iequals(text, "true")) return true;
  if (text == "0" || iequals(text, "false")) return false;
  return std::nullopt;
}

std::string json_error_detail(const char* what) {
  std::string_view text(what);
  if (text.rfind("[json.exception.", 0) == 0) {
    const size_t close = text.find("] ");
    if (close != std::string_view::npos) text.remove_prefix(close + 2);
  }
  return std::string(text);
}

}  // namespace attune::rest
