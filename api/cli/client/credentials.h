// The saved login of the `attune` client: <config dir>/credentials.json (dir 0700, file 0600,
// replaced atomically), and parsing of `--password-file` contents.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attune::cli::client {

struct Credentials {
  std::string url;  // API base URL the tokens belong to (no trailing '/')
  std::string login;
  std::string access_token;
  std::string refresh_token;
  int64_t expires_at = 0;  // access token expiry, Unix seconds
};

// <dir> as given; else $ATTUNE_CONFIG_DIR handled by the caller; else $XDG_CONFIG_HOME/attune;
// else $HOME/.config/attune.
std::string default_config_dir();

std::string credentials_path(const std::string& config_dir);

// nullopt when the file does not exist; a malformed file reads as nullopt and sets *warning.
std::optional<Credentials> load_credentials(const std::string& config_dir, std::string* warning);

// Creates the directory (0700) if needed and replaces the file atomically (write temp 0600, fsync,
// rename). Returns an error message, empty on success.
std::string save_credentials(const std::string& config_dir, const Credentials& creds);

// Returns true when a file was removed.
bool delete_credentials(const std::string& config_dir);

struct PasswordFile {
  std::optional<std::string> login;  // set when the file held `login:password`
  std::string password;
};

// File contents → password. A single trailing newline (\n or \r\n) is dropped. `login:password`
// (the server's attune-data/admin-password format) is recognised when the part before the first
// ':' is a plausible login (1–255 chars, no whitespace) and `user` is absent or equal to it;
// otherwise the whole text is the password.
PasswordFile parse_password_file(const std::string& contents,
                                 const std::optional<std::string>& user);

}  // namespace attune::cli::client
