#include "api/cli/client/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace attune::cli::client {

std::string default_config_dir() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/attune";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : ".") + "/.config/attune";
}

std::string credentials_path(const std::string& config_dir) {
  return config_dir + "/credentials.json";
}

std::optional<Credentials> load_credentials(const std::string& config_dir, std::string* warning) {
  std::ifstream in(credentials_path(config_dir));
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  auto str = [&j](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!j.is_object() || str("access_token").empty()) {
    if (warning != nullptr) {
      *warning = credentials_path(config_dir) + " is not a saved login; run `attune login`";
    }
    return std::nullopt;
  }
  Credentials c;
  c.url = str("url");
  c.login = str("login");
  c.access_token = str("access_token");
  c.refresh_token = str("refresh_token");
  if (auto it = j.find("expires_at"); it != j.end() && it->is_number()) {
    c.expires_at = it->get<int64_t>();
  }
  return c;
}

std::string save_credentials(const std::string& config_dir, const Credentials& creds) {
  // mkdir -p with 0700 for every level we create.
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = config_dir.find('/', pos + 1);
    partial = config_dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create " + partial + ": " + std::strerror(errno);
    }
  }
  const nlohmann::json j = {{"url", creds.url},
                            {"login", creds.login},
                            {"access_token", creds.access_token},
                            {"refresh_token", creds.refresh_token},
                            {"expires_at", creds.expires_at}};
  const std::string text = j.dump(2) + "\n";
  const std::string path = credentials_path(config_dir);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot write " + tmp + ": " + std::strerror(errno);
  ::fchmod(fd, 0600);  // O_CREAT's mode is masked by umask; an old temp file kept its mode
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write " + tmp + ": " + err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + std::strerror(errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return "cannot replace " + path + ": " + err;
  }
  return {};
}

bool delete_credentials(const std::string& config_dir) {
  return ::unlink(credentials_path(config_dir).c_str()) == 0;
}

PasswordFile parse_password_file(const std::string& contents,
                                 const std::optional<std::string>& user) {
  std::string text = contents;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  PasswordFile out;
  const size_t colon = text.find(':');
  if (colon != std::string::npos && colon > 0 && colon <= 255) {
    const std::string login = text.substr(0, colon);
    const bool plausible = login.find_first_of(" \t\r\n") == std::string::npos;
    if (plausible && (!user || *user == login)) {
      out.login = login;
      out.password = text.substr(colon + 1);
      return out;
    }
  }
  out.password = text;
  return out;
}

}  // namespace attune::cli::client
