// Strict resolution of pack action files (native and container runners).
#include "runners/action_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace attune::runners {

namespace fs = std::filesystem;

Result<ActionFile> resolve_action_file(const ActionInvocation& inv) {
  if (inv.pack_dir.empty()) {
    return make_error(Errc::kBadRequest, "action " + inv.action_ref +
                                             " has no pack directory: its entry point must be a "
                                             "file of an installed pack");
  }
  if (inv.entrypoint.empty()) return make_error(Errc::kBadRequest, "empty entrypoint");
  if (inv.entrypoint.find_first_of(std::string("\n\r\0", 3)) != std::string::npos ||
      inv.entrypoint.size() > 4096) {
    return make_error(Errc::kBadRequest, "entrypoint is not a file name");
  }
  std::error_code ec;
  const fs::path actions = fs::canonical(fs::path(inv.pack_dir) / "actions", ec);
  if (ec) {
    return make_error(Errc::kBadRequest, "the pack has no actions directory (" + inv.pack_dir +
                                             "/actions): " + ec.message());
  }
  const fs::path candidate = fs::path(inv.pack_dir) / "actions" / inv.entrypoint;
  const fs::path resolved = fs::canonical(candidate, ec);
  if (ec) {
    return make_error(Errc::kBadRequest, "entrypoint '" + inv.entrypoint +
                                             "' not found in the pack's actions directory");
  }
  const auto [a, r] =
      std::mismatch(actions.begin(), actions.end(), resolved.begin(), resolved.end());
  if (a != actions.end() || r == resolved.end()) {
    return make_error(Errc::kBadRequest, "entrypoint '" + inv.entrypoint +
                                             "' is outside the pack's actions directory");
  }
  if (!fs::is_regular_file(resolved, ec)) {
    return make_error(Errc::kBadRequest,
                      "entrypoint '" + inv.entrypoint + "' is not a regular file");
  }
  return ActionFile{resolved.string(), resolved.lexically_relative(actions).generic_string()};
}

}  // namespace attune::runners
