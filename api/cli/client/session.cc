#include "api/cli/client/session.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "api/cli/client/errors.h"
#include "api/cli/client/output.h"

namespace attune::cli::client {
namespace {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

Credentials from_token_response(const std::string& url, const std::string& login,
                                const nlohmann::json& data) {
  Credentials c;
  c.url = url;
  c.login = jstr(jget(data, "user"), "login");
  if (c.login.empty()) c.login = login;
  c.access_token = jstr(data, "access_token");
  c.refresh_token = jstr(data, "refresh_token");
  const auto& expires_in = jget(data, "expires_in");
  c.expires_at = now_unix() + (expires_in.is_number() ? expires_in.get<int64_t>() : 3600);
  return c;
}

}  // namespace

std::string url_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string normalize_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.ends_with("/api/v1")) url.resize(url.size() - 7);
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.find("://") == std::string::npos) url = "http://" + url;
  return url;
}

std::string derive_ws_url(const std::string& api_url) {
  std::string rest = api_url;
  if (const size_t p = rest.find("://"); p != std::string::npos) rest = rest.substr(p + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string host = rest;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return "ws://" + host + ":8081/ws";
}

namespace {

// The option if given, else the environment variable if set and non-empty.
std::optional<std::string> option_or_env(const std::optional<std::string>& opt, const char* env) {
  if (opt) return opt;
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return std::string(v);
  return std::nullopt;
}

}  // namespace

Session::Session(const GlobalOptions& given) : json_(given.json) {
  GlobalOptions o = given;
  o.url = option_or_env(o.url, "ATTUNE_API_URL");
  o.token = option_or_env(o.token, "ATTUNE_API_TOKEN");
  o.config_dir = option_or_env(o.config_dir, "ATTUNE_CONFIG_DIR");
  o.ws_url = option_or_env(o.ws_url, "ATTUNE_NOTIFIER_WS_URL");
  ws_url_ = o.ws_url;
  fixed_token_ = o.token;
  config_dir_ = o.config_dir && !o.config_dir->empty() ? *o.config_dir : default_config_dir();
  std::string warning;
  auto saved = load_credentials(config_dir_, &warning);
  if (!warning.empty()) std::fprintf(stderr, "attune: warning: %s\n", warning.c_str());
  if (o.url && !o.url->empty()) {
    url_ = normalize_url(*o.url);
  } else if (saved && !saved->url.empty()) {
    url_ = normalize_url(saved->url);
  } else {
    url_ = kDefaultUrl;
  }
  // Tokens are only ever sent to the server they were issued by.
  if (saved && normalize_url(saved->url) == url_) creds_ = saved;
  if (fixed_token_ && fixed_token_->empty()) fixed_token_.reset();
  color_ = !json_ && !o.no_color && !env_set("NO_COLOR") && ::isatty(STDOUT_FILENO) == 1;
  progress_ = !json_ && ::isatty(STDERR_FILENO) == 1;
}

void Session::print_json(const nlohmann::json& v) {
  const std::string text = v.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

HttpResponse Session::send(const std::string& method, const std::string& path,
                           const std::optional<nlohmann::json>& body, const Query& query,
                           const std::vector<MultipartPart>* parts) {
  HttpRequest req;
  req.method = method;
  req.url = url_ + path;
  char sep = path.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : query) {
    req.url += sep + url_encode(k) + "=" + url_encode(v);
    sep = '&';
  }
  req.headers.push_back("Accept: application/json");
  const std::string token = fixed_token_ ? *fixed_token_ : creds_ ? creds_->access_token : "";
  if (!token.empty() && path.rfind("/auth/login", 0) != 0 && path.rfind("/auth/refresh", 0) != 0) {
    req.headers.push_back("Authorization: Bearer " + token);
  }
  if (parts != nullptr) {
    req.multipart = *parts;
    req.timeout_seconds = 300;
  } else if (body) {
    req.headers.push_back("Content-Type: application/json");
    req.body = body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return http_send(req);
}

void Session::throw_unreachable(const HttpResponse& r) const {
  throw CliError(ExitCode::kUnreachable, "cannot reach " + url_ + ": " + r.transport_error +
                                             " — is `attune serve` running?");
}

nlohmann::json Session::checked(const HttpResponse& r) {
  if (!r.ok) throw_unreachable(r);
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status >= 200 && r.status < 300) {
    if (body.is_discarded()) {
      throw CliError(ExitCode::kApiRefused,
                     "the server answered HTTP " + std::to_string(r.status) + " with invalid JSON");
    }
    return body;
  }
  std::string message = jstr(body, "error");
  if (body.is_discarded() || message.empty()) {
    message = "unexpected answer from " + url_;
  }
  std::string code = jstr(body, "code");
  if (r.status == 401) {
    message += fixed_token_ ? " — check --token / ATTUNE_API_TOKEN" : " — run `attune login`";
  }
  throw CliError(exit_code_for_http_status(static_cast<int>(r.status)), message,
                 static_cast<int>(r.status), code, jget(body, "details"));
}

void Session::ensure_token() {
  if (fixed_token_) return;
  if (!creds_) {
    throw CliError(ExitCode::kNotLoggedIn,
                   "not logged in to " + url_ + " — run `attune login --url " + url_ + "`");
  }
  if (creds_->expires_at - now_unix() < 60 && !refreshed_) refresh();
}

void Session::refresh() {
  refreshed_ = true;
  if (!creds_ || creds_->refresh_token.empty()) {
    throw CliError(ExitCode::kNotLoggedIn, "session expired — run `attune login`");
  }
  const auto r = send("POST", "/auth/refresh",
                      nlohmann::json{{"refresh_token", creds_->refresh_token}}, {}, nullptr);
  if (!r.ok) throw_unreachable(r);
  if (r.status == 401) {
    throw CliError(ExitCode::kNotLoggedIn, "session expired — run `attune login`", 401,
                   "UNAUTHORIZED", nullptr);
  }
  const auto body = checked(r);
  auto fresh = from_token_response(url_, creds_->login, jget(body, "data"));
  if (fresh.access_token.empty()) {
    throw CliError(ExitCode::kApiRefused, "the server's refresh answer holds no access_token");
  }
  creds_ = fresh;
  if (auto err = save_credentials(config_dir_, *creds_); !err.empty()) {
    std::fprintf(stderr, "attune: warning: %s\n", err.c_str());
  }
}

nlohmann::json Session::call(const std::string& method, const std::string& path,
                             const std::optional<nlohmann::json>& body, const Query& query) {
  ensure_token();
  auto r = send(method, path, body, query, nullptr);
  if (r.ok && r.status == 401 && !fixed_token_ && !refreshed_) {
    refresh();
    r = send(method, path, body, query, nullptr);
  }
  return checked(r);
}

nlohmann::json Session::data(const std::string& method, const std::string& path,
                             const std::optional<nlohmann::json>& body, const Query& query) {
  auto b = call(method, path, body, query);
  return jget(b, "data");
}

nlohmann::json Session::upload(const std::string& path, const std::vector<MultipartPart>& parts) {
  ensure_token();
  auto r = send("POST", path, std::nullopt, {}, &parts);
  if (r.ok && r.status == 401 && !fixed_token_ && !refreshed_) {
    refresh();
    r = send("POST", path, std::nullopt, {}, &parts);
  }
  return checked(r);
}

std::optional<nlohmann::json> Session::get_if_exists(const std::string& path) {
  try {
    return data("GET", path);
  } catch (const CliError& e) {
    if (e.http_status() == 404) return std::nullopt;
    throw;
  }
}

nlohmann::json Session::list(const std::string& path, Query query, size_t max) {
  auto rows = nlohmann::json::array();
  const size_t page_size = std::min<size_t>(std::max<size_t>(max, 1), 100);
  query.emplace_back("page_size", std::to_string(page_size));
  for (int page = 1; rows.size() < max; ++page) {
    Query q = query;
    q.emplace_back("page", std::to_string(page));
    const auto body = call("GET", path, std::nullopt, q);
    const auto& items = jget(body, "data").is_array() ? jget(body, "data") : jget(body, "items");
    if (!items.is_array()) break;
    for (const auto& it : items) {
      if (rows.size() >= max) break;
      rows.push_back(it);
    }
    const auto& has_next = jget(jget(body, "pagination"), "has_next");
    if (!has_next.is_boolean() || !has_next.get<bool>() || items.empty()) break;
  }
  return rows;
}

nlohmann::json Session::login(const std::string& login, const std::string& password,
                              double wait_ready_s) {
  const auto start = std::chrono::steady_clock::now();
  const char* frames[] = {"|", "/", "-", "\\"};
  HttpResponse r;
  for (int attempt = 0;; ++attempt) {
    r = send("POST", "/auth/login", nlohmann::json{{"login", login}, {"password", password}}, {},
             nullptr);
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool starting = !r.ok ? r.connection_refused : r.status == 503;  // not serving yet
    if (!starting || waited >= wait_ready_s) break;
    if (progress_) {
      std::fprintf(stderr, "\r%s waiting for %s (%.0fs/%.0fs)", frames[attempt % 4], url_.c_str(),
                   waited, wait_ready_s);
      std::fflush(stderr);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (progress_ && wait_ready_s > 0) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  if (r.ok && r.status == 401) {
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    const std::string msg = jstr(body, "error");
    throw CliError(ExitCode::kNotLoggedIn, msg.empty() ? "login failed" : msg, 401,
                   jstr(body, "code"), nullptr);
  }
  const auto body = checked(r);
  const auto& data = jget(body, "data");
  auto creds = from_token_response(url_, login, data);
  if (creds.access_token.empty()) {
    throw CliError(ExitCode::kApiRefused, "the server's login answer holds no access_token");
  }
  if (auto err = save_credentials(config_dir_, creds); !err.empty()) {
    throw CliError(ExitCode::kUsage, err);
  }
  creds_ = creds;
  return data;
}

std::string Session::access_token() {
  ensure_token();
  return fixed_token_ ? *fixed_token_ : creds_->access_token;
}

std::unique_ptr<NotifierConnection> Session::connect_notifier(std::string* why) {
  std::string ws = ws_url_ && !ws_url_->empty() ? *ws_url_ : "";
  if (ws.empty()) {
    HttpRequest req;
    req.url = url_ + "/health/detailed";
    req.timeout_seconds = 10;
    const auto r = http_send(req);
    if (r.ok && r.status == 200) {
      ws = jstr(nlohmann::json::parse(r.body, nullptr, false), "websocket_url");
    }
  }
  if (ws.empty()) ws = derive_ws_url(url_);
  std::string token;
  token = access_token();
  std::string error;
  auto conn = client::connect_notifier(ws, token, std::chrono::milliseconds(5000), &error);
  if (!conn) *why = ws + ": " + error;
  return conn;
}

}  // namespace attune::cli::client
