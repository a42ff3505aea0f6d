// The core.shell runtime: pack script files and inline script text under /bin/sh.
#include "runners/shell_runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <system_error>

#include "runners/formats.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kShell = "/bin/sh";

bool is_shell_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// Names a parameter may not take over in the inline prelude: the variables the shell or the
// runtime give meaning to.
bool is_reserved_variable(std::string_view name) {
  static const std::set<std::string_view> kReserved = {
      "PATH",   "HOME",   "LANG",   "IFS",  "PS1", "PS2",    "PS4",   "ENV",
      "CDPATH", "OPTIND", "OPTARG", "PPID", "PWD", "OLDPWD", "SHELL", "LINENO"};
  return name.rfind("ATTUNE_", 0) == 0 || name.rfind("LC_", 0) == 0 || kReserved.count(name) > 0;
}

bool valid_env_name(std::string_view name) {
  return !name.empty() && name.find('=') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

namespace {

// The pack file named by the entry point, "" for none (see resolve_pack_file).
Result<std::string> find_pack_file(const ActionInvocation& inv) {
  if (inv.pack_dir.empty() || inv.entrypoint.empty() ||
      inv.entrypoint.find_first_of("\n\r") != std::string::npos || inv.entrypoint.size() > 4096) {
    return std::string();
  }
  std::error_code ec;
  const fs::path actions = fs::weakly_canonical(fs::path(inv.pack_dir) / "actions", ec);
  if (ec) return std::string();
  const fs::path candidate = fs::path(inv.pack_dir) / "actions" / inv.entrypoint;
  if (!fs::is_regular_file(candidate, ec)) return std::string();
  const fs::path resolved = fs::canonical(candidate, ec);
  if (ec) return std::string();
  const auto [a, r] =
      std::mismatch(actions.begin(), actions.end(), resolved.begin(), resolved.end());
  if (a != actions.end()) {
    return make_error(Errc::kBadRequest, "entrypoint '" + inv.entrypoint +
                                             "' is outside the pack's actions directory");
  }
  return resolved.string();
}

}  // namespace

Result<std::string> resolve_pack_file(const ActionInvocation& inv,
                                      std::initializer_list<std::string_view> script_suffixes) {
  auto file = find_pack_file(inv);
  if (!file.ok() || !file->empty()) return file;
  if (inv.entrypoint.empty()) return make_error(Errc::kBadRequest, "empty entrypoint");
  // Inline code, unless it is plainly a script's name (one line ending in a script suffix):
  // then the file is missing from the pack, which must not run as code.
  const std::string_view e = inv.entrypoint;
  if (!inv.pack_dir.empty() && e.find('\n') == std::string_view::npos &&
      std::any_of(script_suffixes.begin(), script_suffixes.end(),
                  [&](std::string_view suffix) { return e.ends_with(suffix); })) {
    return make_error(Errc::kBadRequest, "entrypoint '" + inv.entrypoint +
                                             "' is not a file in the pack's actions directory");
  }
  return std::string();
}

Result<std::string> write_private_file(const std::string& dir, const std::string& prefix,
                                       const std::string& content) {
  std::string path = dir + "/" + prefix + "-XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return make_error(Errc::kUnavailable,
                      "cannot create parameter file in " + dir + ": " + std::strerror(errno));
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return make_error(Errc::kUnavailable,
                        "cannot write parameter file: " + std::string(std::strerror(err)));
    }
    written += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0400);
  ::close(fd);
  return path;
}

Result<std::string> write_parameter_file(const std::string& dir, int64_t execution_id,
                                         const std::string& content) {
  return write_private_file(dir, "attune-params-" + std::to_string(execution_id), content);
}

ShellRunner::ShellRunner(std::string temp_dir) : temp_dir_(std::move(temp_dir)) {
  if (temp_dir_.empty()) temp_dir_ = fs::temp_directory_path().string();
}

