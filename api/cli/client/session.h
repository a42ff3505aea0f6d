// Session: one client command's view of the server — resolved URL, saved or given token (with
// transparent refresh), output mode — and the checked REST calls every command uses.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/cli/client/credentials.h"
#include "api/cli/client/http.h"
#include "api/cli/client/ws_client.h"

namespace attune::cli::client {

inline constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";

// Options every client command takes (CLI11 fills them; env fallbacks are CLI11 envnames).
struct GlobalOptions {
  std::optional<std::string> url;         // --url / ATTUNE_API_URL
  std::optional<std::string> token;       // --token / ATTUNE_API_TOKEN (used as is, no refresh)
  std::optional<std::string> config_dir;  // --config-dir / ATTUNE_CONFIG_DIR
  std::optional<std::string> ws_url;      // --ws-url / ATTUNE_NOTIFIER_WS_URL
  bool json = false;
  bool no_color = false;
};

using Query = std::vector<std::pair<std::string, std::string>>;

// "a b/c" → "a%20b%2Fc" (RFC 3986 unreserved kept).
std::string url_encode(const std::string& s);

// "http://h:8080/" → "http://h:8080"; a trailing "/api/v1" is dropped too.
std::string normalize_url(std::string url);

// ws://<host of api_url>:8081/ws
std::string derive_ws_url(const std::string& api_url);

class Session {
 public:
  explicit Session(const GlobalOptions& options);

  const std::string& url() const { return url_; }
  const std::string& config_dir() const { return config_dir_; }
  bool json() const { return json_; }
  bool color() const { return color_; }        // ANSI on stdout
  bool progress() const { return progress_; }  // spinner on stderr
  const std::optional<Credentials>& credentials() const { return creds_; }

  // Authenticated REST call; returns the whole decoded body. Throws CliError: kUnreachable,
  // kNotLoggedIn (no token, or 401 after one refresh), kApiRefused (other 4xx/5xx, bad JSON).
  nlohmann::json call(const std::string& method, const std::string& path,
                      const std::optional<nlohmann::json>& body = std::nullopt,
                      const Query& query = {});
  // call(...)["data"].
  nlohmann::json data(const std::string& method, const std::string& path,
                      const std::optional<nlohmann::json>& body = std::nullopt,
                      const Query& query = {});
  // GET of a list route following pages until `max` rows (page_size ≤ 100).
  nlohmann::json list(const std::string& path, Query query, size_t max = 1000);
  // Multipart POST (pack upload).
  nlohmann::json upload(const std::string& path, const std::vector<MultipartPart>& parts);
  // GET `path` returning {status, body} without throwing on 404 (existence checks).
  std::optional<nlohmann::json> get_if_exists(const std::string& path);

  // POST /auth/login; saves credentials.json for this URL. `refused` retried until `wait_ready_s`.
  nlohmann::json login(const std::string& login, const std::string& password, double wait_ready_s);

  // The access token for the notifier (refreshed first when about to expire).
  std::string access_token();

  // Connects to the notifier: --ws-url, else websocket_url of GET /health/detailed, else derived.
  // nullptr (and *why) when that fails — callers fall back to polling.
  std::unique_ptr<NotifierConnection> connect_notifier(std::string* why);

  // Writes `v` as pretty JSON to stdout (the --json output).
  static void print_json(const nlohmann::json& v);

 private:
  HttpResponse send(const std::string& method, const std::string& path,
                    const std::optional<nlohmann::json>& body, const Query& query,
                    const std::vector<MultipartPart>* parts);
  nlohmann::json checked(const HttpResponse& r);
  [[noreturn]] void throw_unreachable(const HttpResponse& r) const;
  void ensure_token();
  void refresh();

  std::string url_;
  std::string config_dir_;
  std::optional<std::string> ws_url_;
  bool json_ = false;
  bool color_ = false;
  bool progress_ = false;
  std::optional<std::string> fixed_token_;
  std::optional<Credentials> creds_;  // saved login for url_
  bool refreshed_ = false;
};

}  // namespace attune::cli::client