std::vector<std::string> ShellRunner::build_environment(const ActionInvocation& inv,
                                                        const std::string& parameter_file) {
  std::map<std::string, std::string> env = {
      {"PATH", env_or("PATH", "/usr/local/bin:/usr/bin:/bin")},
      {"HOME", env_or("HOME", "/")},
      {"LANG", "C.UTF-8"},
  };
  for (const auto& [k, v] : inv.env_vars) {
    if (!valid_env_name(k) || k.rfind("ATTUNE_", 0) == 0) continue;
    env[k] = v.substr(0, v.find('\0'));
  }
  env["ATTUNE_ACTION"] = inv.action_ref;
  env["ATTUNE_EXEC_ID"] = std::to_string(inv.execution_id);
  std::string api_url = inv.api_url;  // §11.4: without /api/v1, whatever the caller passed
  while (!api_url.empty() && api_url.back() == '/') api_url.pop_back();
  constexpr std::string_view kApiPrefix = "/api/v1";
  if (api_url.size() >= kApiPrefix.size() &&
      api_url.compare(api_url.size() - kApiPrefix.size(), kApiPrefix.size(), kApiPrefix) == 0) {
    api_url.resize(api_url.size() - kApiPrefix.size());
  }
  env["ATTUNE_API_URL"] = api_url;
  if (inv.api_token) env["ATTUNE_API_TOKEN"] = *inv.api_token;
  env["ATTUNE_PACK_REF"] = inv.pack_ref;
  env["ATTUNE_RULE"] = inv.rule_ref;
  env["ATTUNE_TRIGGER"] = inv.trigger_ref;
  env["ATTUNE_PARAMETER_DELIVERY"] = inv.parameter_delivery;
  env["ATTUNE_PARAMETER_FORMAT"] = inv.parameter_format;
  if (!parameter_file.empty()) env["ATTUNE_PARAMETER_FILE"] = parameter_file;

  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::string ShellRunner::inline_prelude(const Json& parameters,
                                        const std::map<std::string, std::string>& env_vars) {
  // fd 3 is closed first so commands the script runs cannot read the script (or its secrets)
  // from it; the shell reads the script through its own descriptor for /dev/fd/3.
  std::string out = "exec 3<&-\n";
  if (!parameters.is_object()) return out;
  for (const auto& [key, value] : parameters.items()) {
    if (!is_shell_identifier(key) || is_reserved_variable(key)) continue;
    std::string text = value.is_string()
                           ? value.get<std::string>()
                           : value.dump(-1, ' ', false, Json::error_handler_t::replace);
    std::erase(text, '\0');  // a shell variable cannot hold NUL
    // A caller env var of the same name arrives exported; unset it so the parameter is not.
    if (env_vars.count(key) > 0) out += "unset " + key + "\n";
    out += key + "=" + shell_quote(text) + "\n";
  }
  return out;
}

Result<std::string> ShellRunner::parameter_document(const ActionInvocation& inv) {
  if (inv.parameter_delivery != "stdin" && inv.parameter_delivery != "file") {
    return make_error(Errc::kBadRequest,
                      "unknown parameter_delivery '" + inv.parameter_delivery + "' (stdin|file)");
  }
  return render_parameters(inv.parameters, inv.parameter_format);
}

Status ShellRunner::deliver_parameters(const ActionInvocation& inv, std::string document,
                                       const std::string& temp_dir, ProcessSpec& spec) {
  std::string parameter_file;
  if (inv.parameter_delivery == "file") {
    auto path = write_parameter_file(temp_dir, inv.execution_id, document);
    if (!path.ok()) return path.error();
    parameter_file = *path;
    spec.cleanup_paths.push_back(parameter_file);
  } else {
    spec.stdin_data = std::move(document);
  }
  spec.env = build_environment(inv, parameter_file);
  return {};
}

Result<ProcessSpec> ShellRunner::prepare(const ActionInvocation& inv) const {
  auto document = parameter_document(inv);
  if (!document.ok()) return document.error();
  auto pack_file = resolve_pack_file(inv);
  if (!pack_file.ok()) return pack_file.error();

  ProcessSpec spec;
  spec.timeout = inv.timeout;
  spec.max_output_bytes = inv.max_output_bytes;
  if (!pack_file->empty()) {
    spec.argv = ::access(pack_file->c_str(), X_OK) == 0
                    ? std::vector<std::string>{*pack_file}
                    : std::vector<std::string>{std::string(kShell), *pack_file};
    spec.working_dir = (fs::path(inv.pack_dir) / "actions").string();
  } else {
    spec.argv = {std::string(kShell), "/dev/fd/3"};
    std::string script = inline_prelude(inv.parameters, inv.env_vars);
    script += inv.entrypoint;
    if (script.back() != '\n') script += '\n';
    spec.fd3_data = std::move(script);
    spec.working_dir = inv.pack_dir;
  }

  if (auto st = deliver_parameters(inv, std::move(*document), temp_dir_, spec); !st.ok()) {
    return st.error();
  }
  return spec;
}

}  // namespace attune::runners
